"""quick_w's whitening and its max-pooling as one stride-2 convolution (Whitening.pooled)
against the two steps, in training steps of the ladder's quick_w sizes: the median of 7
rounds of 20 steps each way, the two alternating, batch 128, channels-last as the recipes
train. From the repository root, with nothing else running:
    python benchmarks/frontier/pooled_whitening.py OUT.json
"""

import argparse
import json
import statistics
import time
from datetime import datetime, timezone

import explore  # noqa: F401  (this folder; registers its sizes, qw2w16 among them)
import torch
from torch import nn

from fmnist.models import create_model
from fmnist.training.rundir import environment

MODELS = ("qw2w16", "quick_w2r24", "quick_w2", "quick_w2d24", "quick_w2d32", "quick_wd64")


def two_steps(model, x):
    """The forward pass with the whitening's convolution, then the pooling layer."""
    pool, *rest = model.features
    x = pool(model.whiten(model.pad(model.normalize(x)))) + model.whiten.bias.view(1, -1, 1, 1)
    for layer in rest:
        x = layer(x)
    return model.classifier(x)


def alternating_ms(runs: dict, rounds: int = 7, steps: int = 20) -> dict:
    """key -> the median milliseconds of one call of `runs[key]` (a training step): each run
    warmed up by 5 calls, then `rounds` rounds of `steps` calls each, the runs alternating
    within a round, so a slower spell of the machine falls on all of them."""
    for run in runs.values():
        for _ in range(5):
            run()
    times = {key: [] for key in runs}
    for _ in range(rounds):
        for key, run in runs.items():
            t0 = time.perf_counter()
            for _ in range(steps):
                run()
            times[key].append((time.perf_counter() - t0) / steps * 1e3)
    return {key: round(statistics.median(v), 3) for key, v in times.items()}


def whitened(name: str, **kwargs):
    """The quick_w size `name`, seeded, channels-last as the recipes train, its whitening set
    from random images."""
    torch.manual_seed(0)
    model = create_model(name, **kwargs).to(memory_format=torch.channels_last)
    model.init_from_data(torch.randint(0, 256, (500, 28, 28), dtype=torch.uint8))
    return model


def adamw(model):
    """Fused AdamW over the trained parameters, as the recipes train."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-3, fused=True)


def training_step(forward, optimizer, x, y):
    """One training step as a function: the loss of forward(x), its gradients, the update."""

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(forward(x), y).backward()
        optimizer.step()

    return step


def step_ms(name: str) -> dict:
    model = whitened(name)
    optimizer = adamw(model)
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    medians = alternating_ms(
        {
            "two_steps": training_step(lambda x: two_steps(model, x), optimizer, x, y),
            "pooled": training_step(model, optimizer, x, y),
        }
    )
    ratio = round(medians["pooled"] / medians["two_steps"], 3)
    return {"model": name, "step_ms": medians, "ratio": ratio}


def write_record(out: str, what: str, step_ms, models) -> None:
    """`step_ms(name)` for each of `models`, printed as it goes, then the record in `out`."""
    env = environment()
    rows = []
    for name in models:
        rows.append(step_ms(name))
        print(json.dumps(rows[-1]), flush=True)
    record = {
        "what": what,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": env["cpu"], "cpu_capability": env["cpu_capability"],
        "threads": env["torch_threads"], "torch": env["torch"],
        "rows": rows,
    }  # fmt: skip
    with open(out, "w") as f:
        json.dump(record, f, indent=1)


def command_line(doc: str, what: str, step_ms, models) -> None:
    """A step benchmark's command line: `OUT.json`, where `write_record` writes its record."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("out")
    write_record(p.parse_args().out, what, step_ms, models)


WHAT = (
    "training step of quick_w sizes: whitening and pooling as one strided "
    "convolution (pooled) against the two steps"
)

if __name__ == "__main__":
    command_line(__doc__, WHAT, step_ms, MODELS)
