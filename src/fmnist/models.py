"""Model registry: @register(name, ArgsDataclass), create_model(name, **kw), list_models().

Every model takes float pixels in [0, 1] shaped (N, 1, 28, 28) and returns logits (N, 10).
Its architecture arguments live in a small dataclass, saved beside the weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fmnist import FmnistError

_REGISTRY: dict[str, tuple[type, type]] = {}


class ModelError(FmnistError):
    pass


def register(name: str, args_cls: type) -> Callable[[type], type]:
    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = (cls, args_cls)
        cls.model_name = name
        return cls

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    cls, args_cls = _REGISTRY[name]
    known = {f.name for f in dataclasses.fields(args_cls)}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ModelError(
            f"model {name!r} has no argument {', '.join(unknown)}; "
            f"its arguments: {', '.join(sorted(known)) or 'none'}"
        )
    model = cls(args_cls(**kwargs))
    model.args = args_cls(**kwargs)
    return model


def model_args(model: nn.Module) -> dict:
    return dataclasses.asdict(model.args)


# ----------------------------------------------------------------------------
# The tutorial's CNN, reproduced exactly
# ----------------------------------------------------------------------------


def keras_init_(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def keras_batchnorm(channels: int) -> nn.BatchNorm2d:
    # Keras BatchNormalization(epsilon=1e-3, momentum=0.99); PyTorch's momentum is 1 - Keras's.
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


@dataclass(frozen=True)
class SeedCNNArgs:
    num_classes: int = 10  # outputs
    dropout: float = 0.2  # after each of the two hidden dense layers


@register("seed_cnn", SeedCNNArgs)
class SeedCNN(nn.Module):
    """Conv 6@5x5, BN, MaxPool, Conv 16@5x5, BN, MaxPool, Dense 128, Dense 32, Dense 10.

    Keras's order is Conv2D(activation='relu') then BatchNormalization, so ReLU comes
    before BatchNorm here too.
    """

    def __init__(self, args: SeedCNNArgs):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),
            nn.ReLU(),
            keras_batchnorm(6),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5, padding=2),
            nn.ReLU(),
            keras_batchnorm(16),
            nn.MaxPool2d(2, 2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 7 * 7, 128),
            nn.ReLU(),
            nn.Dropout(args.dropout),
            nn.Linear(128, 32),
            nn.ReLU(),
            nn.Dropout(args.dropout),
            nn.Linear(32, args.num_classes),
        )
        keras_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


# ----------------------------------------------------------------------------
# Summary
# ----------------------------------------------------------------------------


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable parameters, non-trainable statistics such as BatchNorm's running mean/var)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    stats = sum(
        b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked")
    )
    return trainable, stats


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
    out.append(line)
    return "\n".join(out)
