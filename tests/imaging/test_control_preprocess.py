"""The built-in control preprocessors: edges where the picture has them, sizes, and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from limner.core.errors import InvalidRequestError
from limner.core.requests import ControlSpec, ControlType
from limner.imaging.control_preprocess import edge_overlap, preprocess


def spec(kind: str, **fields: object) -> ControlSpec:
    return ControlSpec.model_validate({"image": "c.png", "type": kind, **fields})


def shapes(size: int = 96) -> Image.Image:
    picture = Image.new("RGB", (size, size), (230, 230, 230))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((size // 6, size // 6, size // 2, size // 2), fill=(20, 20, 20))
    draw.ellipse((size // 2, size // 2, size - 8, size - 8), fill=(200, 40, 40))
    return picture


def gray(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("L"))


def test_canny_finds_the_outlines_and_nothing_else() -> None:
    edges = gray(preprocess(shapes(), spec("canny")))
    assert set(np.unique(edges)) <= {0, 255}
    assert edges[16, 16:48].max() == 255  # the square's top side
    assert edges[30, 24:40].max() == 0  # inside the square
    assert edges[4:12, 60:90].max() == 0  # empty background


def test_canny_thresholds_matter() -> None:
    soft = Image.new("RGB", (64, 64), (120, 120, 120))
    soft.paste((160, 160, 160), (16, 16, 48, 48))  # a faint square: contrast 40
    assert gray(preprocess(soft, spec("canny", canny_low=10, canny_high=30))).max() == 255
    assert gray(preprocess(soft, spec("canny", canny_low=200, canny_high=250))).max() == 0


def test_scribble_is_thicker_than_lineart() -> None:
    scribble = gray(preprocess(shapes(), spec("scribble")))
    lines = gray(preprocess(shapes(), spec("lineart")))
    assert lines.max() == 255
    assert scribble.max() == 255
    assert (scribble > 0).sum() > 2 * (lines > 0).sum()


def test_resized_to_the_output_size_first() -> None:
    out = preprocess(shapes(96), spec("canny"), size=(48, 32))
    assert out.size == (48, 32)
    assert out.mode == "RGB"
    ready = preprocess(shapes(96), spec("none"), size=(64, 64))
    assert ready.size == (64, 64)
    assert (
        np.abs(gray(ready).astype(int) - gray(shapes(96).resize((64, 64), Image.Resampling.LANCZOS)).astype(int)).max()
        <= 1
    )


def test_depth_uses_the_estimator_and_spans_the_range() -> None:
    def estimator(picture: Image.Image) -> Image.Image:
        ramp = np.tile(np.linspace(3.0, 7.0, 24, dtype=np.float32), (24, 1))  # a smaller map than the picture
        return Image.fromarray(ramp)

    depth = gray(preprocess(shapes(48), spec("depth"), depth=estimator))
    assert depth.shape == (48, 48)
    assert depth[:, 0].max() <= 5
    assert depth[:, -1].min() >= 250


def test_refusals_say_what_to_do() -> None:
    with pytest.raises(InvalidRequestError, match="LIMNER_DEPTH_MODEL"):
        preprocess(shapes(), spec("depth"))
    with pytest.raises(InvalidRequestError, match="type none"):
        preprocess(shapes(), spec(ControlType.POSE.value))


def test_edge_overlap() -> None:
    picture = shapes()
    control = gray(preprocess(picture, spec("canny")))
    assert edge_overlap(picture, control) == 1.0
    assert edge_overlap(Image.new("RGB", (96, 96), "white"), control) == 0.0
    shifted = Image.new("RGB", (96, 96), (230, 230, 230))
    shifted.paste(picture.crop((0, 0, 80, 80)), (16, 16))
    assert 0.0 < edge_overlap(shifted, control) < 0.9
