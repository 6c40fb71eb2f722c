"""The CUDA-graphed training step against ordinary steps, on one GPU.

1. The same weights: two copies of a model take the same batches (real training images,
   fp32, deterministic cuDNN, the recipe's schedule), one by ordinary steps, one through
   `GraphedStep` (its warm-up, then replays, then a short batch); the largest difference
   of any weight, relative to that weight tensor's largest value, must stay below --tol.
2. The speed: each recipe trained for 2 epochs on all 60,000 images without and with the
   graph (`cuda_graph` False, True; alternating, --repeats times); the second epoch's
   training images/s, median over the repeats, and their ratio.
    python benchmarks/frontier/graph_check.py OUT.json [--recipes rung94 ...] [--repeats 2]
Exits 1 if the capture failed or a model's weights part (1); the speed part never fails.
"""

import argparse
import copy
import json
import statistics
import sys
import tempfile

import torch
from explore import machine  # this folder

from fmnist import data
from fmnist.models import create_model
from fmnist.training.config import make_config
from fmnist.training.epoch import train_step
from fmnist.training.graphs import GraphedStep
from fmnist.training.optim import build_optimizer, build_scheduler
from fmnist.training.rundir import environment
from fmnist.training.train import train


def same_weights(recipe: str, ds, steps: int = 12, device="cuda", capture=True) -> dict:
    device = torch.device(device)
    cfg = make_config(recipe, precision="fp32")
    images = torch.from_numpy(ds.train_images[: cfg.batch_size * steps + 40]).to(device)
    labels = torch.from_numpy(ds.train_labels[: cfg.batch_size * steps + 40]).to(device)
    torch.manual_seed(0)
    model = create_model(cfg.model).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if hasattr(model, "init_from_data"):
        model.init_from_data(images)
    twin = copy.deepcopy(model)
    batches = [slice(i * cfg.batch_size, (i + 1) * cfg.batch_size) for i in range(steps)]
    batches.append(slice(steps * cfg.batch_size, None))  # 40 images: an ordinary step
    losses = {}
    for name, net in (("ordinary", model), ("graphed", twin)):
        net.train()
        opt = build_optimizer(net, cfg)
        sched = build_scheduler(opt, cfg, cfg.epochs * len(batches))
        stepper = None
        if name == "graphed":
            stepper = GraphedStep(net, opt, cfg, capture=capture, log=print)
        losses[name] = []
        for b in batches:
            if stepper is None:
                loss, _ = train_step(net, opt, images[b], labels[b], cfg)
            else:
                loss, _ = stepper(images[b], labels[b])
            losses[name].append(float(loss))
            sched.step()
        if stepper is not None:
            captured = stepper.graph is not None or (not capture and stepper.ready)
    with torch.no_grad():
        diff = max(
            float((p - q).abs().max() / p.abs().max().clamp_min(1e-12))
            for p, q in zip(model.parameters(), twin.parameters(), strict=True)
        )
    return {"recipe": recipe, "model": cfg.model, "steps": len(batches), "captured": captured,
            "max_relative_weight_difference": diff,
            "loss_ordinary": [round(v, 6) for v in losses["ordinary"]],
            "loss_graphed": [round(v, 6) for v in losses["graphed"]]}  # fmt: skip


def speed(recipe: str, ds, repeats: int) -> dict:
    rates = {False: [], True: []}
    for _ in range(repeats):
        for graphed in (False, True):
            cfg = make_config(recipe, epochs=2, all_data=True, cuda_graph=graphed, device="cuda")
            with tempfile.TemporaryDirectory() as tmp:
                res = train(cfg, out=f"{tmp}/run", dataset=ds, log=lambda *a: None)
            rates[graphed].append(res.history[-1]["images_per_s"])
    plain, graphed = statistics.median(rates[False]), statistics.median(rates[True])
    return {"recipe": recipe, "model": cfg.model, "batch_size": cfg.batch_size,
            "images_per_s_ordinary": plain, "images_per_s_graphed": graphed,
            "speedup": round(graphed / plain, 2),
            "all": {str(k): v for k, v in rates.items()}}  # fmt: skip


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--check", nargs="+", default=["rung94", "rung90"])
    p.add_argument("--recipes", nargs="+", default=["rung90", "rung92", "rung93", "rung94"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    ds = data.load(download=False)
    env = environment()
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    record = {"checks": [], "speed": [], "tol": a.tol, "gpu": env["cuda"], **machine(env)}

    def write():  # after each part, so that a run stopped early keeps what it measured
        with open(a.out, "w") as f:
            json.dump(record, f, indent=1)

    for r in a.check:
        record["checks"].append(same_weights(r, ds))
        c = record["checks"][-1]
        print(json.dumps({k: v for k, v in c.items() if not k.startswith("loss")}), flush=True)
    write()
    bad = [
        c["recipe"] for c in record["checks"]
        if not (c["captured"] and c["max_relative_weight_difference"] < a.tol)
    ]  # fmt: skip
    if bad:
        print(f"not captured, or weights differ beyond {a.tol}: {', '.join(bad)}", file=sys.stderr)
        sys.exit(1)
    torch.backends.cudnn.deterministic = False
    for r in a.recipes:
        record["speed"].append(speed(r, ds, a.repeats))
        print(json.dumps(record["speed"][-1]), flush=True)
        write()


if __name__ == "__main__":
    main()
