"""What a model may cost, checked before anything real is allocated.

A model is first built on PyTorch's meta device (shapes, no memory), its parameters and
forward FLOPs per image counted, and refused when either passes a bound. The bounds come
from what the registry's own models are: a generous multiple of the largest of them, so
every recipe fits with room to explore, while a 300-byte description asking for a
gigabyte-sized network is refused in milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fmnist.errors import ModelError

# The largest registered model (wide_cnn96 at its defaults) has about 2.6 M parameters and
# 520 MFLOP per image forward; these bounds allow about 20x that (tests/test_models.py
# keeps them between 10x and 50x of the registry's largest).
MAX_PARAMETERS = 50_000_000  # 200 MB of fp32 weights
MAX_MFLOP = 10_000  # 10 GFLOP per 28x28 image forward: hours per epoch on a CPU


def meta_cost(
    build: Callable[[], nn.Module], what: str, *, count_flops: bool = True
) -> tuple[int, float | None]:
    """(parameters, forward MFLOP per image) of the module `build()` makes, built on the
    meta device. `what` names the model in errors. Raises ModelError.

    `count_flops=False` counts parameters only (MFLOP None): a forward pass on the meta
    device imports torch's compiler stack (about 2 s), which a registry model at its own
    defaults, known to fit, need not pay."""
    from fmnist.models.summary import count_parameters, flops

    try:
        with torch.device("meta"):
            model = build()
    except ModelError:
        raise
    except Exception as e:  # a user's constructor may raise anything
        raise ModelError(f"{what}: the constructor failed ({type(e).__name__}: {e})") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"{what}: built a {type(model).__name__}, not a torch.nn.Module")
    trainable, stats = count_parameters(model)
    parameters = trainable + stats
    if parameters > MAX_PARAMETERS:
        raise ModelError(f"{what}: {parameters:,} parameters; the limit is {MAX_PARAMETERS:,}")
    if not count_flops:
        return parameters, None
    if not any(True for _ in model.parameters()):
        return parameters, 0.0
    try:
        mflop = flops(model) / 1e6
    except Exception as e:
        raise ModelError(
            f"{what}: a (1, 1, 28, 28) input fails ({type(e).__name__}: {str(e)[:200]})"
        ) from None
    if mflop > MAX_MFLOP:
        raise ModelError(f"{what}: {mflop:,.0f} MFLOP per image; the limit is {MAX_MFLOP:,} MFLOP")
    return parameters, mflop
