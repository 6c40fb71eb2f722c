"""fmnist train --mlflow: the run's settings, per-epoch figures and files, read back from MLflow."""

import json

import pytest

from fmnist import cli

mlflow = pytest.importorskip("mlflow", reason="MLflow is in the [track] extra")


@pytest.mark.slow
def test_train_logs_to_a_local_mlflow_store(tmp_path, monkeypatch, one_thread):
    monkeypatch.chdir(tmp_path)  # the default store is ./mlflow.db
    args = ["train", "--epochs", "2", "--train-limit", "500", "--batch-size", "32", "--lr", "0.002"]
    assert cli.main([*args, "--out", "run", "--no-report", "--no-download", "--mlflow"]) == 0
    assert (tmp_path / "mlflow.db").is_file()

    client = mlflow.MlflowClient(tracking_uri="sqlite:///mlflow.db")
    experiment = client.get_experiment_by_name("fashion-mnist")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["lr"] == "0.002" and run.data.params["epochs"] == "2"
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert run.data.metrics["test_accuracy"] == metrics["test_accuracy"]
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [1, 2]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"model.safetensors", "model.json", "metrics.json", "history.csv"} <= names
    copy = client.download_artifacts(run.info.run_id, "model.safetensors", str(tmp_path))
    assert open(copy, "rb").read() == (tmp_path / "run" / "model.safetensors").read_bytes()
    assert (tmp_path / "mlartifacts").is_dir()  # beside the database, not elsewhere


def test_a_bad_store_is_one_line(tmp_path, capsys):
    code = cli.main(["train", "--out", str(tmp_path / "r"), "--mlflow", "nosuchscheme://x"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("fmnist train: error: MLflow store nosuchscheme://x") and "\n" == err[-1]
