"""Route a request to the engine its model reference names: ``openai:dall-e-3`` goes to the
OpenAI engine, ``replicate:owner/model`` to Replicate, anything else to the local engine.

Why a router that is itself an Engine: callers (CLI, queue worker, API) hold one engine and never
branch on providers; adding a provider is adding an entry to the mapping.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ignore_progress
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import Engine, TaskInputs

REMOTE_PROVIDERS = ("openai", "replicate", "stability")


def split_provider(model_ref: str) -> tuple[str | None, str]:
    """``"openai:dall-e-3"`` -> ``("openai", "dall-e-3")``; a local reference -> ``(None, ref)``."""
    prefix, sep, rest = model_ref.partition(":")
    if sep and prefix.lower() in REMOTE_PROVIDERS:
        return prefix.lower(), rest
    return None, model_ref


class EngineRouter:
    """An engine that delegates each request to the local engine or a remote provider's engine."""

    def __init__(self, settings: Settings, local: Engine, remote: Mapping[str, Engine]) -> None:
        self._settings = settings
        self.local = local
        self._remote = dict(remote)

    def engine_for(self, request: GenerationRequest) -> Engine:
        provider, _ = split_provider(request.model or self._settings.default_model)
        if provider is None:
            return self.local
        engine = self._remote.get(provider)
        if engine is None:
            raise InvalidRequestError(f"the {provider} provider is not available in this installation", param="model")
        return engine

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        self.engine_for(request).validate(request, inputs)

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback = ignore_progress,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        return self.engine_for(request).run(request, inputs, progress, cancel or CancelToken())


def build_engine(settings: Settings, aliases: Callable[[str], str | None] | None = None) -> EngineRouter:
    """The engine every entry point uses: local diffusers plus whichever remote providers are installed.

    ``aliases`` resolves registered model names (the model registry) for the local engine.
    """
    from limner.engines.local.engine import LocalEngine

    remote: dict[str, Engine] = {}
    try:
        from limner.engines.remote import build_remote_engines
    except ImportError:
        pass
    else:
        remote.update(build_remote_engines(settings))
    return EngineRouter(settings, LocalEngine(settings, aliases=aliases), remote)
