"""The router sends provider-prefixed model references to the remote engines built here."""

from __future__ import annotations

from limner.core.requests import GenerationRequest
from limner.engines.remote import OpenAIImagesEngine, ReplicateEngine, StabilityEngine, build_remote_engines
from limner.engines.router import build_engine
from tests.engines.remote.conftest import remote_settings


def test_build_remote_engines_covers_every_prefix() -> None:
    engines = build_remote_engines(remote_settings())
    assert isinstance(engines["openai"], OpenAIImagesEngine)
    assert isinstance(engines["replicate"], ReplicateEngine)
    assert isinstance(engines["stability"], StabilityEngine)


def test_router_picks_the_remote_engine() -> None:
    router = build_engine(remote_settings())
    assert isinstance(router.engine_for(GenerationRequest(prompt="x", model="openai:dall-e-3")), OpenAIImagesEngine)
    assert isinstance(router.engine_for(GenerationRequest(prompt="x", model="stability:core")), StabilityEngine)
