"""Explanations (Captum) and robustness under corruptions (kornia): attributions have the
input's shape and point where the logit looks; severity 0 is `evaluate`'s accuracy and
accuracy falls with severity; bad input ends with one line and exit status 2."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from fmnist import cli, corruptions
from fmnist.analysis import explain, robustness
from fmnist.analysis.report import robustness_caption
from fmnist.checkpoint import load_model
from fmnist.evaluate import evaluate_logits, infer
from tests.hostile import assert_kept_promise


class RegionModel(nn.Module):
    """Class 0's logit is the mean of a 6x6 patch (rows and columns 4 to 9), read through an
    identity convolution; every other logit is 0. Nothing outside the patch reaches it."""

    model_name = "region"

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        nn.init.dirac_(self.conv.weight)
        mask = torch.zeros(1, 1, 28, 28)
        mask[..., 4:10, 4:10] = 1.0
        self.register_buffer("mask", mask)

    def forward(self, x):
        region = torch.relu(self.conv(x * self.mask)).sum((1, 2, 3)) / 36
        return torch.stack([region, *([torch.zeros_like(region)] * 9)], 1)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return (rng.random((4, 28, 28)) * 200 + 55).astype(np.uint8)


@pytest.mark.parametrize("method", explain.METHODS)
def test_attributions_have_the_input_shape_and_are_finite(tiny_run, dataset, method):
    model = tiny_run.model.cpu().eval()
    x = dataset.test_images[:5]
    a = explain.attribute(model, x, infer(model, x).argmax(1).numpy(), method)
    assert a.shape == (5, 28, 28) and np.isfinite(a).all() and np.abs(a).max() > 0


@pytest.mark.parametrize("method", explain.METHODS)
def test_attribution_lights_the_region_the_logit_reads(images, method):
    a = explain.attribute(RegionModel(), images, [0] * len(images), method)
    inside = np.abs(a[:, 4:10, 4:10]).mean()
    outside = (np.abs(a).sum((1, 2)) - np.abs(a[:, 4:10, 4:10]).sum((1, 2))).mean() / (784 - 36)
    assert inside > 5 * outside, (method, inside, outside)
    peak = np.unravel_index(np.abs(a[0]).argmax(), (28, 28))
    assert 3 <= peak[0] <= 10 and 3 <= peak[1] <= 10


def test_deletion_test_tells_a_method_from_random(tiny_run, dataset):
    model = tiny_run.model.cpu().eval()
    result = explain.faithfulness(model, dataset.test_images[:40], methods=("occlusion",))
    assert result["occlusion"]["better_than_random"]
    assert result["occlusion"]["auc"] < result["random"]["auc"]
    assert result["random"]["curve"][0] == pytest.approx(result["occlusion"]["curve"][0])


def test_severity_zero_is_evaluate_and_accuracy_falls_with_severity(tiny_run, dataset):
    model = tiny_run.model.cpu().eval()
    x, y = dataset.test_images[:1000], dataset.test_labels[:1000]
    clean = evaluate_logits(infer(model, x), y)["test_accuracy"]
    for name in robustness.CORRUPTIONS:
        assert robustness.accuracy_under(model, x, y, name, 0) == clean
    result = robustness.robustness(model, x, y, severities=(1, 5))
    falls = [n for n, row in result["accuracy"].items() if row["5"] < row["1"]]
    assert len(falls) >= 11, result["accuracy"]
    assert result["mean"] < clean and result["clean"] == clean


def test_corruptions_are_deterministic_and_in_range(dataset):
    x = dataset.test_images[:50]
    for name in robustness.CORRUPTIONS:
        a, b = robustness.corrupt(x, name, 3, seed=1), robustness.corrupt(x, name, 3, seed=1)
        assert torch.equal(a, b), name
        assert a.shape == (50, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
        assert not torch.equal(a, robustness.corrupt(x, name, 0)), name


def test_kornia_rotation_matches_pillow(dataset):
    """The geometric corruptions are kornia's: a rotation agrees with Pillow's rotation
    of the same image (bilinear) away from the border."""
    img = dataset.test_images[0]
    mine = (
        corruptions.kornia_or_fail()
        .geometry.transform.rotate(
            torch.from_numpy(img).float()[None, None] / 255, torch.tensor([12.0])
        )[0, 0]
        .numpy()
    )
    ref = np.asarray(Image.fromarray(img).rotate(12, resample=Image.Resampling.BILINEAR)) / 255
    assert np.abs(mine - ref)[4:-4, 4:-4].mean() < 0.03


def test_robustness_command_json_and_figure(tiny_run, tmp_path, capsys):
    fig = tmp_path / "heat.png"
    argv = ["robustness", str(tiny_run.run_dir), "--limit", "300", "--severities", "1", "3",
            "--json", "--figure", str(fig), "--no-download"]  # fmt: skip
    assert cli.main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["accuracy"]) == set(robustness.CORRUPTIONS)
    assert all(set(row) == {"1", "3"} for row in result["accuracy"].values())
    # the mean, apart over the 6 corruptions the `corrupt` augmentation trains with and the 8
    # it never shows
    parts = 6 * result["mean_trained"] + 8 * result["mean_unseen"]
    assert parts / 14 == pytest.approx(result["mean"])
    assert np.asarray(Image.open(fig).convert("L")).std() > 20
    # the report's caption gives the same three means, and the split
    caption = robustness_caption(result)
    for key in ("clean", "mean", "mean_trained", "mean_unseen"):
        assert f"{result[key]:.2%}" in caption, key
    assert "14 corruptions at severities 1, 3" in caption
    assert "on the 6 that training with corruptions" in caption and "the 8 others" in caption


def test_explain_command_writes_a_figure_per_image(tmp_path, dataset, capsys):
    for i in range(2):
        Image.fromarray(dataset.test_images[i]).save(tmp_path / f"item{i}.png")
    out = tmp_path / "explained"
    assert cli.main(["explain", "default", str(tmp_path), "--out", str(out)]) == 0
    assert "item0.png: " in capsys.readouterr().out
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) == 2
    assert np.asarray(Image.open(pngs[0]).convert("L")).std() > 20
    argv = ["explain", "default", str(tmp_path / "item0.png"), "--json", "--method", "gradcam"]
    assert cli.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and len(rows[0]["top"]) == 3
    assert set(rows[0]["attributions"]) == {"gradcam"}
    assert not (tmp_path / "explain").exists()  # --json writes no figures
    argv = ["explain", "--model", "default", str(tmp_path / "item1.png"), "--json"]
    assert cli.main([*argv, "--method", "occlusion"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["file"].endswith("item1.png") and set(row["attributions"]) == {"occlusion"}


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["explain", "default", "{bad}"], "not an image"),
        (["explain", "default", "{good}", "--method", "magic"], "invalid choice"),
        (["robustness", "default", "--corruptions", "fog"], "unknown corruption"),
        (["robustness", "default", "--severities", "6"], "1 to 5"),
        (["robustness", "default", "--severities", "0"], "1 to 5"),
        (["robustness", "default", "--limit", "0"], "--limit"),
        (["robustness", "--model", "default", "--limit", "0"], "--limit"),
        (["robustness", "--model", "default", "best"], "two models"),
        (["explain", "--model", "default", "{bad}"], "not an image"),
        (["robustness", "default", "--figure", "/proc/x.png"], "cannot write"),
    ],
)
def test_bad_trust_input_is_one_line(cli, tmp_path, dataset, argv, fragment):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "bad.png").write_bytes(b"not an image at all")
    Image.fromarray(dataset.test_images[0]).save(inputs / "good.png")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    argv = [a.format(bad=inputs / "bad.png", good=inputs / "good.png") for a in argv]
    result = cli(argv, cwd=cwd, timeout=120)
    assert_kept_promise(result, argv[0], cwd, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr


def test_missing_captum_is_one_line(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_captum(name, *args, **kwargs):
        if name.startswith("captum"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_captum)
    with pytest.raises(explain.ExplainError, match=r"pip install 'fashion-mnist-cnn\[explain\]'"):
        explain.captum_or_fail()


def test_packaged_model_loads_for_explanations():
    model = load_model("default")
    assert isinstance(explain.last_conv(model), nn.Conv2d)
