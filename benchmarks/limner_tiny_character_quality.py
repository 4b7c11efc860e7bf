#!/usr/bin/env python3
"""Quality bars of limner-tiny-character (issue 18): does the reference carry the character, does text still act?

Why these measures (the feature space and hue names of ``limner_tiny_quality.py``, so the numbers
compare with limner-tiny's own):

- Category: 100 held-out references (one picture of each emoji neither training stage saw, art
  styles alternating), each generated with the neutral prompt "an emoji" and seed k. The bar: the
  output's nearest *training* image (16x16 RGB, Euclidean) is in the reference's emoji category.
  The same prompts and seeds without the adapter give the rate the prompt alone reaches; chance
  (sum of squared category shares) is printed too, and so is the score of the reference itself (an
  exact copy), the most a picture that redraws the reference can score: a held-out emoji's nearest
  training picture is often of another category; and the score of the reference's own caption as
  the prompt without the adapter (what naming the subject in words gives). Run at the CLI's default
  strength (0.6) and 1.0.
- Colour: with a reference present, "<colour> heart" for red, blue, green, yellow and purple
  (20 held-out references each): the output's dominant hue names the asked colour in how many of
  100. The same prompts without the adapter are printed beside it.
- A contact sheet: reference, no adapter, strength 0.6, strength 1.0, and strength 0.6 with
  "blue heart", for 8 held-out references.

Usage: ``python benchmarks/limner_tiny_character_quality.py [--adapter DIR] [--data DIR] [--sheet PNG]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from limner_tiny_quality import COLOUR_WORDS, dominant_hue, features
from PIL import Image, ImageDraw

from limner.engines.local.ip_adapter import reads_patch_features
from limner.training.character import held_out_split
from limner.training.data import CaptionedImages
from limner.weights import LIMNER_TINY, LIMNER_TINY_CHARACTER, LIMNER_TINY_DEFAULTS

PROMPT = "an emoji"
STRENGTHS = (0.6, 1.0)
COLOUR_REFERENCES = 20


def references(data: CaptionedImages, adapter: Path) -> tuple[list[int], list[int]]:
    """``(train, refs)``: the adapter's training images and one picture per held-out subject."""
    settings = json.loads((adapter / "training.json").read_text(encoding="utf-8"))["settings"]
    train, held_out = held_out_split(data.records, int(settings["held_out"]), int(settings["seed"]))
    by_subject: dict[str, list[int]] = {}
    for i in held_out:
        by_subject.setdefault(str(data.records[i].get("unified")), []).append(i)
    refs = [group[k % len(group)] for k, group in enumerate(by_subject.values())]
    return train, refs


def embeds_for(pipe: Any, pictures: list[Image.Image]) -> torch.Tensor:
    """``ip_adapter_image_embeds`` for one reference per prompt: the unconditional ones first, then the pictures."""
    with torch.inference_mode():
        positive, negative = pipe.encode_image(pictures, pipe.device, 1, reads_patch_features(pipe))
    return torch.cat([negative[:, None], positive[:, None]])


def generate(
    pipe: Any, prompts: list[str], seeds: list[int], pictures: list[Image.Image] | None, batch: int = 25
) -> np.ndarray:
    out: list[np.ndarray] = []
    for start in range(0, len(prompts), batch):
        gens = [torch.Generator().manual_seed(s) for s in seeds[start : start + batch]]
        extra: dict[str, Any] = {}
        if pictures is not None:
            extra["ip_adapter_image_embeds"] = [embeds_for(pipe, pictures[start : start + batch])]
        result = pipe(prompts[start : start + batch], generator=gens, output_type="np", **LIMNER_TINY_DEFAULTS, **extra)
        out.append((result.images * 255).round().astype(np.uint8))
    return np.concatenate(out)


def category_rate(images: np.ndarray, refs: list[int], train: list[int], data: CaptionedImages) -> float:
    categories = [r["category"] for r in data.records]
    train_feats = features(data.images[train].numpy())
    nearest = torch.cdist(features(images), train_feats).argmin(1)
    hits = [categories[train[int(j)]] == categories[i] for j, i in zip(nearest, refs, strict=True)]
    return float(np.mean(hits))


def contact_sheet(columns: list[tuple[str, np.ndarray]], path: Path, tile: int = 96) -> None:
    label_h = 20
    rows = len(columns[0][1])
    sheet = Image.new("RGB", (len(columns) * tile, label_h + rows * tile), "white")
    draw = ImageDraw.Draw(sheet)
    for c, (label, images) in enumerate(columns):
        draw.text((c * tile + 4, 4), label, fill="black")
        for r, image in enumerate(images):
            picture = Image.fromarray(image).resize((tile, tile), Image.Resampling.NEAREST)
            sheet.paste(picture, (c * tile, label_h + r * tile))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=LIMNER_TINY)
    parser.add_argument("--adapter", type=Path, default=LIMNER_TINY_CHARACTER)
    parser.add_argument("--data", type=Path, default=Path(".cache/emoji-dataset"))
    parser.add_argument("--sheet", type=Path, default=Path("docs/limner-tiny-character-contact-sheet.png"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    data = CaptionedImages.load(args.data)
    train, refs = references(data, args.adapter)
    pictures = [Image.fromarray(data.images[i].numpy()) for i in refs]
    categories = [data.records[i]["category"] for i in train]
    chance = sum((n / len(categories)) ** 2 for n in Counter(categories).values())

    pipe = DiffusionPipeline.from_pretrained(str(args.model), use_safetensors=True)
    pipe.set_progress_bar_config(disable=True)
    seeds = list(range(len(refs)))
    colour_prompts = [f"{word} heart" for word in COLOUR_WORDS for _ in range(COLOUR_REFERENCES)]
    colour_refs = pictures[:COLOUR_REFERENCES] * len(COLOUR_WORDS)
    colour_seeds = list(range(len(colour_prompts)))
    plain = generate(pipe, [PROMPT] * len(refs), seeds, None)
    captioned = generate(pipe, [data.captions[i][0] for i in refs], seeds, None)
    plain_colour = generate(pipe, colour_prompts, colour_seeds, None)

    pipe.load_ip_adapter(str(args.adapter), subfolder="", weight_name="ip-adapter.safetensors")
    results: dict[str, Any] = {"references": len(refs), "prompt": PROMPT, "chance": chance}
    results["category_without_adapter"] = category_rate(plain, refs, train, data)
    reference_pixels = np.stack([np.asarray(picture) for picture in pictures])
    results["category_of_an_exact_copy"] = category_rate(reference_pixels, refs, train, data)
    results["category_with_own_caption"] = category_rate(captioned, refs, train, data)
    outputs: dict[float, np.ndarray] = {}
    for strength in STRENGTHS:
        pipe.set_ip_adapter_scale(strength)
        outputs[strength] = generate(pipe, [PROMPT] * len(refs), seeds, pictures)
        results[f"category_strength_{strength}"] = category_rate(outputs[strength], refs, train, data)
    pipe.set_ip_adapter_scale(STRENGTHS[0])
    coloured = generate(pipe, colour_prompts, colour_seeds, colour_refs)
    words = [p.split()[0] for p in colour_prompts]
    results["colour_with_reference"] = sum(dominant_hue(im) == w for im, w in zip(coloured, words, strict=True))
    results["colour_without_adapter"] = sum(dominant_hue(im) == w for im, w in zip(plain_colour, words, strict=True))
    results["colour_cases"] = len(colour_prompts)

    print(f"held-out references: {len(refs)}, prompt {PROMPT!r}, seeds 0-{len(refs) - 1}")
    print(
        f"category of nearest training image: without adapter {results['category_without_adapter']:.0%}, "
        + ", ".join(f"strength {s}: {results[f'category_strength_{s}']:.0%}" for s in STRENGTHS)
        + f" (bar >= 60%, chance {chance:.0%})"
    )
    print(
        f"  calibration: the reference itself {results['category_of_an_exact_copy']:.0%}; its own caption as "
        f"the prompt, no adapter, {results['category_with_own_caption']:.0%}"
    )
    print(
        f"colour word with a reference (strength {STRENGTHS[0]}): {results['colour_with_reference']}/"
        f"{len(colour_prompts)} (without adapter {results['colour_without_adapter']}/{len(colour_prompts)})"
    )

    show = slice(0, 8)
    pipe.set_ip_adapter_scale(STRENGTHS[0])
    blue = generate(pipe, ["blue heart"] * 8, seeds[show], pictures[show])
    columns = [
        ("reference", np.stack([np.asarray(p) for p in pictures[show]])),
        ("no adapter", plain[show]),
        ("0.6", outputs[0.6][show]),
        ("1.0", outputs[1.0][show]),
        ("blue heart", blue),
    ]
    contact_sheet(columns, args.sheet)
    results["seconds"] = time.perf_counter() - started
    print(f"contact sheet: {args.sheet} ({results['seconds']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
