"""Controls are a local feature: every remote provider refuses them before any call (nothing paid, nothing dropped)."""

from __future__ import annotations

import pytest

from limner.core.errors import InvalidRequestError
from limner.core.providers import PROVIDERS
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.remote import build_remote_engine
from tests.engines.remote.conftest import remote_settings


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_remote_provider_refuses_controls(provider: str) -> None:
    engine = build_remote_engine(provider, remote_settings())
    request = GenerationRequest.model_validate(
        {"prompt": "a house", "model": f"{provider}:", "controls": [{"image": "c.png", "model": "a/b"}]}
    )
    with pytest.raises(InvalidRequestError, match="controls") as raised:
        engine.validate(request, TaskInputs(control_images=(object(),)))
    assert raised.value.param == "controls"
