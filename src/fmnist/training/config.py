"""What a run is asked to do: one frozen TrainConfig, the named recipes, recipe files.

Unknown settings, wrong types and values out of range are refused with the setting's name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fmnist import augment, corruptions, data
from fmnist.errors import FmnistError, ModelError
from fmnist.files import read_json
from fmnist.models import create_model, list_models
from fmnist.models.user import check_model_args, is_user_spec, parse_spec, read_source
from fmnist.training.recipes import RECIPES

# A recipe file: {"format": RECIPE_FORMAT, "settings": {TrainConfig field: value, ...}, ...}
RECIPE_FORMAT = "fmnist-recipe/1"


@dataclass(frozen=True)
class TrainConfig:
    model: str = "seed_cnn"  # registry name (fmnist models), or file.py:Class of your own
    model_args: dict = field(default_factory=dict, hash=False)  # its keyword arguments (JSON)
    recipe: str = "seed"  # the preset these settings started from
    epochs: int = 30  # maximum passes over the training split
    batch_size: int = 128  # images per optimizer step
    lr: float = 1e-3  # Adam learning rate
    adam_eps: float = 1e-7  # Keras's Adam epsilon (PyTorch's default is 1e-8)
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay
    bias_decay: bool = True  # the decay on biases and BatchNorm shifts too; False: weights only
    label_smoothing: float = 0.0  # cross-entropy target smoothing
    val_fraction: float = 0.2  # stratified share of the 60,000 training images held out
    all_data: bool = False  # train on all 60,000 for exactly `epochs`; no validation split
    schedule: str = "constant"  # learning rate per step: constant | onecycle | cosine
    warmup: float = 0.0  # share of all steps spent warming up (onecycle, cosine)
    augment: str = "none"  # none | flip | [crop_]flip_erase | crop_flip | [crop_]flip_corrupt
    full_epochs: int = 1  # epochs over every training image before hard_share applies
    hard_share: float = 1.0  # share of the training images each later epoch trains on: the
    # hardest when last seen (fmnist.training.hard); 1 = every image every epoch
    ema: float = 0.0  # decay per step of a moving average of the weights; 0 = off
    bn_momentum: float = 0.0  # BatchNorm running-average update (PyTorch terms); 0 = the model's
    select: str = "val_loss"  # which epoch's weights to keep: val_loss | val_acc | last
    patience: int = 5  # epochs without a better validation figure before stopping; 0 = never
    seed: int = 0  # weights, split and batch order
    device: str = "auto"  # cpu | cuda | auto
    train_limit: int = 0  # use only the first N images of the training split; 0 = all (smoke runs)
    eval_batch_size: int = 1000  # images per inference batch
    tta: bool = False  # also report test accuracy averaged with the mirror image (never selects)
    precision: str = "auto"  # auto | fp32 | bf16 (convolutions and matmuls in bfloat16, weights
    # fp32); auto: bf16 where the device runs it natively (AVX-512 BF16, AMX, CUDA), else fp32
    channels_last: bool = False  # NHWC activations (pays for wider models under bf16 on CPUs)
    sync_bn: bool = False  # under torchrun: BatchNorm statistics over all processes (CUDA only)
    cuda_graph: bool = True  # on one GPU: each full batch's step replayed as one captured graph
    deterministic: bool = False  # deterministic kernels: the same seed, the same numbers on a GPU
    exclude: str = ""  # training images to leave out: an audit's JSON or a list of indices


# The settings `fmnist train` takes as flags (--batch-size for batch_size; a bool is a flag
# without a value); the rest come from the recipe.
SETTING_FLAGS = (
    "model",
    "model_args",
    "epochs",
    "batch_size",
    "lr",
    "seed",
    "patience",
    "train_limit",
    "precision",
    "channels_last",
    "all_data",
    "exclude",
    "augment",
    "deterministic",
)


class ConfigError(FmnistError):
    pass


def load_recipe(recipe: str) -> tuple[str, dict]:
    """(name, settings) of a named preset or of a recipe file that `fmnist tune` wrote."""
    if recipe in RECIPES:
        return recipe, RECIPES[recipe]
    path = Path(recipe)
    if path.suffix != ".json" and not path.is_file():
        raise ConfigError(
            f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}, "
            "or a recipe .json file"
        )
    obj = read_json(path, "recipe file", missing="no such recipe file", error=ConfigError)
    if (
        not isinstance(obj, dict)
        or obj.get("format") != RECIPE_FORMAT
        or not isinstance(obj.get("settings"), dict)
    ):
        raise ConfigError(
            f"{recipe}: not an fmnist recipe (a JSON object with format {RECIPE_FORMAT!r} "
            "and a settings object, as fmnist tune writes)"
        )
    return path.stem, obj["settings"]


def _check_names(settings: dict, where: str) -> None:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise ConfigError(f"unknown training setting(s){where}: {', '.join(unknown)}")


def make_config(recipe: str = "seed", **overrides) -> TrainConfig:
    """A recipe's preset (a name or a recipe file) with explicit settings (not None) on top."""
    _check_names(overrides, "")
    name, preset = load_recipe(recipe)
    _check_names(preset, f" in {recipe}")
    settings = {**preset, "recipe": name}
    if overrides.get("all_data"):
        # no validation split: nothing to select an epoch or stop early on; the epoch count
        # is the one chosen on validation beforehand
        settings.update(select="last", patience=0)
    settings.update({k: v for k, v in overrides.items() if v is not None})
    return check(TrainConfig(**settings))


def config_from_record(settings: dict, where: str) -> TrainConfig:
    """The TrainConfig a run directory's config.json recorded."""
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: no training settings recorded")
    _check_names(settings, f" in {where}")
    return check(TrainConfig(**settings))


def check(cfg: TrainConfig) -> TrainConfig:
    """Refuse settings of the wrong type or out of range, naming the setting."""
    check_types(cfg)
    check_ranges(cfg)
    check_choices(cfg)
    if cfg.all_data and (cfg.select != "last" or cfg.patience):
        raise ConfigError(
            "all_data trains on every training image and has no validation split: it needs "
            "select 'last' and patience 0 (a fixed number of epochs)"
        )
    if cfg.exclude:
        data.read_exclude(cfg.exclude)  # a file that is not a list of indices: refused now
    if "corrupt" in cfg.augment:
        corruptions.kornia_or_fail()  # refused before the first step, not in it
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu")
    return cfg


def check_types(cfg: TrainConfig) -> None:
    """Each setting of its default's type (an int where a float is asked is fine), finite."""
    for f in dataclasses.fields(TrainConfig):
        default = f.default if f.default_factory is dataclasses.MISSING else f.default_factory()
        value, kind = getattr(cfg, f.name), type(default)
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{f.name} must be {kind.__name__}, got {value!r}")
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name.replace('_', '-')} must be a finite number, got {value}")


# name: (low, high, low included, high included)
# Seeds: NumPy's legacy generator and Optuna's samplers take 0 to 2**32 - 1, and PyTorch's
# generators (given seed + 1000 * rank) stay within 64 bits
MAX_SEED = 2**32 - 1
# The most a count may be: past it a run would not end (10,000 epochs of the widest model on
# a GPU: weeks), or one batch would not fit any memory
COUNTS = {
    "epochs": 10_000,
    "full_epochs": 10_000,
    "batch_size": 2**20,
    "eval_batch_size": 2**20,
}
RANGES = {
    "lr": (0.0, 10.0, False, True),
    "adam_eps": (0.0, 1.0, False, True),
    "weight_decay": (0.0, 1.0, True, True),
    "label_smoothing": (0.0, 1.0, True, False),
    "hard_share": (0.0, 1.0, False, True),
    "bn_momentum": (0.0, 1.0, True, True),
    "patience": (0, 10**6, True, True),
    "train_limit": (0, 10**9, True, True),
    "seed": (0, MAX_SEED, True, True),
}


def check_ranges(cfg: TrainConfig) -> None:
    for name, high in COUNTS.items():
        value, flag = getattr(cfg, name), name.replace("_", "-")
        if value < 1:
            raise ConfigError(f"{flag} must be at least 1, got {value}")
        if value > high:
            raise ConfigError(f"{flag} must be at most {high:,}, got {value}")
    for name, (low, high, low_in, high_in) in RANGES.items():
        value = getattr(cfg, name)
        if not (
            (value >= low if low_in else value > low)
            and (value <= high if high_in else value < high)
        ):
            span = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
            raise ConfigError(f"{name.replace('_', '-')} must be in {span}, got {value}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {cfg.val_fraction}")
    if not 0.0 <= cfg.ema < 1.0 or not 0.0 <= cfg.warmup < 1.0:
        raise ConfigError("ema and warmup must be in [0, 1)")


def check_choices(cfg: TrainConfig) -> None:
    choices = {
        "schedule": ("constant", "onecycle", "cosine"),
        "augment": augment.AUGMENTATIONS,
        "select": ("val_loss", "val_acc", "last"),
        "precision": ("auto", "fp32", "bf16"),
        "device": ("auto", "cpu", "cuda"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(
                f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}"
            )
    check_model(cfg)


def check_model(cfg: TrainConfig) -> None:
    """A registry name, or a user model's spec whose file is there (its code runs later,
    when the run builds the model); arguments that are a JSON object."""
    try:
        check_model_args(cfg.model_args, "model_args")
        if is_user_spec(cfg.model):
            read_source(parse_spec(cfg.model)[0])
            return
    except ModelError as e:
        raise ConfigError(str(e)) from None
    if cfg.model not in list_models():
        raise ConfigError(
            f"unknown model {cfg.model!r}; known models: {', '.join(list_models())}, "
            "or path/to/file.py:ClassName of your own"
        )
    if cfg.model_args:
        check_registry_args(cfg.model, cfg.model_args)


def check_registry_args(name: str, args: dict) -> None:
    """A registry model's arguments, built on the meta device (no memory) to check them
    now rather than after the data is read; ten outputs, one per class."""
    try:
        with torch.device("meta"):
            model = create_model(name, **args)
    except ModelError as e:
        raise ConfigError(f"model_args: {e}") from None
    outputs = getattr(model.args, "num_classes", len(data.CLASSES))
    if outputs != len(data.CLASSES):
        raise ConfigError(
            f"model_args: num_classes {outputs}; Fashion-MNIST has {len(data.CLASSES)} classes"
        )


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
