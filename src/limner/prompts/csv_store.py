"""The prompts CSV (``output/batch_prompts.csv``): appended to, never overwritten; read back for batches.

Why CSV: people open it in a spreadsheet, edit it, and feed it to ``limner batch --from-csv``.
Every field is quoted, so commas, quotes and newlines in prompts survive the round trip.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from pydantic import ValidationError

from limner.core.errors import InvalidRequestError
from limner.prompts.ideas import PromptIdea

COLUMNS = ("title", "description", "metatags", "prompt", "negative_prompt")
TAG_SEPARATOR = ", "


def append_ideas(path: Path, ideas: Iterable[PromptIdea]) -> int:
    """Append one row per idea (header first when the file is new); return the number of rows written.

    An existing file keeps its own column order, so rows written by an older version line up.
    """
    rows = list(ideas)
    path.parent.mkdir(parents=True, exist_ok=True)
    existing = path.is_file() and path.stat().st_size > 0
    columns = _existing_columns(path) if existing else list(COLUMNS)
    buffer = io.StringIO()
    if existing and not _ends_with_newline(path):
        buffer.write("\r\n")
    writer = csv.DictWriter(buffer, fieldnames=columns, quoting=csv.QUOTE_ALL, extrasaction="ignore")
    if not existing:
        writer.writeheader()
    for idea in rows:
        writer.writerow(_row(idea))
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())  # one write: a concurrent reader never sees half a row
    return len(rows)


def read_ideas(path: Path) -> list[PromptIdea]:
    """Every row as an idea; a row that is not one is reported with its line number."""
    if not path.is_file():
        raise InvalidRequestError(f"no such CSV file: {path}", param="from_csv")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"title", "prompt"} - set(reader.fieldnames or [])
        if missing:
            raise InvalidRequestError(
                f"{path} needs the columns title and prompt (missing: {', '.join(sorted(missing))})", param="from_csv"
            )
        ideas = []
        for row in reader:
            try:
                ideas.append(PromptIdea.model_validate({key: value for key, value in row.items() if key}))
            except ValidationError as exc:
                problem = exc.errors()[0]
                raise InvalidRequestError(
                    f"{path} line {reader.line_num}: {problem['loc'][0]}: {problem['msg']}", param="from_csv"
                ) from exc
    return ideas


def _row(idea: PromptIdea) -> dict[str, str]:
    return {
        "title": idea.title,
        "description": idea.description,
        "metatags": TAG_SEPARATOR.join(idea.metatags),
        "prompt": idea.prompt,
        "negative_prompt": idea.negative_prompt,
    }


def _existing_columns(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header = next(csv.reader(handle), None)
    return [column for column in header or [] if column] or list(COLUMNS)


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, io.SEEK_END)
        return handle.read(1) in (b"\n", b"\r")
