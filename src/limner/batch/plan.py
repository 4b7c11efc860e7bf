"""A batch's plan: its options, its items (one idea each, with a folder), and each item's state.

Why a stored plan (the manifest): re-running the same command must resume, not start over. Ideas
an LLM made cannot be made again, so they are kept; items already done are skipped; items that
failed are tried again. The manifest is plain JSON beside the output, readable by people and the
API alike.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from limner.batch.slugs import unique_slug
from limner.core.errors import InvalidRequestError
from limner.core.providers import LOCAL, PROVIDER_CHOICES, provider_ref
from limner.core.requests import MAX_SEED
from limner.prompts.ideas import PromptIdea


def _known_provider(name: str) -> str:
    if name not in PROVIDER_CHOICES:
        raise ValueError(f"unknown provider {name!r}; one of: {', '.join(PROVIDER_CHOICES)}")
    return name


Provider = Annotated[
    str, AfterValidator(_known_provider), WithJsonSchema({"type": "string", "enum": list(PROVIDER_CHOICES)})
]
"""Where a batch's images are made: ``local`` or a provider of the provider table."""
ItemStatus = Literal["pending", "done", "failed"]
MANIFEST_DIR = ".limner-batches"


class BatchOptions(BaseModel):
    """What every item of a batch shares."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Provider = "local"
    model: Annotated[str | None, Field(max_length=512)] = None
    width: int | None = None
    height: int | None = None
    num_images: Annotated[int, Field(ge=1, le=16)] = 1
    seed: Annotated[int | None, Field(ge=0, le=MAX_SEED)] = None
    steps: Annotated[int | None, Field(ge=1)] = None
    guidance_scale: Annotated[float | None, Field(ge=0)] = None

    def model_ref(self) -> str | None:
        """The request's model: a local reference (None: the default model) or ``provider:model``."""
        if self.provider == LOCAL:
            return self.model
        return provider_ref(self.provider, self.model)


class BatchItem(BaseModel):
    """One idea of the batch and what became of it. ``folder`` is relative to the batch's output folder."""

    index: int
    idea: PromptIdea
    folder: str
    status: ItemStatus = "pending"
    error: str | None = None
    error_code: str | None = None
    images: list[str] = Field(default_factory=list)
    attempts: int = 0

    def is_done(self, out_dir: Path) -> bool:
        """Done and still there: a deleted folder or image means the item is made again."""
        folder = out_dir / self.folder
        return (
            self.status == "done"
            and (folder / "info.json").is_file()
            and all((folder / name).is_file() for name in self.images)
        )


class BatchManifest(BaseModel):
    batch_id: str
    created: str
    source: str
    options: BatchOptions
    items: list[BatchItem]

    def counts(self, out_dir: Path) -> dict[str, int]:
        done = sum(item.is_done(out_dir) for item in self.items)
        failed = sum(item.status == "failed" for item in self.items)
        return {"total": len(self.items), "done": done, "failed": failed, "pending": len(self.items) - done - failed}


def batch_key(options: BatchOptions, **what: Any) -> str:
    """A stable id for "this command with these options": the same command finds the same batch."""
    canonical = json.dumps({"options": options.model_dump(mode="json"), **what}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def manifest_path(out_dir: Path, batch_id: str) -> Path:
    return out_dir / MANIFEST_DIR / f"{batch_id}.json"


def load_manifest(out_dir: Path, batch_id: str) -> BatchManifest | None:
    path = manifest_path(out_dir, batch_id)
    if not path.is_file():
        return None
    try:
        return BatchManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as exc:
        raise InvalidRequestError(
            f"the batch manifest {path} is damaged; remove it to start over", param="batch"
        ) from exc


def save_manifest(out_dir: Path, manifest: BatchManifest) -> Path:
    """Write atomically (temp file + rename): an interrupted batch never leaves half a manifest."""
    path = manifest_path(out_dir, manifest.batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    os.replace(temporary, path)
    return path


def plan_batch(
    out_dir: Path,
    batch_id: str,
    options: BatchOptions,
    ideas: Sequence[PromptIdea],
    source: str,
    existing: BatchManifest | None = None,
) -> BatchManifest:
    """Items for ``ideas``; an idea already in ``existing`` (same title and prompt) keeps its folder and state."""
    previous = {(item.idea.title, item.idea.prompt): item for item in existing.items} if existing else {}
    owned = {item.folder for item in previous.values()}
    taken: set[str] = {entry.name for entry in out_dir.iterdir()} - owned if out_dir.is_dir() else set()
    items: list[BatchItem] = []
    for index, idea in enumerate(ideas):
        match = previous.pop((idea.title, idea.prompt), None)
        if match is not None:
            items.append(match.model_copy(update={"index": index, "idea": idea}))
            taken.add(match.folder)
            continue
        folder = unique_slug(idea.title, taken | owned)
        taken.add(folder)
        items.append(BatchItem(index=index, idea=idea, folder=folder))
    created = existing.created if existing else datetime.now(UTC).isoformat(timespec="seconds")
    return BatchManifest(batch_id=batch_id, created=created, source=source, options=options, items=items)


def item_fields(item: BatchItem, options: BatchOptions) -> dict[str, Any]:
    """The request fields of one item, for the generation service; seeds (when given) do not overlap."""
    fields: dict[str, Any] = {
        "prompt": item.idea.prompt,
        "negative_prompt": item.idea.negative_prompt or None,
        "model": options.model_ref(),
        "width": options.width,
        "height": options.height,
        "num_images": options.num_images,
        "steps": options.steps,
        "guidance_scale": options.guidance_scale,
    }
    if options.seed is not None:
        fields["seed"] = (options.seed + item.index * options.num_images) % (MAX_SEED + 1)
    return {key: value for key, value in fields.items() if value is not None}
