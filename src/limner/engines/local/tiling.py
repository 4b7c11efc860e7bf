"""Run an image-to-image model tile by tile, so memory stays flat however big the picture is.

Why: an upscaler's activations grow with the picture (a 2048x2048 input through ESRGAN needs many GiB),
and spandrel runs a whole picture at once. Here the picture is cut into overlapping tiles laid out
evenly; each tile's output is weighted by linear ramps across its inner edges, and the weighted sum is
divided by the summed weights, so seams blend whatever the overlaps. Tiles are processed one row (band)
at a time: output rows that no later band touches are final and written to the ``uint8`` result at once,
and the band's buffer shifts up by those rows. Peak memory is the ``uint8`` input and result plus about 1.5
bands of float32 (sums: ``tile * scale * width * scale * 3 * 4`` bytes, weights a third of that) plus one
tile's model activations, whatever the picture's height: 96 MiB for 2048x2048 at x2 in 256 px tiles,
where one whole-picture tile peaks at 584 MiB before the model's activations (which are the bigger part).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

TileModel = Callable[[torch.Tensor], torch.Tensor]
"""(1, 3, h, w) float in [0, 1] -> (1, 3, h * scale, w * scale) float in [0, 1]."""

DEFAULT_TILE = 512
DEFAULT_OVERLAP = 32


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spaced tile starts covering ``length``, neighbours overlapping by at least ``overlap``."""
    if length <= tile:
        return [0]
    count = -(-(length - overlap) // (tile - overlap))  # ceil
    return [round(index * (length - tile) / (count - 1)) for index in range(count)]


def _ramp(start: int, size: int, length: int, scale: int, feather: int) -> np.ndarray:
    """Output-space weights of one tile along one axis: rising over ``feather`` pixels from an edge inside the
    picture, flat at the picture's own borders; never zero, so every pixel has weight."""
    weights = np.ones(size * scale, dtype=np.float32)
    width = min(feather, size * scale)
    if width:
        rising = (np.arange(width, dtype=np.float32) + 0.5) / width
        if start > 0:
            weights[:width] = np.minimum(weights[:width], rising)
        if start + size < length:
            weights[-width:] = np.minimum(weights[-width:], rising[::-1])
    return weights


def run_tiled(
    image: Image.Image,
    model: TileModel,
    scale: int,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """``model`` over ``image`` (RGB) in tiles of ``tile`` input pixels; the result is ``scale`` times larger.

    ``on_tile(done, total)`` is told after each tile (progress; it may raise to stop)."""
    pixels = np.asarray(image.convert("RGB"))
    height, width = pixels.shape[:2]
    if tile < 16 and max(height, width) > tile:
        raise ValueError("tiles must be at least 16 pixels")
    overlap = max(0, min(overlap, tile // 4))  # neighbours of neighbours never overlap
    tile_h, tile_w = min(tile, height), min(tile, width)
    ys, xs = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    ramps_y = [_ramp(y, tile_h, height, scale, overlap * scale) for y in ys]
    ramps_x = [_ramp(x, tile_w, width, scale, overlap * scale) for x in xs]
    result = np.empty((height * scale, width * scale, 3), dtype=np.uint8)
    # Weighted sums of one band's output rows; row 0 is the band's top. Rows the next band overlaps are
    # carried over (shifted up) before it is added.
    total = np.zeros((tile_h * scale, width * scale, 3), dtype=np.float32)
    weight = np.zeros((tile_h * scale, width * scale, 1), dtype=np.float32)
    for row, y in enumerate(ys):
        for column, x in enumerate(xs):
            piece = torch.from_numpy(pixels[y : y + tile_h, x : x + tile_w].copy())
            tensor = piece.permute(2, 0, 1).unsqueeze(0).float().div_(255)
            output = model(tensor)
            if tuple(output.shape[-2:]) != (tile_h * scale, tile_w * scale):
                raise ValueError(f"the model gave {tuple(output.shape[-2:])} for a {tile_h}x{tile_w} tile at x{scale}")
            values = output[0].permute(1, 2, 0).float().cpu().numpy()
            tile_weight = (ramps_y[row][:, None] * ramps_x[column][None, :])[:, :, None]
            columns = slice(x * scale, (x + tile_w) * scale)
            total[:, columns] += values * tile_weight
            weight[:, columns] += tile_weight
            if on_tile is not None:
                on_tile(row * len(xs) + column + 1, len(ys) * len(xs))
        final = ((ys[row + 1] if row + 1 < len(ys) else height) - y) * scale  # rows no later band touches
        done = total[:final]
        np.divide(done, weight[:final], out=done)
        np.multiply(done, 255, out=done)
        np.add(done, 0.5, out=done)
        np.clip(done, 0, 255, out=done)
        result[y * scale : y * scale + final] = done  # truncating cast to uint8: rounded by the 0.5 above
        carried = total.shape[0] - final
        total[:carried], weight[:carried] = total[final:], weight[final:]
        total[carried:], weight[carried:] = 0, 0
    return Image.fromarray(result, "RGB")
