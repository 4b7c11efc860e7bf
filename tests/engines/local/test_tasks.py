"""Derived pipelines: built once per model, class and modules, handed to each run as a copy with its own
scheduler; the pictures are those of a fresh ``from_pipe``."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from diffusers import StableDiffusionPipeline

from limner.config import Settings
from limner.core.requests import GenerationRequest, Task
from limner.engines.local.engine import LocalEngine
from limner.engines.local.schedulers import make_scheduler
from limner.engines.local.tasks import DerivedPipelines, task_pipeline


def draw(engine: LocalEngine, seed: int = 3) -> np.ndarray:
    request = GenerationRequest(prompt="a red fox", steps=3, seed=seed, width=64, height=64)
    return np.asarray(engine.run(request).images[0].image, dtype=np.float64)


def counting_from_pipe(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every ``from_pipe`` on the SD pipeline classes (the cast over every module happens there)."""
    calls: list[str] = []
    original = StableDiffusionPipeline.from_pipe.__func__  # type: ignore[attr-defined]

    def from_pipe(cls: Any, pipeline: Any, **kwargs: Any) -> Any:
        calls.append(cls.__name__)
        return original(cls, pipeline, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "from_pipe", classmethod(from_pipe))
    return calls


def test_repeated_runs_derive_their_pipeline_once(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = LocalEngine(Settings(default_model=str(tiny_models["txt2img"]), device="cpu", _env_file=None))  # type: ignore[call-arg]
    first = draw(engine)
    calls = counting_from_pipe(monkeypatch)
    again = [draw(engine) for _ in range(3)]
    assert calls == []  # the first run's derivation serves the next ones
    for pixels in again:
        assert np.array_equal(pixels, first)  # same seed, same picture: no state carried between runs
    assert not np.array_equal(draw(engine, seed=4), first)


def test_each_run_gets_its_own_object_and_scheduler_around_the_same_modules(engine: LocalEngine) -> None:
    base = engine.model_slot().pipeline
    derived = DerivedPipelines()
    one = task_pipeline(base, Task.TXT2IMG, make_scheduler(base.scheduler, None), "tiny", derived)
    two = task_pipeline(base, Task.TXT2IMG, make_scheduler(base.scheduler, "euler_a"), "tiny", derived)
    assert one is not two
    assert len(derived) == 1
    assert one.unet is two.unet is base.unet
    assert one.text_encoder is base.text_encoder
    assert type(one.scheduler).__name__ != type(two.scheduler).__name__
    assert one.config["scheduler"] != two.config["scheduler"]  # each copy's config names its own scheduler
    one._guidance_scale = 9.0  # what a pipeline call writes on itself
    assert getattr(two, "_guidance_scale", None) != 9.0


def test_another_module_gets_another_pipeline_and_the_oldest_goes(engine: LocalEngine) -> None:
    from limner.testing.tiny_models import tiny_vae

    base = engine.model_slot().pipeline
    derived = DerivedPipelines(capacity=2)
    scheduler = make_scheduler(base.scheduler, None)
    plain = derived.derive(type(base), base, scheduler=scheduler)
    other_vae = tiny_vae()
    swapped = derived.derive(type(base), base, scheduler=scheduler, vae=other_vae)
    assert plain.vae is base.vae
    assert swapped.vae is other_vae
    assert len(derived) == 2
    derived.derive(type(base), base, scheduler=scheduler, vae=tiny_vae())
    assert len(derived) == 2  # at most ``capacity`` kept


def test_openvino_stand_ins_made_per_run_share_one_derivation(engine: LocalEngine, tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from limner.engines.local.openvino_unet import OpenVinoUNets

    base = engine.model_slot().pipeline
    stand_ins = OpenVinoUNets(tmp_path, threads=1)
    derived = DerivedPipelines()
    scheduler = make_scheduler(base.scheduler, None)
    for _ in range(3):
        pipeline = derived.derive(type(base), base, scheduler=scheduler, unet=stand_ins.for_unet(base.unet, "tiny"))
    assert len(derived) == 1
    assert type(pipeline.unet).__name__ == "OpenVinoUNet"


def test_a_pipeline_class_signature_is_read_once_for_every_run(
    engine: LocalEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``inspect.signature`` of a diffusers ``__call__`` costs about 0.1 ms; each run asked for it twice."""
    reads = _pipeline_signature_reads(monkeypatch, "__call__")
    first = draw(engine)
    assert np.array_equal(draw(engine), first)
    assert len(reads) <= 1  # once in the process (none when an earlier test's run read it)


def test_a_repeated_derivation_reads_no_init_signature(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The derivation key lists the base's modules; diffusers' ``components`` read the signature of the
    pipeline's ``__init__`` for that on every run (25 us of its 28 us)."""
    base = engine.model_slot().pipeline
    derived = DerivedPipelines()
    first = derived.derive(type(base), base)  # the class's optional parameters are read (at most) once, here
    reads = _pipeline_signature_reads(monkeypatch, "__init__")
    again = derived.derive(type(base), base, scheduler=copy.deepcopy(base.scheduler))
    assert reads == []
    assert again is not first
    assert again.unet is first.unet is base.unet
    assert len(derived) == 1


def _pipeline_signature_reads(monkeypatch: pytest.MonkeyPatch, method: str) -> list[Any]:
    """Every pipeline class's ``method`` whose signature ``inspect.signature`` reads from now on."""
    import inspect

    reads: list[Any] = []
    real_signature = inspect.signature

    def counted(function: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        if getattr(function, "__name__", "") == method and "Pipeline" in getattr(function, "__qualname__", ""):
            reads.append(function)
        return real_signature(function, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counted)
    return reads
