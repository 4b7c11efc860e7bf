"""The prompts CSV: appends keep earlier rows, quoting survives, rows read back as ideas."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from limner.core.errors import InvalidRequestError
from limner.prompts.csv_store import COLUMNS, append_ideas, read_ideas
from limner.prompts.ideas import PromptIdea


def idea(title: str, prompt: str = "a fox, at dusk", **extra: object) -> PromptIdea:
    return PromptIdea.model_validate({"title": title, "prompt": prompt, **extra})


def test_append_keeps_earlier_rows_and_writes_one_header(tmp_path: Path) -> None:
    path = tmp_path / "out" / "batch_prompts.csv"
    assert append_ideas(path, [idea("One"), idea("Two")]) == 2
    append_ideas(path, [idea("Three")])
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(COLUMNS)
    assert [row[0] for row in rows[1:]] == ["One", "Two", "Three"]


def test_awkward_text_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    tricky = idea(
        'The "Quoted", Title',
        prompt='line one, with commas\nline two "quoted"',
        description="semi; colon, comma",
        metatags=["a, b", "c"],
        negative_prompt="blur, noise",
    )
    append_ideas(path, [tricky])
    (back,) = read_ideas(path)
    assert back.title == tricky.title
    assert back.prompt == tricky.prompt
    assert back.description == tricky.description
    assert back.negative_prompt == "blur, noise"
    assert back.metatags == ["a", "b", "c"]  # tags are joined with commas in the CSV
    assert path.read_text(encoding="utf-8").startswith('"title","description"')


def test_existing_file_without_final_newline_and_other_columns(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text("title,prompt,description\nOld,an old prompt,kept", encoding="utf-8")
    append_ideas(path, [idea("New", description="fresh")])
    ideas = read_ideas(path)
    assert [(i.title, i.prompt, i.description) for i in ideas] == [
        ("Old", "an old prompt", "kept"),
        ("New", "a fox, at dusk", "fresh"),
    ]


def test_read_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="no such CSV"):
        read_ideas(tmp_path / "missing.csv")
    path = tmp_path / "p.csv"
    path.write_text("name,text\nx,y\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="needs the columns title and prompt"):
        read_ideas(path)
    path.write_text("title,prompt\nok,fine\nempty,\n", encoding="utf-8")
    with pytest.raises(InvalidRequestError, match="line 3: prompt"):
        read_ideas(path)
