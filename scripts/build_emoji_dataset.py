#!/usr/bin/env python3
"""Rebuild the limner-tiny training set (64x64 emoji + captions) from pinned npm packages.

Why a script: the shipped model must be reproducible offline from public, licensed data. The npm
registry is reachable from every limner machine, so the data comes from three pinned packages:

- ``emoji-datasource-twitter`` (Twemoji art, CC-BY 4.0) and ``emoji-datasource-google`` (Noto art,
  Apache-2.0): 64x64 PNGs under ``img/<vendor>/64/`` plus ``emoji.json`` (names, categories).
- ``emojilib`` (MIT): common (CLDR-style) names and keywords per emoji. Its first keyword is the
  common name; Unicode names can mislead (U+2764 is "heavy black heart" but is drawn red).

Output (default ``.cache/emoji-dataset/``, git-ignored):

- ``images.npz``: ``images`` uint8 [N, 64, 64, 3], transparent art composited onto white.
- ``captions.jsonl``: one record per image, in the same order: ``caption`` (canonical),
  ``captions`` (training variants, short and long, so short prompts like "red heart" work too),
  ``name``, ``keywords``, ``style``, ``category``, ``unified``.
- ``LICENSES.md``: the licences and the attribution the art requires.

Usage: ``python scripts/build_emoji_dataset.py [--out .cache/emoji-dataset] [--skin-tones]``
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

PACKAGES = {
    "twitter": "emoji-datasource-twitter@16.0.0",
    "google": "emoji-datasource-google@16.0.0",
    "emojilib": "emojilib@4.0.3",
}
STYLE_WORDS = {"twitter": "twemoji", "google": "noto"}
CATEGORIES = {
    "Smileys & Emotion": "smileys",
    "People & Body": "people",
    "Animals & Nature": "animals",
    "Food & Drink": "food",
    "Travel & Places": "travel",
    "Activities": "activities",
    "Objects": "objects",
    "Symbols": "symbols",
    "Flags": "flags",
}
MAX_KEYWORDS = 3
SIZE = 64


def npm_pack(spec: str, cache: Path) -> Path:
    """Fetch one pinned package tarball with ``npm pack`` (kept in ``cache`` for re-runs)."""
    cache.mkdir(parents=True, exist_ok=True)
    name, version = spec.rsplit("@", 1)
    tarball = cache / f"{name}-{version}.tgz"
    if not tarball.exists():
        subprocess.run(["npm", "pack", spec, "--silent"], cwd=cache, check=True, capture_output=True)
    return tarball


def unified_to_char(unified: str) -> str:
    return "".join(chr(int(part, 16)) for part in unified.split("-"))


def clean_words(text: str) -> str:
    """Turn a keyword like ``red_heart`` or ``flag-eg`` into plain lowercase words."""
    text = text.replace("_", " ").replace("-", " ").lower()
    return re.sub(r"\s+", " ", text).strip()


def common_name(entry: dict[str, Any], emojilib: dict[str, list[str]]) -> tuple[str, list[str]]:
    """Return the common name and extra keywords: emojilib's first keyword, else the Unicode name.

    Why: emojilib's first keyword is the CLDR short name people type ("red heart"); the Unicode
    name is a fallback for emoji emojilib does not list.
    """
    keys = [entry["unified"], entry.get("non_qualified") or ""]
    words: list[str] | None = None
    for key in keys:
        if not key:
            continue
        char = unified_to_char(key)
        words = emojilib.get(char) or emojilib.get(char + "\ufe0f") or emojilib.get(char.replace("\ufe0f", ""))
        if words:
            break
    unicode_name = clean_words(entry.get("name") or entry["short_name"])
    if not words:
        return unicode_name, []
    name = clean_words(words[0])
    keywords: list[str] = []
    for word in words[1:]:
        word = clean_words(word)
        if not re.fullmatch(r"[a-z][a-z ]*", word) or word in name or word in keywords:
            continue
        keywords.append(word)
    return name, keywords


def caption_variants(name: str, keywords: list[str], style: str) -> list[str]:
    """Several phrasings of one image, canonical first; short ones teach short prompts."""
    kws = keywords[:MAX_KEYWORDS]
    long_tail = ", ".join([name, *kws])
    variants = [
        f"an emoji of {long_tail}, {style} style",
        f"an emoji of {name}, {style} style",
        f"an emoji of {name}",
        f"an emoji of a {name}",
        f"{name}, {style} style",
        name,
        f"an emoji of {long_tail}",
    ]
    return list(dict.fromkeys(variants))


def load_json_member(tarball: Path, member: str) -> Any:
    with tarfile.open(tarball) as tar:
        handle = tar.extractfile(member)
        assert handle is not None
        return json.load(handle)


def composite(png: bytes, background: tuple[int, int, int]) -> np.ndarray:
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", image.size, (*background, 255))
    canvas.alpha_composite(image)
    return np.asarray(canvas.convert("RGB"), dtype=np.uint8)


def build(out: Path, cache: Path, skin_tones: bool) -> None:
    tarballs = {key: npm_pack(spec, cache) for key, spec in PACKAGES.items()}
    emojilib = load_json_member(tarballs["emojilib"], "package/dist/emoji-en-US.json")
    images: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    for vendor in ("twitter", "google"):
        entries = load_json_member(tarballs[vendor], "package/emoji.json")
        style = STYLE_WORDS[vendor]
        with tarfile.open(tarballs[vendor]) as tar:
            members = {m.name: m for m in tar.getmembers() if m.name.startswith(f"package/img/{vendor}/64/")}
            for entry in sorted(entries, key=lambda e: e["sort_order"]):
                category = CATEGORIES.get(entry["category"])
                if category is None or not entry.get(f"has_img_{vendor}"):
                    continue
                name, keywords = common_name(entry, emojilib)
                todo = [(entry["image"], entry["unified"], "")]
                if skin_tones:
                    for tone, variant in (entry.get("skin_variations") or {}).items():
                        if variant.get(f"has_img_{vendor}") and "-" not in tone:
                            todo.append((variant["image"], variant["unified"], " skin tone " + tone))
                for image_name, unified, suffix in todo:
                    member = members.get(f"package/img/{vendor}/64/{image_name}")
                    if member is None:
                        continue
                    handle = tar.extractfile(member)
                    assert handle is not None
                    images.append(composite(handle.read(), (255, 255, 255)))
                    variants = caption_variants(name + suffix, keywords, style)
                    records.append(
                        {
                            "caption": variants[0],
                            "captions": variants,
                            "name": name + suffix,
                            "keywords": keywords[:MAX_KEYWORDS],
                            "style": style,
                            "category": category,
                            "unified": unified,
                        }
                    )
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "images.npz", images=np.stack(images))
    with (out / "captions.jsonl").open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    (out / "LICENSES.md").write_text(ATTRIBUTION, encoding="utf-8")
    print(f"wrote {len(records)} images to {out}")


ATTRIBUTION = """# Data licences

- Twemoji graphics (package emoji-datasource-twitter 16.0.0): Copyright Twitter, Inc and other
  contributors, licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/).
- Noto Emoji graphics (package emoji-datasource-google 16.0.0): Copyright Google Inc., licensed under
  the Apache License 2.0.
- emoji-datasource metadata (emoji.json): Copyright (c) 2013 Cal Henderson, MIT licence.
- emojilib 4.0.3 keywords: Copyright (c) Mu-An Chiou, MIT licence.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(".cache/emoji-dataset"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/npm"))
    parser.add_argument("--skin-tones", action="store_true", help="also add the 5 single skin-tone variants")
    args = parser.parse_args()
    build(args.out, args.cache, args.skin_tones)


if __name__ == "__main__":
    main()
