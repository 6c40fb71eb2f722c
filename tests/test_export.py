"""fmnist.deploy.export: ONNX checked with onnxruntime on the test set; Keras with Keras."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch

from fmnist import cli
from fmnist.checkpoint import load_model
from fmnist.deploy.export import export_keras, export_onnx, keras_model
from fmnist.evaluate import infer, to_input

# Keras's PyTorch backend converts tensors in a way NumPy 2 calls deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


@pytest.fixture(scope="module")
def reference(tiny_run, dataset):
    """PyTorch's logits for the 10,000 test images, and the test images as model input."""
    model = load_model(tiny_run.run_dir)
    x = to_input(torch.as_tensor(dataset.test_images)).numpy()
    return infer(model, dataset.test_images).numpy(), x


# ----------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------


def test_onnx_matches_pytorch_on_the_test_set(tiny_run, reference, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = export_onnx(tiny_run.run_dir, tmp_path / "m.onnx")
    logits, x = reference
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[1:] == [1, 28, 28]
    assert isinstance(session.get_inputs()[0].shape[0], str)  # a dynamic batch
    assert [o.name for o in session.get_outputs()] == ["logits", "probabilities"]
    parts = [session.run(None, {"input": x[i : i + 1000]}) for i in range(0, len(x), 1000)]
    onnx_logits = np.concatenate([p[0] for p in parts])
    onnx_probs = np.concatenate([p[1] for p in parts])
    assert onnx_logits.shape == (10_000, 10)
    assert np.array_equal(onnx_logits.argmax(1), logits.argmax(1))
    assert np.abs(onnx_logits - logits).max() <= 1e-4
    probs = torch.softmax(torch.as_tensor(logits), 1).numpy()
    assert np.abs(onnx_probs - probs).max() <= 1e-4
    one = session.run(["logits"], {"input": x[:1]})[0]
    assert one.shape == (1, 10) and np.abs(one - logits[:1]).max() <= 1e-4
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["model"] == "seed_cnn" and "Ankle boot" in meta["classes"]


def test_onnx_default_path_and_cli(tiny_run, capsys):
    target = tiny_run.run_dir / "model.onnx"
    assert cli.main(["export", "--model", str(tiny_run.run_dir), "--format", "onnx"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {target}"
    assert target.stat().st_size > 100_000
    target.unlink()


def test_export_errors_are_one_line_and_leave_nothing(tiny_run, tmp_path, capsys, monkeypatch):
    run = str(tiny_run.run_dir)
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "onnx", None)  # as if onnx were not installed
        assert (
            cli.main(
                ["export", "--model", run, "--format", "onnx", "--out", str(tmp_path / "a.onnx")]
            )
            == 2
        )
        assert "pip install onnx" in capsys.readouterr().err
    assert (
        cli.main(["export", "--model", run, "--format", "onnx", "--out", str(tmp_path / "m.txt")])
        == 2
    )
    assert "must end in .onnx" in capsys.readouterr().err
    assert (
        cli.main(
            ["export", "--model", run, "--format", "onnx", "--out", str(tmp_path / "no/m.onnx")]
        )
        == 2
    )
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(tmp_path), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.safetensors: no such file" in err

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(torch.onnx, "export", fail)
    with pytest.raises(RuntimeError):
        export_onnx(tiny_run.run_dir, tmp_path / "half.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temporary one


# ----------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("h5py", reason="Keras export needs the optional extra: keras, h5py")
    return pytest.importorskip("keras", reason="Keras export needs the optional extra: keras")


def test_keras_files_match_pytorch(keras, tiny_run, reference, tmp_path, capsys):
    run = tiny_run.run_dir
    assert cli.main(["export", "--model", str(run), "--format", "keras"]) == 0
    written = [run / "model.keras", run / "model.h5"]
    assert capsys.readouterr().out.split() == [w for p in written for w in ("wrote", str(p))]
    logits, x = reference
    expected = torch.softmax(torch.as_tensor(logits[:1000]), 1).numpy()
    nhwc = x[:1000].transpose(0, 2, 3, 1)  # what the tutorial fed its model
    for path in written:
        model = keras.models.load_model(path, compile=False)
        assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
        got = np.asarray(model.predict(nhwc, batch_size=500, verbose=0))
        assert np.array_equal(got.argmax(1), expected.argmax(1)), path
        assert np.abs(got - expected).max() <= 1e-5, path
        assert np.allclose(got.sum(1), 1, atol=1e-5)  # softmax output
        path.unlink()
    out = tmp_path / "fashion_mnist_model.h5"
    assert export_keras(run, out) == [out] and out.exists()


def test_keras_model_is_the_tutorials(keras):
    model = keras_model(keras)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Conv2D",
        "BatchNormalization",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dropout",
        "Dense",
        "Dropout",
        "Dense",
    ]
    assert model.count_params() == 107_554 + 44  # our trainable parameters + BN statistics


def test_keras_missing_is_one_line(tiny_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "keras", None)  # as if Keras were not installed
    out = tmp_path / "m.keras"
    assert (
        cli.main(
            ["export", "--model", str(tiny_run.run_dir), "--format", "keras", "--out", str(out)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'fashion-mnist-cnn[keras]'" in err
    assert not out.exists()
