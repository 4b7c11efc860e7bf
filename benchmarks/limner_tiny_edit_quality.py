#!/usr/bin/env python3
"""Quality bars of limner-tiny-edit (issue 18): colour edits, subject kept, cartoonize, speed; contact sheet.

Every case is an emoji that training never saw (``limner.training.edit_data.held_out``: about 4%
of emoji by Unicode code, both art styles), taken in dataset order.

- Colour: 50 cases, case i asks "make it <c>" with c the i-th of red/blue/green/yellow/purple,
  moved on to the next word when it names the input's own dominant hue (so no case passes by doing
  nothing). Passes when the output's dominant hue is c. Dominant hue: the benchmark of limner-tiny's
  (HSV, pixels with saturation >= 0.25 and value >= 0.2, most pixels among the named hue ranges).
- Subject kept: the structure similarity of output and input at 16x16 (grayscale, area average):
  SSIM's structure term over the whole picture, i.e. the correlation of the two. Its threshold is
  calibrated on the same cases: the midpoint between the median of the exact edits (the training
  filter applied to the input; a perfect model) and the median of unrelated pairs (the input
  against another held-out emoji recoloured the same way; a model that drew something else).
- Cartoonize: 50 cases of a held-out emoji with the training's photo-like texture; passes when the
  output is closer (mean absolute difference of the 64px pictures) to the cartoon filter's result
  than the input is. A 3x3 Gaussian blur of the input is scored the same way, as a baseline: a
  model that only smooths should not pass this bar.
- Speed: load time, and one 64px edit at the model's defaults after a warm-up (median of 3).

Usage: ``python benchmarks/limner_tiny_edit_quality.py [--model DIR] [--data DIR] [--sheet PNG] [--threads N]``
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image, ImageDraw

from limner.model_defaults import load_model_defaults, pipeline_arguments
from limner.training.data import CaptionedImages
from limner.training.edit_data import COLOUR_HUES, cartoon, held_out, photo_texture, recolour
from limner.weights import LIMNER_TINY_EDIT

WORDS = ("red", "blue", "green", "yellow", "purple")
HUE_RANGES = {  # degrees, [start, end): the ranges of benchmarks/limner_tiny_quality.py
    "red": [(0, 18), (340, 360)],
    "orange": [(18, 40)],
    "yellow": [(40, 75)],
    "green": [(75, 165)],
    "cyan": [(165, 195)],
    "blue": [(195, 255)],
    "purple": [(255, 340)],
}
CASES = 50
SHEET = (
    ("make it blue", False),
    ("turn it red", False),
    ("make it green", False),
    ("make it yellow", False),
    ("flip it", False),
    ("make it a sketch", False),
    ("make it smaller", False),
    ("cartoonize it", True),
)


def dominant_hue(image: np.ndarray) -> str:
    """Name of the hue range holding most saturated, non-dark pixels of an RGB uint8 image."""
    hsv = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)
    keep = (hsv[..., 1] >= 0.25) & (hsv[..., 2] >= 0.2)
    hues = hsv[..., 0][keep]
    counts = {
        name: sum(int(((hues >= lo) & (hues < hi)).sum()) for lo, hi in ranges) for name, ranges in HUE_RANGES.items()
    }
    best = max(counts, key=lambda name: counts[name])
    return best if counts[best] else "none"


def structure(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM's structure term of two RGB pictures at 16x16 grayscale: the correlation of their pixels."""

    def small(image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.resize(gray, (16, 16), interpolation=cv2.INTER_AREA).ravel()

    x, y = small(a), small(b)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (np.sqrt((x * x).sum() * (y * y).sum()) + 1e-6))


def edit(
    pipe: DiffusionPipeline, images: list[np.ndarray], prompts: list[str], defaults: dict[str, object]
) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    for start in range(0, len(images), 10):
        chunk = [Image.fromarray(image) for image in images[start : start + 10]]
        gens = [torch.Generator().manual_seed(start + k) for k in range(len(chunk))]
        result = pipe(prompts[start : start + 10], image=chunk, generator=gens, output_type="np", **defaults)
        out.extend((np.asarray(result.images) * 255).round().astype(np.uint8))
    return out


def contact_sheet(pipe: DiffusionPipeline, images: np.ndarray, defaults: dict[str, object], path: Path) -> None:
    """Rows of (input, output) pairs, 2x, with the instruction under each pair."""
    cells: list[tuple[np.ndarray, str, np.ndarray]] = []
    for row, picture in enumerate(images[:3]):
        for col, (instruction, textured) in enumerate(SHEET):
            source = photo_texture(picture, seed=row * 10 + col) if textured else picture
            output = edit(pipe, [source], [instruction], defaults)[0]
            cells.append((source, instruction, output))
    columns, scale, label = 4, 2, 18
    width, height = 2 * 64 * scale + 12, 64 * scale + label + 8
    rows = (len(cells) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * width, rows * height), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (source, instruction, output) in enumerate(cells):
        x, y = (k % columns) * width, (k // columns) * height
        pair = np.concatenate([source, output], axis=1)
        sheet.paste(
            Image.fromarray(pair).resize((2 * 64 * scale, 64 * scale), Image.Resampling.NEAREST), (x + 4, y + 4)
        )
        draw.text((x + 6, y + 64 * scale + 6), f'"{instruction}"', fill="black")
    sheet.convert("P", palette=Image.Palette.ADAPTIVE, colors=255).save(path, optimize=True)  # small in git


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=LIMNER_TINY_EDIT)
    parser.add_argument("--data", type=Path, default=Path(".cache/emoji-dataset"))
    parser.add_argument("--sheet", type=Path, default=Path("docs/limner-tiny-edit-contact-sheet.png"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--guidance", type=float, default=None, help="Text guidance (default: the model's).")
    parser.add_argument("--image-guidance", type=float, default=1.5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    started = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(str(args.model), use_safetensors=True)
    load_seconds = time.perf_counter() - started
    pipe.set_progress_bar_config(disable=True)
    defaults = pipeline_arguments(load_model_defaults()["limner-tiny-edit"])
    defaults.pop("width", None)
    defaults.pop("height", None)
    if args.guidance is not None:
        defaults["guidance_scale"] = args.guidance
    defaults["image_guidance_scale"] = args.image_guidance

    data = CaptionedImages.load(args.data)
    held = [i for i, record in enumerate(data.records) if held_out(record)]
    images = data.images.numpy()[held]
    print(f"held-out pictures: {len(held)} (of {len(data)}); cases use the first {CASES}")

    # Colour: the asked word differs from the input's own dominant hue.
    sources = images[:CASES]
    words: list[str] = []
    for i, image in enumerate(sources):
        own = dominant_hue(image)
        k = i % len(WORDS)
        while WORDS[k] == own:
            k = (k + 1) % len(WORDS)
        words.append(WORDS[k])
    outputs = edit(pipe, list(sources), [f"make it {w}" for w in words], defaults)
    hits = [dominant_hue(out) == w for out, w in zip(outputs, words, strict=True)]
    per_word = {w: f"{sum(h for h, x in zip(hits, words, strict=True) if x == w)}/{words.count(w)}" for w in WORDS}
    print(f"colour: {sum(hits)}/{CASES} = {sum(hits) / CASES:.0%} moved to the asked hue (bar >= 80%) {per_word}")
    exact = [recolour(image, COLOUR_HUES[w]) for image, w in zip(sources, words, strict=True)]
    filter_hits = sum(dominant_hue(e) == w for e, w in zip(exact, words, strict=True))
    print(f"  the training filter itself: {filter_hits}/{CASES}")

    # Subject kept, with the threshold calibrated on exact edits and unrelated pictures.
    perfect = [structure(s, e) for s, e in zip(sources, exact, strict=True)]
    unrelated = [structure(s, exact[(i + 7) % CASES]) for i, s in enumerate(sources)]
    threshold = (statistics.median(perfect) + statistics.median(unrelated)) / 2
    kept = [structure(s, o) for s, o in zip(sources, outputs, strict=True)]
    kept_rate = sum(k > threshold for k in kept) / CASES
    print(
        f"subject kept: {kept_rate:.0%} of colour edits above the threshold {threshold:.2f} "
        f"(median: model {statistics.median(kept):.2f}, exact edits {statistics.median(perfect):.2f}, "
        f"unrelated pictures {statistics.median(unrelated):.2f})"
    )

    # Cartoonize.
    textured = [photo_texture(image, seed=1000 + i) for i, image in enumerate(images[:CASES])]
    targets = [cartoon(t) for t in textured]
    cartoons = edit(pipe, textured, ["cartoonize it"] * CASES, defaults)

    def distance(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())

    closer = [distance(o, t) < distance(s, t) for o, s, t in zip(cartoons, textured, targets, strict=True)]
    blurred = [cv2.GaussianBlur(s, (3, 3), 0) for s in textured]
    blur_closer = [distance(b, t) < distance(s, t) for b, s, t in zip(blurred, textured, targets, strict=True)]
    print(
        f"cartoonize: {sum(closer)}/{CASES} = {sum(closer) / CASES:.0%} closer to the cartoon filter than the input "
        f"(bar >= 80%; mean distance: output {statistics.mean(map(distance, cartoons, targets)):.1f}, "
        f"input {statistics.mean(map(distance, textured, targets)):.1f}); "
        f"a 3x3 blur of the input: {sum(blur_closer)}/{CASES}"
    )

    # Speed.
    picture = Image.fromarray(images[0])
    pipe("make it blue", image=picture, **defaults)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        pipe("make it blue", image=picture, generator=torch.Generator().manual_seed(0), **defaults)
        times.append(time.perf_counter() - started)
    steps = defaults.get("num_inference_steps")
    print(
        f"speed: one 64px edit {statistics.median(times):.2f} s ({steps} steps, {args.threads} threads; bar < 1 s); "
        f"load {load_seconds:.2f} s"
    )

    args.sheet.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(pipe, images[3:], defaults, args.sheet)
    print(f"contact sheet: {args.sheet}")


if __name__ == "__main__":
    main()
