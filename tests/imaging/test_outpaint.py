"""Outpainting's canvas and mask: padded to multiples of 8, the original kept, a ramp into the new area."""

from __future__ import annotations

import numpy as np
from PIL import Image

from limner.core.requests import OutpaintSpec
from limner.imaging.outpaint import Padding, outpaint_canvas, padding_for


def test_padding_grows_to_multiples_of_eight_on_the_extended_sides() -> None:
    assert padding_for((36, 40), OutpaintSpec(left=8, top=16)) == Padding(left=12, right=0, top=16, bottom=0)
    assert padding_for((36, 40), OutpaintSpec(right=10)) == Padding(left=0, right=12, top=0, bottom=0)
    assert padding_for((64, 61), OutpaintSpec(left=8)) == Padding(left=8, right=0, top=0, bottom=3)
    padding = padding_for((37, 29), OutpaintSpec(left=5, right=5, top=1, bottom=1))
    width, height = padding.canvas_size((37, 29))
    assert (width % 8, height % 8) == (0, 0)


def test_canvas_keeps_the_original_and_fills_the_new_area_from_its_edges() -> None:
    picture = Image.new("RGB", (16, 16), (200, 30, 30))
    canvas, mask = outpaint_canvas(picture, Padding(left=8, right=8, top=0, bottom=16))
    assert canvas.size == mask.size == (32, 32)
    assert np.array_equal(np.asarray(canvas)[0:16, 8:24], np.asarray(picture))
    assert np.abs(np.asarray(canvas, dtype=np.int16)[28, 0] - (200, 30, 30)).max() <= 2  # stretched edge colour
    values = np.asarray(mask)
    assert (values[0:16, 8:24] == 0).all()  # the original is never painted
    assert values[31, 0] == 255
    assert 0 < values[16, 12] < values[20, 12] < values[31, 12] == 255  # a ramp into the new area
