"""Scheduler names users type -> a fresh diffusers scheduler built from the model's own config.

Why fresh per request: a scheduler holds per-run state (timesteps, step index, solver history),
so two requests on one loaded model must never share one. ``from_config`` builds a new object
from the model's noise schedule, which is cheap and keeps the model's training betas.
"""

from __future__ import annotations

from typing import Any

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


def scheduler_label(scheduler: SchedulerMixin) -> str:
    return type(scheduler).__name__
