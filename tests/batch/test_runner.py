"""Batches on the tiny local model: folders, info files matching the PNGs, failures, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from limner.batch.plan import BatchOptions, batch_key, item_fields, load_manifest, plan_batch
from limner.batch.runner import check_batch, run_batch
from limner.config import Settings
from limner.core.errors import GenerationCanceledError, InvalidRequestError
from limner.core.progress import CancelToken, ProgressCallback
from limner.core.records import GenerationResult
from limner.core.requests import GenerationRequest
from limner.engines.base import Engine, TaskInputs
from limner.engines.local.engine import LocalEngine
from limner.http_client import ContentPolicyError
from limner.imaging.png import read_parameters
from limner.prompts.ideas import PromptIdea
from limner.services.generation import GenerationService

OPTIONS = BatchOptions(width=64, height=64, steps=2, seed=100, num_images=2)


class ScriptedEngine:
    """The real local engine, except prompts containing ``fail_on`` are refused like a provider would."""

    def __init__(self, inner: Engine, fail_on: str | None = None) -> None:
        self.inner = inner
        self.fail_on = fail_on
        self.prompts: list[str] = []

    def validate(self, request: GenerationRequest, inputs: TaskInputs) -> None:
        self.inner.validate(request, inputs)

    def run(
        self, request: GenerationRequest, inputs: TaskInputs, progress: ProgressCallback, cancel: CancelToken
    ) -> GenerationResult:
        self.prompts.append(request.prompt)
        if self.fail_on and self.fail_on in request.prompt:
            raise ContentPolicyError("your request was rejected by the safety system", provider="fake")
        return self.inner.run(request, inputs, progress, cancel)


def ideas() -> list[PromptIdea]:
    return [
        PromptIdea(
            title="Red Fox", description="A fox.", metatags=["fox", "red"], prompt="a red fox", negative_prompt="blurry"
        ),
        PromptIdea(title="Broken Idea", prompt="a broken thing"),
        PromptIdea(title="Blue Whale!", prompt="a blue whale in clouds"),
    ]


def test_failed_item_is_recorded_the_rest_finish_and_a_rerun_resumes(
    engine: LocalEngine, settings: Settings, tmp_path: Path
) -> None:
    batch_id = batch_key(OPTIONS, test="resume")
    manifest = plan_batch(tmp_path, batch_id, OPTIONS, ideas(), "test")
    assert [item.folder for item in manifest.items] == ["red-fox", "broken-idea", "blue-whale"]

    failing = ScriptedEngine(engine, fail_on="broken")
    report = run_batch(manifest, tmp_path, GenerationService(settings, failing))
    assert [item.folder for item in report.done] == ["red-fox", "blue-whale"]
    assert [item.folder for item in report.failed] == ["broken-idea"]
    stored = load_manifest(tmp_path, batch_id)
    assert stored is not None
    broken = stored.items[1]
    assert broken.status == "failed"
    assert broken.error_code == "content_policy_violation"
    assert "safety system" in (broken.error or "")
    assert not (tmp_path / "broken-idea").exists()
    fox_pngs = sorted((tmp_path / "red-fox").glob("*.png"))
    assert [p.name for p in fox_pngs] == ["00001-100.png", "00002-101.png"]
    whale_seeds = [p.name for p in sorted((tmp_path / "blue-whale").glob("*.png"))]
    assert whale_seeds == ["00001-104.png", "00002-105.png"]  # seeds never overlap between items
    fox_mtimes = [p.stat().st_mtime_ns for p in fox_pngs]

    healthy = ScriptedEngine(engine)
    again = plan_batch(tmp_path, batch_id, OPTIONS, ideas(), "test", existing=stored)
    report = run_batch(again, tmp_path, GenerationService(settings, healthy))
    assert healthy.prompts == ["a broken thing"]  # only the failed item is made again
    assert [item.folder for item in report.skipped] == ["red-fox", "blue-whale"]
    assert [p.stat().st_mtime_ns for p in fox_pngs] == fox_mtimes
    final = load_manifest(tmp_path, batch_id)
    assert final is not None
    assert [item.status for item in final.items] == ["done"] * 3
    assert final.items[1].attempts == 2


def test_info_files_match_the_images_written(engine: LocalEngine, settings: Settings, tmp_path: Path) -> None:
    manifest = plan_batch(tmp_path, "info", OPTIONS, ideas()[:1], "test")
    run_batch(manifest, tmp_path, GenerationService(settings, engine))
    folder = tmp_path / "red-fox"
    info = json.loads((folder / "info.json").read_text(encoding="utf-8"))
    assert (info["title"], info["description"], info["metatags"]) == ("Red Fox", "A fox.", ["fox", "red"])
    assert info["prompt"] == "a red fox"
    assert info["negative_prompt"] == "blurry"
    assert info["provider"] == "local"
    pngs = sorted(path.name for path in folder.glob("*.png"))
    assert [image["file"] for image in info["images"]] == pngs
    for image in info["images"]:
        record, _ = read_parameters(folder / image["file"])
        assert record is not None
        assert record.seed == image["seed"]
        assert record.request.prompt == info["prompt"]
        assert (record.width, record.height) == (image["width"], image["height"]) == (64, 64)
        assert image["record"] == json.loads(record.model_dump_json())
        assert image["steps"] == 2
    markdown = (folder / "info.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Red Fox\n")
    assert "**Tags:** fox, red" in markdown
    assert "a red fox" in markdown
    for image in info["images"]:
        assert f"### {image['file']}" in markdown
        assert f"**seed:** {image['seed']}" in markdown


def test_deleted_output_is_made_again_and_stale_files_are_cleared(
    engine: LocalEngine, settings: Settings, tmp_path: Path
) -> None:
    options = BatchOptions(width=64, height=64, steps=2, seed=1)
    manifest = plan_batch(tmp_path, "redo", options, ideas()[:1], "test")
    run_batch(manifest, tmp_path, GenerationService(settings, engine))
    (tmp_path / "red-fox" / "00001-1.png").unlink()
    (tmp_path / "red-fox" / "notes.txt").write_text("mine")
    report = run_batch(manifest, tmp_path, GenerationService(settings, engine))
    assert [item.folder for item in report.done] == ["red-fox"]
    assert sorted(p.name for p in (tmp_path / "red-fox").iterdir()) == [
        "00001-1.png",
        "info.json",
        "info.md",
        "notes.txt",
    ]


def test_plan_avoids_folders_it_does_not_own(tmp_path: Path) -> None:
    (tmp_path / "red-fox").mkdir()
    manifest = plan_batch(tmp_path, "x", OPTIONS, [*ideas(), PromptIdea(title="Red  Fox", prompt="again")], "test")
    assert [item.folder for item in manifest.items] == ["red-fox-2", "broken-idea", "blue-whale", "red-fox-3"]


def test_cancel_leaves_the_item_pending(engine: LocalEngine, settings: Settings, tmp_path: Path) -> None:
    manifest = plan_batch(tmp_path, "cancel", OPTIONS, ideas()[:1], "test")
    cancel = CancelToken()
    cancel.cancel()
    with pytest.raises(GenerationCanceledError):
        run_batch(manifest, tmp_path, GenerationService(settings, engine), cancel=cancel)
    stored = load_manifest(tmp_path, "cancel")
    assert stored is not None
    assert stored.items[0].status == "pending"


def test_check_batch_stops_on_a_shared_problem(engine: LocalEngine, settings: Settings, tmp_path: Path) -> None:
    bad = BatchOptions(model=str(tmp_path / "no-such-model"))
    manifest = plan_batch(tmp_path, "bad", bad, ideas(), "test")
    with pytest.raises(InvalidRequestError):
        check_batch(manifest, tmp_path, GenerationService(settings, engine))


def test_item_fields_for_remote_providers() -> None:
    manifest = plan_batch(Path("/nonexistent"), "r", BatchOptions(provider="stability"), ideas(), "test")
    assert item_fields(manifest.items[0], manifest.options)["model"] == "stability:core"
    options = BatchOptions(provider="openai", model="gpt-image-1", width=1024, height=1024)
    fields = item_fields(manifest.items[0], options)
    assert (fields["model"], fields.get("seed"), fields["negative_prompt"]) == ("openai:gpt-image-1", None, "blurry")
