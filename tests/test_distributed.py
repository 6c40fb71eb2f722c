"""torchrun: two CPU processes (gloo) share each batch; only rank 0 writes the run directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fmnist.training import distributed

ROOT = Path(__file__).resolve().parents[1]


def test_shards_split_each_batch_without_overlap():
    batch = torch.randperm(103)
    parts = [distributed.shard(batch, distributed.Context(r, 3, r)) for r in range(3)]
    assert sorted(torch.cat(parts).tolist()) == sorted(batch.tolist())
    assert [len(p) for p in parts] == [35, 34, 34]
    assert torch.equal(distributed.shard(batch, distributed.SINGLE), batch)


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path):
    run = tmp_path / "ddp"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
        "-m", "fmnist", "train", "--epochs", "2", "--train-limit", "1000", "--batch-size", "64",
        "--device", "cpu", "--out", str(run), "--no-report", "--no-download",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("run directory:") == 1  # rank 1 prints nothing
    assert "2 processes" in res.stdout
    record = json.loads((run / "config.json").read_text())
    assert record["processes"] == 2
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2
    assert metrics["test_accuracy"] > 0.45  # 1,000 images, two epochs: far above chance
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # nothing written elsewhere
    assert not list(run.glob(".*"))
