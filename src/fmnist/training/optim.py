"""How the weights move: the optimizer and its parameter groups, the learning-rate schedule,
and the moving average of the weights (EMA)."""

from __future__ import annotations

import copy
import math

import torch

from fmnist.training.config import ConfigError, TrainConfig


def parameter_groups(model, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one; with bias_decay off, the one-dimensional
    parameters (biases, BatchNorm shifts, which set where an activation sits rather than
    how large a weight grows) in a second group without weight decay."""
    params = list(model.parameters())
    if cfg.bias_decay:
        return [{"params": params}]
    return [
        {"params": [p for p in params if p.ndim > 1]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def build_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    # AdamW with weight_decay 0 is Adam; Keras's epsilon is 1e-7. The fused kernel updates
    # all parameters in one call: about 5% more training images/s for the seed CNN on a CPU.
    return torch.optim.AdamW(
        parameter_groups(model, cfg),
        lr=cfg.lr,
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        fused=True,
    )


def build_scheduler(optimizer, cfg: TrainConfig, total: int):
    """A per-step learning-rate schedule over `total` steps, or None for a constant rate."""
    if cfg.schedule == "onecycle":
        # PyTorch's one-cycle divides by zero when the warm-up is one step or less
        if total < 3:
            raise ConfigError(
                f"the onecycle schedule needs at least 3 steps, this run has {total}; "
                "use more epochs or images, a smaller batch, or another schedule"
            )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=cfg.lr,
            total_steps=total,
            pct_start=max(cfg.warmup or 0.25, 2 / total),
            anneal_strategy="linear",
            cycle_momentum=False,
        )
    if cfg.schedule == "cosine":
        warm = int(cfg.warmup * total)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return None


class EMA:
    """An exponential moving average of the weights (BatchNorm statistics copied as they are)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.steps = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        # a short memory at first, so early weights do not linger (as TensorFlow's EMA does)
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1.0 - decay)
        torch._foreach_copy_(list(self.model.buffers()), list(model.buffers()))
