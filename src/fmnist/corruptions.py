"""Corruptions of images at five severities, in the spirit of MNIST-C (Mu and Gilmer 2019)
and FMNIST-C (Weiss and Tonella 2022): what `fmnist robustness` measures accuracy under,
and what the `corrupt` augmentation trains with (a subset, so that the others stay unseen).

Geometric transforms, blurs and colour adjustments are kornia's (on tensors, on any
device); the noises are one line each on a seeded generator. Every corruption is
deterministic for a given generator, and severity 0 is the clean image.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from fmnist.errors import FmnistError

SEVERITIES = (1, 2, 3, 4, 5)


class CorruptionError(FmnistError):
    pass


def kornia_or_fail():
    try:
        import kornia
    except ImportError:
        raise CorruptionError(
            "corruptions need kornia: pip install 'fashion-mnist-cnn[explain]'"
        ) from None
    return kornia


def _level(values: tuple, severity: int) -> float:
    return values[severity - 1]


def _signs(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=g, device=g.device).float() * 2 - 1


def gaussian_noise(x, s, g):
    sigma = _level((0.04, 0.08, 0.12, 0.18, 0.26), s)
    return x + sigma * torch.randn(x.shape, generator=g, device=x.device)


def shot_noise(x, s, g):
    photons = _level((60.0, 25.0, 12.0, 5.0, 3.0), s)
    return torch.poisson(x * photons, generator=g) / photons


def impulse_noise(x, s, g):
    amount = _level((0.03, 0.06, 0.09, 0.17, 0.27), s)
    u = torch.rand(x.shape, generator=g, device=x.device)
    x = x.clone()
    x[u < amount / 2] = 0.0
    x[(u >= amount / 2) & (u < amount)] = 1.0
    return x


def blur(x, s, g):
    sigma = _level((0.5, 0.75, 1.0, 1.25, 1.5), s)
    return kornia_or_fail().filters.gaussian_blur2d(x, (7, 7), (sigma, sigma))


def motion_blur(x, s, g):
    size = int(_level((3, 5, 5, 7, 9), s))
    angle = torch.rand(len(x), generator=g, device=x.device) * 180 - 90
    direction = torch.zeros(len(x), device=x.device)
    return kornia_or_fail().filters.motion_blur(x, size, angle, direction)


def rotate(x, s, g):
    degrees = _level((6.0, 12.0, 18.0, 24.0, 30.0), s)
    return kornia_or_fail().geometry.transform.rotate(x, degrees * _signs(len(x), g))


def shear(x, s, g):
    amount = _level((0.1, 0.2, 0.3, 0.4, 0.5), s) * _signs(len(x), g)
    return kornia_or_fail().geometry.transform.shear(
        x, torch.stack([amount, torch.zeros_like(amount)], 1)
    )


def scale(x, s, g):
    factor = _level((0.9, 0.8, 0.7, 0.6, 0.5), s)
    factors = torch.full((len(x), 1), factor, device=x.device)
    return kornia_or_fail().geometry.transform.scale(x, factors)


def translate(x, s, g):
    pixels = _level((1.0, 2.0, 3.0, 4.0, 5.0), s)
    angle = torch.rand(len(x), generator=g, device=x.device) * 2 * math.pi
    shift = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * pixels
    return kornia_or_fail().geometry.transform.translate(x, shift)


def brightness(x, s, g):
    return kornia_or_fail().enhance.adjust_brightness(x, _level((0.1, 0.2, 0.3, 0.4, 0.5), s))


def contrast(x, s, g):
    return kornia_or_fail().enhance.adjust_contrast(x, _level((0.8, 0.6, 0.45, 0.3, 0.2), s))


def inverse(x, s, g):
    """Toward the negative: at severity 5, the negative itself (a light background)."""
    alpha = _level((0.2, 0.4, 0.6, 0.8, 1.0), s)
    return (1 - alpha) * x + alpha * (1 - x)


def _flip_share(flip):
    def corrupt(x, s, g):
        share = s / 5  # the share of images flipped: all of them at severity 5
        pick = torch.rand(len(x), generator=g, device=x.device) < share
        x = x.clone()
        x[pick] = flip(x[pick])
        return x

    return corrupt


CORRUPTIONS: dict[str, Callable] = {
    "gaussian_noise": gaussian_noise,
    "shot_noise": shot_noise,
    "impulse_noise": impulse_noise,
    "blur": blur,
    "motion_blur": motion_blur,
    "rotate": rotate,
    "shear": shear,
    "scale": scale,
    "translate": translate,
    "brightness": brightness,
    "contrast": contrast,
    "inverse": inverse,
    "flip_left_right": _flip_share(lambda x: torch.flip(x, dims=[-1])),
    "flip_up_down": _flip_share(lambda x: torch.flip(x, dims=[-2])),
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in [0, 1] under one corruption."""
    if name not in CORRUPTIONS:
        raise CorruptionError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if not 0 <= severity <= 5:
        raise CorruptionError(f"severity must be 0 to 5, got {severity}")
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)
    if severity == 0:
        return x
    g = torch.Generator().manual_seed(seed * 1000 + list(CORRUPTIONS).index(name) * 10 + severity)
    return CORRUPTIONS[name](x, severity, g).clamp(0, 1)


# The corruptions the `corrupt` augmentation trains with; the other eight stay unseen, so
# that `fmnist robustness` tells robustness to what was trained on from what carries over.
TRAINING = ("gaussian_noise", "blur", "rotate", "scale", "brightness", "contrast")


def random_corruptions(x: torch.Tensor, generator: torch.Generator, share: float = 0.5):
    """Corrupt a share of a uint8 batch (N, 28, 28): each picked image gets one of the
    TRAINING corruptions, at a severity drawn for each corruption and batch (1 to 5)."""
    kornia_or_fail()
    n = len(x)
    dev = x.device
    picked = torch.rand(n, generator=generator, device=dev) < share
    which = torch.randint(0, len(TRAINING), (n,), generator=generator, device=dev)
    severity = torch.randint(1, 6, (len(TRAINING),), generator=generator, device=dev).tolist()
    out = x.clone()
    for k, name in enumerate(TRAINING):
        rows = (picked & (which == k)).nonzero().squeeze(1)
        if len(rows):
            images = x[rows].float().div(255).unsqueeze(1)
            bent = CORRUPTIONS[name](images, severity[k], generator).clamp(0, 1)
            out[rows] = bent.squeeze(1).mul(255).round().to(torch.uint8)
    return out
