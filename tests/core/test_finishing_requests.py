"""Request fields of upscale, outpaint and the hires fix: each belongs to its task, the cap applies to the end size."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limner.core.errors import InvalidRequestError
from limner.core.requests import GenerationRequest, RequestLimits, Task, hires_size


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"task": "upscale", "init_image": "a.png"}, "upscaler"),
        ({"task": "upscale", "upscaler": "x.safetensors"}, "input image"),
        ({"task": "upscale", "init_image": "a.png", "upscaler": "x.safetensors", "width": 64, "height": 64}, "size"),
        ({"task": "upscale", "init_image": "a.png", "upscaler": "x.safetensors", "tile_size": 8}, "tile_size"),
        ({"task": "upscale", "init_image": "a.png", "upscaler": "x.safetensors", "upscale_factor": 9}, "8"),
        ({"prompt": "x", "upscaler": "x.safetensors"}, "task upscale"),
        ({"task": "outpaint", "init_image": "a.png"}, "outpaint field"),
        ({"task": "outpaint", "init_image": "a.png", "outpaint": {}}, "adds nothing"),
        ({"task": "outpaint", "init_image": "a.png", "outpaint": {"left": -8}}, "greater than or equal"),
        ({"prompt": "x", "outpaint": {"left": 8}}, "task outpaint"),
        ({"task": "img2img", "prompt": "x", "init_image": "a.png", "hires_scale": 2}, "txt2img"),
        ({"prompt": "x", "hires_scale": 1.0}, "greater than 1"),
        ({"prompt": "x", "hires_scale": 2, "hires_strength": 0}, "greater than 0"),
    ],
)
def test_bad_finishing_fields_are_refused(fields: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        GenerationRequest.model_validate(fields)


def test_the_pixel_cap_applies_to_the_hires_size() -> None:
    request = GenerationRequest(prompt="x", width=512, height=512, hires_scale=2)
    assert hires_size(512, 512, 2) == (1024, 1024)
    assert hires_size(100, 60, 1.5) == (144, 88)
    request.check_limits(RequestLimits(max_pixels=1024 * 1024))
    with pytest.raises(InvalidRequestError, match="hires fix makes 1024x1024") as caught:
        request.check_limits(RequestLimits(max_pixels=1000 * 1000))
    assert caught.value.param == "hires_scale"


def test_tasks_that_take_their_size_from_the_picture() -> None:
    assert {task for task in Task if task.size_from_input} == {Task.UPSCALE, Task.OUTPAINT}
    assert Task.OUTPAINT.inpaints
    assert Task.OUTPAINT.needs_init_image
    assert not Task.OUTPAINT.needs_mask
