"""An Optuna search for one rung's recipe on the validation split, inside a fixed budget of
training seconds: quick_w on 2x2 whitened patches with two convolutions per stage, its width
and the training settings chosen by TPE, its epochs as many as the budget pays for at the
width's images/s (a short probe on this machine; narrow widths run fewer FLOP/s). Each
trial trains seed 0 as explore.py does and appends its row; the winner still needs seeds 1
and 2 (the rule: a mean of 3 seeds at least 0.3 point above the rung). From the
repository root:
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


def main(out: str, seconds: float, minutes: float, seed: int) -> None:
    ds, env = data.load(download=False), environment()
    epochs = affordable_epochs(seconds)
    print(f"epochs in {seconds:g} s by width: {epochs}", flush=True)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    end = time.monotonic() + 60 * minutes

    def objective(trial: optuna.Trial) -> float:
        settings = settings_of(trial, epochs)
        name = f"search-{seconds:g}s-t{trial.number}"
        return explore.run_one(out, name, "tuned", settings, ds, env)["val_accuracy_tta"]

    while time.monotonic() < end:
        study.optimize(objective, n_trials=1)
    best = study.best_trial
    print(f"best: trial {best.number}, {best.value:.4f}, {best.params}")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--seconds", type=float, required=True, help="training seconds per trial")
    p.add_argument("--minutes", type=float, default=40)
    p.add_argument("--sampler-seed", type=int, default=0)
    a = p.parse_args()
    main(a.out, a.seconds, a.minutes, a.sampler_seed)
