"""The Python API: fmnist.load_data, fmnist.load_model, fmnist.train, and the README's
example run as it is written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fmnist
from fmnist.deploy.predict import ImageError

ROOT = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    text = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
    return re.search(r"```python\n(.*?)```", text, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_as_written(dataset, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "FMNIST_DATA_DIR": str(dataset.directory),
    }
    res = subprocess.run(
        [sys.executable, "-c", readme_example()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "(60000, 28, 28) (10000, 28, 28)"
    assert lines[1].endswith("(8, 10)") and lines[3] == "WideCNN"
    assert float(lines[2]) >= 0.75  # the best model on 8 test images
    accuracy, run_dir = lines[4].split()
    assert 0.6 < float(accuracy) <= 1  # 3,000 images, 2 epochs: it learned
    assert (tmp_path / run_dir / "model.safetensors").is_file()


def test_load_data_is_the_verified_dataset(dataset):
    ds = fmnist.load_data(dataset.directory, download=False)
    assert ds.sha256 == dataset.sha256 and ds.train_images.dtype == np.uint8


@pytest.fixture(scope="module")
def default():
    return fmnist.load_model("default")


def test_packaged_models_load_and_predict_like_evaluate(dataset, default):
    from fmnist.evaluate import infer

    assert type(default.module).__name__ == "SeedCNN" and not default.module.training
    out = default.predict(dataset.test_images[:500])
    expected = infer(default.module, dataset.test_images[:500]).argmax(1).numpy()
    np.testing.assert_array_equal(out.labels, expected)
    assert out.names[0] == default.classes[out.labels[0]]
    np.testing.assert_allclose(out.probabilities.sum(1), 1, rtol=1e-9)
    best = fmnist.load_model("best")
    assert type(best.module).__name__ == "WideCNN"
    assert (
        best.predict(dataset.test_images[:500]).labels == dataset.test_labels[:500]
    ).mean() > 0.9


def test_predict_takes_arrays_images_paths_and_mixes(dataset, default, tmp_path):
    x = dataset.test_images[:3]
    want = default.predict(x).labels
    assert default.predict(x[0]).labels.tolist() == [want[0]]
    np.testing.assert_array_equal(default.predict(x / 255.0).labels, want)  # floats in [0, 1]
    Image.fromarray(x[1]).save(tmp_path / "one.png")
    mixed = [x[0], tmp_path / "one.png", Image.fromarray(x[2])]
    np.testing.assert_array_equal(default.predict(mixed).labels, want)
    assert default.predict(str(tmp_path / "one.png")).labels.tolist() == [want[1]]


@pytest.mark.parametrize(
    "images, message",
    [
        (np.zeros((2, 3, 28, 28), np.uint8), "shape"),
        (np.zeros((27, 28), np.uint8), "shape"),
        (np.full((28, 28), 2.0), r"\[0, 1\]"),
        (np.full((28, 28), np.nan), "floats"),
        ([], "no images"),
        ("missing.png", "(?i)no such file"),
    ],
)
def test_predict_refuses_what_is_not_an_image(default, images, message):
    with pytest.raises(ImageError, match=message):
        default.predict(images)


def test_load_model_refuses_an_unknown_name(tmp_path):
    with pytest.raises(fmnist.FmnistError, match="no such file"):
        fmnist.load_model(tmp_path / "nothing")


@pytest.mark.slow
def test_train_returns_the_run(dataset, tmp_path):
    result = fmnist.train(
        recipe="fast",
        train_limit=3000,
        batch_size=64,
        dataset=dataset,
        out=tmp_path / "run",
        log=None,
    )
    assert result.run_dir == tmp_path / "run" and result.metrics["test_accuracy"] > 0.5
    assert isinstance(result.model, torch.nn.Module)
