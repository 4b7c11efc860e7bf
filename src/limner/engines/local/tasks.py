"""Derive the pipeline for a task from a loaded base pipeline, sharing its weights.

Why ``from_pipe``: the txt2img, img2img and inpaint pipelines of one model use the same UNet, VAE
and text encoder; ``from_pipe`` builds a new pipeline object around the very same modules, so a
task switch loads nothing and copies no tensor. Which tasks a model can do follows from its
pipeline class and its UNet's input channels, not from its name.
"""

from __future__ import annotations

import copy
import functools
import inspect
import threading
from collections import OrderedDict
from typing import Any

from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from limner.core.errors import UnsupportedTaskError
from limner.core.requests import Task

# Pipelines that take an image plus an instruction ("cartoonize this").
EDIT_PIPELINES = frozenset(
    {
        "StableDiffusionInstructPix2PixPipeline",
        "StableDiffusionXLInstructPix2PixPipeline",
        "FluxKontextPipeline",
        "QwenImageEditPipeline",
        "QwenImageEditPlusPipeline",
    }
)
_AUTO_PIPELINES = {
    Task.TXT2IMG: "AutoPipelineForText2Image",
    Task.IMG2IMG: "AutoPipelineForImage2Image",
    Task.INPAINT: "AutoPipelineForInpainting",
}
_INPAINT_ONLY_CHANNELS = 9
_EDIT_CHANNELS = 8


def supported_tasks(base: DiffusionPipeline) -> frozenset[Task]:
    """Tasks a loaded model can run."""
    class_name = type(base).__name__
    if class_name in EDIT_PIPELINES:
        return frozenset({Task.EDIT})
    unet = getattr(base, "unet", None)
    in_channels = getattr(getattr(unet, "config", None), "in_channels", None)
    if in_channels == _EDIT_CHANNELS:
        return frozenset({Task.EDIT})
    if in_channels == _INPAINT_ONLY_CHANNELS or "Inpaint" in class_name:
        return frozenset({Task.INPAINT})
    return frozenset({Task.TXT2IMG, Task.IMG2IMG, Task.INPAINT})


def derive_pipeline(pipeline_class: Any, base: Any, derived: DerivedPipelines | None = None, **parts: Any) -> Any:
    """``pipeline_class.from_pipe(base, **parts)``, keeping the modules in the dtype they have; through
    ``derived`` (the model's :class:`DerivedPipelines`) when given, so a repeated derivation costs a copy.

    Why the dtype is passed: ``DiffusionPipeline.from_pipe`` casts every module, in place, to its
    ``dtype``, which is float32 when none is given; a half-precision model (the CUDA default)
    shared by every run became float32 for good at its first job.
    """
    if derived is not None:
        return derived.derive(pipeline_class, base, **parts)
    return pipeline_class.from_pipe(base, dtype=base.dtype, **parts)


class DerivedPipelines:
    """The pipelines derived from one loaded model, built once each and handed out as shallow copies.

    Why: ``from_pipe`` casts every module to the dtype it is given, a walk over every module and
    parameter even when they have it already (on limner-tiny ~9 ms of a ~440 ms image, on an SD-sized
    model ~70 ms), and a run derives its task pipeline each time. A pipeline object holds references to
    the modules and its config; what a call writes on it (guidance, timestep count, interrupt flag) are
    plain attributes. So each run gets ``copy.copy`` of the pipeline built the first time, with its own
    scheduler set (scheduler state is per run): a separate object around the same modules.

    The key is the pipeline class and the identity of every module the new pipeline would hold, so a
    module added later (an IP-Adapter's image encoder) or swapped in (a tiny VAE, a ControlNet) gets a
    pipeline of its own; an OpenVINO stand-in, made anew for each run, counts as the module and LoRA
    set it stands in for. Owned by the model's slot, it goes when the model does;
    at most ``capacity`` pipelines are kept (the least recently used goes first).
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = capacity
        self._known: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()

    def derive(self, pipeline_class: Any, source: Any, **parts: Any) -> Any:
        """A pipeline of ``pipeline_class`` around ``source``'s modules with ``parts`` swapped in, its
        scheduler ``parts["scheduler"]`` (else ``source``'s)."""
        scheduler = parts.pop("scheduler", None) or source.scheduler
        modules = {**_components(source), **parts}
        modules.pop("scheduler", None)
        key = (
            pipeline_class,
            type(source),
            tuple(sorted((name, _identity(module)) for name, module in modules.items())),
        )
        with self._lock:
            known = self._known.get(key)
            if known is not None:
                self._known.move_to_end(key)
        if known is None:  # the pipeline holds every module of the key, so their ids stay theirs while it is kept
            known = pipeline_class.from_pipe(source, dtype=source.dtype, scheduler=scheduler, **parts)
            with self._lock:
                self._known[key] = known
                while len(self._known) > self._capacity:
                    self._known.popitem(last=False)
        pipeline = copy.copy(known)
        pipeline.scheduler = scheduler  # registered on the copy only: its config dict is replaced, not changed
        return pipeline

    def __len__(self) -> int:
        return len(self._known)


def _components(pipeline: Any) -> dict[str, Any]:
    """``pipeline.components`` (its modules by name), its class's optional parameters read once.

    Why not the property itself: it reads the signature of the pipeline's ``__init__`` each time, 25 of
    its 28 us on this project's machine (and more on caches cooled by the model's compute), every run.
    """
    pipeline_class: type = type(pipeline)
    optional = _optional_parameters(pipeline_class)
    return {
        name: getattr(pipeline, name) for name in pipeline.config if not name.startswith("_") and name not in optional
    }


@functools.cache
def _optional_parameters(pipeline_class: type) -> frozenset[str]:
    """The ``__init__`` parameters of a pipeline class that are settings, not modules (diffusers' own split)."""
    _modules, optional = pipeline_class._get_signature_keys(pipeline_class)  # type: ignore[attr-defined]
    return frozenset(optional)


def _identity(module: Any) -> Any:
    """A module's part of a derivation key: its identity, or what a stand-in made per run (OpenVINO's)
    says makes it interchangeable with an earlier one."""
    same_as = getattr(type(module), "derivation_identity", None)
    return same_as(module) if same_as is not None else id(module)


def task_pipeline(
    base: Any, task: Task, scheduler: SchedulerMixin, model_name: str, derived: DerivedPipelines | None = None
) -> Any:
    """A pipeline object for ``task`` that shares every module of ``base`` but the scheduler."""
    tasks = supported_tasks(base)
    if task is Task.CHARACTER:  # text-to-image conditioned on references by the IP-Adapter
        task = Task.TXT2IMG
    if task is Task.OUTPAINT:  # inpainting over a padded canvas
        task = Task.INPAINT
    if task not in tasks:
        can = ", ".join(sorted(t.value for t in tasks))
        hint = " (use an InstructPix2Pix-class model, e.g. --preset cartoonize)" if task is Task.EDIT else ""
        raise UnsupportedTaskError(f"model {model_name} cannot do {task.value}; it can do: {can}{hint}", param="task")
    if task is Task.EDIT or len(tasks) == 1 or (task is Task.TXT2IMG and _is_text_to_image(base)):
        pipeline = derive_pipeline(type(base), base, derived, scheduler=scheduler)
    else:
        # Imported here: diffusers' auto pipelines import every pipeline family they map (~1.5 s),
        # which a text-to-image run of a text-to-image model does not need.
        import diffusers

        auto_pipeline = getattr(diffusers, _AUTO_PIPELINES[task])
        try:
            pipeline = auto_pipeline.from_pipe(base, scheduler=scheduler)
        except ValueError as exc:
            raise UnsupportedTaskError(
                f"model {model_name} ({type(base).__name__}) has no {task.value} pipeline in diffusers",
                param="task",
            ) from exc
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _is_text_to_image(base: Any) -> bool:
    """A loaded pipeline of a text-to-image class (its own class is then the txt2img pipeline)."""
    name = type(base).__name__
    return name.endswith("Pipeline") and not any(part in name for part in ("Img2Img", "Inpaint", "Image2Image"))


def call_parameters(pipeline: Any) -> frozenset[str]:
    """The argument names of ``pipeline``'s ``__call__``, read once per pipeline class.

    Why kept: ``inspect.signature`` of a diffusers ``__call__`` takes about 0.1 ms and every run asks
    for its pipeline's; a class's signature never changes while the process runs.
    """
    pipeline_class: type = type(pipeline)
    return _call_parameters(pipeline_class)


@functools.cache
def _call_parameters(pipeline_class: type) -> frozenset[str]:
    return frozenset(inspect.signature(pipeline_class.__call__).parameters)


def accepted_arguments(pipeline: DiffusionPipeline, arguments: dict[str, Any]) -> dict[str, Any]:
    """Keep the call arguments this pipeline's ``__call__`` takes (families differ slightly)."""
    parameters = call_parameters(pipeline)
    return {key: value for key, value in arguments.items() if key in parameters}
