"""Batch augmentation: whole uint8 batches (N, 28, 28) on whichever device holds them,
drawn from one seeded generator, so a run's augmentations repeat exactly."""

from __future__ import annotations

import numpy as np
import torch


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to `pad` pixels (zero padding, then a random 28x28 window)."""
    n, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1, 1), generator=generator, device=x.device)
    rows = dy + torch.arange(h, device=x.device).view(1, h, 1)
    cols = dx + torch.arange(w, device=x.device).view(1, 1, w)
    return padded[torch.arange(n, device=x.device).view(n, 1, 1), rows, cols]


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror half of the images left to right (clothes are left-right symmetric classes)."""
    flip = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(flip.view(-1, 1, 1), x.flip(-1), x)


def random_erase(
    x: torch.Tensor,
    generator: torch.Generator,
    p: float = 0.5,
    area: tuple[float, float] = (0.02, 0.25),
    ratio: tuple[float, float] = (0.3, 3.3),
) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017): a random rectangle of random noise in a share p."""
    n, h, w = x.shape
    dev = x.device

    def uniform(lo, hi):
        return lo + (hi - lo) * torch.rand(n, generator=generator, device=dev)

    a = uniform(*area) * h * w
    r = torch.exp(uniform(np.log(ratio[0]), np.log(ratio[1])))
    eh = torch.sqrt(a * r).round().clamp(1, h).long()
    ew = torch.sqrt(a / r).round().clamp(1, w).long()
    top = (uniform(0, 1) * (h - eh + 1)).long()
    left = (uniform(0, 1) * (w - ew + 1)).long()
    ys = torch.arange(h, device=dev).view(1, h, 1)
    xs = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (ys >= top.view(n, 1, 1))
        & (ys < (top + eh).view(n, 1, 1))
        & (xs >= left.view(n, 1, 1))
        & (xs < (left + ew).view(n, 1, 1))
    )
    apply = torch.rand(n, generator=generator, device=dev) < p
    noise = torch.randint(0, 256, x.shape, generator=generator, device=dev, dtype=torch.uint8)
    return torch.where(inside & apply.view(n, 1, 1), noise, x)


def augment(x: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """`none`, `flip`, `flip_erase`, `crop_flip`, `crop_flip_erase`, `flip_corrupt` or
    `crop_flip_corrupt`
    applied to a uint8 batch; `corrupt` gives half the images one of the corruptions in
    `fmnist.corruptions.TRAINING` at a random severity (kornia, the `explain` extra)."""
    if kind == "none":
        return x
    if "crop" in kind:
        x = random_crop(x, 2, generator)
    if "flip" in kind:
        x = random_flip(x, generator)
    if "erase" in kind:
        x = random_erase(x, generator)
    if "corrupt" in kind:
        from fmnist.corruptions import random_corruptions

        x = random_corruptions(x, generator)
    return x


AUGMENTATIONS = (
    "none",
    "flip",
    "flip_erase",
    "crop_flip",
    "crop_flip_erase",
    "flip_corrupt",
    "crop_flip_corrupt",
)
