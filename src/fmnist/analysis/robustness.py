"""Test accuracy under corruptions at five severities, in the spirit of MNIST-C (Mu and
Gilmer 2019) and FMNIST-C (Weiss and Tonella 2022).

The corruptions are `fmnist.corruptions`'; each is deterministic for a given seed, and
severity 0 is the clean image, so its accuracy is exactly `fmnist evaluate`'s. The mean is
also given apart over the corruptions the `corrupt` augmentation trains with and over the
ones it never shows.
"""

from __future__ import annotations

import numpy as np
import torch

from fmnist.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    TRAINING,
    CorruptionError,
    corrupt,
    kornia_or_fail,
)  # fmt: skip


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
    corruption accuracy (over every corruption and severity), "relative": mean / clean, or
    None where clean is 0}."""
    corruptions = list(corruptions or CORRUPTIONS)
    for name in corruptions:
        if name not in CORRUPTIONS:
            raise CorruptionError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    for s in severities:
        if not 1 <= s <= 5:
            raise CorruptionError(f"--severities: each must be 1 to 5, got {s}")
    kornia_or_fail()
    clean = accuracy_under(model, images, labels, corruptions[0], 0, seed)
    table = {}
    for name in corruptions:
        table[name] = {
            str(s): accuracy_under(model, images, labels, name, s, seed) for s in severities
        }
        if log:
            log(f"{name:<16}" + "  ".join(f"{100 * a:5.1f}" for a in table[name].values()))

    def mean_of(names):
        cells = [a for n in names for a in table[n].values()]
        return float(np.mean(cells)) if cells else None

    mean = mean_of(table)
    # relative: null when no clean image is classified right (no ratio to give)
    relative = mean / clean if clean else None
    return {"clean": clean, "accuracy": table, "mean": mean, "relative": relative,
            # apart: the corruptions the `corrupt` augmentation trains with, and the others
            "mean_trained": mean_of([n for n in table if n in TRAINING]),
            "mean_unseen": mean_of([n for n in table if n not in TRAINING]),
            "severities": list(severities), "seed": seed, "images": len(labels)}  # fmt: skip


def of_clean(result: dict) -> str:
    """The mean under corruption as a share of the clean accuracy, in words."""
    relative = result["relative"]
    return "no clean image right" if relative is None else f"{relative:.1%} of clean"
