"""PNG encode time and size by zlib level: limner's ``png_bytes`` at each level vs Pillow's default (6).

Why: every job's PNG is encoded between the pipeline and its answer, so the level is latency a user
waits for (``LIMNER_PNG_COMPRESS_LEVEL``, default 1). The levels are run in turn, round after round,
on the same picture, and each level's median time and file size are printed as ratios of level 6's.

The picture: ``--image`` (a photo says most: generated pictures are photo-like), resized to each
``--sides``; without it a synthetic one (smooth colour fields with a fine grain, nothing to download),
whose ratios came out close to two photos' on this project's machine.

    .venv/bin/python benchmarks/png_encode.py [--image photo.jpg] [--sides 512 1024] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from limner.core.records import GeneratedImage, ImageRecord
from limner.core.requests import GenerationRequest
from limner.imaging.png import png_bytes

LEVELS = (1, 3, 6, 9)
PILLOW_DEFAULT = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=None)
    parser.add_argument("--sides", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    for side in args.sides:
        picture = _picture(args.image, side)
        request = GenerationRequest(prompt="a photo")
        record = ImageRecord(request=request, seed=1, width=side, height=side, model_name="m", limner_version="1")
        item = GeneratedImage(image=picture, record=record)
        times: dict[int, list[float]] = {level: [] for level in LEVELS}
        sizes: dict[int, int] = {}
        for round_index in range(args.rounds):
            order = LEVELS if round_index % 2 == 0 else tuple(reversed(LEVELS))
            for level in order:
                started = time.perf_counter()
                sizes[level] = len(png_bytes(item, compress_level=level))
                times[level].append(time.perf_counter() - started)
        base_time, base_size = statistics.median(times[PILLOW_DEFAULT]), sizes[PILLOW_DEFAULT]
        print(f"{side}x{side} {'(' + args.image.name + ')' if args.image else '(synthetic)'}, {args.rounds} rounds")
        for level in LEVELS:
            median = statistics.median(times[level])
            print(f"  level {level}: {1000 * median:7.1f} ms ({median / base_time:.2f}x level 6's), "
                  f"{sizes[level] / 1024:7.1f} KiB ({sizes[level] / base_size:.2f}x)")  # fmt: skip


def _picture(path: Path | None, side: int) -> Image.Image:
    if path is not None:
        with Image.open(path) as source:
            return source.convert("RGB").resize((side, side), Image.Resampling.LANCZOS)
    draw = np.random.default_rng(0)
    fields = Image.fromarray(draw.integers(0, 256, (side // 32, side // 32, 3), dtype=np.uint8))
    smooth = np.asarray(fields.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = draw.integers(-3, 4, (side, side, 3))
    return Image.fromarray(np.clip(smooth + grain, 0, 255).astype(np.uint8))


if __name__ == "__main__":
    main()
