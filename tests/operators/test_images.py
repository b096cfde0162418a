"""Request items to RGB images: base64 decoding, image decoding and its limits."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from phantoscope.imaging import codec as images
from phantoscope.imaging.codec import (
    DEFAULT_MAX_PIXELS,
    BadImageError,
    ImageTooLargeError,
    b64_to_bytes,
    decode_image,
    encode_jpeg_b64,
    image_format,
)

ORIENTATION = 0x0112


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def two_halves(size: tuple[int, int], left: tuple, right: tuple) -> Image.Image:
    """An RGB image whose left half is ``left`` and right half is ``right``."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def png_with_header_size(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (its data is a 1x1 image's)."""
    data = bytearray(encode(Image.new("L", (1, 1)), "PNG"))
    assert data[12:16] == b"IHDR"
    chunk = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[12:29] = chunk
    data[29:33] = struct.pack(">I", zlib.crc32(chunk))
    return bytes(data)


# -- b64_to_bytes ----------------------------------------------------------------------------

PAYLOAD = bytes(range(256)) * 3 + b"tail"


def test_b64_bare() -> None:
    assert b64_to_bytes(base64.b64encode(PAYLOAD).decode()) == PAYLOAD


@pytest.mark.parametrize(
    "prefix", ["data:image/jpeg;base64,", "data:image/png;charset=utf-8;base64,", "DATA:;BASE64,"]
)
def test_b64_data_url(prefix: str) -> None:
    assert b64_to_bytes(prefix + base64.b64encode(PAYLOAD).decode()) == PAYLOAD


def test_b64_ignores_whitespace_and_newlines() -> None:
    text = base64.encodebytes(PAYLOAD).decode()  # 76-character lines
    assert "\n" in text
    spaced = "  " + text.replace("\n", "\r\n \t") + "\n"
    assert b64_to_bytes(spaced) == PAYLOAD
    assert b64_to_bytes("data:image/jpeg;base64,\n" + text) == PAYLOAD


@pytest.mark.parametrize("payload", [b"a", b"ab", b"abc", b"abcd", PAYLOAD])
def test_b64_missing_padding(payload: bytes) -> None:
    text = base64.b64encode(payload).decode().rstrip("=")
    assert b64_to_bytes(text) == payload


@pytest.mark.parametrize("text", ["not base64!", "abc$def", "YWJj\x00", "Zm9v=YmFy", "abcde"])
def test_b64_invalid(text: str) -> None:
    with pytest.raises(BadImageError, match="not valid base64"):
        b64_to_bytes(text)


@pytest.mark.parametrize(
    "text", ["", "   \n\t", "data:image/png;base64,", "data:image/png;base64, \n"]
)
def test_b64_empty(text: str) -> None:
    with pytest.raises(BadImageError, match="empty"):
        b64_to_bytes(text)


# -- decode_image ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF"])
def test_decode_formats_to_rgb(fmt: str) -> None:
    source = two_halves((64, 32), (255, 0, 0), (0, 0, 255))
    image = decode_image(encode(source, fmt))
    assert image.mode == "RGB"
    assert image.size == (64, 32)
    left, right = np.asarray(image)[16, 8].astype(int), np.asarray(image)[16, 56].astype(int)
    assert np.abs(left - [255, 0, 0]).max() < 30, left
    assert np.abs(right - [0, 0, 255]).max() < 30, right


def test_decode_greyscale_and_palette_to_rgb() -> None:
    grey = decode_image(encode(Image.new("L", (8, 8), 77), "PNG"))
    assert grey.mode == "RGB" and grey.getpixel((3, 3)) == (77, 77, 77)
    palette = Image.new("RGB", (8, 8), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    decoded = decode_image(encode(palette, "PNG"))
    assert decoded.mode == "RGB" and decoded.getpixel((3, 3)) == (10, 200, 30)


def test_decode_png_alpha_composited_on_white() -> None:
    source = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # transparent black
    source.paste((200, 0, 0, 255), (0, 0, 5, 10))  # opaque red left half
    source.putpixel((7, 5), (0, 0, 0, 128))  # half-transparent black
    image = decode_image(encode(source, "PNG"))
    assert image.mode == "RGB"
    assert image.getpixel((8, 1)) == (255, 255, 255)
    assert image.getpixel((2, 2)) == (200, 0, 0)
    assert all(abs(c - 127) <= 1 for c in image.getpixel((7, 5)))


def test_decode_palette_transparency_composited_on_white() -> None:
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    source.putpixel((1, 1), 1)
    image = decode_image(encode(source, "PNG", transparency=0))
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (0, 255, 0)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_decode_16_bit_greyscale_is_scaled_not_clipped(fmt: str) -> None:
    source = Image.new("I;16", (4, 2), 32768)
    source.putpixel((1, 0), 65535)
    source.putpixel((2, 0), 256)
    data = encode(source, fmt)
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    image = decode_image(data)
    assert image.mode == "RGB"
    assert all(abs(c - 128) <= 1 for c in image.getpixel((0, 1)))
    assert image.getpixel((1, 0))[0] >= 254
    assert image.getpixel((2, 0))[0] <= 2


def test_decode_applies_exif_orientation() -> None:
    source = two_halves((40, 20), (255, 0, 0), (0, 0, 255))  # red left, blue right
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored rotated: display after turning 90 degrees clockwise
    data = encode(source, "JPEG", exif=exif.tobytes(), quality=95)
    assert Image.open(io.BytesIO(data)).size == (40, 20)
    image = decode_image(data)
    assert image.size == (20, 40)
    # Turned clockwise, the left (red) half is on top and the right (blue) one below.
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_min_side_shrinks_big_jpeg_but_not_below_min_side() -> None:
    data = encode(Image.new("RGB", (2000, 1500), (90, 120, 30)), "JPEG")
    assert decode_image(data).size == (2000, 1500)
    image = decode_image(data, min_side=224)
    assert image.size[0] < 2000 and image.size[1] < 1500
    assert min(image.size) >= 224
    assert image.size[0] * 3 == image.size[1] * 4  # aspect ratio kept
    assert image.mode == "RGB"


@pytest.mark.parametrize("size", [(2000, 1500), (1793, 1793), (1500, 4000)])
def test_min_side_is_respected(size: tuple[int, int]) -> None:
    data = encode(Image.new("RGB", size, (90, 120, 30)), "JPEG")
    image = decode_image(data, min_side=224)
    assert min(image.size) >= 224
    assert image.size[0] <= size[0] and image.size[1] <= size[1]


def test_min_side_leaves_small_jpeg_and_png_alone() -> None:
    small_jpeg = encode(Image.new("RGB", (300, 400), (1, 2, 3)), "JPEG")
    assert decode_image(small_jpeg, min_side=224).size == (300, 400)
    png = encode(Image.new("RGB", (2000, 1500), (1, 2, 3)), "PNG")
    assert decode_image(png, min_side=224).size == (2000, 1500)


def test_max_pixels_refuses_before_decoding() -> None:
    data = encode(Image.new("RGB", (100, 100), (1, 2, 3)), "PNG")
    assert decode_image(data, max_pixels=10_000).size == (100, 100)
    with pytest.raises(BadImageError, match=r"100x100 pixels; the limit is 9,999 pixels"):
        decode_image(data, max_pixels=9_999)


def test_max_pixels_refuses_header_only_bomb_with_a_message_naming_the_limit() -> None:
    # Only the header says 20,000 x 20,000: decoding it would fail, so refusal comes first.
    data = png_with_header_size(20_000, 20_000)
    assert struct.unpack(">II", data[16:24]) == (20_000, 20_000)
    small = png_with_header_size(300, 200)
    with pytest.raises(BadImageError, match="300x200 pixels; the limit is 50,000"):
        decode_image(small, max_pixels=50_000)
    with pytest.raises(BadImageError) as refused:
        decode_image(data)
    message = str(refused.value)
    assert "20000x20000" in message, message
    assert f"{DEFAULT_MAX_PIXELS:,}" in message, message


def test_truncated_jpeg_is_bad() -> None:
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    data = encode(noise, "JPEG")
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        decode_image(data[: len(data) // 2])


def test_truncated_png_is_bad() -> None:
    rng = np.random.default_rng(1)
    noise = Image.fromarray(rng.integers(0, 256, (128, 128, 3), dtype=np.uint8))
    data = encode(noise, "PNG")
    with pytest.raises(BadImageError):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    "data",
    [
        bytes(np.random.default_rng(2).integers(0, 256, 4096, dtype=np.uint8)),
        b"this is a text file, not an image\n" * 20,
        b"<html><body>404</body></html>",
        b"\xff\xd8\xff",  # the first bytes of a JPEG and nothing more
    ],
    ids=["random", "text", "html", "jpeg-magic-only"],
)
def test_non_images_are_bad(data: bytes) -> None:
    with pytest.raises(BadImageError):
        decode_image(data)


def test_empty_data_is_bad() -> None:
    with pytest.raises(BadImageError, match="empty"):
        decode_image(b"")


# -- image_format -----------------------------------------------------------------------------


def noise_image(size: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The data `image_format` decodes (the real `decode_image` still runs)."""
    seen: list[bytes] = []
    real = images.decode_image

    def counting(data: bytes, **options: object) -> Image.Image:
        seen.append(data)
        return real(data, **options)

    monkeypatch.setattr(images, "decode_image", counting)
    return seen


def test_image_format_takes_a_whole_jpeg_from_its_header_and_end(decodes: list[bytes]) -> None:
    data = encode(noise_image(256, 3), "JPEG")
    assert data.endswith(b"\xff\xd9")
    assert image_format(data) == "JPEG"
    assert decodes == []


@pytest.mark.parametrize("cut", [0.5, 0.99])
def test_image_format_refuses_a_truncated_jpeg(cut: float, decodes: list[bytes]) -> None:
    data = encode(noise_image(256, 4), "JPEG")
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        image_format(data[: int(len(data) * cut)])
    assert len(decodes) == 1


def test_image_format_decodes_a_jpeg_with_bytes_after_its_end(decodes: list[bytes]) -> None:
    # Some cameras append data after the end-of-image marker (a motion photo's video).
    data = encode(noise_image(256, 5), "JPEG") + b"\x00\x00ftypmp42" + bytes(100)
    assert image_format(data) == "JPEG"
    assert decodes == [data]
    with pytest.raises(BadImageError, match="corrupt or truncated"):
        image_format(data[: len(data) // 2] + b"ftypmp42")


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "BMP", "GIF"])
def test_image_format_decodes_other_formats(fmt: str, decodes: list[bytes]) -> None:
    data = encode(noise_image(128, 6), fmt)
    assert image_format(data) == fmt
    assert decodes == [data]


def test_image_format_refuses_truncated_png_and_non_images() -> None:
    with pytest.raises(BadImageError):
        image_format(encode(noise_image(128, 7), "PNG")[:2000])
    with pytest.raises(BadImageError, match="not a recognised image format"):
        image_format(b"plain text, not an image\n" * 10)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_image_format_refuses_too_many_pixels(fmt: str) -> None:
    data = encode(noise_image(300, 8), fmt)
    with pytest.raises(ImageTooLargeError, match="300x300 pixels; the limit is 50,000"):
        image_format(data, max_pixels=50_000)
    assert image_format(data, max_pixels=90_000) == fmt


def test_encode_jpeg_b64_round_trips() -> None:
    source = two_halves((48, 32), (250, 10, 10), (10, 250, 10))
    text = encode_jpeg_b64(source)
    assert isinstance(text, str)
    raw = base64.b64decode(text, validate=True)
    assert raw[:3] == b"\xff\xd8\xff"
    image = decode_image(b64_to_bytes(text))
    assert image.size == (48, 32)
    difference = np.abs(np.asarray(image, dtype=int) - np.asarray(source, dtype=int))
    assert difference.mean() < 4


def test_encode_jpeg_b64_accepts_any_mode() -> None:
    for image in (Image.new("RGBA", (8, 8), (1, 2, 3, 4)), Image.new("L", (8, 8), 9)):
        assert decode_image(base64.b64decode(encode_jpeg_b64(image))).size == (8, 8)
