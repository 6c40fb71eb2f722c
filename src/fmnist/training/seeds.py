"""Several seeds of one configuration: a run directory each, then mean and spread."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from fmnist import data
from fmnist.errors import FmnistError
from fmnist.files import output_dir, remove_folders, write_json
from fmnist.training.config import MAX_SEED, ConfigError, TrainConfig
from fmnist.training.rundir import check_run_dir, default_run_dir, environment
from fmnist.training.train import RunResult, train


def summarize(results: list[RunResult]) -> dict:
    """Mean and sample standard deviation over runs of the figures that matter."""
    out = {"n": len(results), "seeds": [r.config.seed for r in results]}
    for key in ("test_accuracy", "test_accuracy_tta", "val_accuracy", "train_s", "best_epoch"):
        if any(r.metrics.get(key) is None for r in results):
            continue  # no validation figures when trained on all the data
        values = np.array([r.metrics[key] for r in results], dtype=float)
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "values": values.tolist(),
        }
    return out


def train_seeds(
    cfg: TrainConfig,
    n: int,
    out: str | os.PathLike | None = None,
    *,
    dataset: data.FashionMNIST | None = None,
    data_dir: str | None = None,
    download: bool = True,
    log=print,
) -> tuple[Path, list[RunResult], dict]:
    """`n` runs with seeds cfg.seed, cfg.seed + 1, ...; each keeps its own run directory
    under `out`, and `out/summary.json` holds mean and standard deviation."""
    if cfg.seed + n - 1 > MAX_SEED:
        raise ConfigError(f"{n} seeds from seed {cfg.seed} go past the largest seed, {MAX_SEED:,}")
    out = Path(out) if out is not None else default_run_dir(cfg, f"{n}seeds")
    if (out / "summary.json").exists():
        raise FmnistError(f"{out}: already holds a sweep; choose another --out or delete it")
    for k in range(n):  # refuse before training anything; each run makes its own folder
        check_run_dir(out / f"seed{cfg.seed + k}")
    output_dir(out, "--out")
    made = [p for p in (out, *out.parents) if not os.path.lexists(p)]
    try:
        if dataset is None:
            dataset = data.load(data_dir, download=download)
        results = []
        for k in range(n):
            seed_cfg = dataclasses.replace(cfg, seed=cfg.seed + k)
            log(f"--- seed {seed_cfg.seed} ({k + 1} of {n}) ---")
            results.append(train(seed_cfg, out / f"seed{seed_cfg.seed}", dataset=dataset, log=log))
        summary = {
            "config": dataclasses.asdict(cfg),
            "runs": [r.run_dir.name for r in results],
            "parameters": results[0].metrics["parameters"],
            "device": results[0].metrics["device"],
            "environment": environment(),
            **summarize(results),
        }
        write_json(out / "summary.json", summary)
    except BaseException:
        remove_folders(made)  # as far as empty: the finished seeds' runs stay
        raise
    return out, results, summary
