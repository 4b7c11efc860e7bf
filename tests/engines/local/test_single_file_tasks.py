"""A single file asked for a task its family cannot do is refused, from its header, before any weight loads.

An SDXL refiner does img2img only (it used to load gigabytes and then fail with an unclear error); an
inpainting model does inpaint only. The files here hold only the names and shapes that tell the family
(``write_refiner_header``, one 9-channel ``conv_in``), and loading is replaced by a failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from limner.config import Settings
from limner.core.errors import UnsupportedTaskError
from limner.core.requests import GenerationRequest, Task
from limner.engines.base import TaskInputs
from limner.engines.local import engine as engine_module
from limner.engines.local.engine import LocalEngine
from limner.engines.local.model_refs import resolve_model
from limner.engines.local.single_file_configs import check_single_file_task
from limner.services.generation import GenerationService
from limner.testing.single_file import write_refiner_header

REFUSAL = r"SDXL refiner, which does img2img only .* pass an input image .* or use an SDXL base model"


INPAINT_ONLY = r"is an inpainting model .* does inpaint and outpaint only: pass a mask .* or use a base model for"


@pytest.fixture
def no_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(engine_module, "load_pipeline", refuse)


@pytest.fixture
def refiner(tmp_path: Path, no_loading: None) -> Path:
    return write_refiner_header(tmp_path / "sd_xl_refiner_1.0.safetensors")


def _service() -> GenerationService:
    settings = Settings(default_model="limner-tiny", device="cpu", _env_file=None)  # type: ignore[call-arg]
    return GenerationService(settings, LocalEngine(settings))


@pytest.mark.parametrize("task", [Task.TXT2IMG, Task.CHARACTER])
def test_text_to_image_on_a_refiner_file_is_refused(refiner: Path, task: Task) -> None:
    with pytest.raises(UnsupportedTaskError, match=REFUSAL) as caught:
        check_single_file_task(resolve_model(str(refiner)), task)
    assert caught.value.param == "model"
    assert "\n" not in caught.value.message


def test_the_service_refuses_it_before_the_job_is_stored(refiner: Path) -> None:
    with pytest.raises(UnsupportedTaskError, match=REFUSAL):
        _service().prepare({"prompt": "a fox", "model": str(refiner)})


def test_img2img_on_a_refiner_file_passes_the_checks(refiner: Path) -> None:
    request = GenerationRequest(prompt="a fox", model=str(refiner), task=Task.IMG2IMG, init_image="in.png")
    _service().engine.validate(request, TaskInputs(init_image=Image.new("RGB", (64, 64))))


def test_the_cli_exits_2_with_the_sentence(refiner: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from limner.cli.main import app

    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["generate", "a fox", "--model", str(refiner), "--steps", "2"])
    assert result.exit_code == 2, result.output
    assert "SDXL refiner, which does img2img only" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.fixture
def inpainting_file(tmp_path: Path, no_loading: None) -> Path:
    path = tmp_path / "sd-v1-5-inpainting.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 9, 3, 3)}, str(path))
    return path


@pytest.mark.parametrize(
    ("fields", "picture"),
    [
        ({"prompt": "a fox"}, False),
        ({"prompt": "a fox", "task": "img2img", "init_image": "in.png"}, True),
        ({"prompt": "make it blue", "task": "edit", "init_image": "in.png"}, True),
    ],
)
def test_an_inpainting_file_is_refused_for_other_tasks(
    inpainting_file: Path, fields: dict[str, str], picture: bool
) -> None:
    service = _service()
    request = service.resolve({**fields, "model": str(inpainting_file)})
    inputs = TaskInputs(init_image=Image.new("RGB", (64, 64)) if picture else None)
    with pytest.raises(UnsupportedTaskError, match=INPAINT_ONLY):
        service.engine.validate(request, inputs)


def test_inpaint_on_an_inpainting_file_passes_the_checks(inpainting_file: Path) -> None:
    request = GenerationRequest(
        prompt="a door", model=str(inpainting_file), task=Task.INPAINT, init_image="in.png", mask_image="m.png"
    )
    picture = Image.new("RGB", (64, 64))
    _service().engine.validate(request, TaskInputs(init_image=picture, mask_image=Image.new("L", (64, 64))))
