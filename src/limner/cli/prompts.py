"""``limner prompts generate``: ideas from the configured LLM (or the offline generator), appended to a CSV.

Mounted by ``cli.main`` as ``app.add_typer(prompts_app, name="prompts")``. Options shared with
``limner batch`` are defined here once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from limner.cli.errors import user_errors

if TYPE_CHECKING:
    from limner.config import Settings

CSV_NAME = "batch_prompts.csv"

CountArg = Annotated[int, typer.Argument(help="How many ideas.", min=1, max=500)]
ThemeOpt = Annotated[str | None, typer.Option("--theme", "-t", help="What the ideas are about (default: varied).")]
IdeaSeedOpt = Annotated[
    int | None, typer.Option("--idea-seed", help="Seed of the idea sampling (the offline generator repeats with it).")
]
OfflineOpt = Annotated[bool, typer.Option("--offline", help="Use the offline generator even if an LLM is configured.")]
CsvOpt = Annotated[Path | None, typer.Option("--csv", help=f"CSV to append to (default: OUTPUT_DIR/{CSV_NAME}).")]
DataOpt = Annotated[
    Path | None, typer.Option("--data", help="Folder of extra data files (themes.toml ..., examples.jsonl).")
]
ExamplesOpt = Annotated[
    list[Path] | None, typer.Option("--examples", help="Extra few-shot examples (JSONL); repeatable.")
]

prompts_app = typer.Typer(
    rich_markup_mode=None,
    help="Prompt ideas (title, description, tags, prompt) from an LLM, or offline without one.",
    no_args_is_help=True,
)


def csv_path(settings: Settings, csv: Path | None, out: Path | None = None) -> Path:
    return csv or (out or settings.output_dir) / CSV_NAME


def source_line(source: str, offline: bool) -> str:
    """Say where ideas came from; offline by default also says how to get an LLM."""
    if offline and "no LLM configured" in source:
        return f"ideas from the {source}; set LIMNER_LLM_BASE_URL (or OPENAI_API_KEY) to ask an LLM"
    return f"ideas from {source}"


@prompts_app.command("generate")
def generate(
    count: CountArg = 10,
    theme: ThemeOpt = None,
    idea_seed: IdeaSeedOpt = None,
    offline: OfflineOpt = False,
    csv: CsvOpt = None,
    no_csv: Annotated[bool, typer.Option("--no-csv", help="Print only; append nothing to the CSV.")] = False,
    data: DataOpt = None,
    examples: ExamplesOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per idea.")] = False,
) -> None:
    """Write COUNT ideas; print them and append them to the prompts CSV (earlier rows are kept)."""
    from limner.config import Settings
    from limner.prompts.csv_store import append_ideas
    from limner.prompts.ideation import generate_ideas

    errors = Console(stderr=True)
    with user_errors():
        settings = Settings()
        ideation = generate_ideas(
            settings, count, theme=theme, seed=idea_seed, offline=offline, data_dir=data, examples=tuple(examples or ())
        )
        errors.print(source_line(ideation.source, ideation.offline), highlight=False, soft_wrap=True)
        if not no_csv:
            target = csv_path(settings, csv)
            written = append_ideas(target, ideation.ideas)
            errors.print(f"appended {written} rows to {target}", highlight=False, soft_wrap=True)
    if as_json:
        for idea in ideation.ideas:
            typer.echo(json.dumps(idea.model_dump(), ensure_ascii=False))
        return
    table = Table("title", "tags", "prompt", show_lines=True)
    for idea in ideation.ideas:
        table.add_row(idea.title, ", ".join(idea.metatags), idea.prompt)
    Console().print(table)
