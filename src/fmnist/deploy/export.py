"""Export a model to ONNX or to Keras, each file written whole or not at all.

ONNX: input `input` float32 (N, 1, 28, 28) pixels in [0, 1]; outputs `logits` and
`probabilities`, both (N, 10); the batch dimension is dynamic.

Keras (the optional extra `keras`): the tutorial's Sequential model with our weights
copied in, taking what the tutorial fed its model, float (N, 28, 28, 1) pixels in [0, 1],
and ending in softmax. Written as a Keras 3 `.keras` file and as a legacy `.h5`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fmnist.checkpoint import PACKAGED, load_model, model_label, read_description, resolve
from fmnist.errors import FmnistError
from fmnist.files import atomic_write, output_file
from fmnist.models.user import USER, one_line

OPSET = 17  # ONNX Runtime 1.14 (2023) and later run it


class ExportError(FmnistError):
    pass


def default_stem(model_path: str | os.PathLike) -> Path:
    """Exports go beside the weights (runs/x/model.onnx), and a packaged model's into the
    current folder (best.onnx): the installed package is no place to write."""
    if str(model_path) in PACKAGED:
        return Path(str(model_path))
    weights, _ = resolve(model_path)
    return weights.with_suffix("")


def check_out(out: Path, suffixes: tuple[str, ...]) -> Path:
    out = Path(out)
    if out.suffix not in suffixes:
        raise ExportError(f"--out {out}: the file name must end in {' or '.join(suffixes)}")
    return output_file(out, "--out", ExportError)


# ----------------------------------------------------------------------------
# ONNX
# ----------------------------------------------------------------------------


class WithProbabilities(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        logits = self.model(x)
        return logits, torch.softmax(logits, dim=1)


def export_onnx(
    model_path: str | os.PathLike, out: str | os.PathLike | None = None, **code
) -> Path:
    """`code`: load_model's model_code and allow_changed_code, for a model of the user's own
    code."""
    try:
        import onnx
    except ImportError as e:
        raise ExportError(f"ONNX export needs the onnx package: pip install onnx ({e})") from None

    out = check_out(out or default_stem(model_path).with_suffix(".onnx"), (".onnx",))
    info = read_description(model_path)
    model = load_model(model_path, **code).cpu().eval()
    example = torch.zeros(2, 1, 28, 28)

    def write(tmp):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's notes about its own deprecation
            # The TorchScript exporter: the dynamo one needs onnxscript, and this graph of
            # convolutions and dense layers is what both produce.
            try:
                torch.onnx.export(
                    WithProbabilities(model),
                    (example,),
                    tmp,
                    dynamo=False,
                    input_names=["input"],
                    output_names=["logits", "probabilities"],
                    dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}, "probabilities": {0: "N"}},
                    opset_version=OPSET,
                )
            except Exception as e:
                if info["model"] != USER:
                    raise
                # a model of the user's code may use what the exporter cannot express
                raise ExportError(f"{model_path}: ONNX export failed ({one_line(e)})") from None
        graph = onnx.load(tmp)
        onnx.checker.check_model(graph, full_check=True)
        graph.doc_string = (
            f"fmnist {info['model']}: input float32 (N, 1, 28, 28), pixels in [0, 1], "
            "dark background; outputs logits and probabilities (N, classes)"
        )
        for key, value in (
            ("classes", json.dumps(info.get("classes"))),
            ("model", model_label(info)),
            ("metrics", json.dumps(info.get("metrics") or {})),
        ):
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(graph, tmp)

    atomic_write(out, write)
    return out


# ----------------------------------------------------------------------------
# Keras
# ----------------------------------------------------------------------------


def import_keras():
    """Keras 3 on its PyTorch backend (TensorFlow is not needed), or a one-line error."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    try:
        import keras
    except ImportError as e:
        raise ExportError(
            f"Keras export needs Keras 3 and h5py: pip install 'fashion-mnist-cnn[keras]' ({e})"
        ) from None
    if int(keras.__version__.split(".")[0]) < 3:
        raise ExportError(f"Keras export needs Keras 3; this is Keras {keras.__version__}")
    return keras


def keras_model(keras, num_classes: int = 10, dropout: float = 0.2):
    """The tutorial's Sequential CNN, layer for layer."""
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(6, 5, padding="same", activation="relu"),
            layers.BatchNormalization(epsilon=1e-3, momentum=0.99),
            layers.MaxPooling2D(2),
            layers.Conv2D(16, 5, padding="same", activation="relu"),
            layers.BatchNormalization(epsilon=1e-3, momentum=0.99),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(32, activation="relu"),
            layers.Dropout(dropout),
            layers.Dense(num_classes, activation="softmax"),
        ],
        name="fashion_mnist_cnn",
    )


def keras_weights(model: nn.Module) -> list[list[np.ndarray]]:
    """Our seed CNN's tensors in Keras's layouts, one list per Keras layer with weights."""
    f, c = model.features, model.classifier
    conv1, bn1, conv2, bn2 = f[0], f[2], f[4], f[6]
    dense1, dense2, dense3 = c[1], c[4], c[7]

    def t(x: torch.Tensor) -> np.ndarray:
        return x.detach().cpu().numpy()

    def conv(m):  # PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)
        return [t(m.weight).transpose(2, 3, 1, 0), t(m.bias)]

    def bn(m):
        return [t(m.weight), t(m.bias), t(m.running_mean), t(m.running_var)]

    def dense(m):  # PyTorch (out, in) -> Keras (in, out)
        return [t(m.weight).T, t(m.bias)]

    # PyTorch flattens (C, H, W); Keras flattens (H, W, C). Reorder the first dense
    # layer's input rows so that each meets the same feature.
    w1 = t(dense1.weight).T  # (C*H*W, 128)
    channels = conv2.out_channels
    side = int(round((w1.shape[0] / channels) ** 0.5))
    w1 = w1.reshape(channels, side, side, -1).transpose(1, 2, 0, 3).reshape(w1.shape)
    return [
        conv(conv1),
        bn(bn1),
        conv(conv2),
        bn(bn2),
        [w1, t(dense1.bias)],
        dense(dense2),
        dense(dense3),
    ]


def build_keras(model_path: str | os.PathLike):
    info = read_description(model_path)
    if info["model"] != "seed_cnn":
        raise ExportError(
            f"{model_path}: Keras export holds the tutorial's architecture (seed_cnn), "
            f"not {info['model']!r}; export it to ONNX instead"
        )
    model = load_model(model_path).cpu().eval()
    keras = import_keras()
    args = info.get("args", {})
    kmodel = keras_model(keras, args.get("num_classes", 10), args.get("dropout", 0.2))
    with_weights = [layer for layer in kmodel.layers if layer.weights]
    for layer, weights in zip(with_weights, keras_weights(model), strict=True):
        layer.set_weights(weights)
    # Not compiled: a compiled model would carry an empty Adam state that Keras warns about
    # on every load. To train on, compile it as the tutorial did.
    return kmodel


def save_whole(out: Path, save) -> None:
    """Keras picks the format from the suffix, so save under the real name in a private
    temporary folder beside `out`, then rename over it."""
    tmpdir = tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        tmp = Path(tmpdir) / out.name
        save(str(tmp))
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def export_keras(model_path: str | os.PathLike, out: str | os.PathLike | None = None) -> list[Path]:
    if out is None:
        stem = default_stem(model_path)
        outs = [stem.with_suffix(".keras"), stem.with_suffix(".h5")]
    else:
        outs = [check_out(out, (".keras", ".h5"))]
    for o in outs:
        check_out(o, (".keras", ".h5"))
    kmodel = build_keras(model_path)
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # Keras's note that .h5 is a legacy format: we know
    try:
        for o in outs:
            save_whole(o, kmodel.save)
    finally:
        absl.setLevel(level)
    return outs


def export(model_path: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, **code):
    """The files written, for `fmnist export`; `code`: see export_onnx."""
    if fmt == "onnx":
        return [export_onnx(model_path, out, **code)]
    if fmt == "keras":
        return export_keras(model_path, out)
    raise ExportError(f"--format {fmt}: choose onnx or keras")
