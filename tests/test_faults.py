"""Faults: a diverged loss stops the run; a failed save keeps the previous checkpoint."""

import errno
import json

import pytest
import torch

from fmnist import checkpoint
from fmnist.checkpoint import CheckpointError, load_state
from fmnist.errors import FmnistError
from fmnist.training.config import make_config
from fmnist.training.train import train


def quiet(*_):
    pass


CFG = dict(epochs=3, train_limit=600, batch_size=32, patience=0, device="cpu")


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(dataset, tmp_path, one_thread):
    def poison(epoch, model, *_):
        if epoch == 1:  # what an exploding update leaves in the weights
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    run = tmp_path / "r"
    with pytest.raises(FmnistError, match=r"diverged at epoch 2 \(loss nan\).*keeps epoch 1"):
        train(make_config("seed", **CFG), out=run, dataset=dataset, log=quiet, on_epoch=poison)
    tensors, record = load_state(run / "checkpoint.safetensors")
    assert record["epoch"] == 1 and len(record["history"]) == 1
    weights = [v for k, v in tensors.items() if k.startswith("model.")]
    assert weights and all(torch.isfinite(w.float()).all() for w in weights)
    assert not (run / "metrics.json").exists()


@pytest.mark.slow
def test_failed_save_leaves_the_previous_checkpoint(dataset, tmp_path, monkeypatch, one_thread):
    real = checkpoint.save_file
    calls = []

    def disk_full(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # the checkpoint of epoch 2: half written, then no space
            with open(path, "wb") as f:
                f.write(b"\0" * 100)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", disk_full)
    run = tmp_path / "r"
    cfg = make_config("seed", **CFG)
    with pytest.raises(CheckpointError) as caught:
        train(cfg, out=run, dataset=dataset, log=quiet)
    message = str(caught.value)
    assert "No space left on device" in message
    assert "checkpoint of epoch 1 is intact" in message and f"--resume {run}" in message
    _, record = load_state(run / "checkpoint.safetensors")
    assert record["epoch"] == 1
    assert len(json.loads(json.dumps(record["history"]))) == 1
    assert not list(run.glob(".*.tmp")), "the half-written file was left behind"
    assert len((run / "history.csv").read_text().splitlines()) == 2  # header + epoch 1

    # with space again, the run continues from epoch 1 and ends as an unbroken one does
    monkeypatch.setattr(checkpoint, "save_file", real)
    rest = train(cfg, out=run, dataset=dataset, log=quiet, resume_run=True)
    whole = train(cfg, out=tmp_path / "whole", dataset=dataset, log=quiet)
    assert rest.metrics["test_accuracy"] == whole.metrics["test_accuracy"]
    assert rest.metrics["test_loss"] == whole.metrics["test_loss"]


def test_too_short_for_a_one_cycle_schedule_is_a_clear_error(dataset, tmp_path):
    cfg = make_config("fast", epochs=1, train_limit=100, batch_size=64, device="cpu")
    with pytest.raises(FmnistError, match="onecycle schedule needs at least 3 steps"):
        train(cfg, out=tmp_path / "r", dataset=dataset, log=quiet)
