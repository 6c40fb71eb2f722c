"""Hard-example epochs: after the first `full_epochs` passes over every training image, each
epoch trains only on the share `hard_share` of them that the model got most wrong when it
last saw them. The loss of each image is the cross-entropy of the training step that last
took it (augmented as that step saw it), kept at no extra cost; an image not yet seen counts
as the hardest. On the ladder's quick models the hardest share beat a random share of the
same size on validation (benchmarks/frontier/selective.py and its records).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def epoch_images(cfg, n: int, epoch: int) -> int:
    """Images the 1-based `epoch` trains on, of the split's `n`."""
    if cfg.hard_share >= 1 or epoch <= cfg.full_epochs:
        return n
    return max(1, round(cfg.hard_share * n))


def steps_through(cfg, n: int, epochs: int, world: int = 1) -> int:
    """Optimizer steps of the first `epochs` epochs (the schedule spans the run's). Under
    torchrun with `world` processes a last batch too small to give each one an image is
    left out (fmnist.training.epoch.train_epoch), so it makes no step."""
    steps = 0
    for e in range(1, epochs + 1):
        full, rest = divmod(epoch_images(cfg, n, e), cfg.batch_size)
        steps += full + (rest >= max(1, world))
    return steps


class HardExamples:
    """Each training image's loss when last seen, and the images of each epoch."""

    def __init__(self, cfg, n: int, device):
        self.cfg = cfg
        self.losses = torch.full((n,), math.inf, device=device)

    def order(self, epoch: int, generator) -> torch.Tensor:
        """The epoch's images in a seeded random order: all of them, or the hardest share."""
        n = len(self.losses)
        k = epoch_images(self.cfg, n, epoch)
        if k == n:
            return torch.randperm(n, generator=generator).to(self.losses.device)
        # the hardest k (equal losses taken by index), put in index order so that the seeded
        # shuffle alone decides the order
        hardest = torch.sort(self.losses, descending=True, stable=True).indices[:k]
        hardest = hardest.sort().values
        shuffle = torch.randperm(k, generator=generator).to(self.losses.device)
        return hardest[shuffle]

    def note(self, idx: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """Keep the losses of the images one step trained on."""
        self.losses[idx] = F.cross_entropy(logits.float(), labels, reduction="none")


def images_through(cfg, n: int, epochs: int) -> int:
    """Images the first `epochs` epochs train on, counting an image once per epoch."""
    return sum(epoch_images(cfg, n, e) for e in range(1, epochs + 1))


def epochs_phrase(epochs: int, settings: dict) -> str:
    """'5 epochs', or '5 epochs, 4 on the hardest 40%' where `settings` (a recipe's or a
    record's) asks for hard-example epochs."""
    share, full = settings.get("hard_share", 1.0), settings.get("full_epochs", 1)
    text = f"{epochs} epoch{'s' * (epochs != 1)}"
    if share < 1 and epochs > full:
        text += f", {epochs - full} on the hardest {share:.0%}"
    return text
