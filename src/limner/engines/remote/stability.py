"""Stability AI engine (REST v2beta Stable Image): ``stability:core``, ``stability:ultra``, ``stability:sd3.5-large``.

The documented shape: ``POST /v2beta/stable-image/generate/{core|ultra|sd3}`` as multipart form
data with ``Accept: image/*``; the answer is the image bytes with ``finish-reason`` and ``seed``
headers (a JSON answer with ``image``/``finish_reason``/``seed`` is read too). Inpaint goes to
``/v2beta/stable-image/edit/inpaint`` (white = repaint, like ours). Errors are
``{"id", "name", "errors": [...]}``; ``name: content_moderation`` (403) and a
``CONTENT_FILTERED`` finish reason are moderation refusals.

The API takes an aspect ratio, not pixels: the requested size picks the nearest ratio (or is
refused), and the record holds the size actually drawn. One call makes one image, with seed
``base+i`` like local generation.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx

from limner.core.errors import InvalidRequestError, UnsupportedTaskError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent
from limner.core.providers import STABILITY
from limner.core.records import GeneratedImage, GenerationResult
from limner.core.requests import GenerationRequest, Task
from limner.engines.base import TaskInputs
from limner.engines.remote.aspect import nearest_ratio
from limner.engines.remote.outputs import decode_output, ignored_fields, png_of, remote_image
from limner.engines.remote.provider import ProviderEngine
from limner.http_client import ContentPolicyError, ErrorInfo, ProviderError, ProviderHttp, generic_error

PROVIDER = STABILITY.name
MAX_SEED = 4294967294
ASPECT_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
_SD3_MODELS = frozenset(
    {"sd3.5-large", "sd3.5-large-turbo", "sd3.5-medium", "sd3.5-flash", "sd3-large", "sd3-large-turbo", "sd3-medium"}
)


@dataclass(frozen=True)
class StabilityModel:
    """Where a model name is served and what it takes."""

    name: str
    endpoint: str
    sd3_model: str | None = None
    img2img: bool = False
    negative_prompt: bool = True
    cfg_scale: bool = False


def stability_model(name: str) -> StabilityModel:
    lowered = name.lower()
    if lowered in ("core", "stable-image-core"):
        return StabilityModel(name=lowered, endpoint="v2beta/stable-image/generate/core")
    if lowered in ("ultra", "stable-image-ultra"):
        return StabilityModel(name=lowered, endpoint="v2beta/stable-image/generate/ultra", img2img=True)
    if lowered in _SD3_MODELS:
        return StabilityModel(
            name=lowered, endpoint="v2beta/stable-image/generate/sd3", sd3_model=lowered, img2img=True,
            negative_prompt="turbo" not in lowered, cfg_scale=True,
        )  # fmt: skip
    known = ", ".join(["core", "ultra", *sorted(_SD3_MODELS)])
    raise InvalidRequestError(f"unknown Stability model {name!r} (known: {known})", param="model")


def read_stability_error(response: Any) -> ErrorInfo:
    """``{"id", "name", "errors": [...]}``; ``name == "content_moderation"`` is a moderation refusal."""
    try:
        body = response.json()
    except ValueError:
        return generic_error(response)
    if not isinstance(body, dict) or "errors" not in body:
        return generic_error(response)
    errors = body.get("errors")
    texts = [str(item) for item in errors] if isinstance(errors, list) else [str(errors)]
    name = str(body.get("name") or "")
    message = "; ".join(texts) or name or f"HTTP {response.status_code}"
    return ErrorInfo(message=message, code=name or None, moderation=name == "content_moderation")


class StabilityEngine(ProviderEngine, provider=PROVIDER):
    """Runs requests on Stability AI's REST API (``STABILITY_BASE_URL`` for proxies and tests)."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        model = stability_model(self._admit(request, inputs))
        if request.task is Task.EDIT:
            raise UnsupportedTaskError("Stability has no instruction edit here; use img2img or inpaint", param="task")
        if request.task is Task.IMG2IMG and not model.img2img:
            raise UnsupportedTaskError(f"{model.name} has no img2img; use ultra or an sd3 model", param="model")
        if request.width is not None and request.height is not None and request.task is Task.TXT2IMG:
            nearest_ratio(request.width, request.height, ASPECT_RATIOS, who="Stability")

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> GenerationResult:
        self.validate(request, inputs)
        key = self._api_key()
        model = stability_model(self._model_name(request))
        base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED - 64)
        resolved = request.model_copy(update={"model": f"{PROVIDER}:{model.name}", "seed": base_seed})
        endpoint = "v2beta/stable-image/edit/inpaint" if request.task is Task.INPAINT else model.endpoint
        images: list[GeneratedImage] = []
        with ProviderHttp(
            provider=PROVIDER,
            base_url=self._base_url(),
            headers={"Authorization": f"Bearer {key}", "Accept": "image/*"},
            options=self._options,
            read_error=read_stability_error,
            credential_name=self.key_variable,
        ) as http:
            for index in range(request.num_images):
                seed = (base_seed + index) % (MAX_SEED + 1)
                fields = self._fields(request, model, seed)
                started = time.perf_counter()
                response = http.request(
                    "POST", endpoint, files={**_form(fields), **_files(request, inputs)}, cancel=cancel
                )
                data, answered_seed = self._image(http, response)
                image = decode_output(data, provider=PROVIDER, max_bytes=self._options.max_download_bytes)
                details = {
                    "endpoint": endpoint,
                    "params": {k: v for k, v in fields.items() if k != "prompt"},
                    "ignored": ignored_fields(request, self._used_fields(request, model)),
                    "request_id": response.headers.get("x-request-id"),
                }
                images.append(
                    remote_image(
                        image=image, request=resolved, provider=PROVIDER, model_ref=f"{PROVIDER}:{model.name}",
                        seed=answered_seed if answered_seed is not None else seed, index=index,
                        seconds=time.perf_counter() - started, used=self._used_fields(request, model),
                        details={key: value for key, value in details.items() if value not in (None, [])},
                    )
                )  # fmt: skip
                progress(ProgressEvent(step=index + 1, total_steps=request.num_images))
        return GenerationResult(images=images)

    def _fields(self, request: GenerationRequest, model: StabilityModel, seed: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"prompt": request.prompt, "seed": seed, "output_format": "png"}
        if request.negative_prompt and model.negative_prompt:
            fields["negative_prompt"] = request.negative_prompt
        if request.task is Task.INPAINT:
            return fields
        if model.sd3_model:
            fields["model"] = model.sd3_model
            fields["mode"] = "image-to-image" if request.task is Task.IMG2IMG else "text-to-image"
            if "guidance_scale" in request.model_fields_set:
                fields["cfg_scale"] = request.guidance_scale
        if request.task is Task.IMG2IMG:
            fields["strength"] = request.strength
        elif request.width is not None and request.height is not None:
            fields["aspect_ratio"] = nearest_ratio(request.width, request.height, ASPECT_RATIOS, who="Stability")
        return fields

    def _used_fields(self, request: GenerationRequest, model: StabilityModel) -> set[str]:
        used = {"seed"}
        if model.negative_prompt or request.task is Task.INPAINT:
            used.add("negative_prompt")
        if model.cfg_scale and request.task is not Task.INPAINT:
            used.add("guidance_scale")
        if request.task is Task.IMG2IMG:
            used.add("strength")
        return used

    def _image(self, http: ProviderHttp, response: httpx.Response) -> tuple[bytes, int | None]:
        """Image bytes and seed from an ``image/*`` answer, or from a JSON one; refuse filtered output."""
        if response.headers.get("content-type", "").startswith("application/json"):
            body = http.json_of(response)
            if not isinstance(body, dict) or not body.get("image"):
                raise ProviderError("answered JSON without an image", provider=PROVIDER)
            finish, seed = body.get("finish_reason"), body.get("seed")
            try:
                data = base64.b64decode(str(body["image"]), validate=True)
            except (binascii.Error, ValueError):
                raise ProviderError("answered with broken base64 image data", provider=PROVIDER) from None
        else:
            finish, seed, data = response.headers.get("finish-reason"), response.headers.get("seed"), response.content
        if finish == "CONTENT_FILTERED":
            raise ContentPolicyError("the output image was filtered by content moderation", provider=PROVIDER)
        try:
            return data, int(seed) if seed is not None else None
        except (TypeError, ValueError):
            return data, None


def _form(fields: dict[str, Any]) -> dict[str, Any]:
    """Plain fields as multipart parts: the API requires multipart/form-data even without files."""
    return {key: (None, str(value)) for key, value in fields.items()}


def _files(request: GenerationRequest, inputs: TaskInputs) -> dict[str, Any]:
    files: dict[str, Any] = {}
    if request.task is not Task.TXT2IMG and inputs.init_image is not None:
        files["image"] = ("image.png", png_of(inputs.init_image, "RGB"), "image/png")
    if request.task is Task.INPAINT and inputs.mask_image is not None:
        mask = inputs.mask_image.convert("L")
        if inputs.init_image is not None and mask.size != inputs.init_image.size:
            mask = mask.resize(inputs.init_image.size)
        files["mask"] = ("mask.png", png_of(mask), "image/png")
    return files
