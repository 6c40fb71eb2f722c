import copy
import csv
import dataclasses
import json
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fmnist import cli
from fmnist.errors import FmnistError
from fmnist.evaluate import infer
from fmnist.models import create_model
from fmnist.training.config import ConfigError, TrainConfig, make_config
from fmnist.training.epoch import train_step
from fmnist.training.optim import build_optimizer
from fmnist.training.seeds import train_seeds
from fmnist.training.train import train


def test_seed_recipe_is_the_tutorial():
    cfg = make_config("seed")
    assert (cfg.model, cfg.lr, cfg.batch_size, cfg.epochs, cfg.val_fraction) == (
        "seed_cnn",
        1e-3,
        128,
        30,
        0.2,
    )
    assert cfg.patience > 0 and cfg.weight_decay == 0 and cfg.label_smoothing == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown recipe"):
        make_config("turbo")
    with pytest.raises(ConfigError, match="epochs must be at least 1"):
        make_config("seed", epochs=0)
    with pytest.raises(ConfigError, match="unknown training setting"):
        make_config("seed", momentum=0.9)


def test_small_run_learns_and_writes_a_run_directory(tiny_run, dataset):
    d = tiny_run.run_dir
    for name in ("config.json", "history.csv", "model.safetensors", "model.json", "metrics.json"):
        assert (d / name).is_file(), name
    rows = list(csv.DictReader(open(d / "history.csv")))
    assert len(rows) == 2
    for col in ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_s"):
        assert col in rows[0]
    assert float(rows[1]["train_loss"]) < float(rows[0]["train_loss"])
    metrics = json.loads((d / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "val_accuracy", "train_s", "epochs"):
        assert key in metrics
    # 6,000 images for two epochs: far above chance (10%) on the untouched test set
    assert metrics["test_accuracy"] > 0.6
    config = json.loads((d / "config.json").read_text())
    assert config["config"]["train_limit"] == 6000
    assert config["data"]["sha256"] == dataset.sha256
    assert config["environment"]["torch"] == torch.__version__
    # the saved model reproduces the recorded test accuracy
    logits = infer(tiny_run.model, dataset.test_images)
    acc = (logits.argmax(1).numpy() == dataset.test_labels).mean()
    assert acc == pytest.approx(metrics["test_accuracy"])


@pytest.mark.slow
def test_same_seed_same_numbers(tiny_run, dataset, tmp_path):
    again = train(tiny_run.config, out=tmp_path / "again", dataset=dataset, log=lambda *a: None)
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    assert [[r[k] for k in keys] for r in again.history] == [
        [r[k] for k in keys] for r in tiny_run.history
    ]
    assert again.metrics["test_accuracy"] == tiny_run.metrics["test_accuracy"]


@pytest.mark.slow
def test_early_stopping_restores_the_best_weights(dataset, tmp_path):
    # A learning rate far too high: validation loss gets worse after epoch 1.
    cfg = make_config("seed", epochs=6, patience=1, train_limit=2000, lr=0.5)
    result = train(cfg, out=tmp_path / "r", dataset=dataset, log=lambda *a: None)
    hist = result.history
    best = min(range(len(hist)), key=lambda i: hist[i]["val_loss"])
    assert result.metrics["best_epoch"] == best + 1
    assert len(hist) == best + 2  # stopped one epoch (the patience) after the best
    assert result.metrics["val_loss"] == pytest.approx(hist[best]["val_loss"], abs=1e-6)


def test_refuses_to_overwrite_a_run(tiny_run, dataset):
    with pytest.raises(FmnistError, match="already holds a run"):
        train(tiny_run.config, out=tiny_run.run_dir, dataset=dataset, log=lambda *a: None)


def test_one_step_matches_a_plain_pytorch_step():
    """Our training step gives the loss, gradients and updated weights of a hand-written one."""
    torch.manual_seed(0)
    ours = create_model("seed_cnn")
    ref = copy.deepcopy(ours)
    cfg = make_config("seed")
    opt_ours = build_optimizer(ours, cfg)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-3, eps=1e-7)
    images = torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (64,))
    for _ in range(3):
        torch.manual_seed(1)  # the same dropout masks for both
        loss, _ = train_step(ours, opt_ours, images, labels, cfg)
        torch.manual_seed(1)
        x = torch.from_numpy(images.numpy().astype(np.float32)[:, None] / 255.0)
        ref_loss = F.cross_entropy(ref(x), labels)
        opt_ref.zero_grad()
        ref_loss.backward()
        opt_ref.step()
        assert loss.item() == pytest.approx(ref_loss.item(), rel=1e-6)
        # fp32 tolerance: the fused Adam kernel rounds differently from the reference loop
        for p, q in zip(ours.parameters(), ref.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for a, b in zip(ours.buffers(), ref.buffers(), strict=True):
        torch.testing.assert_close(a.float(), b.float())


def test_train_config_fields_are_documented():
    import inspect

    source = inspect.getsource(TrainConfig)
    for name in TrainConfig.__dataclass_fields__:
        line = next(ln for ln in source.splitlines() if ln.strip().startswith(f"{name}:"))
        assert "#" in line, f"TrainConfig.{name} has no comment"


@pytest.mark.slow
def test_several_seeds_give_mean_and_spread(dataset, tmp_path):
    cfg = make_config("seed", epochs=1, train_limit=2000, batch_size=32)
    out, results, summary = train_seeds(
        cfg, 2, out=tmp_path / "sweep", dataset=dataset, log=lambda *a: None
    )
    assert [r.config.seed for r in results] == [0, 1]
    assert (out / "seed0" / "metrics.json").is_file() and (out / "seed1" / "metrics.json").is_file()
    accs = [r.metrics["test_accuracy"] for r in results]
    assert summary["test_accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert summary["test_accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert results[0].history != results[1].history  # different seeds, different runs
    saved = json.loads((out / "summary.json").read_text())
    assert saved["n"] == 2 and saved["runs"] == ["seed0", "seed1"]
    with pytest.raises(FmnistError, match="already holds a sweep"):
        train_seeds(cfg, 2, out=out, dataset=dataset, log=lambda *a: None)


def test_all_data_trains_on_every_image_for_a_fixed_count(dataset, tmp_path):
    cfg = make_config("tuned", all_data=True, epochs=2, train_limit=3000, batch_size=64)
    assert (cfg.select, cfg.patience) == ("last", 0)  # no validation to select or stop on
    with pytest.raises(ConfigError, match="no validation split"):
        make_config("seed", all_data=True, patience=5)
    result = train(cfg, out=tmp_path / "all", dataset=dataset, log=lambda *a: None)
    record = json.loads((tmp_path / "all" / "config.json").read_text())
    assert record["config"]["all_data"] and record["data"]["n_val"] == 0
    assert record["data"]["n_train"] == 3000
    m = result.metrics
    assert m["all_data"] and m["val_accuracy"] is None and m["best_epoch"] == m["epochs"] == 2
    assert m["test_accuracy"] > 0.5
    rows = list(csv.DictReader(open(tmp_path / "all" / "history.csv")))
    assert [r["val_acc"] for r in rows] == ["", ""] and float(rows[1]["train_acc"]) > 0.5
    from fmnist.data import run_split

    # the subset is drawn from all 60,000 images, not from a split's training part
    train_idx, val_idx = run_split(dataset.train_labels, 0.2, 0, 3000, all_data=True)
    assert len(val_idx) == 0 and len(train_idx) == 3000
    stratified, _ = run_split(dataset.train_labels, 0.2, 0, 3000)
    assert not np.array_equal(train_idx, stratified)


@pytest.mark.slow
def test_bf16_step_tracks_fp32_and_a_bf16_run_learns(few_test_images, tmp_path):
    dataset = few_test_images
    torch.manual_seed(0)
    model = create_model("wide_cnn")
    images = torch.from_numpy(dataset.train_images[:64])
    labels = torch.from_numpy(dataset.train_labels[:64]).long()
    losses = {}
    for precision in ("fp32", "bf16"):
        m = copy.deepcopy(model).to(memory_format=torch.channels_last)
        cfg = make_config("best", precision=precision, channels_last=True)
        loss, logits = train_step(m, build_optimizer(m, cfg), images, labels, cfg)
        losses[precision] = float(loss)
        if precision == "bf16":
            assert logits.dtype == torch.bfloat16
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)

    # the run: the fast recipe in bfloat16 on NHWC activations and a few images, so that a CPU
    # that emulates bfloat16 runs it in seconds too
    cfg = make_config(
        "fast",
        precision="bf16",
        channels_last=True,
        epochs=2,
        train_limit=3000,
        batch_size=64,
        tta=True,
        all_data=True,  # no validation pass in bfloat16 (slow where it is emulated)
    )
    result = train(cfg, out=tmp_path / "bf16", dataset=dataset, log=lambda *a: None)
    assert result.metrics["test_accuracy"] > 0.6
    mirrored = infer(result.model, dataset.test_images, tta=True).argmax(1).numpy()
    tta = float((mirrored == dataset.test_labels).mean())
    assert result.metrics["test_accuracy_tta"] == pytest.approx(tta)
    # the saved weights are fp32; bf16 and fp32 inference agree on nearly every image
    assert all(
        v.dtype == torch.float32
        for v in result.model.state_dict().values()
        if v.is_floating_point()
    )
    x = dataset.test_images
    fp32 = infer(result.model, x).argmax(1)
    bf16 = infer(result.model, x, precision="bf16").argmax(1)
    assert (fp32 == bf16).float().mean() > 0.97


@pytest.mark.slow
@pytest.mark.parametrize(
    "native, model, used",
    [
        (True, "speed_s", "bf16"),
        (True, "seed_cnn", "fp32"),  # too small to gain from bfloat16
        (False, "speed_s", "fp32"),
    ],
)
def test_auto_precision_follows_the_hardware_and_is_recorded(
    dataset, tmp_path, monkeypatch, native, model, used
):
    import fmnist.evaluate
    import fmnist.training.build as training

    monkeypatch.setattr(fmnist.evaluate, "native_bf16", lambda device: native)
    monkeypatch.setattr(training, "native_bf16", lambda device: native)
    # all_data: no validation pass, which an emulating CPU would run slowly in bfloat16
    cfg = make_config("fast", model=model, epochs=1, train_limit=300, batch_size=100, all_data=True)
    assert cfg.precision == "auto"
    lines = []
    train(cfg, out=tmp_path / "run", dataset=dataset, log=lines.append)
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["config"]["precision"] == "auto"  # what was asked
    assert record["used"]["precision"] == used  # what ran
    assert record["used"]["cuda_graph"] is False  # graphs are for one GPU only
    env = record["environment"]
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert env["torch_threads"] == torch.get_num_threads() and env["torch"] == torch.__version__
    assert any(f"precision auto: {used}" in line for line in lines)


def test_bf16_asked_where_it_is_emulated_says_so_first(dataset, tmp_path, monkeypatch):
    import fmnist.training.build as training

    monkeypatch.setattr(training, "native_bf16", lambda device: False)
    cfg = make_config(
        "fast", epochs=1, train_limit=300, batch_size=100, device="cpu", precision="bf16"
    )
    lines = []
    train(cfg, out=tmp_path / "run", dataset=dataset, log=lines.append)
    note = next(i for i, line in enumerate(lines) if "no native bfloat16" in line)
    first_epoch = next(i for i, line in enumerate(lines) if line.startswith("epoch"))
    assert note < first_epoch
    assert re.search(r"measured \d+\.\dx the time of fp32", lines[note])
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["used"]["precision"] == "bf16"  # asked for explicitly: honoured


def test_refused_or_failed_runs_leave_no_folder(tmp_path, capsys):
    # refused before a folder is made: an unknown model name
    assert cli.main(["train", "--model", "nope", "--out", str(tmp_path / "a")]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err
    # failed after the folder was made, before the first epoch: corrupt data
    bad = tmp_path / "bad-data"
    bad.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                 "t10k-labels-idx1-ubyte"):  # fmt: skip
        (bad / name).write_bytes(b"not an IDX file")
    argv = ["train", "--out", str(tmp_path / "b"), "--data-dir", str(bad), "--no-download"]
    assert cli.main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad-data"]


@pytest.mark.parametrize("bias_decay", [True, False])
def test_bias_decay_off_decays_only_the_weights(bias_decay):
    """With zero gradients AdamW's step is its decay alone: lr x weight_decay of every
    weight, and of the biases and BatchNorm shifts only when bias_decay is on."""
    torch.manual_seed(0)
    model = create_model("quick_wd")
    cfg = make_config("rung94", lr=0.1, weight_decay=0.5, bias_decay=bias_decay)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 1:
                p.fill_(1.0)  # biases start at zero, which no decay would move
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = build_optimizer(model, cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    optimizer.step()
    flat, shrunk = 0, 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            torch.testing.assert_close(p, before[name], rtol=0, atol=0)  # the frozen whitening
        elif p.ndim > 1 or bias_decay:
            torch.testing.assert_close(p, before[name] * (1 - 0.1 * 0.5))
            shrunk += 1
        else:
            torch.testing.assert_close(p, before[name], rtol=0, atol=0)
            flat += 1
    assert shrunk > 0 and (flat > 0) != bias_decay


@pytest.mark.slow
def test_whitened_model_learns_and_its_weight_average_keeps_the_whitening(dataset, tmp_path):
    """quick_w's first filters are set from the training images before the first step and
    stay frozen: the trained model's filters (a slow moving average of the weights, which
    would still be mostly the random start had it begun before the whitening) decorrelate
    held-out patches to about unit variance."""
    cfg = make_config("fast", model="quick_w", epochs=1, train_limit=3000, batch_size=64,
                      ema=0.999, all_data=True)  # fmt: skip
    res = train(cfg, out=tmp_path / "w", dataset=dataset, log=lambda *a: None)
    model = res.model.cpu().eval()
    x = model.normalize(torch.from_numpy(dataset.test_images[:500]).float().div(255)[:, None])
    out = F.conv2d(x, model.whiten.weight[:9])
    cov = torch.cov(out.detach().permute(1, 0, 2, 3).reshape(9, -1))
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 0.1, cov
    assert ((cov.diagonal() > 0.5) & (cov.diagonal() < 1.5)).all(), cov
    assert not model.whiten.weight.requires_grad
    pred = infer(model, dataset.test_images[:1000]).argmax(1).numpy()
    assert (pred == dataset.test_labels[:1000]).mean() > 0.7


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_deterministic_gives_the_same_numbers_again(dataset, tmp_path, device):
    """--deterministic: on a GPU too (cuDNN and cuBLAS choose kernels by timing otherwise),
    the same seed gives the same digits; the process's settings are put back after."""
    cfg = make_config(
        "fast", epochs=1, train_limit=1500, device=device, deterministic=True, eval_batch_size=500
    )
    runs = [
        train(cfg, out=tmp_path / f"r{i}", dataset=dataset, log=lambda *a: None) for i in (0, 1)
    ]
    keys = ("train_loss", "train_acc", "val_loss", "val_acc")
    first, again = ([[r[k] for k in keys] for r in run.history] for run in runs)
    assert first == again
    assert runs[0].metrics["test_accuracy"] == runs[1].metrics["test_accuracy"]
    assert not torch.are_deterministic_algorithms_enabled()
