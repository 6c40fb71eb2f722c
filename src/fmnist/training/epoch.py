"""One epoch: the training pass over the split in a seeded order, and the validation pass."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fmnist import augment
from fmnist.evaluate import evaluate_logits, infer
from fmnist.training import distributed
from fmnist.training.graphs import forward_backward_update


def train_step(model, optimizer, images, labels, cfg):
    """One optimizer step on a uint8 batch; returns the (detached) loss and logits."""
    optimizer.zero_grad(set_to_none=True)
    return forward_backward_update(model, optimizer, images, labels, cfg)


def train_epoch(
    net,
    optimizer,
    images,
    labels,
    cfg,
    *,
    generator,
    aug_generator,
    scheduler=None,
    ema=None,
    progress=None,
    ctx=distributed.SINGLE,
    stepper=None,
    hard=None,
    epoch=1,
):
    """One pass in a seeded random order; returns mean loss and accuracy over the pass.

    Under torchrun each step's global batch is shared out (`distributed.shard`); a last
    batch too small to give every process an image is left out. `stepper(images, labels)`,
    if given, takes the place of `train_step` (a `GraphedStep` on a GPU). `hard`, a
    HardExamples: the 1-based `epoch` takes its images, and each step's losses are kept."""
    net.train()
    if hard is None:
        order = torch.randperm(len(images), generator=generator).to(images.device)
    else:
        order = hard.order(epoch, generator)
    n = len(order)
    total_loss = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    seen = 0
    for start in range(0, n, cfg.batch_size):
        batch = order[start : start + cfg.batch_size]
        if len(batch) < ctx.world:
            break
        idx = distributed.shard(batch, ctx)
        x = augment.augment(images[idx], cfg.augment, aug_generator)
        y = labels[idx]
        if stepper is None:
            loss, logits = train_step(net, optimizer, x, y, cfg)
        else:
            loss, logits = stepper(x, y)
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(getattr(net, "module", net))
        if hard is not None:
            hard.note(idx, logits, y)
        total_loss += loss * len(idx)
        correct += (logits.argmax(1) == y).sum()
        seen += len(idx)
        if progress is not None:
            progress.update(min(start + cfg.batch_size, n))
    if ctx.active:
        seen = int(distributed.sum_all(torch.tensor(seen, device=images.device), ctx))
        distributed.sum_all(total_loss, ctx)
        distributed.sum_all(correct, ctx)
    return float(total_loss) / seen, int(correct) / seen


@dataclass(frozen=True)
class Validation:
    """The validation split's figures after an epoch."""

    loss: float
    accuracy: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.loss)


def validate(
    model,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    precision: str = "fp32",
    tta: bool = False,
) -> Validation | None:
    """Loss and accuracy on the validation split (None where the run has none); with `tta`,
    of the logits averaged with the mirror image's."""
    if not len(images):
        return None
    logits = infer(model, images, batch_size, precision=precision, tta=tta)
    # the figures a test evaluation computes, applied to the validation images
    figures = evaluate_logits(logits, labels)
    return Validation(loss=figures["test_loss"], accuracy=figures["test_accuracy"])
