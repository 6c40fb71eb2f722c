"""The bad-input promise on the newer commands' outputs, kept by generated cases: hostile
output paths (and obstacles planted where an output folder's files go) for audit, explain,
robustness, bench --merge and data --export, and garbled records for results. Whatever the
input: exit status 0 or 2, never a traceback or a hang; a 2 is one line and leaves the
working folder as it was. See tests/test_fuzz_cli.py for the settings."""

from __future__ import annotations

import json
import os
import re
import shlex
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from PIL import Image

from fmnist.training.config import TrainConfig
from tests.hostile import assert_kept_promise, fifo, listing
from tests.test_fuzz_cli import EXAMPLES, FUZZ, json_values, ladder_record

FEW = settings(FUZZ, max_examples=max(2, EXAMPLES // 2))
WEIGHTS = Path(__file__).resolve().parents[1] / "src" / "fmnist" / "weights"


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    base = tmp_path_factory.mktemp("fuzz-outputs")
    p = {"base": base, "afile": base / "afile", "empty": base / "empty", "fifo": base / "pipe"}
    p["afile"].write_text("x")
    p["empty"].mkdir()
    fifo(p["fifo"])
    for name, seed in (("a", 0), ("b", 1)):
        p[name] = base / f"{name}.json"
        p[name].write_text(json.dumps(ladder_record(seed)))
    p["image"] = base / "item.png"
    pixels = np.random.default_rng(0).random((28, 28)) * 255
    Image.fromarray(pixels.astype("uint8")).save(p["image"])
    return p


# places no output may go, and names a hostile user types
HOSTILE = ["", ".", "..", "/", "/proc/x", "/proc/self", "{afile}", "{afile}/x", "{fifo}",
           "{fifo}/x", "{empty}/../afile", "/dev/null/x", "x" * 300, "a/" * 50 + "x", "-",
           "x\ny", "out/", "ü" * 200]  # fmt: skip
# a relative name of the working folder, never leaving it (no '..', no leading '/')
relative = st.text(
    alphabet=st.sampled_from(list("ab.-_ /\n\t*?$;|'\"\\`é😀")), min_size=1, max_size=12
).filter(lambda t: not t.startswith(("/", "-")) and ".." not in t)
paths = st.one_of(st.sampled_from(HOSTILE), relative)

# (command line with {names} of `places` and {out} for the output; the output's flag). A
# command whose output is fine would start minutes of work: a late flag is refused instead,
# so every case ends before the work, at the output or at that flag.
WRITERS = {
    "audit": (["audit", "--quick", "--folds", "1", "--out", "{out}"], "--out"),
    "explain": (
        ["explain", "--model", "default", "--method", "gradcam", "{image}", "--out", "{out}"],
        "--out",
    ),  # fmt: skip
    "robustness": (
        ["robustness", "--model", "default", "--seed", "-1", "--figure", "{out}"],
        "--figure",
    ),  # fmt: skip
    "merge": (["bench", "--merge", "{a}", "{b}", "--json", "{out}"], "--json"),
    "export": (
        ["data", "--export", "csv", "{out}", "--data-dir", "{empty}", "--no-download"],
        "--export",
    ),  # fmt: skip
}


def run_planted(cli, argv: list[str], planted: dict[str, str], timeout: float = 120):
    """Run `argv` in an empty folder where `planted` (name: "folder", "fifo" or "file") was
    made first; the promise is kept against that folder as planted."""
    with tempfile.TemporaryDirectory() as cwd:
        cwd = Path(cwd)
        for name, kind in planted.items():
            path = cwd / name
            path.parent.mkdir(parents=True, exist_ok=True)
            {"folder": path.mkdir, "fifo": lambda p=path: fifo(p),
             "file": lambda p=path: p.write_text("x")}[kind]()  # fmt: skip
        before = listing(cwd)
        result = cli(argv, cwd=cwd, timeout=timeout)
        assert_kept_promise(result, argv[0], cwd, before)
        for name, kind in planted.items():
            assert kind != "fifo" or os.path.exists(cwd / name)
        return result


@FEW
@given(writer=st.sampled_from(sorted(WRITERS)), path=paths)
def test_output_paths_of_the_newer_commands(cli, places, writer, path):
    line, _ = WRITERS[writer]
    out = path.format(**places) if "{" in path else path
    argv = [out if part == "{out}" else part.format(**places) for part in line]
    result = run_planted(cli, argv, {})
    assert ".tmp" not in result.stderr and "fmnist-write-test" not in result.stderr
    if writer in ("audit", "robustness", "export"):
        assert result.rc == 2  # refused at the output, or at the late flag


# the files an output folder will hold, an obstacle planted at one of them
INSIDE = {
    "audit": ["audit.json", "audit.html", "label_suspects.png", "label_issues.csv"],
    "explain": ["000-item-explain.png"],
}


@FEW
@given(
    writer=st.sampled_from(sorted(INSIDE)),
    data=st.data(),
    obstacle=st.sampled_from(["folder", "fifo"]),
    depth=st.sampled_from(["out", "out/deeper"]),
)
def test_obstacles_inside_an_output_folder(cli, places, writer, data, obstacle, depth):
    name = data.draw(st.sampled_from(INSIDE[writer]))
    line, _ = WRITERS[writer]
    argv = [depth if part == "{out}" else part.format(**places) for part in line]
    result = run_planted(cli, argv, {f"{depth}/{name}": obstacle, "out/keep": "file"})
    assert result.rc == 2 and f"{depth}/{name}" in result.stderr


FIELDS = [f.name for f in TrainConfig.__dataclass_fields__.values()] + ["junk"]
SHELL = st.sampled_from(["x; rm -rf ~", "$(id)", "`id`", "a|b", "a\nb", "'", '"', "-", "--lr",
                         "a b", "*", "", "é"])  # fmt: skip


@FEW
@given(
    config=st.dictionaries(st.sampled_from(FIELDS), st.one_of(json_values, SHELL), max_size=4),
    kind=st.sampled_from(["description", "summary"]),
)
@example(config={"recipe": ["seed"]}, kind="summary")  # a list is not a recipe's name
@example(config={"recipe": "a|b; id", "epochs": 3}, kind="description")
def test_garbled_settings_in_records_for_results(cli, tmp_path_factory, config, kind):
    d = tmp_path_factory.mktemp("record")
    if kind == "description":
        record = json.loads((WEIGHTS / "default.json").read_text())
        record["record"]["config"].update(config)
    else:
        record = {"config": config, "n": 2, "train_s": {"mean": 10.0},
                  "test_accuracy": {"mean": 0.9, "values": [0.89, 0.91]}}  # fmt: skip
    path = d / "record.json"
    path.write_text(json.dumps(record))
    result = run_planted(cli, ["results", str(path)], {})
    if result.rc == 0:
        lines = result.stdout.strip().splitlines()
        assert len(lines) == 3
        assert len(re.findall(r"(?<!\\)\|", lines[2])) == 9  # one row of eight cells
        words = shlex.split(lines[2].rsplit("`", 2)[1].replace("\\|", "|"))
        assert words[:2] == ["fmnist", "train"]
        recipe = config.get("recipe")
        if isinstance(recipe, str) and recipe == " ".join(recipe.split()) and "|" not in recipe:
            assert recipe == "seed" or words[words.index("--recipe") + 1] == recipe
