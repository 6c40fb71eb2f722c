"""Training images/s of one model's step (forward, backward, fused AdamW) on random images,
laid out contiguous, channels-last, and channels-last under torch.compile (inductor), in
fp32 on the CPU. From the repository root:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/step.py OUT.json [--model quick_wd64] [--batch 256]
Median of --repeats timings of --steps steps each, after warm-up steps (torch.compile's
compilation is reported apart, as `first_step_s`). The images are random and stay in place
(no batch indexing, augmentation or conversion), and the layouts run one after another, so
only the ratios between layouts are meant to be read.
"""

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F
from explore import machine  # this folder

from fmnist.evaluate import to_input
from fmnist.models import create_model, flops
from fmnist.training.train import environment


def measure(model_name, layout, batch, steps, repeats, seed=0):
    torch.manual_seed(seed)
    model = create_model(model_name)
    images = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8)
    if hasattr(model, "init_from_data"):
        model.init_from_data(torch.randint(0, 256, (2000, 28, 28), dtype=torch.uint8))
    fmt = torch.contiguous_format if layout == "contiguous" else torch.channels_last
    model = model.to(memory_format=fmt).train()
    x = to_input(images).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    net = torch.compile(model) if layout == "compiled" else model

    def step():
        loss = F.cross_entropy(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    step()
    first = time.perf_counter() - t0
    for _ in range(3):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {
        "layout": layout,
        "images_per_s": round(steps * batch / median, 1),
        "first_step_s": round(first, 2),
        "seconds": [round(t, 3) for t in times],
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--model", default="quick_wd64")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--layouts", nargs="+", default=["contiguous", "channels_last", "compiled"])
    args = p.parse_args()
    env = environment()
    rows = [measure(args.model, lay, args.batch, args.steps, args.repeats) for lay in args.layouts]
    base = rows[0]["images_per_s"]
    for r in rows:
        r["ratio"] = round(r["images_per_s"] / base, 3)
        print(f"{r['layout']:<14} {r['images_per_s']:>8,.0f} images/s  {r['ratio']:.2f}x  "
              f"(first step {r['first_step_s']:.1f} s)")  # fmt: skip
    record = {
        "model": args.model,
        "mflop": round(flops(create_model(args.model)) / 1e6, 2),
        "batch": args.batch,
        "steps": args.steps,
        "repeats": args.repeats,
        "precision": "fp32",
        "rows": rows,
        "date": time.strftime("%Y-%m-%d"),
        **machine(env),
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
