"""The CLI's prompt features: weights, wildcards, --combinatorial, --embedding; bad input exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from typer.testing import CliRunner

from limner.cli.main import app
from limner.imaging.png import read_parameters

runner = CliRunner()
FAST = ["--steps", "1", "--size", "32x32", "--seed", "4"]


@pytest.fixture
def env(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("LIMNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def prompts_of(output: str) -> list[str]:
    records = [read_parameters(Path(line))[0] for line in output.strip().splitlines()]
    return [record.request.prompt for record in records if record is not None]


def test_combinatorial_wildcards_and_an_embedding_from_the_command_line(env: Path) -> None:
    (env / "wildcards").mkdir()
    (env / "wildcards" / "creatures.txt").write_text("fox\nowl\n", encoding="utf-8")
    save_file({"emb_params": torch.ones(1, 32)}, str(env / "shiny.safetensors"))
    result = runner.invoke(
        app,
        ["generate", "a (shiny:1.2) __creatures__ in {rain|snow}", "--combinatorial", "--embedding",
         str(env / "shiny.safetensors"), *FAST],
        env={"LIMNER_WILDCARDS_DIR": str(env / "wildcards")},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert sorted(prompts_of(result.stdout)) == [
        "a (shiny:1.2) fox in rain", "a (shiny:1.2) fox in snow", "a (shiny:1.2) owl in rain",
        "a (shiny:1.2) owl in snow",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("prompt", "extra", "fragment"),
    [
        ("a (red fox", [], "unbalanced"),
        ("a red fox", ["--negative", "[blurry"], "never closed"),
        ("a __unicorns__", [], "no wildcard file"),
        ("a {red|blue", [], "do not parse"),
        ("a red fox", ["--embedding", "easynegative.pt"], "pickles"),
    ],
)
def test_bad_prompts_and_embeddings_exit_2_with_what_to_fix(
    env: Path, prompt: str, extra: list[str], fragment: str
) -> None:
    result = runner.invoke(app, ["generate", prompt, *extra, *FAST])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
