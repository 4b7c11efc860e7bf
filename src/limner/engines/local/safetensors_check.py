"""Check that a ``.safetensors`` file really is one, reading only its header.

Why: a pickle renamed ``.safetensors`` would be refused by the safetensors library anyway, but
with an obscure error; and a hostile header length could make a naive reader allocate gigabytes.
Here we read 8 bytes, bound the header, parse it, and check every tensor lies inside the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from limner.core.errors import UnsafeModelFormatError

MAX_HEADER_BYTES = 100 * 1024 * 1024
_PICKLE_PROTOCOL_MARKERS = {b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"}
_ZIP_MAGIC = b"PK\x03\x04"


def check_safetensors_file(path: Path) -> dict[str, object]:
    """Validate ``path`` and return its header (tensor name -> dtype/shape/offsets).

    Raises :class:`UnsafeModelFormatError` naming what is wrong with the file.
    """
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise UnsafeModelFormatError(f"{path.name} is too short to be a safetensors file ({size} bytes)")
        if prefix[:2] in _PICKLE_PROTOCOL_MARKERS or prefix[:4] == _ZIP_MAGIC:
            raise UnsafeModelFormatError(
                f"{path.name} is a pickle/PyTorch checkpoint named .safetensors; pickles can run code "
                "when loaded and are refused. Convert it to real safetensors first."
            )
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > MAX_HEADER_BYTES or 8 + header_length > size:
            raise UnsafeModelFormatError(
                f"{path.name} is not a valid safetensors file: header length {header_length} does not fit "
                f"a {size}-byte file"
            )
        raw_header = handle.read(header_length)
    try:
        header = json.loads(raw_header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnsafeModelFormatError(f"{path.name} is not a valid safetensors file: unreadable header") from exc
    if not isinstance(header, dict):
        raise UnsafeModelFormatError(f"{path.name} is not a valid safetensors file: header is not a table")
    data_size = size - 8 - header_length
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(value, int) for value in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_size
        ):
            raise UnsafeModelFormatError(
                f"{path.name} is not a valid safetensors file: tensor {name!r} points outside the file"
            )
    return header
