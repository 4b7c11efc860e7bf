"""A single-file checkpoint gets its family's defaults through the service's one resolve path.

The files are tiny random checkpoints in the original key layout (``limner.testing.single_file``);
only their headers are read here, so the family is told as it is for a real file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from limner.config import Settings
from limner.core.errors import InvalidRequestError
from limner.engines.local.engine import LocalEngine
from limner.services.generation import GenerationService, RegisteredName
from limner.testing.single_file import go_offline, write_tiny_single_file

GENERIC = (25, 7.0)  # the request's generic steps and guidance, for a model with no tuned values


def _service(tmp_path: Path, **overrides: object) -> GenerationService:
    settings = Settings(default_model="limner-tiny", device="cpu", _env_file=None, **overrides)  # type: ignore[call-arg, arg-type]
    return GenerationService(settings, LocalEngine(settings), _Registry(tmp_path))


class _Registry:
    """One registered name, ``my-anime``, for the file ``anime.safetensors`` of a folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __call__(self, name: str) -> RegisteredName | None:
        return RegisteredName(name, str(self.folder / "anime.safetensors")) if name == "my-anime" else None


def _checkpoint(tmp_path: Path, family: str, file_name: str, metadata: dict[str, str] | None = None) -> str:
    path = tmp_path / f"{file_name}.safetensors"
    write_tiny_single_file(family, path, tmp_path / "configs", metadata=metadata)
    return str(path)


@pytest.mark.parametrize(
    ("family", "file_name", "metadata", "expected"),
    [
        ("sd15", "v1-5-pruned-emaonly", {}, (*GENERIC, 512, 512)),
        ("sd2-512", "v2-1_512-ema-pruned", {}, (*GENERIC, 512, 512)),
        ("sd2-768-v", "v2-1_768-ema-pruned", {}, (*GENERIC, 768, 768)),
        ("sdxl-base", "sd_xl_base_1.0", {}, (*GENERIC, 1024, 1024)),
        ("sd-turbo", "sd_turbo", {}, (1, 0.0, 512, 512)),  # SD-Turbo shares SD 2.1's layout; the name tells
        ("sdxl-turbo", "my-merge", {"modelspec.title": "SDXL Turbo"}, (1, 0.0, 512, 512)),
    ],
)
def test_a_single_file_takes_its_familys_defaults(
    tmp_path: Path, family: str, file_name: str, metadata: dict[str, str], expected: tuple[object, ...]
) -> None:
    model = _checkpoint(tmp_path, family, file_name, metadata)
    request = _service(tmp_path).resolve({"prompt": "a fox", "model": model})
    assert request.model == model
    assert (request.steps, request.guidance_scale, request.width, request.height) == expected


def test_the_users_values_win_over_the_familys(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path, "sdxl-turbo", "sd_xl_turbo_1.0_fp16")
    service = _service(tmp_path)
    fields = {"prompt": "a fox", "model": model, "steps": 4, "width": 768, "height": 512}
    request = service.resolve(fields)
    assert (request.steps, request.guidance_scale, request.width, request.height) == (4, 0.0, 768, 512)


def test_a_registered_name_for_a_single_file_takes_the_familys_defaults(tmp_path: Path) -> None:
    _checkpoint(tmp_path, "sd2-512", "anime", {"modelspec.architecture": "stable-diffusion-v2-512"})
    request = _service(tmp_path).resolve({"prompt": "a fox", "model": "my-anime"})
    assert (request.model, request.width, request.height) == ("my-anime", 512, 512)


def test_a_users_table_entry_for_the_file_wins_over_its_family(tmp_path: Path) -> None:
    model = _checkpoint(tmp_path, "sd15", "v1-5-pruned-emaonly")
    table = tmp_path / "defaults.toml"
    table.write_text(f'["{model}"]\nsteps = 12\nwidth = 640\nheight = 448\n', encoding="utf-8")
    request = _service(tmp_path, model_defaults_file=table).resolve({"prompt": "a fox", "model": model})
    assert (request.steps, request.guidance_scale, request.width, request.height) == (12, 7.0, 640, 448)


def test_an_sd2_file_with_no_variant_hint_keeps_the_generic_defaults(tmp_path: Path) -> None:
    """512 or 768-v is known only once the UNet is probed at load; the loaded pipeline's size applies then."""
    model = _checkpoint(tmp_path, "sd2-768-v", "my-merge")
    request = _service(tmp_path).resolve({"prompt": "a fox", "model": model})
    assert (request.steps, request.guidance_scale, request.width, request.height) == (*GENERIC, None, None)


def test_inpaint_with_an_inpainting_file_keeps_the_pictures_size(tmp_path: Path) -> None:
    """An inpainting model has no size of its own in the table: the input picture's (within the cap) is kept."""
    model = _checkpoint(tmp_path, "sd15-inpainting", "sd-v1-5-inpainting")
    fields = {"prompt": "a door", "model": model, "task": "inpaint", "init_image": "in.png", "mask_image": "m.png"}
    request = _service(tmp_path).resolve(fields)
    assert (request.width, request.height) == (None, None)


@pytest.mark.parametrize(("strength", "steps"), [(None, 2), (0.5, 2), (0.3, 4), (1.0, 1)])
def test_a_one_step_default_still_denoises_a_picture(tmp_path: Path, strength: float | None, steps: int) -> None:
    """img2img runs ``int(steps * strength)`` steps: a Turbo model's default 1 is raised to the fewest that run one
    (the request's strength, 0.75 unless given); the user's own steps are never changed."""
    model = _checkpoint(tmp_path, "sd-turbo", "sd_turbo")
    service = _service(tmp_path)
    fields = {"prompt": "a fox", "task": "img2img", "init_image": "in.png", "strength": strength}
    for reference in (model, "stabilityai/sd-turbo"):
        request = service.resolve({**fields, "model": reference})
        assert (request.steps, request.guidance_scale) == (steps, 0.0)
    if strength == 1.0:
        assert service.resolve({**fields, "model": model, "steps": 1}).steps == 1
    else:  # the user's own steps are not raised: a count that would run no step is refused, saying why
        with pytest.raises(InvalidRequestError, match="0 denoising steps"):
            service.resolve({**fields, "model": model, "steps": 1})


def test_limner_img2img_runs_a_turbo_single_file_with_its_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: the family's defaults (guidance 0, one denoising step) are what runs and what is recorded.
    The tiny configs stand in for the shipped folder, which fits real-size weights only."""
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from limner.cli.main import app
    from limner.engines.local import single_file_configs

    go_offline(monkeypatch, tmp_path / "empty-hf-home")
    model = _checkpoint(tmp_path, "sd-turbo", "sd_turbo")
    monkeypatch.setattr(single_file_configs, "shipped_config_root", lambda: tmp_path / "configs")
    Image.new("RGB", (64, 64), "skyblue").save(tmp_path / "photo.png")
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["img2img", "photo.png", "a fox at night", "--model", model, "--size", "64x64"])
    assert result.exit_code == 0, result.output
    (written,) = sorted((tmp_path / "out").glob("*.png"))
    record = json.loads(runner.invoke(app, ["info", str(written), "--json"]).stdout)
    assert (record["request"]["steps"], record["request"]["guidance_scale"]) == (2, 0.0)
