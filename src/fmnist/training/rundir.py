"""The run directory: where a run's record lives, what it says about the machine, progress.

Only one process writes it (rank 0 under torchrun); see `fmnist.training.distributed`.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

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
    if (out / "model.safetensors").exists() or (out / "metrics.json").exists():
        raise FmnistError(f"{out}: already holds a run; choose another --out or delete it")
    if (out / CHECKPOINT).exists():
        raise FmnistError(
            f"{out}: holds an unfinished run; continue it with fmnist train --resume {out}, "
            "or choose another --out"
        )
    try:
        make_writable_dir(out)
    except OSError as e:
        raise FmnistError(f"{out}: cannot write the run directory ({e.strerror or e})") from None
    return out


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
