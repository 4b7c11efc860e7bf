"""The Stability engine against a loopback server speaking the v2beta Stable Image API."""

from __future__ import annotations

import pytest
from PIL import Image

from limner.core.errors import InvalidRequestError, UnsupportedTaskError
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.remote.stability import StabilityEngine
from limner.http_client import ContentPolicyError, HttpOptions, ProviderError, ProviderNotConfiguredError
from tests.engines.remote.conftest import RecordingSleep, remote_settings
from tests.engines.remote.fakes import FakeStability
from tests.engines.remote.loopback import LoopbackServer, Reply

Fake = tuple[FakeStability, LoopbackServer]


def engine_for(server: LoopbackServer, options: HttpOptions) -> StabilityEngine:
    return StabilityEngine(remote_settings(stability_base_url=server.url), options)


def run(
    engine: StabilityEngine, inputs: TaskInputs | None = None, **fields: object
) -> tuple[list, list[ProgressEvent]]:
    events: list[ProgressEvent] = []
    result = engine.run(GenerationRequest.model_validate(fields), inputs or TaskInputs(), events.append, CancelToken())
    return result.images, events


def test_core_generation_is_multipart_with_aspect_ratio_and_seeds(stability_fake: Fake, options: HttpOptions) -> None:
    _, server = stability_fake
    images, events = run(
        engine_for(server, options),
        prompt="a fox",
        negative_prompt="blur",
        model="stability:core",
        width=1024,
        height=576,
        seed=41,
        num_images=2,
    )
    assert [r.path for r in server.requests] == ["/v2beta/stable-image/generate/core"] * 2
    first = server.requests[0]
    assert first.headers["accept"] == "image/*"
    assert first.headers["content-type"].startswith("multipart/form-data")
    form = {key: part.text for key, part in first.form().items()}
    assert form == {
        "prompt": "a fox",
        "seed": "41",
        "output_format": "png",
        "negative_prompt": "blur",
        "aspect_ratio": "16:9",
    }
    assert [image.record.seed for image in images] == [41, 42]
    assert images[0].image.size == (128, 72)
    assert images[0].record.width == 128  # the size actually drawn
    assert [e.step for e in events] == [1, 2]


def test_sd3_img2img_and_json_answers(stability_fake: Fake, options: HttpOptions) -> None:
    fake, server = stability_fake
    fake.as_json = True
    picture = Image.new("RGB", (64, 64), "green")
    images, _ = run(
        engine_for(server, options),
        TaskInputs(init_image=picture),
        task="img2img",
        prompt="a fox",
        model="stability:sd3.5-large",
        init_image="in.png",
        strength=0.4,
        guidance_scale=5,
        seed=3,
    )
    form = server.requests[0].form()
    assert server.requests[0].path == "/v2beta/stable-image/generate/sd3"
    assert form["mode"].text == "image-to-image"
    assert form["model"].text == "sd3.5-large"
    assert form["strength"].text == "0.4"
    assert form["cfg_scale"].text == "5.0"
    assert form["image"].filename == "image.png"
    assert images[0].record.seed == 3


def test_inpaint_uses_the_edit_endpoint(stability_fake: Fake, options: HttpOptions) -> None:
    _, server = stability_fake
    inputs = TaskInputs(Image.new("RGB", (64, 64)), Image.new("L", (32, 32), 255))
    run(
        engine_for(server, options),
        inputs,
        task="inpaint",
        prompt="a cat",
        model="stability:core",
        init_image="a",
        mask_image="b",
    )
    assert server.requests[0].path == "/v2beta/stable-image/edit/inpaint"
    assert Image.open(__import__("io").BytesIO(server.requests[0].form()["mask"].data)).size == (64, 64)


def test_moderation_403_and_filtered_output(stability_fake: Fake, options: HttpOptions) -> None:
    fake, server = stability_fake
    with pytest.raises(ContentPolicyError, match="flagged by our content moderation"):
        run(engine_for(server, options), prompt="forbidden thing", model="stability:core")
    fake.filtered = True
    with pytest.raises(ContentPolicyError, match="filtered"):
        run(engine_for(server, options), prompt="a fox", model="stability:core")


def test_sizes_and_tasks_are_checked_before_any_call(stability_fake: Fake, options: HttpOptions) -> None:
    _, server = stability_fake
    engine = engine_for(server, options)
    with pytest.raises(InvalidRequestError, match="aspect ratios"):
        engine.validate(GenerationRequest(prompt="x", model="stability:core", width=1000, height=200), TaskInputs())
    with pytest.raises(InvalidRequestError, match="unknown Stability model"):
        engine.validate(GenerationRequest(prompt="x", model="stability:sd9"), TaskInputs())
    with pytest.raises(UnsupportedTaskError):
        engine.validate(
            GenerationRequest(task="img2img", prompt="x", model="stability:core", init_image="a"),
            TaskInputs(init_image=Image.new("RGB", (8, 8))),
        )
    assert server.requests == []


def test_missing_key(options: HttpOptions) -> None:
    settings = remote_settings().model_copy(update={"stability_api_key": None})
    with pytest.raises(ProviderNotConfiguredError, match="STABILITY_API_KEY"):
        StabilityEngine(settings, options).validate(GenerationRequest(prompt="x", model="stability:core"), TaskInputs())


def test_server_errors_retry_then_report(stability_fake: Fake, options: HttpOptions, sleeper: RecordingSleep) -> None:
    fake, server = stability_fake
    fake.faults += [Reply(500, json={"id": "x", "name": "internal_error", "errors": ["boom"]})] * 3
    with pytest.raises(ProviderError, match=r"HTTP 500.*boom"):
        run(engine_for(server, options), prompt="a fox", model="stability:core")
    assert len(server.requests) == 3
    assert sleeper.delays == [0.5, 1.0]
