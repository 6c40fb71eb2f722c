"""Train the tutorial's CNN with its settings and save it, as `python train_model.py` did.

The run directory (config, history, metrics, model, report) goes under runs/; the model
becomes the package's default model, src/fmnist/weights/default.*: the weights
(.safetensors), their description and metrics (.json), and the same model as ONNX (.onnx)
and Keras (.h5), all four written together or none. The tutorial's three figures are
copied into plots/. Same as `fmnist train --recipe seed`, plus those copies.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = ROOT / "src" / "fmnist" / "weights" / "default.safetensors"
SUFFIXES = (".safetensors", ".json", ".onnx", ".h5")  # the files of one model, kept together
TUTORIAL_FIGURES = ("sample_images.png", "training_curves.png", "confusion_matrix.png")
try:
    import fmnist  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from fmnist import FmnistError  # noqa: E402
from fmnist.analysis.report import write_report  # noqa: E402
from fmnist.checkpoint import save_model  # noqa: E402
from fmnist.deploy.export import export  # noqa: E402
from fmnist.training.train import make_config, train  # noqa: E402


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, help="maximum epochs (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--train-limit", type=int, help="train on the first N images only (default: all)"
    )
    p.add_argument("--data-dir", help="folder with the four IDX files (default: search)")
    p.add_argument("--out", help="run directory (default: runs/seed_cnn-seed-s<seed>-<time>)")
    p.add_argument("--no-report", dest="report", action="store_false", help="skip report.html")
    p.add_argument(
        "--model-path",
        default=str(DEFAULT_MODEL),
        help="where to save the model's four files (default: src/fmnist/weights/default.*)",
    )
    args = p.parse_args(argv)
    try:
        cfg = make_config("seed", epochs=args.epochs, seed=args.seed, train_limit=args.train_limit)
        result = train(cfg, out=args.out, data_dir=args.data_dir)
        m = result.metrics
        headline = {k: v for k, v in m.items() if k not in ("per_class", "confusion_matrix")}
        headline["run"] = result.run_dir.name
        record = json.loads((result.run_dir / "config.json").read_text())
        saved = save_together(result.model, Path(args.model_path), headline, record)
        page = None
        if args.report:
            page = write_report(result.run_dir, data_dir=args.data_dir)
            # the tutorial's three figures, kept beside the default model
            if Path(args.model_path).resolve() == DEFAULT_MODEL:
                (ROOT / "plots").mkdir(exist_ok=True)
                for name in TUTORIAL_FIGURES:
                    shutil.copyfile(result.run_dir / "plots" / name, ROOT / "plots" / name)
    except FmnistError as e:
        print(f"train_model.py: error: {e}", file=sys.stderr)
        return 2
    print(
        f"\ntest accuracy {m['test_accuracy']:.2%}  (loss {m['test_loss']:.4f}, "
        f"best epoch {m['best_epoch']} of {m['epochs']})"
    )
    print(f"training time {m['train_s']:.1f} s on {m['device']}")
    print(f"run directory {result.run_dir}")
    others = ", ".join(saved.with_suffix(s).name for s in SUFFIXES[1:])
    print(f"model         {saved} (+ {others})")
    if page is not None:
        print(f"report        {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
