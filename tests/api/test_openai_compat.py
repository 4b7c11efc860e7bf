"""The official ``openai`` client against a live limner server on loopback."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from PIL import Image

from tests.api.live_server import LiveServer


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> Iterator[openai.OpenAI]:
    server = LiveServer(tmp_path_factory.mktemp("openai-server"), tiny_models["txt2img"])
    server.start()
    try:
        headers = {"Authorization": f"Bearer {server.token()}"}
        key = httpx.post(f"{server.url}/v1/api-keys", json={"name": "openai client"}, headers=headers).json()["key"]
        yield openai.OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0, timeout=120)
    finally:
        server.stop()


def decode(datum: object) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(datum.b64_json)))  # type: ignore[attr-defined]


def png(color: str, alpha_hole: bool = False) -> bytes:
    image = Image.new("RGBA", (64, 64), color)
    if alpha_hole:
        image.paste((0, 0, 0, 0), (16, 16, 48, 48))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_generate(client: openai.OpenAI) -> None:
    result = client.images.generate(model="dall-e-2", prompt="a red fox", n=2, size="64x64",  # type: ignore[arg-type]
                                    response_format="b64_json")  # fmt: skip
    assert len(result.data) == 2
    assert decode(result.data[0]).size == (64, 64)


def test_url_response_is_an_absolute_signed_link_that_needs_no_key(client: openai.OpenAI) -> None:
    """OpenAI clients download ``url`` directly, without the API key: the link carries the permission."""
    result = client.images.generate(prompt="a boat", size="64x64", response_format="url")  # type: ignore[arg-type]
    url = result.data[0].url
    assert url is not None
    server = str(client.base_url).removesuffix("/v1/").removesuffix("/v1")
    assert url.startswith(f"{server}/v1/images/")
    downloaded = httpx.get(url)
    assert downloaded.status_code == 200
    assert Image.open(io.BytesIO(downloaded.content)).size == (64, 64)
    forged = httpx.get(url[:-4] + ("0000" if not url.endswith("0000") else "1111"))
    assert forged.status_code == 403
    assert forged.json()["error"]["type"] == "permission_error"


def test_edit_with_mask(client: openai.OpenAI) -> None:
    result = client.images.edit(
        image=("photo.png", png("blue")), mask=("mask.png", png("white", alpha_hole=True)),
        prompt="a red door", size="64x64",  # type: ignore[arg-type]
    )  # fmt: skip
    assert decode(result.data[0]).size == (64, 64)


def test_variation(client: openai.OpenAI) -> None:
    result = client.images.create_variation(image=("photo.png", png("green")), n=1, size="64x64")  # type: ignore[arg-type]
    assert decode(result.data[0]).size == (64, 64)


def test_errors_reach_the_client_as_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="x", size="65x64")  # type: ignore[arg-type]
    assert "multiple of 8" in str(caught.value)
    bad = openai.OpenAI(base_url=str(client.base_url), api_key="lmn_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.images.generate(prompt="x")
