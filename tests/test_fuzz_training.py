"""The bad-input promise on the training side, kept by generated cases: recipe files whose
settings have the right names and values at and past every edge, model descriptions whose
metrics are anything JSON holds, and checkpoint records (and tensors) edited before
--resume. Each goes to the real command line (tests/cliserver.py); whatever the input:
exit status 0 or 2, never a traceback or a hang; a 2 is one line and leaves the working
folder as it was. See tests/test_fuzz_cli.py for the settings (FMNIST_FUZZ_EXAMPLES)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist.checkpoint import load_state, save_state
from fmnist.training.config import TrainConfig, make_config
from fmnist.training.train import train
from tests.hostile import assert_kept_promise, listing

EXAMPLES = int(os.environ.get("FMNIST_FUZZ_EXAMPLES", "6"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FMNIST_FUZZ_EXAMPLES"),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SMALL_RUN = ["--train-limit", "64", "--epochs", "1", "--no-report"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=300),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
# numbers at and past every edge a setting or a library has
EDGE_INTS = [0, 1, -1, 2, 3, 2**20, 2**20 + 1, 10_000, 10_001, 2**31, 2**32 - 1, 2**32, 2**63,
             2**64 + 1, -(2**63), 10**30]  # fmt: skip
EDGE_FLOATS = [0.0, -0.0, 1.0, 1e-300, 5e-324, 0.5, 0.9999999, 1e-7, 10.0, 10.000001, 1e308,
               float("nan"), float("inf"), -float("inf"), -1e-9]  # fmt: skip
CHOICES = {
    "model": ["seed_cnn", "", "nope", "x.py:Model", "../seed_cnn"],
    "schedule": ["constant", "onecycle", "cosine", "Cosine"],
    "augment": ["none", "flip", "crop_flip_erase", "flip_corrupt", "flip+crop"],
    "select": ["val_loss", "val_acc", "last", "best"],
    "precision": ["auto", "fp32", "bf16", "fp16"],
    "device": ["cpu", "auto", "cuda", "tpu"],
    "exclude": ["", "/nonexistent.json", "-", "."],
    "recipe": ["seed", "x" * 300],
}


def setting_values(name: str):
    """Values of a setting's own type at its edges, and sometimes of another type."""
    kind = type(getattr(TrainConfig(), name))
    own = {
        bool: st.booleans(),
        int: st.sampled_from(EDGE_INTS) | st.integers(-5, 300),
        float: st.sampled_from(EDGE_FLOATS) | st.floats(-2, 12, allow_nan=False),
        str: st.sampled_from(CHOICES.get(name, [""])) | st.text(max_size=12),
        dict: st.dictionaries(st.text(max_size=6), json_values, max_size=2),
    }[kind]
    return st.one_of(own, own, json_values)


FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]


def run_in(cli, cwd: Path, argv: list[str], before: set[str], timeout: float = 180):
    result = cli(argv, cwd=cwd, timeout=timeout)
    assert_kept_promise(result, argv[0], cwd, before)
    return result


@pytest.mark.slow
@FUZZ
@given(data=st.data(), names=st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4))
def test_generated_recipes(cli, tmp_path_factory, data, names):
    chosen = {name: data.draw(setting_values(name), label=name) for name in names}
    path = tmp_path_factory.mktemp("recipe") / "r.json"
    # JSON as Python writes it: NaN and Infinity too, which json.loads reads back
    path.write_text(json.dumps({"format": "fmnist-recipe/1", "settings": chosen}))
    with tempfile.TemporaryDirectory() as cwd:
        # the flags after the recipe keep a valid run small
        argv = ["train", "--recipe", str(path), *SMALL_RUN, "--out", "run"]
        result = run_in(cli, Path(cwd), argv, set())
        if result.rc == 0:
            assert (Path(cwd) / "run" / "metrics.json").is_file()
            json.loads((Path(cwd) / "run" / "metrics.json").read_text(), parse_constant=_refuse)


def _refuse(constant):
    raise AssertionError(f"{constant} in strict JSON")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("image") / "item.png"
    Image.fromarray((np.random.default_rng(2).random((28, 28)) * 255).astype("uint8")).save(path)
    return path


@FUZZ
@given(metrics=st.dictionaries(st.text(max_size=250), json_values, max_size=4) | json_values)
def test_generated_metrics_in_a_model_description(cli, tiny_run, tmp_path_factory, image, metrics):
    model = tmp_path_factory.mktemp("model")
    shutil.copy(tiny_run.run_dir / "model.safetensors", model)
    info = json.loads((tiny_run.run_dir / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**info, "metrics": metrics}))
    with tempfile.TemporaryDirectory() as cwd:
        result = run_in(cli, Path(cwd), ["predict", "--model", str(model), str(image)], set())
    flat = isinstance(metrics, dict) and all(
        isinstance(v, (str, bool, type(None)))
        or isinstance(v, float)
        and math.isfinite(v)
        or isinstance(v, int)
        and abs(v) <= 2**53
        for v in metrics.values()
    )
    ok = flat and len(metrics) <= 100 and all(len(k) <= 200 for k in metrics)
    ok = ok and all(len(v) <= 200 for v in metrics.values() if isinstance(v, str))
    assert (result.rc == 0) == ok, result.stderr


class Stop(Exception):
    pass


def stop(*_):
    raise Stop


@pytest.fixture(scope="module")
def unfinished(dataset, tmp_path_factory):
    """A run of the fast recipe (a one-cycle schedule) with a weight average, stopped after
    the checkpoint of epoch 1 of 2."""
    small = dataclasses.replace(
        dataset, train_images=dataset.train_images[:3000], train_labels=dataset.train_labels[:3000]
    )
    out = tmp_path_factory.mktemp("unfinished") / "run"
    cfg = make_config("fast", epochs=2, train_limit=256, device="cpu", ema=0.9)
    with pytest.raises(Stop):
        train(cfg, out=out, dataset=small, log=lambda *a: None, on_epoch=stop)
    return out


def places(record: dict) -> list[tuple]:
    """Every place in a record a value sits: (container, key) pairs, nested ones too."""
    found = []

    def walk(obj, depth):
        items = obj.items() if isinstance(obj, dict) else enumerate(obj)
        for key, value in items:
            found.append((obj, key))
            if isinstance(value, (dict, list)) and depth < 4:
                walk(value, depth + 1)

    walk(record, 0)
    return found


@pytest.mark.slow
@FUZZ
@given(
    data=st.data(),
    how=st.sampled_from(["set", "set", "drop", "nan", "shape", "dtype", "untensor"]),
    value=json_values,
)
def test_generated_checkpoint_records(cli, unfinished, data, how, value):
    with tempfile.TemporaryDirectory() as cwd:
        run = shutil.copytree(unfinished, Path(cwd) / "run")
        tensors, record = load_state(run / "checkpoint.safetensors")
        spots = places(record)
        box, key = spots[data.draw(st.integers(0, len(spots) - 1), label="place")]
        name = data.draw(st.sampled_from(sorted(tensors)), label="tensor")
        if how == "set":
            box[key] = value
        elif how == "drop":
            box.pop(key) if isinstance(box, dict) else box.pop(key)
        elif how == "nan" and tensors[name].is_floating_point() and tensors[name].numel():
            tensors[name].view(-1)[0] = float("nan")
        elif how == "shape":
            tensors[name] = tensors[name].reshape(-1)[1:].clone()
        elif how == "dtype":
            tensors[name] = tensors[name].to(torch.float64)
        elif how == "untensor":
            del tensors[name]
        save_state(run / "checkpoint.safetensors", tensors, record)
        before = listing(Path(cwd))
        result = run_in(cli, Path(cwd), ["train", "--resume", "run", "--no-report"], before)
        if result.rc == 0:  # an edit the run could take: it finished whole
            assert listing(run) >= {"model.safetensors", "metrics.json"}
            assert not (run / "checkpoint.safetensors").exists()
