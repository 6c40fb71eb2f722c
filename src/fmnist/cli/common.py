"""What every command shares: the parser class, the data flags, benchmark result files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fmnist.errors import FmnistError


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit status 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)

    def _get_values(self, action, arg_strings):
        # argparse drops a value of exactly '--' (--top-k=--) and hands the flag an empty
        # list, whatever its type: a missing value
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


# what a MODEL argument takes
MODEL_HELP = (
    "default or best (the models that come with the package), a run directory or a "
    ".safetensors model file"
)


def data_flags(sp) -> None:
    """--data-dir and --no-download, for every command that reads the dataset."""
    sp.add_argument(
        "--data-dir",
        help="folder with the four IDX files (default: $FMNIST_DATA_DIR, the user cache, "
        "then /usr/share/datasets/fashion-mnist)",
    )
    sp.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download; fail if no local copy is found",
    )


def results_file(path: str | None, default: str):
    """Where a benchmark's JSON goes, checked before the (long) measurement starts."""

    from fmnist.training.rundir import make_writable_dir

    out = Path(path or default)
    try:
        make_writable_dir(out.parent)
    except OSError as e:
        raise FmnistError(f"{out}: cannot write the results ({e.strerror or e})") from None
    return out


def save_results(out, record: dict, table: str) -> None:
    from fmnist.checkpoint import write_json

    write_json(out, record)
    print(f"\n{table}\n\nresults: {out}")
