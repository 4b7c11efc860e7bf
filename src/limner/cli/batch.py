"""``limner batch``: ideas (generated, or read from a CSV) -> images in ``OUTPUT_DIR/<slug>/`` with info files.

Mounted by ``cli.main`` as ``app.command("batch")(batch)``. The same command run again resumes its
batch: finished items are skipped, failed ones tried again (``--new`` starts a fresh batch).
Exit code 1 when any item failed (the others are still made).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from limner.cli.errors import EXIT_FAILURE, user_errors
from limner.cli.prompts import CsvOpt, DataOpt, ExamplesOpt, IdeaSeedOpt, OfflineOpt, ThemeOpt, csv_path, source_line
from limner.core.errors import InvalidRequestError
from limner.core.providers import LOCAL, PROVIDER_CHOICES

if TYPE_CHECKING:
    from rich.progress import Progress

    from limner.batch.plan import BatchItem, BatchManifest, BatchOptions
    from limner.batch.runner import BatchReport
    from limner.config import Settings
    from limner.core.progress import ProgressEvent
    from limner.prompts.ideas import PromptIdea
    from limner.services.generation import GenerationService

DEFAULT_COUNT = 10
# typer 0.29 takes choices from an Enum (its Option has no click_type); the names come from the provider table.
ProviderChoice = StrEnum("ProviderChoice", {name: name for name in PROVIDER_CHOICES})  # type: ignore[misc]


def batch(
    count: Annotated[
        int | None, typer.Argument(help=f"How many ideas (default {DEFAULT_COUNT}; with --from-csv: every row).", min=1)
    ] = None,
    size: Annotated[str | None, typer.Option("--size", "-s", help="WIDTHxHEIGHT of every image.")] = None,
    provider: Annotated[ProviderChoice, typer.Option("--provider", help="Where images are made.")] = ProviderChoice(
        LOCAL
    ),
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model (local reference, or the provider's model name).")
    ] = None,
    theme: ThemeOpt = None,
    from_csv: Annotated[
        Path | None, typer.Option("--from-csv", help="Read ideas from this CSV instead of generating them.")
    ] = None,
    num_images: Annotated[int, typer.Option("--num-images", "-n", help="Images per idea.", min=1, max=16)] = 1,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the first image; later images count up.")] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Denoising steps.")] = None,
    guidance: Annotated[float | None, typer.Option("--guidance", "--cfg", help="Guidance scale.")] = None,
    idea_seed: IdeaSeedOpt = None,
    offline: OfflineOpt = False,
    only_prompts: Annotated[
        bool, typer.Option("--only-prompts", help="Generate the ideas, append them to the CSV, make no images.")
    ] = False,
    csv: CsvOpt = None,
    data: DataOpt = None,
    examples: ExamplesOpt = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output folder (default: LIMNER_OUTPUT_DIR).")] = None,
    new: Annotated[bool, typer.Option("--new", help="Start a fresh batch instead of resuming this one.")] = False,
) -> None:
    """Make a batch: ideas, then images, one folder per idea with info.md and info.json."""
    from limner.batch.plan import BatchOptions, batch_key, load_manifest, plan_batch
    from limner.batch.runner import check_batch, run_batch
    from limner.config import Settings
    from limner.core.requests import parse_size

    console = Console(stderr=True)
    with user_errors():
        settings = Settings()
        target = out or settings.output_dir
        if from_csv is not None and only_prompts:
            raise InvalidRequestError("--only-prompts makes ideas; it cannot be combined with --from-csv")
        width, height = parse_size(size) if size else (None, None)
        options = BatchOptions(
            provider=provider.value, model=model, width=width, height=height, num_images=num_images, seed=seed,
            steps=steps, guidance_scale=guidance,
        )  # fmt: skip
        generation: GenerationService | None = None
        if not only_prompts:
            from limner.cli.generation import local_generation

            generation = local_generation(settings, one_shot=False)
            _probe(generation, options)  # a missing key or impossible size stops us before any idea is paid for
        origin = _IdeaSource(count, theme, from_csv, idea_seed, offline, data, tuple(examples or ()))
        what = origin.identity(new)
        batch_id = batch_key(options, **what)
        existing = load_manifest(target, batch_id)
        ideas = _ideas(settings, console, origin, csv, target, existing)
        if only_prompts or generation is None:
            for idea in ideas:
                typer.echo(idea.title)
            return
        source = str(from_csv) if from_csv else (existing.source if existing else "generated ideas")
        manifest = plan_batch(target, batch_id, options, ideas, source, existing)
        _announce(console, manifest, target, existing is not None)
        check_batch(manifest, target, generation)
        with _batch_progress(console, len(manifest.items)) as listener:
            report = run_batch(manifest, target, generation, listener)
    _summarise(console, manifest, report, target)
    if report.failed:
        raise typer.Exit(EXIT_FAILURE)


def _probe(generation: GenerationService, options: BatchOptions) -> None:
    from limner.batch.plan import BatchItem, item_fields
    from limner.prompts.ideas import PromptIdea

    probe = BatchItem(index=0, idea=PromptIdea(title="probe", prompt="probe"), folder="probe")
    generation.prepare(item_fields(probe, options))


@dataclass(frozen=True)
class _IdeaSource:
    """Where a batch's ideas come from: a CSV, or the ideation options (an LLM or the offline generator)."""

    count: int | None
    theme: str | None
    from_csv: Path | None
    idea_seed: int | None
    offline: bool
    data: Path | None
    examples: tuple[Path, ...]

    def identity(self, new: bool) -> dict[str, object]:
        """What makes "the same command": its ideas' origin and options (plus a fresh stamp with --new)."""
        what: dict[str, object] = {"count": self.count}
        if self.from_csv is not None:
            what["csv"] = str(self.from_csv.resolve())
        else:
            data = str(self.data) if self.data else None
            what.update(theme=self.theme, idea_seed=self.idea_seed, offline=self.offline, data=data,
                        examples=[str(path) for path in self.examples])  # fmt: skip
        if new:
            what["new"] = datetime.now(UTC).isoformat()
        return what


def _ideas(
    settings: Settings,
    console: Console,
    origin: _IdeaSource,
    csv: Path | None,
    target: Path,
    existing: BatchManifest | None,
) -> list[PromptIdea]:
    from limner.prompts.csv_store import append_ideas, read_ideas
    from limner.prompts.ideation import generate_ideas

    if origin.from_csv is not None:
        ideas = read_ideas(origin.from_csv)
        if not ideas:
            raise InvalidRequestError(f"{origin.from_csv} holds no ideas", param="from_csv")
        return ideas[: origin.count] if origin.count else ideas
    if existing is not None:
        return [item.idea for item in existing.items]  # ideas an LLM made are kept, not asked for again
    ideation = generate_ideas(settings, origin.count or DEFAULT_COUNT, theme=origin.theme, seed=origin.idea_seed,
                              offline=origin.offline, data_dir=origin.data, examples=origin.examples)  # fmt: skip
    console.print(source_line(ideation.source, ideation.offline), highlight=False, soft_wrap=True)
    path = csv_path(settings, csv, target)
    written = append_ideas(path, ideation.ideas)
    console.print(f"appended {written} rows to {path}", highlight=False, soft_wrap=True)
    return ideation.ideas


def _announce(console: Console, manifest: BatchManifest, target: Path, resumed: bool) -> None:
    counts = manifest.counts(target)
    if resumed:
        console.print(
            f"resuming batch {manifest.batch_id}: {counts['done']} of {counts['total']} done, "
            f"{counts['failed']} failed before (tried again)",
            highlight=False,
        )
    else:
        console.print(
            f"batch {manifest.batch_id}: {counts['total']} items into {target}", highlight=False, soft_wrap=True
        )
    if counts["done"] == counts["total"]:
        console.print("every item is already done; use --new for a fresh batch", highlight=False)


class _RichListener:
    """Drives a two-line progress display: items of the batch, steps of the current item."""

    def __init__(self, console: Console, progress: Progress, total: int) -> None:
        self._console = console
        self._progress = progress
        self._batch = progress.add_task("batch", total=total)
        self._item = progress.add_task("", total=None)

    def item_started(self, item: BatchItem, position: int, total: int) -> None:
        self._progress.update(self._item, description=item.idea.title[:48], total=None, completed=0)

    def step(self, event: ProgressEvent) -> None:
        self._progress.update(self._item, total=event.total_steps, completed=event.step)

    def item_finished(self, item: BatchItem) -> None:
        self._progress.advance(self._batch)
        if item.status == "done":
            self._console.print(f"[green]done[/green] {item.folder}", highlight=False)
        else:
            self._console.print(f"[red]failed[/red] {item.folder}: {item.error}", highlight=False, soft_wrap=True)


@contextmanager
def _batch_progress(console: Console, total: int) -> Iterator[_RichListener]:
    from limner.cli.progress import progress_display

    with progress_display(console) as display:
        yield _RichListener(console, display, total)


def _summarise(console: Console, manifest: BatchManifest, report: BatchReport, target: Path) -> None:
    for item in manifest.items:
        if item.status == "done":
            typer.echo(str(target / item.folder))
    console.print(
        f"{len(report.done)} made, {len(report.skipped)} already done, {len(report.failed)} failed "
        f"(manifest: {target / '.limner-batches' / (manifest.batch_id + '.json')})",
        highlight=False,
        soft_wrap=True,
    )
