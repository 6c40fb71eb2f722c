"""A model of your own code (fmnist.models.user): trained from examples/, recorded with its
source's path and SHA-256, loaded back only from code named again, refused when that code
changed; bad code and bad arguments are one line and exit 2 before any training."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fmnist
from fmnist import FmnistError
from fmnist.checkpoint import CheckpointError, load_model, read_description
from fmnist.models.user import build_user_model, user_model_info
from tests.hostile import assert_kept_promise, listing, write_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TRAIN = ["--train-limit", "300", "--epochs", "1", "--batch-size", "64", "--no-report"]


@pytest.fixture(scope="module")
def trained(cli, tmp_path_factory):
    """examples/mlp.py copied out, trained for one epoch on 300 images through the CLI."""
    base = tmp_path_factory.mktemp("user")
    code = base / "mlp.py"
    shutil.copy(EXAMPLES / "mlp.py", code)
    argv = ["train", "--model", f"{code}:MLP", "--model-args", '{"width": 32}', *TRAIN]
    result = cli([*argv, "--out", str(base / "run")], cwd=base, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    image = base / "item.png"
    Image.fromarray((np.random.default_rng(0).random((28, 28)) * 255).astype("uint8")).save(image)
    return {"base": base, "code": code, "run": base / "run", "image": image}


def test_examples_are_small_modules_with_defaults():
    for name, cls in (("mlp.py", "MLP"), ("small_resnet.py", "SmallResNet")):
        path = EXAMPLES / name
        assert len(path.read_text().splitlines()) < 40
        model = build_user_model(f"{path}:{cls}")  # checked on one (8, 1, 28, 28) batch
        assert model.fmnist_user["class"] == cls and model.fmnist_user["args"] == {}


def test_the_run_records_the_code(trained):
    digest = hashlib.sha256(trained["code"].read_bytes()).hexdigest()
    record = json.loads((trained["run"] / "config.json").read_text())
    assert record["config"]["model"] == f"{trained['code']}:MLP"
    assert record["config"]["model_args"] == {"width": 32}
    user = record["user_model"]
    assert user == {
        "spec": f"{trained['code']}:MLP",
        "path": str(trained["code"].resolve()),
        "sha256": digest,
        "class": "MLP",
        "args": {"width": 32},
    }
    info = read_description(trained["run"])  # the model-description validator passes it
    assert info["model"] == "user" and info["args"] == {"width": 32}
    assert info["user"]["sha256"] == digest and info["user"]["path"] == user["path"]
    assert user_model_info(user["spec"], {"width": 32}) == user


def test_evaluate_and_predict_with_the_code_named(cli, trained, tmp_path):
    code = ["--model-code", str(trained["code"])]
    result = cli(["evaluate", str(trained["run"]), *code, "--json"], cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    recorded = json.loads((trained["run"] / "metrics.json").read_text())["test_accuracy"]
    assert json.loads(result.stdout)["test_accuracy"] == pytest.approx(recorded, abs=1e-6)
    argv = ["predict", "--model", str(trained["run"]), *code, str(trained["image"]), "--json"]
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    assert len(json.loads(result.stdout)[0]["predictions"]) == 3
    model = fmnist.load_model(trained["run"], model_code=trained["code"])  # the Python API
    assert model.name == f"{trained['code']}:MLP"
    assert model.predict(trained["image"]).names[0] in model.classes


def test_a_model_file_never_imports_code_by_itself(cli, trained, tmp_path):
    # a planted side effect: were fmnist to import the recorded path, the file would appear
    marker = trained["base"] / "imported"
    code = write_file(trained["base"] / "spy.py", f"open({str(marker)!r}, 'w').close()\n")
    info = json.loads((trained["run"] / "model.json").read_text())
    planted = trained["base"] / "planted"
    planted.mkdir()
    shutil.copy(trained["run"] / "model.safetensors", planted)
    info["user"]["path"], info["user"]["spec"] = str(code), f"{code}:MLP"
    (planted / "model.json").write_text(json.dumps(info))
    for run in (trained["run"], planted):
        result = cli(["evaluate", str(run)], cwd=tmp_path, timeout=120)
        assert_kept_promise(result, "evaluate", tmp_path, set())
        assert result.rc == 2 and "--model-code" in result.stderr, result.stderr
    assert (
        str(trained["code"].resolve())
        in cli(["evaluate", str(trained["run"])], cwd=tmp_path, timeout=120).stderr
    )  # the message names the file to give
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="model_code="):
        load_model(trained["run"])


def test_changed_code_is_refused_unless_allowed(cli, trained, tmp_path):
    changed = trained["base"] / "edited" / "mlp.py"
    changed.parent.mkdir()
    changed.write_text(trained["code"].read_text() + "\n# tuned since\n")
    argv = ["predict", "--model", str(trained["run"]), "--model-code", str(changed)]
    result = cli([*argv, str(trained["image"])], cwd=tmp_path, timeout=120)
    assert_kept_promise(result, "predict", tmp_path, set())
    assert result.rc == 2 and "differs" in result.stderr and "--allow-changed-code" in result.stderr
    result = cli([*argv, "--allow-changed-code", str(trained["image"])], cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    with pytest.raises(CheckpointError, match="differs"):
        load_model(trained["run"], model_code=changed)
    model = load_model(trained["run"], model_code=changed, allow_changed_code=True)
    assert model.fmnist_user["sha256"] == hashlib.sha256(changed.read_bytes()).hexdigest()


HEAD = "import torch\nfrom torch import nn\n\n\nclass Net(nn.Module):\n"
INIT = (
    "    def __init__(self):\n        super().__init__()\n        self.fc = nn.Linear(784, 10)\n\n"
)
FORWARD = "    def forward(self, x):\n        return {}\n"
BAD_CODE = {
    "no_class": ("import torch\n", "has no class Net"),
    "not_module": ("class Net:\n    pass\n", "not a torch.nn.Module subclass"),
    "syntax": ("class Net(:\n", "not valid Python"),
    "import": ("import no_such_package_here\n", "ModuleNotFoundError"),
    "constructor": (
        HEAD + "    def __init__(self):\n        raise ValueError('no')\n",
        "constructor",
    ),
    "forward_raises": (HEAD + INIT + FORWARD.format("self.fc(x)"), "input fails"),
    "wrong_shape": (HEAD + INIT + FORWARD.format("x.flatten(1)[:, :5]"), "shape (8, 5)"),
    "nan": (HEAD + INIT + FORWARD.format("self.fc(x.flatten(1)) * float('nan')"), "NaN"),
}
BAD_ARGS = [
    ("mlp.py:MLP", ["--model-args", "{width: 3"], "not JSON"),
    ("mlp.py:MLP", ["--model-args", "[64]"], "JSON object"),
    ("mlp.py:MLP", ["--model-args", '{"depth": "two"}'], "constructor"),
    # 78 billion parameters: refused on the meta device; allocated, they would be 300 GB
    ("mlp.py:MLP", ["--model-args", '{"width": 100000000}'], "parameters; the limit is"),
    ("absent.py:Net", [], "no such file"),
    ("mlp.txt:MLP", [], "not a Python file"),
    ("mlp.py:", [], "file.py:ClassName"),
]


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("code")
    shutil.copy(EXAMPLES / "mlp.py", base / "mlp.py")
    write_file(base / "mlp.txt", "")
    for name, (text, _) in BAD_CODE.items():
        write_file(base / f"{name}.py", text)
    return base


CASES = [(f"{n}.py:Net", [], fragment) for n, (_, fragment) in BAD_CODE.items()] + BAD_ARGS


@pytest.mark.parametrize(("spec", "extra", "fragment"), CASES, ids=[c[0] + c[2] for c in CASES])
def test_bad_code_and_arguments_stop_before_training(
    cli, code_dir, tmp_path, spec, extra, fragment
):
    before = listing(code_dir)
    argv = ["train", "--model", str(code_dir / spec), *extra, *TRAIN, "--out", "run"]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "train", tmp_path, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr
    assert "epoch" not in result.stdout  # refused before the first step
    assert listing(code_dir) == before  # nothing written beside the code either


@pytest.mark.slow  # the ONNX exporter's first use: about 3 s
def test_export_with_the_code_named(cli, trained, tmp_path):
    argv = ["export", "--model", str(trained["run"]), "--format", "onnx", "--out", "m.onnx"]
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert_kept_promise(result, "export", tmp_path, set())
    assert result.rc == 2 and "--model-code" in result.stderr
    result = cli([*argv, "--model-code", str(trained["code"])], cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    assert (tmp_path / "m.onnx").stat().st_size > 0


def test_resume_needs_the_code_named_again(cli, trained, tmp_path):
    # an unfinished run of a planted record: its config.json names code that would leave a
    # marker were it imported
    marker = trained["base"] / "imported_on_resume"
    spy = write_file(trained["base"] / "spy_resume.py", f"open({str(marker)!r}, 'w').close()\n")
    record = json.loads((trained["run"] / "config.json").read_text())
    record["config"]["model"] = f"{spy}:MLP"
    unfinished = trained["base"] / "unfinished"
    write_file(unfinished / "config.json", json.dumps(record))
    before = listing(unfinished)
    for extra, fragment in (
        ([], f"--model-code {trained['code'].resolve()}"),  # the file the run recorded
        (["--model-code", str(spy)], "differs"),
        (["--model-code", str(trained["base"] / "absent.py")], "no such file"),
    ):
        result = cli(["train", "--resume", str(unfinished), *extra], cwd=tmp_path, timeout=60)
        assert_kept_promise(result, "train", tmp_path, set())
        assert result.rc == 2 and fragment in result.stderr, result.stderr
    assert listing(unfinished) == before and not marker.exists()
    result = cli(["train", "--model-code", str(spy), *TRAIN], cwd=tmp_path, timeout=60)
    assert result.rc == 2 and "for --resume" in result.stderr


class Stop(Exception):
    pass


@pytest.mark.slow  # two short runs: about 2 s
def test_a_run_of_your_code_resumes_with_it(cli, trained, few_test_images, tmp_path, one_thread):
    from fmnist.training.config import make_config
    from fmnist.training.train import train

    def stop(epoch, *_):
        raise Stop

    spec = f"{trained['code']}:MLP"
    cfg = make_config("seed", model=spec, model_args={"width": 16}, epochs=2, train_limit=300)
    with pytest.raises(Stop):
        train(
            cfg, out=tmp_path / "part", dataset=few_test_images, log=lambda *a: None, on_epoch=stop
        )
    argv = ["train", "--resume", str(tmp_path / "part"), "--model-code", str(trained["code"])]
    result = cli([*argv, "--no-report"], cwd=tmp_path, timeout=120)
    assert result.rc == 0, result.stderr[-2000:]
    assert "resumed" in result.stdout and (tmp_path / "part" / "metrics.json").is_file()
    assert read_description(tmp_path / "part")["args"] == {"width": 16}


@pytest.mark.parametrize(
    ("args", "fragment"),
    [('{"num_classes": 3}', "10 classes"), ('{"junk": 1}', "no argument junk")],
)
def test_a_registry_model_takes_model_args_checked(cli, tmp_path, args, fragment):
    argv = ["train", "--model", "seed_cnn", "--model-args", args, *TRAIN, "--out", "run"]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "train", tmp_path, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr


def test_a_module_by_name(monkeypatch, tmp_path):
    package = tmp_path / "fmnist_byo_pkg"
    write_file(package / "__init__.py", "")
    write_file(package / "nets.py", (EXAMPLES / "mlp.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    model = build_user_model("fmnist_byo_pkg.nets:MLP", {"width": 8})
    info = model.fmnist_user
    assert info["path"] == str((package / "nets.py").resolve())
    assert info["sha256"] == hashlib.sha256((package / "nets.py").read_bytes()).hexdigest()
    with pytest.raises(FmnistError, match="no such module"):
        build_user_model("fmnist_byo_pkg.absent:MLP")


def plant(i, key, value):
    i[key] = value


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda i: i["user"].update(sha256="not a digest"), "field 'user'"),
        (lambda i: i["user"].pop("class"), "field 'user'"),
        (lambda i: plant(i, "user", "mlp.py"), "field 'user'"),
        (lambda i: plant(i, "args", {"width": 16}), "weights do not fit"),
        (lambda i: plant(i, "args", {"width": "wide"}), "constructor failed"),
        (lambda i: plant(i, "args", {"width": 10**9}), "the limit is"),
    ],
    ids=["digest", "no_class", "not_object", "other_width", "bad_width", "too_large"],
)
def test_planted_descriptions_of_user_models(cli, trained, tmp_path, change, fragment):
    planted = tmp_path / "planted"
    shutil.copytree(trained["run"], planted)
    info = json.loads((planted / "model.json").read_text())
    change(info)
    (planted / "model.json").write_text(json.dumps(info))
    argv = ["evaluate", str(planted), "--model-code", str(trained["code"])]
    before = listing(tmp_path)
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "evaluate", tmp_path, before)
    assert result.rc == 2 and fragment in result.stderr, result.stderr
