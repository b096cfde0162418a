"""A string prefix as a range, for stores that index strings in order (SQL, Milvus)."""

from __future__ import annotations


def prefix_successor(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (None: there is none).

    ``text.startswith(prefix)`` is ``prefix <= text < prefix_successor(prefix)``, comparing
    code points; surrogates are skipped, as no stored string holds one.
    """
    chars = list(prefix)
    while chars and ord(chars[-1]) >= 0x10FFFF:
        chars.pop()
    if not chars:
        return None
    code = ord(chars[-1]) + 1
    chars[-1] = chr(0xE000 if 0xD800 <= code <= 0xDFFF else code)
    return "".join(chars)
