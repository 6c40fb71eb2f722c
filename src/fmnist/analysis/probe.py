"""Short throughput probes: how fast this machine is, and how long a ladder will take.

`calibration(device)` is measured at the start and the end of every ladder run, so rungs
timed on different machines compare honestly: an fp32 matrix multiply's GFLOP/s (what the
arithmetic can reach) and the `seed` recipe's steady training images/s (what a small
convolutional network reaches). `recipe_images_per_s` times a few training steps of one
recipe's model, batch and precision on random images: the ladder's estimate before it
starts (each rung's epochs x 60,000 images / that rate, per seed).
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import torch

from fmnist.evaluate import resolve_precision
from fmnist.models import create_model, flops
from fmnist.training.config import make_config
from fmnist.training.epoch import train_step
from fmnist.training.hard import images_through
from fmnist.training.optim import build_optimizer

TRAIN_IMAGES = 60_000  # the ladder trains on every training image


def matmul_gflops(device: torch.device, size: int = 1024, repeats: int = 5) -> float:
    """Median GFLOP/s of an fp32 (size x size) @ (size x size) multiply, after a warm-up."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    rates = []
    for i in range(repeats + 1):
        sync(device)
        t0 = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        if i:  # the first multiply warms the caches and the kernel choice
            rates.append(2 * size**3 / (time.perf_counter() - t0) / 1e9)
    return round(statistics.median(rates), 1)


def recipe_images_per_s(recipe: str, device: torch.device, steps: int = 4, **settings) -> float:
    """Training images/s of `recipe`'s model, batch size and precision: `steps` optimizer
    steps on random images after two warm-up steps (weights and statistics are thrown away)."""
    cfg = make_config(recipe, device=device.type, **settings)
    model = create_model(cfg.model).to(device)
    cfg = dataclasses.replace(
        cfg, precision=resolve_precision(cfg.precision, device, flops(model) / 1e6)
    )
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model, cfg)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (cfg.batch_size, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (cfg.batch_size,), generator=generator)
    images, labels = images.to(device), labels.to(device)
    for _ in range(2):
        train_step(model, optimizer, images, labels, cfg)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(model, optimizer, images, labels, cfg)
    sync(device)
    return round(steps * cfg.batch_size / (time.perf_counter() - t0), 1)


def calibration(device: torch.device) -> dict:
    """What this machine reaches now: fp32 matmul GFLOP/s and the seed recipe's images/s."""
    return {
        "matmul_gflops": matmul_gflops(device),
        "seed_images_per_s": recipe_images_per_s("seed", device, steps=8),
        "torch_threads": torch.get_num_threads(),
    }


def estimate_seconds(recipe: str, seeds: int, device: torch.device, **settings) -> float:
    """About how long `seeds` runs of `recipe` take on all training images (or on
    `train_limit` of them), from its epochs and a short probe of its throughput."""
    cfg = make_config(recipe, device=device.type, **settings)
    images = min(cfg.train_limit or TRAIN_IMAGES, TRAIN_IMAGES)
    rate = recipe_images_per_s(recipe, device, **settings)
    return seeds * images_through(cfg, images, cfg.epochs) / rate


def announce(plan, chosen, compare, compare_budget_s, device, log, settings) -> float:
    """Print, before anything trains, about how long each part will take; returns the total."""
    total = 0.0
    parts = []
    for rung, n in plan.items():
        seconds = estimate_seconds(chosen[rung], n, device, **settings)
        parts.append(f"{rung} {n} x {seconds / n:.0f} s")
        total += seconds
    total += len(compare) * compare_budget_s
    if compare:
        parts.append(f"{len(compare)} compared recipe(s) up to {compare_budget_s:.0f} s each")
    log(f"ladder: about {duration(total)} here ({'; '.join(parts)}), plus loading")
    return total


def duration(seconds: float) -> str:
    """Seconds as a person reads them: 45 s, 12 min, 2.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
