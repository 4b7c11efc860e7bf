"""Remote image providers behind the same ``Engine`` interface as the local engine.

``build_remote_engine(name, settings)`` builds the engine the provider table names for ``name``,
importing that provider's module only then: a process that never asks for Stability never imports
it. Engines are built even without keys: a missing key is reported, naming its variable, when a
request for that provider is validated.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from limner.core.errors import InvalidRequestError
from limner.core.providers import PROVIDERS

if TYPE_CHECKING:
    from limner.config import Settings
    from limner.engines.base import Engine
    from limner.http_client import HttpOptions

__all__ = ["build_remote_engine"]


def build_remote_engine(provider: str, settings: Settings, options: HttpOptions | None = None) -> Engine:
    """The engine of one provider of the table; ``options`` (timeouts, retries, waits) default to real ones."""
    info = PROVIDERS.get(provider)
    if info is None:
        raise InvalidRequestError(f"unknown provider {provider!r} (known: {', '.join(PROVIDERS)})", param="model")
    module_name, _, attribute = info.engine_factory.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    engine: Engine = factory(settings, options)
    return engine
