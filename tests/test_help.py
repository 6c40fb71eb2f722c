"""The help cannot drift from the code: every "(default: X)" that `fmnist COMMAND --help`
prints is that option's real default, read back from the parser, and `fmnist recipes` lists
the recipe registry."""

from __future__ import annotations

import argparse
import re

import pytest

from fmnist import cli
from fmnist.cli import build_parser
from fmnist.cli.common import Parser
from fmnist.training.config import make_config
from fmnist.training.recipes import PURPOSES, RECIPES

# "(default: X)": X up to the closing parenthesis
DEFAULT = re.compile(r"default: ([^)]*)")
# "the recipe's; seed: 30": the flag left out takes the recipe's value, 30 in seed
FROM_RECIPE = re.compile(r"the recipe's; (\w+): (.+)")
# what a help may say of a default of None: where the value comes from, not a value; a
# pattern with placeholders (OUT/best.json, runs/<model>-...) or a variable ($FMNIST_DATA_DIR)
DESCRIPTION = re.compile(r"^(all|none)\b|^the |[A-Z]{3,}|<\w+>")


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    # one line per help at any terminal: argparse wraps at hyphens, which would split a value
    monkeypatch.setenv("COLUMNS", "1000")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def help_entries(parser: argparse.ArgumentParser) -> list[tuple[argparse.Action, str]]:
    """Each argument's entry in the help text: (its action, its help on one line)."""
    entries: list[tuple[str, list[str]]] = []
    body = parser.format_help().split("\n\n", 1)[1]  # after the usage
    for line in body.splitlines():
        first = re.match(r"  (\S+(?: \S+)*?)(?: {2,}(.*))?$", line)
        if first and not line.startswith("   "):
            entries.append((first[1], [first[2] or ""]))
        elif line.startswith("   ") and entries:
            entries[-1][1].append(line.strip())
        else:  # a section's title or a blank line ends an entry
            entries.append(("", []))
    found = []
    for invocation, lines in entries:
        if invocation:
            found.append((action_of(parser, invocation), " ".join(" ".join(lines).split())))
    return found


def action_of(parser: argparse.ArgumentParser, invocation: str) -> argparse.Action:
    """The action an entry shows: --out for "--out FILE, --json FILE"; for "MODEL", the
    positional shown so."""
    name = invocation.split(",")[0].split()[0]
    if name.startswith("-"):
        return parser._option_string_actions[name]
    (action,) = [
        a for a in parser._actions if not a.option_strings and (a.metavar or a.dest) == name
    ]
    return action


def shown(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def wrong_defaults(parser: argparse.ArgumentParser) -> list[str]:
    """Every "(default: X)" in the parser's help that is not the option's real default."""
    recipe = parser._option_string_actions.get("--recipe")
    wrong = []
    for action, text in help_entries(parser):
        for said in (s.strip() for s in DEFAULT.findall(text)):
            real = action.default
            where = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            if real is not None:
                if said != shown(real):
                    wrong.append(f"{where}: help says {said!r}, default is {shown(real)!r}")
            elif m := FROM_RECIPE.fullmatch(said):
                name, value = m.groups()
                actual = shown(getattr(make_config(name), action.dest))
                if recipe is None or name != recipe.default or value != actual:
                    wrong.append(f"{where}: help says {said!r}; recipe {name} has {actual!r}")
            elif not DESCRIPTION.search(said):
                wrong.append(f"{where}: default is None, help says the value {said!r}")
    return wrong


def test_every_shown_default_is_the_real_one():
    wrong = []
    for parser in subcommands(build_parser()).values():
        wrong += wrong_defaults(parser)
    assert not wrong, "\n".join(wrong)


def test_every_real_default_is_shown():
    """An option with a default and a value says its default (the formatter adds it)."""
    missing = []
    for parser in subcommands(build_parser()).values():
        shown_for = {id(a) for a, text in help_entries(parser) if "default:" in text}
        for a in parser._actions:
            if a.option_strings and a.nargs != 0 and a.default not in (None, argparse.SUPPRESS):
                if id(a) not in shown_for:
                    missing.append(f"{parser.prog} {a.option_strings[0]}")
    assert not missing, missing


def test_a_default_typed_wrong_is_caught():
    parser = subcommands(build_parser())["train"]
    seeds = parser._option_string_actions["--seeds"]
    seeds.help += " (default: 2)"  # the real one is 1
    epochs = parser._option_string_actions["--epochs"]
    epochs.help = "maximum epochs (default: the recipe's; seed: 31)"  # seed has 30
    wrong = wrong_defaults(parser)
    assert any("--seeds" in w and "'2'" in w for w in wrong), wrong
    assert any("--epochs" in w and "31" in w for w in wrong), wrong

    typed = Parser(prog="fmnist planted")
    typed.add_argument("--count", type=int, default=5, help="how many (default: 6)")
    typed.add_argument("--size", type=int, help="how big (default: 30)")  # really None
    typed.add_argument("--limit", type=int, help="the first N (default: all)")  # a description
    wrong = wrong_defaults(typed)
    assert len(wrong) == 2 and "--count" in wrong[0] and "--size" in wrong[1], wrong


def test_every_subcommand_has_help_that_parses():
    commands = subcommands(build_parser())
    assert {"train", "evaluate", "explain", "recipes", "models"} <= set(commands)
    for parser in commands.values():
        assert help_entries(parser)  # at least -h


@pytest.mark.parametrize("command", ["train", "tune", "audit"])
def test_recipe_help_lists_the_registry(command):
    parser = subcommands(build_parser())[command]
    (text,) = [t for a, t in help_entries(parser) if "--recipe" in a.option_strings]
    for name in RECIPES:
        assert re.search(rf"\b{name}\b", text), name


def test_recipes_lists_every_recipe_with_model_epochs_and_purpose(capsys):
    assert cli.main(["recipes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert set(PURPOSES) == set(RECIPES)  # a new recipe comes with its one line
    for name in RECIPES:
        (line,) = [ln for ln in lines if ln.split()[:1] == [name]]
        cfg = make_config(name)
        assert line.split()[1:3] == [cfg.model, str(cfg.epochs)], line
        assert line.endswith(PURPOSES[name])
