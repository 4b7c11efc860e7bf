"""The router sends provider-prefixed model references to remote engines, built on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback
from limner.core.providers import PROVIDERS
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import Engine, TaskInputs
from limner.engines.remote import build_remote_engine
from limner.engines.remote.openai_images import OpenAIImagesEngine
from limner.engines.remote.provider import ProviderEngine
from limner.engines.remote.replicate import ReplicateEngine
from limner.engines.remote.stability import StabilityEngine
from limner.engines.router import EngineRouter
from tests.engines.remote.conftest import remote_settings


class _Unused:
    """A local engine the router must not touch for remote references."""

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        raise AssertionError("local engine used")

    def run(
        self,
        request: GenerationRequest,
        inputs: TaskInputs,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> GenerationResult:
        raise AssertionError("local engine used")


def test_every_provider_of_the_table_builds_its_engine() -> None:
    expected = {"openai": OpenAIImagesEngine, "replicate": ReplicateEngine, "stability": StabilityEngine}
    assert set(PROVIDERS) == set(expected)
    for name, engine_type in expected.items():
        engine = build_remote_engine(name, remote_settings())
        assert isinstance(engine, engine_type)
        assert isinstance(engine, ProviderEngine)
        assert (engine.provider, engine.key_variable, engine.default_model) == (
            name,
            PROVIDERS[name].key_variable,
            PROVIDERS[name].default_model,
        )


def test_unknown_provider_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="unknown provider 'midjourney'"):
        build_remote_engine("midjourney", remote_settings())


def test_router_picks_the_remote_engine_and_builds_it_once() -> None:
    built: list[str] = []

    def factory(provider: str, settings: Settings) -> Engine:
        built.append(provider)
        return build_remote_engine(provider, settings)

    router = EngineRouter(remote_settings(), _Unused(), remote_factory=factory)
    assert isinstance(router.engine_for(GenerationRequest(prompt="x", model="openai:dall-e-3")), OpenAIImagesEngine)
    assert isinstance(router.engine_for(GenerationRequest(prompt="x", model="stability:core")), StabilityEngine)
    assert isinstance(router.engine_for(GenerationRequest(prompt="x", model="OpenAI:gpt-image-1")), OpenAIImagesEngine)
    assert built == ["openai", "stability"]
    assert router.engine_for(GenerationRequest(prompt="x", model="C:/models/x.safetensors")) is router.local


def test_a_provider_whose_module_cannot_be_imported_is_a_bad_request() -> None:
    def factory(provider: str, settings: Settings) -> Engine:
        raise ImportError(f"No module named '{provider}_client'")

    router = EngineRouter(remote_settings(), _Unused(), remote_factory=factory)
    with pytest.raises(InvalidRequestError, match="replicate provider is not available"):
        router.engine_for(GenerationRequest(prompt="x", model="replicate:owner/model"))


def test_provider_modules_are_imported_only_when_used() -> None:
    """Asking for OpenAI imports OpenAI's engine module, and no other provider's."""
    code = (
        "import sys\n"
        "from limner.config import Settings\n"
        "from limner.core.requests import GenerationRequest\n"
        "from limner.engines.router import EngineRouter\n"
        "router = EngineRouter(Settings(_env_file=None), local=None)\n"
        "assert not [m for m in sys.modules if m.startswith('limner.engines.remote.')], sys.modules\n"
        "router.engine_for(GenerationRequest(prompt='x', model='openai:dall-e-3'))\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('limner.engines.remote.'))\n"
        "assert 'limner.engines.remote.openai_images' in loaded, loaded\n"
        "assert 'limner.engines.remote.replicate' not in loaded, loaded\n"
        "assert 'limner.engines.remote.stability' not in loaded, loaded\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
