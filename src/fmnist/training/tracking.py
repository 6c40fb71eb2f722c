"""Experiment tracking in MLflow: a run's settings, its per-epoch figures and its files.

The run directory stays the record; MLflow gets a copy to compare runs side by side.
Without a URI the store is a SQLite file, `mlflow.db`, in the working directory, with the
files under `mlartifacts/` beside it (what `mlflow ui --backend-store-uri sqlite:///mlflow.db`
shows).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from fmnist.errors import FmnistError

DEFAULT_URI = "sqlite:///mlflow.db"
EXPERIMENT = "fashion-mnist"
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.safetensors", "model.json")


def _mlflow():
    try:
        import mlflow
    except ImportError:
        raise FmnistError("--mlflow needs MLflow: pip install 'fashion-mnist-cnn[track]'") from None
    return mlflow


class Tracker:
    """One MLflow run for one training run; use `epoch` as train's on_epoch callback."""

    def __init__(self, uri: str | None = None, experiment: str = EXPERIMENT):
        mlflow = _mlflow()
        self.uri = uri or DEFAULT_URI
        self._entities = mlflow.entities
        try:
            self.client = mlflow.MlflowClient(tracking_uri=self.uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is None:
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=_artifact_location(self.uri)
                )
            else:
                self.experiment_id = found.experiment_id
        except Exception as e:  # MLflow raises many kinds for a bad store; name the store
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FmnistError(f"MLflow store {self.uri}: {first}") from None
        self.run_id: str | None = None

    def start(self, cfg, run_name: str, history: list | None = None) -> str:
        run = self.client.create_run(self.experiment_id, run_name=run_name)
        self.run_id = run.info.run_id
        params = [self._entities.Param(k, str(v)) for k, v in dataclasses.asdict(cfg).items()]
        self.client.log_batch(self.run_id, params=params)
        for row in history or []:  # a resumed run: the epochs before the interruption
            self.epoch(row["epoch"], None, None, row)
        return self.run_id

    def epoch(self, epoch: int, model, train_s, row: dict) -> None:
        self._metrics(
            {name: row[name] for name in EPOCH_METRICS if row.get(name) is not None},
            step=int(epoch),
        )

    def _metrics(self, values: dict, step: int = 0) -> None:
        now = int(time.time() * 1000)
        batch = [self._entities.Metric(k, float(v), now, step) for k, v in values.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def finish(self, run_dir: Path, metrics: dict) -> None:
        names = ("test_accuracy", "test_loss", "val_accuracy", "val_loss", "train_s")
        self._metrics({name: metrics[name] for name in names if metrics.get(name) is not None})
        for name in RUN_FILES + ("report.html",):
            if (run_dir / name).is_file():
                self.client.log_artifact(self.run_id, str(run_dir / name))
        if (run_dir / "plots").is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / "plots"), "plots")
        self.client.set_terminated(self.run_id, "FINISHED")

    def fail(self) -> None:
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, "FAILED")


def _artifact_location(uri: str) -> str | None:
    """Files beside a SQLite store (MLflow would put them under the working directory)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///") :])
        return (db.resolve().parent / "mlartifacts").as_uri()
    return None
