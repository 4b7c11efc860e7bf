"""The part every remote engine shares: settings, HTTP options, its key, and the checks before a call.

Why a base class: each provider differs in its API, not in how a request is admitted. The key
must be present, the request must be one a remote provider can honour, and the model reference
must name this provider; all three are checked in ``validate`` before anything is sent or paid.
Which key, base URL and default model a provider has is read from the provider table.
"""

from __future__ import annotations

from typing import ClassVar

from limner.config import Settings
from limner.core.providers import PROVIDERS, RemoteProvider
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.remote.checks import check_request, model_name, require_key
from limner.http_client import HttpOptions


class ProviderEngine:
    """Base of the OpenAI, Replicate and Stability engines; a subclass names its provider in the table."""

    info: ClassVar[RemoteProvider]
    provider: ClassVar[str]
    key_variable: ClassVar[str]
    default_model: ClassVar[str]

    def __init_subclass__(cls, *, provider: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.info = PROVIDERS[provider]
        cls.provider = provider
        cls.key_variable = cls.info.key_variable
        cls.default_model = cls.info.default_model

    def __init__(self, settings: Settings, options: HttpOptions | None = None) -> None:
        self._settings = settings
        self._options = options or HttpOptions()

    def _api_key(self) -> str:
        """The key's value, or a one-line error naming the variable to set."""
        return require_key(self._settings.provider_key(self.info), self.key_variable, self.provider)

    def _base_url(self) -> str:
        return self._settings.provider_base_url(self.info)

    def _model_name(self, request: GenerationRequest) -> str:
        """The provider's own model name from ``provider:name`` (the default when empty)."""
        return model_name(request, self._settings, self.provider, self.default_model)

    def _admit(self, request: GenerationRequest, inputs: TaskInputs) -> str:
        """The checks every provider runs first; returns the model name for the provider's own checks."""
        self._api_key()
        check_request(request, inputs, self._settings, self.provider)
        return self._model_name(request)
