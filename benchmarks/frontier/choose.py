"""Choosing a rung's recipe from explore.py's records, by the ladder's rule: of the candidates
whose validation accuracy (with the mirror image where the candidate includes it) clears the
rung by 0.3 points, the one that trains fastest on all 60,000 images. Its time is estimated
from the training images/s of the same model and batch size in a short run alone on the
machine (the `_e2` candidate, where there is one: runs that shared the machine are not timed
fairly), else from its own run. Writes one recipe file per rung (`fmnist bench --ladder
--recipe RUNG=FILE` runs it); where no candidate clears a rung, the one with the best
validation accuracy, marked so.

    python benchmarks/frontier/choose.py RECORDS.jsonl OUT_DIR --prefix gpu_ --rungs 94 95
"""

import argparse
import json
from pathlib import Path

import explore  # this folder: registers the model sizes its candidates name

from fmnist.models import create_model, list_models, model_args
from fmnist.training.config import RECIPE_FORMAT, RECIPES, make_config
from fmnist.training.hard import images_through

MARGIN = 0.003
ALL_IMAGES = 60_000


def config(row: dict):
    """The candidate's whole configuration: its recipe's preset with its settings on top."""
    settings = dict(row["settings"])
    return make_config(settings.pop("recipe"), **settings)


def figure(row: dict) -> float:
    """Validation accuracy as the candidate's figure has it: with the mirror image if its
    recipe includes it."""
    return row["val_accuracy_tta"] if config(row).tta else row["val_accuracy"]


def key(row: dict) -> tuple:
    cfg = config(row)
    return cfg.model, cfg.batch_size


def choose(rows: list[dict], rung: float) -> dict:
    probes = {key(r): r["images_per_s"] for r in rows if config(r).epochs == 2}
    scored = []
    for r in rows:
        rate = probes.get(key(r), r["images_per_s"])
        est = images_through(config(r), ALL_IMAGES, config(r).epochs) / rate
        scored.append((est, r))
    clear = [(est, r) for est, r in scored if figure(r) >= rung + MARGIN]
    if clear:
        est, row = min(clear, key=lambda t: t[0])
        return {"row": row, "estimated_s": round(est, 1), "cleared": True}
    est, row = max(scored, key=lambda t: figure(t[1]))
    return {"row": row, "estimated_s": round(est, 1), "cleared": False}


def registered(model: str) -> str:
    """The package's own name for one of explore.py's model sizes (the same model class
    and arguments), so that the recipe runs without explore.py; else the name unchanged."""
    if model not in explore.SIZES:
        return model
    base = explore.SIZES[model][0]
    want = create_model(model)
    for name in list_models():
        if name in explore.SIZES:
            continue
        other = create_model(name)
        if isinstance(other, type(create_model(base))) and model_args(other) == model_args(want):
            return name
    return model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", nargs="+")
    p.add_argument("out_dir")
    p.add_argument("--prefix", default="")
    p.add_argument("--rungs", nargs="+", type=int, default=[94, 95])
    p.add_argument("--name", default="gpu", help="recipe files NAME94.json, ... (default: gpu)")
    a = p.parse_args()
    rows = []
    for path in a.records:
        for line in Path(path).read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if row["name"].startswith(a.prefix) and "@" not in row["name"]:
                    rows.append(row)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for rung in a.rungs:
        got = choose(rows, rung / 100)
        row = got["row"]
        settings = {**RECIPES[row["settings"]["recipe"]], **row["settings"]}
        settings.pop("train_limit", None)
        settings.pop("seed", None)
        settings.pop("recipe", None)
        settings["model"] = registered(settings["model"])
        recipe = {
            "format": RECIPE_FORMAT,
            "settings": settings,
            "chosen_from": {
                "candidate": row["name"],
                "val_figure": figure(row),
                "cleared_rung_plus_margin": got["cleared"],
                "estimated_train_s_all_images": got["estimated_s"],
                "candidates": len(rows),
            },
        }
        path = out / f"{a.name}{rung}.json"
        path.write_text(json.dumps(recipe, indent=1) + "\n")
        flag = "" if got["cleared"] else " (none cleared the rung: the best on validation)"
        print(
            f"{rung}%: {row['name']} val {figure(row):.2%}, about {got['estimated_s']} s "
            f"on all images{flag} -> {path}"
        )


if __name__ == "__main__":
    main()
