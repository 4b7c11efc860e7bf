"""Untrusted pictures: byte cap, allow-list, pixel cap before decoding, damaged files."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.imaging.inputs import fit_size, open_image_bytes, open_image_file

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1024 * 1024}


def encoded(fmt: str, size: tuple[int, int] = (32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "orange").save(buffer, format=fmt)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_allowed_formats_open(fmt: str) -> None:
    image = open_image_bytes(encoded(fmt), param="image", **LIMITS)
    assert image.size == (32, 24)
    assert image.mode == "RGB"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (encoded("GIF"), "not a PNG, JPEG or WebP"),
        (encoded("TIFF"), "not a PNG, JPEG or WebP"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not a PNG, JPEG or WebP"),
        (b"<html><body>hi</body></html>", "not a PNG, JPEG or WebP"),
        (encoded("PNG")[:60], "damaged or truncated"),
        (png_claiming(50_000, 50_000), "pixels"),
    ],
)
def test_bad_pictures_are_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequestError, match=fragment) as caught:
        open_image_bytes(data, param="init_image", **LIMITS)
    assert caught.value.param == "init_image"


def test_byte_cap() -> None:
    with pytest.raises(InvalidRequestError, match="bytes"):
        open_image_bytes(encoded("PNG"), param="image", max_bytes=10, max_pixels=10**6)


def test_file_checks(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="cannot read"):
        open_image_file(tmp_path / "missing.png", param="image", **LIMITS)
    with pytest.raises(InvalidRequestError, match="not a file"):
        open_image_file(tmp_path, param="image", **LIMITS)
    good = tmp_path / "ok.jpg"
    good.write_bytes(encoded("JPEG"))
    assert open_image_file(good, param="image", mode="L", **LIMITS).mode == "L"


@pytest.mark.parametrize(
    ("size", "cap", "expected"),
    [
        ((100, 70), 10**6, (96, 64)),
        ((4000, 2000), 1024 * 512, (1024, 512)),
        ((4000, 2000), 1000 * 500, (1000, 496)),
        ((3, 3), 100, (8, 8)),
    ],
)
def test_fit_size(size: tuple[int, int], cap: int, expected: tuple[int, int]) -> None:
    assert fit_size(*size, max_pixels=cap) == expected
