"""Test accuracy under corruptions at five severities, in the spirit of MNIST-C (Mu and
Gilmer 2019) and FMNIST-C (Weiss and Tonella 2022).

Geometric transforms, blurs and colour adjustments are kornia's (on tensors, on any
device); the noises are one line each on a seeded generator. Every corruption is
deterministic for a given seed, and severity 0 is the clean image, so its accuracy is
exactly `fmnist evaluate`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from fmnist import FmnistError

SEVERITIES = (1, 2, 3, 4, 5)


class RobustnessError(FmnistError):
    pass


def _kornia():
    try:
        import kornia
    except ImportError:
        raise RobustnessError(
            "fmnist robustness needs kornia: pip install 'fashion-mnist-cnn[explain]'"
        ) from None
    return kornia


def _level(values: tuple, severity: int) -> float:
    return values[severity - 1]


def _signs(n: int, g: torch.Generator) -> torch.Tensor:
    return torch.randint(0, 2, (n,), generator=g).float() * 2 - 1


def gaussian_noise(x, s, g):
    sigma = _level((0.04, 0.08, 0.12, 0.18, 0.26), s)
    return x + sigma * torch.randn(x.shape, generator=g)


def shot_noise(x, s, g):
    photons = _level((60.0, 25.0, 12.0, 5.0, 3.0), s)
    return torch.poisson(x * photons, generator=g) / photons


def impulse_noise(x, s, g):
    amount = _level((0.03, 0.06, 0.09, 0.17, 0.27), s)
    u = torch.rand(x.shape, generator=g)
    x = x.clone()
    x[u < amount / 2] = 0.0
    x[(u >= amount / 2) & (u < amount)] = 1.0
    return x


def blur(x, s, g):
    sigma = _level((0.5, 0.75, 1.0, 1.25, 1.5), s)
    return _kornia().filters.gaussian_blur2d(x, (7, 7), (sigma, sigma))


def motion_blur(x, s, g):
    size = int(_level((3, 5, 5, 7, 9), s))
    angle = torch.rand(len(x), generator=g) * 180 - 90
    return _kornia().filters.motion_blur(x, size, angle, torch.zeros(len(x)))


def rotate(x, s, g):
    degrees = _level((6.0, 12.0, 18.0, 24.0, 30.0), s)
    return _kornia().geometry.transform.rotate(x, degrees * _signs(len(x), g))


def shear(x, s, g):
    amount = _level((0.1, 0.2, 0.3, 0.4, 0.5), s) * _signs(len(x), g)
    return _kornia().geometry.transform.shear(x, torch.stack([amount, torch.zeros_like(amount)], 1))


def scale(x, s, g):
    factor = _level((0.9, 0.8, 0.7, 0.6, 0.5), s)
    return _kornia().geometry.transform.scale(x, torch.full((len(x), 1), factor))


def translate(x, s, g):
    pixels = _level((1.0, 2.0, 3.0, 4.0, 5.0), s)
    angle = torch.rand(len(x), generator=g) * 2 * math.pi
    shift = torch.stack([torch.cos(angle), torch.sin(angle)], 1) * pixels
    return _kornia().geometry.transform.translate(x, shift)


def brightness(x, s, g):
    return _kornia().enhance.adjust_brightness(x, _level((0.1, 0.2, 0.3, 0.4, 0.5), s))


def contrast(x, s, g):
    return _kornia().enhance.adjust_contrast(x, _level((0.8, 0.6, 0.45, 0.3, 0.2), s))


def inverse(x, s, g):
    """Toward the negative: at severity 5, the negative itself (a light background)."""
    alpha = _level((0.2, 0.4, 0.6, 0.8, 1.0), s)
    return (1 - alpha) * x + alpha * (1 - x)


def _flip_share(flip):
    def corrupt(x, s, g):
        share = s / 5  # the share of images flipped: all of them at severity 5
        pick = torch.rand(len(x), generator=g) < share
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
        raise RobustnessError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if not 0 <= severity <= 5:
        raise RobustnessError(f"severity must be 0 to 5, got {severity}")
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div(255).unsqueeze(1)
    if severity == 0:
        return x
    g = torch.Generator().manual_seed(seed * 1000 + list(CORRUPTIONS).index(name) * 10 + severity)
    return CORRUPTIONS[name](x, severity, g).clamp(0, 1)


def accuracy_under(model, images, labels, name, severity, seed=0, batch_size=1000) -> float:
    x = corrupt(images, name, severity, seed)
    return float((logits_of(model, x, batch_size).argmax(1).numpy() == labels).mean())


@torch.inference_mode()
def logits_of(model, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Logits of float pixels (N, 1, 28, 28) in [0, 1], as `evaluate.infer` computes them
    from uint8 images."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model(x[i : i + batch_size].to(device)).float().cpu()
           for i in range(0, len(x), batch_size)]  # fmt: skip
    model.train(was_training)
    return torch.cat(out)


def robustness(model, images, labels, corruptions=None, severities=SEVERITIES, seed=0,
               log=None) -> dict:  # fmt: skip
    """{"clean": accuracy, "accuracy": {corruption: {severity: accuracy}}, "mean": mean
    corruption accuracy (over every corruption and severity), "relative": mean / clean}."""
    corruptions = list(corruptions or CORRUPTIONS)
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise RobustnessError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    for s in severities:
        if not 1 <= s <= 5:
            raise RobustnessError(f"--severities: each must be 1 to 5, got {s}")
    _kornia()
    clean = accuracy_under(model, images, labels, corruptions[0], 0, seed)
    table = {}
    for name in corruptions:
        table[name] = {
            str(s): accuracy_under(model, images, labels, name, s, seed) for s in severities
        }
        if log:
            log(f"{name:<16}" + "  ".join(f"{100 * a:5.1f}" for a in table[name].values()))
    mean = float(np.mean([a for row in table.values() for a in row.values()]))
    return {"clean": clean, "accuracy": table, "mean": mean, "relative": mean / clean,
            "severities": list(severities), "seed": seed, "images": len(labels)}  # fmt: skip
