"""The results table is read from records, and its commands give back the settings."""

from __future__ import annotations

import json
import shlex

import pytest

from fmnist.analysis import results
from fmnist.cli import build_parser
from fmnist.training.config import SETTING_FLAGS, make_config


@pytest.mark.parametrize(
    "recipe, overrides, n",
    [
        ("seed", {}, 1),
        ("tuned", {"seed": 3}, 3),
        ("best", {"epochs": 80, "precision": "bf16", "channels_last": True}, 3),
        ("best", {"epochs": 60, "all_data": True, "lr": 0.002}, 1),
    ],
)
def test_command_gives_back_the_settings(recipe, overrides, n):
    cfg = make_config(recipe, **overrides)
    line = results.command(cfg.__dict__, n)
    args = build_parser().parse_args(shlex.split(line)[1:])
    again = make_config(args.recipe, **{f: getattr(args, f) for f in SETTING_FLAGS})
    assert again == cfg
    assert args.seeds == n


def test_rows_from_a_run_a_sweep_and_a_model(tiny_run, tmp_path):
    run = results.read(tiny_run.run_dir)
    assert run["test"] == [tiny_run.metrics["test_accuracy"]] and run["n"] == 1
    assert "cores" in run["machine"]
    summary = {
        "config": make_config("tuned").__dict__,
        "n": 3,
        "parameters": 107554,
        "test_accuracy": {"mean": 0.92, "std": 0.01, "values": [0.91, 0.92, 0.93]},
        "test_accuracy_tta": {"mean": 0.93, "std": 0.01, "values": [0.92, 0.93, 0.94]},
        "train_s": {"mean": 100.0, "std": 1.0, "values": [99.0, 100.0, 101.0]},
    }
    (tmp_path / "sweep").mkdir()
    (tmp_path / "sweep" / "summary.json").write_text(json.dumps(summary))
    sweep = results.read(tmp_path / "sweep")
    text = results.table([run, sweep, results.read("src/fmnist/weights/default.json")])
    lines = text.splitlines()
    assert len(lines) == 5 and all(ln.count("|") == 9 for ln in lines)
    assert "92.00% ± 1.00% (3 seeds: 91.00, 92.00, 93.00)" in lines[3]
    assert "93.00% ± 1.00%" in lines[3] and "100 s each" in lines[3]
    assert "`fmnist train --recipe tuned --seeds 3`" in lines[3]
    assert "| 107,554 |" in lines[4]


def test_bad_records_are_one_line_errors(tmp_path):
    with pytest.raises(results.ResultsError, match="no such record"):
        results.read(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(results.ResultsError, match="not a sweep summary"):
        results.read(tmp_path / "x.json")
