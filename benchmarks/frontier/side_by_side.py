"""The ladder's rungs against an older commit's, on this machine, in one measurement.

For each rung and seed, the old commit's recipe and today's run one after the other (each
`fmnist bench --ladder --rungs R --seeds 1 --first-seed S`, in its own process, so each run
pays its own warm-up), the old code taken from a `git worktree` through PYTHONPATH; the
calibration probe runs at the start and the end. Run it with nothing else on the machine:
    git worktree add /tmp/base 8679a04
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/frontier/side_by_side.py \\
        --old /tmp/base --rungs 90 92 93 94 --seeds 5 OUT.json
Each rung's ratio is today's median training seconds over the old commit's. With
--ladder-out DIR, today's seeds of each rung are also merged (`fmnist bench --merge`) into
DIR/DATE-ladder-cpu-CAPABILITY-rungR-side-by-side.json, a ladder record as the results
pages read it.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import torch

from fmnist.analysis.ladder import holds
from fmnist.analysis.probe import calibration
from fmnist.training.rundir import environment


def one_seed(tree: Path | None, rung: str, seed: int, tmp: Path) -> dict:
    """One seed of `rung` by the code in `tree` (None: this checkout); its rung record."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree / "src")
    out = tmp / f"{'old' if tree else 'new'}-{rung}-s{seed}.json"
    command = [sys.executable, "-m", "fmnist", "bench", "--ladder", "--rungs", rung]
    command += ["--seeds", "1", "--first-seed", str(seed), "--compare", "--json", str(out)]
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    record = json.loads(out.read_text())
    (rung_record,) = record["rungs"]
    return {**rung_record, "commit": record["machine"].get("git_commit"), "file": out}


def side(runs: list[dict], rung: str) -> dict:
    times = [r["train_s"]["values"][0] for r in runs]
    accuracy = [r["test_accuracy"]["values"][0] for r in runs]
    target = int(rung) / 100
    reached = sum(a >= target for a in accuracy)
    return {
        "commit": runs[0]["commit"],
        "recipe": runs[0]["recipe"],
        "model": runs[0]["model"],
        "epochs": runs[0]["epochs"],
        "recipe_settings": runs[0].get("recipe_settings", {}),
        "train_s": times,
        "train_s_median": round(statistics.median(times), 2),
        "test_accuracy": accuracy,
        "test_accuracy_mean": statistics.mean(accuracy),
        "seeds_reaching_rung": reached,
        "holds": holds(f"{rung}%", accuracy),
    }


def merge(runs: list[dict], rung: str, folder: Path, record: dict) -> str:
    """Today's one-seed records of `rung` merged into one ladder record in `folder`."""
    day = record["date"][:10]
    capability = record["machine"]["cpu_capability"].lower()
    out = folder / f"{day}-ladder-cpu-{capability}-rung{rung}-side-by-side.json"
    if out.exists():  # a second measurement that day: named by its start time as well
        out = out.with_name(out.stem + f"-{record['date'][11:16].replace(':', '')}.json")
    command = [sys.executable, "-m", "fmnist", "bench", "--merge"]
    command += [str(r["file"]) for r in runs] + ["--json", str(out)]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return out.name


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--old", type=Path, required=True, help="a worktree of the older commit")
    p.add_argument("--rungs", nargs="+", default=["90", "92", "93", "94"])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--ladder-out", type=Path, help="a folder for today's seeds as ladder records")
    args = p.parse_args()
    device = torch.device("cpu")
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": environment(),
        "calibration": {"start": calibration(device)},
        "rungs": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for rung in args.rungs:
            old, new = [], []
            for seed in range(args.seeds):  # the two take turns, seed by seed
                old.append(one_seed(args.old, rung, seed, Path(tmp)))
                new.append(one_seed(None, rung, seed, Path(tmp)))
            row = {"rung": rung + "%", "old": side(old, rung), "new": side(new, rung)}
            row["ratio"] = round(row["new"]["train_s_median"] / row["old"]["train_s_median"], 3)
            record["rungs"].append(row)
            if args.ladder_out:
                row["ladder_record"] = merge(new, rung, args.ladder_out, record)
            print(json.dumps({k: row[k] for k in ("rung", "ratio")}), flush=True)
    record["calibration"]["end"] = calibration(device)
    Path(args.out).write_text(json.dumps(record, indent=2, allow_nan=False) + "\n")


if __name__ == "__main__":
    main()
