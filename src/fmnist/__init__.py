"""fashion-mnist-cnn: train, inspect, serve and export CNNs for Fashion-MNIST.

The Python API, three functions (each imports its stage when called):

    import fmnist
    ds = fmnist.load_data()                 # the verified arrays
    model = fmnist.load_model("best")       # "best", "default" or a path
    model.predict(ds.test_images[:5]).names
    result = fmnist.train(recipe="fast")    # a run directory and its metrics
"""

import errno
import json
import os
import stat
from pathlib import Path

__version__ = "0.1.0"


class FmnistError(Exception):
    """A problem with the user's input, data or environment: shown as one line, exit status 2."""


def regular_file(
    path, what: str = "file", error: type = FmnistError, missing: str = "no such file"
):
    """`path` as a Path if it names a regular file (after links); otherwise `error` with a
    true one-line reason: missing, a link that loops, a folder, a named pipe, a device."""
    a = "an" if what[:1] in "aeiou" else "a"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(
                f"{path}: a symbolic link that loops back on itself, not {a} {what}"
            ) from None
        if e.errno == errno.ENOTDIR:
            raise error(f"{path}: {missing} (a part of the path is a file, not a folder)") from None
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    for test, kind in kinds:
        if test(mode):
            raise error(f"{path}: {kind}, not {a} {what}; give a regular file")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file; give {a} {what}")
    return Path(path)


def read_json(path, what: str, missing: str = "no such file", error: type = FmnistError):
    """A JSON file's content; a missing, special or unreadable file raises `error` as one
    line."""
    regular_file(path, what, error, missing)
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise error(f"{path}: not a readable {what} ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


def load_data(data_dir=None, download: bool = True):
    """Fashion-MNIST, verified by SHA-256: `.train_images` (60000, 28, 28) uint8,
    `.train_labels`, `.test_images`, `.test_labels`, and where it came from."""
    from fmnist import data

    return data.load(data_dir, download=download)


def load_model(model="best", device="cpu"):
    """A model that comes with the package ("best", "default") or one you trained (a run
    directory or a .safetensors file), ready to `.predict(images)`; `.module` is the
    `torch.nn.Module`."""
    from fmnist.deploy.predict import Predictor

    return Predictor.load(model, device)


def train(recipe: str = "seed", out=None, *, dataset=None, data_dir=None, download=True,
          log=print, **settings):  # fmt: skip
    """Train with a recipe (seed, fast, tuned, best, rung90 ... rung95, or a recipe file)
    and any settings of `fmnist train` (epochs=, seed=, model=, ...); returns the run's
    result: `.run_dir`, `.model`, `.metrics`, `.history`. `log=None` keeps it quiet."""
    from fmnist.training.train import make_config
    from fmnist.training.train import train as fit

    cfg = make_config(recipe, **settings)
    quiet = log is None
    return fit(cfg, out=out, dataset=dataset, data_dir=data_dir, download=download,
               log=(lambda *a: None) if quiet else log)  # fmt: skip
