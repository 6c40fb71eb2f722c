"""The run directory: where a run's record lives, what it says about the machine, progress.

Only one process writes it (rank 0 under torchrun); see `fmnist.training.distributed`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import fcntl
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open

import fmnist
from fmnist.errors import FmnistError
from fmnist.evaluate import native_bf16
from fmnist.files import atomic_write, make_writable_dir
from fmnist.models.user import is_user_spec, parse_spec

# environment variables that hold PyTorch and oneDNN to an older instruction set
ISA_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")

CHECKPOINT = "checkpoint.safetensors"


def default_run_dir(cfg, tag: str) -> Path:
    """runs/<model>-<recipe>-<tag>-<local time>, where a run goes without --out."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{model_label(cfg.model)}-{cfg.recipe}-{tag}-{stamp}"


def model_label(model: str) -> str:
    """A model's name for folder names: the registry name, or a user model's class."""
    return parse_spec(model)[1] if is_user_spec(model) else model


def prepare_run_dir(out: str | os.PathLike | None, cfg) -> Path:
    """Create (or accept an empty) run directory; refuse to overwrite an earlier run."""
    out = Path(out) if out is not None else default_run_dir(cfg, f"s{cfg.seed}")
    check_run_dir(out)
    try:
        make_writable_dir(out)
    except OSError as e:
        raise FmnistError(f"{out}: cannot write the run directory ({e.strerror or e})") from None
    return out


def check_run_dir(out: Path) -> None:
    """Refuse a folder that holds a run, finished or not; makes and writes nothing."""
    if (out / "model.safetensors").exists() or (out / "metrics.json").exists():
        raise FmnistError(f"{out}: already holds a run; choose another --out or delete it")
    if (out / CHECKPOINT).exists():
        raise FmnistError(
            f"{out}: holds an unfinished run; continue it with fmnist train --resume {out}, "
            "or choose another --out"
        )


# held (fcntl.flock) by the one process writing a run directory, for as long as it runs
LOCK = ".fmnist-train.lock"


@contextlib.contextmanager
def locked(run_dir: Path):
    """Hold an advisory lock on RUN_DIR/LOCK for the block: a second run pointed at the same
    directory (a new run or --resume) is refused, never interleaved with this one. The lock
    file is removed at the end, while still held."""
    path = Path(run_dir) / LOCK
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FmnistError(
                f"{run_dir}: another fmnist train is writing this run directory; wait for it "
                "to end, or choose another --out"
            ) from None
        try:  # the run that held it may have removed the file meanwhile: lock the one there
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def run_directory(cfg, out, *, ctx, resume_run: bool):
    """The run's directory (None in torchrun's other processes), locked for the run's life
    against a second run pointed at it. A new run that ends before its first checkpoint
    leaves nothing it made behind; a file the system refuses to write (a full disk) ends
    the run in one line that says what is kept."""
    if ctx.rank != 0:
        yield Path(out) if resume_run else None
        return
    target = Path(out) if out is not None else default_run_dir(cfg, f"s{cfg.seed}")
    made = [] if resume_run else [p for p in (target, *target.parents) if not os.path.lexists(p)]
    run_dir = target if resume_run else prepare_run_dir(target, cfg)
    with locked(run_dir):
        if not resume_run:
            check_run_dir(run_dir)  # again, now that no other run can be writing it
        try:
            yield run_dir
        except BaseException as e:
            if not resume_run:
                remove_unfinished(run_dir, made)
            if isinstance(e, OSError) and not isinstance(e, BrokenPipeError):
                where = f"{e.filename}: " if e.filename else ""
                raise FmnistError(
                    f"{where}cannot write it ({e.strerror or e}); {kept_note(run_dir)}"
                ) from None
            raise


def remove_unfinished(run_dir: Path, made: list[Path]) -> None:
    """What a run that ended before its first checkpoint made: its records, its lock, the
    run directory and any folder made above it, if empty."""
    if (run_dir / CHECKPOINT).exists() or (run_dir / "metrics.json").exists():
        return
    for name in ("config.json", "history.csv", LOCK):
        (run_dir / name).unlink(missing_ok=True)
    for folder in made:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def kept_note(run_dir: Path) -> str:
    """What a run directory keeps after a run stopped: a finished run, a checkpoint to
    resume from (and its epoch), or nothing."""
    run_dir = Path(run_dir)
    if (run_dir / "metrics.json").is_file():
        return f"the run had finished: {run_dir}"
    path = run_dir / CHECKPOINT
    if not path.is_file():
        return "no checkpoint had been written yet, so nothing was kept"
    try:
        with safe_open(str(path), framework="pt") as f:
            epoch = f" of epoch {json.loads(f.metadata()['record'])['epoch']}"
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):
        epoch = ""
    return f"the checkpoint{epoch} is kept: continue with fmnist train --resume {run_dir}"


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parents[2]
        res = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return res.stdout.strip() or None if res.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "fmnist": fmnist.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        # the kernels PyTorch runs here (AVX2, AVX512, ...), and what pinned them, if anything
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16(torch.device("cpu")),
        "isa_pins": {k: os.environ[k] for k in ISA_PINS if k in os.environ},
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "git_commit": git_commit(),
    }


HISTORY_FIELDS = [
    "epoch",
    "train_loss",
    "train_acc",
    "val_loss",
    "val_acc",
    "lr",
    "epoch_s",
    "images_per_s",
]


def write_history(path: Path, history: list[dict]) -> None:
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=HISTORY_FIELDS)
            w.writeheader()
            w.writerows(history)

    atomic_write(path, write)


class Progress:
    """A progress bar within the epoch on a terminal; nothing otherwise (CI logs get lines)."""

    def __init__(self, total: int, label: str):
        self.total, self.label = total, label
        self.enabled = sys.stderr.isatty()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self.last < 0.1 and done < self.total):
            return
        self.last = now
        width = 30
        filled = int(width * done / self.total)
        bar = "=" * filled + ">" * (filled < width) + " " * (width - filled - 1)
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{self.total}")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * (len(self.label) + 50) + "\r")
            sys.stderr.flush()


def run_record(
    cfg, dataset, train_idx, val_idx, *, processes: int, used: dict, user_model: dict | None = None
) -> dict:
    """What config.json says: the settings asked for, what was used where the settings
    left it to the machine (precision), the data, the machine, when; for a model of the
    user's code, that code's spec, path, SHA-256, class and arguments."""
    return {
        "config": dataclasses.asdict(cfg),
        **({"user_model": user_model} if user_model else {}),
        "used": used,
        "data": {
            "directory": str(dataset.directory),
            "origin": dataset.origin,
            "sha256": dataset.sha256,
            "n_train": len(train_idx),
            "n_val": len(val_idx),
            "n_test": len(dataset.test_labels),
        },
        "environment": environment(),
        "processes": processes,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
