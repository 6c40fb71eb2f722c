"""Hyperparameter search: an Optuna study over `train`, kept in a database.

The study lives in a relational database, so the search survives a killed worker and
scales out: by default an embedded SQLite file (`tune/study.db`), and with
`--storage postgresql://user:password@host/db` any number of machines running the same
`fmnist tune` command share one study. Each trial is an ordinary training run (its own
run directory under `tune/trials/`); it reports validation accuracy after every epoch and
the pruner stops trials that fall behind the others at the same epoch. The objective is
the validation accuracy of the weights the run keeps; the test set plays no part. The best
trial's settings are written as a recipe file that `fmnist train --recipe FILE` takes.
"""

from __future__ import annotations

import dataclasses
import random
import re
import time
import warnings
from pathlib import Path

from fmnist.errors import FmnistError
from fmnist.files import output_dir, write_json
from fmnist.training.config import RECIPE_FORMAT, TrainConfig, check
from fmnist.training.train import train

# settings a recipe file leaves to the machine and the user, not to the search
NOT_IN_RECIPE = ("recipe", "device", "train_limit", "eval_batch_size", "seed", "sync_bn")


def _optuna():
    try:
        import optuna
    except ImportError:
        raise FmnistError(
            "fmnist tune needs Optuna: pip install 'fashion-mnist-cnn[tune]'"
        ) from None
    return optuna


def suggest(trial) -> dict:
    """The search space, on top of the base recipe."""
    return {
        "lr": trial.suggest_float("lr", 1e-4, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
        "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-1, log=True),
        "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2),
        "schedule": trial.suggest_categorical("schedule", ["constant", "onecycle", "cosine"]),
        "bn_momentum": trial.suggest_categorical("bn_momentum", [0.0, 0.1]),
    }


def redact(url: str) -> str:
    """A storage URL without its password, for messages and records."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1***@", url)


def open_storage(url: str):
    optuna = _optuna()
    # heartbeats are marked experimental in Optuna; they are what frees a dead worker's trial
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    kwargs = {}
    if url.startswith(("postgresql://", "postgres://")):
        # name the driver we install (psycopg 3); SQLAlchemy's default differs by version
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite"):
        # workers on one file wait for each other's writes instead of failing at once
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    # Workers started together on a new database race to create its tables and stamp its
    # schema version; the loser's CREATE TABLE or INSERT fails. A moment later the tables
    # exist and a second try just uses them.
    for attempt in range(5):
        try:
            # a worker killed mid-trial stops beating; its trial is marked failed, not running
            return optuna.storages.RDBStorage(url, heartbeat_interval=30, grace_period=90, **kwargs)
        except Exception as e:  # SQLAlchemy and drivers raise many kinds; name the storage
            text = str(e).lower()
            if attempt < 4 and any(w in text for w in ("already exists", "unique", "duplicate")):
                time.sleep(0.2 + random.random())
                continue
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FmnistError(f"study storage {redact(url)}: {first}") from None


def open_study(storage_url: str, name: str, seed: int | None = None, pruner=None):
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # a failed trial: one line, ours
    return optuna.create_study(
        storage=open_storage(storage_url),
        study_name=name,
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=pruner or optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )


def default_storage(out: str | Path) -> str:
    return f"sqlite:///{Path(out) / 'study.db'}"


def run(
    base: TrainConfig,
    trials: int,
    out: str | Path,
    storage: str,
    *,
    study_name: str = "fmnist",
    dataset=None,
    data_dir=None,
    download=True,
    seed: int | None = None,
    pruner=None,
    log=print,
):
    """Run `trials` trials in this process (others may run beside it); returns the study."""
    if base.all_data:
        raise FmnistError("tuning scores trials on the validation split; drop all_data")
    optuna = _optuna()
    out = output_dir(out, "--out")
    try:
        (out / "trials").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FmnistError(f"{out}: cannot write the tuning directory ({e.strerror or e})") from None
    study = open_study(storage, study_name, seed=seed, pruner=pruner)
    if dataset is None:
        from fmnist import data

        dataset = data.load(data_dir, download=download)

    def objective(trial):
        settings = {**dataclasses.asdict(base), **suggest(trial)}
        cfg = check(TrainConfig(**settings))

        def report(epoch, model, train_s, row):
            trial.report(row["val_acc"], epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        run_dir = out / "trials" / f"{study_name}-{trial.number:04d}"
        trial.set_user_attr("run_dir", str(run_dir))
        try:
            result = train(cfg, out=run_dir, dataset=dataset, log=lambda *a: None, on_epoch=report)
        except FmnistError as e:
            trial.set_user_attr("error", str(e))
            raise
        return result.metrics["val_accuracy"]

    def said(study, trial):
        value = "pruned" if trial.value is None else f"val acc {trial.value:.4f}"
        if "error" in trial.user_attrs:
            value = trial.user_attrs["error"]
        log(f"trial {trial.number}: {trial.state.name.lower()}, {value}, {trial.params}")

    study.optimize(objective, n_trials=trials, callbacks=[said], catch=(FmnistError,))
    return study


def write_recipe(study, base: TrainConfig, path: str | Path, storage: str) -> Path:
    """The best finished trial's settings as a recipe file."""
    optuna = _optuna()
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not done:
        raise FmnistError(f"study {study.study_name!r}: no trial has finished yet; run more trials")
    best = max(done, key=lambda t: t.value)
    settings = {**dataclasses.asdict(base), **best.params}
    for name in NOT_IN_RECIPE:
        settings.pop(name)
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FmnistError(f"{path}: cannot write the recipe ({e.strerror or e})") from None
    write_json(
        path,
        {
            "format": RECIPE_FORMAT,
            "settings": settings,
            "tuned": {
                "study": study.study_name,
                "storage": redact(storage),
                "trial": best.number,
                "val_accuracy": best.value,
                "from_recipe": base.recipe,
                "train_limit": base.train_limit,
                "finished_trials": len(done),
            },
        },
    )
    return path
