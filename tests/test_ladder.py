"""fmnist bench --ladder: each rung's recipe over seeds, timed, beside today's recipes."""

import json
import statistics

import pytest
import torch

from fmnist import cli
from fmnist.analysis import ladder, ladder_merge, probe
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
        small(dataset),
        ["94%"],
        seeds=1,
        device_name="cpu",
        compare=(),
        log=lambda *a: None,
        recipes={"94%": str(recipe)},
        train_limit=1500,
    )
    (rung,) = record["rungs"]
    assert rung["recipe"] == "mine" and rung["model"] == "quick_w2" and rung["tta"]
    assert rung["recipe_settings"] == settings and rung["epochs"] == 1


def test_the_ladder_runs_each_rung_for_its_seeds_and_reports(dataset):
    ds = small(dataset)
    said = []
    record = ladder.run(
        ds,
        ["90%"],
        seeds=2,
        device_name="cpu",
        compare=("fast",),
        compare_budget_s=1e9,
        log=said.append,
        train_limit=2000,
        epochs=2,
        batch_size=64,
    )
    (rung,) = record["rungs"]
    values = rung["test_accuracy"]["values"]
    assert len(values) == 2 and all(0.6 < v <= 1 for v in values)  # short runs that learned
    assert rung["test_accuracy"]["mean"] == pytest.approx(statistics.mean(values))
    assert rung["test_accuracy"]["min"] == min(values)
    assert rung["reached"] == sum(v >= 0.90 for v in values)
    assert rung["rung_met"] == (statistics.mean(values) >= 0.90)
    assert rung["holds"] == ladder.holds("90%", values)
    t = rung["train_s"]
    assert t["min"] <= t["median"] <= t["max"] and rung["images_per_s"] > 0
    assert rung["first_seed_s"] == t["values"][0]
    for when in ("start", "end"):  # the machine's speed, measured in the same run
        probe = record["calibration"][when]
        assert probe["matmul_gflops"] > 0 and probe["seed_images_per_s"] > 0
    # the estimate comes first, then each seed with what is left
    assert said[0].startswith("ladder: about ") and "90% 2 x " in said[0]
    assert any("seed 0 (1 of 2)" in line and "left" in line for line in said)
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


@pytest.fixture(scope="module")
def seeds_apart(dataset):
    """Seeds 0 and 1 of the 90% rung in one run, and each in a run of its own."""
    ds = small(dataset)

    def ladder_run(seeds, first_seed):
        return ladder.run(
            ds,
            ["90%"],
            seeds=seeds,
            device_name="cpu",
            compare=(),
            log=lambda *a: None,
            first_seed=first_seed,
            train_limit=1500,
        )

    return ladder_run(2, 0), ladder_run(1, 0), ladder_run(1, 1)


def test_seeds_run_apart_merge_into_what_one_run_gives(seeds_apart, tmp_path, capsys):
    both, first, second = seeds_apart
    assert second["rungs"][0]["seed_values"] == [1]
    paths = []
    for name, record in (("s1", second), ("s0", first)):  # in any order
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(record))
    out = tmp_path / "merged.json"
    assert cli.main(["bench", "--merge", *map(str, paths), "--json", str(out)]) == 0
    assert "Merged from" in capsys.readouterr().out
    (merged,) = json.loads(out.read_text())["rungs"]
    (direct,) = both["rungs"]
    # the same seeds on the same CPU give the same accuracy, so the figures agree
    assert merged["seed_values"] == direct["seed_values"] == [0, 1]
    assert merged["test_accuracy"]["values"] == direct["test_accuracy"]["values"]
    for key in ("mean", "std", "min"):
        assert merged["test_accuracy"][key] == pytest.approx(direct["test_accuracy"][key])
    assert merged["reached"] == direct["reached"] and merged["seeds"] == 2
    times = [first["rungs"][0]["train_s"]["values"][0], second["rungs"][0]["train_s"]["values"][0]]
    assert merged["train_s"]["values"] == times
    assert merged["train_s"]["median"] == round(statistics.median(times), 2)
    rates = first["rungs"][0]["images_per_s_values"] + second["rungs"][0]["images_per_s_values"]
    assert merged["images_per_s"] == pytest.approx(statistics.median(rates), abs=0.1)
    for key in ladder_merge.SAME_RUNG:
        assert merged[key] == direct[key]


def _other_machine(r):
    mine = r["machine"]["cpu_capability"]
    r["machine"]["cpu_capability"] = "AVX2" if mine == "AVX512" else "AVX512"


def _other_recipe(r):
    r["rungs"][0]["epochs"] += 1


def _old_record(r):
    del r["rungs"][0]["images_per_s_values"]


def _bad_seed(r):
    r["rungs"][0]["seed_values"] = ["one"]


def _huge_time(r):
    r["rungs"][0]["train_s"]["values"] = [10**400]


def _accuracy_over_one(r):
    r["rungs"][0]["test_accuracy"]["values"] = [1.5]


def _bad_rung(r):
    r["rungs"][0]["rung"] = "ninety"


def _bad_compare(r):
    r["compare"] = [
        {
            "recipe": "fast",
            "epochs_run": 1,
            "finished": True,
            "curve": [["a", 1]],
            "first_reach_s": {},
        }
    ]


@pytest.mark.parametrize(
    "change, changed, message",
    [
        (_other_machine, "second", "measured on another machine (cpu_capability"),
        (_other_recipe, "second", "epochs differs from"),
        (_old_record, "second", "field 'images_per_s_values' is missing"),
        (_bad_seed, "second", "seeds must be whole numbers"),
        (_bad_rung, "second", "unknown rung"),
        (_huge_time, "second", "times and images/s must be positive numbers"),
        (_accuracy_over_one, "second", "test accuracies must be from 0 to 1"),
        (_bad_compare, "first", "curve and first_reach_s must hold numbers"),
        (None, "first twice", "seed 0 appears more than once"),
    ],
)
def test_merge_refuses_records_that_do_not_combine(
    seeds_apart, tmp_path, capsys, change, changed, message
):
    _, first, second = json.loads(json.dumps(seeds_apart))
    if changed == "first twice":
        second = first
    elif changed == "first":  # today's recipes beside the rungs come from the first record
        change(first)
    else:
        change(second)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(first))
    b.write_text(json.dumps(second))
    out = tmp_path / "new" / "merged.json"
    assert cli.main(["bench", "--merge", str(a), str(b), "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.parent.exists()  # its folder is made only for a merge that worked


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--merge", "A"], "--merge needs --json"),
        (["--ladder", "--merge", "A", "A", "--json", "M"], "leave out --ladder"),
        (["--merge", "A", "A", "--seeds", "2", "--json", "M"], "leave out --seeds"),
        (["--merge", "A", "--json", "M"], "--merge needs two or more ladder records"),
        (["--merge", "A", "NOPE", "--json", "M"], "NOPE"),
        (["--merge", "A", "TEXT", "--json", "M"], "not a readable ladder record"),
        (["--ladder", "--first-seed", "-1", "--json", "M"], "--first-seed must be 0 or more"),
    ],
)
def test_bad_merge_and_seed_flags_are_refused(seeds_apart, tmp_path, capsys, argv, message):
    (tmp_path / "A").write_text(json.dumps(seeds_apart[1]))
    (tmp_path / "TEXT").write_text("{not json")
    argv = [str(tmp_path / a) if a in ("A", "NOPE", "TEXT", "M") else a for a in argv]
    assert cli.main(["bench", *argv, "--no-download"]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "M").exists()


def test_the_ladder_alone_plans_what_fits_in_its_budget(monkeypatch):
    per_seed = {"rung90": 5.0, "rung92": 25.0, "rung93": 70.0, "rung94": 170.0, "rung95": 2000.0}
    monkeypatch.setattr(
        ladder.probe, "estimate_seconds", lambda recipe, seeds, device: seeds * per_seed[recipe]
    )
    cpu = torch.device("cpu")
    # 90% and 92% with 5 seeds (150 s), 93% with 5 would pass 300 s: 2 seeds (290 s); 94% none
    assert ladder.quick_plan(cpu, 300.0) == {"90%": 5, "92%": 5, "93%": 2}
    assert ladder.quick_plan(cpu, 1.0) == {"90%": 1}  # always something to show
    assert probe.duration(45) == "45 s" and probe.duration(720) == "12 min"
    assert probe.duration(9000) == "2.5 h"


def test_the_estimate_follows_the_recipes_epochs():
    cpu = torch.device("cpu")
    one = ladder.probe.estimate_seconds("rung90", 1, cpu, train_limit=6000)
    rate = 6000 / one  # images/s of the probe
    assert 100 < rate < 1e6
    assert ladder.probe.recipe_images_per_s("rung90", cpu) > 0


@pytest.mark.parametrize(
    "values, held",
    [
        ([0.9406, 0.9412, 0.9401, 0.9397, 0.9414], False),  # 4 of 5 at 94% but mean 94.06%
        ([0.9416, 0.9412, 0.9411, 0.9398, 0.9414], True),  # mean 94.10%, 4 of 5 at 94%
        ([0.9430, 0.9430, 0.9430, 0.9395, 0.9390], False),  # mean 94.15%, 3 of 5
        ([0.9420, 0.9420, 0.9399], False),  # of 3 seeds, every one must reach it
        ([0.9420, 0.9420, 0.9410], True),
        ([0.95] * 8 + [0.93] * 2, True),  # 8 of 10
        ([0.95] * 7 + [0.939] * 3, False),  # 7 of 10, though the mean clears 94.1%
    ],
)
def test_a_rung_holds_by_its_mean_and_its_seeds(values, held):
    assert ladder.holds("94%", values) is held


def test_records_made_before_holds_are_judged_from_their_values():
    rung = {"rung": "94%", "rung_met": True, "test_accuracy": {"values": [0.9406] * 4 + [0.9397]}}
    assert ladder.verdict(rung) == "does not hold"
    assert ladder.verdict({**rung, "test_accuracy": {"values": [0.9415] * 4 + [0.9397]}}) == ""
    assert ladder.verdict({**rung, "rung_met": False}) == "missed"
