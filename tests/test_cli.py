"""The command line as a user meets it: real processes, exit codes, one-line errors.

`python -m fmnist` itself starts in a few tests; the rest run the same `main` in a process
forked from one that has imported the package (tests/cliserver.py), without a second's
start each."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmnist import data
from fmnist.checkpoint import load_model
from fmnist.errors import FmnistError
from fmnist.evaluate import infer

from .idx import synthetic_set, write_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fmnist(*args, env=None, cwd=None):
    full_env = {**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "fmnist", *map(str, args)],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd or ROOT,
        timeout=300,
    )


@pytest.fixture
def forked(cli):
    def run(*args, cwd=ROOT):
        res = cli(list(args), cwd=cwd, timeout=300)
        assert not res.hung, args
        return subprocess.CompletedProcess(args, res.rc, res.stdout, res.stderr)

    return run


def assert_user_error(res, *fragments):
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.slow
def test_data_reports_source_checksums_and_counts():
    res = fmnist("data", "--no-download")
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("verified") == 4
    assert "Ankle boot" in res.stdout and "60000" in res.stdout and "10000" in res.stdout


def test_evaluate_json(tiny_run, forked):
    res = forked("evaluate", tiny_run.run_dir, "--json", "--no-download")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["test_accuracy"] == pytest.approx(tiny_run.metrics["test_accuracy"])
    assert len(out["confusion_matrix"]) == 10


def test_evaluate_text_and_model_file(tiny_run, forked):
    res = forked("evaluate", tiny_run.run_dir / "model.safetensors", "--no-download")
    assert res.returncode == 0, res.stderr
    assert "precision" in res.stdout and "confusion matrix" in res.stdout


def test_bad_flag(forked):
    assert_user_error(forked("train", "--epochs", "many"), "--epochs", "invalid int")


@pytest.mark.parametrize("argv", [["predict", "x.png", "--top-k=--"], ["train", "--epochs=--"]])
def test_a_flag_given_only_dashes_is_a_missing_value(forked, argv):
    # argparse alone hands such a flag an empty list, whatever its type
    assert_user_error(forked(*argv), argv[-1].split("=")[0], "expected one argument")


def test_an_error_naming_a_line_break_stays_one_line(forked, tmp_path):
    assert_user_error(
        forked("tune", "--storage", "nope://a\nb", "--out", tmp_path / "t", "--no-download"),
        "nope://a b",
    )


def test_unknown_command():
    assert_user_error(fmnist("fly"), "invalid choice")


def test_unknown_model(forked):
    assert_user_error(forked("train", "--model", "nope", "--no-download"), "seed_cnn")


def test_unwritable_out(tmp_path, forked):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_user_error(forked("train", "--out", blocker / "run"), str(blocker / "run"))


def test_missing_data(tmp_path):
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    res = fmnist("data", "--data-dir", tmp_path / "nothing", "--no-download", env=env)
    assert_user_error(res, "dataset-fashion-mnist")


def test_corrupt_data(tmp_path, forked):
    d = write_set(tmp_path / "d", synthetic_set())
    assert_user_error(forked("data", "--data-dir", d), "checksum mismatch", "delete")
    blob = (d / "train-images-idx3-ubyte.gz").read_bytes()
    (d / "train-images-idx3-ubyte.gz").write_bytes(blob[:1000])
    assert_user_error(forked("data", "--data-dir", d), "truncated gzip")


def test_evaluate_a_file_that_is_not_a_model(tmp_path, forked):
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a model")
    (tmp_path / "x.json").write_text("{}")
    assert_user_error(forked("evaluate", bad), "x.json")
    assert_user_error(forked("evaluate", tmp_path / "missing"), "no such file")


def test_model_architecture_script():
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "model_architecture.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    assert res.returncode == 0, res.stderr
    assert "Total params: 107,598" in res.stdout


def checkout_copy(folder: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new, not ignored), committed
    in a repository of their own at `folder`."""
    listed = (
        subprocess.run(
            ["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, listed):
        if os.path.isfile(os.path.join(ROOT, name)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), folder / name)
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "copy"], check=True)
    return folder


@pytest.mark.slow
def test_the_tutorial_script_writes_its_files_and_leaves_the_checkout_clean(tmp_path):
    repo = checkout_copy(tmp_path / "repo")
    res = subprocess.run(
        [sys.executable, "train_model.py", "--epochs", "1", "--train-limit", "6000", "--no-report"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=repo,
    )
    assert res.returncode == 0, res.stderr
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True
    )
    assert status.stdout == ""  # everything it wrote is ignored
    models, figures = repo / "models", repo / "plots"
    assert sorted(p.name for p in models.iterdir()) == [
        f"fashion_mnist_model{s}" for s in (".h5", ".json", ".onnx", ".safetensors")
    ]
    for name in ("sample_images.png", "training_curves.png", "confusion_matrix.png"):
        assert (figures / name).read_bytes().startswith(b"\x89PNG")
        assert str(figures / name) in res.stdout  # it says where
    assert str(models / "fashion_mnist_model.h5") in res.stdout
    info = json.loads((models / "fashion_mnist_model.json").read_text())
    assert info["metrics"]["epochs"] == 1 and info["metrics"]["test_accuracy"] > 0.5
    # the four files of the model, written together, agree on the test set
    ds = data.load(download=False)
    x = ds.test_images[:2000].astype(np.float32)[:, None] / 255
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(models / "fashion_mnist_model.onnx"))
    onnx_pred = session.run(None, {session.get_inputs()[0].name: x})[0].argmax(1)
    model = load_model(models / "fashion_mnist_model.safetensors")
    torch_pred = infer(model, ds.test_images[:2000]).argmax(1)
    assert (onnx_pred == torch_pred.numpy()).mean() > 0.999
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    k = keras.models.load_model(models / "fashion_mnist_model.h5", compile=False)
    keras_pred = np.asarray(k.predict(x.transpose(0, 2, 3, 1), verbose=0)).argmax(1)
    assert (keras_pred == torch_pred.numpy()).mean() > 0.999


def test_the_default_model_is_written_whole_or_not_at_all(tmp_path, monkeypatch, tiny_run):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "train_model", os.path.join(ROOT, "train_model.py")
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    before = {}
    for suffix in script.SUFFIXES:
        (tmp_path / f"m{suffix}").write_text("old")
        before[suffix] = "old"

    def fail(model_path, fmt, out=None):
        if fmt == "keras":
            raise FmnistError("keras export failed")
        return real(model_path, fmt, out)

    real = script.export
    monkeypatch.setattr(script, "export", fail)
    with pytest.raises(FmnistError):
        script.save_together(tiny_run.model, tmp_path / "m.safetensors", {}, {})
    assert {s: (tmp_path / f"m{s}").read_text() for s in script.SUFFIXES} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"m{s}" for s in before)


def test_benchmarks_refuse_an_unwritable_results_file_before_measuring(tmp_path, forked):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for command in ("bench", "baselines"):
        res = forked(command, "--json", blocker / "out.json")
        assert_user_error(res, "cannot write the results")


# One dialect: a trained model is --model MODEL (default best) on every command that uses
# one; evaluate, explain and robustness still take it as their first positional.


def parsed(*argv):
    from fmnist.cli import build_parser

    return build_parser().parse_args([str(a) for a in argv])


@pytest.mark.parametrize(
    ("argv", "model"),
    [
        (["evaluate"], "best"),
        (["evaluate", "default"], "default"),
        (["evaluate", "--model", "best"], "best"),
        (["evaluate", "--model", "default", "--json"], "default"),
        (["robustness"], "best"),
        (["robustness", "default"], "default"),
        (["robustness", "--model", "default"], "default"),
    ],
)
def test_model_flag_or_positional(argv, model):
    from fmnist.cli.common import chosen_model

    args = parsed(*argv)
    assert chosen_model(args, args.model_positional) == model


@pytest.mark.parametrize("command", ["predict", "serve", "export"])
def test_model_flag_defaults_to_best(command):
    extra = {"predict": ["x.png"], "serve": [], "export": ["--format", "onnx"]}[command]
    assert parsed(command, *extra).model == "best"
    assert parsed(command, "--model", "default", *extra).model == "default"


def test_explain_takes_a_positional_model_only_where_it_names_one(tiny_run, tmp_path):
    from fmnist.cli.trust import model_and_images

    run, weights = tiny_run.run_dir, tiny_run.run_dir / "model.safetensors"
    cases = [
        (["a.png"], ("best", ["a.png"])),
        (["a.png", "b.png"], ("best", ["a.png", "b.png"])),
        (["--model", "default", "a.png"], ("default", ["a.png"])),
        (["--model", "default", "a.png", "b.png"], ("default", ["a.png", "b.png"])),
        (["default", "a.png"], ("default", ["a.png"])),
        (["best", "a.png", "b.png"], ("best", ["a.png", "b.png"])),
        ([run, "a.png"], (str(run), ["a.png"])),
        ([weights, "a.png"], (str(weights), ["a.png"])),
        ([tmp_path, "a.png"], ("best", [str(tmp_path), "a.png"])),  # a folder of images
    ]
    for argv, expected in cases:
        assert model_and_images(parsed("explain", *argv)) == expected, argv


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["evaluate", "--model", "best", "default"], "two models"),
        (["robustness", "default", "--model", "best"], "two models"),
        (["explain", "--model", "best", "default", "a.png"], "two models"),
        (["explain", "--model", "default", "best"], "two models"),
        (["explain", "default"], "give the images"),
    ],
)
def test_a_model_given_twice_or_alone_is_one_line(forked, argv, fragment):
    assert_user_error(forked(*argv), fragment)


def test_evaluate_with_the_model_flag(tiny_run, forked):
    res = forked("evaluate", "--model", tiny_run.run_dir, "--json", "--no-download")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["model"] == str(tiny_run.run_dir)
    assert out["test_accuracy"] == pytest.approx(tiny_run.metrics["test_accuracy"])


@pytest.mark.parametrize("command", ["bench", "baselines"])
@pytest.mark.parametrize("flag", ["--out", "--json"])
def test_a_results_file_is_out_and_json_still_works(command, flag):
    assert parsed(command, flag, "r.json").out == "r.json"


def test_version():
    res = fmnist("--version")
    assert res.returncode == 0, res.stderr
    from fmnist import __version__

    assert res.stdout.strip() == f"fmnist {__version__}"


def test_models_says_what_each_is(forked):
    from fmnist.models import describe, list_models

    res = forked("models")
    assert res.returncode == 0, res.stderr
    for name in list_models():
        (line,) = [ln for ln in res.stdout.splitlines() if ln.split()[:1] == [name]]
        assert line.endswith(describe(name)), line


def test_output_cut_short_by_its_reader_is_quiet():
    # the reader went away before a byte was read (fmnist ... | head): no error, status 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        res = subprocess.run(
            [sys.executable, "-m", "fmnist", "models", "--summary"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src")},
            timeout=300,
        )
    finally:
        os.close(write_end)
    assert (res.returncode, res.stderr) == (0, "")
