"""Does torch.compile pay on a CPU? Training images/s of a rung's model, eager against
compiled, and the seconds the compilation takes (its first two steps), one record per run:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/compile.py OUT.json rung92 rung94
A compiled rung pays when (epochs x 60,000 / compiled rate + compile seconds) is below
(epochs x 60,000 / eager rate).
"""

import argparse
import dataclasses
import json
import statistics
import time
from datetime import datetime, timezone

import torch

from fmnist.models import create_model
from fmnist.training.config import make_config
from fmnist.training.epoch import train_step
from fmnist.training.hard import images_through
from fmnist.training.optim import build_optimizer
from fmnist.training.rundir import environment


def images_per_s(step, batch: int, steps: int = 12, repeats: int = 3) -> float:
    for _ in range(2):
        step()
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def measure(recipe: str) -> dict:
    cfg = dataclasses.replace(make_config(recipe, device="cpu"), precision="fp32")
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (cfg.batch_size, 28, 28), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (cfg.batch_size,), generator=gen)
    row = {"recipe": recipe, "model": cfg.model, "batch_size": cfg.batch_size}
    for mode in ("eager", "compiled"):
        model = create_model(cfg.model)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        optimizer = build_optimizer(model, cfg)
        net = torch.compile(model) if mode == "compiled" else model
        t0 = time.perf_counter()
        train_step(net, optimizer, x, y, cfg)
        row[f"{mode}_first_step_s"] = round(time.perf_counter() - t0, 2)
        rate = images_per_s(lambda n=net, o=optimizer: train_step(n, o, x, y, cfg), cfg.batch_size)
        row[f"{mode}_images_per_s"] = round(rate, 1)
    images = images_through(cfg, 60_000, cfg.epochs)
    epochs_s = {m: images / row[f"{m}_images_per_s"] for m in ("eager", "compiled")}
    row["epochs"] = cfg.epochs
    row["rung_s_eager"] = round(epochs_s["eager"], 1)
    row["rung_s_compiled"] = round(epochs_s["compiled"] + row["compiled_first_step_s"], 1)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("recipes", nargs="+")
    args = p.parse_args()
    rows = [measure(r) for r in args.recipes]
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": environment(),
        "precision": "fp32",
        "runs": rows,
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2, allow_nan=False)
    for r in rows:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
