"""The registry: @register(name, ArgsDataclass, description=...) and register_size, then
create_model(name, **kw), list_models(), describe(name); what an architecture argument may be.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

from torch import nn

from fmnist.errors import ModelError
from fmnist.models.limits import meta_cost

_REGISTRY: dict[str, tuple[type, type]] = {}
_DESCRIPTIONS: dict[str, str] = {}  # name -> one line in plain words, for `fmnist models`


def register(name: str, args_cls: type, *, description: str = "") -> Callable[[type], type]:
    """Register a model class under `name`; `description` is one line saying what it is
    (without one: the first line of the class's docstring)."""

    def wrap(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = (cls, args_cls)
        _DESCRIPTIONS[name] = description or (cls.__doc__ or "").strip().split("\n")[0]
        cls.model_name = name
        return cls

    return wrap


def register_size(name: str, base: str, *, description: str = "", **defaults) -> None:
    """Register model `base` again as `name` with other argument defaults: a size a recipe
    can name (its arguments stay overridable, and a model file records them all)."""
    base_cls, base_args = _REGISTRY[base]
    args_cls = dataclasses.make_dataclass(
        f"{base_args.__name__}_{name}",
        [(k, type(v), dataclasses.field(default=v)) for k, v in defaults.items()],
        bases=(base_args,),
        frozen=True,
    )
    sizes = ", ".join(f"{k}={v}" for k, v in defaults.items())
    register(name, args_cls, description=description or f"{base} with {sizes}")(
        type(name, (base_cls,), {})
    )


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    """What model `name` is, in one line."""
    if name not in _REGISTRY:
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return _DESCRIPTIONS[name]


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
    args = args_cls(**kwargs)
    check_args(name, args)
    # its size, before any memory is taken; the registry's own sizes fit (tests/test_models.py)
    changed = args != args_cls()
    meta_cost(lambda: cls(args), f"model {name!r}", count_flops=changed)
    model = cls(args)
    model.args = args
    return model


# What any architecture argument may be: whole numbers are sizes (channels, blocks, layers,
# classes), fractions are dropout rates. An architecture checks its own finer rules.
INT_RANGE = (1, 4096)
CLASSES_RANGE = (2, 1000)
FLOAT_RANGE = (0.0, 1.0)  # low included, high excluded


def check_args(name: str, args) -> None:
    """Refuse an argument of the wrong type or out of range, naming it."""
    for f in dataclasses.fields(args):
        value, kind = getattr(args, f.name), type(f.default)
        if kind is int:
            low, high = CLASSES_RANGE if f.name == "num_classes" else INT_RANGE
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ModelError(
                    f"model {name!r}: {f.name} must be a whole number from {low} to {high}, "
                    f"got {value!r}"
                )
        elif kind is float:
            low, high = FLOAT_RANGE
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or not math.isfinite(value) or not low <= value < high:
                raise ModelError(
                    f"model {name!r}: {f.name} must be a number in [{low}, {high}), got {value!r}"
                )


def model_args(model: nn.Module) -> dict:
    return dataclasses.asdict(model.args)
