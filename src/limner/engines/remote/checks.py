"""Checks every remote engine runs in ``validate``, before any call is made (and before anything is paid).

Why shared: a missing key, a LoRA (which only a local model can apply) or a missing input picture
are refused the same way for every provider, with one line that says what to do.
"""

from __future__ import annotations

from pydantic import SecretStr

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.http_client import ProviderNotConfiguredError


def require_key(secret: SecretStr | None, variable: str, provider: str) -> str:
    """The key's value, or a one-line error naming the variable to set."""
    value = secret.get_secret_value().strip() if secret is not None else ""
    if not value:
        raise ProviderNotConfiguredError(
            f"{variable} is not set; put it in the environment or in .env to use {provider}: models",
            provider=provider,
        )
    return value


def check_request(request: GenerationRequest, inputs: TaskInputs, settings: Settings, provider: str) -> None:
    """Limits, inputs and options that no remote provider can honour."""
    request.check_limits(settings.request_limits())
    if request.loras:
        raise InvalidRequestError(f"LoRAs apply to local models only; {provider} cannot load them", param="loras")
    if request.embeddings:
        raise InvalidRequestError(
            f"textual-inversion embeddings apply to local models only; {provider} cannot load them",
            param="embeddings",
        )
    if request.controls:
        raise InvalidRequestError(
            f"controls (ControlNet / T2I-Adapter) apply to local models only; {provider} cannot use them",
            param="controls",
        )
    if request.task.needs_init_image and inputs.init_image is None:
        raise InvalidRequestError(f"{request.task.value} needs an input image", param="init_image")
    if request.task.needs_mask and inputs.mask_image is None:
        raise InvalidRequestError("inpaint needs a mask image", param="mask_image")


def model_name(request: GenerationRequest, settings: Settings, provider: str, default: str) -> str:
    """The provider's own model name: ``openai:dall-e-3`` -> ``dall-e-3`` (``default`` when empty)."""
    ref = request.model or settings.default_model
    prefix, sep, rest = ref.partition(":")
    if not sep or prefix.lower() != provider:
        raise InvalidRequestError(f"{ref!r} is not a {provider}: model reference", param="model")
    return rest.strip() or default
