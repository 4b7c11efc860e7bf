"""Schedulers for runs: each run's is its own object, copied from a template built once per model and kind."""

from __future__ import annotations

import torch
from diffusers import EulerDiscreteScheduler

from limner.core.requests import SchedulerName
from limner.engines.local.schedulers import SchedulerTemplates, make_scheduler

CONFIG = {"num_train_timesteps": 1000, "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}


def test_each_fresh_scheduler_is_new_and_equal_to_one_built_from_config() -> None:
    model_scheduler = EulerDiscreteScheduler.from_config(CONFIG)
    templates = SchedulerTemplates()
    first = templates.fresh(model_scheduler, SchedulerName.DPMPP_2M_KARRAS)
    second = templates.fresh(model_scheduler, SchedulerName.DPMPP_2M_KARRAS)
    built = make_scheduler(model_scheduler, SchedulerName.DPMPP_2M_KARRAS)
    assert first is not second
    assert type(first) is type(built)
    assert dict(first.config) == dict(built.config)
    first.set_timesteps(4)
    built.set_timesteps(4)
    assert torch.equal(first.timesteps, built.timesteps)
    assert second.timesteps is None or len(second.timesteps) != 4  # a run's state stays its own


def test_templates_follow_the_model_scheduler_they_were_built_from() -> None:
    """Two loaded configs (a v-prediction model beside an epsilon one) never share a template."""
    templates = SchedulerTemplates()
    epsilon = EulerDiscreteScheduler.from_config(CONFIG)
    v_prediction = EulerDiscreteScheduler.from_config({**CONFIG, "prediction_type": "v_prediction"})
    assert templates.fresh(epsilon, None).config.prediction_type == "epsilon"
    assert templates.fresh(v_prediction, None).config.prediction_type == "v_prediction"


def test_a_fresh_scheduler_shares_only_the_frozen_config_and_owns_its_tensors() -> None:
    """The copy skips what no run changes (the frozen config, about 80% of a deep copy's time) and
    clones every tensor, so a run that changed one in place would still leave the others alone."""
    model_scheduler = EulerDiscreteScheduler.from_config(CONFIG)
    templates = SchedulerTemplates()
    first = templates.fresh(model_scheduler, None)
    second = templates.fresh(model_scheduler, None)
    assert first.config is second.config
    tensors = [name for name, value in vars(first).items() if isinstance(value, torch.Tensor)]
    assert "sigmas" in tensors
    for name in tensors:
        assert getattr(first, name).data_ptr() != getattr(second, name).data_ptr()
        assert torch.equal(getattr(first, name), getattr(second, name))
    first.sigmas.mul_(2)
    assert not torch.equal(first.sigmas, second.sigmas)
    assert torch.equal(second.sigmas, templates.fresh(model_scheduler, None).sigmas)


def test_tensors_that_share_storage_in_the_template_share_it_in_each_copy() -> None:
    """As a deep copy does: aliases stay aliases (a scheduler that keeps one tensor under two names)."""
    model_scheduler = EulerDiscreteScheduler.from_config(CONFIG)
    templates = SchedulerTemplates()
    earlier = templates.fresh(model_scheduler, None)  # builds the template
    key = next(iter(templates._templates))
    templates._templates[key].alias_of_sigmas = templates._templates[key].sigmas
    fresh = templates.fresh(model_scheduler, None)
    assert fresh.alias_of_sigmas is fresh.sigmas
    assert earlier.sigmas is not fresh.sigmas
