"""Every CLI command end to end on tiny models; bad input exits 2 and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app
from tests.imaging.test_png import zlib_level_class

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the CLI's settings at the tiny model and a fresh output folder; return that folder."""
    out = tmp_path / "out"
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(out))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return out


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    image = Image.new("RGB", (64, 64), "skyblue")
    image.paste((200, 50, 50), (16, 16, 48, 48))
    image.save(path)
    return path


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    path = tmp_path / "mask.png"
    image = Image.new("L", (64, 64), 0)
    image.paste(255, (0, 0, 32, 64))
    image.save(path)
    return path


def invoke(*args: str) -> tuple[int, list[Path], str]:
    result = runner.invoke(app, list(args))
    paths = [Path(line) for line in result.stdout.splitlines() if line.endswith(".png")]
    return result.exit_code, paths, result.stderr if result.stderr_bytes is not None else result.output


def test_generate_writes_pngs_with_metadata(env: Path) -> None:
    code, paths, _ = invoke("generate", "a watercolor fox", "--size", "64x64", "--steps", "2", "--seed", "7", "-n", "2")
    assert code == 0
    assert [p.name for p in paths] == ["00001-7.png", "00002-8.png"]
    assert all(p.parent == env and p.is_file() for p in paths)
    result = runner.invoke(app, ["info", str(paths[1]), "--json"])
    record = json.loads(result.stdout)
    assert record["seed"] == 8
    assert record["request"]["prompt"] == "a watercolor fox"
    assert record["request"]["steps"] == 2
    assert zlib_level_class(paths[0].read_bytes()) == 0  # LIMNER_PNG_COMPRESS_LEVEL's default, zlib's fastest


def test_same_seed_gives_identical_files_bytes(env: Path, tmp_path: Path) -> None:
    args = ("generate", "a boat", "--size", "64x64", "--steps", "2", "--seed", "3")
    _, first, _ = invoke(*args, "--out", str(tmp_path / "a"))
    _, second, _ = invoke(*args, "--out", str(tmp_path / "b"))
    assert Image.open(first[0]).tobytes() == Image.open(second[0]).tobytes()
    assert first[0].read_bytes().count(b"Seed: 3") == 1


def test_info_shows_a_table(env: Path) -> None:
    _, paths, _ = invoke("generate", "a fox", "--size", "64x64", "--steps", "2", "--seed", "5", "-N", "blurry")
    result = runner.invoke(app, ["info", str(paths[0])])
    assert result.exit_code == 0
    assert "a fox" in result.stdout
    assert "blurry" in result.stdout
    assert "64x64" in result.stdout


def test_info_reads_automatic1111_pngs(tmp_path: Path) -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a castle\nNegative prompt: ugly\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 512x512")
    path = tmp_path / "a1111.png"
    Image.new("RGB", (4, 4)).save(path, pnginfo=info)
    result = runner.invoke(app, ["info", str(path), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["Seed"] == "42"


def test_img2img_inpaint_and_edit(env: Path, photo: Path, mask: Path, tiny_models: dict[str, Path]) -> None:
    code, paths, _ = invoke("img2img", str(photo), "same street at night", "--strength", "0.6", "--steps", "3")
    assert code == 0
    assert Image.open(paths[0]).size == (64, 64)
    code, paths, _ = invoke("inpaint", str(photo), "a red door", "--mask", str(mask), "--steps", "2")
    assert code == 0
    edit_model = str(tiny_models["edit"])
    code, paths, _ = invoke("edit", str(photo), "Cartoonize the following image", "--model", edit_model, "--steps", "2")
    assert code == 0
    record = json.loads(runner.invoke(app, ["info", str(paths[0]), "--json"]).stdout)
    assert record["request"]["task"] == "edit"
    assert record["pipeline"] == "StableDiffusionInstructPix2PixPipeline"


def test_img2img_that_would_run_no_step_is_a_usage_error(env: Path, photo: Path) -> None:
    code, paths, output = invoke("img2img", str(photo), "same street", "--steps", "1", "--strength", "0.5")
    assert code == 2
    assert paths == []
    assert "give at least 2 steps or a higher strength" in " ".join(output.replace("│", " ").split())


def test_edit_with_preset_uses_its_instruction(
    env: Path, photo: Path, tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    presets = tmp_path / "presets.toml"
    presets.write_text(f'[cartoonize]\ntask = "edit"\nmodel = "{tiny_models["edit"]}"\n'
                       'prompt = "Cartoonize the following image"\nsteps = 2\n', encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("LIMNER_PRESETS_FILE", str(presets))
    code, paths, _ = invoke("edit", str(photo), "--preset", "cartoonize")
    assert code == 0
    record = json.loads(runner.invoke(app, ["info", str(paths[0]), "--json"]).stdout)
    assert record["request"]["prompt"] == "Cartoonize the following image"
    assert record["request"]["preset"] == "cartoonize"


def test_lora_option(env: Path, tiny_models: dict[str, Path], tmp_path: Path) -> None:
    base = ("generate", "a fox", "--size", "64x64", "--steps", "2", "--seed", "1")
    _, plain, _ = invoke(*base, "--out", str(tmp_path / "plain"))
    code, styled, _ = invoke(*base, "--lora", f"{tiny_models['lora']}:0.8", "--out", str(tmp_path / "lora"))
    assert code == 0
    assert Image.open(plain[0]).tobytes() != Image.open(styled[0]).tobytes()


def test_presets_command_lists_builtins(env: Path) -> None:
    result = runner.invoke(app, ["presets"])
    assert result.exit_code == 0
    assert "cartoonize" in result.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("generate", "x", "--size", "65x64"), "multiple of 8"),
        (("generate", "x", "--size", "huge"), "WIDTHxHEIGHT"),
        (("generate", "x", "--size", "8192x8192"), "allows at most"),
        (("generate", "x", "--steps", "0"), "steps"),
        (("generate", "x", "--steps", "151"), "steps"),
        (("generate", "x", "--guidance", "-1"), "guidance_scale"),
        (("generate", "x", "--seed", "-5"), "seed"),
        (("generate", "x", "-n", "0"), "num_images"),
        (("generate", "x", "-n", "99"), "num_images"),
        (("generate", "x", "--scheduler", "fastest"), "fastest"),
        (("generate", "x", "--model", "weights.ckpt"), "pickle"),
        (("generate", "x", "--model", "no such model"), "hub id"),
        (("generate", "x", "--lora", "style.pt"), "pickle"),
        (("generate", "x", "--lora", "missing.safetensors"), "LoRA"),
        (("generate", "x", "--preset", "nope"), "unknown preset"),
        (("generate", ""), "prompt is empty"),
        (("img2img", "missing.png", "x"), "cannot read"),
        (("img2img", "notes.txt", "x"), "not a PNG, JPEG or WebP"),
        (("img2img", "photo.jpg", "x", "--strength", "1.5"), "strength"),
        (("inpaint", "photo.jpg", "x"), "--mask"),
        (("edit", "photo.jpg", "make it blue", "--model", "limner-tiny"), "cannot do edit"),
        (("edit", "photo.jpg"), "instruction"),
        (("info", "missing.png"), "no such file"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(env: Path, photo: Path, args: tuple[str, ...], fragment: str) -> None:
    (photo.parent / "notes.txt").write_text("hello", encoding="utf-8")
    result = runner.invoke(app, list(args))
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output
    assert not env.exists() or not any(env.iterdir())


def test_unreachable_hub_model_exits_1_with_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = runner.invoke(app, ["generate", "x", "--model", "stabilityai/sd-turbo"])
    assert result.exit_code == 1
    assert result.output.count("error:") == 1
    assert "Traceback" not in result.output
    assert not env.exists()


def test_tiny_model_dev_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dev", "tiny-model", str(tmp_path / "m"), "--kind", "edit"])
    assert result.exit_code == 0
    assert (tmp_path / "m" / "model_index.json").is_file()
    assert runner.invoke(app, ["dev", "tiny-model", str(tmp_path / "n"), "--kind", "video"]).exit_code == 2
