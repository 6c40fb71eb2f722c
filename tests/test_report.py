"""`fmnist train` ends with a report; the page holds every figure and opens in Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fmnist.analysis.report
from fmnist import cli, data
from fmnist.analysis.features import last_linear, logits_and_features
from fmnist.analysis.report import read_run
from fmnist.analysis.report_html import fmt, render
from fmnist.checkpoint import load_model
from fmnist.evaluate import evaluate_logits, infer

from . import chromium

# every test here reads one written report, which takes a trained run and its figures
pytestmark = pytest.mark.slow

FIGURES = [
    "sample_images",
    "class_distribution",
    "preprocessing",
    "mean_images",
    "pixel_histograms",
    "training_curves",
    "learning_rate",
    "confusion_matrix",
    "per_class_metrics",
    "classification_report",
    "confused_pairs",
    "misclassified",
    "reliability",
    "feature_map",
    "explanations",
]
TSNE_POINTS = 300  # enough for a map with ten clusters, about 2 s of t-SNE


@pytest.fixture(scope="module")
def cli_run(dataset, tiny_run, tmp_path_factory):
    """`fmnist report` on a copy of the shared small run, with a small t-SNE map; the
    dataset fixture stands in for a second load."""
    out = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(tiny_run.run_dir, out)
    argv = ["report", str(out), "--tsne-points", str(TSNE_POINTS), "--no-download"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "load", lambda *a, **k: dataset)
        printed = io.StringIO()
        mp.setattr("sys.stdout", printed)
        assert cli.main(argv) == 0
    return out, printed.getvalue()


@pytest.fixture(scope="module")
def page(cli_run) -> str:
    return (cli_run[0] / "report.html").read_text(encoding="utf-8")


def embedded_pngs(html: str) -> dict[str, bytes]:
    found = re.findall(r'<figure id="fig-([a-z_]+)">.*?src="data:image/png;base64,([^"]+)"', html)
    return {key: base64.b64decode(b64) for key, b64 in found}


def test_report_prints_its_path_and_writes_the_pngs(cli_run):
    out, printed = cli_run
    assert f"report: {out / 'report.html'}" in printed.splitlines()
    assert sorted(p.stem for p in (out / "plots").glob("*.png")) == sorted(FIGURES)


def test_train_ends_with_the_report(dataset, tmp_path, monkeypatch, capsys):
    """The wiring only: write_report itself is what the tests above check."""
    calls = []

    def fake_write_report(run_dir, **kwargs):
        calls.append(Path(run_dir))
        return Path(run_dir) / "report.html"

    monkeypatch.setattr(data, "load", lambda *a, **k: dataset)
    monkeypatch.setattr(fmnist.analysis.report, "write_report", fake_write_report)
    out = tmp_path / "run"
    argv = ["train", "--epochs", "1", "--train-limit", "500", "--out", str(out), "--no-download"]
    assert cli.main(argv) == 0
    assert calls == [out]
    assert f"report: {out / 'report.html'}" in capsys.readouterr().out.splitlines()
    assert cli.build_parser().parse_args(["train", "--no-report"]).report is False


def test_report_embeds_every_figure_with_content(cli_run, page):
    pngs = embedded_pngs(page)
    assert list(pngs) == FIGURES
    for key, png in pngs.items():
        assert png == (cli_run[0] / "plots" / f"{key}.png").read_bytes()
        px = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float)
        assert px.std() > 20 and (px < 200).mean() > 0.01, f"{key} looks blank"


def test_report_is_self_contained(page):
    assert not re.search(r'(src|href)\s*=\s*"(?!data:|#)', page), "a link leaves the page"
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "url(" not in page


def test_report_shows_settings_checksums_and_scores(cli_run, dataset, page):
    run = read_run(cli_run[0])
    for digest in dataset.sha256.values():
        assert digest in page
    assert page.count(">same<") == 4
    for key, value in run.config["config"].items():
        assert f'<td class="l">{key}</td><td>{fmt(value)}</td>' in page
    logits = infer(load_model(cli_run[0]), dataset.test_images)
    result = evaluate_logits(logits, dataset.test_labels)
    assert result["test_accuracy"] == pytest.approx(run.metrics["test_accuracy"])
    assert f"{result['test_accuracy']:.2%}" in page
    for name, r in result["per_class"].items():
        row = f"<td>{r['precision']:.4f}</td><td>{r['recall']:.4f}</td><td>{r['f1']:.4f}</td>"
        assert f'<td class="l">{name}</td>{row}' in page
    assert 'class="warn"' not in page


def test_report_warns_when_metrics_disagree_with_the_model(cli_run, dataset, tmp_path):
    run = read_run(cli_run[0])
    run.metrics["test_accuracy"] = 0.5
    result = evaluate_logits(
        infer(load_model(cli_run[0]), dataset.test_images), dataset.test_labels
    )
    result["ece"] = 0.0
    html = render(run, dataset, result, [])
    assert 'class="warn"' in html and "50.0000%" in html


def test_penultimate_features_are_the_last_layers_input(cli_run, dataset):
    model = load_model(cli_run[0])
    logits, features = logits_and_features(model, dataset.test_images[:700], batch_size=256)
    assert features.shape == (700, last_linear(model).in_features)
    np.testing.assert_allclose(infer(model, dataset.test_images[:700]), logits)
    with torch.no_grad():
        again = last_linear(model)(torch.from_numpy(features))
    np.testing.assert_allclose(again, logits, atol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing", "no such run directory"),
        (lambda d: (d / "file.txt").write_text("x") and d / "file.txt", "not a directory"),
        (lambda d: d, "not a finished run directory (config.json, history.csv"),
    ],
)
def test_report_refuses_what_is_not_a_run(tmp_path, capsys, make, message):
    assert cli.main(["report", str(make(tmp_path)), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_report_refuses_a_corrupt_record(cli_run, tmp_path, capsys):
    broken = tmp_path / "run"
    shutil.copytree(cli_run[0], broken)
    (broken / "metrics.json").write_text("{not json")
    assert cli.main(["report", str(broken), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{broken / 'metrics.json'}: not a readable run record" in err


def test_report_files_are_readable_by_others(cli_run):
    if os.umask(0o022) & 0o004:
        pytest.skip("umask hides files from others")
    assert (cli_run[0] / "report.html").stat().st_mode & 0o044 == 0o044


# ----------------------------------------------------------------------------
# The page in a real browser
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    if not Path(chromium.CHROMIUM).exists():
        pytest.skip(f"{chromium.CHROMIUM} is absent: install Debian's `chromium` package")
    b = chromium.Chromium()
    yield b
    b.close()


def test_browser_check_catches_broken_pages(browser, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><title>bad</title><img alt="empty" src="data:image/png;base64,AAAA">'
        '<script>console.error("boom"); notDefined();</script>'
    )
    seen = browser.open(bad)
    assert seen["broken"] == ["empty"]
    assert any("boom" in e for e in seen["errors"])
    assert any("notDefined" in e for e in seen["errors"])


def test_report_opens_in_chromium(cli_run, browser, tmp_path_factory):
    seen = browser.open(cli_run[0] / "report.html")
    artifacts = Path(os.environ.get("FMNIST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "report-screenshot.png").write_bytes(seen["screenshot"])
    (artifacts / "report-full-page.png").write_bytes(seen["full_page"])
    print(
        f"screenshots: {artifacts / 'report-screenshot.png'}, {artifacts / 'report-full-page.png'}"
    )
    assert seen["errors"] == []
    assert seen["broken"] == []
    assert seen["images"] == len(FIGURES) and min(seen["widths"]) > 300
    assert seen["figures"] == [f"fig-{k}" for k in FIGURES]
    assert seen["sections"] == ["data", "training", "results", "trust", "config"]
    shot = Image.open(io.BytesIO(seen["full_page"]))
    assert shot.size[0] >= 1000 and shot.size[1] > 5000
    assert np.asarray(shot.convert("L")).std() > 20


def test_the_feature_map_is_kept_for_the_same_features_only(tmp_path, monkeypatch):
    from fmnist.analysis import features as F

    rng = np.random.default_rng(0)
    points = rng.normal(size=(60, 8)).astype(np.float32)
    kept = tmp_path / "feature_map.npz"
    first = F.kept_embed(points, 0, kept)
    np.testing.assert_array_equal(first, F.embed(points, 0))  # what t-SNE gives, no other

    def no_tsne(*args):
        raise AssertionError("t-SNE ran again for the same features")

    monkeypatch.setattr(F, "embed", no_tsne)
    np.testing.assert_array_equal(F.kept_embed(points, 0, kept), first)
    monkeypatch.undo()
    other = points.copy()
    other[0, 0] += 1
    for changed, seed in ((other, 0), (points, 1)):  # new features, or another seed
        np.testing.assert_array_equal(F.kept_embed(changed, seed, kept), F.embed(changed, seed))
    kept.write_bytes(b"not an npz")
    np.testing.assert_array_equal(F.kept_embed(points, 0, kept), first)


def test_the_report_keeps_its_feature_map(cli_run):
    with np.load(cli_run[0] / "plots" / "feature_map.npz") as kept:
        assert kept["map"].shape == (TSNE_POINTS, 2)
