"""The bad-input promise, kept by generated cases: hostile flag values, recipe files,
model descriptions, corrupted tensors, garbled records, output paths and image files go to
the real command line (tests/cliserver.py), each in an empty folder. Whatever the input:
exit status 0 or 2, never a traceback or a hang; a 2 is one line on stderr and leaves the
folder as it was.

A fixed number of examples per test keeps the suite's time; FMNIST_FUZZ_EXAMPLES=500 runs
more."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors.torch import load_file, save_file

from fmnist.training.config import TrainConfig
from tests.hostile import assert_kept_promise

EXAMPLES = int(os.environ.get("FMNIST_FUZZ_EXAMPLES", "6"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not os.environ.get("FMNIST_FUZZ_EXAMPLES"),  # CI: the same cases every run
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SMALL_RUN = ["--train-limit", "64", "--epochs", "1", "--no-report"]

# what a hostile user types: not-numbers, edges, overflows, nonsense, huge
WORDS = ["nan", "-nan", "inf", "-inf", "1e400", "-1e400", "1e-400", "0", "-0", "-1",
         "0x10", "1_0", "", " ", "½", "٣", "9" * 40, "None", "true", "[]", "{}", "--", "-",
         "\t"]  # fmt: skip
values = st.one_of(
    st.sampled_from(WORDS),
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            max_size=20),
)  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def run_in_empty_folder(cli, argv: list[str], timeout: float = 120):
    with tempfile.TemporaryDirectory() as cwd:
        cwd = Path(cwd)
        result = cli(argv, cwd=cwd, timeout=timeout)
        assert_kept_promise(result, argv[0], cwd, set())
        return result


def cheap(flag: str, value: str) -> bool:
    """A valid count that would make the run long is left out (a slow success proves
    nothing here): epochs, seeds and images stay small."""
    try:
        number = float(value)
    except ValueError:
        return True
    limits = {"--epochs": 2, "--seeds": 2, "--train-limit": 256, "--repeats": 1,
              "--trials": 1, "--tsne-points": 50}  # fmt: skip
    return not (flag in limits and math.isfinite(number) and number > limits[flag])


@pytest.fixture(scope="module")
def inputs(tiny_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz")
    image = base / "item.png"
    Image.fromarray((np.random.default_rng(1).random((28, 28)) * 255).astype("uint8")).save(image)
    return {"run": tiny_run.run_dir, "base": base, "image": image}


TRAIN_FLAGS = ["--lr", "--epochs", "--batch-size", "--patience", "--seed", "--seeds",
               "--train-limit", "--model", "--precision", "--recipe", "--device"]  # fmt: skip


@FUZZ
@given(flag=st.sampled_from(TRAIN_FLAGS), value=values)
def test_train_flags(cli, flag, value):
    assume(cheap(flag, value))
    run_in_empty_folder(cli, ["train", *SMALL_RUN, "--out", "run", f"{flag}={value}"])


OTHER = [
    ("predict", ["--top-k"], ["--model", "default", "{image}"]),
    ("tune", ["--trials", "--epochs", "--patience", "--train-limit", "--storage", "--study"],
     ["--trials", "1", "--train-limit", "64", "--epochs", "1"]),
    ("serve", ["--port", "--host"], ["--model", "/nonexistent"]),
    ("report", ["--tsne-points"], ["/nonexistent"]),
    ("export", ["--format", "--model"], ["--out", "x.onnx"]),
]  # fmt: skip


@FUZZ
@given(command=st.sampled_from(OTHER), data=st.data(), value=values)
def test_other_flags(cli, inputs, command, data, value):
    name, flags, base = command
    flag = data.draw(st.sampled_from(flags))
    assume(cheap(flag, value))
    if name == "serve" and flag == "--port":
        return  # only a refusal is safe to fuzz: a valid address would start a server
    argv = [name, *[b.format(**inputs) for b in base], f"{flag}={value}"]
    run_in_empty_folder(cli, argv)


FIELDS = [f.name for f in TrainConfig.__dataclass_fields__.values()] + ["junk", ""]


@pytest.mark.slow
@FUZZ
@given(
    settings_=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=3),
    wrapper=st.sampled_from(["recipe", "bare", "list"]),
)
def test_recipe_files(cli, tmp_path_factory, settings_, wrapper):
    doc = {"format": "fmnist-recipe/1", "settings": settings_}
    doc = {"recipe": doc, "bare": settings_, "list": [settings_]}[wrapper]
    path = tmp_path_factory.mktemp("recipe") / "r.json"
    path.write_text(json.dumps(doc))
    run_in_empty_folder(cli, ["train", "--recipe", str(path), *SMALL_RUN, "--out", "run"])


def copy_model(inputs, tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("model")
    for name in ("model.json", "model.safetensors"):
        shutil.copy(inputs["run"] / name, d / name)
    return d


@pytest.mark.slow
@FUZZ
@given(
    field=st.sampled_from(["format", "model", "args", "classes", "metrics", "input"]),
    arg=st.sampled_from(["num_classes", "dropout", "width", "junk"]),
    value=json_values,
    command=st.sampled_from(["predict", "evaluate", "export"]),
)
def test_model_descriptions(cli, inputs, tmp_path_factory, field, arg, value, command):
    d = copy_model(inputs, tmp_path_factory)
    info = json.loads((d / "model.json").read_text())
    if field == "args":
        info["args"] = {**info["args"], arg: value}
    else:
        info[field] = value
    (d / "model.json").write_text(json.dumps(info))
    argv = {
        "predict": ["predict", "--model", str(d), str(inputs["image"])],
        "evaluate": ["evaluate", str(d), "--json"],
        "export": ["export", "--model", str(d), "--format", "onnx", "--out", "m.onnx"],
    }[command]
    result = run_in_empty_folder(cli, argv)
    if command == "evaluate" and result.rc == 0:
        json.loads(result.stdout)  # strict JSON: no bare NaN


@FUZZ
@given(
    how=st.sampled_from(["value", "shape", "dtype", "drop", "bytes", "truncate"]),
    fill=st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30, 0.0]),
    data=st.data(),
)
def test_corrupted_tensors(cli, inputs, tmp_path_factory, how, fill, data):
    d = copy_model(inputs, tmp_path_factory)
    weights = d / "model.safetensors"
    state = load_file(weights)
    name = data.draw(st.sampled_from(sorted(state)))
    if how == "value" and state[name].is_floating_point() and state[name].numel():
        state[name].view(-1)[data.draw(st.integers(0, state[name].numel() - 1))] = fill
    elif how == "shape":
        state[name] = state[name].reshape(-1)[: max(0, state[name].numel() - 1)].clone()
    elif how == "dtype":
        state[name] = state[name].to(data.draw(st.sampled_from([torch.float64, torch.int32])))
    elif how == "drop":
        del state[name]
    if how in ("value", "shape", "dtype", "drop"):
        save_file(state, weights)
    raw = bytearray(weights.read_bytes())
    if how == "bytes":
        for _ in range(data.draw(st.integers(1, 8))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    elif how == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    weights.write_bytes(bytes(raw))
    result = run_in_empty_folder(cli, ["predict", "--model", str(d), str(inputs["image"])])
    if result.rc == 0:
        assert "nan" not in result.stdout.lower()


RECORDS = ["metrics.json", "config.json", "model.json", "history.csv"]


@FUZZ
@given(
    record=st.sampled_from(RECORDS),
    content=st.one_of(
        json_values.map(json.dumps),
        st.text(max_size=60),
        st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    ),
    key=st.sampled_from(["test_accuracy", "train_s", "config", "best_epoch", "epochs", None]),
)
def test_garbled_records(cli, inputs, tmp_path_factory, record, content, key):
    garble(cli, inputs, tmp_path_factory, record, content, key, "results")


@settings(FUZZ, max_examples=max(1, EXAMPLES // 4))  # a valid record makes a whole report
@given(
    record=st.sampled_from(RECORDS),
    content=st.one_of(json_values.map(json.dumps), st.text(max_size=60)),
    key=st.sampled_from(["test_accuracy", "best_epoch", "epochs", "stopped_early", None]),
)
def test_garbled_records_report(cli, inputs, tmp_path_factory, record, content, key):
    garble(cli, inputs, tmp_path_factory, record, content, key, "report")


def garble(cli, inputs, tmp_path_factory, record, content, key, command):
    d = tmp_path_factory.mktemp("records") / "run"
    shutil.copytree(inputs["run"], d)
    path = d / record
    if key and record.endswith(".json"):
        # a well-formed record with one field replaced: the harder case
        obj = json.loads(path.read_text())
        try:
            obj[key] = json.loads(content)
        except ValueError:
            obj[key] = content
        content = json.dumps(obj)
    elif record == "history.csv" and key:
        lines = path.read_text().splitlines()
        lines[1] = content.replace("\n", " ")
        content = "\n".join(lines) + "\n"
    path.write_text(content, encoding="utf-8", errors="surrogateescape")
    argv = (
        ["results", str(d)] if command == "results" else ["report", str(d), "--tsne-points", "10"]
    )
    assume(command == "results" or record != "model.json" or key is None)
    run_in_empty_folder(cli, argv, timeout=180)


PATHS = ["/proc/x", "/proc/self", "/dev/null", "/dev/null/x", "{afile}", "{afile}/x",
         "{base}", "{base}/new/deeper/x", ".", "..", "/", "x" * 300, "a/" * 50 + "x",
         "-", "~nobody/x", "{fifo}"]  # fmt: skip
WRITERS = [
    ("predict", "--csv", ".csv", ["--model", "default", "{image}"]),
    ("export", "--out", ".onnx", ["--model", "default", "--format", "onnx"]),
    ("train", "--out", "", SMALL_RUN),
    # tune's paths are refused before its first trial (tests/test_hostile.py); a writable
    # one would run a trial, so they are not fuzzed here
]


@pytest.fixture(scope="module")
def places(inputs):
    base = inputs["base"]
    afile = base / "afile"
    afile.write_text("x")
    pipe = base / "pipe"
    if not pipe.exists():
        os.mkfifo(pipe)
    return {**inputs, "afile": afile, "fifo": pipe}


@pytest.mark.slow
@FUZZ
@given(writer=st.sampled_from(WRITERS), path=st.sampled_from(PATHS), suffix=st.booleans())
def test_output_paths(cli, places, writer, path, suffix):
    command, flag, ext, base = writer
    target = path.format(**places) + (ext if suffix else "")
    argv = [command, *[b.format(**places) for b in base], flag, target]
    # a valid, writable place would start real work there; only the refusals are fuzzed
    assume(not target.startswith(str(places["base"]) + "/new"))
    assume(target not in (".", "..", "/") or command not in ("train", "tune"))
    result = run_in_empty_folder(cli, argv, timeout=180)
    if result.rc == 0:
        assert command in ("predict", "export", "train", "tune")


IMAGE_KINDS = ["random_bytes", "png_one_colour", "png_random", "truncated_png", "empty",
               "huge_header", "text"]  # fmt: skip


@FUZZ
@given(
    kind=st.sampled_from(IMAGE_KINDS),
    size=st.tuples(st.integers(1, 64), st.integers(1, 64)),
    colour=st.integers(0, 255),
    raw=st.binary(max_size=200),
    cut=st.integers(0, 60),
)
def test_image_files(cli, tmp_path_factory, kind, size, colour, raw, cut):
    folder = tmp_path_factory.mktemp("img")
    path = folder / "x.png"
    w, h = size
    if kind == "random_bytes":
        path.write_bytes(raw)
    elif kind == "png_one_colour":
        Image.new("L", (w, h), colour).save(path)
    elif kind == "png_random":
        rng = np.random.default_rng(colour)
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    elif kind == "truncated_png":
        Image.new("RGB", (w, h), (colour, 0, 0)).save(path)
        path.write_bytes(path.read_bytes()[:cut])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "huge_header":
        # a PNG header that claims 60000 x 60000 pixels
        head = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (60000).to_bytes(4, "big") * 2
        path.write_bytes(head + b"\x08\x02\x00\x00\x00" + raw[:4])
    else:
        path.write_text(raw.decode("latin-1"), encoding="latin-1")
    result = run_in_empty_folder(cli, ["predict", "--model", "default", str(path)])
    if kind in ("png_one_colour", "empty"):
        assert result.rc == 2


def ladder_record(seed: int) -> dict:
    """A one-seed record of `fmnist bench --ladder` as it writes them."""
    return {
        "date": "2026-11-26T12:00:00+00:00",
        "device": "cpu",
        "machine": {"cpu": "AMD EPYC", "cpu_capability": "AVX2", "native_bf16": False,
                    "torch_threads": 2, "torch": "2.13.0+cpu", "isa_pins": {}},
        "data_load_s": 1.5,
        "settings": {},
        "rungs": [{
            "rung": "90%", "recipe": "rung90", "recipe_settings": {"epochs": 1},
            "model": "quick_w2", "parameters": 26610, "mflop_per_image": 2.77, "epochs": 1,
            "batch_size": 128, "precision": "fp32", "tta": False, "seeds": 1,
            "seed_values": [seed],
            "test_accuracy": {"mean": 0.9, "std": 0.0, "min": 0.9, "values": [0.9]},
            "reached": 1, "rung_met": True,
            "train_s": {"median": 8.0, "min": 8.0, "max": 8.0, "values": [8.0]},
            "images_per_s": 7000.0, "images_per_s_values": [7000.0],
        }],
        "compare": [{"recipe": "fast", "epochs_run": 1, "epochs": 1, "finished": True,
                     "budget_s": 60.0, "curve": [[5.0, 0.88]],
                     "first_reach_s": {"90%": None}}],
    }  # fmt: skip


LADDER_PLACES = ["", "machine", "rungs.0", "rungs.0.test_accuracy", "rungs.0.train_s",
                 "compare.0", "compare.0.first_reach_s"]  # fmt: skip


# beyond a float's range, at its edge, a line break in a name, a long list
EXTREMES = st.sampled_from([10**400, -(10**30), 1.7e308, -1.7e308, 5e-324, "90%\n2", "9\x85",
                            list(range(3000))])  # fmt: skip


@FUZZ
@given(place=st.sampled_from(LADDER_PLACES), data=st.data(),
       value=st.one_of(json_values, EXTREMES), delete=st.booleans(),
       which=st.sampled_from([0, 1]))  # fmt: skip
def test_ladder_records_to_merge(cli, tmp_path_factory, place, data, value, delete, which):
    d = tmp_path_factory.mktemp("ladder")
    records = [ladder_record(0), ladder_record(1)]
    record = records[which]
    target = record
    for step in filter(None, place.split(".")):
        target = target[int(step)] if step.isdigit() else target[step]
    key = data.draw(st.sampled_from([*sorted(target), "junk"]))  # a field of that place
    if delete:
        target.pop(key, None)
    else:
        target[key] = value
    (d / "a.json").write_text(json.dumps(records[0]))
    (d / "b.json").write_text(json.dumps(records[1]))
    out = "new/merged.json"  # a refusal must not leave the folder made
    run_in_empty_folder(cli, ["bench", "--merge", str(d / "a.json"), str(d / "b.json"),
                              "--json", out])  # fmt: skip
