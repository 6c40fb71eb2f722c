"""The `fmnist` command: parse flags, call one stage, print. No logic of its own.

One module per stage (data, training, analysis, trust, deploy); each command is a handler
`cmd_x(args)` beside the function `add_x(sub)` that declares its flags.
"""

from __future__ import annotations

import os
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
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FmnistError as e:
        return _fail(args.command, str(e))
    except BrokenPipeError:  # an OSError too: caught first
        # the reader went away (fmnist ... | head): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        # the file system refused something no check foresaw: still one line, status 2
        where = f"{e.filename}: " if e.filename else ""
        return _fail(args.command, f"{where}{e.strerror or e}")
    except KeyboardInterrupt:
        sys.stderr.write(f"fmnist {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
