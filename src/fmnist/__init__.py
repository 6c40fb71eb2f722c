"""fashion-mnist-cnn: train, inspect, serve and export CNNs for Fashion-MNIST.

The Python API, three functions (each imports its stage when called):

    import fmnist
    ds = fmnist.load_data()                 # the verified arrays
    model = fmnist.load_model("best")       # "best", "default" or a path
    model.predict(ds.test_images[:5]).names
    result = fmnist.train(recipe="fast")    # a run directory and its metrics

Every problem with their arguments, files or data raises an `FmnistError` subclass with
one line of words (an image that cannot be used: ImageError); those about an argument's
type are also `TypeError`s, and a device this machine does not have is also a `ValueError`.
"""

__version__ = "0.1.0"

import os

from fmnist.errors import ArgumentTypeError, FmnistError, what

__all__ = ["FmnistError", "__version__", "load_data", "load_model", "train"]


def load_data(data_dir=None, download: bool = True):
    """Fashion-MNIST, verified by SHA-256: `.train_images` (60000, 28, 28) uint8,
    `.train_labels`, `.test_images`, `.test_labels`, and where it came from. Raises
    DataError when it cannot be found or verified."""
    from fmnist import data

    _check_path("data_dir", data_dir)
    _check_flag("download", download)
    return data.load(data_dir, download=download)


def load_model(model="best", device="cpu", *, model_code=None, allow_changed_code=False):
    """A model that comes with the package ("best", "default") or one you trained (a run
    directory or a .safetensors file), ready to `.predict(images)`; `.module` is the
    `torch.nn.Module`. `device`: "cpu", "cuda", "cuda:N", "mps", "auto" or a torch.device
    this machine has (DeviceError otherwise). `.predict` takes paths, image bytes, PIL
    images, uint8 arrays or float arrays in [0, 1] (see fmnist.deploy.inputs). A model
    trained from your own code (model="file.py:Class") needs that code named again,
    `model_code="file.py"`: a model file never makes fmnist import code by itself, and code
    whose SHA-256 changed since training is refused unless `allow_changed_code=True`."""
    from fmnist.deploy.predict import Predictor

    _check_path("model_code", model_code)
    _check_flag("allow_changed_code", allow_changed_code)
    return Predictor.load(
        model, device, model_code=model_code, allow_changed_code=allow_changed_code
    )


def train(recipe: str = "seed", out=None, *, dataset=None, data_dir=None, download=True,
          log=print, **settings):  # fmt: skip
    """Train with a recipe (seed, fast, tuned, best, rung90 ... rung95, or a recipe file)
    and any settings of `fmnist train` (epochs=, seed=, model=, ...); returns the run's
    result: `.run_dir`, `.model`, `.metrics`, `.history`. `log=None` keeps it quiet.
    Raises ConfigError for a setting that cannot be used."""
    from fmnist.data import FashionMNIST
    from fmnist.training.config import make_config
    from fmnist.training.train import train as fit

    if not isinstance(recipe, (str, os.PathLike)):
        raise ArgumentTypeError(f"recipe: give a recipe name or a recipe file (got {what(recipe)})")
    _check_path("out", out)
    _check_path("data_dir", data_dir)
    _check_flag("download", download)
    if dataset is not None and not isinstance(dataset, FashionMNIST):
        raise ArgumentTypeError(
            f"dataset: give what fmnist.load_data returns (got {what(dataset)})"
        )
    if log is not None and not callable(log):
        raise ArgumentTypeError(f"log: give a function such as print, or None (got {what(log)})")
    cfg = make_config(recipe, **settings)
    quiet = log is None
    return fit(cfg, out=out, dataset=dataset, data_dir=data_dir, download=download,
               log=(lambda *a: None) if quiet else log)  # fmt: skip


def _check_path(name: str, value) -> None:
    if value is not None and not isinstance(value, (str, os.PathLike)):
        raise ArgumentTypeError(f"{name}: give a path (got {what(value)})")


def _check_flag(name: str, value) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name}: give True or False (got {what(value)})")
