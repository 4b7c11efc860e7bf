"""The remote image providers limner knows, in one table: the router, the settings and the CLI derive from it.

Why one table: a provider used to be listed in four places (router, engine factory, settings, CLI
choices) that had to agree. This module is plain data and string helpers, importing neither torch
nor any provider's client, so entry points read it without paying for an engine. The engine
itself is named by import path and imported only when a request first uses that provider.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

LOCAL = "local"


@dataclass(frozen=True)
class RemoteProvider:
    """One remote provider: how a model reference names it and where its key and engine are."""

    name: str
    """The model-reference prefix, ``openai`` in ``openai:dall-e-3``."""
    display_name: str
    key_variable: str
    """The environment variable of its key, the provider's own name for it (as its official client reads)."""
    key_setting: str
    """The ``Settings`` attribute that holds the key."""
    base_url_variable: str
    base_url_setting: str
    default_base_url: str
    default_model: str
    """The model used for ``name:`` with no model after the colon."""
    engine_factory: str
    """``module:attribute`` of the engine class, called as ``factory(settings, options)``."""


OPENAI = RemoteProvider(
    name="openai",
    display_name="OpenAI Images",
    key_variable="OPENAI_API_KEY",
    key_setting="openai_api_key",
    base_url_variable="OPENAI_BASE_URL",
    base_url_setting="openai_base_url",
    default_base_url="https://api.openai.com/v1",
    default_model="dall-e-3",
    engine_factory="limner.engines.remote.openai_images:OpenAIImagesEngine",
)
REPLICATE = RemoteProvider(
    name="replicate",
    display_name="Replicate",
    key_variable="REPLICATE_API_TOKEN",
    key_setting="replicate_api_token",
    base_url_variable="REPLICATE_BASE_URL",
    base_url_setting="replicate_base_url",
    default_base_url="https://api.replicate.com/v1",
    default_model="black-forest-labs/flux-schnell",
    engine_factory="limner.engines.remote.replicate:ReplicateEngine",
)
STABILITY = RemoteProvider(
    name="stability",
    display_name="Stability AI",
    key_variable="STABILITY_API_KEY",
    key_setting="stability_api_key",
    base_url_variable="STABILITY_BASE_URL",
    base_url_setting="stability_base_url",
    default_base_url="https://api.stability.ai",
    default_model="core",
    engine_factory="limner.engines.remote.stability:StabilityEngine",
)

PROVIDERS = MappingProxyType({provider.name: provider for provider in (OPENAI, REPLICATE, STABILITY)})
"""Every remote provider by name, in the order the CLI lists them."""
PROVIDER_NAMES: tuple[str, ...] = tuple(PROVIDERS)
PROVIDER_CHOICES: tuple[str, ...] = (LOCAL, *PROVIDER_NAMES)
"""What a ``--provider`` option accepts: the local engine or a remote provider."""


def split_provider(model_ref: str) -> tuple[str | None, str]:
    """``"openai:dall-e-3"`` -> ``("openai", "dall-e-3")``; a local reference -> ``(None, ref)``.

    Only a known provider's prefix counts, so a local path such as ``C:/models/x`` stays local.
    """
    prefix, sep, rest = model_ref.partition(":")
    if sep and prefix.lower() in PROVIDERS:
        return prefix.lower(), rest
    return None, model_ref


def provider_ref(provider: str, model: str | None) -> str:
    """``provider:model`` for a remote provider (its default model when ``model`` is empty).

    A model already written with the prefix is kept as it is.
    """
    name = model or PROVIDERS[provider].default_model
    return name if name.startswith(f"{provider}:") else f"{provider}:{name}"
