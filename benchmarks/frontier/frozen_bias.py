"""quick_w with its whitening bias frozen at zero (frozen_bias) against the bias learned, in
training steps: with nothing below the first learned convolution to learn, no gradient is
computed for that convolution's input. The median of 7 rounds of 20 steps each way, the
two alternating, batch 128, channels-last as the recipes train. From the repository root,
with nothing else running:
    python benchmarks/frontier/frozen_bias.py OUT.json
"""

import argparse

import torch
from pooled_whitening import alternating_ms, write_record  # this folder
from torch import nn

from fmnist.models import create_model

MODELS = ("quick_w2", "quick_w2r24", "quick_w2d32", "quick_wd64")
KEYS = ("learned", "frozen")  # the whitening's bias


def make_step(name: str, frozen_bias: bool, x, y):
    """One training step of `name` (AdamW, fused, as the recipes train) as a function."""
    torch.manual_seed(0)
    model = create_model(name, frozen_bias=frozen_bias).to(memory_format=torch.channels_last)
    model.init_from_data(torch.randint(0, 256, (500, 28, 28), dtype=torch.uint8))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3, fused=True)

    def step():
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def step_ms(name: str) -> dict:
    x = torch.rand(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (128,))
    medians = alternating_ms({key: make_step(name, key == "frozen", x, y) for key in KEYS})
    ratio = round(medians["frozen"] / medians["learned"], 3)
    return {"model": name, "step_ms": medians, "ratio": ratio}


def main(out: str) -> None:
    what = (
        "training step of quick_w sizes: the whitening's bias frozen at zero (frozen) "
        "against learned"
    )
    write_record(out, what, step_ms, MODELS)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    main(p.parse_args().out)
