"""The models: a registry of architectures by name, and what each costs.

    create_model("quick_wd64")   # a registered architecture, ready to train
    list_models(), describe(name)  # the names, and one line on each (fmnist models)

Every model takes float pixels in [0, 1] shaped (N, 1, 28, 28) and returns logits (N, 10);
its architecture arguments live in a small dataclass, saved beside the weights. Each family
lives in its own module and registers its models when imported, which this package does.
"""

from fmnist.models import quick, resnet, seed, speed, wide
from fmnist.models.registry import (
    ModelError,
    check_args,
    create_model,
    describe,
    list_models,
    model_args,
    register,
    register_size,
)
from fmnist.models.summary import count_parameters, flops, summary

FAMILIES = (seed, wide, resnet, speed, quick)  # imported for their registrations

__all__ = [
    "FAMILIES",
    "ModelError",
    "check_args",
    "count_parameters",
    "create_model",
    "describe",
    "flops",
    "list_models",
    "model_args",
    "register",
    "register_size",
    "summary",
]
