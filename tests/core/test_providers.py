"""The provider table: the settings, the CLI choices and model references all follow it."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from limner.config import Settings
from limner.core.providers import LOCAL, PROVIDER_CHOICES, PROVIDERS, provider_ref, split_provider


def test_every_provider_has_its_key_and_base_url_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for provider in PROVIDERS.values():
        monkeypatch.setenv(provider.key_variable, f"key-of-{provider.name}")
        monkeypatch.setenv(provider.base_url_variable, f"http://127.0.0.1:9/{provider.name}")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for provider in PROVIDERS.values():
        assert provider.key_setting in Settings.model_fields
        assert provider.base_url_setting in Settings.model_fields
        key = settings.provider_key(provider)
        assert isinstance(key, SecretStr)
        assert key.get_secret_value() == f"key-of-{provider.name}"
        assert settings.provider_base_url(provider) == f"http://127.0.0.1:9/{provider.name}"


def test_base_urls_default_to_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    for provider in PROVIDERS.values():
        monkeypatch.delenv(provider.base_url_variable, raising=False)
        monkeypatch.delenv(provider.key_variable, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    for provider in PROVIDERS.values():
        assert settings.provider_base_url(provider) == provider.default_base_url
        assert settings.provider_key(provider) is None


def test_choices_are_local_then_the_table() -> None:
    assert PROVIDER_CHOICES == (LOCAL, "openai", "replicate", "stability")
    assert all(provider.engine_factory.startswith("limner.engines.remote.") for provider in PROVIDERS.values())


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("openai:dall-e-3", ("openai", "dall-e-3")),
        ("Replicate:owner/model", ("replicate", "owner/model")),
        ("stability:", ("stability", "")),
        ("limner-tiny", (None, "limner-tiny")),
        ("C:/models/x.safetensors", (None, "C:/models/x.safetensors")),
        ("owner/repo", (None, "owner/repo")),
    ],
)
def test_split_provider(ref: str, expected: tuple[str | None, str]) -> None:
    assert split_provider(ref) == expected


def test_provider_ref_fills_the_default_model() -> None:
    assert provider_ref("openai", None) == "openai:dall-e-3"
    assert provider_ref("replicate", "owner/model") == "replicate:owner/model"
    assert provider_ref("stability", "stability:ultra") == "stability:ultra"
