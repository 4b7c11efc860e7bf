"""Output PNGs: both metadata chunks, generated names, no overwrite."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.core.records import GeneratedImage, ImageRecord
from limner.core.requests import GenerationRequest
from limner.imaging.png import read_parameters, save_png


def item(seed: int = 7) -> GeneratedImage:
    request = GenerationRequest(prompt="../../etc/passwd a fox", seed=seed)
    record = ImageRecord(request=request, seed=seed, width=8, height=8, model_name="m", limner_version="1")
    return GeneratedImage(image=Image.new("RGB", (8, 8), "red"), record=record)


def test_save_and_read_back(tmp_path: Path) -> None:
    path = save_png(item(), tmp_path / "out")
    assert path.name == "00001-7.png"
    assert path.parent == tmp_path / "out"
    record, a1111 = read_parameters(path)
    assert record == item().record
    assert a1111 is not None
    assert a1111["Seed"] == "7"
    assert a1111["Prompt"] == "../../etc/passwd a fox"


def test_names_count_up_and_never_overwrite(tmp_path: Path) -> None:
    (tmp_path / "00003-1.png").write_bytes(b"keep me")
    first = save_png(item(1), tmp_path)
    second = save_png(item(1), tmp_path)
    assert (first.name, second.name) == ("00004-1.png", "00005-1.png")
    assert (tmp_path / "00003-1.png").read_bytes() == b"keep me"


def test_plain_png_has_no_parameters(tmp_path: Path) -> None:
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_parameters(plain) == (None, None)


def test_non_image_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "x.png"
    bogus.write_text("hello", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="cannot read"):
        read_parameters(bogus)
