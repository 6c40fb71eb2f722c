"""Training images/s of one model's step (forward, backward, fused AdamW) on random images,
laid out contiguous, channels-last, and channels-last under torch.compile (inductor), in
fp32 on the CPU; `bias_in_conv` is channels-last with quick_w's whitening bias inside its
frozen convolution, as it was before the bias moved after the first pooling, and
`frozen_bias` channels-last with that bias frozen too (as `variants.py freeze=N` runs
after its first N epochs). From the repository root:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/step.py OUT.json [--model quick_wd64] [--batch 256] \\
        [--layouts channels_last bias_in_conv]
Median of --repeats timings of --steps steps each, after warm-up steps (torch.compile's
compilation is reported apart, as `first_step_s`). The images are random and stay in place
(no batch indexing, augmentation or conversion), and the layouts take turns in each round,
so that only the ratios between layouts are meant to be read.
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
from fmnist.training.rundir import environment


def bias_in_conv(model):
    """quick_w as it was before its whitening bias moved after the first pooling: the bias
    inside the frozen convolution, so the pooling and the convolution pass gradients back."""

    class BiasInConv(type(model)):
        def forward(self, x):
            h = F.conv2d(self.pad(self.normalize(x)), self.whiten.weight, self.whiten.bias)
            return self.classifier(self.features(h))

    model.__class__ = BiasInConv
    return model


def build(model_name, layout, batch, seed=0):
    """One layout's training step, warmed up; and the seconds of its first step."""
    torch.manual_seed(seed)
    model = create_model(model_name)
    images = torch.randint(0, 256, (batch, 28, 28), dtype=torch.uint8)
    if hasattr(model, "init_from_data"):
        model.init_from_data(torch.randint(0, 256, (2000, 28, 28), dtype=torch.uint8))
    if layout == "bias_in_conv":
        model = bias_in_conv(model)
    if layout == "frozen_bias":
        model.whiten.bias.requires_grad_(False)
    fmt = torch.contiguous_format if layout == "contiguous" else torch.channels_last
    model = model.to(memory_format=fmt).train()
    x = to_input(images).contiguous(memory_format=fmt)
    y = torch.randint(0, 10, (batch,))
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-3, fused=True)
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
    return step, first


def measure(model_name, layouts, batch, steps, repeats):
    """Each layout's images/s: the median of `repeats` timings of `steps` steps, the layouts
    taking turns in each round, so a change in the machine's speed falls on all of them."""
    built = {layout: build(model_name, layout, batch) for layout in layouts}
    times = {layout: [] for layout in layouts}
    for _ in range(repeats):
        for layout, (step, _) in built.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                step()
            times[layout].append(time.perf_counter() - t0)
    return [
        {
            "layout": layout,
            "images_per_s": round(steps * batch / statistics.median(times[layout]), 1),
            "first_step_s": round(built[layout][1], 2),
            "seconds": [round(t, 3) for t in times[layout]],
        }
        for layout in layouts
    ]


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
    rows = measure(args.model, args.layouts, args.batch, args.steps, args.repeats)
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
