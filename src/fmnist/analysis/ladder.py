"""The accuracy/time ladder: each rung of test accuracy, the recipe that reaches it in the
least time we found, run for several seeds; beside it, when today's general recipes first
reach the same rung.

A rung's recipe is a fixed schedule chosen on the validation split (see `RECIPES` in
`fmnist.training.config`); its figure here comes from runs on all 60,000 training images
with that schedule. The test set measures and selects nothing: no recipe, epoch count or
seed is chosen on it. Times are training seconds from the first step to the final weights
(test evaluation excluded); loading the data is reported apart.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from fmnist.analysis import probe
from fmnist.errors import FmnistError
from fmnist.evaluate import infer
from fmnist.models import flops
from fmnist.training.config import load_recipe, make_config, resolve_device
from fmnist.training.hard import epochs_phrase, images_through
from fmnist.training.rundir import environment
from fmnist.training.train import train

# rung (test accuracy) -> the recipe that reaches it fastest on 2 CPU cores (fp32, AVX2)
RUNGS = {
    "90%": "rung90",
    "92%": "rung92",
    "93%": "rung93",
    "94%": "rung94",
    "95%": "rung95",
}
# today's general recipes, measured beside the rungs (as `fmnist bench` does: test accuracy
# after each epoch, a measurement that selects nothing)
COMPARE = ("fast", "tuned", "best")
# where a kind of device has rungs of its own: on a GPU a step costs more than its FLOPs
DEVICE_RUNGS: dict[str, dict[str, str]] = {"cuda": {"94%": "gpu94", "95%": "gpu95"}}
DEFAULT_SEEDS = {"95%": 3}  # the others: --seeds (default 5)
# `fmnist bench --ladder` alone runs what fits in a few minutes here, and says so
QUICK_BUDGET_S = 300.0
QUICK_SEEDS = 2


class _Budget(Exception):
    pass


def rung_value(rung: str) -> float:
    return float(rung.rstrip("%")) / 100


HOLD_MARGIN = 0.001  # the mean at least 0.1 point above the rung


def holds(rung: str, values: list[float]) -> bool:
    """Whether a rung holds for a user who runs one seed: the mean at least 0.1 point above
    it and 4 seeds of 5 reaching it (every seed where fewer than 5 ran; 80% of more)."""
    reached = sum(v >= rung_value(rung) for v in values)
    needed = len(values) if len(values) < 5 else math.ceil(0.8 * len(values))
    return statistics.mean(values) >= rung_value(rung) + HOLD_MARGIN and reached >= needed


def figure(metrics: dict, tta: bool) -> float:
    """A recipe's test figure: with the mirror image when the recipe includes it."""
    return metrics["test_accuracy_tta"] if tta else metrics["test_accuracy"]


def rung_recipes(device_type: str, override: dict[str, str] | None = None) -> dict[str, str]:
    """Each rung's recipe on this kind of device, with `override` (rung -> a recipe name or
    recipe file) on top."""
    return {**RUNGS, **DEVICE_RUNGS.get(device_type, {}), **(override or {})}


def run_rung(
    ds,
    rung: str,
    seeds: int,
    *,
    device,
    out_dir: Path,
    log=print,
    recipe=None,
    first_seed=0,
    **settings,
) -> dict:
    """`rung`'s recipe for seeds `first_seed` ... `first_seed + seeds - 1`."""
    recipe = recipe or RUNGS[rung]
    name, preset = load_recipe(recipe)
    values, times, rates = [], [], []
    cfg = None
    for i, seed in enumerate(range(first_seed, first_seed + seeds)):
        cfg = make_config(recipe, seed=seed, device=device.type, all_data=True, **settings)
        result = train(cfg, out=out_dir / f"{name}-s{seed}", dataset=ds, log=lambda *a: None)
        m = result.metrics
        acc = figure(m, cfg.tta)
        values.append(acc)
        times.append(m["train_s"])
        record = json.loads((result.run_dir / "config.json").read_text())
        rates.append(images_through(cfg, record["data"]["n_train"], m["epochs"]) / m["train_s"])
        left = (seeds - i - 1) * statistics.median(times)
        log(
            f"  {rung} {name} seed {seed} ({i + 1} of {seeds}): {acc:.2%} in "
            f"{m['train_s']:.1f} s" + (f"; about {left:.0f} s left for this rung" if left else "")
        )
    return {
        "rung": rung,
        "recipe": name,
        "recipe_settings": preset,
        "model": cfg.model,
        "parameters": m["parameters"],
        "mflop_per_image": round(flops(result.model) / 1e6, 2),
        "epochs": cfg.epochs,
        "batch_size": cfg.batch_size,
        "precision": record["used"]["precision"],  # what the runs used, as they recorded it
        "tta": cfg.tta,
        **summary(rung, list(range(first_seed, first_seed + seeds)), values, times, rates),
    }


def verdict(rung: dict) -> str:
    """What a table says of a rung: "missed" below it on average, "does not hold" above it
    but short of holds(), "" where it holds. Records made before `holds` are judged from
    their values."""
    if not rung["rung_met"]:
        return "missed"
    held = rung.get("holds", holds(rung["rung"], rung["test_accuracy"]["values"]))
    return "" if held else "does not hold"


def summary(rung: str, seeds: list[int], values, times, rates) -> dict:
    """A rung's figures over its seeds: accuracy, how many reached the rung, time, images/s."""
    mean = statistics.mean(values)
    return {
        "seeds": len(seeds),
        "seed_values": seeds,
        "test_accuracy": {
            "mean": mean,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "values": values,
        },
        "reached": sum(v >= rung_value(rung) for v in values),
        # what a user running one seed sees: the rung's first run, warm-up included
        "first_seed_s": round(times[0], 2),
        "rung_met": mean >= rung_value(rung),
        "holds": holds(rung, values),
        "train_s": {  # rounded as recorded, so a merge of records gives the same
            "median": round(statistics.median(times), 2),
            "min": round(min(times), 2),
            "max": round(max(times), 2),
            "values": [round(t, 2) for t in times],
        },
        "images_per_s": round(statistics.median(rates), 1),
        "images_per_s_values": [round(r, 1) for r in rates],
    }


def first_reach(ds, recipe: str, device, out_dir: Path, budget_s: float, **settings) -> dict:
    """Training seconds at which `recipe` (seed 0) first reaches each rung on the test set,
    measured after each epoch; stops once the training time passes `budget_s`."""
    cfg = make_config(recipe, patience=0, device=device.type, **settings)
    curve: list[tuple[float, float]] = []
    on_epoch = epoch_test_check(ds, curve, budget_s)
    try:
        train(cfg, out=out_dir / recipe, dataset=ds, log=lambda *a: None, on_epoch=on_epoch)
        finished = True
    except _Budget:
        finished = False
    return {
        "recipe": recipe,
        "epochs_run": len(curve),
        "epochs": cfg.epochs,
        "finished": finished,
        "budget_s": budget_s,
        "curve": curve,
        "first_reach_s": first_reached(curve),
    }


def epoch_test_check(ds, curve: list, budget_s: float | None = None):
    """train()'s on_epoch hook that measures and selects nothing: the test accuracy of the
    weights after each epoch, appended to `curve` as (training seconds, accuracy); past
    `budget_s` of training it ends the run."""

    def on_epoch(epoch, model, train_s, row):
        acc = float((infer(model, ds.test_images).argmax(1).numpy() == ds.test_labels).mean())
        curve.append((round(train_s, 2), acc))
        if budget_s is not None and train_s > budget_s:
            raise _Budget

    return on_epoch


def first_reached(curve) -> dict[str, float | None]:
    """rung -> the training seconds of the first epoch whose test check reached it (None:
    never)."""
    return {rung: next((t for t, acc in curve if acc >= rung_value(rung)), None) for rung in RUNGS}


def run(
    ds,
    rungs: list[str],
    seeds: int | dict[str, int] | None,
    *,
    device_name: str = "auto",
    compare: tuple[str, ...] = COMPARE,
    compare_budget_s: float = 600.0,
    load_s: float | None = None,
    log=print,
    recipes: dict[str, str] | None = None,
    first_seed: int = 0,
    **settings,
) -> dict:
    """The ladder's record. `seeds`: per run, or rung -> seeds (default: the rung's own);
    `recipes` (rung -> recipe name or file) replaces rungs' recipes; seeds are numbered from
    `first_seed` (a rung's seeds run apart, then `merge`d); `settings` override every run's
    (smoke runs: train_limit, epochs). The machine's calibration probe runs at the start and
    the end, and an estimate of the whole is printed before anything trains."""
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise FmnistError(f"unknown rung(s) {', '.join(unknown)}; rungs: {', '.join(RUNGS)}")
    plan = seeds_per_rung(rungs, seeds)
    if min(plan.values(), default=1) < 1:
        raise FmnistError(f"--seeds must be at least 1, got {min(plan.values())}")
    if first_seed < 0:
        raise FmnistError(f"--first-seed must be 0 or more, got {first_seed}")
    device = resolve_device(device_name)
    chosen = rung_recipes(device.type, recipes)
    record = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "machine": environment(),
        "calibration": {"start": probe.calibration(device)},
        "data_load_s": load_s,
        "settings": settings,
        "rungs": [],
        "compare": [],
    }
    probe.announce(plan, chosen, compare, compare_budget_s, device, log, settings)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for rung, n in plan.items():
            log(f"rung {rung}: {chosen[rung]}, {n} seed{'s' * (n != 1)} ...")
            t0 = time.perf_counter()
            record["rungs"].append(
                run_rung(
                    ds,
                    rung,
                    n,
                    device=device,
                    out_dir=tmp,
                    log=log,
                    recipe=chosen[rung],
                    first_seed=first_seed,
                    **settings,
                )
            )
            log(f"  ({time.perf_counter() - t0:.0f} s)")
        for recipe in compare:
            log(f"today's {recipe!r}: test accuracy each epoch, up to {compare_budget_s:.0f} s")
            record["compare"].append(
                first_reach(ds, recipe, device, tmp, compare_budget_s, **settings)
            )
    record["calibration"]["end"] = probe.calibration(device)
    return record


def seeds_per_rung(rungs: list[str], seeds: int | dict[str, int] | None) -> dict[str, int]:
    """rung -> how many seeds it runs: `seeds` where given, else the rung's default."""
    if isinstance(seeds, dict):
        return {rung: seeds[rung] for rung in rungs}
    return {rung: seeds or DEFAULT_SEEDS.get(rung, 5) for rung in rungs}


def quick_plan(device, budget_s: float = QUICK_BUDGET_S, recipes=None) -> dict[str, int]:
    """The rungs that fit in `budget_s` on this machine, in order, each with its default
    seeds or, where those do not fit, QUICK_SEEDS: what `fmnist bench --ladder` runs alone."""
    chosen = rung_recipes(device.type, recipes)
    plan: dict[str, int] = {}
    spent = 0.0
    for rung in RUNGS:
        per_seed = probe.estimate_seconds(chosen[rung], 1, device)
        n = next(
            (
                k
                for k in (DEFAULT_SEEDS.get(rung, 5), QUICK_SEEDS)
                if spent + k * per_seed <= budget_s
            ),
            None,
        )
        if n is None:
            break
        plan[rung] = n
        spent += n * per_seed
    return plan or {next(iter(RUNGS)): 1}


def format_table(record: dict) -> str:
    env = record["machine"]
    lines = [
        f"{record['date'][:10]}, {record['device']}: {env['cpu']} ({env['cpu_capability']}, "
        f"native bf16: {'yes' if env['native_bf16'] else 'no'}"
        + (
            ", pinned by " + " ".join(f"{k}={v}" for k, v in env["isa_pins"].items())
            if env.get("isa_pins")
            else ""
        )
        + f"), {env['torch_threads']} threads, torch {env['torch']}",
        "",
    ]
    compare = record.get("compare", [])
    head = "| rung | recipe | model | test accuracy | reached | training s (median, min-max) "
    head += "| images/s |" + "".join(f" `{c['recipe']}` first |" for c in compare)
    lines += [head, "|" + "---|" * (7 + len(compare))]
    for r in record["rungs"]:
        a, t = r["test_accuracy"], r["train_s"]
        cells = [
            r["rung"] + (f" ({verdict(r)})" if verdict(r) else ""),
            f"`{r['recipe']}` ({epochs_phrase(r['epochs'], r.get('recipe_settings', {}))}, "
            f"{r['precision']}" + (", flip TTA" if r["tta"] else "") + ")",
            f"{r['model']} ({r['parameters']:,} params, {r['mflop_per_image']} MFLOP)",
            f"{a['mean']:.2%} ± {a['std']:.2%} (min {a['min']:.2%})",
            f"{r['reached']}/{r['seeds']}",
            f"{t['median']:.1f} ({t['min']:.1f}-{t['max']:.1f})",
            f"{r['images_per_s']:,.0f}",
        ]
        for c in compare:
            hit = c["first_reach_s"].get(r["rung"])
            if hit is not None:
                cells.append(f"{hit:.0f} s")
            elif not c["curve"]:
                cells.append("-")
            elif c["finished"]:  # the whole recipe ran
                cells.append(f"not reached ({c['epochs_run']} epochs, {c['curve'][-1][0]:.0f} s)")
            else:
                cells.append(f"not in {c['curve'][-1][0]:.0f} s (stopped)")
        lines.append("| " + " | ".join(cells) + " |")
    if record.get("merged_from"):
        parts = [f"{m['record']} ({m['date'][:10]})" for m in record["merged_from"]]
        lines += ["", "Merged from " + ", ".join(parts) + "."]
    if record.get("data_load_s") is not None:
        lines += [
            "",
            f"Loading and verifying the data: {record['data_load_s']:.1f} s (not in the times).",
        ]
    return "\n".join(lines)
