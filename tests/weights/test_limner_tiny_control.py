"""The shipped limner-tiny-control steers limner-tiny with edges, through the engine and by its built-in name.

Why here: zero-download control (``--control pic.png --control-model limner-tiny-control``) relies on
these weights; a re-export that breaks loading or stops following the edges must fail CI. The
pictures are drawn here (emoji-like shapes no training emoji is) and the prompt is "an emoji", so
only the control can say where the outlines go: a small version of the benchmark's bar
(``benchmarks/limner_tiny_control_quality.py``: 1.74 times the overlap, 88% of 100 held-out emoji).
"""

from __future__ import annotations

import statistics

import cv2
import numpy as np
import pytest
from PIL import Image

from limner.config import Settings
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.engines.local.model_refs import builtin_model_path
from limner.imaging.control_preprocess import canny_edges, edge_overlap

CONTROL = builtin_model_path("limner-tiny-control")
pytestmark = pytest.mark.skipif(not (CONTROL / "config.json").exists(), reason="limner-tiny-control not exported yet")


def smiley() -> np.ndarray:
    image = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(image, (32, 32), 24, (245, 190, 40), -1)
    for x in (23, 41):
        cv2.circle(image, (x, 26), 4, (60, 40, 20), -1)
    cv2.ellipse(image, (32, 38), (12, 8), 0, 0, 180, (60, 40, 20), 3)
    return image


def heart() -> np.ndarray:
    image = np.full((64, 64, 3), 255, np.uint8)
    cv2.circle(image, (22, 24), 12, (220, 30, 40), -1)
    cv2.circle(image, (42, 24), 12, (220, 30, 40), -1)
    cv2.fillPoly(image, [np.array([[11, 28], [53, 28], [32, 54]])], (220, 30, 40))
    return image


def star() -> np.ndarray:
    image = np.full((64, 64, 3), 255, np.uint8)
    angles = np.linspace(-np.pi / 2, 3 * np.pi / 2, 11)[:-1]
    radii = np.array([26, 11] * 5)
    points = np.stack([32 + radii * np.cos(angles), 33 + radii * np.sin(angles)], axis=1).astype(np.int32)
    cv2.fillPoly(image, [points], (250, 200, 30))
    return image


def square() -> np.ndarray:
    image = np.full((64, 64, 3), 255, np.uint8)
    cv2.rectangle(image, (12, 12), (52, 52), (40, 110, 220), -1)
    return image


CASES = [smiley(), heart(), star(), square()]


def test_control_makes_the_output_follow_the_edges() -> None:
    engine = LocalEngine(Settings(default_model="limner-tiny", device="cpu", backend="torch", _env_file=None))  # type: ignore[call-arg]
    with_control, without = [], []
    for seed, picture in enumerate(CASES):
        fields = {"prompt": "an emoji", "seed": seed, "steps": 20, "guidance_scale": 4.0, "width": 64, "height": 64}
        edges = canny_edges(Image.fromarray(picture))
        controlled = GenerationRequest.model_validate(
            {**fields, "controls": [{"image": "emoji.png", "model": "limner-tiny-control"}]}
        )
        result = engine.run(controlled, TaskInputs(control_images=(Image.fromarray(picture),)))
        with_control.append(edge_overlap(result.images[0].image, edges))
        plain = engine.run(GenerationRequest.model_validate(fields))
        without.append(edge_overlap(plain.images[0].image, edges))
    assert result.images[0].record.pipeline == "StableDiffusionControlNetPipeline"
    assert statistics.mean(with_control) >= 1.5 * statistics.mean(without), (with_control, without)
    assert sum(a > b for a, b in zip(with_control, without, strict=True)) >= 3, (with_control, without)
