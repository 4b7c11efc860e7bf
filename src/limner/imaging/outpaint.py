"""The canvas and mask of outpainting: the picture padded on its sides, and where to paint.

Why a fill: the inpainting pipeline starts from the canvas's latents (partly noised at strength < 1), so
the new area must hold plausible colour, not black. It gets the picture's edges stretched outwards and
blurred (what A1111 calls "fill"), which continues the picture's colours without copying its detail.
Why this mask: white is the new area, black the picture, with a ramp ``feather`` pixels wide inside the
new area only; the engine composites the output over the canvas with it, so the original pixels come
back exactly while the seam fades from the stretched edge into the painted content.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from limner.core.requests import SIZE_MULTIPLE, OutpaintSpec

DEFAULT_FEATHER = 16


@dataclass(frozen=True)
class Padding:
    """Pixels added on each side; the canvas is the picture's size plus these."""

    left: int
    right: int
    top: int
    bottom: int

    def canvas_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size[0] + self.left + self.right, size[1] + self.top + self.bottom


def padding_for(size: tuple[int, int], spec: OutpaintSpec, multiple: int = SIZE_MULTIPLE) -> Padding:
    """The asked padding, grown (by less than ``multiple`` per axis) so the canvas is a multiple of ``multiple``.

    The extra pixels go to a side the user is already extending (right before left, bottom before top),
    else to the right / bottom.
    """
    width, height = size
    extra_x = -(width + spec.left + spec.right) % multiple
    extra_y = -(height + spec.top + spec.bottom) % multiple
    grow_left = bool(spec.left and not spec.right)
    grow_top = bool(spec.top and not spec.bottom)
    return Padding(
        left=spec.left + (extra_x if grow_left else 0),
        right=spec.right + (0 if grow_left else extra_x),
        top=spec.top + (extra_y if grow_top else 0),
        bottom=spec.bottom + (0 if grow_top else extra_y),
    )


def outpaint_canvas(
    image: Image.Image, padding: Padding, feather: int = DEFAULT_FEATHER
) -> tuple[Image.Image, Image.Image]:
    """The padded canvas (RGB, new area filled) and its mask (L: 255 paint, 0 keep, a ramp between)."""
    picture = np.asarray(image.convert("RGB"))
    height, width = picture.shape[:2]
    pad = ((padding.top, padding.bottom), (padding.left, padding.right), (0, 0))
    stretched = Image.fromarray(np.pad(picture, pad, mode="edge"))
    radius = max(2.0, max(padding.left, padding.right, padding.top, padding.bottom) / 6)
    canvas = stretched.filter(ImageFilter.GaussianBlur(radius))
    canvas.paste(image.convert("RGB"), (padding.left, padding.top))

    canvas_w, canvas_h = padding.canvas_size((width, height))
    xs = np.arange(canvas_w)
    ys = np.arange(canvas_h)
    outside_x = np.maximum(np.maximum(padding.left - xs, xs - (padding.left + width - 1)), 0)
    outside_y = np.maximum(np.maximum(padding.top - ys, ys - (padding.top + height - 1)), 0)
    distance = np.maximum(outside_y[:, None], outside_x[None, :]).astype(np.float32)
    ramp = np.clip(distance / max(1, feather), 0.0, 1.0)
    mask = Image.fromarray(np.round(ramp * 255).astype(np.uint8), "L")
    return canvas, mask
