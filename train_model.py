"""Train the tutorial's CNN with its settings and save it, as `python train_model.py` did.

The run directory (config, history, metrics, model, report) goes under runs/; the model
is also saved as models/fashion_mnist_model.safetensors with its description and metrics
in models/fashion_mnist_model.json, and the tutorial's three figures are copied into
plots/. Same as `fmnist train --recipe seed`, plus those copies.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_MODEL = ROOT / "models" / "fashion_mnist_model.safetensors"
TUTORIAL_FIGURES = ("sample_images.png", "training_curves.png", "confusion_matrix.png")
try:
    import fmnist  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

from fmnist import FmnistError  # noqa: E402
from fmnist.analysis.report import write_report  # noqa: E402
from fmnist.checkpoint import save_model  # noqa: E402
from fmnist.training.train import make_config, train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, help="maximum epochs (default: 30)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--data-dir", help="folder with the four IDX files (default: search)")
    p.add_argument("--out", help="run directory (default: runs/seed_cnn-seed-s<seed>-<time>)")
    p.add_argument("--no-report", dest="report", action="store_false", help="skip report.html")
    p.add_argument(
        "--model-path",
        default=str(DEFAULT_MODEL),
        help="where to save the model (default: models/fashion_mnist_model.safetensors)",
    )
    args = p.parse_args(argv)
    try:
        cfg = make_config("seed", epochs=args.epochs, seed=args.seed)
        result = train(cfg, out=args.out, data_dir=args.data_dir)
        m = result.metrics
        headline = {k: v for k, v in m.items() if k not in ("per_class", "confusion_matrix")}
        headline["run"] = result.run_dir.name
        record = json.loads((result.run_dir / "config.json").read_text())
        saved = save_model(result.model, args.model_path, metrics=headline, record=record)
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
    print(f"model         {saved} (+ {saved.with_suffix('.json').name})")
    if page is not None:
        print(f"report        {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
