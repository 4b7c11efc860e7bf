"""Request validation: every bad field is named with what to fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limner.core.errors import InvalidRequestError
from limner.core.requests import MAX_SEED, GenerationRequest, LoraSpec, RequestLimits, Task, parse_size


def test_defaults_are_a_valid_txt2img_request() -> None:
    request = GenerationRequest(prompt="a cat")
    assert request.task is Task.TXT2IMG
    assert request.seeds(10) == [10]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"prompt": ""}, "needs a prompt"),
        ({"prompt": "x", "width": 65, "height": 64}, "multiple of 8"),
        ({"prompt": "x", "width": 64}, "both width and height"),
        ({"prompt": "x", "width": 16, "height": 16}, "greater than or equal"),
        ({"prompt": "x", "steps": 0}, "greater than or equal"),
        ({"prompt": "x", "seed": -1}, "greater than or equal"),
        ({"prompt": "x", "seed": MAX_SEED + 1}, "less than or equal"),
        ({"prompt": "x", "num_images": 17}, "less than or equal"),
        ({"prompt": "x", "strength": 0}, "greater than"),
        ({"prompt": "x", "scheduler": "nope"}, "euler"),
        ({"prompt": "x", "task": "img2img"}, "needs an input image"),
        ({"prompt": "x", "task": "inpaint", "init_image": "a"}, "needs a mask"),
        ({"prompt": "x", "init_image": "a"}, "takes no init_image"),
        ({"task": "edit", "init_image": "a"}, "needs an instruction"),
        ({"prompt": "a\x00b"}, "control characters"),
        ({"prompt": "x", "owner": "mallory"}, "Extra inputs"),
        ({"task": "img2img", "init_image": "a", "steps": 1}, "int(1 x 0.75) = 0 denoising steps; give at least 2"),
        ({"task": "inpaint", "init_image": "a", "mask_image": "m", "steps": 4, "strength": 0.2}, "at least 5 steps"),
    ],
)
def test_invalid_fields_are_rejected_with_a_reason(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        GenerationRequest.model_validate(fields)
    assert fragment in str(caught.value)


def test_img2img_may_leave_the_prompt_empty() -> None:
    assert GenerationRequest(task=Task.IMG2IMG, init_image="a").prompt == ""


def test_limits_are_checked_per_deployment() -> None:
    request = GenerationRequest(prompt="x", width=1024, height=1024, steps=50)
    request.check_limits(RequestLimits())
    with pytest.raises(InvalidRequestError, match="at most 262144") as caught:
        request.check_limits(RequestLimits(max_pixels=512 * 512))
    assert caught.value.param == "size"
    with pytest.raises(InvalidRequestError, match="steps"):
        request.check_limits(RequestLimits(max_steps=20))


def test_batch_seeds_wrap_inside_the_range() -> None:
    request = GenerationRequest(prompt="x", num_images=3)
    assert request.seeds(MAX_SEED) == [MAX_SEED, 0, 1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512x768", (512, 768)), ("64", (64, 64)), (" 128 X 64 ", (128, 64))],
)
def test_parse_size(text: str, expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "axb", "1x2x3", "12.5x8"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="WIDTHxHEIGHT"):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "ref", "weight"),
    [
        ("style.safetensors", "style.safetensors", 1.0),
        ("style.safetensors:0.5", "style.safetensors", 0.5),
        ("owner/repo:-1", "owner/repo", -1.0),
        ("C:/loras/a.safetensors", "C:/loras/a.safetensors", 1.0),
    ],
)
def test_lora_spec_parse(text: str, ref: str, weight: float) -> None:
    spec = LoraSpec.parse(text)
    assert (spec.ref, spec.weight) == (ref, weight)
