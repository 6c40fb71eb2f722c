"""What a model costs: parameters, FLOPs per image, and a Keras-style summary table."""

from __future__ import annotations

import torch
from torch import nn


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, non-trainable statistics such as BatchNorm's running mean/var)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    )
    return trainable, stats


def flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> int:
    """Floating-point operations of one forward pass per image (2 per multiply-add)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            per_output = (
                module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            )
            total += 2 * output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += 2 * module.in_features * module.out_features

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


def summary(model: nn.Module, input_shape: tuple[int, ...] = (1, 1, 28, 28)) -> str:
    """A Keras-like table of the leaf layers: type, output shape, parameters."""
    rows: list[tuple[str, str, int]] = []
    hooks = []

    def hook(module, _inputs, output):
        n = sum(p.numel() for p in module.parameters(recurse=False))
        n += sum(b.numel() for b in module.buffers(recurse=False) if b.dtype.is_floating_point)
        name = module._summary_name
        rows.append((name, str(tuple(["N", *output.shape[1:]])).replace("'", ""), n))

    for name, m in model.named_modules():
        if len(list(m.children())) == 0:
            m._summary_name = f"{name} ({type(m).__name__})"
            hooks.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    trainable, stats = count_parameters(model)
    width = max(36, *(len(r[0]) + 2 for r in rows))
    line = "-" * (width + 34)
    out = [f'Model: "{model.model_name}"', line]
    out.append(f"{'Layer (type)':<{width}}{'Output Shape':<22}{'Param #':>12}")
    out.append("=" * (width + 34))
    out += [f"{n:<{width}}{s:<22}{p:>12,}" for n, s, p in rows]
    out.append("=" * (width + 34))
    out.append(f"Total params: {trainable + stats:,}")
    out.append(f"Trainable params: {trainable:,}")
    out.append(f"Non-trainable params: {stats:,}")
    out.append(f"Forward pass: {flops(model, (1, *input_shape[1:])) / 1e6:,.2f} MFLOP per image")
    out.append(line)
    return "\n".join(out)
