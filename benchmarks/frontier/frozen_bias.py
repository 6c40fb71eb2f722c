"""quick_w with its whitening bias frozen at zero (frozen_bias) against the bias learned, in
training steps: with nothing below the first learned convolution to learn, no gradient is
computed for that convolution's input. The median of 7 rounds of 20 steps each way, the
two alternating, batch 128, channels-last as the recipes train. From the repository root,
with nothing else running:
    python benchmarks/frontier/frozen_bias.py OUT.json
"""

import torch
from pooled_whitening import (  # this folder
    adamw,
    alternating_ms,
    command_line,
    training_step,
    whitened,
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


WHAT = (
    "training step of quick_w sizes: the whitening's bias frozen at zero (frozen) against learned"
)

if __name__ == "__main__":
    command_line(__doc__, WHAT, step_ms, MODELS)
