"""``limner prompts generate``: offline without an LLM, the LLM when configured, CSV appends."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from limner.cli.prompts import prompts_app
from tests.engines.remote.fakes import FakeChat, ideas_json, serve
from tests.engines.remote.loopback import LoopbackServer

runner = CliRunner()
app = typer.Typer()
app.add_typer(prompts_app, name="prompts")
LLM_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LIMNER_LLM_BASE_URL", "LIMNER_LLM_API_KEY", "LIMNER_LLM_MODEL")


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in LLM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LIMNER_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return tmp_path / "output"


@pytest.fixture
def chat(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeChat, LoopbackServer]]:
    fake = FakeChat(contents=[ideas_json(2)])
    with serve(fake) as server:
        monkeypatch.setenv("LIMNER_LLM_BASE_URL", f"{server.url}/v1")
        monkeypatch.setenv("LIMNER_LLM_MODEL", "tiny-llm")
        yield fake, server


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_offline_generation_says_so_and_appends(out: Path) -> None:
    result = runner.invoke(app, ["prompts", "generate", "3", "--theme", "deep sea", "--idea-seed", "4"])
    assert result.exit_code == 0, result.output
    assert "offline generator (no LLM configured)" in result.stderr
    assert "LIMNER_LLM_BASE_URL" in result.stderr
    assert "appended 3 rows" in result.stderr
    first = rows(out / "batch_prompts.csv")
    assert len(first) == 3
    assert all("deep sea" in row["prompt"] for row in first)

    again = runner.invoke(app, ["prompts", "generate", "2", "--json", "--idea-seed", "4"])
    assert again.exit_code == 0
    printed = [json.loads(line) for line in again.stdout.splitlines()]
    assert len(printed) == 2
    assert set(printed[0]) == {"title", "description", "metatags", "prompt", "negative_prompt"}
    assert rows(out / "batch_prompts.csv")[:3] == first
    assert len(rows(out / "batch_prompts.csv")) == 5


def test_llm_generation(out: Path, chat: tuple[FakeChat, LoopbackServer]) -> None:
    _, server = chat
    result = runner.invoke(app, ["prompts", "generate", "2", "-t", "neon", "--csv", str(out / "mine.csv")])
    assert result.exit_code == 0, result.output
    assert f"ideas from LLM tiny-llm at {server.url}/v1" in result.stderr
    assert [row["title"] for row in rows(out / "mine.csv")] == ["Idea 1", "Idea 2"]
    assert "Idea 1" in result.stdout


def test_bad_llm_answers_are_one_clear_line(out: Path, chat: tuple[FakeChat, LoopbackServer]) -> None:
    fake, _ = chat
    fake.contents = ["not json at all"]
    result = runner.invoke(app, ["prompts", "generate", "1", "--no-csv"])
    assert result.exit_code == 1
    assert "error: the LLM (tiny-llm) gave no valid ideas in 3 attempts" in result.stderr
    assert "Traceback" not in result.output
    assert not (out / "batch_prompts.csv").exists()


def test_offline_flag_and_bad_data_folder(out: Path, chat: tuple[FakeChat, LoopbackServer]) -> None:
    _, server = chat
    result = runner.invoke(app, ["prompts", "generate", "1", "--offline", "--no-csv"])
    assert result.exit_code == 0
    assert "offline generator (asked for)" in result.stderr
    assert server.requests == []
    missing = runner.invoke(app, ["prompts", "generate", "1", "--data", str(out / "nope")])
    assert missing.exit_code == 2
    assert "does not exist" in missing.stderr
