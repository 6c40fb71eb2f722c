"""Hostile input on the training side: a checkpoint's record edited or damaged before
--resume, a model description's metrics, degenerate data (exclude lists, splits that leave
nothing) and numbers past what a library takes. Each ends in one line, exit status 2,
before any training, with nothing left behind (tests/hostile.py's assert_kept_promise)."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from fmnist.checkpoint import CheckpointError, load_model, load_state, save_state
from fmnist.training import resume
from fmnist.training.config import ConfigError, make_config
from fmnist.training.seeds import train_seeds
from fmnist.training.train import train
from tests.hostile import assert_kept_promise, listing, write_file


class Stop(Exception):
    pass


def stop(*_):
    raise Stop


def stopped_run(dataset, out, recipe: str, epochs: int, **settings):
    """An unfinished run: its checkpoint after epoch 1 of `epochs`, then stopped. Trained on
    a slice of the data (the record keeps the real data's digest, as --resume checks)."""
    small = dataclasses.replace(
        dataset, train_images=dataset.train_images[:3000], train_labels=dataset.train_labels[:3000]
    )
    cfg = make_config(recipe, epochs=epochs, train_limit=256, device="cpu", **settings)
    with pytest.raises(Stop):
        train(cfg, out=out, dataset=small, log=lambda *a: None, on_epoch=stop)
    return out


@pytest.fixture(scope="module")
def runs(dataset, tmp_path_factory):
    """seed: a constant rate; fast: a one-cycle schedule and a weight average (ema); hard:
    hard-example epochs after the first."""
    base = tmp_path_factory.mktemp("unfinished")
    return {
        "seed": stopped_run(dataset, base / "seed", "seed", 2),
        "fast": stopped_run(dataset, base / "fast", "fast", 3, ema=0.9),
        "hard": stopped_run(dataset, base / "hard", "fast", 3, hard_share=0.5),
    }


def edited(run, to, record=None, tensors=None, config=None):
    """A copy of an unfinished run with its checkpoint's record, tensors or config.json
    edited in place by the functions given."""
    shutil.copytree(run, to)
    t, r = load_state(to / "checkpoint.safetensors")
    if record:
        record(r)
    if tensors:
        tensors(t)
    save_state(to / "checkpoint.safetensors", t, r)
    if config:
        c = json.loads((to / "config.json").read_text())
        config(c["config"])
        (to / "config.json").write_text(json.dumps(c))
    return to


def nan_best(t):
    for k, v in t.items():
        if k.startswith("best.") and v.is_floating_point():
            v.fill_(float("nan"))


def setter(key, value):
    return lambda r: r.update({key: value})


# (what is done to the record, a fragment of the one line): the schema alone decides these
RECORDS = [
    (lambda r: r.pop("epoch"), "key 'epoch' is missing"),
    (setter("epoch", "1"), "key 'epoch' must be a whole number"),
    (setter("epoch", 0), "key 'epoch' must be a whole number from 1"),
    (setter("stop", "no"), "key 'stop' must be true or false"),
    (setter("history", 5), "key 'history' must be a list"),
    (setter("history", []), "one row per epoch"),
    (setter("best", {}), "key 'best.score' is missing"),
    (lambda r: r["best"].update(epoch=7), "key 'best.epoch'"),
    (setter("train_s", None), "key 'train_s'"),
    (setter("train_s", float("nan")), "key 'train_s'"),
    (lambda r: r["history"][0].update(extra=1), "history[0]"),
    (lambda r: r["history"][0].update(val_loss="low"), "history[0].val_loss"),
    (setter("optimizer", {"state": {}}), "key 'optimizer.param_groups' is missing"),
    (setter("ema_steps", -1), "key 'ema_steps'"),
    (setter("scheduler", 3), "key 'scheduler'"),
    (setter("world_size", True), "key 'world_size'"),
]


@pytest.mark.parametrize(("edit", "fragment"), RECORDS)
def test_a_damaged_record_is_refused_naming_its_key(runs, tmp_path, edit, fragment):
    run = edited(runs["seed"], tmp_path / "run", record=edit)
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        resume.load(run)


def test_nan_best_weights_are_never_resumed(cli, runs, tmp_path):
    # before: the run finished and saved a model of NaN weights
    run = edited(runs["seed"], tmp_path / "run", tensors=nan_best)
    before = (run / "checkpoint.safetensors").read_bytes()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = cli(["train", "--resume", str(run), "--no-report"], cwd=cwd, timeout=120)
    assert_kept_promise(result, "train", cwd, set())
    assert result.rc == 2 and "tensor 'best." in result.stderr and "NaN" in result.stderr
    assert listing(run) == {"checkpoint.safetensors", "config.json", "history.csv"}
    assert (run / "checkpoint.safetensors").read_bytes() == before


def _moments(t):
    t["optimizer.0.exp_avg"] = torch.zeros(3)


# (run, edits, fragment): refused against the run its settings build, before any step
FITS = [
    ("fast", {"config": lambda c: c.update(epochs=5)}, "epochs 3, config.json now says 5"),
    ("seed", {"config": lambda c: c.update(batch_size=64)}, "batch_size 128"),
    # a checkpoint from before the record kept its settings: its schedule tells
    (
        "fast",
        {"record": lambda r: r.pop("config"), "config": lambda c: c.update(epochs=5)},
        "scheduler.total_steps",
    ),  # fmt: skip
    ("fast", {"record": lambda r: r["scheduler"].update(last_epoch=50)}, "scheduler.last_epoch"),
    ("fast", {"record": setter("ema_steps", None)}, "key 'ema_steps'"),
    ("seed", {"record": setter("ema_steps", 3)}, "key 'ema_steps' must be null"),
    ("seed", {"record": setter("scheduler", {"last_epoch": 1})}, "key 'scheduler'"),
    ("seed", {"record": lambda r: r["optimizer"]["param_groups"][0].update(lr="x")}, "lr"),
    ("seed", {"record": lambda r: r["optimizer"]["param_groups"][0].update(eps=1)}, "eps"),
    ("seed", {"record": lambda r: r["optimizer"].update(state={"0": {"step": "x"}})}, "state"),
    ("seed", {"tensors": _moments}, "tensor 'optimizer.0.exp_avg'"),
    ("seed", {"tensors": lambda t: t.pop("best.features.0.weight")}, "best.features.0.weight"),
    ("seed", {"tensors": lambda t: t.update({"best.extra": torch.zeros(1)})}, "best.extra"),
    ("hard", {"tensors": lambda t: t.update({"hard.losses": torch.zeros(1)})}, "'hard.losses'"),
    ("hard", {"tensors": lambda t: t.pop("hard.losses")}, "'hard.losses' must hold"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("run", "edits", "fragment"), FITS)
def test_a_record_that_does_not_fit_its_run_is_refused(cli, runs, tmp_path, run, edits, fragment):
    run = edited(runs[run], tmp_path / "run", **edits)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = cli(["train", "--resume", str(run), "--no-report"], cwd=cwd, timeout=120)
    assert_kept_promise(result, "train", cwd, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr
    assert not (run / "model.safetensors").exists() and not (run / ".fmnist-train.lock").exists()


# ----------------------------------------------------------------------------
# A model description's metrics
# ----------------------------------------------------------------------------

METRICS = [
    '{"test_accuracy": NaN}',
    '{"test_accuracy": Infinity}',
    '{"test_accuracy": {"mean": 0.9}}',
    '{"test_accuracy": [0.9]}',
    '{"test_accuracy": 1' + "0" * 30 + "}",
    '{"device": "' + "x" * 500 + '"}',
    "[0.9]",
    '"high"',
    json.dumps({f"m{i}": i for i in range(101)}),
]


@pytest.mark.parametrize("metrics", METRICS)
def test_odd_metrics_are_refused_by_every_loader(cli, tiny_run, tmp_path, metrics):
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(tiny_run.run_dir / "model.safetensors", model)
    text = (tiny_run.run_dir / "model.json").read_text()
    info = json.loads(text)
    info["metrics"] = "@"
    (model / "model.json").write_text(json.dumps(info).replace('"@"', metrics))
    with pytest.raises(CheckpointError, match="metrics"):
        load_model(model)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    result = cli(["predict", "--model", str(model), str(image)], cwd=cwd, timeout=60)
    assert_kept_promise(result, "predict", cwd, set())
    assert result.rc == 2 and "metrics" in result.stderr


def test_plain_metrics_still_load(tiny_run, tmp_path):
    model = shutil.copytree(tiny_run.run_dir, tmp_path / "model")
    info = json.loads((model / "model.json").read_text())
    info["metrics"] = {"test_accuracy": 0.5, "val_loss": None, "stopped_early": True, "n": 3}
    (model / "model.json").write_text(json.dumps(info))
    assert load_model(model).training is False


# ----------------------------------------------------------------------------
# Degenerate data, numbers past a library's limit
# ----------------------------------------------------------------------------

SMALL = ["--train-limit", "256", "--epochs", "1", "--no-report", "--out", "run"]
AUDIT = '{"format": "fmnist-audit/1", "exclude": '

# (command line with {file} an --exclude or recipe file holding `content`, fragment)
CASES = [
    (["train", "--exclude", "{file}"], "", "the file is empty"),
    (["train", "--exclude", "{file}"], "  \n\n", "the file is empty"),
    (["train", "--exclude", "{file}"], "[[1, 2], [3]]", "entry 1 is a list"),
    (["train", "--exclude", "{file}"], "[1, 2.5]", "entry 2 is 2.5"),
    (["train", "--exclude", "{file}"], "[1, -3]", "entry 2 is -3"),
    (["train", "--exclude", "{file}"], "[true]", "entry 1 is True"),
    (["train", "--exclude", "{file}"], "[1e999]", "entry 1 is inf"),
    (["train", "--exclude", "{file}"], "[" * 100_000, "not readable JSON"),
    (["train", "--exclude", "{file}"], AUDIT + "[1, 2]}", "without a list at exclude.train"),
    (["train", "--exclude", "{file}"], AUDIT + '{"train": "1"}}', "exclude.train"),
    (["train", "--epochs", str(10**21)], None, "epochs must be at most 10,000"),
    (["train", "--batch-size", str(10**20)], None, "batch-size must be at most"),
    (["train", "--seeds", str(10**20)], None, "--seeds must be at most 1,000"),
    (["train", "--seed", str(2**32 - 1), "--seeds", "2"], None, "past the largest seed"),
    (["train", "--seed", str(2**64 + 1)], None, "seed must be in"),
    (
        ["train", "--recipe", "{file}"],
        '{"format": "fmnist-recipe/1", "settings": {"eval_batch_size": 1e30}}',
        "eval_batch_size must be int",
    ),  # fmt: skip
    (["tune", "--trials", "1", "--sampler-seed", str(2**64 + 1)], None, "--sampler-seed"),
    (["tune", "--trials", "1", "--sampler-seed", "-1"], None, "--sampler-seed must be 0"),
    (["tune", "--trials", str(10**20)], None, "--trials must be at most"),
    (["bench", "--repeats", str(10**20)], None, "--repeats must be at most"),
    (["bench", "--epochs", str(10**20)], None, "--epochs must be at most"),
    (["bench", "--ladder", "--compare-budget", "nan"], None, "--compare-budget"),
    (["bench", "--ladder", "--compare-budget", "inf"], None, "--compare-budget"),
    (["bench", "--ladder", "--seeds", str(10**20)], None, "--seeds must be at most"),
    (["robustness", "--model", "default", "--seed", str(2**64 + 1)], None, "--seed must be"),
]


@pytest.mark.parametrize(("argv", "content", "fragment"), CASES)
def test_refused_before_any_work(cli, tmp_path, argv, content, fragment):
    file = tmp_path / "input" / "file.json"
    if content is not None:
        write_file(file, content)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    command, *rest = [a.format(file=file) for a in argv]
    small = {"train": SMALL, "tune": SMALL[:4]}.get(command, [])
    argv = [command, *small, *rest]  # the case's own flags last: they win
    result = cli(argv, cwd=cwd, timeout=60)
    assert_kept_promise(result, argv[0], cwd, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr


# these read the data first: a split is known only then
DATA_CASES = [
    (["train", "--exclude", "{file}"], "\n".join(map(str, range(60000))), "no training images"),
    (["train", "--exclude", "{file}"], "[0, 60000]", "names training image 60000"),
    (
        ["train", "--recipe", "{file}"],
        '{"format": "fmnist-recipe/1", "settings": {"val_fraction": 1e-6}}',
        "no validation images",
    ),  # fmt: skip
    (
        ["train", "--recipe", "{file}"],
        '{"format": "fmnist-recipe/1", "settings": {"val_fraction": 0.9999999}}',
        "no training images",
    ),  # fmt: skip
    (["audit", "--quick", "--epochs", "1", "--folds", "100000"], None, "--folds must be at most"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "content", "fragment"), DATA_CASES)
def test_degenerate_data_refused_before_the_first_step(cli, tmp_path, argv, content, fragment):
    test_refused_before_any_work(cli, tmp_path, argv, content, fragment)


def test_seeds_past_the_largest_seed_refused_by_the_api(dataset, tmp_path):
    cfg = make_config("seed", seed=2**32 - 1, epochs=1, train_limit=64)
    with pytest.raises(ConfigError, match="past the largest seed"):
        train_seeds(cfg, 2, out=tmp_path / "sweep", dataset=dataset, log=lambda *a: None)
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_a_failed_sweep_leaves_no_folders(cli, tmp_path):
    every = write_file(tmp_path / "all.txt", "\n".join(map(str, range(60000))))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = ["train", *SMALL, "--seeds", "2", "--exclude", str(every), "--out", "a/sweep"]
    result = cli(argv, cwd=cwd, timeout=60)
    assert_kept_promise(result, "train", cwd, set())
    assert result.rc == 2 and "no training images" in result.stderr
