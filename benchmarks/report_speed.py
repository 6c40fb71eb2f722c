"""`fmnist report` timed against the code of an earlier commit, on this machine.

    python benchmarks/report_speed.py RUN_DIR [--base-commit 8679a04] [--new-commit HEAD]

RUN_DIR is a finished run as `fmnist train --recipe fast --epochs 1 --out RUN_DIR` leaves
it, its report included; nothing is trained here. Each timing runs `fmnist report` in a
fresh process on a fresh copy of RUN_DIR, the old and the new code (each a git worktree of
its commit, first on PYTHONPATH, so work in progress in this checkout is not measured)
taking turns, so a change in the machine's load falls on both. Two cases: the report
written again on a copy of RUN_DIR as it is (the new code reads the feature map's points
its earlier report kept), and the first report, on a copy without plots/ and report.html
(t-SNE runs). The record, with the medians, their ratios and the machine, goes to
benchmarks/results/report-speed-DATE.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir", type=Path, help="a finished run directory")
    p.add_argument("--base-commit", default="8679a04", help="the code to compare against")
    p.add_argument("--base-dir", type=Path, default=Path("/tmp/base"), help="its worktree")
    p.add_argument("--new-commit", default="HEAD", help="the code measured against it")
    p.add_argument("--new-dir", type=Path, default=Path("/tmp/report-speed-new"))
    p.add_argument("--repeats", type=int, default=3, help="timings of each (default: 3)")
    p.add_argument("--out", type=Path, help="default: benchmarks/results/report-speed-DATE.json")
    args = p.parse_args()
    sources = {
        "old": worktree(args.base_dir, args.base_commit) / "src",
        "new": worktree(args.new_dir, args.new_commit) / "src",
    }
    cases = {"again": (), "first": ("plots", "report.html")}  # what each copy leaves out
    seconds = {(case, code): [] for case in cases for code in sources}
    load = [os.getloadavg()[0]]
    for i in range(args.repeats):
        for case, left_out in cases.items():
            for code, src in sources.items():
                seconds[case, code].append(time_report(args.run_dir, src, left_out))
                load.append(os.getloadavg()[0])
                print(f"{i + 1}/{args.repeats} {case} {code}: {seconds[case, code][-1]:.1f} s")
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "fmnist report RUN_DIR --no-download (default 2,000 t-SNE points)",
        "old_commit": git("rev-parse", "--short", args.base_commit),
        "new_commit": git("rev-parse", "--short", args.new_commit),
        "kept_feature_map": (args.run_dir / "plots" / "feature_map.npz").is_file(),
        **{case: summary(seconds, case) for case in cases},
        "load_average_1min": [round(x, 2) for x in load],  # the machine is shared
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }
    out = args.out or REPO / "benchmarks" / "results" / f"report-speed-{date.today()}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    for case in cases:
        r = record[case]
        print(
            f"{case}: old median {r['old_median_s']:.1f} s, new median {r['new_median_s']:.1f} s,"
            f" {r['speedup']:.2f}x faster"
        )
    print(out)
    return 0


def summary(seconds: dict, case: str) -> dict:
    old, new = seconds[case, "old"], seconds[case, "new"]
    return {
        "old_median_s": round(statistics.median(old), 2),
        "new_median_s": round(statistics.median(new), 2),
        "speedup": round(statistics.median(old) / statistics.median(new), 2),
        "old_s": [round(s, 2) for s in old],
        "new_s": [round(s, 2) for s in new],
    }


def worktree(path: Path, commit: str) -> Path:
    """`commit` checked out at `path`: a detached worktree, added if absent."""
    sha = git("rev-parse", commit)
    if not (path / "src" / "fmnist").is_dir():
        git("worktree", "add", "--detach", str(path), sha)
    elif git("rev-parse", "HEAD", cwd=path) != sha:
        if git("status", "--porcelain", cwd=path):
            raise SystemExit(f"{path}: a worktree with changes of its own; give another")
        git("checkout", "--quiet", "--detach", sha, cwd=path)
    return path


def time_report(run_dir: Path, src: Path, left_out: tuple[str, ...]) -> float:
    """Seconds of one `fmnist report` process with `src` first on the path, on a copy of
    `run_dir` without the files named in `left_out`."""
    with tempfile.TemporaryDirectory(prefix="report-speed-") as tmp:
        copy = Path(tmp) / "run"
        shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(*left_out))
        env = {**os.environ, "PYTHONPATH": str(src)}
        command = [sys.executable, "-m", "fmnist", "report", str(copy), "--no-download"]
        t0 = time.perf_counter()
        subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - t0
        if not (copy / "report.html").is_file():
            raise SystemExit(f"{src}: fmnist report wrote no report.html")
    return elapsed


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def git(*argv: str, cwd: Path = REPO) -> str:
    return subprocess.run(
        ["git", *argv], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
