"""The CLI's generation path: the generation service over local files and the local store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from limner.cli.main import app
from limner.imaging.png import read_parameters

runner = CliRunner()


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_generate_writes_no_server_state(env: Path) -> None:
    result = runner.invoke(app, ["generate", "a fox", "--steps", "1", "--size", "32x32", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert not (env / "data").exists()  # no database, no signing secret: the CLI is not the server


def test_a_registered_lora_works_as_a_model_name_and_wins_over_a_folder(
    env: Path, tiny_models: dict[str, Path]
) -> None:
    imported = runner.invoke(app, ["models", "import", str(tiny_models["lora"]), "--name", "dogs",
                                   "--base", str(tiny_models["txt2img"])])  # fmt: skip
    assert imported.exit_code == 0, imported.output
    assert not (env / "data" / "jwt_secret").exists()
    (env / "dogs").mkdir()  # a same-named folder in the working directory does not shadow the name
    result = runner.invoke(app, ["generate", "a dog", "--model", "dogs", "--steps", "1", "--size", "32x32"])
    assert result.exit_code == 0, result.output
    record, _ = read_parameters(Path(result.stdout.strip().splitlines()[-1]))
    assert record is not None
    assert record.request.model == str(tiny_models["txt2img"])
    assert [lora.ref for lora in record.request.loras] == ["dogs"]
    folder = runner.invoke(app, ["generate", "a dog", "--model", "./dogs", "--steps", "1"])
    assert folder.exit_code == 2
    assert "not a diffusers model" in folder.output
