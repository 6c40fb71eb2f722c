"""The `fmnist` command: parse flags, call one stage, print. No logic of its own.

One module per stage (data, training, analysis, trust, deploy); each command is a handler
`cmd_x(args)` beside the function `add_x(sub)` that declares its flags.
"""

from __future__ import annotations

import os
import signal
import sys

from fmnist import __version__
from fmnist.cli import analysis, card, data, deploy, training, trust
from fmnist.cli.common import Parser
from fmnist.errors import FmnistError


def build_parser() -> Parser:
    p = Parser(
        prog="fmnist", description="Train, inspect, serve and export CNNs for Fashion-MNIST."
    )
    p.add_argument("--version", action="version", version=f"fmnist {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    for group in (data, training, analysis, card, trust, deploy):
        for add in group.COMMANDS:
            add(sub)
    return p


def _fail(command: str, message: str) -> int:
    # one line whatever the message holds (a line break in a flag's value or a file name)
    sys.stderr.write(f"fmnist {command}: error: {' '.join(message.split())}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    if hasattr(sys.stdout, "reconfigure"):
        # a file name that is not UTF-8 is printed as its bytes, as ls prints it, rather
        # than failing a finished command at its last line
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        try:
            code = _run(argv)
        except SystemExit:  # argparse's --help or --version, printed
            sys.stdout.flush()
            raise
        # flushed here rather than as Python exits, so that a reader who has gone
        # (fmnist models | head -1) is caught below, not reported by the interpreter
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # as the Python documentation advises: stdout to devnull, then a quiet exit 0,
        # as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _run(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FmnistError as e:
        return _fail(args.command, str(e))
    except BrokenPipeError:  # an OSError too: main's, not a failure
        raise
    except OSError as e:
        # the file system refused something no check foresaw: still one line, status 2
        where = f"{e.filename}: " if e.filename else ""
        return _fail(args.command, f"{where}{e.strerror or e}")
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM where a command turns it into one
        signum = getattr(e, "signum", signal.SIGINT)
        how = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
        sys.stderr.write(f"fmnist {args.command}: {how}\n")
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
