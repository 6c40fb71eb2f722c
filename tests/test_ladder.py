"""fmnist bench --ladder: each rung's recipe over seeds, timed, beside today's recipes."""

import json
import statistics

import pytest

from fmnist import cli
from fmnist.analysis import ladder
from fmnist.training.config import RECIPES, make_config

from .test_bench import small


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_every_rung_has_a_fixed_schedule_recipe(device):
    rungs = ladder.rung_recipes(device)
    assert list(rungs) == list(ladder.RUNGS)
    for rung, recipe in rungs.items():
        cfg = make_config(recipe, all_data=True)
        # a fixed schedule: no early stopping, the last weights, a length chosen beforehand
        assert cfg.patience == 0 and cfg.select == "last", rung
        assert cfg.precision == "auto" and recipe in RECIPES, rung
    assert ladder.rung_recipes("cuda")["94%"] != ladder.RUNGS["94%"]  # the GPU's own


def test_a_rung_runs_another_recipe_from_a_recipe_file(dataset, tmp_path):
    recipe = tmp_path / "mine.json"
    settings = {**RECIPES["fast"], "model": "quick_w2", "epochs": 1, "tta": True}
    recipe.write_text(json.dumps({"format": "fmnist-recipe/1", "settings": settings}))
    record = ladder.run(
        small(dataset), ["94%"], seeds=1, device_name="cpu", compare=(),
        log=lambda *a: None, recipes={"94%": str(recipe)}, train_limit=1500,
    )  # fmt: skip
    (rung,) = record["rungs"]
    assert rung["recipe"] == "mine" and rung["model"] == "quick_w2" and rung["tta"]
    assert rung["recipe_settings"] == settings and rung["epochs"] == 1


def test_the_ladder_runs_each_rung_for_its_seeds_and_reports(dataset):
    ds = small(dataset)
    record = ladder.run(
        ds, ["90%"], seeds=2, device_name="cpu", compare=("fast",), compare_budget_s=1e9,
        log=lambda *a: None, train_limit=2000, epochs=2, batch_size=64,
    )  # fmt: skip
    (rung,) = record["rungs"]
    values = rung["test_accuracy"]["values"]
    assert len(values) == 2 and all(0.6 < v <= 1 for v in values)  # short runs that learned
    assert rung["test_accuracy"]["mean"] == pytest.approx(statistics.mean(values))
    assert rung["test_accuracy"]["min"] == min(values)
    assert rung["reached"] == sum(v >= 0.90 for v in values)
    assert rung["rung_met"] == (statistics.mean(values) >= 0.90)
    t = rung["train_s"]
    assert t["min"] <= t["median"] <= t["max"] and rung["images_per_s"] > 0
    assert rung["epochs"] == 2 and rung["precision"] in ("fp32", "bf16")
    env = record["machine"]
    assert env["cpu_capability"] and env["torch_threads"] >= 1 and env["torch"]

    (fast,) = record["compare"]
    assert fast["finished"] and fast["epochs_run"] == 2 == len(fast["curve"])
    for name, hit in fast["first_reach_s"].items():
        reached = [s for s, acc in fast["curve"] if acc >= ladder.rung_value(name)]
        assert hit == (reached[0] if reached else None)

    table = ladder.format_table(record)
    assert "| 90%" in table and "`rung90`" in table and env["cpu_capability"] in table
    json.dumps(record)  # plain JSON


def test_a_compared_recipe_stops_at_its_budget(dataset, tmp_path):
    ds = small(dataset)
    out = ladder.first_reach(
        ds, "fast", ladder.resolve_device("cpu"), tmp_path, budget_s=1e-9, train_limit=900
    )
    assert not out["finished"] and out["epochs_run"] == 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--rungs", "97%"], "unknown rung 97%"),
        (["--seeds", "0"], "--seeds must be at least 1"),
        (["--compare", "nope"], "unknown recipe nope"),
        (["--compare-budget", "0"], "--compare-budget must be positive"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--recipe", "94"], "--recipe '94': expected RUNG=RECIPE"),
        (["--recipe", "97=fast"], "--recipe '97=fast': expected RUNG=RECIPE"),
        (["--recipe", "94=nope"], "unknown recipe 'nope'"),
    ],
)
def test_bad_ladder_flags_are_refused_before_any_work(flags, message, tmp_path, capsys):
    out = tmp_path / "ladder.json"
    assert cli.main(["bench", "--ladder", *flags, "--json", str(out), "--no-download"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists() and not list(tmp_path.iterdir())
