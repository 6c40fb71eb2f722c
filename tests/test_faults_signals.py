"""Faults a training run survives, each on the real command line in its own process:
SIGTERM or Ctrl-C (the checkpoint kept and how to resume said, or nothing left before the
first one); a full disk while a checkpoint, the model or a report is written (simulated
with RLIMIT_FSIZE: a write past the limit fails with EFBIG); two runs on one run
directory (the second refused by the first one's lock)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fmnist.training import resume
from fmnist.training.config import make_config
from fmnist.training.train import train
from tests.hostile import assert_kept_promise, listing

# the lock a run holds in its directory (fmnist.training.rundir.LOCK); named here so that
# these tests run, and fail, against a version without it
LOCK = ".fmnist-train.lock"
UNFINISHED = {"checkpoint.safetensors", "config.json", "history.csv"}
FINISHED = {"config.json", "history.csv", "metrics.json", "model.json", "model.safetensors"}


@dataclasses.dataclass
class Done:
    rc: int | None
    stdout: str
    stderr: str
    hung: bool = False


def fmnist(*argv, cwd) -> subprocess.Popen:
    """`python -m fmnist ARGV` in `cwd`, one thread, running while the test signals it or
    starts another command beside it (the `cli` fixture runs the ones it waits for)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "fmnist", *map(str, argv)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen, timeout: float = 180) -> Done:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Done(None, out, err, hung=True)
    return Done(proc.returncode, out, err)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.002)


def one_line(done: Done) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


class Stop(Exception):
    pass


def stop(*_):
    raise Stop


@pytest.fixture(scope="module")
def unfinished(dataset, tmp_path_factory):
    """Runs stopped after the checkpoint of epoch 1: of 2 epochs, and of 1 (the next step
    is writing the model)."""
    base = tmp_path_factory.mktemp("unfinished")
    small = dataclasses.replace(
        dataset, train_images=dataset.train_images[:3000], train_labels=dataset.train_labels[:3000]
    )
    for epochs in (1, 2):
        cfg = make_config("seed", epochs=epochs, train_limit=256, device="cpu")
        with pytest.raises(Stop):
            train(cfg, out=base / f"of{epochs}", dataset=small, log=lambda *a: None, on_epoch=stop)
    return base


# ----------------------------------------------------------------------------
# Signals
# ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "how"), [(signal.SIGTERM, "stopped by SIGTERM"), (signal.SIGINT, "interrupted")]
)
def test_a_signal_after_a_checkpoint_keeps_it_and_says_how_to_resume(tmp_path, sig, how):
    run = tmp_path / "run"
    proc = fmnist(
        "train", "--train-limit", "256", "--epochs", "200", "--patience", "0", "--no-report",
        "--out", run, cwd=tmp_path,
    )  # fmt: skip
    wait_for(run / "checkpoint.safetensors", proc)
    proc.send_signal(sig)
    done = finish(proc)
    line = one_line(done)
    assert done.rc == 128 + sig, done.stderr
    assert line.startswith(f"fmnist train: {how}; the checkpoint of epoch ")
    assert line.endswith(f"is kept: continue with fmnist train --resume {run}")
    # no lock, no temporary file (history.csv follows the checkpoint: a signal between the
    # two leaves it an epoch behind, which resuming rewrites from the checkpoint's record)
    assert {"checkpoint.safetensors", "config.json"} <= listing(run) <= UNFINISHED
    tensors, record = resume.load(run)  # whole, and passes the schema
    assert f"epoch {record['epoch']} is kept" in line


@pytest.mark.slow
def test_sigterm_before_the_first_checkpoint_leaves_nothing(tmp_path):
    # a first epoch of several seconds: the signal comes as soon as config.json is there
    proc = fmnist(
        "train", "--train-limit", "8000", "--batch-size", "32", "--epochs", "2", "--no-report",
        "--out", "a/run", cwd=tmp_path,
    )  # fmt: skip
    wait_for(tmp_path / "a" / "run" / "config.json", proc)
    assert not (tmp_path / "a" / "run" / "checkpoint.safetensors").exists()
    proc.send_signal(signal.SIGTERM)
    done = finish(proc)
    line = one_line(done)
    assert done.rc == 128 + signal.SIGTERM
    assert line == "fmnist train: stopped by SIGTERM; no checkpoint had been written yet, so " + (
        "nothing was kept"
    )
    assert listing(tmp_path) == set()


# ----------------------------------------------------------------------------
# A full disk
# ----------------------------------------------------------------------------


def test_a_full_disk_at_the_first_checkpoint_leaves_nothing(cli, tmp_path):
    # config.json fits under the limit, the checkpoint (1.7 MB) does not
    argv = ["train", "--train-limit", "256", "--epochs", "2", "--no-report", "--out", "run"]
    done = cli(argv, cwd=tmp_path, file_limit=500_000)
    assert_kept_promise(done, "train", tmp_path, set())
    assert (
        done.rc == 2
        and "checkpoint.safetensors: cannot write the checkpoint (File too large)" in (done.stderr)
    )


def test_a_full_disk_at_a_later_checkpoint_keeps_the_previous_one(cli, unfinished, tmp_path):
    run = shutil.copytree(unfinished / "of2", tmp_path / "run")
    before = {p: (run / p).read_bytes() for p in UNFINISHED}
    done = cli(["train", "--resume", run, "--no-report"], cwd=tmp_path, file_limit=300_000)
    line = one_line(done)
    assert done.rc == 2
    assert "cannot write the checkpoint (File too large)" in line
    assert line.endswith(
        f"the checkpoint of epoch 1 is intact: fix that, then run fmnist train --resume {run}"
    )
    assert {p: (run / p).read_bytes() for p in listing(run)} == before


def test_a_full_disk_writing_the_model_keeps_the_run_resumable(cli, unfinished, tmp_path):
    run = shutil.copytree(unfinished / "of1", tmp_path / "run")
    before = {p: (run / p).read_bytes() for p in UNFINISHED}
    # the checkpoint of the last epoch is there: the run goes straight to its model (430 kB)
    done = cli(["train", "--resume", run, "--no-report"], cwd=tmp_path, file_limit=300_000)
    line = one_line(done)
    assert done.rc == 2
    assert line == (
        f"fmnist train: error: {run}/model.safetensors: cannot write it (File too large); "
        f"the checkpoint of epoch 1 is kept: continue with fmnist train --resume {run}"
    )
    assert {p: (run / p).read_bytes() for p in listing(run)} == before  # no half a model
    done = cli(["train", "--resume", run, "--no-report"], cwd=tmp_path)
    assert done.rc == 0, done.stderr
    assert listing(run) == FINISHED


@pytest.mark.slow
def test_a_full_disk_writing_a_report_keeps_the_run(cli, tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, run, ignore=shutil.ignore_patterns("plots", "report.html"))
    before = {p: (run / p).read_bytes() for p in listing(run)}
    argv = ["report", run, "--tsne-points", "50"]
    done = cli(argv, cwd=tmp_path, file_limit=20_000)
    line = one_line(done)
    assert done.rc == 2 and "cannot write the report (File too large)" in line
    assert "model, records and any earlier report are as they were" in line
    assert {p: (run / p).read_bytes() for p in listing(run)} == before  # no plots/, no page


# ----------------------------------------------------------------------------
# Two runs on one run directory
# ----------------------------------------------------------------------------


def test_a_run_directory_in_use_is_refused(cli, unfinished, tmp_path):
    from fmnist.training.rundir import locked

    new, old = tmp_path / "new", shutil.copytree(unfinished / "of2", tmp_path / "old")
    new.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for run, argv in ((new, ["--out", new, "--train-limit", "64"]), (old, ["--resume", old])):
        with locked(run):  # as the run writing it holds it
            done = cli(["train", *argv, "--no-report"], cwd=cwd, timeout=60)
        assert_kept_promise(done, "train", cwd, set())
        assert done.rc == 2 and "another fmnist train is writing this run directory" in done.stderr
    assert listing(new) == set() and listing(old) == UNFINISHED


def test_the_lock_is_taken_again_after_its_run(tmp_path):
    from fmnist.training.rundir import locked

    with locked(tmp_path):
        assert (tmp_path / LOCK).exists()
    assert not (tmp_path / LOCK).exists()
    with locked(tmp_path):
        pass


@pytest.mark.slow
def test_two_runs_at_once_the_second_is_refused(cli, tmp_path):
    run = tmp_path / "run"
    first = fmnist(
        "train", "--train-limit", "256", "--epochs", "6", "--patience", "0", "--no-report",
        "--out", run, cwd=tmp_path,
    )  # fmt: skip
    wait_for(run / LOCK, first)
    wait_for(run / "config.json", first)  # what --resume reads first
    for argv in (["--out", run, "--train-limit", "64", "--epochs", "1"], ["--resume", run]):
        second = cli(["train", *argv, "--no-report"], cwd=tmp_path)
        assert second.rc == 2 and "another fmnist train is writing" in one_line(second)
        assert first.poll() is None, "the first run had already ended: nothing was tested"
    done = finish(first)
    assert done.rc == 0, done.stderr
    assert listing(run) == FINISHED  # one whole run, not two interleaved
