"""A training step with Muon on the convolution filters (variants.py `muon=S`) against the
fused AdamW the recipes use: what Muon's orthogonalisation costs per step, at rung90's batch
(128) and rung94's (256). The median of 7 rounds of 20 steps each way, the two alternating,
channels-last as the recipes train. From the repository root, with nothing else running:
    python benchmarks/frontier/muon_step.py OUT.json
"""

from types import SimpleNamespace

import torch
from pooled_whitening import (  # this folder
    adamw,
    alternating_ms,
    command_line,
    training_step,
    whitened,
)
from variants import ConvMuon  # this folder

MODELS = {"quick_w2": 128, "qw2w48d2": 256, "quick_wd64": 256}  # model -> batch (explore.py sizes)
KEYS = ("adamw", "muon")


def make_step(name: str, optimizer_name: str, x, y):
    """One training step of `name` with the named optimizer, as a function."""
    model = whitened(name)
    if optimizer_name == "muon":
        cfg = SimpleNamespace(lr=1e-3, weight_decay=0.0, adam_eps=1e-7, bias_decay=True)
        optimizer = ConvMuon(model, cfg, scale=3.0, momentum=0.95)
    else:
        optimizer = adamw(model)
    return training_step(model, optimizer, x, y)


def step_ms(name: str) -> dict:
    batch = MODELS[name]
    x = torch.rand(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    medians = alternating_ms({key: make_step(name, key, x, y) for key in KEYS})
    ratio = round(medians["muon"] / medians["adamw"], 3)
    return {"model": name, "batch": batch, "step_ms": medians, "ratio": ratio}


WHAT = "training step: Muon on the convolution filters (muon) against fused AdamW (adamw)"

if __name__ == "__main__":
    command_line(__doc__, WHAT, step_ms, list(MODELS))
