"""`imaging.exif.read_exif` on real files made with Pillow: JPEGs carrying EXIF (date, camera,
orientation, GPS), a PNG without it, truncated or garbled EXIF, and undecodable pixels."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from phantoscope.imaging.exif import read_exif


def jpeg(size: tuple[int, int] = (40, 20), exif: Image.Exif | bytes | None = None) -> bytes:
    buf = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    if exif is None:
        image.save(buf, "JPEG")
    else:
        image.save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def full_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Canon "
    exif[0x0110] = "Canon EOS 5D Mark IV\x00"
    exif[0x0112] = orientation
    exif[0x0132] = "2020:01:01 00:00:00"
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2024:05:01 12:30:45"
    details[0x9011] = "+02:00"
    gps = exif.get_ifd(0x8825)
    gps[1] = "S"
    gps[2] = (IFDRational(33, 1), IFDRational(51, 1), IFDRational(5436, 100))
    gps[3] = "W"
    gps[4] = (IFDRational(151, 1), IFDRational(12, 1), IFDRational(3000, 100))
    return exif


def test_a_jpeg_with_full_exif() -> None:
    assert read_exif(jpeg(exif=full_exif())) == {
        "taken_at": "2024-05-01T12:30:45+02:00",
        "camera": "Canon EOS 5D Mark IV",
        "width": 40,
        "height": 20,
        "gps": {"lat": pytest.approx(-(33 + 51 / 60 + 54.36 / 3600)),
                "lon": pytest.approx(-(151 + 12 / 60 + 30 / 3600))},
    }


def test_gps_north_east_is_positive() -> None:
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (IFDRational(48, 1), IFDRational(30, 1), IFDRational(0, 1)),
                3: "E", 4: (IFDRational(2, 1), IFDRational(15, 1), IFDRational(36, 1))})
    assert read_exif(jpeg(exif=exif))["gps"] == {"lat": 48.5, "lon": pytest.approx(2.26)}


def test_tags_in_ifd0_date_fallback_and_make_without_model() -> None:
    exif = Image.Exif()
    exif[0x010F] = "  NIKON CORPORATION  "
    exif[0x0110] = "NIKON D750"
    exif[0x0132] = "2019:12:31 23:59:59"
    assert read_exif(jpeg(exif=exif)) == {
        "taken_at": "2019-12-31T23:59:59", "camera": "NIKON CORPORATION NIKON D750",
        "width": 40, "height": 20}
    exif = Image.Exif()
    exif[0x9003] = "2021:02:03 04:05:06"  # DateTimeOriginal written into IFD0
    exif[0x010F] = "Fujifilm"
    assert read_exif(jpeg(exif=exif)) == {
        "taken_at": "2021-02-03T04:05:06", "camera": "Fujifilm", "width": 40, "height": 20}


@pytest.mark.parametrize(("orientation", "size"), [
    (1, (40, 20)), (2, (40, 20)), (3, (40, 20)), (4, (40, 20)),
    (5, (20, 40)), (6, (20, 40)), (7, (20, 40)), (8, (20, 40)), (9, (40, 20))])
def test_orientation_swaps_width_and_height_for_5_to_8(orientation: int,
                                                        size: tuple[int, int]) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    info = read_exif(jpeg(exif=exif))
    assert (info["width"], info["height"]) == size


def test_png_without_exif_has_only_its_size() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (7, 9)).save(buf, "PNG")
    assert read_exif(buf.getvalue()) == {"width": 7, "height": 9}


def test_png_with_exif_chunk() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (7, 9)).save(buf, "PNG", exif=full_exif(orientation=8))
    info = read_exif(buf.getvalue())
    assert info["camera"] == "Canon EOS 5D Mark IV"
    assert (info["width"], info["height"]) == (9, 7)


def test_a_jpeg_without_exif() -> None:
    assert read_exif(jpeg()) == {"width": 40, "height": 20}


@pytest.mark.parametrize("cut", [8, 12, 20, 40, 60, 90])
def test_truncated_exif_never_raises(cut: int) -> None:
    whole = full_exif(orientation=6).tobytes()
    info = read_exif(jpeg(exif=b"Exif\x00\x00" + whole[:cut]))
    assert info["width"] in (20, 40)
    assert set(info) <= {"width", "height", "taken_at", "camera", "gps"}


@pytest.mark.parametrize("blob", [
    b"Exif\x00\x00garbage-not-tiff", b"Exif\x00\x00II*\x00\xff\xff\xff\xff",
    b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"])
def test_garbled_exif_gives_the_size_only(blob: bytes) -> None:
    assert read_exif(jpeg(exif=blob)) == {"width": 40, "height": 20}


def test_bad_values_are_left_out() -> None:
    exif = Image.Exif()
    exif[0x0132] = "0000:00:00 00:00:00"
    exif[0x010F] = "   "
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (IFDRational(1, 0), IFDRational(0, 1), IFDRational(0, 1)),
                3: "E", 4: (IFDRational(200, 1), IFDRational(0, 1), IFDRational(0, 1))})
    details = exif.get_ifd(0x8769)
    details[0x9003] = "not a date"
    details[0x9011] = "+99:99"
    assert read_exif(jpeg(exif=exif)) == {"width": 40, "height": 20}


def test_offset_is_dropped_when_malformed() -> None:
    exif = Image.Exif()
    details = exif.get_ifd(0x8769)
    details[0x9003] = "2024:05:01 12:30:45"
    details[0x9011] = "bogus"
    assert read_exif(jpeg(exif=exif))["taken_at"] == "2024-05-01T12:30:45"


def test_headers_only_pixels_are_never_decoded() -> None:
    """A JPEG whose scan data is cut off, and a PNG with a corrupt IDAT: decoding either
    fails, reading their headers does not."""
    data = jpeg(size=(64, 48), exif=full_exif(orientation=6))
    cut = data[: data.index(b"\xff\xda") + 20]  # the start of scan, then 6 bytes of it
    with pytest.raises(OSError):
        Image.open(io.BytesIO(cut)).load()
    info = read_exif(cut)
    assert (info["width"], info["height"], info["camera"]) == (48, 64, "Canon EOS 5D Mark IV")

    buf = io.BytesIO()
    Image.new("RGB", (30, 10), (1, 2, 3)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    idat = png.index(b"IDAT")
    png[idat + 4: idat + 20] = b"\xff" * 16
    with pytest.raises((OSError, SyntaxError)):
        Image.open(io.BytesIO(bytes(png))).load()
    assert read_exif(bytes(png)) == {"width": 30, "height": 10}


@pytest.mark.parametrize("data", [b"", b"not an image", b"\xff\xd8\xff\xe1\x00\x10Exif"])
def test_bytes_that_are_not_an_image_give_nothing(data: bytes) -> None:
    assert read_exif(data) == {}
