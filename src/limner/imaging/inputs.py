"""Open an untrusted picture safely: byte cap, format allow-list, pixel cap before decoding.

Why each check: the byte cap bounds memory before Pillow sees the data; the allow-list keeps
exotic decoders (and SVG/HTML/TIFF renamed .png) out; the pixel check reads only the header, so a
tiny file that claims 50,000 x 50,000 pixels is refused before it is decompressed.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from limner.core.errors import ImageTooLargeError, InvalidRequestError, UnsupportedImageFormatError

ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


def open_image_bytes(data: bytes, *, param: str, max_bytes: int, max_pixels: int, mode: str = "RGB") -> Image.Image:
    """Decode ``data`` into a fully loaded image in ``mode``, or raise naming ``param``."""
    if not data:
        raise InvalidRequestError("the image is empty (0 bytes)", param=param)
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"the image is {len(data)} bytes; at most {max_bytes} are accepted", param=param)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    f"the image is {width}x{height} = {width * height} pixels; at most {max_pixels} are accepted",
                    param=param,
                )
            image.load()
    except InvalidRequestError:
        raise
    except UnidentifiedImageError as exc:
        raise UnsupportedImageFormatError(
            "not a PNG, JPEG or WebP image (other formats are not accepted)", param=param
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"the image is too large to decode safely: {exc}", param=param) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidRequestError(f"the image is damaged or truncated ({exc})", param=param) from exc
    return image.convert(mode)


def open_image_file(path: Path, *, param: str, max_bytes: int, max_pixels: int, mode: str = "RGB") -> Image.Image:
    """Read a local picture with the same checks as an upload."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {path}: {exc.strerror or exc}", param=param) from exc
    if not path.is_file():
        raise InvalidRequestError(f"{path} is not a file", param=param)
    if size > max_bytes:
        raise ImageTooLargeError(f"{path.name} is {size} bytes; at most {max_bytes} are accepted", param=param)
    return open_image_bytes(path.read_bytes(), param=param, max_bytes=max_bytes, max_pixels=max_pixels, mode=mode)


def fit_size(width: int, height: int, max_pixels: int, multiple: int = 8) -> tuple[int, int]:
    """The largest size with the same aspect ratio, within ``max_pixels``, in multiples of ``multiple``."""
    scale = min(1.0, (max_pixels / (width * height)) ** 0.5)
    fitted_w = max(multiple, int(width * scale) // multiple * multiple)
    fitted_h = max(multiple, int(height * scale) // multiple * multiple)
    return fitted_w, fitted_h
