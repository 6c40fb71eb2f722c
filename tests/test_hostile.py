"""Hostile input, case by case: every class of bad input ends with one line on stderr,
exit status 2, nothing written and nothing left behind. Each case runs the real command
line (tests/cliserver.py) in an empty folder."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import load_file, save_file

from tests.hostile import assert_kept_promise, fifo, listing, write_file

TRAIN = ["--train-limit", "64", "--epochs", "1", "--no-report"]


@pytest.fixture(scope="module")
def files(tiny_run, tmp_path_factory):
    """Inputs outside the folder the command runs in: a good model and image, bad copies."""
    base = tmp_path_factory.mktemp("hostile")
    run = tiny_run.run_dir
    f = {"run": run, "base": base}
    rng = np.random.default_rng(0)
    f["image"] = base / "item.png"
    Image.fromarray((rng.random((28, 28)) * 255).astype("uint8")).save(f["image"])
    f["black28"] = base / "black28.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(f["black28"])
    f["white300"] = base / "white300.png"
    Image.fromarray(np.full((300, 200), 255, np.uint8)).save(f["white300"])
    f["fifo"] = fifo(base / "pipe.png")
    f["loop"] = base / "loop.png"
    os.symlink(f["loop"], f["loop"])
    f["afile"] = write_file(base / "afile", "x")

    def model(name, desc=None, weights=None):
        d = base / name
        d.mkdir()
        info = json.loads((run / "model.json").read_text())
        if desc:
            desc(info)
        (d / "model.json").write_text(json.dumps(info))
        state = load_file(run / "model.safetensors")
        if weights:
            weights(state)
        save_file(state, d / "model.safetensors")
        return d

    def nan_all(state):
        for t in state.values():
            if t.is_floating_point():
                t.fill_(float("nan"))

    f["m_classes_neg"] = model("m1", lambda i: i["args"].update(num_classes=-1))
    f["m_dropout_nan"] = model("m2", lambda i: i["args"].update(dropout=float("nan")))
    f["m_classes_type"] = model("m3", lambda i: i.update(classes=["Bag", 3]))
    f["m_classes_len"] = model("m4", lambda i: i.update(classes=["Bag"]))
    f["m_weights_nan"] = model("m5", weights=nan_all)
    f["m_dtype"] = model("m6", weights=lambda s: s.update({k: v.double() for k, v in s.items()}))
    bias = "classifier.1.bias"
    f["m_shape"] = model("m7", weights=lambda s: s.update({bias: s[bias][:5].clone()}))
    f["m_extra"] = model(
        "m8", weights=lambda s: s.update({"extra": s["classifier.1.bias"].clone()})
    )

    def run_copy(name, **texts):
        d = base / name
        shutil.copytree(run, d)
        for file, text in texts.items():
            (d / file.replace("_", ".")).write_text(text)
        return d

    f["r_history"] = run_copy("r1", history_csv="epoch,train_loss\n1,abc\n")
    f["r_history_text"] = run_copy(
        "r2", history_csv=(run / "history.csv").read_text().replace("\n1,", "\nfirst,", 1)
    )
    f["r_metrics_str"] = run_copy("r3", metrics_json='{"test_accuracy": "high"}')
    f["r_metrics_list"] = run_copy("r4", metrics_json="[1, 2]")
    f["r_config"] = run_copy("r5", config_json='{"config": 7}')
    f["rec_missing"] = write_file(base / "rec1.json", '{"metrics": {}, "record": {}}')
    f["rec_strings"] = write_file(
        base / "rec2.json", '{"metrics": {"test_accuracy": "a", "train_s": 1}, "record": {}}'
    )
    f["rec_summary"] = write_file(
        base / "rec3.json",
        '{"n": 2, "test_accuracy": {"mean": 0.9, "values": ["a"]}, "train_s": {"mean": 1}}',
    )

    def recipe(name, **settings):
        doc = {"format": "fmnist-recipe/1", "settings": settings}
        return write_file(base / f"{name}.json", json.dumps(doc))

    f["recipe_wd"] = recipe("wd", weight_decay=-1)
    f["recipe_ls"] = recipe("ls", label_smoothing=5)
    f["recipe_bn"] = recipe("bn", bn_momentum=7)
    f["recipe_eps"] = recipe("eps", adam_eps=0)
    f["recipe_fifo"] = fifo(base / "fiforecipe.json")
    return f


# (command line with {names} from `files`, a fragment the one-line error must hold)
CASES = [
    # output paths
    ("predict --model default --csv /proc/x.csv {image}", "cannot write"),
    ("predict --model default --csv {base} {image}", "a folder"),
    ("predict --model default --csv {afile}/x.csv {image}", "not a folder"),
    ("export --model default --format onnx --out /proc/x.onnx", "cannot write"),
    ("export --model default --format onnx --out {afile}/x.onnx", "not a folder"),
    ("tune --trials 1 --recipe-out /proc/x.json " + " ".join(TRAIN[:4]), "--recipe-out"),
    ("tune --trials 1 --recipe-out {afile}/r.json " + " ".join(TRAIN[:4]), "--recipe-out"),
    ("tune --trials 1 --recipe-out {base} " + " ".join(TRAIN[:4]), "a folder"),
    ("tune --trials 1 --out {afile}/t " + " ".join(TRAIN[:4]), "a file, not a folder"),
    ("train --out {afile}/run " + " ".join(TRAIN), "cannot write the run directory"),
    ("bench --repeats 1 --json /proc/x.json", "cannot write"),
    # model files
    ("predict --model {m_classes_neg} {image}", "num_classes"),
    ("predict --model {m_dropout_nan} {image}", "dropout"),
    ("predict --model {m_classes_type} {image}", "classes"),
    ("predict --model {m_classes_len} {image}", "1 class names for a model with 10 outputs"),
    ("predict --model {m_weights_nan} {image}", "NaN"),
    ("evaluate --json {m_weights_nan}", "NaN"),
    ("export --model {m_weights_nan} --format onnx --out x.onnx", "NaN"),
    ("predict --model {m_dtype} {image}", "float64"),
    ("predict --model {m_shape} {image}", "do not fit"),
    ("predict --model {m_extra} {image}", "do not fit"),
    # settings
    ("train --lr nan " + " ".join(TRAIN), "lr must be a finite number"),
    ("train --lr inf " + " ".join(TRAIN), "lr must be a finite number"),
    ("train --lr 1e400 " + " ".join(TRAIN), "lr must be a finite number"),
    ("train --lr 100 " + " ".join(TRAIN), "lr must be in"),
    ("train --recipe {recipe_wd} " + " ".join(TRAIN), "weight-decay"),
    ("train --recipe {recipe_ls} " + " ".join(TRAIN), "label-smoothing"),
    ("train --recipe {recipe_bn} " + " ".join(TRAIN), "bn-momentum"),
    ("train --recipe {recipe_eps} " + " ".join(TRAIN), "adam-eps"),
    ("train --patience -1 " + " ".join(TRAIN), "patience"),
    ("train --seed -1 " + " ".join(TRAIN), "seed"),
    ("train --epochs 1 --no-report --train-limit -5", "train-limit"),
    ("bench --repeats 0", "--repeats"),
    ("train --recipe {recipe_fifo} " + " ".join(TRAIN), "named pipe"),
    # records
    ("report {r_history}", "column"),
    ("report {r_history_text}", "not a number"),
    ("report {r_metrics_str}", "test_accuracy"),
    ("report {r_metrics_list}", "expected a JSON object"),
    ("report {r_config}", "config"),
    ("results {rec_missing}", "test_accuracy"),
    ("results {rec_strings}", "test_accuracy"),
    ("results {rec_summary}", "values"),
    ("results {fifo}", "named pipe"),
    # images and special files
    ("predict --model default {black28}", "all one colour"),
    ("predict --model default {white300}", "all one colour"),
    ("predict --model default {fifo}", "named pipe"),
    ("predict --model default {loop}", "loops back on itself"),
    ("predict --model default /dev/zero", "a device"),
    ("predict --model default /proc/self/environ", "not an image"),
    ("evaluate {loop}", "not a model"),
    # the server's address
    ("serve --model default --host 192.0.2.1 --port 8765", "not an address of this machine"),
]


@pytest.mark.parametrize(("line", "fragment"), CASES, ids=[c[0][:60] for c in CASES])
def test_bad_input_is_one_line_and_exit_2(cli, files, tmp_path, line, fragment):
    argv = [part.format(**files) for part in line.split()]
    watched = {files["run"], files["base"]}
    before = {p: listing(p) for p in watched}
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert_kept_promise(result, argv[0], tmp_path, set())
    assert result.rc == 2, result.stdout[-500:]
    assert fragment in result.stderr, result.stderr
    for p in watched:  # nothing written beside the inputs either
        assert listing(p) == before[p], p


def test_tune_refuses_its_recipe_path_before_any_trial(cli, files, tmp_path):
    argv = ["tune", "--trials", "1", "--recipe-out", "/proc/x.json", *TRAIN[:4]]
    result = cli(argv, cwd=tmp_path, timeout=120)
    assert result.rc == 2
    assert "trial" not in result.stdout  # refused before the first trial started
    assert not (tmp_path / "tune").exists()
