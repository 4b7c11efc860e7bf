"""Route a request to the engine its model reference names: ``openai:dall-e-3`` goes to the
OpenAI engine, ``replicate:owner/model`` to Replicate, anything else to the local engine.

Why a router that is itself an Engine: callers (CLI, queue worker, API) hold one engine and never
branch on providers; adding a provider is adding a row to the provider table (``core.providers``).
A remote engine is built on the first request for its provider, so a process that only runs
local models never imports a provider's module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback, ignore_progress
from limner.core.providers import split_provider
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest, Task
from limner.engines.base import Engine, TaskInputs
from limner.engines.remote import build_remote_engine

RemoteFactory = Callable[[str, Settings], Engine]
"""Builds the engine of one provider: ``factory(provider, settings)``."""


class EngineRouter:
    """An engine that delegates each request to the local engine or a remote provider's engine."""

    def __init__(
        self,
        settings: Settings,
        local: Engine,
        remote: Mapping[str, Engine] | None = None,
        *,
        remote_factory: RemoteFactory = build_remote_engine,
    ) -> None:
        self._settings = settings
        self.local = local
        self._remote = dict(remote or {})
        self._remote_factory = remote_factory
        self._building = threading.Lock()  # worker threads may ask for the same provider at once

    def engine_for(self, request: GenerationRequest) -> Engine:
        if request.task is Task.UPSCALE:  # runs an upscaler model, whatever the default model is
            return self.local
        provider, _ = split_provider(request.model or self._settings.default_model)
        if provider is None:
            return self.local
        if request.task is Task.OUTPAINT or request.hires_scale is not None:
            what = "outpaint" if request.task is Task.OUTPAINT else "the hires fix"
            raise InvalidRequestError(f"{what} runs on local models; {provider} models cannot do it", param="model")
        with self._building:
            engine = self._remote.get(provider)
            if engine is None:
                engine = self._remote[provider] = self._build_remote(provider)
        return engine

    def _build_remote(self, provider: str) -> Engine:
        try:
            return self._remote_factory(provider, self._settings)
        except ImportError as exc:
            raise InvalidRequestError(
                f"the {provider} provider is not available in this installation ({exc})", param="model"
            ) from exc

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
    """The engine every entry point uses: local diffusers plus the remote providers, built on first use.

    ``aliases`` resolves registered model names (the model registry) for the local engine.
    """
    from limner.engines.local.engine import LocalEngine

    return EngineRouter(settings, LocalEngine(settings, aliases=aliases))
