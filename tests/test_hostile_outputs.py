"""Outputs under hostile use (issue 33, classes 7-13): every file and folder a command will
write is checked before its work starts and nothing is made before the inputs are; a named
pipe or a device at an output path is refused and left as it was (the null device takes
what it is given); JSON is strict, with null where a figure is undefined; `results` trusts
no record's settings; a reader that closes the pipe early ends the command quietly; a
killed ladder takes its temporary folder with it."""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from fmnist import FmnistError
from tests.hostile import assert_kept_promise, fifo, listing, write_file
from tests.test_fuzz_cli import ladder_record

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "fmnist" / "weights"


def strict(text: str):
    """JSON as RFC 8259 has it: NaN and Infinity are not JSON."""

    def refuse(name):
        raise AssertionError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def record_with(**config) -> dict:
    """The packaged default model's description with settings of its record replaced."""
    info = json.loads((WEIGHTS / "default.json").read_text())
    info["record"]["config"].update(config)
    return info


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("outputs")
    f = {"base": base, "empty": base / "empty", "afile": write_file(base / "afile", "x")}
    f["empty"].mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        f[name] = write_file(base / f"{name}.json", json.dumps(ladder_record(seed)))
    rng = np.random.default_rng(0)
    for name in ("item", "zitem"):
        f[name] = base / f"{name}.png"
        Image.fromarray((rng.random((28, 28)) * 255).astype("uint8")).save(f[name])
    # a model that always answers T-shirt/top: the first ten test images hold none
    zero = base / "zero"
    zero.mkdir()
    (zero / "model.json").write_text((WEIGHTS / "default.json").read_text())
    state = load_file(WEIGHTS / "default.safetensors")
    state["classifier.7.weight"].zero_()
    state["classifier.7.bias"].copy_(torch_one_hot())
    save_file(state, zero / "model.safetensors")
    f["zero"] = zero
    every = {"format": "fmnist-audit/1", "flagged_test": list(range(10_000))}
    f["flags_all"] = write_file(base / "flags_all.json", json.dumps(every))
    records = {
        "shell": record_with(recipe="x; rm -rf ~", model_args={"width": 8}),
        "recipe_list": record_with(recipe=["seed"]),
        "epochs_text": record_with(epochs="3; ls"),
        "args_nan": record_with(model_args={"width": float("nan")}),
        "lr_bool": record_with(lr=True),
    }
    for name, rec in records.items():
        f[name] = write_file(base / f"{name}.json", json.dumps(rec))
    return f


def torch_one_hot():
    import torch

    bias = torch.full((10,), -10.0)
    bias[0] = 10.0
    return bias


# ----------------------------------------------------------------------------
# 7: strict JSON, null where a figure is undefined
# ----------------------------------------------------------------------------


@pytest.mark.slow  # 10,000 test images
def test_an_audit_that_flags_every_test_image_leaves_no_accuracy_not_nan(cli, files, tmp_path):
    argv = ["evaluate", "--model", "default", "--json", "--audit", str(files["flags_all"])]
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert_kept_promise(result, "evaluate", tmp_path, set())
    assert result.rc == 0, result.stderr
    assert strict(result.stdout)["unflagged"] == {"images": 0, "test_accuracy": None}


@pytest.mark.slow
def test_a_model_with_zero_accuracy_has_no_relative_robustness(cli, files, tmp_path):
    argv = ["robustness", "--model", str(files["zero"]), "--limit", "10", "--corruptions",
            "gaussian_noise", "--severities", "1"]  # fmt: skip
    result = cli([*argv, "--json"], cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr
    record = strict(result.stdout)
    assert record["clean"] == 0.0 and record["relative"] is None
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert result.rc == 0 and "no clean image right" in result.stdout, result.stderr


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_the_json_writer_refuses_what_is_not_a_number_and_writes_nothing(tmp_path, bad):
    from fmnist.files import write_json

    path = tmp_path / "x.json"
    with pytest.raises(FmnistError, match=rf"x.json: a.b.1 is {bad}, not a finite number"):
        write_json(path, {"a": {"b": [1.0, bad]}})
    assert listing(tmp_path) == set()
    write_json(path, {"a": None})
    assert strict(path.read_text()) == {"a": None}


# ----------------------------------------------------------------------------
# 8-10: one output plan, checked before the work; special files refused
# ----------------------------------------------------------------------------

MERGE = "bench --merge {a} {b} --json"
EXPLAIN = "explain --model default --method gradcam {item} {zitem} --out ex"
AUDIT = "audit --quick --folds 2 --out aud"

# (command line with {names} from `files`, what is planted in the working folder first,
# a fragment the one-line error holds)
CASES = [
    # folders made before the inputs were checked
    ("bench --repeats 1 --out new/x.json --data-dir {empty} --no-download", {}, "missing"),
    ("baselines --out new/x.json --only bogus", {}, "unknown baseline bogus"),
    ("baselines --out new/x.json --data-dir {empty} --no-download", {}, "missing"),
    ("data --export png new/dir --data-dir {empty} --no-download", {}, "missing"),
    (
        "data --export csv full --data-dir {empty} --no-download",
        {"full/x": "file"},
        "not an empty folder",
    ),
    ("explain --model default {item} --out {afile}/x", {}, "a file, not a folder"),
    # names inside an output folder, checked before the first image is read
    (EXPLAIN, {"ex/001-zitem-explain.png/": "folder"}, "is a folder"),
    (EXPLAIN, {"ex/000-item-explain.png": "fifo"}, "named pipe"),
    (AUDIT, {"aud/audit.json/": "folder"}, "is a folder"),
    (AUDIT, {"aud/label_suspects.png": "fifo"}, "named pipe"),
    # a folder where a file goes, '.' above all
    (MERGE + " .", {}, "a folder; give a file name"),
    (MERGE + " out", {"out/": "folder"}, "a folder; give a file name"),
    (MERGE + " ..", {}, "a folder; give a file name"),
    ("bench --repeats 1 --json . --data-dir {empty} --no-download", {}, "a folder"),
    ("robustness --model default --figure plots", {"plots/": "folder"}, "a folder"),
    # special files at an output path
    (MERGE + " p.json", {"p.json": "fifo"}, "named pipe"),
    (MERGE + " new/p.json", {}, None),  # refused below by its records: nothing made
    ("robustness --model default --figure p.png", {"p.png": "fifo"}, "named pipe"),
    # records whose settings a row would print into a command
    ("results {recipe_list}", {}, "'recipe' must be a string"),
    ("results {epochs_text}", {}, "'epochs' must be a whole number"),
    ("results {args_nan}", {}, "model_args"),
    ("results {lr_bool}", {}, "'lr' must be a finite number"),
]


def plant(cwd: Path, what: dict) -> None:
    for name, kind in what.items():
        path = cwd / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "folder":
            path.mkdir()
        elif kind == "fifo":
            fifo(path)
        else:
            path.write_text("x")


@pytest.mark.parametrize(("line", "planted", "fragment"), CASES,
                         ids=[f"{c[0][:50]}-{sorted(c[1])}" for c in CASES])  # fmt: skip
def test_outputs_are_refused_before_any_work(cli, files, tmp_path, line, planted, fragment):
    argv = [part.format(**files) for part in line.split()]
    if fragment is None:  # records that do not merge: the output is fine, the input is not
        argv[2] = str(files["afile"])
        fragment = "afile"
    plant(tmp_path, planted)
    before = listing(tmp_path)
    result = cli(argv, cwd=tmp_path, timeout=60)  # audit's work would take minutes
    assert_kept_promise(result, argv[0], tmp_path, before)
    assert result.rc == 2, result.stdout[-500:]
    assert fragment in result.stderr
    assert ".tmp" not in result.stderr and "fmnist-write-test" not in result.stderr
    for name, kind in planted.items():  # a named pipe stays one; nothing is replaced
        if kind == "fifo":
            assert stat.S_ISFIFO(os.lstat(tmp_path / name).st_mode)


@pytest.mark.parametrize(
    ("name", "figure"),
    [
        (b"a\xff", b"a\xff"),  # bytes that are not UTF-8
        ("😀" * 60, "😀" * 50),  # 240 bytes: the figure's name keeps within 255
    ],
    ids=["not-utf8", "long"],
)
def test_an_image_name_of_any_bytes_is_explained_and_printed(cli, files, tmp_path, name, figure):
    name = os.fsdecode(name) + ".png"
    (tmp_path / name).write_bytes(files["item"].read_bytes())
    argv = ["explain", "--model", "default", "--method", "gradcam", name, "--out", "ex"]
    result = cli(argv, cwd=tmp_path, timeout=60)  # stdout here is strict UTF-8
    assert_kept_promise(result, "explain", tmp_path, {name})
    assert result.rc == 0, result.stderr
    assert listing(tmp_path / "ex") == {f"000-{os.fsdecode(figure)}-explain.png"}


def device(path: Path, minor: int) -> Path:
    """A character device of the memory driver (1, minor): 3 is null, 5 is zero."""
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("making a device node needs CAP_MKNOD")
    return path


def test_the_null_device_takes_the_output_and_stays_a_device(cli, files, tmp_path):
    null = device(tmp_path / "null", 3)
    argv = ["bench", "--merge", str(files["a"]), str(files["b"]), "--json", str(null)]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert result.rc == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(null).st_mode) and listing(tmp_path) == {"null"}


def test_another_device_is_refused_and_stays_a_device(cli, files, tmp_path):
    zero = device(tmp_path / "zero", 5)
    argv = ["bench", "--merge", str(files["a"]), str(files["b"]), "--json", str(zero)]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "bench", tmp_path, {"zero"})
    assert result.rc == 2 and "a device" in result.stderr
    assert stat.S_ISCHR(os.lstat(zero).st_mode)


def test_a_merge_makes_its_folders_only_when_it_writes(cli, files, tmp_path):
    argv = ["bench", "--merge", str(files["a"]), str(files["b"]), "--json", "new/deeper/m.json"]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert result.rc == 0, result.stderr
    assert strict((tmp_path / "new/deeper/m.json").read_text())["rungs"]


# (an output as keywords of fmnist.files.Output, with {names} from `files`; the fragment)
PLANS = [
    ({"path": ""}, "give a file name"),
    ({"path": ".", "flag": "--json"}, "--json .: a folder"),
    ({"path": "x/", "flag": "--out"}, "a folder"),
    ({"path": "/"}, "a folder"),
    ({"path": "{afile}/x"}, "is not a folder"),
    ({"path": "{afile}/x", "new_folders": True}, "a file, not a folder"),
    ({"path": "/proc/x.json"}, "cannot write in /proc"),
    ({"path": "n" * 300}, "too long"),
    ({"path": "{afile}", "folder": True}, "is a file, not a folder"),
    ({"path": "{base}", "folder": True, "fresh": True}, "not an empty folder"),
    ({"path": "{base}", "folder": True, "inside": ("afile", "empty")}, "empty is a folder"),
    ({"path": "{base}", "folder": True, "inside": ("n" * 256,)}, "too long"),
    ({"path": "new/x\0y"}, "not a name"),
]


@pytest.mark.parametrize(("plan", "fragment"), PLANS, ids=[p[0]["path"][:30] for p in PLANS])
def test_the_output_plan_refuses_in_one_line_and_makes_nothing(
    files, tmp_path, monkeypatch, plan, fragment
):
    from fmnist.files import Output, check_outputs

    plan = Output(**{**plan, "path": plan["path"].format(**files)})
    monkeypatch.chdir(tmp_path)
    before = listing(files["base"])
    with pytest.raises(FmnistError, match=fragment) as caught:
        check_outputs(Output("fine.json"), plan)
    assert "\n" not in str(caught.value)
    assert listing(tmp_path) == set() and listing(files["base"]) == before


def test_a_failed_write_names_the_users_path_and_leaves_no_temporary_file(tmp_path):
    from fmnist.files import atomic_write

    def full_disk(tmp):
        Path(tmp).write_text("half")
        raise OSError(28, "No space left on device")

    (tmp_path / "kept.json").write_text("before")
    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "kept.json", full_disk)
    assert caught.value.filename == str(tmp_path / "kept.json")
    assert (tmp_path / "kept.json").read_text() == "before" and listing(tmp_path) == {"kept.json"}
    (tmp_path / "taken").mkdir()
    with pytest.raises(FmnistError, match="taken: a folder, not a regular file"):
        atomic_write(tmp_path / "taken", lambda tmp: Path(tmp).write_text("x"))


@pytest.mark.parametrize("when", ["made", "removed"])
def test_a_signal_as_the_temporary_file_comes_or_goes_leaves_none(tmp_path, monkeypatch, when):
    # Ctrl-C arrives the moment the temporary file exists, or as it is being removed after a
    # failed write: the file is still removed, and the interrupt still ends the write
    import fmnist.writing as writing

    make, exists = writing.tempfile.mkstemp, writing.os.path.exists

    def ours(path) -> bool:  # the patched functions are the modules' own: others call them too
        return Path(path).name.startswith(".history.csv.")

    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # whichever thread the kernel chose has run the handler's C half
        os.kill(os.getpid(), 0)  # sends nothing; checks for signals as any Python line may

    def mkstemp(*args, **kwargs):
        fd, made = make(*args, **kwargs)
        if when == "made" and ours(made):
            interrupt()
        return fd, made

    def exists_then_interrupted(path):
        found = exists(path)
        if when == "removed" and ours(path):
            interrupt()
        return found

    def fail(tmp):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writing.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(writing.os.path, "exists", exists_then_interrupted)
    # another thread is alive (a server's, a data loader's): the kernel may hand a signal
    # sent to the process to that thread, so blocking it in this thread alone is not enough
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            writing.atomic_write(tmp_path / "history.csv", fail)
    finally:
        done.set()
        other.join()
    assert listing(tmp_path) == set()


def test_a_failed_download_takes_back_the_folder_it_made(tmp_path):
    from fmnist import data

    target = tmp_path / "new" / "data"
    nowhere = (tmp_path / "mirror").as_uri()  # a mirror that holds nothing
    with pytest.raises(data.DataError, match="could not download"):
        data.fetch(target, mirrors=(nowhere,), timeout=1, log=lambda *a: None)
    assert listing(tmp_path) == set()


def test_a_failed_export_takes_back_the_folders_it_made(dataset, tmp_path, monkeypatch):
    from fmnist import data_export

    def full_disk(folder, split, images, labels):
        (folder / f"{split}.csv").write_text("label,pixel1\n")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data_export, "write_csv", full_disk)
    with pytest.raises(OSError, match="No space left"):
        data_export.export(dataset, "csv", tmp_path / "a" / "b" / "out")
    assert listing(tmp_path) == set()


# ----------------------------------------------------------------------------
# 11: results
# ----------------------------------------------------------------------------


def test_results_reads_the_packaged_models(cli, tmp_path):
    argv = ["results", str(WEIGHTS / "best.json"), str(WEIGHTS / "default.json")]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert result.rc == 0, result.stderr
    rows = result.stdout.strip().splitlines()[2:]
    assert len(rows) == 2 and "`wide_cnn` | 288,170 |" in rows[0] and "94.72%" in rows[0]


def test_results_quotes_what_a_record_says(cli, files, tmp_path):
    result = cli(["results", str(files["shell"])], cwd=tmp_path, timeout=60)
    assert result.rc == 0, result.stderr
    row = result.stdout.strip().splitlines()[2]
    line = row.rsplit("`", 2)[1]
    words = shlex.split(line)
    assert words[:4] == ["fmnist", "train", "--recipe", "x; rm -rf ~"]
    assert json.loads(words[words.index("--model-args") + 1]) == {"width": 8}


# ----------------------------------------------------------------------------
# 12, 13: a closed pipe, a kill
# ----------------------------------------------------------------------------


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


@pytest.mark.slow
# what fmnist prints itself, and what argparse prints (test_cli.py checks `fmnist models`)
@pytest.mark.parametrize("argv", [["results", str(WEIGHTS / "default.json")], ["--help"]])
def test_a_reader_that_leaves_early_ends_the_command_quietly(argv):
    # fmnist ... | head -n 0: the reader is gone before the first line is written
    writer = subprocess.Popen([sys.executable, "-m", "fmnist", *argv], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=environment())  # fmt: skip
    reader = subprocess.run(["head", "-n", "0"], stdin=writer.stdout, check=True)
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=120) == 0 and reader.returncode == 0
    assert stderr == ""


LADDER = """
import os, sys, time
from fmnist.analysis import ladder, probe
from fmnist.cli import main

probe.calibration = lambda device: {{}}

def rung(ds, rung, n, *, out_dir, **kwargs):
    (out_dir / "run").mkdir()
    print("training", flush=True)
    time.sleep(60)

ladder.run_rung = rung
sys.exit(main(["bench", "--ladder", "--rungs", "90", "--seeds", "1", "--compare",
               "--json", "{out}"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM])  # Ctrl-C: the same handler, test_faults_signals
def test_a_killed_ladder_removes_its_temporary_folder(tmp_path, sig):
    temp = tmp_path / "tmp"
    temp.mkdir()
    script = textwrap.dedent(LADDER).format(out=tmp_path / "out.json")
    ladder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                              env=environment(TMPDIR=str(temp)))  # fmt: skip
    try:
        while (line := ladder.stdout.readline()) and line != "training\n":
            pass
        assert line == "training\n", ladder.stderr.read()
        # the ladder's folder and the run in it (torch may keep a cache of its own there)
        made = {p for p in listing(temp) if not p.startswith("torchinductor")}
        assert len(made) == 2, made
        ladder.send_signal(sig)
        rc = ladder.wait(timeout=60)
    finally:
        ladder.kill()
    assert rc == 128 + sig
    assert ladder.stderr.read().strip().splitlines() == [
        "fmnist bench: interrupted" if sig == signal.SIGINT else "fmnist bench: stopped by SIGTERM"
    ]
    assert not made & listing(temp) and not (tmp_path / "out.json").exists()


def test_a_signal_already_ignored_stays_ignored():
    from fmnist.cli.common import Stopped, stopped_by_signals

    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stopped_by_signals():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            with pytest.raises(Stopped):
                os.kill(os.getpid(), signal.SIGTERM)
                math.factorial(10)  # a few bytecodes for the handler to run
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGHUP, before)
