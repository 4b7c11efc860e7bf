"""Scheduler names users type -> a fresh diffusers scheduler built from the model's own config.

Why fresh per request: a scheduler holds per-run state (timesteps, step index, solver history),
so two requests on one loaded model must never share one. ``from_config`` builds a new object
from the model's noise schedule and keeps the model's training betas; :class:`SchedulerTemplates`
builds it once per loaded model and kind, and each run gets a copy.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import torch
from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    HeunDiscreteScheduler,
    LCMScheduler,
    PNDMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from limner.core.requests import SchedulerName

_SCHEDULERS: dict[SchedulerName, tuple[type[Any], dict[str, Any]]] = {
    SchedulerName.EULER: (EulerDiscreteScheduler, {}),
    SchedulerName.EULER_A: (EulerAncestralDiscreteScheduler, {}),
    SchedulerName.DPMPP_2M: (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    SchedulerName.DPMPP_2M_KARRAS: (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    SchedulerName.DDIM: (DDIMScheduler, {"clip_sample": False}),
    SchedulerName.LCM: (LCMScheduler, {}),
    SchedulerName.UNIPC: (UniPCMultistepScheduler, {}),
    SchedulerName.HEUN: (HeunDiscreteScheduler, {}),
    SchedulerName.PNDM: (PNDMScheduler, {"skip_prk_steps": True}),
}


def make_scheduler(model_scheduler: Any, name: SchedulerName | None) -> SchedulerMixin:
    """A new scheduler for one run: the named kind, or a copy of the model's own."""
    config = model_scheduler.config
    if name is None:
        scheduler: SchedulerMixin = type(model_scheduler).from_config(config)
        return scheduler
    scheduler_class, overrides = _SCHEDULERS[name]
    named: SchedulerMixin = scheduler_class.from_config(config, **overrides)
    return named


class SchedulerTemplates:
    """Fresh schedulers for one loaded model's runs, each a copy of a template built once per kind.

    Why: ``from_config`` reads the config again and recomputes the noise schedule, about 1.1 ms a run
    on this project's machine; a copy of a scheduler built the same way is just as new and unshared. The
    copy is a deep copy that shares the frozen config (no run changes it; copying it was about 80% of a
    deep copy's 0.1 ms) and clones each tensor directly (``Tensor.__deepcopy__`` is slower than
    ``clone``); tensors the template keeps under two names stay one tensor in each copy. A template is
    never run, so threads may copy it at the same time. Templates are kept per model scheduler object
    (schedulers hash by identity).
    """

    def __init__(self) -> None:
        self._templates: dict[tuple[Any, SchedulerName | None], SchedulerMixin] = {}
        self._lock = threading.Lock()

    def fresh(self, model_scheduler: Any, name: SchedulerName | None) -> SchedulerMixin:
        """A new scheduler of kind ``name`` (None: the model's own) on ``model_scheduler``'s config."""
        key = (model_scheduler, name)
        with self._lock:
            template = self._templates.get(key)
            if template is None:
                template = self._templates[key] = make_scheduler(model_scheduler, name)
        return _copy(template)


def _copy(template: Any) -> SchedulerMixin:
    """A deep copy of ``template`` around its own frozen config, its tensors cloned."""
    shared: dict[int, Any] = {id(template.config): template.config}
    for value in vars(template).values():
        if isinstance(value, torch.Tensor) and id(value) not in shared:
            shared[id(value)] = value.clone()
    fresh: SchedulerMixin = copy.deepcopy(template, shared)
    return fresh


def scheduler_label(scheduler: SchedulerMixin) -> str:
    return type(scheduler).__name__
