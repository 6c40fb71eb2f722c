"""quick_w with its whitening bias frozen at zero (frozen_bias) against the bias learned, in
training steps: with nothing below the first learned convolution to learn, no gradient is
computed for that convolution's input. The median of 7 rounds of 20 steps each way, the
two alternating, batch 128, channels-last as the recipes train. From the repository root,
with nothing else running:
    python benchmarks/frontier/frozen_bias.py OUT.json
"""

import argparse

import torch
from pooled_whitening import (  # this folder
    adamw,
    alternating_ms,
    training_step,
    whitened,
    write_record,
)

MODELS = ("quick_w2", "quick_w2r24", "quick_w2d32", "quick_wd64")
KEYS = ("learned", "frozen")  # the whitening's bias


def make_step(name: str, frozen_bias: bool, x, y):
    """One training step of `name` (AdamW, fused, as the recipes train) as a function."""
    model = whitened(name, frozen_bias=frozen_bias)
    return training_step(model, adamw(model), x, y)


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
