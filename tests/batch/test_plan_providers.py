"""A batch's provider is one of the provider table's (or local), and its model reference follows the table."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limner.batch.plan import BatchOptions
from limner.core.providers import PROVIDER_CHOICES, PROVIDERS


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown provider 'midjourney'"):
        BatchOptions(provider="midjourney")


def test_model_reference_per_provider() -> None:
    assert BatchOptions().model_ref() is None
    assert BatchOptions(model="./dogs").model_ref() == "./dogs"
    for name, provider in PROVIDERS.items():
        assert BatchOptions(provider=name).model_ref() == f"{name}:{provider.default_model}"
    assert BatchOptions(provider="replicate", model="owner/model").model_ref() == "replicate:owner/model"
    assert BatchOptions(provider="openai", model="openai:gpt-image-1").model_ref() == "openai:gpt-image-1"


def test_schema_lists_the_choices() -> None:
    schema = BatchOptions.model_json_schema()
    assert schema["properties"]["provider"]["enum"] == list(PROVIDER_CHOICES)
