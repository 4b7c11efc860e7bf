"""The studio reads the API's answers leniently: unknown fields ignored, nulls as defaults, errors as sentences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from limner.ui.api_types import ImageDetails, ImagePage, Job, JobEvent, User


def test_job_reads_nulls_errors_and_unknown_fields() -> None:
    job = Job.model_validate(
        {
            "id": "j1",
            "status": "failed",
            "progress": None,
            "step": None,
            "result_image_ids": None,
            "error": {"code": "oom", "message": "out of memory"},
            "request": None,
            "created_at": "2025-01-02T03:04:05Z",
            "a_field_of_a_newer_server": [1, 2],
        }
    )
    assert (job.status, job.progress, job.step, job.result_image_ids, job.request) == ("failed", 0.0, 0, (), {})
    assert job.error == "out of memory"
    assert job.created_at == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert job.finished
    assert Job.model_validate({"id": "j2"}).status == "queued"
    assert Job.model_validate({"id": "j3", "error": {"code": "only_a_code"}}).error == "only_a_code"
    assert Job.model_validate({"id": "j4", "error": None, "created_at": ""}).created_at is None


def test_a_job_without_an_id_is_refused() -> None:
    with pytest.raises(ValidationError):
        Job.model_validate({"status": "queued"})


def test_job_event_from_an_event_and_from_a_job() -> None:
    event = JobEvent.model_validate({"status": "running", "step": 2, "total_steps": 4, "progress": 0.5, "preview": 7})
    assert (event.step, event.total_steps, event.preview, event.finished) == (2, 4, None, False)
    assert JobEvent.model_validate({}).status == "running"
    assert JobEvent(status="keepalive").keepalive
    job = Job.model_validate(
        {"id": "j1", "status": "succeeded", "step": 3, "total_steps": 3, "result_image_ids": ["a"]}
    )
    assert JobEvent.of_job(job) == JobEvent(status="succeeded", step=3, total_steps=3, result_image_ids=("a",))


def test_images_users_and_details() -> None:
    page = ImagePage.model_validate(
        {"items": [{"id": "i1", "width": None, "prompt": None, "seed": 5}], "total": 1, "limit": None}
    )
    assert page.items[0].width == 0
    assert page.items[0].prompt == ""
    assert page.items[0].kind == "output"
    assert (page.total, page.limit, page.offset) == (1, 0, 0)
    details = ImageDetails.model_validate({"image": {"id": "i1"}, "parameters": None})
    assert details.parameters == {}
    user = User.model_validate({"id": "u1", "username": "ann", "role": "admin", "email": "x"})
    assert user.is_admin
    assert not User.model_validate({"id": "u2", "username": "bob"}).is_admin


def test_capabilities_say_what_runs_and_why_not() -> None:
    from limner.ui.api_types import Capabilities

    answer = Capabilities.model_validate(
        {
            "default_model": "limner-tiny",
            "models": [
                {"name": "limner-tiny", "tasks": ["txt2img", "img2img", "inpaint"], "default": True, "width": 64},
                {"name": "dogs", "kind": "lora", "tasks": ["txt2img"], "base_model": "limner-tiny"},
                {"name": "cartoons", "tasks": ["edit"], "new_field": 1},
            ],
            "tasks": {"txt2img": True, "edit": True, "character": False},
            "missing": [{"capability": "character", "reason": "No IP-Adapter here."}],
            "loras": ["dogs"],
            "presets": None,
        }
    )
    assert answer.can("edit")
    assert not answer.can("character")
    assert answer.can("something new")  # not said: the server decides
    assert answer.why_not("character") == "No IP-Adapter here."
    assert answer.base_models == ("cartoons",)  # LoRAs go to the LoRA picker
    default = answer.model(None)
    assert default is not None
    assert default.width == 64
    assert answer.presets == ()
