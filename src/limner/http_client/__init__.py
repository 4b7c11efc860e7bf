"""HTTP to services outside limner (image providers, the prompt LLM): one client, one retry rule, one error set.

Why its own package, below ``engines`` and ``prompts``: both talk to OpenAI-style HTTP APIs and
need the same timeouts, retries, cancel-aware waits and mapping of failures to limner errors, but
neither may depend on the other. Built on ``httpx``.
"""

from limner.http_client.client import (
    ErrorInfo,
    ErrorReader,
    HttpOptions,
    ProviderHttp,
    RetryPolicy,
    cancelable_sleep,
    data_url,
    generic_error,
    retry_after_seconds,
    run_cancelable,
)
from limner.http_client.errors import (
    ContentPolicyError,
    ProviderAuthError,
    ProviderError,
    ProviderNotConfiguredError,
    ProviderRequestError,
)

__all__ = [
    "ContentPolicyError",
    "ErrorInfo",
    "ErrorReader",
    "HttpOptions",
    "ProviderAuthError",
    "ProviderError",
    "ProviderHttp",
    "ProviderNotConfiguredError",
    "ProviderRequestError",
    "RetryPolicy",
    "cancelable_sleep",
    "data_url",
    "generic_error",
    "retry_after_seconds",
    "run_cancelable",
]
