"""The analysis notebook runs top to bottom against the package as it is now."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "fashion_mnist_analysis.ipynb"
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.mark.slow
def test_notebook_runs(dataset, tmp_path, monkeypatch):
    # the kernel is a fresh process: it must import this checkout and find the data the
    # dataset fixture found; the run directory it trains goes under tmp_path
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))
    )
    monkeypatch.setenv("FMNIST_DATA_DIR", str(dataset.directory))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # its one parameter made smaller, as papermill would: the training images of its run
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "TRAIN_LIMIT = 6000" in first.source
    first.source = first.source.replace("TRAIN_LIMIT = 6000", "TRAIN_LIMIT = 2000")
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figure_cells = [
        c
        for c in nb.cells
        if c.cell_type == "code" and c.source.splitlines()[-1].startswith("plots.")
    ]
    assert len(figure_cells) >= 10
    for cell in figure_cells:
        assert any("image/png" in o.get("data", {}) for o in cell.outputs), cell.source
    text = "".join(o.get("text", "") for o in outputs)
    assert "test accuracy" in text and "Pullover" in text
    assert list(tmp_path.glob("runs/*/report.html")) == []  # the notebook does not write one
    assert len(list(tmp_path.glob("runs/*/model.safetensors"))) == 1
