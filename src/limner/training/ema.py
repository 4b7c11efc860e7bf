"""Exponential moving average of a model's weights.

Why: a small model trained fast with a high learning rate has noisy weights at any one step; the
average over the last few thousand steps samples much cleaner images, and it is what we ship.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copy of ``model``'s float parameters, updated with warm-up ``min(decay, (1+t)/(10+t))``."""

    def __init__(self, model: nn.Module, decay: float = 0.999) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the shadow toward ``model``; it follows the model's device (a GPU run keeps it there)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        shadows: list[torch.Tensor] = []
        values: list[torch.Tensor] = []
        for key, value in model.state_dict().items():
            shadow = self.shadow[key]
            if shadow.device != value.device:
                shadow = self.shadow[key] = shadow.to(value.device)
            if value.dtype.is_floating_point:
                shadows.append(shadow)
                values.append(value.detach().float())
            else:
                shadow.copy_(value)
        if shadows:
            # One fused multi-tensor op instead of a kernel per parameter: on a GPU the per-step
            # launch overhead of a few hundred small lerps outweighs the tiny model's own step.
            torch._foreach_lerp_(shadows, values, 1.0 - decay)

    @torch.no_grad()
    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.shadow.items()})

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.shadow = {k: v.clone().float() for k, v in state.items()}
