"""Remote image providers behind the same ``Engine`` interface as the local engine.

``build_remote_engines(settings)`` gives one engine per provider prefix the router knows
(``openai:``, ``replicate:``, ``stability:``). Engines are built even without keys: a missing
key is reported, naming its variable, when a request for that provider is validated.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from limner.config import Settings
from limner.engines.base import Engine
from limner.engines.remote import openai_images, replicate, stability
from limner.engines.remote.errors import (
    ContentPolicyError,
    ProviderAuthError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderRequestError,
)
from limner.engines.remote.http import HttpOptions, RetryPolicy
from limner.engines.remote.openai_images import OpenAIImagesEngine
from limner.engines.remote.replicate import ReplicateEngine
from limner.engines.remote.stability import StabilityEngine

DEFAULT_MODELS: Mapping[str, str] = MappingProxyType(
    {"openai": openai_images.DEFAULT_MODEL, "replicate": replicate.DEFAULT_MODEL, "stability": stability.DEFAULT_MODEL}
)

__all__ = [
    "DEFAULT_MODELS",
    "ContentPolicyError",
    "HttpOptions",
    "OpenAIImagesEngine",
    "ProviderAuthError",
    "ProviderError",
    "ProviderNotConfiguredError",
    "ProviderRequestError",
    "ReplicateEngine",
    "RetryPolicy",
    "StabilityEngine",
    "build_remote_engines",
]


def build_remote_engines(settings: Settings, options: HttpOptions | None = None) -> dict[str, Engine]:
    """One engine per provider; ``options`` (timeouts, retries, waits) are shared by all of them."""
    return {
        "openai": OpenAIImagesEngine(settings, options),
        "replicate": ReplicateEngine(settings, options),
        "stability": StabilityEngine(settings, options),
    }
