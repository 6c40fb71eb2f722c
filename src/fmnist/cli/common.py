"""What every command shares: the parser and its help, the MODEL flags, the data flags,
benchmark result files."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

from fmnist.errors import FmnistError


def shown(value) -> str:
    """A default as a user would type it: a list as its items, space-separated."""
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    return str(value)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each option's real default, read from the parser, after its help. Left out for a flag
    that takes no value, for a default of None (the help says where the value comes from
    then: "default: the recipe's") and where the help already names its default."""

    def _get_help_string(self, action):
        return action.help or ""  # the default is added after the %-expansion, not in it

    def _expand_help(self, action):
        text = super()._expand_help(action)
        if (
            action.option_strings
            and action.nargs != 0
            and action.default not in (None, argparse.SUPPRESS)
            and "default:" not in text
        ):
            text += f" (default: {shown(action.default)})"
        return text


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit status 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)

    def _get_values(self, action, arg_strings):
        # argparse drops a value of exactly '--' (--top-k=--) and hands the flag an empty
        # list, whatever its type: a missing value
        if action.option_strings and action.nargs is None and arg_strings == ["--"]:
            self.error(f"argument {'/'.join(action.option_strings)}: expected one argument")
        return super()._get_values(action, arg_strings)


# The most runs one command makes (--seeds, --trials, --repeats): more could never end
MAX_RUNS = 1000


def at_most(flag: str, value, high: int) -> None:
    """Refuse a count or seed past `high`: past a library's limit (seeds: MAX_SEED in
    fmnist.training.config), or more than could ever end."""
    if value is not None and value > high:
        raise FmnistError(f"{flag} must be at most {high:,}, got {value}")


def positive_seconds(flag: str, value: float) -> None:
    """Refuse a time budget that is not a finite number of seconds above zero (NaN fails
    every comparison, so a check for `<= 0` lets it through; an infinite budget is none)."""
    if not (math.isfinite(value) and value > 0):
        raise FmnistError(f"{flag} must be positive and finite (seconds), got {value}")


# what a MODEL argument takes
MODEL_HELP = (
    "default or best (the models that come with the package), a run directory or a "
    ".safetensors model file"
)
DEFAULT_MODEL = "best"


class _TypedModel(argparse.Action):
    """--model's value, noting that it was typed: a positional MODEL beside it is a second
    model, refused rather than one of them silently ignored."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        namespace.model_typed = True


def model_flag(sp, *, positional: bool = False) -> None:
    """--model MODEL, for a command that uses a trained model; with `positional`, also the
    older form, a MODEL before the other arguments."""
    sp.add_argument(
        "--model", default=DEFAULT_MODEL, metavar="MODEL", action=_TypedModel, help=MODEL_HELP
    )
    if positional:
        sp.add_argument(
            "model_positional", nargs="?", metavar="MODEL", help="the same as --model MODEL"
        )
    sp.set_defaults(model_typed=False)
    code_flags(sp)


def code_flags(sp) -> None:
    """--model-code and --allow-changed-code: the code a model of the user's own needs."""
    sp.add_argument(
        "--model-code",
        metavar="FILE",
        help="for a model trained from your own code (--model file.py:Class): that source "
        "file (or package.module); a model file never makes fmnist import code by itself",
    )
    sp.add_argument(
        "--allow-changed-code",
        action="store_true",
        help="load it even if --model-code's SHA-256 differs from the one it was trained with",
    )


def model_code(args) -> dict:
    """load_model's keywords for the code --model-code names."""
    return {"model_code": args.model_code, "allow_changed_code": args.allow_changed_code}


def names_a_model(arg: str) -> bool:
    """Whether a positional argument is a model (default, best, a run directory or a
    .safetensors file) rather than an image or a folder of images."""
    from fmnist.checkpoint import PACKAGED

    return (
        arg in PACKAGED
        or arg.endswith(".safetensors")
        or os.path.isfile(os.path.join(arg, "model.safetensors"))
    )


def chosen_model(args, positional: str | None) -> str:
    """The model of --model or of a positional MODEL, refusing both."""
    if positional is None:
        return args.model
    if args.model_typed:
        raise FmnistError(
            f"two models: --model {args.model} and {positional}; give one, as --model MODEL"
        )
    return positional


def data_flags(sp) -> None:
    """--data-dir and --no-download, for every command that reads the dataset."""
    sp.add_argument(
        "--data-dir",
        help="folder with the four IDX files (without it: $FMNIST_DATA_DIR, the user cache, "
        "then /usr/share/datasets/fashion-mnist)",
    )
    sp.add_argument(
        "--no-download",
        dest="download",
        action="store_false",
        help="never download; fail if no local copy is found",
    )


def results_flag(sp, where: str) -> None:
    """--out FILE for a benchmark's JSON record; --json FILE, its older name, still works."""
    sp.add_argument("--out", "--json", metavar="FILE", help=f"results file (default: {where})")


def results_file(path: str | None, default: str):
    """Where a benchmark's JSON goes, checked before the (long) measurement starts; its
    missing folders are made only when it is written."""
    from fmnist.files import Output, check_outputs

    try:
        return check_outputs(Output(path or default, "--out", new_folders=True))[0]
    except FmnistError as e:
        raise FmnistError(f"cannot write the results: {e}") from None


def save_results(out, record: dict, table: str) -> None:
    from fmnist.files import make_folders, remove_folders, write_json

    made = make_folders(Path(out).parent)
    try:
        write_json(out, record)
    except BaseException:
        remove_folders(made)
        raise
    print(f"\n{table}\n\nresults: {out}")


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is so that its cleanup runs: their
    default action ends Python at once, leaving temporary folders behind."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signal.Signals(signum)


@contextmanager
def stopped_by_signals(signals=(signal.SIGTERM, signal.SIGHUP)):
    """Within the block, the signals that would kill the process raise Stopped instead; a
    signal handled or ignored already (nohup's SIGHUP) is left as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return

    def stop(signum, frame):
        raise Stopped(signum)

    before = {s: signal.getsignal(s) for s in signals}
    for s, handler in before.items():
        if handler == signal.SIG_DFL:
            signal.signal(s, stop)
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
