"""A small run of benchmarks/load_test.py: the real server in a subprocess, real clients."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from .use_helpers import usable_model

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "load_test.py"


@pytest.mark.slow
def test_load_test_smoke(tiny_run, dataset, tmp_path):
    spec = importlib.util.spec_from_file_location("load_test", SCRIPT)
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    out = tmp_path / "load.json"
    model = str(usable_model(tiny_run, dataset))
    argv = ["--model", model, "--requests", "60", "--clients", "3", "--images", "8"]
    assert load_test.main([*argv, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["requests"] == 60 and result["errors"] == 0
    lat = result["latency_ms"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["requests_per_s"] > 0
