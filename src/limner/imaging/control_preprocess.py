"""Turn a control picture into what a ControlNet or T2I-Adapter reads: edges, strokes, lines or depth.

Why here, and why OpenCV: the edge-based preprocessors (canny, scribble, lineart) need no model
download and run in milliseconds, so they are built in; every edge map is white on black, the
convention the public canny/scribble/lineart ControlNets were trained on. Depth needs a trained
estimator, which the engine loads from a setting and hands in as ``depth``; pose needs an OpenPose
detector, which limner does not bundle, so it is refused with what to pass instead.

The picture is resized to the output size *before* edges are found, so line widths are the same
at every output size.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from limner.core.errors import InvalidRequestError
from limner.core.requests import ControlSpec, ControlType

DepthEstimator = Callable[[Image.Image], Image.Image]

POSE_REFUSAL = (
    "pose control needs an OpenPose detector, which limner does not bundle: make the skeleton picture "
    "elsewhere (e.g. controlnet_aux's OpenposeDetector, or a pose editor) and pass it with type none, "
    "e.g. --control skeleton.png:none --control-model lllyasviel/control_v11p_sd15_openpose"
)


def preprocess(
    image: Image.Image,
    spec: ControlSpec,
    size: tuple[int, int] | None = None,
    depth: DepthEstimator | None = None,
) -> Image.Image:
    """The control image for ``spec``: ``image`` resized to ``size`` (width, height) and preprocessed, RGB."""
    picture = image.convert("RGB")
    if size is not None and picture.size != size:
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    kind = spec.type
    if kind is ControlType.NONE:
        return picture
    if kind is ControlType.CANNY:
        return _rgb(canny_edges(picture, spec.canny_low, spec.canny_high))
    if kind is ControlType.SCRIBBLE:
        return _rgb(scribble_strokes(picture))
    if kind is ControlType.LINEART:
        return _rgb(line_art(picture))
    if kind is ControlType.DEPTH:
        if depth is None:
            raise InvalidRequestError(
                "depth control needs a depth estimator: set LIMNER_DEPTH_MODEL to a hub id (e.g. "
                "Intel/dpt-hybrid-midas) or a local folder (safetensors), or pass a ready depth map with type none",
                param="controls",
            )
        return depth_map(picture, depth)
    raise InvalidRequestError(POSE_REFUSAL, param="controls")


def canny_edges(picture: Image.Image, low: int = 100, high: int = 200) -> np.ndarray:
    """OpenCV's Canny edges (uint8, 255 on an edge) with the given hysteresis thresholds."""
    import cv2

    gray = np.asarray(picture.convert("L"))
    return np.asarray(cv2.Canny(gray, low, high))


def scribble_strokes(picture: Image.Image) -> np.ndarray:
    """Thick strokes along the main outlines only: edges of a blurred picture, thickened, like a sketch."""
    import cv2

    gray = cv2.GaussianBlur(np.asarray(picture.convert("L")), (0, 0), sigmaX=max(1.0, min(picture.size) / 128))
    low, high = _auto_thresholds(gray)
    edges = cv2.Canny(gray, low, high)
    width = max(3, min(picture.size) // 96 * 2 + 1)
    return np.asarray(cv2.dilate(edges, np.ones((width, width), np.uint8)))


def line_art(picture: Image.Image) -> np.ndarray:
    """Thin lines at every visible contour: Canny with thresholds taken from the picture's own median."""
    import cv2

    gray = cv2.GaussianBlur(np.asarray(picture.convert("L")), (3, 3), 0)
    low, high = _auto_thresholds(gray, spread=0.5)
    return np.asarray(cv2.Canny(gray, low, high))


def depth_map(picture: Image.Image, estimator: DepthEstimator) -> Image.Image:
    """The estimator's depth, stretched to 0-255 (near = bright, as depth ControlNets expect), at the picture's size."""
    depth = np.asarray(estimator(picture).convert("F"), dtype=np.float32)
    low, high = float(depth.min()), float(depth.max())
    scaled = (depth - low) / (high - low) * 255.0 if high > low else np.zeros_like(depth)
    gray = Image.fromarray(scaled.round().astype(np.uint8))
    if gray.size != picture.size:
        gray = gray.resize(picture.size, Image.Resampling.BICUBIC)
    return gray.convert("RGB")


def _auto_thresholds(gray: np.ndarray, spread: float = 0.33) -> tuple[int, int]:
    """Canny thresholds around the median intensity (the usual parameter-free choice)."""
    median = float(np.median(gray))
    low = int(max(0.0, (1.0 - spread) * median))
    high = int(min(255.0, (1.0 + spread) * median))
    return max(1, low), max(2, high)


def _rgb(edges: np.ndarray) -> Image.Image:
    return Image.fromarray(edges.astype(np.uint8)).convert("RGB")


def edge_overlap(picture: Image.Image, control: np.ndarray, tolerance: int = 1) -> float:
    """How well a picture's Canny edges follow a control edge map: F1 of edge pixels within ``tolerance`` px.

    Why F1: recall alone rewards a picture full of edges, precision alone an empty one. 1.0 means
    every control edge has an output edge nearby and every output edge a control edge nearby.
    """
    import cv2

    size = (control.shape[1], control.shape[0])
    out = canny_edges(picture.convert("RGB").resize(size, Image.Resampling.LANCZOS)) > 0
    wanted = (control if control.ndim == 2 else control[..., 0]) > 0
    kernel = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    near_out = cv2.dilate(out.astype(np.uint8), kernel) > 0
    near_wanted = cv2.dilate(wanted.astype(np.uint8), kernel) > 0
    recall = float((wanted & near_out).sum()) / max(int(wanted.sum()), 1)
    precision = float((out & near_wanted).sum()) / max(int(out.sum()), 1)
    return 0.0 if recall + precision == 0 else 2 * recall * precision / (recall + precision)
