"""Characters from the command line: one-off, saved, styles; saved == passing the pictures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from limner.cli.main import app
from tests.engines.remote.fakes import KEY, FakeReplicate, serve

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_IP_ADAPTER", str(tiny_models["ip_adapter"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def picture(path: Path, color: str) -> Path:
    image = Image.new("RGB", (48, 48), color)
    image.paste((0, 0, 0), (10, 10, 38, 38))
    image.save(path)
    return path


def run_ok(*args: str) -> list[Path]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return [Path(line) for line in result.stdout.splitlines() if line.endswith(".png")]


def record(path: Path) -> dict:
    return json.loads(runner.invoke(app, ["info", str(path), "--json"]).stdout)


SCENE = ("reading a book on the beach", "--size", "64x64", "--steps", "3", "--seed", "9")


def test_character_command_and_saved_character_match(env: Path) -> None:
    ref = picture(env / "ref.png", "red")
    (direct,) = run_ok("character", str(ref), *SCENE, "--strength", "0.9", "--out", str(env / "a"))
    assert record(direct)["request"]["task"] == "character"
    assert record(direct)["ip_adapter"].endswith("ip-adapter.safetensors")

    assert "saved character hero" in runner.invoke(app, ["characters", "add", "hero", str(ref)]).stdout
    base = ("generate", *SCENE, "--character", "hero", "--ip-adapter-scale", "0.9")
    (first,) = run_ok(*base, "--out", str(env / "b"))
    assert "1" in runner.invoke(app, ["characters", "list"]).stdout
    assert "ip-adapter.safetensors" in runner.invoke(app, ["characters", "show", "hero"]).stdout  # cached now
    (second,) = run_ok(*base, "--out", str(env / "c"))
    images = [Image.open(path).tobytes() for path in (direct, first, second)]
    assert images[0] == images[1] == images[2]


def test_character_changes_with_the_reference(env: Path) -> None:
    (red,) = run_ok(
        "character", str(picture(env / "r.png", "red")), *SCENE, "--strength", "1.0", "--out", str(env / "r")
    )
    (blue,) = run_ok("character", str(picture(env / "b.png", "blue")), *SCENE, "--strength", "1.0",
                     "--out", str(env / "b"))  # fmt: skip
    assert Image.open(red).tobytes() != Image.open(blue).tobytes()


def test_styles_apply_their_prompt_and_report_missing_weights(env: Path) -> None:
    ref = picture(env / "ref.png", "green")
    (styled,) = run_ok("character", str(ref), *SCENE, "--style", "watercolor")
    assert "watercolor painting" in record(styled)["request"]["prompt"]
    assert "photo" in record(styled)["request"]["negative_prompt"]
    missing = runner.invoke(app, ["character", str(ref), *SCENE, "--style", "ghibli"])
    assert missing.exit_code == 2
    assert "hf download InstantX/FLUX.1-dev-LoRA-Ghibli" in missing.output
    assert "ghibli" in runner.invoke(app, ["styles"]).stdout


def test_user_styles_file_with_a_local_lora(
    env: Path, tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    styles = env / "styles.toml"
    styles.write_text(f'[mine]\nlora = "{tiny_models["lora"]}"\nlora_weight = 0.7\nprompt_prefix = "in my style, "\n',
                      encoding="utf-8")  # fmt: skip
    monkeypatch.setenv("LIMNER_STYLES_FILE", str(styles))
    (path,) = run_ok("generate", "a fox", "--size", "64x64", "--steps", "2", "--style", "mine")
    stored = record(path)["request"]
    assert stored["prompt"] == "in my style, a fox"
    assert stored["loras"] == [{"ref": str(tiny_models["lora"]), "weight": 0.7}]


def test_character_errors(env: Path) -> None:
    bad = env / "notes.png"
    bad.write_text("not an image", encoding="utf-8")
    cases = [
        (["character", str(bad), "x"], "not a PNG, JPEG or WebP"),
        (["generate", "x", "--character", "nobody"], "no character"),
        (["characters", "add", "bad name!", str(picture(env / "p.png", "red"))], "name"),
        (["characters", "show", "ghost"], "no character"),
    ]
    for args, fragment in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert fragment in result.output


def test_remove_character(env: Path) -> None:
    run = runner.invoke(app, ["characters", "add", "temp", str(picture(env / "t.png", "red"))])
    assert run.exit_code == 0
    assert runner.invoke(app, ["characters", "rm", "temp"]).exit_code == 0
    assert runner.invoke(app, ["characters", "show", "temp"]).exit_code == 2


def test_character_on_replicate_uses_the_instantcharacter_preset(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeReplicate()
    with serve(fake) as server:
        monkeypatch.setenv("REPLICATE_API_TOKEN", KEY)
        monkeypatch.setenv("REPLICATE_BASE_URL", f"{server.url}/v1")
        ref = picture(env / "ref.png", "red")
        (path,) = run_ok("character", str(ref), "drinking beer in a bar", "--style", "ghibli", "--provider",
                         "replicate", "--seed", "3", "--out", str(env / "ic"))  # fmt: skip
        payload = server.requests[0].json()["input"]
    assert server.requests[0].path == "/v1/models/tencent/instantcharacter/predictions"
    assert payload["style"] == "ghibli_style"
    assert payload["prompt"] == "ghibli style, drinking beer in a bar"
    assert (payload["num_inference_steps"], payload["guidance_scale"], payload["seed"]) == (28, 3.5, 3)
    assert payload["subject_image"].startswith("data:image/png;base64,")
    stored = record(path)
    assert stored["provider"] == "replicate"
    assert stored["request"]["style"] == "ghibli"
    assert stored["request"]["loras"] == []  # the remote model applies its own style LoRA

    with serve(FakeReplicate()) as server:  # another hosted copy, by --model alone
        monkeypatch.setenv("REPLICATE_BASE_URL", f"{server.url}/v1")
        run_ok("character", str(ref), "x", "--provider", "replicate", "--model", "someone/ic-copy", "--strength", "0.8",
               "--out", str(env / "copy"))  # fmt: skip
        assert server.requests[0].path == "/v1/models/someone/ic-copy/predictions"
        assert server.requests[0].json()["input"]["subject_scale"] == 0.8

    monkeypatch.delenv("REPLICATE_API_TOKEN")
    missing = runner.invoke(app, ["character", str(ref), "x", "--provider", "replicate"])
    assert missing.exit_code == 2  # bad input: nothing was sent, the message says what to set
    assert "REPLICATE_API_TOKEN is not set" in missing.output
