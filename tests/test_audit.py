"""The data audit: planted duplicates, near-duplicates and label flips are found; the
nearest-neighbour search agrees with scikit-learn; the page opens in Chromium; --exclude
drops what it names; the export writes every image; bad input ends with exit status 2."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmnist import cli, data, data_export
from fmnist.analysis import audit
from fmnist.training.config import make_config
from tests import chromium
from tests.hostile import assert_kept_promise

FLIPS = {1: 8, 8: 1, 7: 1, 5: 3}  # planted wrong labels between classes no one confuses


def subset(ds, n_train, n_test):
    return data.FashionMNIST(
        ds.train_images[:n_train].copy(),
        ds.train_labels[:n_train].copy(),
        ds.test_images[:n_test].copy(),
        ds.test_labels[:n_test].copy(),
        ds.directory,
        ds.origin,
        ds.sha256,
    )


@pytest.fixture(scope="module")
def planted(dataset):
    """3,000 training and 1,000 test images with 40 flipped labels, exact copies within
    each split and across, and near copies (the image plus faint noise) across."""
    ds = subset(dataset, 3000, 1000)
    rng = np.random.default_rng(0)
    candidates = np.flatnonzero(np.isin(ds.train_labels, list(FLIPS)))
    flips = rng.choice(candidates[100:], 40, replace=False)
    ds.train_labels[flips] = [FLIPS[int(y)] for y in ds.train_labels[flips]]
    exact = {"train": (10, 11), "test": (20, 21), "across": (30, 31)}  # (copy, original)
    ds.train_images[10] = ds.train_images[11]
    ds.test_images[20] = ds.test_images[21]
    ds.test_images[30] = ds.train_images[31]
    near = (40, 41)  # test 40 becomes train 41 plus noise of about 1.5 grey levels
    noise = rng.integers(-2, 3, (28, 28))
    ds.test_images[40] = np.clip(ds.train_images[41].astype(int) + noise, 0, 255).astype(np.uint8)
    cfg = make_config("rung90", all_data=True, epochs=3, device="cpu", seed=0)
    record, arrays = audit.audit(ds, cfg, folds=3, log=lambda *a: None)
    return {
        "ds": ds,
        "flips": flips,
        "exact": exact,
        "near": near,
        "record": record,
        "arrays": arrays,
    }


def test_planted_label_flips_are_found(planted):
    flagged = [r["index"] for r in planted["record"]["label_issues"]["train"]]
    found = set(flagged) & set(planted["flips"].tolist())
    # from 32 to 35 of the 40 across training seeds 0-3 (rung90, 3 epochs); flagging as
    # many images at random would find about 4
    assert len(found) >= 0.75 * len(planted["flips"]), (len(found), len(flagged))
    # ranked worst first: the label quality score never falls down the list
    scores = [r["score"] for r in planted["record"]["label_issues"]["train"]]
    assert scores == sorted(scores)


def test_every_planted_exact_duplicate_is_found(planted):
    groups = planted["record"]["exact_duplicates"]["groups"]
    assert [10, 11] in [sorted(g) for g in groups["train"]]
    assert [20, 21] in [sorted(g) for g in groups["test"]]
    assert any(30 in g["test"] and 31 in g["train"] for g in groups["across"])
    assert 30 in planted["record"]["flagged_test"]
    assert 31 in planted["record"]["exclude"]["train"]


def test_planted_near_duplicate_is_found_and_flagged(planted):
    test_i, train_i = planted["near"]
    p = planted["arrays"]["pixel"]["train_test"]
    assert p["neighbour"][test_i] == train_i
    assert 0 < p["distance"][test_i] <= audit.PIXEL_THRESHOLD
    assert test_i in planted["record"]["flagged_test"]
    assert train_i in planted["record"]["exclude"]["train"]


def test_nearest_agrees_with_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(1)
    a, b = rng.random((300, 20)).astype(np.float32), rng.random((500, 20)).astype(np.float32)
    d2, idx = audit.nearest(torch.from_numpy(a), torch.from_numpy(b), block=64)
    dist, want = NearestNeighbors(n_neighbors=1).fit(b).kneighbors(a)
    np.testing.assert_array_equal(idx.numpy(), want[:, 0])
    np.testing.assert_allclose(np.sqrt(d2.numpy()), dist[:, 0], rtol=1e-4, atol=1e-4)
    d2, idx = audit.nearest(torch.from_numpy(a), block=64)  # within a set: never itself
    dist, want = NearestNeighbors(n_neighbors=2).fit(a).kneighbors(a)
    np.testing.assert_array_equal(idx.numpy(), want[:, 1])


def test_exact_duplicates_against_a_plain_count():
    rng = np.random.default_rng(2)
    train = rng.integers(0, 3, (200, 28, 28), dtype=np.uint8)
    train[5] = train[6] = train[7]
    test = rng.integers(0, 3, (50, 28, 28), dtype=np.uint8)
    test[3] = train[9]
    test[4] = test[8]
    groups = audit.exact_duplicates(train, test)
    assert [sorted(g) for g in groups["train"]] == [[5, 6, 7]]
    assert groups["test"] == [[4, 8]]
    assert groups["across"] == [{"train": [9], "test": [3]}]


@pytest.mark.slow
def test_audit_command_writes_its_files_and_the_page_opens(tmp_path, capsys):
    out = tmp_path / "audit"
    rc = cli.main(
        ["audit", "--quick", "--folds", "2", "--epochs", "1", "--out", str(out), "--no-download"]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert "label suspects" in printed and "audit.html" in printed
    record = json.loads((out / "audit.json").read_text())
    assert record["format"] == data.AUDIT_FORMAT
    assert set(record["data"]["sha256"]) == set(data.FILES)
    with open(out / "label_issues.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(record["label_issues"]["counts"].values())
    assert {r["split"] for r in rows} <= {"train", "test"}
    figure = np.asarray(Image.open(out / "label_suspects.png").convert("L"), dtype=float)
    assert figure.shape[1] > 1000 and figure.std() > 20  # images drawn, not a blank page
    if not Path(chromium.CHROMIUM).exists():
        pytest.skip("chromium is not installed (make chromium)")
    browser = chromium.Chromium()
    try:
        seen = browser.open(out / "audit.html")
    finally:
        browser.close()
    artifacts = Path(os.environ.get("FMNIST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "audit-screenshot.png").write_bytes(seen["screenshot"])
    assert seen["errors"] == [] and seen["broken"] == []
    assert seen["sections"] == ["duplicates", "near", "labels"]
    assert seen["images"] > 20 and min(seen["widths"]) == 28


@pytest.mark.slow
def test_exclude_drops_the_named_training_images(tmp_path, dataset):
    train_idx, _ = data.run_split(dataset.train_labels, 0.2, 0, 600)
    listed = tmp_path / "drop.txt"
    listed.write_text("\n".join(str(i) for i in train_idx[:50]) + "\n")
    out = tmp_path / "run"
    rc = cli.main(
        [
            "train",
            "--recipe",
            "rung90",
            "--epochs",
            "1",
            "--train-limit",
            "600",
            "--exclude",
            str(listed),
            "--out",
            str(out),
            "--no-report",
        ]
    )
    assert rc == 0
    used = json.loads((out / "config.json").read_text())["used"]["exclude"]
    assert used["dropped"] == 50 and used["listed"] == 50 and len(used["sha256"]) == 64


@pytest.mark.parametrize(
    ("argv", "content", "fragment"),
    [
        (["audit", "--model", "nope"], None, "unknown model"),
        (["audit", "--out", "/proc/audit"], None, "cannot write"),
        (["audit", "--folds", "1"], None, "--folds"),
        (["train", "--exclude", "{file}"], '{"a": 1}', "not an fmnist audit"),
        (["train", "--exclude", "{file}"], "[1, -2]", "not a list of training image indices"),
        (["train", "--exclude", "{file}"], "3\nfour\n", "line 2"),
        (["train", "--exclude", "{file}", "--epochs", "1"], "[60000]", "names training image"),
        (["train", "--exclude", "/nonexistent.json"], None, "no such file"),
        (["evaluate", "default", "--audit", "{file}"], "[]", "expected a JSON object"),
        (["data", "--export", "tiff", "x"], None, "give png or csv"),
    ],
)
def test_bad_audit_input_is_one_line(cli, tmp_path, argv, content, fragment):
    file = tmp_path / "input" / "list.json"
    file.parent.mkdir()
    if content is not None:
        file.write_text(content)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = [a.format(file=file) for a in argv]
    result = cli(argv, cwd=cwd, timeout=120)
    assert_kept_promise(result, argv[0], cwd, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr


def test_export_writes_every_image(dataset, tmp_path):
    ds = subset(dataset, 30, 20)
    png = data_export.export(ds, "png", tmp_path / "png")
    files = sorted((png / "train").rglob("*.png"))
    assert len(files) == 30 and len(list((png / "test").rglob("*.png"))) == 20
    for f in files[:5]:
        i, label = int(f.stem), int(f.parent.name.split("-")[0])
        assert label == ds.train_labels[i]
        np.testing.assert_array_equal(np.asarray(Image.open(f)), ds.train_images[i])
    out = data_export.export(ds, "csv", tmp_path / "csv")
    table = np.loadtxt(out / "fashion-mnist_test.csv", delimiter=",", skiprows=1, dtype=int)
    np.testing.assert_array_equal(table[:, 0], ds.test_labels)
    np.testing.assert_array_equal(table[:, 1:].reshape(-1, 28, 28), ds.test_images)
    with pytest.raises(data.DataError, match="not an empty folder"):
        data_export.export(ds, "csv", out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csv", "png"]  # no temporary left


@pytest.mark.slow
def test_data_prints_the_pixel_statistics(capsys):
    assert cli.main(["data", "--no-download"]) == 0
    assert "mean 0.2860, standard deviation 0.3530" in capsys.readouterr().out
