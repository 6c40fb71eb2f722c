"""Side by side, in one process: a plain PyTorch loop against our trainer.

Every figure is a median over repeats, measured alternately in the same run, so that a
noisy machine moves both sides alike. The test set is used to measure time-to-accuracy
only: it selects nothing.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from fmnist import data
from fmnist.evaluate import infer
from fmnist.models import create_model
from fmnist.training.config import RECIPES, make_config, resolve_device
from fmnist.training.epoch import train_epoch
from fmnist.training.optim import build_optimizer
from fmnist.training.rundir import environment
from fmnist.training.train import train

# ----------------------------------------------------------------------------
# The reference: the loop a user writes from the PyTorch tutorials
# ----------------------------------------------------------------------------


def reference_model(like: nn.Module | None = None) -> nn.Sequential:
    """The tutorial's CNN as a user writes it in PyTorch, starting from `like`'s weights."""
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.BatchNorm2d(6, eps=1e-3, momentum=0.01),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(),
        nn.BatchNorm2d(16, eps=1e-3, momentum=0.01),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 7 * 7, 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, 32),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(32, 10),
    )
    if like is not None:
        values = list(like.state_dict().values())
        model.load_state_dict(dict(zip(model.state_dict(), values, strict=True)))
    return model


def reference_epoch(model, optimizer, x, y, batch_size: int) -> None:
    model.train()
    perm = torch.randperm(len(x))
    for i in range(0, len(x), batch_size):
        idx = perm[i : i + batch_size]
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        optimizer.step()


def reference_data(images, labels, device):
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1).div(255).to(device)
    return x, torch.tensor(labels).to(device)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------
# Training throughput
# ----------------------------------------------------------------------------


def throughput(ds, device, repeats: int = 3, n: int = 48000, batch_size: int = 128) -> dict:
    """Training images/s at the seed recipe's batch size: reference and ours, alternating."""
    train_idx, _ = data.stratified_split(ds.train_labels, 0.2, seed=0)
    train_idx = train_idx[:n]
    n = len(train_idx)
    images, labels = ds.train_images[train_idx], ds.train_labels[train_idx]
    x_ref, y_ref = reference_data(images, labels, device)
    x_ours = torch.from_numpy(images).to(device)
    y_ours = torch.from_numpy(labels).to(device)
    cfg = make_config("seed", batch_size=batch_size, device=device.type)
    times = {"reference": [], "ours": []}
    warm = 10 * batch_size  # first steps build kernels and caches: not timed
    for r in range(repeats + 1):
        torch.manual_seed(r)
        model = reference_model(create_model("seed_cnn")).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t0 = time.perf_counter()
        reference_epoch(model, opt, x_ref[: warm if r == 0 else n], y_ref, batch_size)
        _sync(device)
        if r:
            times["reference"].append(time.perf_counter() - t0)

        torch.manual_seed(r)
        model = create_model("seed_cnn").to(device)
        opt = build_optimizer(model, cfg)
        g = torch.Generator().manual_seed(r)
        gaug = torch.Generator(device).manual_seed(r)
        sub = slice(0, warm if r == 0 else n)
        t0 = time.perf_counter()
        train_epoch(model, opt, x_ours[sub], y_ours[sub], cfg, generator=g, aug_generator=gaug)
        _sync(device)
        if r:
            times["ours"].append(time.perf_counter() - t0)
    ref = n / statistics.median(times["reference"])
    ours = n / statistics.median(times["ours"])
    return {
        "images": n,
        "batch_size": batch_size,
        "repeats": repeats,
        "reference_images_per_s": round(ref, 1),
        "ours_images_per_s": round(ours, 1),
        "ratio": round(ours / ref, 3),
        "seconds": {k: [round(t, 3) for t in v] for k, v in times.items()},
    }


# ----------------------------------------------------------------------------
# Time to accuracy
# ----------------------------------------------------------------------------

TARGETS = (0.89, 0.91)


def _first_reach(curve: list[tuple[float, float]]) -> dict:
    out = {}
    for target in TARGETS:
        hit = next((t for t, acc in curve if acc >= target), None)
        out[f"{target:.0%}"] = None if hit is None else round(hit, 2)
    return out


def reference_time_to_accuracy(ds, device, epochs: int, seed: int = 0) -> dict:
    """The tutorial's settings in a plain loop, with a validation pass each epoch as Keras does."""
    train_idx, val_idx = data.stratified_split(ds.train_labels, 0.2, seed=seed)
    x, y = reference_data(ds.train_images[train_idx], ds.train_labels[train_idx], device)
    xv, _ = reference_data(ds.train_images[val_idx], ds.train_labels[val_idx], device)
    torch.manual_seed(seed)
    model = reference_model(create_model("seed_cnn")).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    curve, elapsed = [], 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        reference_epoch(model, opt, x, y, 128)
        model.eval()
        with torch.no_grad():
            for i in range(0, len(xv), 1000):
                model(xv[i : i + 1000])
        _sync(device)
        elapsed += time.perf_counter() - t0
        acc = (infer(model, ds.test_images).argmax(1).numpy() == ds.test_labels).mean()
        curve.append((elapsed, float(acc)))
    return {"curve": curve, **_first_reach(curve)}


def recipe_time_to_accuracy(ds, device, recipe: str, epochs: int | None, out_dir) -> dict:
    cfg = make_config(recipe, epochs=epochs, patience=0, device=device.type)
    curve = []

    def on_epoch(epoch, model, train_s, row):
        acc = (infer(model, ds.test_images).argmax(1).numpy() == ds.test_labels).mean()
        curve.append((train_s, float(acc)))

    train(cfg, out=out_dir / recipe, dataset=ds, log=lambda *a: None, on_epoch=on_epoch)
    return {"curve": curve, "epochs": cfg.epochs, **_first_reach(curve)}


# ----------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------


def inference(ds, device, repeats: int = 5) -> dict:
    """Test-set images/s at batch 1000 and single-image latency: a plain model and ours."""
    torch.manual_seed(0)
    ours = create_model("seed_cnn").to(device).eval()
    models = {"reference": reference_model(ours).to(device).eval(), "ours": ours}
    images = torch.from_numpy(ds.test_images).to(device)
    x = images.unsqueeze(1).float().div(255)
    one = x[:1]
    sizes = (1000, 256)
    batch = {(k, b): [] for k in models for b in sizes}
    latency = {k: [] for k in models}
    with torch.inference_mode():
        for model in models.values():
            for i in range(0, 2000, 1000):  # warm-up
                model(x[i : i + 1000])
        for _ in range(repeats):
            for name, model in models.items():
                for size in sizes:
                    t0 = time.perf_counter()
                    for i in range(0, len(x), size):
                        model(x[i : i + size])
                    _sync(device)
                    batch[name, size].append(time.perf_counter() - t0)
                for _ in range(40):
                    t0 = time.perf_counter()
                    model(one)
                    _sync(device)
                    latency[name].append(time.perf_counter() - t0)
    out = {"repeats": repeats}
    for (name, size), times in batch.items():
        out[f"{name}_batch_{size}_images_per_s"] = round(len(x) / statistics.median(times), 1)
    for name in models:
        out[f"{name}_single_image_latency_ms"] = round(1000 * statistics.median(latency[name]), 3)
    out["ratio"] = round(
        out["ours_batch_1000_images_per_s"] / out["reference_batch_1000_images_per_s"], 3
    )
    return out


# ----------------------------------------------------------------------------
# All of it
# ----------------------------------------------------------------------------


def run(
    ds, device_name: str = "auto", repeats: int = 3, epochs: int = 15, out_dir=None, log=print
) -> dict:
    device = resolve_device(device_name)
    env = environment()
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "machine": {
            "cpu": env["cpu"],
            "cpu_count": env["cpu_count"],
            "cpu_capability": env["cpu_capability"],
            "native_bf16": env["native_bf16"],
            "isa_pins": env["isa_pins"],
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cuda": env["cuda"],
        },
    }
    log(f"training throughput, {repeats} repeats ...")
    result["throughput"] = throughput(ds, device, repeats)
    log(f"time to accuracy, up to {epochs} epochs ...")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(out_dir or tmp)
        result["time_to_accuracy"] = {
            "reference": reference_time_to_accuracy(ds, device, epochs),
            "seed": recipe_time_to_accuracy(ds, device, "seed", epochs, tmp),
        }
        if "fast" in RECIPES:
            result["time_to_accuracy"]["fast"] = recipe_time_to_accuracy(
                ds, device, "fast", None, tmp
            )
    log("inference ...")
    result["inference"] = inference(ds, device)
    return result


def format_table(result: dict) -> str:
    t = result["throughput"]
    m = result["machine"]
    lines = [
        f"{result['date'][:10]}, {result['device']}: {m['cpu']} ({m['cpu_count']} cores, "
        f"{m.get('cpu_capability', '?')}, {m['torch_threads']} threads), torch {m['torch']}"
        + (f", {m['cuda']}" if m["cuda"] else ""),
        "",
        "| measure | plain PyTorch loop | fmnist | ratio |",
        "|---|---|---|---|",
        f"| training images/s, seed CNN, batch {t['batch_size']} (median of {t['repeats']}) | "
        f"{t['reference_images_per_s']:,.0f} | {t['ours_images_per_s']:,.0f} | "
        f"{t['ratio']:.2f}x |",
    ]
    tta = result["time_to_accuracy"]
    ref = tta["reference"]

    def fmt(v):
        return "not reached" if v is None else f"{v:.1f} s"

    for target in ("89%", "91%"):
        for recipe in ("seed", "fast"):
            if recipe not in tta:
                continue
            ours = tta[recipe][target]
            ratio = (
                f"{ref[target] / ours:.2f}x"
                if ours is not None and ref[target] is not None
                else "-"
            )
            lines.append(
                f"| time to {target} test accuracy, `{recipe}` recipe | {fmt(ref[target])} | "
                f"{fmt(ours)} | {ratio} |"
            )
    inf = result["inference"]
    for size in (1000, 256):
        ref_rate = inf[f"reference_batch_{size}_images_per_s"]
        ours_rate = inf[f"ours_batch_{size}_images_per_s"]
        lines.append(
            f"| inference images/s, batch {size} (median of {inf['repeats']}) | "
            f"{ref_rate:,.0f} | {ours_rate:,.0f} | {ours_rate / ref_rate:.2f}x |"
        )
    lines.append(
        f"| single-image latency | {inf['reference_single_image_latency_ms']:.2f} ms | "
        f"{inf['ours_single_image_latency_ms']:.2f} ms | |"
    )
    return "\n".join(lines)
