"""Train the tutorial's CNN with its settings and save it where the tutorial does.

`python train_model.py` writes the tutorial's files: models/fashion_mnist_model.h5 (Keras)
with the same model beside it as .safetensors (with its description, .json) and .onnx, all
four together or none; the three figures plots/sample_images.png, training_curves.png and
confusion_matrix.png; and the run directory under runs/ (config, history, metrics, model,
report). All of them are outside version control. `make default-model` runs it with
--model-path src/fmnist/weights/default.h5 --plots docs/images/tutorial: the model that comes
with the package and the pictures the documentation shows change only that way.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
TUTORIAL_MODEL = ROOT / "models" / "fashion_mnist_model.h5"
SUFFIXES = (".safetensors", ".json", ".onnx", ".h5")  # the files of one model, kept together
try:
    import fmnist  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from fmnist import data  # noqa: E402
from fmnist.analysis import plots  # noqa: E402
from fmnist.analysis.report import write_report  # noqa: E402
from fmnist.checkpoint import save_model  # noqa: E402
from fmnist.deploy.export import export  # noqa: E402
from fmnist.errors import FmnistError  # noqa: E402
from fmnist.training.config import make_config  # noqa: E402
from fmnist.training.train import train  # noqa: E402


def save_together(model, path: Path, metrics: dict, record: dict) -> Path:
    """The model's weights, description, ONNX and Keras files, all or none: each is made
    in a temporary folder beside `path` and only then renamed into place."""
    path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".new-model-") as tmp:
        stem = Path(tmp) / path.stem
        new = save_model(model, stem.with_suffix(".safetensors"), metrics=metrics, record=record)
        export(new, "onnx", out=stem.with_suffix(".onnx"))
        export(new, "keras", out=stem.with_suffix(".h5"))
        for suffix in SUFFIXES:
            os.replace(stem.with_suffix(suffix), path.with_suffix(suffix))
    return path


def tutorial_figures(result, dataset, folder: Path) -> list[Path]:
    """The tutorial's three figures: samples of every class, the training curves and the
    confusion matrix of the test set."""
    m = result.metrics
    figures = {
        "sample_images.png": plots.sample_grid(
            dataset.train_images, dataset.train_labels, seed=result.config.seed
        ),
        "training_curves.png": plots.training_curves(
            result.history, m["best_epoch"], bool(m["stopped_early"])
        ),
        "confusion_matrix.png": plots.confusion_matrix(m["confusion_matrix"]),
    }
    folder.mkdir(parents=True, exist_ok=True)
    return [plots.save(fig, folder / name) for name, fig in figures.items()]


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=30, help="maximum epochs")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--train-limit", type=int, default=0, help="train on N images only; 0: all")
    p.add_argument("--data-dir", help="folder with the four IDX files (default: search)")
    p.add_argument("--out", help="run directory (default: runs/seed_cnn-seed-s<seed>-<time>)")
    p.add_argument("--no-report", dest="report", action="store_false", help="skip report.html")
    p.add_argument(
        "--model-path",
        type=Path,
        default=TUTORIAL_MODEL,
        help="the Keras file to write; the .safetensors, .json and .onnx go beside it",
    )
    p.add_argument(
        "--plots", type=Path, default=ROOT / "plots", help="folder for the three figures"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        dataset = data.load(args.data_dir)
        cfg = make_config("seed", epochs=args.epochs, seed=args.seed, train_limit=args.train_limit)
        result = train(cfg, out=args.out, dataset=dataset)
        m = result.metrics
        headline = {k: v for k, v in m.items() if k not in ("per_class", "confusion_matrix")}
        headline["run"] = result.run_dir.name
        record = json.loads((result.run_dir / "config.json").read_text())
        saved = save_together(result.model, args.model_path, headline, record)
        figures = tutorial_figures(result, dataset, args.plots)
        page = write_report(result.run_dir, data_dir=args.data_dir) if args.report else None
    except FmnistError as e:
        print(f"train_model.py: error: {e}", file=sys.stderr)
        return 2
    print(
        f"\ntest accuracy {m['test_accuracy']:.2%}  (loss {m['test_loss']:.4f}, "
        f"best epoch {m['best_epoch']} of {m['epochs']})"
    )
    print(f"training time {m['train_s']:.1f} s on {m['device']}")
    print(f"run directory {result.run_dir}")
    others = ", ".join(saved.with_suffix(s).name for s in SUFFIXES if s != ".h5")
    print(f"model         {saved.with_suffix('.h5')} (+ {others})")
    print(f"figures       {', '.join(str(f) for f in figures)}")
    if page is not None:
        print(f"report        {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
