"""fashion-mnist-cnn: train, inspect, serve and export CNNs for Fashion-MNIST.

The Python API, three functions (each imports its stage when called):

    import fmnist
    ds = fmnist.load_data()                 # the verified arrays
    model = fmnist.load_model("best")       # "best", "default" or a path
    model.predict(ds.test_images[:5]).names
    result = fmnist.train(recipe="fast")    # a run directory and its metrics
"""

__version__ = "0.1.0"


from fmnist.errors import FmnistError

__all__ = ["FmnistError", "__version__", "load_data", "load_model", "train"]


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
    from fmnist.training.config import make_config
    from fmnist.training.train import train as fit

    cfg = make_config(recipe, **settings)
    quiet = log is None
    return fit(cfg, out=out, dataset=dataset, data_dir=data_dir, download=download,
               log=(lambda *a: None) if quiet else log)  # fmt: skip
