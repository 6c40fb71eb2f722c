"""What the Python API's `load_model(...)` and its `.predict` accept, checked with clear words.

Images come as paths, encoded bytes, PIL images, NumPy arrays (or anything with
`__array__`, such as a CPU tensor) or lists of these; arrays hold dataset pixels: uint8
(or any integer type) from 0 to 255, or floats that are intensities in [0, 1]. Floats are
never cast as they are: 0.5 is mid-gray, and a float array of 0-255 values is refused
rather than read as all white. Whatever cannot be used raises an FmnistError subclass:
ImageError for an image, ImageTypeError (also a TypeError) for something that is not one,
DeviceError (also a ValueError) for a device this machine does not have."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from PIL import Image

from fmnist.deploy.images import SIZE, ImageError, prepare, read_image
from fmnist.errors import ArgumentError, ArgumentTypeError, what

ONE_IMAGE = (str, os.PathLike, bytes, bytearray, memoryview, Image.Image)
KINDS = "a path, encoded image bytes, a PIL image, a NumPy array or a list of these"
SHAPES = "(28, 28), (N, 28, 28), (N, 1, 28, 28) or (N, 28, 28, 1)"


class ImageTypeError(ImageError, ArgumentTypeError):
    """Something given as an image that is not one of the kinds `predict` takes."""


class DeviceError(ArgumentError):
    """A device name torch does not know, or one this machine does not have."""


def check_device(device) -> torch.device:
    """Where a model runs: "cpu" (or None), "cuda", "cuda:N", "mps", "auto" (a GPU when
    there is one) or a torch.device, refused unless this machine has it."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device.strip() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str):
        try:
            device = torch.device(device.strip())
        except (RuntimeError, ValueError):
            raise DeviceError(
                f"device {device!r}: unknown; give cpu, cuda, cuda:N, mps or auto"
            ) from None
    elif not isinstance(device, torch.device):
        raise ArgumentTypeError(f"device: give a name such as 'cpu' or 'cuda' (got {what(device)})")
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise DeviceError(f"device '{device}': this machine has no CUDA GPU; use 'cpu'")
        if device.index is not None and device.index >= n:
            raise DeviceError(
                f"device '{device}': this machine has {n} CUDA GPU(s), cuda:0 to cuda:{n - 1}"
            )
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise DeviceError("device 'mps': this machine has no Apple GPU; use 'cpu'")
        return device
    raise DeviceError(f"device '{device}': give cpu, cuda, cuda:N, mps or auto")


def check_model_name(model) -> None:
    if not isinstance(model, (str, os.PathLike)):
        raise ArgumentTypeError(
            f"model: give 'best', 'default', a run directory or a .safetensors file "
            f"(got {what(model)})"
        )


def dataset_batch(images) -> np.ndarray:
    """Images of any kind the API takes -> uint8 (N, 28, 28), N >= 1."""
    if isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 3:
        if images.shape[1:] == (SIZE, SIZE) and len(images):
            return images  # already what the model takes: no copy
    return np.stack([dataset_image(x, i) for i, x in enumerate(as_list(images))])


def as_list(images) -> list:
    """One image or many -> a list of single images."""
    if isinstance(images, ONE_IMAGE):
        return [images]
    if hasattr(images, "__array__"):
        return array_images(as_array(images, "images"))
    if isinstance(images, Mapping) or not isinstance(images, Iterable):
        raise ImageTypeError(f"images: give {KINDS} (got {what(images)})")
    items = list(images)
    if not items:
        raise ImageError("no images given (an empty list)")
    if all(isinstance(x, (list, tuple)) for x in items):  # nested lists of numbers: one array
        return array_images(as_array(items, "images"))
    return items


def as_array(x, where: str) -> np.ndarray:
    try:
        return np.asarray(x)
    except (TypeError, ValueError, RuntimeError) as e:  # ragged lists, a tensor on a GPU
        raise ImageTypeError(f"{where}: not an array of pixels ({e})") from None


def array_images(a: np.ndarray) -> list[np.ndarray]:
    if a.size == 0:
        raise ImageError(f"an empty array of shape {a.shape}: give {SHAPES} with pixels")
    if a.ndim == 4 and a.shape[1] == 1:  # PyTorch's layout, one channel
        a = a[:, 0]
    elif a.ndim == 4 and a.shape[3] == 1:  # channels last, one channel
        a = a[..., 0]
    if a.ndim == 2:
        return [a]
    if a.ndim == 3:
        return list(a)
    raise ImageError(f"an array of shape {a.shape}: give {SHAPES}")


def dataset_image(x, index: int = 0) -> np.ndarray:
    """One image of any kind the API takes -> uint8 (28, 28), the way the model takes it."""
    if isinstance(x, (str, os.PathLike)):
        if not os.fspath(x):
            raise ImageError(f"image {index}: an empty path")
        return read_image(x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return read_image(bytes(x), f"image {index} (bytes)")
    if isinstance(x, Image.Image):
        return prepare(x, f"image {index}")
    if not isinstance(x, (list, tuple)) and not hasattr(x, "__array__"):
        raise ImageTypeError(f"image {index}: give {KINDS} (got {what(x)})")
    return dataset_pixels(as_array(x, f"image {index}"), index)


def dataset_pixels(a: np.ndarray, index: int = 0) -> np.ndarray:
    """An array of dataset pixels -> uint8 (28, 28); floats are intensities in [0, 1]."""
    where = f"image {index}"
    if a.shape != (SIZE, SIZE):
        raise ImageError(f"{where}: an array of shape {a.shape}; a dataset image is (28, 28)")
    if a.dtype == np.uint8:
        return a
    integer = np.issubdtype(a.dtype, np.integer)
    if a.dtype == bool or not (integer or np.issubdtype(a.dtype, np.floating)):
        raise ImageTypeError(
            f"{where}: an array of {a.dtype}; give uint8 pixels (0 to 255) or floats in [0, 1]"
        )
    if integer:
        if a.min() < 0 or a.max() > 255:
            raise ImageError(f"{where}: integer pixels from {a.min()} to {a.max()}; give 0 to 255")
        return a.astype(np.uint8)
    if not np.isfinite(a).all():
        raise ImageError(f"{where}: float pixels that are NaN or infinite; give floats in [0, 1]")
    if a.min() < 0 or a.max() > 1:
        raise ImageError(
            f"{where}: float pixels from {a.min():g} to {a.max():g}; floats are intensities "
            "in [0, 1] (for 0 to 255, give uint8: a.astype(np.uint8))"
        )
    return np.round(a.astype(np.float64) * 255).astype(np.uint8)
