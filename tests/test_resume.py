"""Checkpoints and resume: a run killed with SIGKILL ends where the uninterrupted one does."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fmnist import cli
from fmnist.checkpoint import load_state
from fmnist.errors import FmnistError
from fmnist.training.config import make_config
from fmnist.training.resume import resume_config
from fmnist.training.train import train

ROOT = Path(__file__).resolve().parents[1]
TIMED = ("epoch_s", "images_per_s")  # history columns that are measurements of time


def quiet(*_):
    pass


def untimed(history):
    return [{k: v for k, v in row.items() if k not in TIMED} for row in history]


def read_history(run_dir):
    import csv

    rows = list(csv.DictReader(open(run_dir / "history.csv")))
    return [{k: float(v) for k, v in row.items() if k not in TIMED} for row in rows]


def final(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("train_s")
    return metrics


def fmnist_env():
    # one thread, as in this process (see one_thread), so both runs add up in the same order
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


@pytest.mark.slow
def test_sigkill_then_resume_ends_like_the_uninterrupted_run(dataset, tmp_path, one_thread):
    args = ["--recipe", "fast", "--epochs", "3", "--train-limit", "1200", "--batch-size", "32"]
    cfg = make_config("fast", epochs=3, train_limit=1200, batch_size=32, device="cpu")
    whole = train(cfg, out=tmp_path / "whole", dataset=dataset, log=quiet)

    run = tmp_path / "killed"
    flags = ["--device", "cpu", "--no-report", "--no-download"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "fmnist", "train", *args, "--out", str(run), *flags],
        env=fmnist_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 300
    while not (run / "checkpoint.safetensors").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint after 300 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists(), "the run finished before it was killed"
    _, record = load_state(run / "checkpoint.safetensors")
    assert 1 <= record["epoch"] < 3

    # a fresh run into the same directory is refused; --resume takes its settings from it
    assert cli.main(["train", "--out", str(run), "--no-download"]) == 2
    assert cli.main(["train", "--resume", str(run), "--epochs", "9"]) == 2
    resumed = subprocess.run(
        [sys.executable, "-m", "fmnist", "train", "--resume", str(run), *flags[2:]],
        env=fmnist_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {run} after epoch {record['epoch']}" in resumed.stdout
    assert read_history(run) == untimed(whole.history)
    assert final(run) == final(whole.run_dir)  # test accuracy and loss to the last digit
    assert not list(run.glob(".*.tmp")) and not (run / "checkpoint.safetensors").exists()
    assert cli.main(["train", "--resume", str(run)]) == 2  # finished: nothing to resume


@pytest.mark.parametrize("layout", ["fp32", "bf16 channels-last", "fp32 hard examples"])
def test_resume_restores_every_piece_of_state(few_test_images, tmp_path, one_thread, layout):
    """EMA, augmentation, dropout and a cosine schedule with warm-up, stopped part-way; also
    in bfloat16 on NHWC activations, whose optimizer moments must get their layout back,
    and with hard-example epochs, whose choice needs each image's last loss back."""
    hard = dict(hard_share=0.5, full_epochs=1) if "hard" in layout else {}
    cfg = make_config(
        "seed", epochs=3, train_limit=400, batch_size=32, ema=0.9, augment="crop_flip_erase",
        val_fraction=0.01,  # 600 validation images: quick in bfloat16 where it is emulated
        schedule="cosine", warmup=0.2, weight_decay=0.01, select="val_acc", device="cpu",
        precision="bf16" if "bf16" in layout else "fp32", channels_last="last" in layout,
        bias_decay="bf16" in layout,  # fp32: two parameter groups, the biases undecayed
        **hard,
    )  # fmt: skip
    whole = train(cfg, out=tmp_path / "whole", dataset=few_test_images, log=quiet)

    class Stop(Exception):
        pass

    # with hard examples, after the first hard epoch: its steps and each image's last loss,
    # some fresh and some older, are what the checkpoint must give back
    stop_after = 2 if hard else 1

    def stop(epoch, *_):
        if epoch == stop_after:
            raise Stop

    with pytest.raises(Stop):
        train(cfg, out=tmp_path / "part", dataset=few_test_images, log=quiet, on_epoch=stop)
    again = resume_config(tmp_path / "part")
    assert again == cfg
    rest = train(again, out=tmp_path / "part", dataset=few_test_images, log=quiet, resume_run=True)
    assert untimed(rest.history) == untimed(whole.history)
    assert final(rest.run_dir) == final(whole.run_dir)
    ours, theirs = rest.model.state_dict(), whole.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)


def test_resume_errors(tmp_path, capsys):
    assert cli.main(["train", "--resume", str(tmp_path / "none")]) == 2
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "config.json").write_text(json.dumps({"config": {"epochs": "three"}}))
    with pytest.raises(FmnistError, match="epochs must be int"):
        resume_config(tmp_path)
