"""What a run is asked to do: one frozen TrainConfig, the named recipes, recipe files.

Unknown settings, wrong types and values out of range are refused with the setting's name.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from fmnist import FmnistError, corruptions, data, read_json
from fmnist.models import list_models

# A recipe file: {"format": RECIPE_FORMAT, "settings": {TrainConfig field: value, ...}, ...}
RECIPE_FORMAT = "fmnist-recipe/1"


@dataclass(frozen=True)
class TrainConfig:
    model: str = "seed_cnn"  # registry name (fmnist models)
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
    exclude: str = ""  # training images to leave out: an audit's JSON or a list of indices


# The settings `fmnist train` takes as flags (--batch-size for batch_size; a bool is a flag
# without a value); the rest come from the recipe.
SETTING_FLAGS = (
    "model", "epochs", "batch_size", "lr", "seed", "patience", "train_limit", "precision",
    "channels_last", "all_data", "exclude", "augment",
)  # fmt: skip

RECIPES: dict[str, dict] = {
    # The tutorial: Adam 1e-3, batch 128, up to 30 epochs, early stopping on validation
    # loss with the best weights restored, 20% validation split. In fp32 on every machine,
    # as Keras trains it: the tutorial's numbers, not only its speed, are what it reproduces.
    "seed": {"precision": "fp32"},
    # The seed CNN, trained for speed: a one-cycle schedule peaking at 8e-3, label smoothing,
    # and BatchNorm averages that keep up with a two-epoch run (PyTorch's 0.1, not Keras's
    # 0.01). Chosen on the validation split as the shortest schedule above 89.5% there.
    "fast": {
        "epochs": 2,
        "lr": 8e-3,
        "schedule": "onecycle",
        "label_smoothing": 0.1,
        "bn_momentum": 0.1,
        "select": "last",
        "patience": 0,
    },  # The seed CNN trained better: 30 epochs of one-cycle AdamW with decoupled weight decay,
    # label smoothing and random mirroring; the epoch with the best validation accuracy.
    # Chosen on the validation split against the same with random crops as well.
    "tuned": {
        "epochs": 30,
        "lr": 4e-3,
        "schedule": "onecycle",
        "augment": "flip",
        "label_smoothing": 0.1,
        "weight_decay": 0.05,
        "bn_momentum": 0.1,
        "select": "val_acc",
        "patience": 0,
    },
    # Bigger models: random crops, mirroring and random erasing, a one-cycle schedule,
    # label smoothing, decoupled weight decay and an average of the weights; bfloat16
    # convolutions on NHWC activations (2.3x the images/s of fp32 for wide_cnn on a CPU with
    # AVX-512 BF16), which buys 80 epochs in under 25 minutes on 2 cores. Test accuracy
    # with the mirror image is recorded beside the plain figure.
    "best": {
        "model": "wide_cnn",
        "epochs": 80,
        "lr": 3e-3,
        "schedule": "onecycle",
        "augment": "crop_flip_erase",
        "label_smoothing": 0.1,
        "weight_decay": 0.05,
        "ema": 0.999,
        "select": "val_acc",
        "patience": 0,
        "precision": "auto",
        "channels_last": True,
        "tta": True,
    },
}

# The accuracy/time ladder (fmnist bench --ladder): for each rung of test accuracy, the
# fastest schedule found on 2 CPU cores in fp32 (AVX2). Every setting and length was chosen
# on the validation split (48,000 / 12,000) by benchmarks/frontier/explore.py, whose records
# are in benchmarks/frontier/: the shortest candidate whose validation accuracy cleared the
# rung by 0.3 points (the validation-to-test gap of the `tuned` and `best` sweeps). The
# ladder's figures come from runs on all 60,000 training images with the same schedule.
# Fixed schedules: no early stopping, the last weights. `tta` here means the mirror image is
# part of the recipe's figure, decided on validation (it added 0.3 to 0.6 points there).
# The schedule of the quick models: the `tuned` one with mirroring, batch 256, lr 8e-3, the
# last weights, mirror-image TTA in the figure
_QUICK = {
    **RECIPES["tuned"],
    "batch_size": 256,
    "lr": 8e-3,
    "select": "last",
    "channels_last": True,
    "tta": True,
}
RECIPES.update(
    {
        # 90%: the `fast` schedule on quick_w2 (a frozen whitened first convolution of 2x2
        # patches), 1 epoch: 90.35%, 90.30%, 90.85% on validation for seeds 0, 1, 2 at about
        # 8,300 images/s. The whitening is what made one epoch enough: quick_cnn (all
        # learned) gave 89.90% in 1 epoch and needed 2 (90.92%); quick_w (3x3 patches)
        # gave 90.93% but at 5,800 images/s. Mirror TTA without mirrored training: 79%.
        # Batch 256 was no faster.
        "rung90": {**RECIPES["fast"], "model": "quick_w2", "channels_last": True, "epochs": 1},
        # 92%: quick_wd (whitened, two convolutions per stage, width 32), 3 epochs at lr
        # 1.2e-2: 92.30% with TTA (seeds 1, 2: 92.56%, 92.97%). At lr 8e-3 it needed 4
        # epochs (92.58%; 3 gave 92.18%, at batch 128 92.22%, label smoothing 0.05 92.23%,
        # warm-up 0.15 92.08%). Before it: quick_m in 6 epochs (92.35%) at about 60% of its
        # images/s; quick_w (one convolution per stage) needed 5 (92.54%). On 2x2 whitened
        # patches (4.34 MFLOP), 3 epochs gave 92.20%.
        "rung92": {**_QUICK, "model": "quick_wd", "epochs": 3, "lr": 1.2e-2},
        # 93%: quick_wd40 (quick_wd at width 40), 6 epochs: 93.45% with TTA. Width 48 gave
        # 93.47% in 6 (seed 1: 93.95%) and 93.28% in 5 (93.26% at batch 128) at more cost.
        # Before it: speed_m in 12 epochs (93.59%, about 4x the time); quick_w at width 48
        # or 64 stopped at 93.2% (8 epochs).
        "rung93": {**_QUICK, "model": "quick_wd40", "epochs": 6},
        # 94%: quick_wd64 (quick_wd at width 64), 10 epochs, weight decay 0.5 on the
        # weights only (bias_decay off): 94.30% with TTA (seed 1: 94.57%; 9 epochs: 94.16%),
        # at one thread; at two, 94.11% (seeds 1 to 4 on its split: 93.84% to 94.03%).
        # With the biases and BatchNorm shifts decayed too, 10 epochs gave 94.07% and it
        # took 16 to clear 94.3 (94.38%). Weight decay 0.05 had stopped at 93.98% in 12
        # epochs (16: 93.84%), as width 96 did (94.03%), with 99.8% of the training images
        # right; 0.5 with the biases decayed gave 94.10% in 12 (0.2: 94.06%, 1.0: 93.75%; lr
        # 1.2e-2: 93.83%). The `best` schedule cut to 20 epochs gave 93.83% in 5x the time;
        # two or three quick_wd40 in 6 epochs, their outputs averaged, 93.73% and 93.78%.
        # Not kept (12 epochs with the biases decayed unless said): width 48 (93.81%), batch
        # 128, label smoothing 0.2, a weight average (94.13%), test-time one-pixel moves
        # (+0.04 on average over 8 runs, from -0.14 to +0.18), alternating flips (94.03%),
        # Muon on the filters (94.18%), residual second convolutions (93.83%); 16 epochs
        # with the first 8 at 24x24 pixels (93.96%), with the whitening bias frozen after 2
        # (a step 1.15x as fast; 94.19%), and with the third convolution at stride 2 too
        # (15.05 MFLOP; 93.77%); in 10 epochs, dirac-initialised convolutions (94.04%),
        # lookahead (93.88%) and Nesterov SGD at 0.2 (93.83%).
        "rung94": {
            **_QUICK,
            "model": "quick_wd64",
            "epochs": 10,
            "weight_decay": 0.5,
            "bias_decay": False,
        },
        # 95%: nothing faster than the `best` schedule was found to clear it on validation;
        # its run on all 60,000 images gave 95.02%. The quick models stopped short: width 96
        # with rung94's decay in 16 epochs 94.32%, with crops and erasing in 24 94.04%;
        # five rung94 runs, their outputs averaged, 94.46%; quick_wd64 with mirroring and
        # erasing (flip_erase) in 24 epochs 94.31%. speed_l (a learned convolution at 28x28
        # before the first pooling) on rung94's settings went furthest: 94.50% in 16 epochs
        # with mirroring, 94.74% in 24 with mirroring and erasing (seed 1: 95.01%), 94.68%
        # in 36; the rule asks 95.3.
        "rung95": {**RECIPES["best"], "select": "last", "tta": False},
        # On a GPU (fmnist bench --ladder --device cuda) each full batch's step is one
        # replayed CUDA graph (cuda_graph): on an H100 rung94's step ran 6.7x as fast as
        # when issued operation by operation (54,000 to 363,000 images/s) and wide_cnn64's
        # 2.1x (74,000 to 157,000; benchmarks/frontier/graph-check-2026-11-27-h100.json), so
        # small models pay there too. Chosen on validation on that H100 by
        # benchmarks/frontier/gpu_graph.sh and choose.py (the fastest candidate clearing the
        # rung by 0.3; records: benchmarks/frontier/explore-2026-11-27-gpu.jsonl).
        # 94%: speed_l on rung94's settings, 10 epochs: 94.42% with TTA (rung94's quick_wd64:
        # 94.22%, in 12 epochs 94.19%; wide_cnn64 in 15 epochs at batch 512 with a weight
        # average, this rung's recipe before the graphed step: 94.37%, at 2.2x the time).
        "gpu94": {
            **_QUICK,
            "model": "speed_l",
            "epochs": 10,
            "weight_decay": 0.5,
            "bias_decay": False,
        },
        # Before the graphed step, on an H200, a step cost more than its FLOPs (wide_cnn at
        # batch 512: 75,000 images/s, wide_cnn64 with 4x the FLOPs 69,000, wide_cnn96
        # 78,000), so the GPU's rungs took wider models, fewer steps (batch 512, lr 6e-3)
        # and an average of the weights over about one epoch's steps
        # (benchmarks/frontier/gpu.sh; records: explore-2026-11-26-gpu.jsonl).
        # 95%: no candidate cleared 95.3% on validation; the best, wide_cnn96 with the
        # `best` augmentation for 40 epochs, gave 95.17% with TTA on the H200 (wide_cnn64:
        # 95.03%). On the H100 with the graphed step, speed_l with mirroring and erasing in
        # 24 epochs gave 94.58%, two and three of it averaged 94.90% and 94.93%
        # (benchmarks/frontier/ensemble-2026-11-27-gpu.jsonl).
        "gpu95": {
            **RECIPES["best"],
            "model": "wide_cnn96",
            "epochs": 40,
            "batch_size": 512,
            "lr": 6e-3,
            "ema": 0.99,
            "select": "last",
        },
        # quick_m in 6 epochs with half of each batch corrupted (fmnist.corruptions.TRAINING):
        # over 3 seeds, 0.6 points less clean test accuracy than without, 15.5 more under
        # corruption, 10.2 of them on the unseen corruptions
        # (benchmarks/corruption_training.py; its record is in benchmarks/results/)
        "robust": {**_QUICK, "model": "quick_m", "epochs": 6, "augment": "flip_corrupt"},
    }
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
    for f in dataclasses.fields(TrainConfig):
        value, kind = getattr(cfg, f.name), type(f.default)
        ok = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ConfigError(f"{f.name} must be {kind.__name__}, got {value!r}")
    for f in dataclasses.fields(TrainConfig):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{f.name.replace('_', '-')} must be a finite number, got {value}")
    for name in ("epochs", "batch_size", "eval_batch_size"):
        if getattr(cfg, name) < 1:
            raise ConfigError(
                f"{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}"
            )
    ranges = {  # name: (low, high, low included, high included)
        "lr": (0.0, 10.0, False, True),
        "adam_eps": (0.0, 1.0, False, True),
        "weight_decay": (0.0, 1.0, True, True),
        "label_smoothing": (0.0, 1.0, True, False),
        "bn_momentum": (0.0, 1.0, True, True),
        "patience": (0, 10**6, True, True),
        "train_limit": (0, 10**9, True, True),
        "seed": (0, 2**32 - 1, True, True),
    }
    for name, (low, high, low_in, high_in) in ranges.items():
        value = getattr(cfg, name)
        if not (
            (value >= low if low_in else value > low)
            and (value <= high if high_in else value < high)
        ):
            span = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
            raise ConfigError(f"{name.replace('_', '-')} must be in {span}, got {value}")
    if not 0.0 < cfg.val_fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {cfg.val_fraction}")
    choices = {
        "schedule": ("constant", "onecycle", "cosine"),
        "augment": data.AUGMENTATIONS,
        "select": ("val_loss", "val_acc", "last"),
        "precision": ("auto", "fp32", "bf16"),
    }
    for name, allowed in choices.items():
        if getattr(cfg, name) not in allowed:
            raise ConfigError(
                f"{name} must be one of {', '.join(allowed)}, got {getattr(cfg, name)!r}"
            )
    if cfg.all_data and (cfg.select != "last" or cfg.patience):
        raise ConfigError(
            "all_data trains on every training image and has no validation split: it needs "
            "select 'last' and patience 0 (a fixed number of epochs)"
        )
    if not 0.0 <= cfg.ema < 1.0 or not 0.0 <= cfg.warmup < 1.0:
        raise ConfigError("ema and warmup must be in [0, 1)")
    if cfg.model not in list_models():
        raise ConfigError(f"unknown model {cfg.model!r}; known models: {', '.join(list_models())}")
    if cfg.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"device must be cpu, cuda or auto, got {cfg.device!r}")
    if cfg.exclude:
        data.read_exclude(cfg.exclude)  # a file that is not a list of indices: refused now
    if "corrupt" in cfg.augment:
        corruptions.kornia_or_fail()  # refused before the first step, not in it
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available; use --device cpu")
    return cfg


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)
