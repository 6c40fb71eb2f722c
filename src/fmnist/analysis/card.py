"""The model card: one model (a registry name, a model of your own code, or a recipe)
through the fair protocol, as one record (card.json) and one page (card.html).

The protocol. N seeds (0, 1, ...), each trained as its recipe says: a recipe that chooses
its epoch on validation trains on 48,000 images and keeps the epoch the 12,000 validation
images chose; a recipe with a fixed number of epochs (select "last") trains as the ladder
does, on all 60,000 images, keeping the last weights. Each seed meets the test set once, at
the end; its figure is the recipe's (with the mirror image where the recipe includes it,
as on the ladder). Beside the runs, the test accuracy after each epoch gives when each
rung of the ladder was first reached: a measurement that selects nothing. Calibration
(ECE) is measured for every seed; robustness (the corruptions at five severities) and
inference speed on the first seed's model.

Where the card stands among the packaged recipes is `fmnist.analysis.card_board`'s.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from fmnist import data
from fmnist.analysis import plots
from fmnist.analysis.ladder import RUNGS, epoch_test_check, figure, first_reached
from fmnist.analysis.robustness import robustness
from fmnist.corruptions import kornia_or_fail
from fmnist.errors import FmnistError
from fmnist.evaluate import infer
from fmnist.files import json_text, output_dir, write_files
from fmnist.models import count_parameters, flops
from fmnist.models.user import create_any, is_user_spec, parse_spec
from fmnist.training.config import TrainConfig, load_recipe, make_config, resolve_device
from fmnist.training.hard import epoch_images
from fmnist.training.rundir import environment
from fmnist.training.train import train

CARD_FORMAT = "fmnist-card/1"
# what --model alone trains with: the general recipe that chooses its epoch on validation
MODEL_RECIPE = "tuned"
DEFAULT_SEEDS = 3
MAX_SEEDS = 100
CALIBRATION_BINS = 15
INFERENCE_REPEATS = 3


class CardError(FmnistError):
    pass


@dataclass(frozen=True)
class Plan:
    """What a card trains: a recipe with settings on top, over seeds 0 ... seeds - 1."""

    name: str  # the card's name: the model's, the recipe's, or both
    recipe: str  # a recipe name or recipe file
    settings: dict = field(default_factory=dict)  # make_config overrides (model, epochs, ...)
    seeds: int = DEFAULT_SEEDS
    test_limit: int = 0  # the first N test images only (smoke runs); 0 = all
    fixed: bool = False  # a fixed number of epochs: all 60,000 images, the last weights
    command: str = ""  # the `fmnist card` line that makes this card

    def config(self, seed: int) -> TrainConfig:
        return make_config(self.recipe, seed=seed, all_data=self.fixed or None, **self.settings)

    def reduced(self) -> dict:
        """The settings that make this a smaller run than the protocol's (empty: none)."""
        smaller = {k: self.settings[k] for k in ("epochs", "train_limit") if k in self.settings}
        return {**smaller, **({"test_limit": self.test_limit} if self.test_limit else {})}


def make_plan(
    model: str | None = None,
    recipe: str | None = None,
    *,
    seeds: int = DEFAULT_SEEDS,
    model_args: dict | None = None,
    device: str = "auto",
    epochs: int | None = None,
    train_limit: int | None = None,
    test_limit: int = 0,
) -> Plan:
    """The card's plan, every setting checked (the model itself: `try_model`)."""
    if model is None and recipe is None:
        raise CardError("give a model (--model NAME or path/to/file.py:Class) or --recipe NAME")
    if not 1 <= seeds <= MAX_SEEDS:
        raise CardError(f"--seeds must be 1 to {MAX_SEEDS}, got {seeds}")
    if test_limit < 0:
        raise CardError(f"--test-limit must be 0 (all) or more, got {test_limit}")
    name, _ = load_recipe(recipe or MODEL_RECIPE)
    settings = {"model": model, "epochs": epochs, "train_limit": train_limit, "device": device}
    settings = {k: v for k, v in settings.items() if v is not None}
    if model_args:
        settings["model_args"] = model_args
    cfg = make_config(recipe or MODEL_RECIPE, **settings)
    label = parse_spec(cfg.model)[1] if is_user_spec(cfg.model) else cfg.model
    title = label if recipe is None else name if model is None else f"{label}-{name}"
    plan = Plan(title, recipe or MODEL_RECIPE, settings, seeds, test_limit, cfg.select == "last")
    given = {"model": model, "model_args": model_args or None, "recipe": recipe}
    return dataclasses.replace(plan, command=command_line(given, plan))


def try_model(plan: Plan) -> None:
    """Before any data is read: the robustness suite's library is there, and the model is
    built (a model of your own within the size bounds, answering one batch)."""
    kornia_or_fail()
    cfg = plan.config(0)
    create_any(cfg.model, cfg.model_args)


def command_line(given: dict, plan: Plan) -> str:
    """The `fmnist card` line of a plan: what was given, then the flags that differ from
    the defaults."""
    flags = {**given, "seeds": plan.seeds if plan.seeds != DEFAULT_SEEDS else None,
             **plan.reduced()}  # fmt: skip
    if plan.settings.get("device", "auto") != "auto":
        flags["device"] = plan.settings["device"]
    parts = ["fmnist card"]
    for flag, value in flags.items():
        if value is not None:
            value = json.dumps(value) if isinstance(value, dict) else str(value)
            parts.append(f"--{flag.replace('_', '-')} {shlex.quote(value)}")
    return " ".join(parts)


def card_folder(path) -> Path:
    """The card's folder: writable, and not holding a card already. Creates nothing."""
    out = output_dir(path, "--out", CardError, inside=("card.json", "card.html"))
    if (out / "card.json").exists():
        raise CardError(f"--out {out}: already holds a card; choose another --out or delete it")
    return out


def limited(ds: data.FashionMNIST, test_limit: int) -> data.FashionMNIST:
    if not test_limit:
        return ds
    return dataclasses.replace(
        ds, test_images=ds.test_images[:test_limit], test_labels=ds.test_labels[:test_limit]
    )


# ----------------------------------------------------------------------------
# The seeds
# ----------------------------------------------------------------------------


@dataclass
class SeedRun:
    cfg: TrainConfig
    model: torch.nn.Module
    metrics: dict
    history: list
    curve: list  # (training seconds, test accuracy) after each epoch
    n_train: int
    precision: str  # what the run used
    confidence: np.ndarray  # the test images' top softmax probability
    correct: np.ndarray

    @property
    def figure(self) -> float:
        return figure(self.metrics, self.cfg.tta)


def train_seed(ds, cfg: TrainConfig, tmp: Path) -> SeedRun:
    """One seed of the protocol, with the test check after each epoch beside it."""
    curve: list = []
    result = train(
        cfg, out=tmp / f"s{cfg.seed}", dataset=ds, log=lambda *a: None,
        on_epoch=epoch_test_check(ds, curve),
    )  # fmt: skip
    record = json.loads((result.run_dir / "config.json").read_text())
    probs = torch.softmax(infer(result.model, ds.test_images, cfg.eval_batch_size), 1).numpy()
    return SeedRun(
        cfg, result.model, result.metrics, result.history, curve, record["data"]["n_train"],
        record["used"]["precision"], probs.max(1), probs.argmax(1) == ds.test_labels,
    )  # fmt: skip


def run_seeds(ds, plan: Plan, log=print) -> list[SeedRun]:
    runs: list[SeedRun] = []
    with tempfile.TemporaryDirectory(prefix="fmnist-card-") as tmp:
        for seed in range(plan.seeds):
            runs.append(train_seed(ds, plan.config(seed), Path(tmp)))
            r = runs[-1]
            log(
                f"  {plan.name} seed {seed} ({seed + 1} of {plan.seeds}): {r.figure:.2%} in "
                f"{r.metrics['train_s']:.1f} s ({r.metrics['epochs']} epochs)"
            )
    return runs


def spread(values, digits: int | None = None) -> dict:
    """mean, sample std, median, min, max and the values."""
    values = [float(v) if digits is None else round(float(v), digits) for v in values]
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def reach(curves: list) -> dict:
    """rung -> how many seeds' test checks reached it, when each first did, and the median
    of those times where every seed reached it."""
    out = {}
    for rung in RUNGS:
        hits = [first_reached(c)[rung] for c in curves]
        every = all(h is not None for h in hits)
        out[rung] = {
            "reached": sum(h is not None for h in hits),
            "first_reach_s": hits,
            "median_s": round(statistics.median(hits), 2) if every else None,
        }
    return out


def seeds_summary(runs: list[SeedRun]) -> dict:
    """The figures over seeds that every row of the leaderboard has, and more."""
    m = [r.metrics for r in runs]
    out = {
        "seed_values": [r.cfg.seed for r in runs],
        "test_accuracy": spread([r.figure for r in runs]),
        "test_accuracy_plain": spread([x["test_accuracy"] for x in m]),
        "val_accuracy": None,
        "train_s": spread([x["train_s"] for x in m], 2),
        "first_seed_s": round(m[0]["train_s"], 2),
        "training_images_per_s": spread([training_rate(r) for r in runs], 1),
        "epochs_run": [x["epochs"] for x in m],
        "best_epoch": [x["best_epoch"] for x in m],
        "rungs": reach([r.curve for r in runs]),
        "curves": [r.curve for r in runs],
        "ece": spread([ece(r) for r in runs]),
    }
    if all(x.get("val_accuracy") is not None for x in m):
        out["val_accuracy"] = spread([x["val_accuracy"] for x in m])
    return out


def training_rate(run: SeedRun) -> float:
    """Training images/s of the training passes alone (validation passes left out): all
    the images the run trained on over the seconds its passes took."""
    images = [epoch_images(run.cfg, run.n_train, row["epoch"]) for row in run.history]
    seconds = sum(k / row["images_per_s"] for k, row in zip(images, run.history, strict=True))
    return sum(images) / seconds


def ece(run: SeedRun) -> float:
    return plots.calibration(run.confidence, run.correct, CALIBRATION_BINS)["ece"]


def describe_runs(plan: Plan, runs: list[SeedRun], device) -> dict:
    """What was trained: recipe, model, protocol, precision, the machine."""
    cfg, model = runs[0].cfg, runs[0].model
    user = getattr(model, "fmnist_user", None)
    _, preset = load_recipe(plan.recipe)
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "name": plan.name,
        "command": plan.command,
        "model": cfg.model,
        "model_args": cfg.model_args,
        **({"user_model": user} if user else {}),
        "recipe": cfg.recipe,
        "recipe_settings": preset,
        "config": {**dataclasses.asdict(cfg), "seed": 0},
        "protocol": {
            "seeds": plan.seeds,
            "selection": cfg.select,
            "all_data": cfg.all_data,
            "n_train": runs[0].n_train,
            "reduced": plan.reduced(),
        },
        "epochs": cfg.epochs,
        "precision": runs[0].precision,
        "tta": cfg.tta,
        "parameters": count_parameters(model)[0],
        "mflop_per_image": round(flops(model) / 1e6, 2),
        "device": str(device),
        "machine": environment(),
    }


# ----------------------------------------------------------------------------
# The card
# ----------------------------------------------------------------------------


def inference_rate(model, images, batch_size: int, repeats: int = INFERENCE_REPEATS) -> float:
    """Test images/s at `batch_size`, fp32: the median of `repeats` passes after a warm-up."""
    infer(model, images[:batch_size], batch_size)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        infer(model, images, batch_size)
        if next(model.parameters()).is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return round(len(images) / statistics.median(times), 1)


def mean_per_class(runs: list[SeedRun]) -> dict:
    """Each class's precision, recall (its accuracy) and F1, averaged over the seeds."""
    first = runs[0].metrics["per_class"]
    return {
        name: {
            **{
                k: statistics.mean(r.metrics["per_class"][name][k] for r in runs)
                for k in ("precision", "recall", "f1")
            },  # fmt: skip
            "recall_std": spread([r.metrics["per_class"][name]["recall"] for r in runs])["std"],
            "support": first[name]["support"],
        }
        for name in first
    }


def measure(ds, plan: Plan, log=print) -> tuple[dict, list[tuple[str, str, str, bytes]]]:
    """The card's record (without its leaderboard) and its figures, (key, title, caption,
    PNG) each."""
    ds = limited(ds, plan.test_limit)
    device = resolve_device(plan.settings.get("device", "auto"))
    log(f"card {plan.name}: {plan.seeds} seeds of recipe {plan.recipe} ...")
    runs = run_seeds(ds, plan, log)
    first = runs[0]
    log("  robustness of seed 0's model: 14 corruptions at 5 severities ...")
    rob = robustness(first.model, ds.test_images, ds.test_labels)
    record = {
        "format": CARD_FORMAT,
        **describe_runs(plan, runs, device),
        **seeds_summary(runs),
        "test_images": len(ds.test_labels),
        "inference_images_per_s": inference_rate(
            first.model, ds.test_images, first.cfg.eval_batch_size
        ),
        "inference_batch_size": first.cfg.eval_batch_size,
        "robustness": {
            **rob,
            "model_seed": first.cfg.seed,
            "inverted_image": rob["accuracy"]["inverse"]["5"],
        },  # fmt: skip
        "calibration_bins": CALIBRATION_BINS,
        "per_class": mean_per_class(runs),
        "confusion_matrix": first.metrics["confusion_matrix"],
        "history": first.history,
    }
    return record, draw(record, first)


def draw(record: dict, first: SeedRun) -> list[tuple[str, str, str, bytes]]:
    m = first.metrics
    seed0 = f"seed {first.cfg.seed}'s run"
    drawn = [
        ("learning_curves", "Learning curves", f"Loss and accuracy per epoch, {seed0}.",
         plots.training_curves(first.history, m["best_epoch"], m["stopped_early"])),
        ("confusion_matrix", "Confusion matrix", f"The test images, {seed0}'s kept weights.",
         plots.confusion_matrix(record["confusion_matrix"])),
        ("per_class", "Per-class accuracy", "Precision, recall (the class's accuracy) and F1, "
         f"averaged over the {record['protocol']['seeds']} seeds.",
         plots.per_class_metrics(record["per_class"])),
        ("robustness", "Robustness", f"Test accuracy under each corruption and severity, "
         f"{seed0}'s model.", plots.corruption_heatmap(record["robustness"], record["name"])),
        ("reliability", "Calibration", f"Confidence against accuracy, {seed0}.",
         plots.reliability_diagram(first.confidence, first.correct, CALIBRATION_BINS)),
    ]  # fmt: skip
    return [(key, title, caption, plots.to_png(fig)) for key, title, caption, fig in drawn]


def compare_row(ds, recipe: str, plan: Plan, log=print) -> dict:
    """A packaged recipe re-run beside the card under the same protocol and settings."""
    settings = {k: v for k, v in plan.settings.items() if k not in ("model", "model_args")}
    fixed = make_config(recipe, **settings).select == "last"
    beside = Plan(recipe, recipe, settings, plan.seeds, plan.test_limit, fixed)
    beside = dataclasses.replace(beside, command=command_line({"recipe": recipe}, beside))
    ds = limited(ds, plan.test_limit)
    log(f"beside it, recipe {recipe}: {plan.seeds} seeds ...")
    runs = run_seeds(ds, beside, log)
    device = resolve_device(plan.settings.get("device", "auto"))
    return {**describe_runs(beside, runs, device), **seeds_summary(runs)}


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def write(out: Path, record: dict, page: str) -> tuple[Path, Path]:
    """card.json (strict JSON: every figure finite) and card.html, both or neither."""
    try:
        text = json_text(record) + "\n"
    except FmnistError as e:
        raise CardError(f"the card's {e}; nothing written") from None
    write_files(out, {"card.html": page, "card.json": text})
    return out / "card.json", out / "card.html"
