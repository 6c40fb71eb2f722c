"""Sphinx configuration: furo, Markdown pages (MyST), the API from docstrings (autodoc).

Built with warnings as errors (`make docs`). Before the pages are read, the builder-inited
hook writes docs/_generated/: the command-line reference from the parser, the notebook as a
page, and, where docs/generate.py exists, the results tables and charts from the records.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
GENERATED = DOCS / "_generated"
NOTEBOOK = ROOT / "notebooks" / "fashion_mnist_analysis.ipynb"

# the package of this checkout, whether or not it is installed
sys.path.insert(0, str(ROOT / "src"))

project = "fmnist"
author = "the fashion-mnist-cnn authors"
copyright = "the fashion-mnist-cnn authors"
html_title = "fmnist"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3  # [text](page.md#a-heading) links, as on GitHub

# _generated/ holds pieces that pages include, not pages of their own
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

# curly quotes only: "--epochs" and "..." in prose stay as typed (no dashes, no ellipses)
smartquotes_action = "q"

# docstrings write `name` for code, as Markdown does
default_role = "code"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True  # log=print, not log=<built-in function print>
autodoc_member_order = "bysource"

html_theme = "furo"
html_static_path = []
html_show_sourcelink = False


def _module(path: Path):
    """A module of docs/ by its path, not on sys.path (and not importable by accident)."""
    name = f"fmnist_docs_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # where dataclasses and pickle look a module's names up
    spec.loader.exec_module(module)
    return module


def generate(app) -> None:
    GENERATED.mkdir(exist_ok=True)
    _module(DOCS / "cli_reference.py").write(GENERATED)
    _module(DOCS / "notebook_page.py").write(NOTEBOOK, GENERATED)
    _module(DOCS / "models_table.py").write(GENERATED)
    results = DOCS / "generate.py"  # the results generator, written beside this file
    if results.exists():
        _module(results).write_all(GENERATED)


def setup(app):
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True}
