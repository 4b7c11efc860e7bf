"""The model registry from the CLI: import, use by name everywhere, safety checks, removal."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from limner.cli.main import app

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_import_and_use_by_name(env: Path, tiny_models: dict[str, Path]) -> None:
    code, output = invoke("models", "import", str(tiny_models["txt2img"]), "--name", "tiny")
    assert code == 0, output
    assert "base, sd" in output
    code, output = invoke("models", "import", str(tiny_models["lora"]), "--name", "style", "--base", "tiny")
    assert code == 0, output
    assert "lora" in output
    listing = invoke("models", "list")[1]
    assert "tiny" in listing
    assert "style" in listing
    copied = env / "data" / "models" / "tiny" / "model_index.json"
    assert copied.is_file()

    args = ("generate", "a fox", "--size", "64x64", "--steps", "2", "--seed", "1", "--out")
    code, output = invoke(*args, str(env / "a"), "--model", "tiny")
    assert code == 0, output
    code, output = invoke(*args, str(env / "b"), "--model", "tiny", "--lora", "style:0.8")
    assert code == 0, output
    plain = sorted((env / "a").glob("*.png"))[0]
    styled = sorted((env / "b").glob("*.png"))[0]
    assert plain.read_bytes() != styled.read_bytes()
    record = json.loads(runner.invoke(app, ["info", str(plain), "--json"]).stdout)
    assert record["model_name"] == "tiny"
    assert "base model: tiny" in invoke("models", "show", "style")[1]

    assert invoke("models", "rm", "tiny")[0] == 0
    assert not copied.exists()
    code, output = invoke(*args, str(env / "c"), "--model", "tiny")
    assert code == 2


def test_unsafe_imports_are_refused(env: Path) -> None:
    pickle = env / "evil.safetensors"
    pickle.write_bytes(b"\x80\x04\x95" + b"\x00" * 100)
    absurd = env / "absurd.safetensors"
    absurd.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    ckpt = env / "model.ckpt"
    ckpt.write_bytes(b"\x80\x04")
    folder = env / "not-a-model"
    folder.mkdir()
    cases = [(pickle, "pickle"), (absurd, "header length"), (ckpt, "pickle"), (folder, "model_index.json"),
             (env / "missing", "no such file")]  # fmt: skip
    for path, fragment in cases:
        code, output = invoke("models", "import", str(path), "--name", "bad")
        assert code == 2, (path, output)
        assert fragment in output
    assert not (env / "data" / "models" / "bad").exists()


def test_names_are_checked(env: Path, tiny_models: dict[str, Path]) -> None:
    assert invoke("models", "import", str(tiny_models["txt2img"]), "--name", "limner-tiny")[0] == 2
    assert invoke("models", "import", str(tiny_models["txt2img"]), "--name", "../x")[0] == 2
    assert invoke("models", "import", str(tiny_models["txt2img"]), "--name", "one")[0] == 0
    code, output = invoke("models", "import", str(tiny_models["txt2img"]), "--name", "one")
    assert code == 2
    assert "already registered" in output


def test_install_without_network_is_one_clear_error(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, output = invoke("models", "install", "stabilityai/sd-turbo")
    assert code == 1
    assert "could not download stabilityai/sd-turbo" in output
    assert "Traceback" not in output
    assert invoke("models", "install", "not-a-hub-id")[0] == 2
