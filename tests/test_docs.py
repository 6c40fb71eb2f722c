"""The documentation site: built with warnings as errors, its command-line reference the
parser's own words, the notebook shown as written, and every page opens in Chromium with
every image loaded and no console error."""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import os
import re
import subprocess
import sys
from html import unescape
from pathlib import Path

import pytest

import fmnist.cli
from fmnist.cli import build_parser
from fmnist.cli.common import shown

from . import chromium

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOK = ROOT / "notebooks" / "fashion_mnist_analysis.ipynb"
TOCTREE = [
    "getting-started", "tutorial", "notebook", "recipes", "data", "trust", "use", "scale",
    "results", "card", "reproducing", "architecture", "cli", "api", "all-runs",
]  # fmt: skip


def docs_module(name: str):
    """A helper of docs/ by its path, as docs/conf.py loads it."""
    spec = importlib.util.spec_from_file_location(f"fmnist_docs_{name}", DOCS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cli_reference = docs_module("cli_reference")
notebook_page = docs_module("notebook_page")


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def text_of(html: str) -> str:
    """A page's words: tags dropped, entities decoded, white space collapsed."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return words.translate(SMART_QUOTES)


SMART_QUOTES = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})  # docutils' smartquotes


# -- the site, built once ------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """`make docs`'s build, into a temporary folder: warnings are errors."""
    for package in ("sphinx", "myst_parser", "furo"):
        pytest.importorskip(package, reason='the docs extra: pip install -e ".[docs]"')
    out = tmp_path_factory.mktemp("docs")
    argv = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
            "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout[-3000:]}{done.stderr}"
    assert done.stderr.strip() == "", done.stderr
    return out / "html"


@pytest.mark.slow
def test_site_builds_every_page(site):
    for page in ["index", *TOCTREE]:
        assert (site / f"{page}.html").is_file(), page
    # the home page links the pages in the toctree's order
    index = (site / "index.html").read_text(encoding="utf-8")
    body = index[index.index('class="toctree-wrapper') :]
    linked = re.findall(r'class="reference internal" href="([a-z-]+)\.html"', body)
    assert [p for i, p in enumerate(linked) if p not in linked[:i]] == TOCTREE


@pytest.mark.slow
def test_cli_page_lists_every_subcommand_and_option(site):
    html = (site / "cli.html").read_text(encoding="utf-8")
    words = text_of(html)
    for name, sp in subcommands(build_parser()).items():
        assert f'id="cli-{name}"' in html, name
        assert f"fmnist {name}" in words, name
        formatter = sp.formatter_class(sp.prog)
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue  # -h is in the usage line only
            for flag in action.option_strings:
                assert flag in words, f"fmnist {name} {flag}"
            if action.help and action.help != argparse.SUPPRESS:
                said = " ".join(formatter._expand_help(action).split())  # with its default
                assert said in words, f"fmnist {name} {action.dest}"


@pytest.mark.slow
def test_cli_page_source_is_what_the_parser_says(site, tmp_path):
    """The page's source, written at build time, is today's parser rendered afresh."""
    assert "```{include} _generated/cli.md" in (DOCS / "cli.md").read_text(encoding="utf-8")
    fresh = cli_reference.write(tmp_path)
    built = DOCS / "_generated" / "cli.md"
    assert built.read_text(encoding="utf-8") == fresh.read_text(encoding="utf-8")


@pytest.mark.slow
def test_api_page_shows_the_docstrings(site):
    import fmnist
    from fmnist import models

    html = (site / "api.html").read_text(encoding="utf-8")
    words = text_of(html)
    for obj in (fmnist.load_data, fmnist.load_model, fmnist.train, fmnist.FmnistError):
        assert f'id="fmnist.{obj.__name__}"' in html
        assert " ".join(obj.__doc__.replace("`", "").split())[:40] in words
    for name in ("create_model", "list_models", "describe"):
        assert f'id="fmnist.models.{name}"' in html
    for name in models.list_models():
        assert name in words


@pytest.fixture(scope="module")
def browser():
    if not Path(chromium.CHROMIUM).exists():
        pytest.skip(f"{chromium.CHROMIUM} is absent: install Debian's `chromium` package")
    b = chromium.Chromium()
    yield b
    b.close()


@pytest.mark.slow
def test_every_page_opens_cleanly_in_chromium(site, browser, tmp_path_factory):
    pages = sorted(site.glob("*.html"), key=lambda p: (p.name != "index.html", p.name))
    assert pages[0].name == "index.html" and len(pages) > len(TOCTREE)
    artifacts = Path(os.environ.get("FMNIST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    problems, images = {}, 0
    for page in pages:
        seen = browser.open(page)
        images += seen["images"]
        if page.name == "index.html":
            (artifacts / "docs-home.png").write_bytes(seen["screenshot"])
            assert seen["title"].startswith("fmnist")
        if seen["broken"] or seen["errors"]:
            problems[page.name] = {"broken images": seen["broken"], "errors": seen["errors"]}
    assert problems == {}
    assert images > 0  # the check looked at pictures (the tutorial's, the charts)


# -- the command-line reference, without a build -------------------------------


def test_cli_reference_has_every_option_with_its_default():
    parser = build_parser()
    text = cli_reference.render(parser)
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    by_name = {s.split("\n", 1)[0].removeprefix("fmnist "): s for s in sections}
    assert list(by_name) == list(subcommands(parser))
    for name, sp in subcommands(parser).items():
        for action in sp._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            invocation = sp.formatter_class(sp.prog)._format_action_invocation(action)
            entry = by_name[name].split(f"`{invocation}`\n: ", 1)
            assert len(entry) == 2, f"fmnist {name}: no entry for {invocation}"
            line = entry[1].split("\n", 1)[0]
            if action.nargs != 0 and action.default not in (None, argparse.SUPPRESS):
                assert "default:" in line, f"fmnist {name} {invocation}: {line}"
                if "(default: " in line:
                    assert cli_reference.escape(shown(action.default)) in line, line


def test_a_changed_help_shows_up_on_the_page(tmp_path, monkeypatch):
    before = cli_reference.write(tmp_path / "before").read_text(encoding="utf-8")
    planted = build_parser()
    (epochs,) = [a for a in subcommands(planted)["train"]._actions if a.dest == "epochs"]
    epochs.help = "passes over the training images, planted by tests/test_docs.py"
    monkeypatch.setattr(fmnist.cli, "build_parser", lambda: planted)
    after = cli_reference.write(tmp_path / "after").read_text(encoding="utf-8")
    assert after != before
    assert "passes over the training images, planted by tests/test\\_docs.py" in after
    assert "planted" not in before


def test_help_text_cannot_become_markup():
    assert cli_reference.escape("a `b` *c* <d> [e](f) |g| $H_I") == (
        "a \\`b\\` \\*c\\* \\<d\\> \\[e\\](f) \\|g\\| $H\\_I"
    )


# -- the notebook page, without a build ----------------------------------------


def test_notebook_page_holds_every_cell(tmp_path):
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    out = notebook_page.write(NOTEBOOK, tmp_path / "_generated", page_dir=tmp_path)
    page = out.read_text(encoding="utf-8")
    assert page.count("```python\n") == sum(
        1 for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()
    )
    for cell in nb["cells"]:  # every paragraph as written (the note goes under the title)
        for paragraph in "".join(cell["source"]).strip().split("\n\n"):
            assert paragraph in page
    # the title first, then the note with the notebook to download
    title = next(line for line in page.splitlines() if line.startswith("# "))
    assert page.index(title) < page.index("{download}`fashion_mnist_analysis.ipynb <")
    link = re.search(r"\{download\}`[^<]+<([^>]+)>`", page).group(1)
    assert (tmp_path / link).resolve() == NOTEBOOK.resolve()


def test_notebook_page_shows_saved_outputs(tmp_path):
    png = (ROOT / "docs" / "images" / "tutorial" / "sample_images.png").read_bytes()
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# A title\n", "\n", "words"]},
            {
                "cell_type": "code",
                "source": "print('hi')",
                "outputs": [
                    {"output_type": "stream", "name": "stdout", "text": ["hi\n"]},
                    {"output_type": "display_data",
                     "data": {"image/png": base64.b64encode(png).decode()}},
                ],
            },
        ]
    }  # fmt: skip
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    out = notebook_page.write(path, tmp_path / "_generated")
    page = out.read_text(encoding="utf-8")
    assert "```python\nprint('hi')\n```" in page
    assert "```text\nhi\n```" in page
    image = re.search(r"!\[[^\]]*\]\(([^)]+)\)", page).group(1)
    assert image.startswith("_generated/notebook_files/")
    assert (tmp_path / image).read_bytes() == png
