"""An image file on its way to operators, in the form each one takes.

Operators announcing `image_bytes` in their identity get the file's bytes as they are
(`ExecuteRequest.images`); the rest (the original protocol's) get base64 text (`datas`).
Each form is made from the other only when an operator needs it, once: base64 costs the API
about a third more bytes to encode and serialise per image, which is most of its CPU on large
photos.
"""

from __future__ import annotations

import base64

from phantoscope.imaging.codec import b64_to_bytes


class Picture:
    """One image file, as bytes and as base64, either given and the other made on demand.

    Two threads asking at once may both make the missing form; they make the same value.
    """

    __slots__ = ("_b64", "_raw")

    def __init__(self, *, raw: bytes | None = None, b64: str | None = None) -> None:
        if raw is None and b64 is None:
            raise ValueError("a picture needs its bytes or its base64 text")
        self._raw = raw
        self._b64 = b64

    @property
    def raw(self) -> bytes:
        """The file's bytes."""
        if self._raw is None:
            self._raw = b64_to_bytes(self._b64 or "")
        return self._raw

    @property
    def nbytes(self) -> int:
        """The file's size in bytes (from the base64 text's length when only that is here)."""
        if self._raw is not None:
            return len(self._raw)
        text = self._b64 or ""
        return len(text) * 3 // 4 - text.endswith("=") - text.endswith("==")

    @property
    def b64(self) -> str:
        """The file in standard padded base64."""
        if self._b64 is None:
            self._b64 = base64.b64encode(self._raw or b"").decode("ascii")
        return self._b64
