"""Replicate predictions engine: ``replicate:owner/model`` or ``replicate:owner/model:version``.

The documented flow: create a prediction (``POST /models/{owner}/{name}/predictions``, or
``POST /predictions`` with a ``version``) with ``Prefer: wait=N`` so fast models answer in one
call; otherwise poll ``urls.get`` until the status is terminal; on cancel, ``POST urls.cancel``;
then download the output files. Progress comes from the model's logs (``12/28`` step counters)
while polling.

Each image is one prediction with seed ``base+i``, so every image's record carries the seed that
reproduces it, as with local generation. Input pictures go as data URLs when small and through
``POST /files`` otherwise, as Replicate advises.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

from limner.core.errors import GenerationCanceledError, InvalidRequestError, UnsupportedTaskError
from limner.core.progress import CancelToken, ProgressCallback, ProgressEvent
from limner.core.providers import REPLICATE
from limner.core.records import GeneratedImage, GenerationResult
from limner.core.requests import GenerationRequest, Task
from limner.engines.base import TaskInputs
from limner.engines.remote.aspect import nearest_ratio
from limner.engines.remote.outputs import decode_output, ignored_fields, png_of, remote_image
from limner.engines.remote.provider import ProviderEngine
from limner.engines.remote.replicate_profiles import ReplicateProfile, profile_for
from limner.http_client import ContentPolicyError, ErrorInfo, ProviderError, ProviderHttp, data_url, generic_error

PROVIDER = REPLICATE.name
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
MAX_SEED = 2**31 - 1
DATA_URL_LIMIT = 256 * 1024
_REF = re.compile(r"^(?P<owner>[\w.-]+)/(?P<name>[\w.-]+)(?::(?P<version>[\w.-]+))?$")
_STEP_COUNTER = re.compile(r"(\d+)/(\d+)")
_MODERATION_HINTS = ("nsfw", "flagged as sensitive", "e005", "safety checker", "content policy")


@dataclass(frozen=True)
class ReplicateRef:
    owner: str
    name: str
    version: str | None

    @property
    def owner_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return self.owner_name + (f":{self.version}" if self.version else "")


def parse_ref(text: str) -> ReplicateRef:
    match = _REF.match(text)
    if match is None:
        raise InvalidRequestError(
            f"{text!r} is not a Replicate model; write replicate:owner/model or replicate:owner/model:version",
            param="model",
        )
    return ReplicateRef(match["owner"], match["name"], match["version"])


def read_replicate_error(response: Any) -> ErrorInfo:
    """Problem-details bodies: ``{"title", "detail", "status", "invalid_fields": [...]}``."""
    try:
        body = response.json()
    except ValueError:
        return generic_error(response)
    if not isinstance(body, dict):
        return generic_error(response)
    parts = [str(body[key]) for key in ("title", "detail") if body.get(key)]
    for problem in body.get("invalid_fields") or []:
        if isinstance(problem, dict) and problem.get("description"):
            parts.append(f"{problem.get('field', 'input')}: {problem['description']}")
    if not parts:
        return generic_error(response)
    message = ": ".join(parts[:2]) + ("; " + "; ".join(parts[2:]) if len(parts) > 2 else "")
    return ErrorInfo(message=message, moderation=_looks_moderated(message))


def _looks_moderated(text: str) -> bool:
    lowered = text.lower()
    return any(hint in lowered for hint in _MODERATION_HINTS)


class ReplicateEngine(ProviderEngine, provider=PROVIDER):
    """Runs requests as Replicate predictions (``REPLICATE_BASE_URL`` for proxies and tests)."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        ref = parse_ref(self._admit(request, inputs))
        profile = profile_for(ref.owner_name, request.task)
        if request.task not in profile.tasks:
            raise UnsupportedTaskError(f"{ref.owner_name} does not do {request.task.value}", param="task")
        self._size_input(request, profile, ref)
        if request.task is Task.CHARACTER:
            _check_character(request, inputs, profile, ref)

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> GenerationResult:
        self.validate(request, inputs)
        key = self._api_key()
        ref = parse_ref(self._model_name(request))
        profile = profile_for(ref.owner_name, request.task)
        base_seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED - 64)
        resolved = request.model_copy(update={"model": f"{PROVIDER}:{ref}", "seed": base_seed})
        images: list[GeneratedImage] = []
        with ProviderHttp(
            provider=PROVIDER,
            base_url=self._base_url(),
            headers={"Authorization": f"Bearer {key}"},
            options=self._options,
            read_error=read_replicate_error,
            credential_name=self.key_variable,
        ) as http:
            pictures = self._upload_inputs(http, request, inputs, profile, cancel)
            for index in range(request.num_images):
                seed = base_seed + index
                payload = self._input(request, profile, ref, pictures, seed)
                started = time.perf_counter()
                prediction = self._predict(http, ref, payload, index, request.num_images, progress, cancel)
                seconds = time.perf_counter() - started
                urls = _output_urls(prediction.get("output"))
                if not urls:
                    raise ProviderError(
                        f"prediction {prediction.get('id')} succeeded without an output file", provider=PROVIDER
                    )
                image = decode_output(
                    http.download(urls[0], cancel=cancel), provider=PROVIDER, max_bytes=self._options.max_download_bytes
                )
                details = {
                    "prediction_id": prediction.get("id"),
                    "version": prediction.get("version"),
                    "params": {k: v for k, v in payload.items() if k != "prompt" and k not in pictures},
                    "ignored": ignored_fields(request, self._used_fields(profile, request)),
                    "metrics": prediction.get("metrics"),
                }
                images.append(
                    remote_image(
                        image=image, request=resolved, provider=PROVIDER, model_ref=f"{PROVIDER}:{ref}", seed=seed,
                        index=index, seconds=seconds, used=self._used_fields(profile, request),
                        details={key: value for key, value in details.items() if value not in (None, [], {})},
                    )
                )  # fmt: skip
        return GenerationResult(images=images)

    def _predict(
        self,
        http: ProviderHttp,
        ref: ReplicateRef,
        payload: dict[str, Any],
        index: int,
        total: int,
        progress: ProgressCallback,
        cancel: CancelToken,
    ) -> dict[str, Any]:
        """Create one prediction and follow it to a terminal state; cancel it on Replicate if asked to."""
        if ref.version:
            path, body = "predictions", {"version": ref.version, "input": payload}
        else:
            path, body = f"models/{ref.owner}/{ref.name}/predictions", {"input": payload}
        wait = max(1, min(60, self._options.replicate_wait_s))
        response = http.request(
            "POST", path, json=body, headers={"Prefer": f"wait={wait}"},
            read_timeout_s=max(self._options.timeout_s, wait + 15.0), cancel=cancel,
        )  # fmt: skip
        prediction = _prediction(http.json_of(response))
        started = time.monotonic()
        steps_per_image = 1
        try:
            while prediction["status"] not in TERMINAL:
                steps_per_image = self._report(prediction, index, total, steps_per_image, progress)
                if time.monotonic() - started > self._options.max_wait_s:
                    self._cancel(http, prediction)
                    raise ProviderError(
                        f"prediction {prediction.get('id')} did not finish within {self._options.max_wait_s:g}s",
                        provider=PROVIDER,
                    )
                self._options.sleep(self._options.poll_interval_s, cancel)
                if cancel.canceled:
                    raise GenerationCanceledError("generation canceled")
                prediction = _prediction(http.get_json(_get_url(prediction), cancel=cancel))
        except GenerationCanceledError:
            self._cancel(http, prediction)
            raise
        status = prediction["status"]
        if status == "failed":
            message = str(prediction.get("error") or "the prediction failed without a message")
            error_type = ContentPolicyError if _looks_moderated(message) else ProviderError
            raise error_type(f"prediction {prediction.get('id')} failed: {message}", provider=PROVIDER)
        if status != "succeeded":
            raise ProviderError(f"prediction {prediction.get('id')} was {status} on Replicate", provider=PROVIDER)
        progress(ProgressEvent(step=(index + 1) * steps_per_image, total_steps=total * steps_per_image))
        return prediction

    def _report(
        self, prediction: dict[str, Any], index: int, total: int, steps_per_image: int, progress: ProgressCallback
    ) -> int:
        """Emit a progress event from the last ``k/K`` counter in the logs; return the per-image step count."""
        counters = _STEP_COUNTER.findall(str(prediction.get("logs") or ""))
        if not counters:
            return steps_per_image
        done, steps = (int(value) for value in counters[-1])
        if steps <= 0 or done > steps:
            return steps_per_image
        progress(ProgressEvent(step=index * steps + done, total_steps=total * steps))
        return steps

    def _cancel(self, http: ProviderHttp, prediction: dict[str, Any]) -> None:
        """Best effort: ask Replicate to stop (and stop billing); our caller's outcome does not depend on it."""
        urls = _urls(prediction)
        target = urls.get("cancel") or (f"predictions/{prediction['id']}/cancel" if prediction.get("id") else None)
        if not target:
            return
        with contextlib.suppress(ProviderError):
            http.request("POST", str(target), cancel=CancelToken())

    def _upload_inputs(
        self,
        http: ProviderHttp,
        request: GenerationRequest,
        inputs: TaskInputs,
        profile: ReplicateProfile,
        cancel: CancelToken,
    ) -> dict[str, str]:
        """Input pictures as values Replicate accepts: small ones inline, large ones via the files API."""
        pictures: dict[str, str] = {}
        if request.task is not Task.TXT2IMG and profile.image and inputs.init_image is not None:
            pictures[profile.image] = self._file_value(http, png_of(inputs.init_image, "RGB"), "image.png", cancel)
        if request.task is Task.INPAINT and profile.mask and inputs.mask_image is not None:
            pictures[profile.mask] = self._file_value(http, png_of(inputs.mask_image, "L"), "mask.png", cancel)
        if request.task is Task.CHARACTER and profile.reference and inputs.reference_images:
            picture = png_of(inputs.reference_images[0], "RGB")
            pictures[profile.reference] = self._file_value(http, picture, "reference.png", cancel)
        return pictures

    def _file_value(self, http: ProviderHttp, data: bytes, filename: str, cancel: CancelToken) -> str:
        if len(data) <= DATA_URL_LIMIT:
            return data_url(data)
        response = http.request("POST", "files", files={"content": (filename, data, "image/png")}, cancel=cancel)
        body = http.json_of(response)
        url = body.get("urls", {}).get("get") if isinstance(body, dict) else None
        if not url:
            raise ProviderError("the files API answered without urls.get", provider=PROVIDER)
        return str(url)

    def _size_input(self, request: GenerationRequest, profile: ReplicateProfile, ref: ReplicateRef) -> dict[str, Any]:
        if request.width is None or request.height is None or request.task not in (Task.TXT2IMG, Task.CHARACTER):
            return {}
        if profile.size == "aspect_ratio":
            return {
                "aspect_ratio": nearest_ratio(request.width, request.height, profile.aspect_ratios, who=ref.owner_name)
            }
        return {"width": request.width, "height": request.height}

    def _input(
        self,
        request: GenerationRequest,
        profile: ReplicateProfile,
        ref: ReplicateRef,
        pictures: dict[str, str],
        seed: int,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"prompt": request.prompt, **profile.constants}
        payload.update(self._size_input(request, profile, ref))
        fields = request.model_fields_set
        if profile.negative_prompt and request.negative_prompt:
            payload[profile.negative_prompt] = request.negative_prompt
        if profile.steps and "steps" in fields:
            payload[profile.steps] = request.steps
        if profile.guidance and "guidance_scale" in fields:
            payload[profile.guidance] = request.guidance_scale
        if profile.seed:
            payload[profile.seed] = seed
        if request.task in (Task.IMG2IMG, Task.INPAINT) and profile.strength:
            payload[profile.strength] = request.strength
        if request.task is Task.EDIT and profile.image_guidance and "image_guidance_scale" in fields:
            payload[profile.image_guidance] = request.image_guidance_scale
        if request.task is Task.CHARACTER:
            if profile.reference_scale and "ip_adapter_scale" in fields:
                payload[profile.reference_scale] = request.ip_adapter_scale
            if profile.style and request.style:
                payload[profile.style] = profile.style_values[request.style]
        payload.update(pictures)
        return payload

    def _used_fields(self, profile: ReplicateProfile, request: GenerationRequest) -> set[str]:
        used = {"seed"} if profile.seed else set()
        pairs = {
            "negative_prompt": profile.negative_prompt,
            "steps": profile.steps,
            "guidance_scale": profile.guidance,
            "strength": profile.strength if request.task in (Task.IMG2IMG, Task.INPAINT) else None,
            "image_guidance_scale": profile.image_guidance if request.task is Task.EDIT else None,
            "ip_adapter_scale": profile.reference_scale if request.task is Task.CHARACTER else None,
        }
        return used | {name for name, target in pairs.items() if target}


def _check_character(
    request: GenerationRequest, inputs: TaskInputs, profile: ReplicateProfile, ref: ReplicateRef
) -> None:
    """One reference picture, and a style the model offers: refused here, before anything is paid."""
    if not inputs.reference_images:
        raise InvalidRequestError("character needs a reference picture of the character", param="reference_images")
    if len(inputs.reference_images) > 1:
        raise InvalidRequestError(
            f"{ref.owner_name} takes one reference picture; pass one (or use the local engine to blend several)",
            param="reference_images",
        )
    if request.style and profile.style and request.style not in profile.style_values:
        known = ", ".join(sorted(profile.style_values))
        raise InvalidRequestError(
            f"{ref.owner_name} has no style {request.style!r} (it offers: {known})", param="style"
        )


def _prediction(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("status"), str):
        raise ProviderError("answered with something that is not a prediction", provider=PROVIDER)
    return body


def _urls(prediction: dict[str, Any]) -> dict[str, Any]:
    urls = prediction.get("urls")
    return urls if isinstance(urls, dict) else {}


def _get_url(prediction: dict[str, Any]) -> str:
    urls = _urls(prediction)
    if urls.get("get"):
        return str(urls["get"])
    if prediction.get("id"):
        return f"predictions/{prediction['id']}"
    raise ProviderError("answered with a prediction that has no id to follow", provider=PROVIDER)


def _output_urls(output: Any) -> list[str]:
    """File outputs in order, whatever the shape: one URL, a list of them, or an object holding them."""
    if isinstance(output, str):
        return [output] if output.startswith(("http://", "https://", "data:")) else []
    if isinstance(output, list):
        return [url for item in output for url in _output_urls(item)]
    if isinstance(output, dict):
        return [url for item in output.values() for url in _output_urls(item)]
    return []
