"""Is `--precision auto` ever slower than fp32? Training images/s of each ladder recipe's
model in fp32 and in bfloat16, alternating, median of repeats, on this machine.

    python benchmarks/frontier/precision.py OUT.json [REPEATS]

On a CPU without native bfloat16, `auto` is fp32 and bf16 is emulated; the bf16 column is
then measured on 512 images only (it is that slow) and says so.
"""

import json
import statistics
import sys
import time

import torch

from fmnist import data
from fmnist.analysis.ladder import RUNGS
from fmnist.evaluate import native_bf16, resolve_precision
from fmnist.models import create_model, flops
from fmnist.training.config import make_config
from fmnist.training.epoch import train_epoch
from fmnist.training.optim import build_optimizer
from fmnist.training.rundir import environment


def images_per_s(cfg, x, y, repeats):
    times = []
    for r in range(repeats + 1):
        torch.manual_seed(r)
        model = create_model(cfg.model)
        if cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = build_optimizer(model, cfg)
        g, gaug = torch.Generator().manual_seed(r), torch.Generator().manual_seed(r)
        n = len(x) if r else min(len(x), 4 * cfg.batch_size)  # the first pass warms up
        t0 = time.perf_counter()
        train_epoch(model, opt, x[:n], y[:n], cfg, generator=g, aug_generator=gaug)
        if r:
            times.append(time.perf_counter() - t0)
    return len(x) / statistics.median(times)


def main(out, repeats=3):
    ds = data.load(download=False)
    cpu = torch.device("cpu")
    native = native_bf16(cpu)
    rows, seen = [], set()
    cases = [(rung, recipe, {}) for rung, recipe in RUNGS.items()]
    cases.insert(1, ("-", "rung92", {"model": "speed_s"}))  # the smallest speed_* model
    for rung, recipe, extra in cases:
        base = make_config(recipe, device="cpu", **extra)
        key = (base.model, base.batch_size, base.channels_last)
        if key in seen:  # rung94 and rung95 share the best schedule
            continue
        seen.add(key)
        mflop = flops(create_model(base.model)) / 1e6
        row = {
            "rung": rung,
            "recipe": recipe,
            "model": base.model,
            "batch_size": base.batch_size,
            "channels_last": base.channels_last,
            "mflop": round(mflop, 2),
            "auto": resolve_precision("auto", cpu, mflop),
        }
        for precision in ("fp32", "bf16"):
            n = 6000 if precision == "fp32" or native else 512
            x = torch.from_numpy(ds.train_images[:n])
            y = torch.from_numpy(ds.train_labels[:n]).long()
            cfg = make_config(recipe, device="cpu", precision=precision, **extra)
            row[f"{precision}_images_per_s"] = round(images_per_s(cfg, x, y, repeats), 1)
            row[f"{precision}_images"] = n
        row["bf16_over_fp32"] = round(row["bf16_images_per_s"] / row["fp32_images_per_s"], 3)
        print(json.dumps(row), flush=True)
        rows.append(row)
    env = environment()
    with open(out, "w") as f:
        json.dump(
            {"machine": env, "native_bf16": native, "repeats": repeats, "rows": rows}, f, indent=2
        )


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
