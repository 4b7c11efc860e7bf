"""Instruction-edit triplets (input image, instruction, edited image) built offline from the emoji set.

Why classical edits: InstructPix2Pix learns from before/after pairs with the instruction that links
them; its paper makes them with a language model and Prompt-to-Prompt, which no 2-core CPU can run.
Here every pair comes from an exact image operation whose result a benchmark can check again:

- colour ("make it blue"): the subject's pixels (everything not near-white) get the asked hue, with
  a saturation floor so grey subjects take the colour too; the white background is left as it is;
- "flip it": a mirror image;
- "make it a sketch": black outlines (Canny edges plus the silhouette) on white;
- "cartoonize it": a classical cartoon filter (bilateral smoothing, colour quantisation to a few
  levels per channel, bold adaptive-threshold edges), applied to the emoji after giving it a
  photo-like texture (shading, noise, softness), so that cartoonizing changes something;
- "make it bigger/smaller": a rescale about the centre on white.

Each edit has several phrasings. A fixed set of emoji (chosen by a hash of their Unicode code, so
both art styles of one emoji go together) is held out: :func:`held_out` marks them, the triplet
builder never uses them, and the benchmark edits only them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

COLOUR_HUES = {"red": 0.0, "orange": 28.0, "yellow": 55.0, "green": 120.0, "blue": 225.0, "purple": 285.0}
"""Target hue (degrees) of each colour word; each lies inside the benchmark's range for that word."""

COLOUR_PHRASES = (
    "make it {c}",
    "turn it {c}",
    "change the color to {c}",
    "change the colour to {c}",
    "paint it {c}",
    "make it {c} colored",
)
PHRASES = {
    "flip": ("flip it", "mirror it", "flip it horizontally", "mirror the image"),
    "sketch": ("make it a sketch", "turn it into a sketch", "make it a line drawing", "draw it as outlines"),
    "cartoon": (
        "cartoonize it",
        "make it a cartoon",
        "turn it into a cartoon",
        "cartoonize the following image",
    ),
    "bigger": ("make it bigger", "enlarge it", "zoom in", "make it larger"),
    "smaller": ("make it smaller", "shrink it", "zoom out", "make it tiny"),
}
BIGGER, SMALLER = 1.4, 0.7
HELD_OUT_PER_MILLE = 40
"""About 4% of emoji (by Unicode code) are never trained on: the benchmark's cases."""
WHITE_THRESHOLD = 235


def held_out(record: dict[str, Any]) -> bool:
    """Whether the emoji of this dataset record belongs to the fixed benchmark set (never trained on)."""
    key = str(record.get("unified") or record.get("name") or record["caption"])
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 1000 < HELD_OUT_PER_MILLE


def foreground_weight(image: np.ndarray) -> np.ndarray:
    """0 on the white background, 1 on the subject, soft in between (float32 HxW)."""
    darkest = image.min(axis=-1).astype(np.float32)
    return np.clip((WHITE_THRESHOLD + 10 - darkest) / 30.0, 0.0, 1.0)


def recolour(image: np.ndarray, hue: float) -> np.ndarray:
    """The subject turned to ``hue`` (degrees): hue replaced, saturation at least 0.65, brightness kept."""
    rgb = image.astype(np.float32) / 255.0
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = hue % 360.0
    hsv[..., 1] = np.maximum(hsv[..., 1], 0.65)
    hsv[..., 2] = np.maximum(hsv[..., 2], 0.25)
    coloured = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    weight = foreground_weight(image)[..., None]
    out = weight * coloured + (1.0 - weight) * rgb
    return np.asarray(np.clip(out * 255.0 + 0.5, 0, 255), dtype=np.uint8)


def flip(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def sketch(image: np.ndarray) -> np.ndarray:
    """Black outlines on white: edges of the picture and of the subject's silhouette."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(cv2.GaussianBlur(gray, (3, 3), 0), 60, 140) > 0
    mask = (foreground_weight(image) > 0.5).astype(np.uint8)
    outline = cv2.morphologyEx(mask, cv2.MORPH_GRADIENT, np.ones((2, 2), np.uint8)) > 0
    lines = edges | outline
    out = np.full_like(image, 255)
    out[lines] = 0
    return out


def photo_texture(image: np.ndarray, seed: int) -> np.ndarray:
    """A flat emoji made photo-like: soft, shaded by a light from one side, with sensor-like noise."""
    rng = np.random.default_rng(seed)
    rgb = cv2.GaussianBlur(image.astype(np.float32), (3, 3), 0.8)
    h, w = image.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = ((xx - w / 2) * np.cos(angle) + (yy - h / 2) * np.sin(angle)) / max(h, w)
    shade = 1.0 + 0.35 * ramp * foreground_weight(image)
    noisy = rgb * shade[..., None] + rng.normal(0.0, 10.0, size=rgb.shape)
    return np.asarray(np.clip(noisy + 0.5, 0, 255), dtype=np.uint8)


def cartoon(image: np.ndarray, levels: int = 4) -> np.ndarray:
    """Classical cartoon filter: bilateral smoothing, ``levels`` values per channel, bold dark edges."""
    smooth = image
    for _ in range(2):
        smooth = cv2.bilateralFilter(smooth, 5, 60, 5)
    step = 255.0 / (levels - 1)
    quantised = np.asarray(np.round(smooth.astype(np.float32) / step) * step, dtype=np.uint8)
    gray = cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), 5)
    light = cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY, 9, 8)
    bold = cv2.erode(light, np.ones((2, 2), np.uint8)) > 0
    out = quantised.copy()
    out[~bold] = 0
    return out


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    """The picture scaled by ``factor`` about its centre, cropped or padded with white to its size."""
    h, w = image.shape[:2]
    matrix = np.array([[factor, 0.0, (1 - factor) * w / 2], [0.0, factor, (1 - factor) * h / 2]], np.float32)
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR, borderValue=(255, 255, 255)
    )


@dataclass(frozen=True)
class Triplet:
    source: int
    """Index of the emoji in the dataset."""
    kind: str
    """A colour word or a key of ``PHRASES``; training picks one of its phrasings at each step."""
    before: np.ndarray
    after: np.ndarray


def edit_pair(image: np.ndarray, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(input, edited) for one edit kind; a colour kind is the colour word itself."""
    if kind in COLOUR_HUES:
        return image, recolour(image, COLOUR_HUES[kind])
    if kind == "flip":
        return image, flip(image)
    if kind == "sketch":
        return image, sketch(image)
    if kind == "cartoon":
        textured = photo_texture(image, seed)
        return textured, cartoon(textured)
    if kind == "bigger":
        return image, rescale(image, BIGGER)
    if kind == "smaller":
        return image, rescale(image, SMALLER)
    raise ValueError(f"unknown edit kind {kind!r}")


def phrasings(kind: str) -> tuple[str, ...]:
    if kind in COLOUR_HUES:
        return tuple(p.format(c=kind) for p in COLOUR_PHRASES)
    return PHRASES[kind]


def build_triplets(
    images: np.ndarray, records: list[dict[str, Any]], colours_per_image: int = 3, seed: int = 0
) -> list[Triplet]:
    """Triplets from every emoji not held out: ``colours_per_image`` random colours and each other edit once."""
    rng = np.random.default_rng(seed)
    colours = list(COLOUR_HUES)
    out: list[Triplet] = []
    for index, (image, record) in enumerate(zip(images, records, strict=True)):
        if held_out(record):
            continue
        picked = rng.choice(len(colours), size=min(colours_per_image, len(colours)), replace=False)
        for kind in [*(colours[i] for i in picked), *PHRASES]:
            before, after = edit_pair(image, kind, seed * 100_003 + index)
            out.append(Triplet(index, kind, before, after))
    return out


def all_instructions() -> list[str]:
    """Every phrasing of every edit (the texts whose embeddings training precomputes)."""
    return [p for kind in [*COLOUR_HUES, *PHRASES] for p in phrasings(kind)]
