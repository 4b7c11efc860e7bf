"""``limner batch`` end to end: local tiny model, a loopback provider, resume, early errors."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from limner.cli.batch import batch
from limner.prompts.csv_store import append_ideas
from limner.prompts.ideas import PromptIdea
from tests.engines.remote.fakes import KEY, FakeOpenAI, serve
from tests.engines.remote.loopback import LoopbackServer

runner = CliRunner()
app = typer.Typer()
app.command("batch")(batch)
app.command("noop", hidden=True)(lambda: None)  # keeps "batch" a named sub-command, as when mounted
REMOTE_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LIMNER_LLM_BASE_URL",
    "REPLICATE_API_TOKEN",
    "STABILITY_API_KEY",
)


@pytest.fixture
def out(tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in REMOTE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIMNER_DEFAULT_MODEL", str(tiny_models["txt2img"]))
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("LIMNER_DEVICE", "cpu")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "output"


@pytest.fixture
def openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeOpenAI, LoopbackServer]]:
    fake = FakeOpenAI()
    with serve(fake) as server:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.url}/v1")
        yield fake, server


def invoke(*args: str) -> tuple[int, list[str], str]:
    result = runner.invoke(app, ["batch", *args])
    return result.exit_code, result.stdout.splitlines(), result.stderr


def test_local_batch_writes_folders_and_a_rerun_does_nothing(out: Path) -> None:
    args = ("2", "--size", "64x64", "--steps", "2", "--seed", "3", "--offline", "--idea-seed", "8")
    code, folders, errors = invoke(*args)
    assert code == 0, errors
    assert "offline generator" in errors
    assert "2 made, 0 already done, 0 failed" in errors
    assert len(folders) == 2
    for folder in map(Path, folders):
        assert folder.parent == out
        info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
        assert [image["file"] for image in info["images"]] == sorted(p.name for p in folder.glob("*.png"))
        assert (folder / "info.md").is_file()
    with (out / "batch_prompts.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 2

    code, again, errors = invoke(*args)
    assert code == 0
    assert again == folders
    assert "every item is already done" in errors
    assert "0 made, 2 already done" in errors
    with (out / "batch_prompts.csv").open(newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 2  # resumed: no new ideas were asked for


def test_only_prompts_appends_and_makes_no_images(out: Path) -> None:
    code, titles, errors = invoke("3", "--only-prompts", "--offline", "--theme", "lunar colony")
    assert code == 0, errors
    assert len(titles) == 3
    assert "appended 3 rows" in errors
    assert [entry.name for entry in out.iterdir()] == ["batch_prompts.csv"]


def test_csv_batch_on_a_provider_with_a_failing_item(
    out: Path, openai: tuple[FakeOpenAI, LoopbackServer], tmp_path: Path
) -> None:
    _, server = openai
    source = tmp_path / "ideas.csv"
    append_ideas(
        source,
        [
            PromptIdea(title="Harbour at Dawn", prompt="a harbour at dawn", metatags=["sea"]),
            PromptIdea(title="Forbidden Thing", prompt="something forbidden"),
            PromptIdea(title="Glass Forest", prompt="a forest of glass"),
        ],
    )
    args = ("--from-csv", str(source), "--provider", "openai", "--size", "1024x1024")
    code, folders, errors = invoke(*args)
    assert code == 1
    assert [Path(f).name for f in folders] == ["harbour-at-dawn", "glass-forest"]
    assert "failed forbidden-thing: openai: Your request was rejected by our safety system." in errors
    info = json.loads((out / "glass-forest" / "info.json").read_text(encoding="utf-8"))
    assert info["provider"] == "openai"
    assert info["model"] == "openai:dall-e-3"
    assert info["images"][0]["revised_prompt"] == "a revised prompt"
    assert info["images"][0]["steps"] is None  # the provider takes no steps; info does not pretend it did

    calls = len(server.requests)
    code, _, errors = invoke(*args)
    assert code == 1
    assert "0 made, 2 already done, 1 failed" in errors
    assert len(server.requests) == calls + 1  # only the failed item was tried again


def test_missing_key_stops_before_any_idea_is_made(out: Path) -> None:
    code, _, errors = invoke("2", "--provider", "replicate", "--offline")
    assert code == 2  # bad input, as for `limner character --provider replicate`: nothing was sent
    assert "error: replicate: REPLICATE_API_TOKEN is not set" in errors
    assert not out.exists()


def test_impossible_size_for_the_provider_is_bad_input(out: Path, openai: tuple[FakeOpenAI, LoopbackServer]) -> None:
    _, server = openai
    code, _, errors = invoke("2", "--provider", "openai", "--size", "1024x576", "--offline")
    assert code == 2
    assert "dall-e-3 makes only these sizes" in errors
    assert server.requests == []
    assert not out.exists()
