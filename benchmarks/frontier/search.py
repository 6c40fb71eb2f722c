"""An Optuna search for one rung's recipe on the validation split, inside a fixed budget.

--space budget (the default): a budget of training seconds; quick_w on 2x2 whitened patches
with two convolutions per stage, its width and the training settings chosen by TPE, its
epochs as many as the budget pays for at the width's images/s (a short probe on this
machine; narrow widths run fewer FLOP/s).
--space one_epoch: rung90's cost cut to about 0.6x; one epoch of quick_w on 2x2 patches at
width 16 or 24 (one convolution per stage), GELU or ReLU, the whitening's bias learned or
frozen, and the `fast` schedule's settings, chosen by TPE.

Each trial trains seed 0 as explore.py does and appends its row; the winner still needs
seeds 1 and 2 (the rule: a mean of 3 seeds at least 0.3 point above the rung). For the one
epoch space, fixed before its first run: at least 0.5 point above 90% over seeds 0-2 and
again over seeds 3-5 (one-epoch networks lost 0.3 to 0.57 point from validation to test).
From the repository root:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/search.py OUT.jsonl --seconds 30 --minutes 40
"""

import argparse
import time

import explore  # this folder
import optuna
import torch

from fmnist import data
from fmnist.analysis.probe import recipe_images_per_s
from fmnist.models import register_size
from fmnist.training.rundir import environment

WIDTHS = (16, 24, 32, 40, 48)  # multiples of 8: 28 and 36 ran as slowly as 32 and 40
VALIDATION_SPLIT_IMAGES = 48_000
for w in WIDTHS:
    register_size(f"p2d2w{w}", "quick_w", patch=2, depth=2, width=w)
ONE_EPOCH_WIDTHS = (16, 24)
for w in ONE_EPOCH_WIDTHS:
    for act in ("gelu", "relu"):
        for fb in (False, True):
            name = f"p2w{w}{act}{'fb' * fb}"
            register_size(name, "quick_w", patch=2, width=w, activation=act, frozen_bias=fb)


def affordable_epochs(seconds: float) -> dict:
    """width -> the epochs `seconds` of training buy on this machine (at least 1)."""
    epochs = {}
    for w in WIDTHS:
        rate = recipe_images_per_s("tuned", torch.device("cpu"), steps=8, **model_settings(w))
        epochs[w] = max(1, int(seconds * rate // VALIDATION_SPLIT_IMAGES))
    return epochs


def model_settings(width: int) -> dict:
    return dict(explore._FLIP, model=f"p2d2w{width}")


def settings_of(trial: optuna.Trial, epochs: dict) -> dict:
    width = trial.suggest_categorical("width", WIDTHS)
    return dict(
        model_settings(width),
        epochs=epochs[width],
        lr=trial.suggest_float("lr", 6e-3, 3e-2, log=True),
        label_smoothing=trial.suggest_categorical("label_smoothing", [0.0, 0.1, 0.2]),
        weight_decay=trial.suggest_float("weight_decay", 0.01, 0.5, log=True),
        bias_decay=trial.suggest_categorical("bias_decay", [True, False]),
    )


def one_epoch_settings(trial: optuna.Trial) -> dict:
    """rung90's schedule (one epoch of `fast`) on narrow 2x2 models: their width, activation
    and whitening bias; the rate, batch, smoothing, warm-up, decay and BatchNorm averaging."""
    width = trial.suggest_categorical("width", ONE_EPOCH_WIDTHS)
    act = trial.suggest_categorical("activation", ["gelu", "relu"])
    frozen = trial.suggest_categorical("frozen_bias", [False, True])
    return dict(
        explore._QUICK,
        model=f"p2w{width}{act}{'fb' * frozen}",
        epochs=1,
        lr=trial.suggest_float("lr", 4e-3, 4e-2, log=True),
        batch_size=trial.suggest_categorical("batch_size", [64, 128, 256]),
        label_smoothing=trial.suggest_categorical("label_smoothing", [0.0, 0.05, 0.1, 0.2]),
        warmup=trial.suggest_categorical("warmup", [0.1, 0.25, 0.4]),
        weight_decay=trial.suggest_float("weight_decay", 1e-3, 0.5, log=True),
        bn_momentum=trial.suggest_categorical("bn_momentum", [0.1, 0.2, 0.4]),
    )


def main(out: str, space: str, seconds: float, minutes: float, seed: int) -> None:
    ds, env = data.load(download=False), environment()
    if space == "budget":
        epochs = affordable_epochs(seconds)
        print(f"epochs in {seconds:g} s by width: {epochs}", flush=True)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    end = time.monotonic() + 60 * minutes

    def objective(trial: optuna.Trial) -> float:
        if space == "budget":
            settings, recipe = settings_of(trial, epochs), "tuned"
            name = f"search-{seconds:g}s-t{trial.number}"
        else:
            settings, recipe, name = one_epoch_settings(trial), "fast", f"search-e1-t{trial.number}"
        row = explore.run_one(out, name, recipe, settings, ds, env)
        return row["val_accuracy_tta"] or row["val_accuracy"]

    while time.monotonic() < end:
        study.optimize(objective, n_trials=1)
    best = study.best_trial
    print(f"best: trial {best.number}, {best.value:.4f}, {best.params}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--space", choices=["budget", "one_epoch"], default="budget")
    p.add_argument("--seconds", type=float, help="training seconds per trial (--space budget)")
    p.add_argument("--minutes", type=float, default=40)
    p.add_argument("--sampler-seed", type=int, default=0)
    a = p.parse_args()
    if a.space == "budget" and a.seconds is None:
        p.error("--space budget needs --seconds")
    main(a.out, a.space, a.seconds, a.minutes, a.sampler_seed)
