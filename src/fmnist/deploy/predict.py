"""Classify people's own images: read and prepare them (fmnist.deploy.images), then infer."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import torch

from fmnist.checkpoint import load_model, model_label, read_description
from fmnist.data import CLASSES
from fmnist.deploy.images import (
    FORMATS,
    MAX_PIXELS,
    SIZE,
    ImageError,
    ImageTooLarge,
    UnsupportedImage,
    find_images,
    prepare,
    read_image,
)
from fmnist.deploy.inputs import check_device, check_model_name, dataset_batch
from fmnist.errors import ArgumentError, what
from fmnist.evaluate import infer
from fmnist.files import atomic_write, output_file

# what the other stages import from here: the image door's names, re-exported
__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "SIZE",
    "ImageError",
    "ImageTooLarge",
    "Predictions",
    "Predictor",
    "UnsupportedImage",
    "find_images",
    "format_results",
    "predict_files",
    "prepare",
    "read_image",
    "write_csv",
]


# ----------------------------------------------------------------------------
# Infer
# ----------------------------------------------------------------------------


@dataclass
class Predictor:
    """A model loaded once, with its class names; probabilities for prepared images."""

    model: torch.nn.Module
    classes: tuple[str, ...]
    name: str
    metrics: dict

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str | torch.device = "cpu",
        *,
        model_code: str | os.PathLike | None = None,
        allow_changed_code: bool = False,
    ) -> Predictor:
        """A model file's Predictor; `model_code` names the source of a model of the user's
        own code (see fmnist.checkpoint.load_model). `device`: "cpu", "cuda", "cuda:N",
        "mps", "auto" or a torch.device. Raises CheckpointError for a model that cannot be
        used, DeviceError for a device this machine does not have, ArgumentTypeError for
        arguments of the wrong type (all FmnistError)."""
        check_model_name(path)
        device = check_device(device)
        info = read_description(path)
        model = load_model(
            path, device, model_code=model_code, allow_changed_code=allow_changed_code
        )
        classes = tuple(info.get("classes") or CLASSES)
        return cls(model, classes, model_label(info), info.get("metrics") or {})

    def probabilities(self, images) -> np.ndarray:
        """Images as `predict` takes them (uint8 (N, 28, 28) as they are) -> float
        (N, classes), each row summing to 1."""
        logits = infer(self.model, dataset_batch(images))
        return torch.softmax(logits.double(), dim=1).numpy()

    @property
    def module(self) -> torch.nn.Module:
        """The underlying PyTorch model (eval mode; pixels in [0, 1], shape (N, 1, 28, 28))."""
        return self.model

    def predict(self, images) -> Predictions:
        """Classes for images: a path, encoded image bytes, a PIL image, a NumPy array
        (28, 28), (N, 28, 28) or (N, 1, 28, 28) of dataset pixels (uint8 0 to 255, or floats
        that are intensities in [0, 1]; NaN, infinities and other ranges are refused), or a
        list of any of these. Photos are prepared as `fmnist predict` prepares them, alpha
        composited over white. Raises ImageError (an FmnistError) for an image that cannot
        be used, ImageTypeError (an ImageError and a TypeError) for something not an image;
        see fmnist.deploy.inputs."""
        probs = self.probabilities(images)
        labels = probs.argmax(1)
        return Predictions(labels, [self.label(int(i)) for i in labels], probs)

    def label(self, index: int) -> str:
        return self.classes[index] if index < len(self.classes) else f"class {index}"

    def top(self, probs: np.ndarray, k: int | None = None) -> list[dict]:
        """The k most probable classes of one row, most probable first."""
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise ArgumentError(f"k: give a number of classes of at least 1 (got {what(k)})")
        order = np.argsort(-probs, kind="stable")[: k or len(probs)]
        return [
            {"label": self.label(int(i)), "index": int(i), "probability": float(probs[i])}
            for i in order
        ]


@dataclass
class Predictions:
    labels: np.ndarray  # (N,) class indices
    names: list[str]  # (N,) class names
    probabilities: np.ndarray  # (N, classes), rows summing to 1


def predict_files(
    model: str | os.PathLike | Predictor,
    inputs: list[str | os.PathLike],
    top_k: int = 3,
    **code,
) -> list[dict]:
    """[{"file": path, "predictions": [...]}] for each image; every image is read first, so
    one unreadable file stops the run before any output. `code`: Predictor.load's
    model_code and allow_changed_code."""
    if top_k < 1:
        raise ImageError(f"--top-k {top_k}: give a number of classes of at least 1")
    files = find_images(inputs)
    predictor = model if isinstance(model, Predictor) else Predictor.load(model, **code)
    images = np.stack([read_image(f) for f in files])
    probs = predictor.probabilities(images)
    return [
        {"file": str(f), "predictions": predictor.top(p, top_k)}
        for f, p in zip(files, probs, strict=True)
    ]


def write_csv(path: str | os.PathLike, results: list[dict]) -> None:
    """One row per image and rank: file, rank, label, index, probability (written atomically)."""

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["file", "rank", "label", "index", "probability"])
            for r in results:
                for rank, p in enumerate(r["predictions"], 1):
                    out.writerow(
                        [r["file"], rank, p["label"], p["index"], f"{p['probability']:.6f}"]
                    )

    atomic_write(output_file(path, "--csv", ImageError), write)


def format_results(results: list[dict]) -> str:
    width = max(len(r["file"]) for r in results)
    return "\n".join(
        f"{r['file']:<{width}}  "
        + "  ".join(f"{p['label']} {p['probability']:.1%}" for p in r["predictions"])
        for r in results
    )
