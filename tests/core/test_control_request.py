"""The ``controls`` of a request: the CLI form IMAGE[:TYPE][:WEIGHT], limits and what a task accepts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from limner.core.metadata import parse_a1111_parameters, to_a1111_parameters
from limner.core.records import ImageRecord
from limner.core.requests import MAX_CONTROLS, ControlSpec, ControlType, GenerationRequest


@pytest.mark.parametrize(
    ("text", "path", "kind", "weight"),
    [
        ("edge.png", "edge.png", ControlType.CANNY, 1.0),
        ("edge.png:scribble", "edge.png", ControlType.SCRIBBLE, 1.0),
        ("edge.png:0.6", "edge.png", ControlType.CANNY, 0.6),
        ("edge.png:NONE:1.5", "edge.png", ControlType.NONE, 1.5),
        ("C:\\pics\\a.png:depth", "C:\\pics\\a.png", ControlType.DEPTH, 1.0),
        ("dir:x/a.png", "dir:x/a.png", ControlType.CANNY, 1.0),
    ],
)
def test_parse(text: str, path: str, kind: ControlType, weight: float) -> None:
    spec = ControlSpec.parse(text, model="a/b")
    assert (spec.image.path, spec.type, spec.weight, spec.model) == (path, kind, weight, "a/b")


def test_parse_refuses_an_unknown_type() -> None:
    with pytest.raises(ValueError, match="not a control type"):
        ControlSpec.parse("edge.png:edges")


def test_limits_and_tasks() -> None:
    control = {"image": "c.png", "model": "a/b"}
    with pytest.raises(ValidationError, match="at most 4"):
        GenerationRequest.model_validate({"prompt": "x", "controls": [control] * (MAX_CONTROLS + 1)})
    with pytest.raises(ValidationError, match="edit takes no controls"):
        GenerationRequest.model_validate({"task": "edit", "prompt": "x", "init_image": "a.png", "controls": [control]})
    with pytest.raises(ValidationError, match="guess_mode"):
        GenerationRequest.model_validate({"prompt": "x", "guess_mode": True})
    with pytest.raises(ValidationError, match="must come before"):
        GenerationRequest.model_validate({"prompt": "x", "controls": [{**control, "start": 0.5, "end": 0.5}]})
    request = GenerationRequest.model_validate({"prompt": "x", "controls": [control], "guess_mode": True})
    assert GenerationRequest.model_validate_json(request.model_dump_json()) == request


def test_a1111_text_names_each_control() -> None:
    control = {"image": "c.png", "model": "lllyasviel/canny", "weight": 0.5, "end": 0.8}
    request = GenerationRequest.model_validate({"prompt": "x", "controls": [control, {**control, "type": "depth"}]})
    record = ImageRecord(request=request, seed=1, width=64, height=64, model_name="m")
    parsed = parse_a1111_parameters(to_a1111_parameters(record))
    unit = "Model: lllyasviel/canny, Weight: 0.5, Guidance Start: 0, Guidance End: 0.8"
    assert parsed["ControlNet 0"] == f"Module: canny, {unit}"
    assert parsed["ControlNet 1"] == f"Module: depth, {unit}"
