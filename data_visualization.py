"""The tutorial's data figures, written into plots/: samples of every class, the class
distribution of the train / validation / test splits, preprocessing, the mean image of each
class and pixel intensity histograms.

    python data_visualization.py [--out plots] [--data-dir D] [--seed 0]

The same figures open every run's report (`fmnist report RUN_DIR`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist import data
from fmnist.analysis import plots
from fmnist.analysis.report import data_figures
from fmnist.errors import FmnistError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="plots", help="folder for the PNGs (default: plots)")
    p.add_argument("--data-dir", help="folder with the four IDX files (default: as `fmnist data`)")
    p.add_argument("--val-fraction", type=float, default=0.2, help="(default: 0.2, the seed's)")
    p.add_argument("--seed", type=int, default=0, help="split and sample seed (default: 0)")
    args = p.parse_args(argv)
    try:
        ds = data.load(args.data_dir)
        train_idx, val_idx = data.stratified_split(ds.train_labels, args.val_fraction, args.seed)
        for key, _title, _caption, fig in data_figures(ds, train_idx, val_idx, args.seed):
            print(plots.save(fig, Path(args.out) / f"{key}.png"))
    except FmnistError as e:
        sys.stderr.write(f"data_visualization.py: error: {e}\n")
        return 2
    except OSError as e:
        sys.stderr.write(f"data_visualization.py: error: {args.out}: {e.strerror or e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
