#!/usr/bin/env python3
"""Quality bars of limner-tiny (issue 3): colour, category, retrieval, speed; plus a contact sheet.

Why these measures: a 64px emoji model has no standard benchmark, so each bar checks one thing
a person would check, with numbers that are cheap to compute on 2 CPU cores:

- Colour: "red heart" ... "purple heart" -> the dominant saturated hue of the output (HSV, pixels
  with saturation >= 0.25 and value >= 0.2, hue histogram over named ranges) names the same colour.
  The bar is seed 0; the same prompts over seeds 0-7 are printed too, since one seed can pass or
  fail by the luck of its starting noise.
- Feature space for nearest neighbours: each image downsampled to 16x16 RGB (area average,
  values 0..1, flattened to 768 numbers), Euclidean distance; the training images are the
  ``.cache/emoji-dataset`` set the model was trained on.
- Category: for 100 random training captions (fixed seeds), the nearest training image of the
  generated image is in the caption's emoji category; chance (sum of squared category shares) is
  printed beside it.
- Retrieval: for 200 random captions, one of the 10 nearest training images is the captioned emoji
  (in either art style: 1,906 emoji, so chance is about 0.5% and 10x chance about 5%).
- Speed: pipeline load time, and one 64px image at the default settings after load (median of 3).

Usage: ``python benchmarks/limner_tiny_quality.py [--model DIR] [--data DIR] [--sheet PNG]``
"""

from __future__ import annotations

import argparse
import colorsys
import json
import random
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from diffusers import DiffusionPipeline
from PIL import Image, ImageDraw

from limner.training.data import CaptionedImages
from limner.weights import LIMNER_TINY, LIMNER_TINY_DEFAULTS

COLOUR_WORDS = ("red", "blue", "green", "yellow", "purple")
COLOUR_SEEDS = 8  # the colour bar is seed 0; the same prompts over more seeds show how robust it is
HUE_RANGES = {  # degrees, [start, end)
    "red": [(0, 18), (340, 360)],
    "orange": [(18, 40)],
    "yellow": [(40, 75)],
    "green": [(75, 165)],
    "cyan": [(165, 195)],
    "blue": [(195, 255)],
    "purple": [(255, 340)],
}
SHEET_PROMPTS = (
    "red heart",
    "blue heart",
    "green heart",
    "yellow heart",
    "purple heart",
    "an emoji of a red apple",
    "an emoji of dog face",
    "an emoji of cat face",
    "an emoji of grinning face",
    "an emoji of pizza",
    "an emoji of rocket",
    "an emoji of sun",
    "an emoji of flag japan",
    "an emoji of soccer ball",
    "an emoji of blue circle",
    "an emoji of christmas tree",
)


def dominant_hue(image: np.ndarray) -> str:
    """Name of the hue range holding most saturated, non-dark pixels of an RGB uint8 image."""
    counts: Counter[str] = Counter()
    for r, g, b in image.reshape(-1, 3) / 255.0:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        if s < 0.25 or v < 0.2:
            continue
        degrees = h * 360.0
        for name, ranges in HUE_RANGES.items():
            if any(lo <= degrees < hi for lo, hi in ranges):
                counts[name] += 1
    return counts.most_common(1)[0][0] if counts else "none"


def features(images: np.ndarray) -> torch.Tensor:
    """16x16 RGB (area average, 0..1), flattened: the documented nearest-neighbour feature space."""
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    return F.adaptive_avg_pool2d(pixels, 16).flatten(1)


def generate(pipe: DiffusionPipeline, prompts: list[str], seeds: list[int], batch: int = 25) -> np.ndarray:
    out: list[np.ndarray] = []
    for start in range(0, len(prompts), batch):
        gens = [torch.Generator().manual_seed(s) for s in seeds[start : start + batch]]
        result = pipe(prompts[start : start + batch], generator=gens, output_type="np", **LIMNER_TINY_DEFAULTS)
        out.append((result.images * 255).round().astype(np.uint8))
    return np.concatenate(out)


def contact_sheet(pipe: DiffusionPipeline, path: Path, tile: int = 128) -> None:
    images = generate(pipe, list(SHEET_PROMPTS), [0] * len(SHEET_PROMPTS))
    label_h = 28
    sheet = Image.new("RGB", (4 * tile, 4 * (tile + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (prompt, image) in enumerate(zip(SHEET_PROMPTS, images, strict=True)):
        x, y = (i % 4) * tile, (i // 4) * (tile + label_h)
        sheet.paste(Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST), (x, y))
        text = prompt.removeprefix("an emoji of ")
        draw.text((x + 4, y + tile + 6), text[:22], fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=LIMNER_TINY)
    parser.add_argument("--data", type=Path, default=Path(".cache/emoji-dataset"))
    parser.add_argument("--sheet", type=Path, default=Path("docs/limner-tiny-contact-sheet.png"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict[str, object] = {"settings": LIMNER_TINY_DEFAULTS}

    started = time.perf_counter()
    pipe = DiffusionPipeline.from_pretrained(str(args.model), use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    results["load_s"] = time.perf_counter() - started
    timings = []
    for seed in range(4):
        started = time.perf_counter()
        pipe("red heart", generator=torch.Generator().manual_seed(seed), **LIMNER_TINY_DEFAULTS)
        timings.append(time.perf_counter() - started)
    results["image_s"] = statistics.median(timings[1:])
    print(
        f"speed: load {results['load_s']:.2f} s (bar < 2 s), one 64px image {results['image_s']:.2f} s "
        f"at {LIMNER_TINY_DEFAULTS['num_inference_steps']} steps (bar < 1 s)"
    )

    # One pass over seeds 0-7, prompt-major: the seed-0 bar is each prompt's first image.
    prompts = [f"{word} heart" for word in COLOUR_WORDS]
    seeds = list(range(COLOUR_SEEDS))
    per_seed = generate(pipe, [p for p in prompts for _ in seeds], seeds * len(prompts))
    hues_by_word = [
        [dominant_hue(img) for img in per_seed[i : i + COLOUR_SEEDS]] for i in range(0, len(per_seed), COLOUR_SEEDS)
    ]
    hues = [word_hues[0] for word_hues in hues_by_word]
    hits = sum(h == w for h, w in zip(hues, COLOUR_WORDS, strict=True))
    results["colour"] = {"hits": hits, "hues": dict(zip(prompts, hues, strict=True))}
    print(f"colour: {hits}/5 (bar 5/5) {results['colour']['hues']}")
    spread = sum(h == w for word_hues, w in zip(hues_by_word, COLOUR_WORDS, strict=True) for h in word_hues)
    results["colour_over_seeds"] = {"hits": spread, "of": len(per_seed)}
    print(f"colour over seeds 0-{COLOUR_SEEDS - 1}: {spread}/{len(per_seed)} (the word, not the seed, sets it)")

    data = CaptionedImages.load(args.data)
    train_feats = features(data.images.numpy())
    categories = [r["category"] for r in data.records]
    shares = Counter(categories)
    chance = sum((n / len(categories)) ** 2 for n in shares.values())
    majority = max(shares.values()) / len(categories)
    rng = random.Random(0)
    picks = rng.sample(range(len(data)), 200)
    captions = [data.records[i]["caption"] for i in picks]
    images = generate(pipe, captions, list(range(200)))
    dists = torch.cdist(features(images), train_feats)
    nearest = dists.topk(10, largest=False).indices
    cat_hits = [categories[int(nearest[k, 0])] == categories[i] for k, i in enumerate(picks[:100])]
    ret_hits = [
        any(data.records[int(j)]["unified"] == data.records[i]["unified"] for j in nearest[k])
        for k, i in enumerate(picks)
    ]
    results["category"] = {"accuracy": float(np.mean(cat_hits)), "chance": chance, "majority": majority}
    retrieval_chance = 10 / len({r["unified"] for r in data.records})
    results["retrieval_top10"] = {"accuracy": float(np.mean(ret_hits)), "chance": retrieval_chance}
    print(
        f"category: {np.mean(cat_hits):.0%} of 100 (bar >= 50%, chance {chance:.0%}, "
        f"always-the-largest-category {majority:.0%})"
    )
    print(f"retrieval top-10: {np.mean(ret_hits):.1%} of 200 (bar >= 5%, chance {retrieval_chance:.1%})")

    contact_sheet(pipe, args.sheet)
    print(f"contact sheet: {args.sheet}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
