"""The OpenAI engine against a loopback server speaking the Images API."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError, UnsupportedTaskError
from limner.core.metadata import to_a1111_parameters
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.remote.openai_images import OpenAIImagesEngine, openai_mask
from limner.http_client import ContentPolicyError, HttpOptions, ProviderNotConfiguredError, ProviderRequestError
from limner.imaging.png import read_parameters, save_png
from tests.engines.remote.conftest import RecordingSleep, remote_settings
from tests.engines.remote.fakes import FakeOpenAI
from tests.engines.remote.loopback import LoopbackServer, Reply

Fake = tuple[FakeOpenAI, LoopbackServer]


def engine_for(server: LoopbackServer, options: HttpOptions) -> OpenAIImagesEngine:
    return OpenAIImagesEngine(remote_settings(openai_base_url=f"{server.url}/v1"), options)


def run(
    engine: OpenAIImagesEngine, inputs: TaskInputs | None = None, **fields: object
) -> tuple[list, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    request = GenerationRequest.model_validate(fields)
    result = engine.run(request, inputs or TaskInputs(), events.append, CancelToken())
    return result.images, events


def test_dall_e_3_generation_records_revised_prompt_and_params(
    openai_fake: Fake, options: HttpOptions, tmp_path
) -> None:
    _fake, server = openai_fake
    images, events = run(
        engine_for(server, options),
        prompt="a fox",
        model="openai:dall-e-3",
        width=1792,
        height=1024,
        num_images=2,
        steps=30,
    )
    generations = [r for r in server.requests if r.path == "/v1/images/generations"]
    assert len(generations) == 2  # dall-e-3 makes one image per call
    body = generations[0].json()
    assert body == {"model": "dall-e-3", "n": 1, "size": "1792x1024", "response_format": "b64_json", "prompt": "a fox"}
    assert generations[0].headers["authorization"] == "Bearer test-key"
    assert [e.step for e in events] == [1, 2]
    record = images[0].record
    assert (record.provider, record.model_name, record.revised_prompt) == (
        "openai",
        "openai:dall-e-3",
        "a revised prompt",
    )
    assert record.provider_details["ignored"] == ["steps"]
    assert record.provider_details["request_id"] == "req_123"
    assert (record.width, record.height) == (112, 64)  # the fake draws 1/16 scale
    assert record.applied == []  # DALL-E was sent no steps, guidance, seed or negative prompt
    text = to_a1111_parameters(record)
    for absent in ("Steps:", "CFG scale:", "Seed:", "Sampler:"):
        assert absent not in text

    path = save_png(images[0], tmp_path, compress_level=1)
    stored, a1111 = read_parameters(path)
    assert stored is not None
    assert stored.provider == "openai"
    assert stored.revised_prompt == "a revised prompt"
    assert a1111 is not None
    assert a1111["Model"] == "openai:dall-e-3"


def test_gpt_image_sends_n_and_no_response_format(openai_fake: Fake, options: HttpOptions) -> None:
    _, server = openai_fake
    images, _ = run(engine_for(server, options), prompt="a fox", model="openai:gpt-image-1", num_images=3)
    (call,) = server.requests
    assert call.json() == {"model": "gpt-image-1", "n": 3, "prompt": "a fox"}
    assert len(images) == 3
    assert images[0].record.revised_prompt is None


def test_url_answers_are_downloaded(openai_fake: Fake, options: HttpOptions) -> None:
    fake, server = openai_fake
    fake.answer_with_url = True
    images, _ = run(engine_for(server, options), prompt="a fox", model="openai:dall-e-2")
    assert images[0].image.size == (32, 32)


def test_inpaint_posts_multipart_with_an_alpha_mask(openai_fake: Fake, options: HttpOptions) -> None:
    _, server = openai_fake
    picture = Image.new("RGB", (64, 64), "white")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    images, _ = run(
        engine_for(server, options),
        TaskInputs(picture, mask),
        task="inpaint",
        prompt="a cat",
        model="openai:gpt-image-1",
        init_image="in.png",
        mask_image="mask.png",
    )
    (call,) = server.requests
    assert call.path == "/v1/images/edits"
    form = call.form()
    assert form["image"].filename == "image.png"
    assert form["prompt"].text == "a cat"
    sent_mask = Image.open(io.BytesIO(form["mask"].data))
    assert sent_mask.mode == "RGBA"
    assert sent_mask.getpixel((0, 0))[3] == 0
    assert sent_mask.getpixel((63, 0))[3] == 255
    assert images[0].record.request.task.value == "inpaint"


def test_moderation_refusal_is_a_content_policy_error(openai_fake: Fake, options: HttpOptions) -> None:
    _, server = openai_fake
    with pytest.raises(ContentPolicyError, match="safety system") as caught:
        run(engine_for(server, options), prompt="something forbidden", model="openai:dall-e-3")
    assert isinstance(caught.value, InvalidRequestError)
    assert caught.value.code == "content_policy_violation"


def test_bad_size_from_the_provider_carries_its_message(openai_fake: Fake, options: HttpOptions) -> None:
    _, server = openai_fake
    with pytest.raises(ProviderRequestError, match="not one of the supported sizes"):
        run(engine_for(server, options), prompt="a fox", model="openai:my-compatible-model", width=640, height=480)


def test_known_model_sizes_are_checked_before_any_call(openai_fake: Fake, options: HttpOptions) -> None:
    _, server = openai_fake
    engine = engine_for(server, options)
    request = GenerationRequest(prompt="a fox", model="openai:dall-e-3", width=1024, height=576)
    with pytest.raises(InvalidRequestError, match="1024x1792, 1792x1024"):
        engine.validate(request, TaskInputs())
    with pytest.raises(UnsupportedTaskError):
        engine.validate(
            GenerationRequest(task="img2img", prompt="x", model="openai:gpt-image-1", init_image="a.png"),
            TaskInputs(init_image=Image.new("RGB", (8, 8))),
        )
    assert server.requests == []


def test_missing_key_names_the_variable(options: HttpOptions) -> None:
    settings = remote_settings()
    settings = settings.model_copy(update={"openai_api_key": None})
    with pytest.raises(ProviderNotConfiguredError) as caught:
        OpenAIImagesEngine(settings, options).validate(
            GenerationRequest(prompt="x", model="openai:dall-e-3"), TaskInputs()
        )
    assert "OPENAI_API_KEY is not set" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_429_with_retry_after_then_success(openai_fake: Fake, options: HttpOptions, sleeper: RecordingSleep) -> None:
    fake, server = openai_fake
    fake.faults.append(
        Reply(
            429,
            json={"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}},
            headers={"Retry-After": "1.5"},
        )
    )
    images, _ = run(engine_for(server, options), prompt="a fox", model="openai:dall-e-3")
    assert len(images) == 1
    assert sleeper.delays == [1.5]


def test_malformed_answer_is_reported_not_raised_raw(openai_fake: Fake, options: HttpOptions) -> None:
    from limner.http_client import ProviderError

    fake, server = openai_fake
    fake.faults.append(Reply(body=b'{"data": [', headers={"Content-Type": "application/json"}))
    with pytest.raises(ProviderError, match="not JSON"):
        run(engine_for(server, options), prompt="a fox", model="openai:dall-e-3")
    fake.faults.append(Reply(json={"data": [{"b64_json": "%%%"}]}))
    with pytest.raises(ProviderError, match="broken base64"):
        run(engine_for(server, options), prompt="a fox", model="openai:dall-e-3")


def test_openai_mask_inverts_ours() -> None:
    mask = Image.new("L", (4, 4), 255)
    converted = Image.open(io.BytesIO(openai_mask(mask, (8, 8))))
    assert converted.size == (8, 8)
    assert converted.getpixel((0, 0))[3] == 0
