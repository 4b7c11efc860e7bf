"""Turn provider output bytes into the same results the local engine returns.

Why shared: every provider must produce PIL images with full ``ImageRecord``s (provider, model,
parameters, revised prompt) so PNG metadata, the gallery and batch info files are identical to
local generation.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from limner import __version__
from limner.core.errors import InvalidRequestError
from limner.core.records import TUNABLE_FIELDS, GeneratedImage, ImageRecord, Timings
from limner.core.requests import GenerationRequest
from limner.http_client import ProviderError
from limner.imaging.inputs import open_image_bytes

MAX_OUTPUT_PIXELS = 8192 * 8192


def decode_output(data: bytes, *, provider: str, max_bytes: int) -> Image.Image:
    """Decode one output picture with the same safety checks as an upload; RGB like local output."""
    try:
        return open_image_bytes(data, param="output", max_bytes=max_bytes, max_pixels=MAX_OUTPUT_PIXELS, mode="RGB")
    except InvalidRequestError as exc:
        raise ProviderError(f"returned an unreadable image: {exc.message}", provider=provider) from None


def png_of(image: Image.Image, mode: str | None = None) -> bytes:
    """PNG bytes of an input picture, to upload to a provider."""
    buffer = io.BytesIO()
    (image.convert(mode) if mode else image).save(buffer, format="PNG")
    return buffer.getvalue()


def remote_image(
    *,
    image: Image.Image,
    request: GenerationRequest,
    provider: str,
    model_ref: str,
    seed: int,
    index: int,
    seconds: float,
    revised_prompt: str | None = None,
    details: dict[str, Any] | None = None,
    pipeline: str = "",
    used: set[str] | None = None,
) -> GeneratedImage:
    """One generated image with its record. ``request`` already holds the resolved model and seed;
    ``used`` names the tunable fields the provider was sent (none by default)."""
    record = ImageRecord(
        request=request,
        seed=seed,
        index=index,
        width=image.width,
        height=image.height,
        model_name=model_ref,
        pipeline=pipeline or f"{provider} API",
        scheduler="",
        timings=Timings(load_s=0.0, inference_s=round(seconds, 4)),
        limner_version=__version__,
        provider=provider,
        revised_prompt=revised_prompt or None,
        provider_details=dict(details or {}),
        applied=sorted(field for field in (used or set()) & TUNABLE_FIELDS if _given(request, field)),
    )
    return GeneratedImage(image=image, record=record)


def _given(request: GenerationRequest, field: str) -> bool:
    """Whether the request set ``field`` itself (a provider sent only what was set keeps its own default).

    A seed counts once the engine resolved one, since engines that take seeds always send it.
    """
    if field == "negative_prompt":
        return bool(request.negative_prompt)
    if field == "scheduler":
        return request.scheduler is not None
    if field == "seed":
        return request.seed is not None
    return field in request.model_fields_set


def ignored_fields(request: GenerationRequest, used: set[str]) -> list[str]:
    """Request fields a provider does not take, so the record says plainly what had no effect."""
    return sorted(name for name in TUNABLE_FIELDS if _given(request, name) and name not in used)
