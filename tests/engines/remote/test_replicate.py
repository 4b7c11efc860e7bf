"""The Replicate engine against a loopback server speaking the predictions API."""

from __future__ import annotations

import random
import threading

import pytest
from PIL import Image

from limner.core.errors import GenerationCanceledError, InvalidRequestError
from limner.core.progress import CancelToken, ProgressEvent
from limner.core.requests import GenerationRequest
from limner.engines.base import TaskInputs
from limner.engines.remote.replicate import ReplicateEngine, parse_ref
from limner.http_client import ContentPolicyError, HttpOptions, ProviderAuthError, ProviderError, ProviderRequestError
from tests.engines.remote.conftest import RecordingSleep, remote_settings
from tests.engines.remote.fakes import FakeReplicate
from tests.engines.remote.loopback import LoopbackServer, Reply

Fake = tuple[FakeReplicate, LoopbackServer]


def engine_for(server: LoopbackServer, options: HttpOptions, **extra: object) -> ReplicateEngine:
    return ReplicateEngine(remote_settings(replicate_base_url=f"{server.url}/v1", **extra), options)


def test_prefer_wait_answers_in_one_call(replicate_fake: Fake, options: HttpOptions) -> None:
    _, server = replicate_fake
    request = GenerationRequest(
        prompt="a fox", model="replicate:black-forest-labs/flux-schnell", width=1024, height=576, seed=5
    )
    result = engine_for(server, options).run(request, TaskInputs(), lambda _: None, CancelToken())
    create = server.requests[0]
    assert create.path == "/v1/models/black-forest-labs/flux-schnell/predictions"
    assert create.headers["prefer"] == "wait=5"
    assert create.json() == {"input": {"prompt": "a fox", "output_format": "png", "aspect_ratio": "16:9", "seed": 5}}
    assert server.requests[1].path.startswith("/delivery/")
    assert "authorization" in server.requests[1].headers  # same origin as the API in this test
    record = result.images[0].record
    assert record.provider == "replicate"
    assert record.seed == 5
    assert record.provider_details["prediction_id"] == "p1"
    assert record.provider_details["params"] == {"output_format": "png", "aspect_ratio": "16:9", "seed": 5}


def test_versioned_model_polls_with_progress_and_one_prediction_per_image(
    replicate_fake: Fake, options: HttpOptions
) -> None:
    fake, server = replicate_fake
    fake.polls_before_done = 3
    events: list[ProgressEvent] = []
    version = "a" * 64
    request = GenerationRequest(
        prompt="a fox",
        model=f"replicate:stability-ai/sdxl:{version}",
        width=512,
        height=512,
        seed=10,
        num_images=2,
        steps=30,
        negative_prompt="ugly",
    )
    result = engine_for(server, options).run(request, TaskInputs(), events.append, CancelToken())
    creates = [r for r in server.requests if r.path == "/v1/predictions"]
    assert [c.json()["input"]["seed"] for c in creates] == [10, 11]
    assert creates[0].json()["version"] == version
    assert creates[0].json()["input"]["num_inference_steps"] == 30
    assert creates[0].json()["input"]["negative_prompt"] == "ugly"
    assert "guidance_scale" not in creates[0].json()["input"]  # not set by the user: the model's default applies
    assert [image.record.seed for image in result.images] == [10, 11]
    assert [(e.step, e.total_steps) for e in events] == [(10, 60), (20, 60), (30, 60), (40, 60), (50, 60), (60, 60)]


def test_cancel_while_polling_cancels_the_prediction(replicate_fake: Fake, sleeper: RecordingSleep) -> None:
    fake, server = replicate_fake
    fake.polls_before_done = 1000
    cancel = CancelToken()
    polls = 0

    def sleep(seconds: float, token: CancelToken) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            cancel.cancel()
        sleeper(seconds, token)

    options = HttpOptions(timeout_s=2.0, poll_interval_s=0.01, sleep=sleep)
    with pytest.raises(GenerationCanceledError):
        engine_for(server, options).run(
            GenerationRequest(prompt="a fox", model="replicate:acme/slow"), TaskInputs(), lambda _: None, cancel
        )
    assert server.requests[-1].path == "/v1/predictions/p1/cancel"
    assert fake.predictions["p1"]["status"] == "canceled"


def test_failed_prediction_nsfw_is_content_policy(replicate_fake: Fake, options: HttpOptions) -> None:
    fake, server = replicate_fake
    fake.fail_with = "NSFW content detected. Try running it again, or try a different prompt."
    with pytest.raises(ContentPolicyError, match="NSFW content detected"):
        engine_for(server, options).run(
            GenerationRequest(prompt="x", model="replicate:acme/m"), TaskInputs(), lambda _: None, CancelToken()
        )
    fake.fail_with = "CUDA out of memory"
    with pytest.raises(ProviderError, match="CUDA out of memory") as caught:
        engine_for(server, options).run(
            GenerationRequest(prompt="x", model="replicate:acme/m"), TaskInputs(), lambda _: None, CancelToken()
        )
    assert not isinstance(caught.value, InvalidRequestError)


def test_problem_details_errors(replicate_fake: Fake, options: HttpOptions) -> None:
    fake, server = replicate_fake
    with pytest.raises(ProviderRequestError, match="could not be found"):
        engine_for(server, options).run(
            GenerationRequest(prompt="x", model="replicate:acme/unknown"), TaskInputs(), lambda _: None, CancelToken()
        )
    fake.faults.append(
        Reply(
            401,
            json={"title": "Unauthenticated", "detail": "You did not pass a valid authentication token", "status": 401},
        )
    )
    with pytest.raises(ProviderAuthError, match="REPLICATE_API_TOKEN"):
        engine_for(server, options).run(
            GenerationRequest(prompt="x", model="replicate:acme/m"), TaskInputs(), lambda _: None, CancelToken()
        )


def test_5xx_on_poll_is_retried(replicate_fake: Fake, options: HttpOptions, sleeper: RecordingSleep) -> None:
    fake, server = replicate_fake
    fake.polls_before_done = 1

    original = fake.__call__
    served = {"broken": False}

    def flaky(request):  # type: ignore[no-untyped-def]
        if request.method == "GET" and "/predictions/" in request.path and not served["broken"]:
            served["broken"] = True
            return Reply(502, body=b"bad gateway")
        return original(request)

    server._handler = flaky  # type: ignore[assignment]
    result = engine_for(server, options).run(
        GenerationRequest(prompt="x", model="replicate:acme/m"), TaskInputs(), lambda _: None, CancelToken()
    )
    assert len(result.images) == 1
    assert 0.5 in sleeper.delays


def test_img2img_inlines_small_pictures_and_uploads_large_ones(replicate_fake: Fake, options: HttpOptions) -> None:
    _, server = replicate_fake
    engine = engine_for(server, options)
    small = Image.new("RGB", (64, 64), "red")
    request = GenerationRequest(
        task="img2img", prompt="x", model="replicate:stability-ai/sdxl", init_image="a.png", strength=0.6
    )
    engine.run(request, TaskInputs(init_image=small), lambda _: None, CancelToken())
    payload = server.requests[0].json()["input"]
    assert payload["image"].startswith("data:image/png;base64,")
    assert payload["prompt_strength"] == 0.6

    noisy = Image.frombytes("RGB", (400, 400), random.Random(0).randbytes(400 * 400 * 3))  # incompressible
    server.requests.clear()
    engine.run(request, TaskInputs(init_image=noisy), lambda _: None, CancelToken())
    assert server.requests[0].path == "/v1/files"
    assert server.requests[1].json()["input"]["image"].endswith("/v1/files/file1")


def test_references_and_profiles_are_checked_before_any_call(replicate_fake: Fake, options: HttpOptions) -> None:
    _, server = replicate_fake
    engine = engine_for(server, options)
    with pytest.raises(InvalidRequestError, match="owner/model"):
        engine.validate(GenerationRequest(prompt="x", model="replicate:just-a-name"), TaskInputs())
    with pytest.raises(InvalidRequestError, match="aspect ratios"):
        engine.validate(
            GenerationRequest(prompt="x", model="replicate:black-forest-labs/flux-schnell", width=1000, height=208),
            TaskInputs(),
        )
    with pytest.raises(InvalidRequestError, match="does not do inpaint"):
        engine.validate(
            GenerationRequest(
                task="inpaint",
                prompt="x",
                model="replicate:black-forest-labs/flux-schnell",
                init_image="a",
                mask_image="b",
            ),
            TaskInputs(Image.new("RGB", (8, 8)), Image.new("L", (8, 8))),
        )
    assert server.requests == []
    assert str(parse_ref("owner/model:abc")) == "owner/model:abc"


def test_slow_create_is_followed_by_polling(replicate_fake: Fake, options: HttpOptions) -> None:
    fake, server = replicate_fake
    fake.polls_before_done = 2
    holder: list[object] = []
    thread = threading.Thread(
        target=lambda: holder.append(
            engine_for(server, options).run(
                GenerationRequest(prompt="x", model="replicate:acme/m"), TaskInputs(), lambda _: None, CancelToken()
            )
        )
    )
    thread.start()
    thread.join(5)
    assert holder
    assert [r.method for r in server.requests[:3]] == ["POST", "GET", "GET"]


INSTANTCHARACTER = "replicate:tencent/instantcharacter"


def test_character_sends_the_reference_scale_and_the_models_own_style(
    replicate_fake: Fake, options: HttpOptions
) -> None:
    _, server = replicate_fake
    request = GenerationRequest(
        task="character", prompt="ghibli style, drinking beer in a bar", model=INSTANTCHARACTER,
        reference_images=["ref.png"], style="ghibli", ip_adapter_scale=0.9, steps=28, seed=4,
        width=1024, height=768,
    )  # fmt: skip
    reference = Image.new("RGB", (64, 64), "purple")
    result = engine_for(server, options).run(request, TaskInputs(reference_images=(reference,)), print, CancelToken())
    create = server.requests[0]
    assert create.path == "/v1/models/tencent/instantcharacter/predictions"
    payload = create.json()["input"]
    assert payload["subject_image"].startswith("data:image/png;base64,")
    assert {k: v for k, v in payload.items() if k != "subject_image"} == {
        "prompt": "ghibli style, drinking beer in a bar",
        "output_format": "png",
        "width": 1024,
        "height": 768,
        "num_inference_steps": 28,
        "seed": 4,
        "subject_scale": 0.9,
        "style": "ghibli_style",
    }
    record = result.images[0].record
    assert record.request.task.value == "character"
    assert "subject_image" not in record.provider_details["params"]


def test_character_requests_the_model_cannot_serve_are_refused_before_any_call(
    replicate_fake: Fake, options: HttpOptions
) -> None:
    _, server = replicate_fake
    engine = engine_for(server, options)
    one = TaskInputs(reference_images=(Image.new("RGB", (8, 8)),))
    two = TaskInputs(reference_images=(Image.new("RGB", (8, 8)), Image.new("RGB", (8, 8))))

    def character(**extra: object) -> GenerationRequest:
        fields: dict[str, object] = {"task": "character", "prompt": "x", "reference_images": ["a.png"]}
        return GenerationRequest.model_validate({**fields, "model": INSTANTCHARACTER, **extra})

    with pytest.raises(InvalidRequestError, match="takes one reference picture"):
        engine.validate(character(reference_images=["a.png", "b.png"]), two)
    with pytest.raises(InvalidRequestError, match=r"no style 'watercolor'.*ghibli, makoto"):
        engine.validate(character(style="watercolor"), one)
    with pytest.raises(InvalidRequestError, match="does not do character"):
        engine.validate(character(model="replicate:black-forest-labs/flux-schnell"), one)
    with pytest.raises(InvalidRequestError, match="does not do txt2img"):
        engine.validate(GenerationRequest(prompt="x", model=INSTANTCHARACTER), TaskInputs())
    assert server.requests == []
