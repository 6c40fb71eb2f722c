"""The data, open for inspection (fmnist data --export): every image as a PNG in per-class
folders or each split as one CSV; the training pixels' mean and standard deviation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from fmnist.data import CLASSES, DataError, FashionMNIST
from fmnist.files import make_folders, remove_folders


def pixel_stats(images: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation of the pixels, scaled to [0, 1]."""
    x = images.astype(np.float64) / 255
    return float(x.mean()), float(x.std())


def class_folder(label: int) -> str:
    return f"{label}-{CLASSES[label].replace('/', '-').replace(' ', '_')}"


def write_csv(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """FOLDER/fashion-mnist_<split>.csv: a header, then label and 784 pixels per image."""
    table = np.concatenate([labels[:, None], images.reshape(len(images), -1)], 1)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    path = folder / f"fashion-mnist_{split}.csv"
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


def write_pngs(folder: Path, split: str, images: np.ndarray, labels: np.ndarray) -> None:
    """FOLDER/<split>/<label>-<class>/<index>.png for every image, every class folder made."""
    from PIL import Image

    for label in range(len(CLASSES)):
        (folder / split / class_folder(label)).mkdir(parents=True)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        Image.fromarray(image, "L").save(folder / split / class_folder(label) / f"{i:05d}.png")


def export(ds: FashionMNIST, fmt: str, out: str | os.PathLike) -> Path:
    """Every image as a PNG in OUT/{train,test}/<label>-<class>/<index>.png, or the two
    splits as OUT/fashion-mnist_{train,test}.csv (label, pixel1 ... pixel784). Written into
    a temporary folder beside OUT and renamed at the end: OUT is whole or absent."""
    out = Path(out)
    if fmt not in ("png", "csv"):
        raise DataError(f"--export {fmt}: give png or csv")
    if os.path.lexists(out) and not (out.is_dir() and not any(out.iterdir())):
        raise DataError(f"--export {out}: exists and is not an empty folder; name a new one")
    made = make_folders(out.parent)  # taken back if the export fails
    splits = (
        ("train", ds.train_images, ds.train_labels),
        ("test", ds.test_images, ds.test_labels),
    )
    write_split = write_csv if fmt == "csv" else write_pngs
    tmp = None
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        for split, images, labels in splits:
            write_split(tmp, split, images, labels)
        if out.is_dir():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        import shutil

        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        remove_folders(made)
        raise
    return out
