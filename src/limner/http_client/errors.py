"""Errors from remote services (image providers, the prompt LLM), as limner errors the CLI and the API
already know how to report.

Why a small hierarchy here (and not in ``core.errors``): only code that calls a remote service over
``http_client`` raises these, and each one is a subclass of a core error, so entry points map them
without knowing providers.
A request the provider refuses is the caller's to fix (an ``InvalidRequestError``, never a 500);
a provider that fails or cannot be reached is a ``ProviderError``.
"""

from __future__ import annotations

from limner.core.errors import InvalidRequestError, LimnerError


class ProviderError(LimnerError):
    """A remote provider failed: unreachable, timed out, rate limited, 5xx, or an unreadable answer."""

    code = "provider_error"

    def __init__(self, message: str, *, provider: str, status: int | None = None, param: str | None = None) -> None:
        super().__init__(f"{provider}: {message}", param=param)
        self.provider = provider
        self.status = status


class ProviderNotConfiguredError(ProviderError, InvalidRequestError):
    """The provider's key is not set: the caller's request cannot run here (a 4xx, not a server fault).

    The message names the environment variable to set (for the operator at a CLI); API users get
    :attr:`public_message`, which says only that this server does not offer the provider.
    """

    code = "provider_not_configured"

    @property
    def public_message(self) -> str:
        return f"this server is not set up to use {self.provider} models; pick another model or ask an admin"


class ProviderAuthError(ProviderError):
    """The provider rejected the key (401/403) or the account cannot pay (402)."""

    code = "provider_auth_failed"


class ProviderRequestError(ProviderError, InvalidRequestError):
    """The provider refused the request as invalid (4xx): bad size, unknown model, bad input."""

    code = "provider_invalid_request"


class ContentPolicyError(ProviderRequestError):
    """The provider's moderation refused the prompt or filtered the output image."""

    code = "content_policy_violation"
