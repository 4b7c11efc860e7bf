"""OpenAI Images API engine: ``openai:gpt-image-1``, ``openai:dall-e-3``, ``openai:dall-e-2``.

Calls follow the documented API: ``POST /images/generations`` (JSON) for text to image and
``POST /images/edits`` (multipart: ``image``, optional ``mask``) for inpaint and instruction
edits. DALL·E models are asked for ``b64_json`` (GPT image models always answer base64); an
answer with ``url`` is downloaded instead. The API takes no seed, steps or guidance: such fields
are listed as ignored in each image's ``provider_details`` rather than silently dropped, and the
record's seed is 0 (no seed reproduces an OpenAI image).

Our masks are white = repaint; OpenAI's are transparent = repaint, so the mask is turned into
a PNG whose alpha is the inverse of ours.
"""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from limner.core.errors import InvalidRequestError, UnsupportedTaskError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent
from limner.core.providers import OPENAI
from limner.core.records import GeneratedImage, GenerationResult
from limner.core.requests import GenerationRequest, Task
from limner.engines.base import TaskInputs
from limner.engines.remote.outputs import decode_output, ignored_fields, png_of, remote_image
from limner.engines.remote.provider import ProviderEngine
from limner.http_client import ErrorInfo, ProviderError, ProviderHttp, generic_error

PROVIDER = OPENAI.name
_MODERATION_CODES = frozenset({"content_policy_violation", "moderation_blocked", "content_filter"})


@dataclass(frozen=True)
class OpenAIModelSpec:
    """What one OpenAI image model accepts. ``sizes`` None means: not known here, let the API judge."""

    sizes: frozenset[str] | None
    max_n: int
    edits: bool
    edit_without_mask: bool
    response_format: bool

    def sizes_or_none(self) -> frozenset[str]:
        return self.sizes or frozenset()


_DALL_E_2 = OpenAIModelSpec(frozenset({"256x256", "512x512", "1024x1024"}), 10, True, False, True)
_DALL_E_3 = OpenAIModelSpec(frozenset({"1024x1024", "1792x1024", "1024x1792"}), 1, False, False, True)
_GPT_IMAGE = OpenAIModelSpec(frozenset({"1024x1024", "1536x1024", "1024x1536"}), 10, True, True, False)
_UNKNOWN = OpenAIModelSpec(None, 10, True, True, True)
_SIZED_MODELS = ("dall-e-3", "gpt-image-1", "dall-e-2")


def model_spec(name: str) -> OpenAIModelSpec:
    """Known limits by model name; an unknown name (a compatible server's model) is passed through."""
    if name == "dall-e-2":
        return _DALL_E_2
    if name == "dall-e-3":
        return _DALL_E_3
    if name.startswith("gpt-image-"):
        return _GPT_IMAGE
    return _UNKNOWN


def read_openai_error(response: Any) -> ErrorInfo:
    """``{"error": {"message", "type", "param", "code"}}``; moderation codes become ContentPolicyError."""
    try:
        body = response.json()
    except ValueError:
        return generic_error(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return generic_error(response)
    code = error.get("code") or error.get("type")
    message = str(error.get("message") or code or f"HTTP {response.status_code}")
    if error.get("param"):
        message = f"{message} (param: {error['param']})"
    return ErrorInfo(message=message, code=str(code) if code else None, moderation=code in _MODERATION_CODES)


class OpenAIImagesEngine(ProviderEngine, provider=PROVIDER):
    """Runs requests on the OpenAI Images API (or any server that speaks it, via ``OPENAI_BASE_URL``)."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        name = self._admit(request, inputs)
        spec = model_spec(name)
        if request.task is Task.IMG2IMG:
            raise UnsupportedTaskError(
                "the OpenAI Images API has no img2img; use task edit (an instruction) or inpaint (a mask)",
                param="task",
            )
        if request.task is not Task.TXT2IMG and not spec.edits:
            raise UnsupportedTaskError(f"{name} cannot edit images; use gpt-image-1 or dall-e-2", param="model")
        if request.task is Task.EDIT and not spec.edit_without_mask:
            raise UnsupportedTaskError(f"{name} edits only with a mask; use task inpaint or gpt-image-1", param="task")
        size = _size(request)
        if size is not None and spec.sizes is not None and size not in spec.sizes:
            allowed = ", ".join(sorted(spec.sizes))
            others = [other for other in _SIZED_MODELS if other != name and size in model_spec(other).sizes_or_none()]
            hint = f"; {others[0]} makes {size} (model openai:{others[0]})" if others else ""
            raise InvalidRequestError(f"{name} makes only these sizes: {allowed} (got {size}){hint}", param="size")

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> GenerationResult:
        self.validate(request, inputs)
        key = self._api_key()
        name = self._model_name(request)
        spec = model_spec(name)
        resolved = request.model_copy(update={"model": f"{PROVIDER}:{name}"})
        # DALL·E 3 makes one image per call; the others take ``n``.
        per_call = min(request.num_images, spec.max_n)
        images: list[GeneratedImage] = []
        with ProviderHttp(
            provider=PROVIDER,
            base_url=self._base_url(),
            headers={"Authorization": f"Bearer {key}"},
            options=self._options,
            read_error=read_openai_error,
            credential_name=self.key_variable,
        ) as http:
            while len(images) < request.num_images:
                count = min(per_call, request.num_images - len(images))
                started = time.perf_counter()
                params, response = self._call(http, request, inputs, name, spec, count, cancel)
                seconds = time.perf_counter() - started
                body = http.json_of(response)
                items = body.get("data") if isinstance(body, dict) else None
                if not isinstance(items, list) or not items:
                    raise ProviderError("answered without any image data", provider=PROVIDER)
                details = {
                    "params": params,
                    "ignored": ignored_fields(request, set()),
                    "created": body.get("created"),
                    "usage": body.get("usage"),
                    "request_id": response.headers.get("x-request-id"),
                }
                for item in items[:count]:
                    image = decode_output(
                        self._image_bytes(http, item, cancel),
                        provider=PROVIDER,
                        max_bytes=self._options.max_download_bytes,
                    )
                    images.append(
                        remote_image(
                            image=image, request=resolved, provider=PROVIDER, model_ref=f"{PROVIDER}:{name}",
                            seed=0, index=len(images), seconds=seconds,
                            revised_prompt=item.get("revised_prompt") if isinstance(item, dict) else None,
                            details={key: value for key, value in details.items() if value is not None},
                        )
                    )  # fmt: skip
                progress(ProgressEvent(step=len(images), total_steps=request.num_images))
        return GenerationResult(images=images)

    def _call(
        self,
        http: ProviderHttp,
        request: GenerationRequest,
        inputs: TaskInputs,
        name: str,
        spec: OpenAIModelSpec,
        count: int,
        cancel: CancelToken,
    ) -> tuple[dict[str, Any], Any]:
        params: dict[str, Any] = {"model": name, "n": count}
        size = _size(request)
        if size is not None:
            params["size"] = size
        if spec.response_format:
            params["response_format"] = "b64_json"
        if request.task is Task.TXT2IMG:
            response = http.request(
                "POST", "images/generations", json={**params, "prompt": request.prompt}, cancel=cancel
            )
            return params, response
        files: dict[str, Any] = {key: (None, str(value)) for key, value in params.items()}
        files["prompt"] = (None, request.prompt)
        picture = inputs.init_image
        if picture is None:  # validate() refused this already; kept for the type checker
            raise UnsupportedTaskError(f"{request.task.value} needs an input image", param="init_image")
        files["image"] = ("image.png", png_of(picture, "RGBA"), "image/png")
        if request.task is Task.INPAINT and inputs.mask_image is not None:
            files["mask"] = ("mask.png", openai_mask(inputs.mask_image, picture.size), "image/png")
        return params, http.request("POST", "images/edits", files=files, cancel=cancel)

    def _image_bytes(self, http: ProviderHttp, item: Any, cancel: CancelToken) -> bytes:
        if not isinstance(item, dict):
            raise ProviderError("answered with an image entry that is not an object", provider=PROVIDER)
        if item.get("b64_json"):
            try:
                return base64.b64decode(item["b64_json"], validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise ProviderError("answered with broken base64 image data", provider=PROVIDER) from None
        if item.get("url"):
            return http.download(str(item["url"]), cancel=cancel)
        raise ProviderError("answered with an image entry that has neither b64_json nor url", provider=PROVIDER)


def openai_mask(mask: Image.Image, size: tuple[int, int]) -> bytes:
    """Our mask (white = repaint) as OpenAI's: a PNG whose transparent pixels are the ones to repaint."""
    grey = mask.convert("L")
    if grey.size != size:
        grey = grey.resize(size, Image.Resampling.NEAREST)
    rgba = Image.new("RGBA", size, (0, 0, 0, 255))
    rgba.putalpha(ImageOps.invert(grey))
    return png_of(rgba)


def _size(request: GenerationRequest) -> str | None:
    if request.width is None or request.height is None:
        return None
    return f"{request.width}x{request.height}"
