"""The documentation's tables and the ladder chart, made from the committed records.

Every figure a reader sees comes from a record: `benchmarks/results/` (ladder records,
sweeps, run directories, the baselines, audit, trust and speed records), model cards
(`fmnist card`'s card.json, in `benchmarks/cards/` or `benchmarks/results/`), the packaged
models' JSON, or `benchmarks/frontier/*.jsonl` (validation-only exploration). Each table
row names its record, the record's machine and its date, and a record's `role` says
whether its figure is the one that counts (`benchmarks/results/README.md`).

    python docs/generate.py OUT_DIR     # ladder.md, models.md, ..., ladder.png into OUT_DIR
    python docs/generate.py --headline  # the README's headline table, printed
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import sys
from pathlib import Path

from fmnist.analysis import ladder, results
from fmnist.analysis.ladder import DEFAULT_SEEDS, RUNGS, rung_recipes
from fmnist.errors import FmnistError
from fmnist.files import atomic_write, read_json
from fmnist.training.config import SETTING_FLAGS, TrainConfig, load_recipe, make_config
from fmnist.training.hard import epochs_phrase
from fmnist.training.recipes import PURPOSES, RECIPES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CARDS = ROOT / "benchmarks" / "cards"
FRONTIER = ROOT / "benchmarks" / "frontier"
WEIGHTS = ROOT / "src" / "fmnist" / "weights"
ROLES = ("current", "ablation", "superseded")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# The tutorial's own claims, quoted: nothing here measured them, so they stay in quotes and
# the table says whose they are.
TUTORIAL = {"model": "custom CNN", "accuracy": '"89%"', "time": '"about 10 minutes"'}
UNMARKED = "current (no role field)"  # records of a kind that nothing else measures


class RecordsError(FmnistError):
    """The records contradict each other, or lack what a table needs."""


# ----------------------------------------------------------------------------
# Reading records: role, machine, date; writing Markdown
# ----------------------------------------------------------------------------


def load(path: Path) -> dict:
    obj = read_json(path, "record", error=RecordsError)
    if not isinstance(obj, dict):
        raise RecordsError(f"{path}: a record is a JSON object")
    return obj


def ladder_records(results_dir: Path) -> list[tuple[str, dict]]:
    """(file name, record) of every ladder record, oldest first."""
    found = [(p.name, load(p)) for p in sorted(results_dir.glob("*-ladder-*.json"))]
    return sorted(found, key=lambda item: item[1].get("date", ""))


def role_of(record: dict, rung: str | None = None) -> str:
    """The record's role, or its rung's where roles are given per rung. A record without a
    role counts as current: only records that measure the same thing as others need one."""
    role = record.get("role", "current")
    if not isinstance(role, dict):
        return role
    if rung is None:  # the record as a whole: each rung's role
        return "; ".join(f"{r}: {v}" for r, v in role.items())
    return role.get(rung, "superseded")


def check_role(name: str, record: dict) -> None:
    role = record.get("role", "current")
    named = role.values() if isinstance(role, dict) else [role]
    bad = [r for r in named if r not in ROLES]
    if bad:
        raise RecordsError(f"{name}: role {bad[0]!r} is none of {', '.join(ROLES)}")
    rungs = {r["rung"] for r in record.get("rungs", [])}
    if isinstance(role, dict) and set(role) != rungs:
        raise RecordsError(f"{name}: a role per rung must name exactly its rungs {sorted(rungs)}")


def capability(env: dict) -> str | None:
    cap = env.get("cpu_capability")
    return {"AVX512": "AVX-512", "DEFAULT": "no AVX"}.get(cap, cap) if cap else None


def machine_class(env: dict, device: str) -> str:
    """What times compare within: the GPU, or the CPU model, its capability and threads."""
    if device.startswith("cuda"):
        return env.get("cuda") or "a GPU, name not recorded"
    threads = env.get("torch_threads")
    threads = plural(threads, "thread") if isinstance(threads, int) else "threads not recorded"
    return f"{env.get('cpu', '?')}, {capability(env) or '?'}, {threads}"


def is_reference(machine: str) -> bool:
    """The reference machine of every target (DESIGN.md): 2 threads on AVX2."""
    return machine.endswith(", AVX2, 2 threads")


def machine_cell(env: dict | None, device: str | None = "cpu") -> str:
    """The machine as a table shows it: its class, and what else the record holds."""
    if not env:
        return "not recorded"
    torch = f"torch {env['torch']}" if env.get("torch") else "torch not recorded"
    if device and device.startswith("cuda") and env.get("cuda"):
        host = f"host {env.get('cpu', '?')}, {env.get('torch_threads', '?')} threads"
        return f"{env['cuda']} ({host}), {torch}"
    cores = env.get("cpu_count") or env.get("cpus")
    parts = [env.get("cpu") or "CPU model not recorded"] + ([f"{cores} cores"] if cores else [])
    if capability(env):  # records made before the ladder kept no capability
        parts.append(capability(env) + (" (held to it)" if env.get("isa_pins") else ""))
    if env.get("torch_threads"):
        parts.append(f"{env['torch_threads']} threads")
    return ", ".join(parts + [torch])


def environment(obj: dict) -> tuple[dict | None, str]:
    """(environment, device) wherever a kind of record keeps them."""
    env = obj.get("machine") or obj.get("environment") or obj.get("record", {}).get("environment")
    return env, obj.get("device") or obj.get("metrics", {}).get("device") or "cpu"


def record_date(path: Path, *objs: dict) -> str:
    """The day a record was measured: its own date, its run's start, else the day its file
    name begins with (records written before they kept a date)."""
    for obj in objs:
        for value in (obj.get("date"), obj.get("started"), obj.get("record", {}).get("started")):
            if isinstance(value, str) and DAY.match(value):
                return value[:10]
    day = DAY.search(path.name)
    return day.group(0) if day else "not recorded"


def shown(path: Path) -> str:
    """A record's name as the docs show it: its path in the repository."""
    try:
        return f"`{path.resolve().relative_to(ROOT)}`"
    except ValueError:  # records outside the checkout (tests' copies)
        return f"`{path.name}`"


def provenance(path: Path, obj: dict, env: dict | None = None, device: str = "cpu") -> list[str]:
    """The last cells of every row: machine, date, record."""
    env = env if env is not None else environment(obj)[0]
    return [machine_cell(env, device), record_date(path, obj), shown(path)]


def markdown(head: str, rows: list[list[str]]) -> str:
    """A Markdown table; `head` is its header row's cells, written "a | b | c"."""
    cells = [[str(c).replace("|", "\\|").replace("\n", " ") for c in row] for row in rows]
    lines = [f"| {head} |", "|" + "---|" * len(head.split(" | "))]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def page(*blocks: str) -> str:
    return "\n\n".join(blocks) + "\n"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def mean_std(figure: dict | None) -> str:
    return "-" if not figure else f"{figure['mean']:.2%} ± {figure['std']:.2%}"


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def plural(n: int, thing: str) -> str:
    return f"{n} {thing}" + ("s" if n != 1 else "")


# ----------------------------------------------------------------------------
# The ladder
# ----------------------------------------------------------------------------


def check_records(results_dir: Path = RESULTS) -> None:
    """Raise RecordsError unless every role is one of ROLES and each rung has at most one
    current record per machine class."""
    for path in sorted(results_dir.glob("*.json")):
        check_role(path.name, load(path))
    claims: dict[tuple[str, str], str] = {}
    for name, record in ladder_records(results_dir):
        for rung in record.get("rungs", []):
            if role_of(record, rung["rung"]) != "current":
                continue
            key = (machine_class(record["machine"], record["device"]), rung["rung"])
            if key in claims:
                raise RecordsError(
                    f"{claims[key]} and {name} both claim to be the current {key[1]} rung on "
                    f'{key[0]}; set the older one\'s "role" to "superseded" (or "ablation"), '
                    "as benchmarks/results/README.md says"
                )
            claims[key] = name


def current_rungs(results_dir: Path = RESULTS) -> dict[str, dict[str, tuple[str, dict, dict]]]:
    """machine class -> rung -> (file name, record, rung) of the newest current record: the
    reference first, then the other CPUs, then the GPUs; the rungs in order."""
    found: dict[str, dict[str, tuple[str, dict, dict]]] = {}
    for name, record in ladder_records(results_dir):  # oldest first: the newest stays
        machine = machine_class(record["machine"], record["device"])
        for rung in record.get("rungs", []):
            if role_of(record, rung["rung"]) == "current":
                found.setdefault(machine, {})[rung["rung"]] = (name, record, rung)

    def order(machine: str) -> tuple:
        on_gpu = next(iter(found[machine].values()))[1]["device"].startswith("cuda")
        return (on_gpu, not is_reference(machine), machine)

    return {
        m: dict(sorted(found[m].items(), key=lambda kv: float(kv[0].rstrip("%"))))
        for m in sorted(found, key=order)
    }


def todays_recipe(name: str) -> dict | None:
    """The settings a recipe name gives in this checkout: a preset, or a recipe file beside
    the frontier's records (as `--recipe 95=benchmarks/frontier/cpu95-30min.json` ran)."""
    if name in RECIPES:
        return RECIPES[name]
    path = FRONTIER / f"{name}.json"
    return load_recipe(str(path))[1] if path.is_file() else None


def same_as_today(rung: dict) -> bool | None:
    """Whether today's recipe of that name trains what the record measured (None: unknown).
    Records that predate `recipe_settings` are compared on their model and epochs."""
    today = todays_recipe(rung["recipe"])
    if today is None:
        return None
    if "recipe_settings" in rung:
        return rung["recipe_settings"] == today
    if "model" not in today or "epochs" not in today:
        return None
    return (rung["model"], rung["epochs"]) == (today["model"], today["epochs"])


def ladder_command(record: dict, rung: dict) -> str:
    """The `fmnist bench --ladder` line that measures this rung again on such a machine."""
    name, step = rung["rung"], rung["rung"].rstrip("%")
    device = "cuda" if record["device"].startswith("cuda") else "cpu"
    pins = record["machine"].get("isa_pins") or {}  # how a run is held to AVX2
    parts = [f"{k}={v}" for k, v in pins.items()] + ["fmnist bench --ladder"]
    parts += (["--device cuda"] if device == "cuda" else []) + [f"--rungs {step}"]
    seeds = rung.get("seed_values") or list(range(rung["seeds"]))
    if len(seeds) != DEFAULT_SEEDS.get(name, 5):
        parts.append(f"--seeds {len(seeds)}")
    if seeds[0]:
        parts.append(f"--first-seed {seeds[0]}")
    if same_as_today(rung) is False:  # the recipe has changed since: its recorded settings
        parts.append(f"--recipe {step}=FILE")
    elif rung["recipe"] != rung_recipes(device).get(name):
        recipe = rung["recipe"]  # another preset, or a recipe file of the frontier's
        if recipe not in RECIPES:
            recipe = (FRONTIER / f"{recipe}.json").relative_to(ROOT).as_posix()
        parts.append(f"--recipe {step}={recipe}")
    return " ".join(parts + ["--compare"])  # --compare alone: the rung without the others


def recipe_cell(rung: dict) -> str:
    epochs = epochs_phrase(rung["epochs"], rung.get("recipe_settings", {}))
    bits = [epochs, rung["precision"]] + ["flip TTA"] * rung["tta"]
    text = f"`{rung['recipe']}` ({', '.join(bits)})"
    if same_as_today(rung) is False:
        text += f"; today's `{rung['recipe']}` differs (FILE: a recipe file of the record's"
        text += " `recipe_settings`)"
    return text


def accuracy_cell(rung: dict) -> str:
    a, n = rung["test_accuracy"], rung["seeds"]
    text = f"{mean_std(a)} ({plural(n, 'seed')}, min {a['min']:.2%}; "
    text += f"{rung['reached']}/{n} at {rung['rung']})"
    said = ladder.verdict(rung)
    return f"{text}: **{said}**" if said else text


def time_cell(rung: dict) -> str:
    t = rung["train_s"]
    text = f"{t['median']:,.1f} s ({t['min']:,.1f}-{t['max']:,.1f})"
    if "first_seed_s" in rung:  # recorded since the ladder reports it
        text += f"; first seed {rung['first_seed_s']:,.1f} s"
    return text


LADDER_HEAD = (
    "rung | recipe | model | test accuracy | training time, median (min-max) | images/s | "
    "command | machine | date | record"
)


def ladder_row(name: str, record: dict, rung: dict, results_dir: Path) -> list[str]:
    model = f"`{rung['model']}` ({rung['parameters']:,} params, {rung['mflop_per_image']} MFLOP)"
    cells = [rung["rung"], recipe_cell(rung), model, accuracy_cell(rung), time_cell(rung)]
    cells += [f"{rung['images_per_s']:,.0f}", f"`{ladder_command(record, rung)}`"]
    return cells + provenance(results_dir / name, record, record["machine"], record["device"])


def first_reach_cell(compared: dict, rung: str) -> str:
    """When a general recipe first reached the rung (seed 0, test accuracy each epoch)."""
    hit, curve = compared["first_reach_s"].get(rung), compared["curve"]
    if hit is not None:
        return f"{hit:,.0f} s"
    if not curve:
        return "-"
    if compared["finished"]:
        return f"not reached ({compared['epochs_run']} epochs, {curve[-1][0]:,.0f} s)"
    return f"not in {curve[-1][0]:,.0f} s (stopped)"


def compare_table(machine: str, rungs: list[str], results_dir: Path) -> str:
    """Today's general recipes beside the rungs: the newest such measurement on `machine`
    that is not superseded ("" where there is none)."""
    measured = [
        (name, record)
        for name, record in ladder_records(results_dir)
        if record.get("compare")
        and machine_class(record["machine"], record["device"]) == machine
        and any(role_of(record, r["rung"]) != "superseded" for r in record["rungs"])
    ]
    if not measured:
        return ""
    name, record = measured[-1]
    where = provenance(results_dir / name, record, record["machine"], record["device"])
    head = " | ".join(["recipe"] + [f"first at {r}" for r in rungs] + ["machine | date | record"])
    rows = [
        [f"`{c['recipe']}`"] + [first_reach_cell(c, r) for r in rungs] + where
        for c in record["compare"]
    ]
    intro = "When today's general recipes first reach each rung (seed 0, test accuracy after"
    return page(intro + " each epoch: a measurement that selects nothing):", markdown(head, rows))


def is_side_by_side(obj: dict) -> bool:
    """A record of benchmarks/frontier/side_by_side.py: two commits' recipes, seed by seed."""
    rungs = obj.get("rungs")
    return bool(rungs) and isinstance(rungs[0], dict) and {"old", "new", "ratio"} <= set(rungs[0])


def side_by_side_cell(side: dict, rung: str) -> str:
    """One commit's recipe of a rung, its accuracy and its median time."""
    accuracy = side["test_accuracy_mean"]
    seeds = len(side["test_accuracy"])
    holds = "holds" if side["holds"] else "**does not hold**"
    return (
        f"`{side['recipe']}` (`{side['model']}`, "
        f"{epochs_phrase(side['epochs'], side.get('recipe_settings', {}))}) at "
        f"{side['commit'][:7]}: {accuracy:.2%}, {side['seeds_reaching_rung']}/{seeds} at {rung}, "
        f"{holds}; {side['train_s_median']:,.1f} s"
    )


SIDE_BY_SIDE_HEAD = "rung | before | after | time, after ÷ before | machine | date | record"


def side_by_side_markdown(results_dir: Path) -> str:
    """Each side-by-side record's rungs not superseded, newest record first: the two commits'
    recipes taking turns seed by seed in one run on one machine, so their times compare where
    ladder records of two machines do not. A rung that measured a variant, not the recipe,
    says so beside it (its role)."""
    blocks = []
    for path in sorted(results_dir.glob("*.json"), reverse=True):  # names begin with the date
        obj = load(path)
        if not is_side_by_side(obj):
            continue
        where = provenance(path, obj, obj["machine"], "cpu")
        rows = []
        for r in obj["rungs"]:
            role = role_of(obj, r["rung"])
            if role == "superseded":
                continue
            rung = r["rung"] if role == "current" else f"{r['rung']} ({role})"
            before, after = (side_by_side_cell(r[side], r["rung"]) for side in ("old", "new"))
            rows.append([rung, before, after, f"{r['ratio']:.2f}x"] + where)
        if rows:
            blocks.append(markdown(SIDE_BY_SIDE_HEAD, rows))
    if not blocks:
        return ""
    intro = (
        "## Before and after, on one machine\n\nTwo commits' recipes taking turns seed by seed"
        " in one run (`benchmarks/frontier/side_by_side.py`), a calibration probe at its start"
        " and end; whether a rung holds as above. Newest first; a rung marked (ablation)"
        " measured a variant beside the recipe, not the recipe."
    )
    return page(intro, *blocks)


LADDER_INTRO = (
    "Each machine's newest current record of each rung (`fmnist bench --ladder`: all 60,000"
    " training images; accuracy: mean ± sample std over seeds; time: training seconds from the"
    " first step to the final weights). A rung holds when its mean is at least 0.1 point"
    " above it and 4 of 5 seeds (every seed, where fewer ran) reach it; a row says **missed**"
    " below it on average and **does not hold** where it is reached on average but not held."
    " Every record, current or not, is in"
    " [all-runs.md](all-runs.md)."
)


def ladder_markdown(results_dir: Path = RESULTS) -> str:
    """ladder.md: per machine class, the newest current record of each rung."""
    # the pages that include this table show the chart beside it (_generated/ladder.png)
    blocks = ["# The accuracy/time ladder", LADDER_INTRO]
    for machine, rungs in current_rungs(results_dir).items():
        blocks.append(f"## {machine}" + (": the reference" if is_reference(machine) else ""))
        rows = [ladder_row(name, rec, rung, results_dir) for name, rec, rung in rungs.values()]
        blocks.append(markdown(LADDER_HEAD, rows))
        compared = compare_table(machine, list(rungs), results_dir)
        blocks += [compared.rstrip()] if compared else []
    side_by_side = side_by_side_markdown(results_dir)
    return page(*blocks, *([side_by_side.rstrip()] if side_by_side else []))


def draw_ladder_chart(path: Path, results_dir: Path = RESULTS) -> Path:
    """ladder.png: test accuracy against training time (log scale), one series per machine
    class, from the same current records as ladder.md."""
    import matplotlib

    matplotlib.use("Agg")  # no display where the docs build
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for rung in RUNGS:
        ax.axhline(float(rung.rstrip("%")), color="0.85", lw=0.8, zorder=0)
    for i, (machine, rungs) in enumerate(current_rungs(results_dir).items()):
        points = [rung for _, _, rung in rungs.values()]
        t, a = [p["train_s"] for p in points], [p["test_accuracy"] for p in points]
        days = ", ".join(sorted({rec["date"][:10] for _, rec, _ in rungs.values()}))
        x, y = [s["median"] for s in t], [100 * s["mean"] for s in a]
        spread = [[s["median"] - s["min"] for s in t], [s["max"] - s["median"] for s in t]]
        ax.errorbar(x, y, xerr=spread, yerr=[100 * s["std"] for s in a], marker="o",
                    capsize=3, lw=1.2, label=f"{machine} ({days})")  # fmt: skip
        for p, xy in zip(points, zip(x, y, strict=True), strict=True):
            below = i % 2 == 0  # neighbouring series label their points on opposite sides
            offset, align = ((4, -11), "left") if below else ((-4, 5), "right")
            ax.annotate(p["recipe"], xy, textcoords="offset points", xytext=offset, ha=align,
                        fontsize=7)  # fmt: skip
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda seconds, _: f"{seconds:g} s"))
    ax.set_xlabel("training time (median over seeds, bars: min-max; log scale)")
    ax.set_ylabel("test accuracy, % (mean ± std over seeds)")
    ax.set_title("The accuracy/time ladder: the current records of each machine")
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(True, which="major", color="0.92")
    fig.tight_layout()
    fig.savefig(path, format="png")  # by name: an atomic write's temporary file has no .png
    plt.close(fig)
    return path


# ----------------------------------------------------------------------------
# Models, recipes and classic baselines
# ----------------------------------------------------------------------------


def run_directories(results_dir: Path) -> list[Path]:
    return sorted(p for p in results_dir.iterdir() if (p / "metrics.json").is_file())


def card_paths(results_dir: Path, cards_dir: Path = CARDS) -> list[Path]:
    """Every model card: `*card*.json` and `*/card.json` in the results folder, every
    card.json under the cards folder."""
    found = {*results_dir.glob("*card*.json"), *results_dir.glob("*/card.json")}
    if cards_dir.is_dir():
        found |= {*cards_dir.glob("*card*.json"), *cards_dir.rglob("card.json")}
    return sorted(p for p in found if p.is_file())


def model_sources(
    results_dir: Path, weights_dir: Path, cards_dir: Path = CARDS
) -> list[tuple[Path, dict, dict]]:
    """(path, raw record, `results.read` row) of the packaged models that carry their record,
    the current sweeps, the run directories and the model cards, in that order."""
    found = []
    for path in sorted(weights_dir.glob("*.json")):
        obj = load(path)
        if "record" in obj:  # a packaged model without its record has its run directory
            found.append((path, obj, results.read(path)))
    for path in sorted(results_dir.glob("*seeds.json")):
        obj = load(path)
        if role_of(obj) == "current":
            found.append((path, obj, results.read(path)))
    for path in run_directories(results_dir):
        found.append((path, load(path / "config.json"), results.read(path)))
    for path in card_paths(results_dir, cards_dir):
        found.append((path, load(path), results.read(path)))
    return found


def packaged_as(run_dir: Path, weights_dir: Path) -> str | None:
    """The packaged model a run directory made (its metrics are the model's), or None."""
    if not run_dir.is_dir():
        return None
    mine = load(run_dir / "metrics.json")
    for model in sorted(weights_dir.glob("*.json")):
        theirs = load(model).get("metrics", {})
        if all(mine.get(k) == theirs.get(k) for k in ("test_accuracy", "train_s", "epochs")):
            return model.stem
    return None


def command_reproduces(cfg: dict) -> bool:
    """Whether `results.command` gives these settings: every setting it has no flag for is
    still what the recipe gives today (not so where a recipe kept its name and changed)."""
    recipe = cfg.get("recipe", "seed")
    if recipe not in RECIPES:
        return False
    today = dataclasses.asdict(make_config(recipe, all_data=cfg.get("all_data") or None))
    unflagged = set(cfg) - set(SETTING_FLAGS) - {"device"}  # the device: where it ran
    return all(cfg[k] == today.get(k, cfg[k]) for k in unflagged)


MODELS_HEAD = (
    "model | parameters | recipe | test accuracy | with flip TTA | training time | command | "
    "machine | date | record"
)


def model_row(path: Path, obj: dict, row: dict, weights_dir: Path) -> list[str]:
    cfg = row["config"]
    params = row["parameters"] or results.parameters(cfg.get("model"))
    recipe = f"`{cfg.get('recipe', '?')}`" + (" (all 60,000)" if cfg.get("all_data") else "")
    command = f"`{row.get('command') or results.command(cfg, row['n'])}`"
    if not command_reproduces(cfg):
        recipe += f" as it was; today's `{cfg.get('recipe')}` differs"
        command = "today's recipe differs: the settings are the record's `config`"
    each = " each" if row["n"] > 1 else ""
    cells = [f"`{cfg.get('model', '?')}`", f"{params:,}" if params else "-", recipe]
    cells += [results.accuracy(row["test"]), results.accuracy(row["tta"])]
    cells += [f"{row['train_s']:,.0f} s{each}", command]
    cells += provenance(path, obj, *environment(obj))
    packaged = packaged_as(path, weights_dir)
    return cells[:-1] + [cells[-1] + (f" (the packaged `{packaged}`)" if packaged else "")]


BASELINES_HEAD = (
    "classifier | test accuracy | Zalando's | fit | predict 10,000 | machine | date | record"
)


def baselines_table(results_dir: Path) -> str:
    rows = []
    for path in sorted(results_dir.glob("*-baselines.json")):
        obj = load(path)
        for b in obj["results"]:
            cells = [b["description"], pct(b["test_accuracy"]), f"{b['zalando']:.1%}"]
            cells += [f"{b['fit_s']:,.1f} s", f"{b['predict_s']:,.1f} s"]
            rows.append(cells + provenance(path, obj))
    return markdown(BASELINES_HEAD, rows)


MODELS_INTRO = (
    "Each run chose its epoch on the validation split (12,000 of the 60,000 training images)"
    " unless it trained on all 60,000, and met the test set once; mean ± sample std over seeds."
    ' "With flip TTA" averages the logits of each test image and its mirror image; it stands'
    " beside the plain figure and chooses nothing. Training time counts every epoch with its"
    " validation pass."
)
BASELINES_INTRO = (
    "Classic classifiers, a subset of Zalando's benchmark refitted on the 60,000 training"
    " images with their published settings (`fmnist baselines`):"
)


def models_markdown(
    results_dir: Path = RESULTS, weights_dir: Path = WEIGHTS, cards_dir: Path = CARDS
) -> str:
    sources = model_sources(results_dir, weights_dir, cards_dir)
    rows = [model_row(*source, weights_dir) for source in sources]
    return page(
        "# Models, recipes and classic baselines",
        MODELS_INTRO,
        markdown(MODELS_HEAD, rows),
        BASELINES_INTRO,
        baselines_table(results_dir),
        *cards_blocks(results_dir, cards_dir),
    )


# ----------------------------------------------------------------------------
# Model cards
# ----------------------------------------------------------------------------

CARDS_HEAD = (
    "model | recipe | test accuracy | first reached (median s) | ECE | under corruptions "
    "/ inverted | parameters, MFLOP | training s, images/s | inference images/s | command | "
    "machine | date | record"
)
CARDS_INTRO = (
    "Model cards (`fmnist card`, see [Benchmark your model](card.md)): seeds trained with the"
    " recipe's selection (validation, or a fixed schedule on all 60,000 images), the test set"
    " met once per seed; robustness and inference speed of seed 0's model."
)


def card_cells(path: Path, card: dict) -> list[str]:
    """One card as a row: its figures, where it ran, its record."""
    acc, rob = card["test_accuracy"], card["robustness"]
    reduced = card["protocol"].get("reduced") or {}
    smaller = " (a smaller run: " + ", ".join(f"{k} {v}" for k, v in reduced.items()) + ")"
    reached = [f"{r} {v['median_s']:,.1f}" for r, v in card["rungs"].items() if v["median_s"]]
    cells = [f"`{card['model']}`" + (smaller if reduced else ""), f"`{card['recipe']}`"]
    cells += [f"{mean_std(acc)} ({plural(len(acc['values']), 'seed')})"]
    cells += ["; ".join(reached) or "none", pct(card["ece"]["mean"])]
    cells += [f"{pct(rob['mean'])} / {pct(rob['inverted_image'])}"]
    cells += [f"{card['parameters']:,}, {card['mflop_per_image']:g}"]
    rate = card["training_images_per_s"]["median"]
    cells += [f"{card['train_s']['median']:,.1f} s, {rate:,.0f}"]
    cells += [f"{card['inference_images_per_s']:,.0f}", f"`{card['command']}`"]
    return cells + provenance(path, card, card["machine"], card["device"])


def cards_blocks(results_dir: Path, cards_dir: Path = CARDS) -> list[str]:
    """The model cards' table, where there are cards."""
    paths = card_paths(results_dir, cards_dir)
    if not paths:
        return []
    rows = [card_cells(p, results_card(p)) for p in paths]
    return ["## Model cards", CARDS_INTRO, markdown(CARDS_HEAD, rows)]


def results_card(path: Path) -> dict:
    from fmnist.analysis.card_board import read_card

    try:
        return read_card(path)
    except FmnistError as e:
        raise RecordsError(str(e)) from None


# ----------------------------------------------------------------------------
# The audit, robustness and speed
# ----------------------------------------------------------------------------

AUDIT_HEAD = (
    "kind | within train | within test | test images with a copy in train | machine | date | record"
)


def audit_findings_table(results_dir: Path) -> str:
    """What `fmnist audit` found, from each audit directory's audit.json."""
    rows = []
    for path in sorted(results_dir.glob("*/audit.json")):
        audit = load(path)
        where = [machine_cell(audit.get("environment")), record_date(path.parent, audit)]
        where.append(shown(path))
        exact, near = audit["exact_duplicates"]["counts"], audit["near_duplicates"]
        rows.append(["exact duplicates", plural(exact["train_groups"], "group")]
                    + [plural(exact["test_groups"], "group"), str(exact["test_images_in_train"])]
                    + where)  # fmt: skip
        for kind, label in (("pixel", "pixels, RMS"), ("feature", "features, cosine")):
            n, counts = near[kind], near[kind]["counts"]
            cells = [f"near-duplicates, {label} <= {n['threshold']}"]
            cells += [plural(counts["train"], "pair"), plural(counts["test"], "pair")]
            rows.append(cells + [str(counts["train_test"])] + where)
        issues, data = audit["label_issues"]["counts"], audit["data"]
        shares = [f"{issues[s]:,} ({issues[s] / data[s]:.1%})" for s in ("train", "test")]
        rows.append(["label suspects (cleanlab)", *shares, "-"] + where)
    return markdown(AUDIT_HEAD, rows)


EFFECT_HEAD = (
    "training images | test accuracy (10,000) | on the test images the audit did not flag | "
    "validation | training s, median (min-max) | machine | date | record"
)


def audit_effect_table(results_dir: Path) -> str:
    """Training with and without what the audit flagged: each arm's figures over its seeds."""
    rows = []
    for path in sorted(results_dir.glob("*-audit-effect-*.json")):
        obj = load(path)
        for arm, figures in obj["summary"].items():
            seconds = [r["seconds"] for r in obj["runs"] if r["arm"] == arm]
            unflagged = f"{obj['unflagged_test_images']:,} images"
            cells = [f"{arm} (`{obj['recipe']}`, {plural(len(seconds), 'seed')})"]
            cells += [mean_std(figures["test_accuracy"])]
            cells += [f"{mean_std(figures['unflagged_test_accuracy'])} ({unflagged})"]
            cells += [mean_std(figures["val_accuracy"]), median_range(seconds)]
            rows.append(cells + provenance(path, obj))
    return markdown(EFFECT_HEAD, rows)


AUDIT_INTRO = "What `fmnist audit` found in the 70,000 images (every count from its `audit.json`):"
EFFECT_INTRO = (
    "Training with all images and without the ones the audit flagged (`python"
    " benchmarks/audit_effect.py AUDIT_JSON OUT.json`); the figure on the unflagged test images"
    " stands beside the standard one, never instead of it:"
)


def audit_markdown(results_dir: Path = RESULTS) -> str:
    return page(
        "# The audit and its effect",
        AUDIT_INTRO,
        audit_findings_table(results_dir),
        EFFECT_INTRO,
        audit_effect_table(results_dir),
    )


ROBUST_HEAD = (
    "model | clean test | mean under corruption | mean / clean | corruptions x severities | "
    "seconds | machine | date | record"
)
EXPLAIN_HEAD = (
    "model | method | seconds per image | deletion test AUC (lower: better) | random order AUC | "
    "better than random | machine | date | record"
)


def trust_tables(results_dir: Path) -> tuple[str, str]:
    """(accuracy under corruption, explanations) of each packaged model in the trust records."""
    robust, explain = [], []
    for path in sorted(results_dir.glob("*-trust-*.json")):
        obj = load(path)
        where = provenance(path, obj)
        for name, m in obj["models"].items():
            r, f = m["robustness"], m["faithfulness"]
            grid = f"{len(r['accuracy'])} x {len(r['severities'])} ({r['images']:,} images)"
            cells = [f"`{name}` (`{m['model']}`)", pct(r["clean"]), pct(r["mean"])]
            cells += [f"{r['relative']:.2f}", grid, f"{m['robustness_s']:,.1f}"]
            robust.append(cells + where)
            for method, seconds in m["explain_s_per_image"].items():
                better = "yes" if f[method]["better_than_random"] else "**no**"
                cells = [f"`{name}`", method, f"{seconds:g}", f"{f[method]['auc']:.3f}"]
                explain.append(cells + [f"{f['random']['auc']:.3f}", better] + where)
    return markdown(ROBUST_HEAD, robust), markdown(EXPLAIN_HEAD, explain)


CORRUPTION_HEAD = (
    "training augmentation | validation | clean test | mean under corruption | the corruptions "
    "trained with | the unseen ones | training s, median (min-max) | machine | date | record"
)


def corruption_training_table(results_dir: Path) -> str:
    rows = []
    for path in sorted(results_dir.glob("*-corruption-training-*.json")):
        obj = load(path)
        for arm, augment in obj["arms"].items():
            s = obj["summary"][arm]
            seconds = [r["train_seconds"] for r in obj["runs"] if r["arm"] == arm]
            cells = [f"`{augment}` (`{obj['recipe']}`, `{obj['model']}`, {obj['seeds']} seeds)"]
            cells += [mean_std(s[k]) for k in ("val_accuracy", "clean", "mean")]
            cells += [mean_std(s["mean_trained"]), mean_std(s["mean_unseen"])]
            rows.append(cells + [median_range(seconds)] + provenance(path, obj))
    return markdown(CORRUPTION_HEAD, rows)


EXPLAIN_INTRO = (
    "Explanations (`fmnist explain`): time per image, and the deletion test (black out the"
    " most-attributed pixels first and follow the predicted class's probability, against a"
    " random order):"
)


def robustness_markdown(results_dir: Path = RESULTS) -> str:
    robust, explain = trust_tables(results_dir)
    return page(
        "# Robustness and explanations",
        "Test accuracy of the packaged models under corruptions (`fmnist robustness`):",
        robust,
        EXPLAIN_INTRO,
        explain,
        "Training with corruptions (`python benchmarks/corruption_training.py OUT.json`):",
        corruption_training_table(results_dir),
    )


def seconds_or_not(value: float | None, epochs: int | None) -> str:
    if value is not None:
        return f"{value:,.1f} s"
    return f"not reached in {epochs} epochs" if epochs else "not reached"


def speed_rows(path: Path, obj: dict) -> list[list[str]]:
    """`fmnist bench`'s plain PyTorch loop against fmnist's trainer, one row per measure."""
    t, reach, inf = obj["throughput"], obj["time_to_accuracy"], obj["inference"]
    rows = [[f"training images/s, seed CNN, batch {t['batch_size']} (median of {t['repeats']})",
             f"{t['reference_images_per_s']:,.0f}", f"{t['ours_images_per_s']:,.0f}",
             f"{t['ratio']:.2f}x"]]  # fmt: skip
    plain = reach["reference"]
    for recipe in (r for r in reach if r != "reference"):
        for target in (k for k in reach[recipe] if k.endswith("%")):
            ours, theirs = reach[recipe][target], plain.get(target)
            ratio = f"{theirs / ours:.2f}x" if ours and theirs else "-"
            cells = [f"time to {target} test accuracy, `{recipe}` recipe"]
            cells += [seconds_or_not(theirs, plain.get("epochs"))]
            rows.append(cells + [seconds_or_not(ours, reach[recipe].get("epochs")), ratio])
    for batch in (1000, 256):
        ref, ours = (inf[f"{who}_batch_{batch}_images_per_s"] for who in ("reference", "ours"))
        what = f"inference images/s, batch {batch} (median of {inf['repeats']})"
        rows.append([what, f"{ref:,.0f}", f"{ours:,.0f}", f"{ours / ref:.2f}x"])
    latency = [inf[f"{who}_single_image_latency_ms"] for who in ("reference", "ours")]
    rows.append(["single-image latency"] + [f"{ms} ms" for ms in latency] + ["-"])
    return [row + provenance(path, obj, obj["machine"], obj["device"]) for row in rows]


SPEED_HEAD = "measure | plain PyTorch loop | fmnist | ratio | machine | date | record"
LOAD_HEAD = (
    "requests | clients | errors | requests/s | latency p50 / p90 / p99 / max | payloads | "
    "machine | date | record"
)
SPEED_INTRO = (
    "`fmnist bench`: a plain PyTorch loop over the same CNN against fmnist's trainer, in one"
    " run and alternating; medians over repeats. Time-to-accuracy evaluates the test set after"
    " each epoch as a measurement only."
)


def speed_markdown(results_dir: Path = RESULTS) -> str:
    rows = [r for p in sorted(results_dir.glob("*-cpu.json")) for r in speed_rows(p, load(p))]
    served = []
    for path in sorted(results_dir.glob("load_test*.json")):
        obj = load(path)
        latency = " / ".join(str(obj["latency_ms"][k]) for k in ("p50", "p90", "p99", "max"))
        cells = [f"{obj['requests']:,}", str(obj["clients"]), str(obj["errors"])]
        cells += [f"{obj['requests_per_s']:,.1f}", f"{latency} ms", obj["payloads"]]
        served.append(cells + provenance(path, obj))
    return page(
        "# Speed, side by side",
        SPEED_INTRO,
        markdown(SPEED_HEAD, rows),
        "`fmnist serve` under load (`python benchmarks/load_test.py`):",
        markdown(LOAD_HEAD, served),
    )


# ----------------------------------------------------------------------------
# Every record, current or not
# ----------------------------------------------------------------------------


def when(path: Path, *objs: dict) -> str:
    """A record's date with its time of day where it has one (records of one day differ)."""
    for obj in objs:
        value = obj.get("date") or obj.get("started")
        if isinstance(value, str) and DAY.match(value) and len(value) >= 16:
            return value[:16].replace("T", " ") + " UTC"
    return record_date(path, *objs)


def what_it_measures(obj: dict) -> str:
    """A record's subject in a few words, by what it holds."""
    if str(obj.get("format", "")).startswith("fmnist-card/"):
        seeds = plural(obj["protocol"]["seeds"], "seed")
        return f"model card of `{obj['model']}`, recipe `{obj['recipe']}`, {seeds}"
    if is_side_by_side(obj):
        commits = {r[side]["commit"][:7] for r in obj["rungs"] for side in ("old", "new")}
        rungs = ", ".join(r["rung"] for r in obj["rungs"])
        return f"side by side: the recipes of {' and '.join(sorted(commits))} at {rungs}"
    if "rungs" in obj:
        rungs = [
            f"{r['rung']} `{r['recipe']}` (`{r['model']}`, "
            f"{epochs_phrase(r['epochs'], r.get('recipe_settings', {}))}, "
            f"{r['precision']}, {plural(r['seeds'], 'seed')})"
            for r in obj["rungs"]
        ]
        beside = [c["recipe"] for c in obj.get("compare", [])]
        return "; ".join(rungs) + (f"; beside: {', '.join(beside)}" if beside else "")
    if "config" in obj:  # a sweep or a run
        cfg = obj["config"]
        runs = plural(obj["n"], "seed") if "n" in obj else f"seed {cfg.get('seed', '?')}"
        data = ", all 60,000" if cfg.get("all_data") else ""
        what = f"`{cfg.get('recipe')}` (`{cfg.get('model')}`, {epochs_phrase(cfg['epochs'], cfg)}"
        return f"{what}{data}), {runs}"
    if "results" in obj:
        return "classic classifiers: " + ", ".join(b["name"] for b in obj["results"])
    if "arms" in obj or "excluded_training_images" in obj:
        return f"`{obj['recipe']}` with and without, {plural(obj['seeds'], 'seed')}"
    if "models" in obj:
        return "robustness and explanations of " + ", ".join(f"`{m}`" for m in obj["models"])
    if "throughput" in obj:
        return "a plain PyTorch loop against fmnist's trainer"
    return obj.get("benchmark") or obj.get("format") or "-"


def results_inventory(results_dir: Path, cards_dir: Path = CARDS) -> list[list[str]]:
    """Every record in the results folder: the JSON records, run directories and audits."""
    rows = []
    for path in sorted(results_dir.glob("*.json")):
        obj = load(path)
        rows.append([shown(path), what_it_measures(obj), role_of(obj)])
        rows[-1] += [machine_cell(*environment(obj)), when(path, obj)]
    for path in run_directories(results_dir):
        config = load(path / "config.json")
        rows.append([shown(path), what_it_measures(config), UNMARKED])
        rows[-1] += [machine_cell(*environment(config)), when(path, config)]
    for path in sorted(results_dir.glob("*/audit.json")):
        audit = load(path)
        rows.append([shown(path), f"`fmnist audit`: {audit.get('settings')}", UNMARKED])
        rows[-1] += [machine_cell(audit.get("environment")), when(path.parent, audit)]
    inside = [p for p in card_paths(results_dir, cards_dir) if p.parent != results_dir]
    for path in inside:  # cards in folders (those in the results folder are listed above)
        card = load(path)
        rows.append([shown(path), what_it_measures(card), role_of(card)])
        rows[-1] += [machine_cell(*environment(card)), when(path, card)]
    return rows


def models_inventory(weights_dir: Path, results_dir: Path) -> list[list[str]]:
    """The packaged models; one without its record is placed and dated by its run directory."""
    rows = []
    for path in sorted(weights_dir.glob("*.json")):
        obj = load(path)
        runs = [d for d in run_directories(results_dir) if packaged_as(d, weights_dir) == path.stem]
        source = obj if "record" in obj or not runs else load(runs[0] / "config.json")
        made_by = f" (made by {shown(runs[0])})" if "record" not in obj and runs else ""
        rows.append([shown(path), f"packaged model `{path.stem}` (`{obj.get('model')}`){made_by}"])
        rows[-1] += [UNMARKED, machine_cell(*environment(source)), when(path, source)]
    return rows


def frontier_inventory(frontier_dir: Path) -> list[list[str]]:
    """The validation-only exploration: each file's runs and the machines they ran on."""
    rows = []
    for path in sorted(frontier_dir.glob("*.jsonl")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        machines = {
            machine_class(
                {
                    "cpu": x.get("cpu"),
                    "cpu_capability": x.get("cpu_capability"),
                    "torch_threads": x.get("threads"),
                    "cuda": x.get("gpu"),
                },
                "cuda" if x.get("gpu") else "cpu",
            )  # fmt: skip
            for x in lines
        }
        rows.append([shown(path), f"{plural(len(lines), 'run')}, validation only"])
        rows[-1] += ["exploration", "; ".join(sorted(machines)) or "not recorded"]
        rows[-1] += [record_date(path)]
    return rows


INVENTORY_HEAD = "record | what it measures | role | machine | date"
ALL_RUNS_INTRO = (
    "Every record, current or not. Its role says whether its figure counts: `current` (the"
    " figure for its rung and machine), `ablation` (a variant measured for comparison) or"
    " `superseded` (an older measurement of what a newer record measures); see"
    " `benchmarks/results/README.md`."
)
FRONTIER_INTRO = (
    "Validation-only exploration (`benchmarks/frontier/`): how the recipes were chosen, on the"
    " validation split; no test figure comes from these."
)


def all_runs_markdown(
    results_dir: Path = RESULTS,
    weights_dir: Path = WEIGHTS,
    frontier_dir: Path = FRONTIER,
    cards_dir: Path = CARDS,
) -> str:
    rows = results_inventory(results_dir, cards_dir) + models_inventory(weights_dir, results_dir)
    return page(
        "# Every record",
        ALL_RUNS_INTRO,
        markdown(INVENTORY_HEAD, rows),
        FRONTIER_INTRO,
        markdown(INVENTORY_HEAD, frontier_inventory(frontier_dir)),
    )


# ----------------------------------------------------------------------------
# The README's headline table, and everything at once
# ----------------------------------------------------------------------------


def seed_row(weights_dir: Path) -> list[str]:
    """The packaged default model: the tutorial's CNN trained by fmnist's `seed` recipe."""
    path = weights_dir / "default.json"
    model = load(path)
    m, config = model["metrics"], model["record"]["config"]
    stop = ", early stop" if m.get("stopped_early") else ""
    run = f"seed {config.get('seed', 0)}, one run; best epoch {m['best_epoch']} of {m['epochs']}"
    cells = ["fmnist, `seed` recipe (the packaged default model)"]
    cells += [f"`{model['model']}`, the tutorial's CNN; `{config.get('recipe', 'seed')}`"]
    cells += [f"{pct(m['test_accuracy'])} ({run}{stop})"]
    cells += [f"{m['train_s']:,.0f} s ({plural(m['epochs'], 'epoch')}, validation included)"]
    cells += [f"`{results.command(config)}`"]
    return cells + provenance(path, model, *environment(model))[:2]


def newest_gpu(ladders: dict[str, dict]) -> str | None:
    """The GPU whose current ladder records are the newest."""
    newest = {
        machine: max(record["date"] for _, record, _ in rungs.values())
        for machine, rungs in ladders.items()
        if next(iter(rungs.values()))[1]["device"].startswith("cuda")
    }
    return max(newest, key=newest.get) if newest else None


def reference_ladder(ladders: dict[str, dict]) -> dict[str, tuple[str, dict, dict]]:
    """rung -> (file name, record, rung) on the 2-core AVX2 reference: from the reference
    machine with the fullest ladder, unless its record measured another recipe than today's
    and another reference machine's record measured today's."""
    references = sorted((m for m in ladders if is_reference(m)), key=lambda m: -len(ladders[m]))
    rungs = sorted({r for m in references for r in ladders[m]}, key=lambda r: float(r[:-1]))
    chosen = {}
    for rung in rungs:
        held = [ladders[m][rung] for m in references if rung in ladders[m]]
        chosen[rung] = next((h for h in held if same_as_today(h[2])), held[0])
    return chosen


HEADLINE_HEAD = " | model and recipe | test accuracy | training time | command | machine | date"


def headline_table(results_dir: Path = RESULTS, weights_dir: Path = WEIGHTS) -> str:
    """The tutorial's claims beside fmnist's `seed` recipe, then the ladder's rungs on the
    2-core AVX2 reference CPU and on the GPU with the newest current records."""
    tutorial = ["the tutorial (Keras), in its own words", TUTORIAL["model"]]
    tutorial += [f"{TUTORIAL[k]} (the tutorial's claim)" for k in ("accuracy", "time")]
    tutorial += ["-", "not stated (the tutorial's claim)", "not stated"]
    rows = [tutorial, seed_row(weights_dir)]
    check_records(results_dir)  # a rung claimed twice has no one figure to show
    ladders = current_rungs(results_dir)
    shown_rungs = [
        (reference_ladder(ladders), "2-core AVX2 CPU"),
        (ladders.get(newest_gpu(ladders), {}), "one GPU"),
    ]
    for held, where in shown_rungs:
        for name, record, rung in held.values():
            cells = [f"{rung['rung']} rung, {where}", f"{recipe_cell(rung)}: `{rung['model']}`"]
            cells += [accuracy_cell(rung), time_cell(rung), f"`{ladder_command(record, rung)}`"]
            where_ = provenance(results_dir / name, record, record["machine"], record["device"])
            rows.append(cells + where_[:2])
    return markdown(HEADLINE_HEAD, rows)


def recipes_markdown() -> str:
    """Every recipe with its model, epochs and purpose, from the code (as `fmnist recipes`)."""
    defaults = dataclasses.asdict(TrainConfig())
    rows = []
    for name, settings in RECIPES.items():
        recipe = {**defaults, **settings}
        epochs = epochs_phrase(recipe["epochs"], recipe)
        rows.append([f"`{name}`", f"`{recipe['model']}`", epochs, PURPOSES[name]])
    return page("# Recipes", markdown("recipe | model | epochs | purpose", rows))


def write_all(
    out_dir: Path,
    results_dir: Path = RESULTS,
    weights_dir: Path = WEIGHTS,
    frontier_dir: Path = FRONTIER,
    cards_dir: Path = CARDS,
) -> list[Path]:
    """Write the docs' Markdown tables and the ladder chart into `out_dir`; their paths.
    Refuses (RecordsError) records that contradict each other on what counts."""
    check_records(results_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages = {
        "headline.md": headline_table(results_dir, weights_dir) + "\n",
        "recipes.md": recipes_markdown(),
        "ladder.md": ladder_markdown(results_dir),
        "models.md": models_markdown(results_dir, weights_dir, cards_dir),
        "audit-effect.md": audit_markdown(results_dir),
        "robustness.md": robustness_markdown(results_dir),
        "speed.md": speed_markdown(results_dir),
        "all-runs.md": all_runs_markdown(results_dir, weights_dir, frontier_dir, cards_dir),
    }
    for name, text in pages.items():  # each file whole or not at all
        atomic_write(out_dir / name, lambda tmp, text=text: Path(tmp).write_text(text))
    atomic_write(out_dir / "ladder.png", lambda tmp: draw_ladder_chart(Path(tmp), results_dir))
    return [out_dir / name for name in pages] + [out_dir / "ladder.png"]


README = ROOT / "README.md"
README_CHART = ROOT / "docs" / "images" / "ladder.png"
HEADLINE = re.compile(r"(<!-- headline:start -->\n).*?(<!-- headline:end -->)", re.S)


def readme_with_headline(text: str, table: str) -> str:
    """The README's text with the headline table between its markers."""
    if not HEADLINE.search(text):
        raise RecordsError("README.md has no <!-- headline:start --> ... :end --> markers")
    return HEADLINE.sub(lambda m: m.group(1) + table.rstrip("\n") + "\n" + m.group(2), text)


def write_readme(readme: Path = README, chart: Path = README_CHART) -> list[Path]:
    """The README's headline table and its ladder chart, from the records."""
    readme.write_text(readme_with_headline(readme.read_text(), headline_table()))
    return [readme, draw_ladder_chart(chart)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="where the pages and chart go")
    parser.add_argument("--headline", action="store_true", help="print the headline table")
    parser.add_argument(
        "--readme", action="store_true", help="write the README's headline table and chart"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="the records' folder")
    args = parser.parse_args(argv)
    if args.out_dir is None and not (args.headline or args.readme):
        parser.error("give OUT_DIR, --headline or --readme")
    try:
        if args.headline:
            print(headline_table(args.results))
        for path in write_all(args.out_dir, args.results) if args.out_dir else []:
            print(path)
        for path in write_readme() if args.readme else []:
            print(path)
    except FmnistError as e:
        print(f"docs/generate.py: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
