"""Analysis commands: evaluate, results, bench (and its ladder), baselines, report."""

from __future__ import annotations

import numpy as np

from fmnist.cli.common import (
    MAX_RUNS,
    at_most,
    chosen_model,
    code_flags,
    data_flags,
    model_code,
    model_flag,
    positive_seconds,
    results_file,
    results_flag,
    save_results,
    stopped_by_signals,
)
from fmnist.errors import FmnistError
from fmnist.files import json_text


def cmd_evaluate(args) -> int:
    from fmnist import data
    from fmnist.checkpoint import load_model
    from fmnist.evaluate import evaluate_logits, format_report, infer

    model_name = chosen_model(args, args.model_positional)
    flagged = None
    if args.audit:
        from fmnist.analysis.audit import read_flagged_test

        flagged = read_flagged_test(args.audit)
    model = load_model(model_name, **model_code(args))
    ds = data.load(args.data_dir, download=args.download)
    logits = infer(model, ds.test_images, tta=args.tta)
    result = evaluate_logits(logits, ds.test_labels)
    result["tta"] = args.tta
    result["model"] = str(model_name)
    if flagged is not None:
        if flagged and max(flagged) >= len(ds.test_labels):
            raise FmnistError(f"--audit {args.audit}: names test images that do not exist")
        keep = np.setdiff1d(np.arange(len(ds.test_labels)), flagged)
        right = logits.argmax(1).numpy()[keep] == ds.test_labels[keep]
        # null when the audit flags every test image: no accuracy is left to measure
        accuracy = float(right.mean()) if len(keep) else None
        result["unflagged"] = {"images": len(keep), "test_accuracy": accuracy}
    if args.json:
        print(json_text(result))
    else:
        print(format_report(result))
        if flagged is not None:
            u = result["unflagged"]
            unflagged = "none" if u["test_accuracy"] is None else f"{u['test_accuracy']:.2%}"
            print(
                f"\non the {u['images']:,} test images the audit did not flag: "
                f"{unflagged} (all of them: {result['test_accuracy']:.2%})"
            )
    return 0


def add_evaluate(sub) -> None:
    sp = sub.add_parser("evaluate", help="test-set accuracy, per-class report, confusion matrix")
    model_flag(sp, positional=True)
    sp.add_argument("--tta", action="store_true", help="average with the mirrored image")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    sp.add_argument(
        "--audit",
        metavar="AUDIT_JSON",
        help="also give the accuracy on the test images this audit did not flag",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_evaluate)


def cmd_results(args) -> int:
    from fmnist.analysis import results

    print(results.table([results.read(p) for p in args.records]))
    return 0


def add_results(sub) -> None:
    sp = sub.add_parser(
        "results", help="the results table (Markdown) from sweeps, run directories, models"
    )
    sp.add_argument(
        "records",
        nargs="+",
        metavar="RECORD",
        help="a sweep's summary.json, a run directory, or a model description (.json)",
    )
    sp.set_defaults(func=cmd_results)


def cmd_bench(args) -> int:
    from datetime import date

    from fmnist import data
    from fmnist.analysis import bench
    from fmnist.training.config import COUNTS, resolve_device

    if args.repeats < 1:
        raise FmnistError(f"--repeats must be at least 1, got {args.repeats}")
    at_most("--repeats", args.repeats, MAX_RUNS)
    if args.epochs < 1:
        raise FmnistError(f"--epochs must be at least 1, got {args.epochs}")
    at_most("--epochs", args.epochs, COUNTS["epochs"])
    if args.merge:
        return merge_ladders(args)
    device = resolve_device(args.device)
    # a kill (SIGTERM) unwinds as Ctrl-C does, so the runs' temporary folder goes with it
    with stopped_by_signals():
        if args.ladder:
            return bench_ladder(args, device)
        out = results_file(args.out, f"benchmarks/results/{date.today()}-{device.type}.json")
        ds = data.load(args.data_dir, download=args.download)
        result = bench.run(ds, args.device, repeats=args.repeats, epochs=args.epochs, log=print)
        save_results(out, result, bench.format_table(result))
    return 0


def merge_ladders(args) -> int:
    from fmnist.analysis import ladder
    from fmnist.analysis.ladder_merge import MergeError, merge
    from fmnist.files import read_json

    given = [
        flag
        for flag, value in (
            ("--ladder", args.ladder),
            ("--seeds", args.seeds),
            ("--first-seed", args.first_seed),
            ("--rungs", args.rungs),
        )
        if value
    ]
    if given:
        raise MergeError(f"--merge combines records and runs nothing: leave out {given[0]}")
    if not args.out:
        raise MergeError("--merge needs --json FILE or --out FILE, the merged record's file")
    out = results_file(args.out, args.out)  # before anything is read; nothing made
    records = [(path, read_json(path, "ladder record", error=MergeError)) for path in args.merge]
    merged = merge(records)
    save_results(out, merged, ladder.format_table(merged))
    return 0


def bench_ladder(args, device) -> int:
    import time
    from datetime import date

    from fmnist import data
    from fmnist.analysis import ladder, probe

    rungs, compare, recipes = ladder_plan(args)
    out = results_file(args.out, f"benchmarks/results/{date.today()}-ladder-{device.type}.json")
    seeds = args.seeds
    if args.rungs is None and args.seeds is None:
        seeds = ladder.quick_plan(device, recipes=recipes)
        rungs = list(seeds)
        print(
            f"fmnist bench --ladder alone runs what fits in about "
            f"{probe.duration(ladder.QUICK_BUDGET_S)} here: "
            + ", ".join(f"{rung} ({n} seeds)" for rung, n in seeds.items())
            + ". Every rung: --rungs 90 92 93 94 95 --seeds 5 (95%: 3 with --rungs 95)."
        )
    t0 = time.perf_counter()
    ds = data.load(args.data_dir, download=args.download)
    load_s = time.perf_counter() - t0
    record = ladder.run(
        ds,
        rungs,
        seeds,
        device_name=device.type,
        compare=compare,
        compare_budget_s=args.compare_budget,
        load_s=load_s,
        log=print,
        recipes=recipes,
        first_seed=args.first_seed,
    )
    save_results(out, record, ladder.format_table(record))
    return 0


def ladder_plan(args) -> tuple[list[str], tuple[str, ...], dict[str, str]]:
    """(rungs, recipes compared beside them, rung -> recipe run instead of its own), every
    flag checked before any data is read."""
    from fmnist.analysis import ladder
    from fmnist.training.config import MAX_SEED, RECIPES, load_recipe

    rungs = [as_rung(r) for r in (args.rungs or ladder.RUNGS)]
    unknown = [r for r in rungs if r not in ladder.RUNGS]
    if unknown:
        raise FmnistError(f"unknown rung {', '.join(unknown)}; rungs: {', '.join(ladder.RUNGS)}")
    # today's recipes beside the rungs when rungs are asked for; the quick default: none
    quick = args.rungs is None and args.seeds is None
    compare = tuple(args.compare if args.compare is not None else () if quick else ladder.COMPARE)
    bad = [c for c in compare if c not in RECIPES]
    if bad:
        raise FmnistError(
            f"--compare: unknown recipe {', '.join(bad)}; recipes: {', '.join(RECIPES)}"
        )
    if args.seeds is not None and args.seeds < 1:
        raise FmnistError(f"--seeds must be at least 1, got {args.seeds}")
    at_most("--seeds", args.seeds, MAX_RUNS)
    if args.first_seed < 0:
        raise FmnistError(f"--first-seed must be 0 or more, got {args.first_seed}")
    at_most("--first-seed plus the seeds", args.first_seed + (args.seeds or 5) - 1, MAX_SEED)
    positive_seconds("--compare-budget", args.compare_budget)
    recipes = {}
    for item in args.recipe or []:
        rung, sep, recipe = item.partition("=")
        rung = as_rung(rung)
        if not sep or not recipe or rung not in ladder.RUNGS:
            raise FmnistError(
                f"--recipe {item!r}: expected RUNG=RECIPE with a rung of "
                f"{', '.join(ladder.RUNGS)} and a recipe name or recipe .json file"
            )
        load_recipe(recipe)  # a one-line refusal before any data is read
        recipes[rung] = recipe
    return rungs, compare, recipes


def as_rung(text: str) -> str:
    """A rung as the ladder names it: 92 or 92% -> 92%."""
    return text if text.endswith("%") else text + "%"


def add_bench(sub) -> None:
    sp = sub.add_parser("bench", help="speed side by side with a plain PyTorch loop")
    sp.add_argument("--repeats", type=int, default=3, help="timed repeats")
    sp.add_argument("--epochs", type=int, default=15, help="epochs for time-to-accuracy")
    sp.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], default="auto", help="where to run"
    )
    results_flag(sp, "benchmarks/results/DATE-DEVICE.json, or DATE-ladder-DEVICE.json")
    ladder_flags(sp.add_argument_group("the accuracy/time ladder"))
    data_flags(sp)
    sp.set_defaults(func=cmd_bench)


def ladder_flags(group) -> None:
    from fmnist.analysis.ladder import COMPARE, DEFAULT_SEEDS, RUNGS
    from fmnist.training.recipes import RECIPES

    group.add_argument(
        "--ladder",
        action="store_true",
        help="run each accuracy rung's recipe for several seeds on all 60,000 training images "
        "and time it; beside it, when today's recipes first reach the rung. Alone: the rungs "
        "that fit in a few minutes here; an estimate is printed before anything trains",
    )
    rung_names = ", ".join(RUNGS).replace("%", "%%")
    group.add_argument(
        "--rungs",
        nargs="+",
        metavar="RUNG",
        help=f"{rung_names}; without it, those that fit in a few minutes here (all with --seeds)",
    )
    fewer = ", ".join(f"{n} for {rung}" for rung, n in DEFAULT_SEEDS.items()).replace("%", "%%")
    group.add_argument(
        "--seeds", type=int, help=f"seeds per rung (default: the rung's: {fewer}, 5 for the others)"
    )
    group.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="N",
        help="number the seeds from N, to run a rung's seeds apart and --merge them",
    )
    group.add_argument(
        "--merge",
        nargs="+",
        metavar="RECORD",
        help="combine ladder records of one machine and recipe whose seeds differ into the "
        "--out file (runs nothing)",
    )
    group.add_argument(
        "--compare",
        nargs="*",
        metavar="RECIPE",
        help=f"recipes measured beside the rungs, of {', '.join(RECIPES)}; without it: "
        f"{' '.join(COMPARE)} where --rungs or --seeds is given, else none; --compare alone: none",
    )
    group.add_argument(
        "--recipe",
        action="append",
        metavar="RUNG=RECIPE",
        help="run a rung with another recipe (a name or a recipe .json file); repeatable",
    )
    group.add_argument(
        "--compare-budget",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="stop measuring a compared recipe after this much training",
    )


def cmd_baselines(args) -> int:
    from datetime import date

    from fmnist import data
    from fmnist.analysis import baselines

    out = results_file(args.out, f"benchmarks/results/{date.today()}-baselines.json")
    unknown = [n for n in args.only or () if n not in baselines.BASELINES]
    if unknown:
        known = ", ".join(baselines.BASELINES)
        raise FmnistError(f"--only: unknown baseline {', '.join(unknown)}; known: {known}")
    ds = data.load(args.data_dir, download=args.download)
    results = baselines.run(
        ds.train_images, ds.train_labels, ds.test_images, ds.test_labels, args.only or None
    )
    record = {"date": str(date.today()), "results": results}
    save_results(out, record, baselines.format_table(results))
    return 0


def add_baselines(sub) -> None:
    from fmnist.analysis.baselines import BASELINES

    sp = sub.add_parser("baselines", help="classic scikit-learn classifiers for context")
    sp.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"{', '.join(BASELINES)} (default: all)",
    )
    results_flag(sp, "benchmarks/results/DATE-baselines.json")
    data_flags(sp)
    sp.set_defaults(func=cmd_baselines)


def cmd_report(args) -> int:
    from fmnist.analysis.report import write_report

    try:
        page = write_report(
            args.run_dir,
            data_dir=args.data_dir,
            download=args.download,
            tsne_points=args.tsne_points,
            with_robustness=args.robustness,
            **model_code(args),
        )
    except OSError as e:  # a full disk: the figures go all or none, each file whole
        raise FmnistError(
            f"{e.filename or args.run_dir}: cannot write the report ({e.strerror or e}); "
            f"the run's model, records and any earlier report are as they were"
        ) from None
    print(f"figures: {page.parent / 'plots'}")
    print(f"report: {page}")
    return 0


def add_report(sub) -> None:
    sp = sub.add_parser("report", help="write RUN_DIR/report.html and RUN_DIR/plots/*.png")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="a run directory `fmnist train` wrote")
    sp.add_argument(
        "--tsne-points",
        type=int,
        default=2000,
        help="test images in the t-SNE feature map",
    )
    sp.add_argument(
        "--robustness",
        action="store_true",
        help="add test accuracy under 14 corruptions at 5 severities (fmnist robustness)",
    )
    code_flags(sp)
    data_flags(sp)
    sp.set_defaults(func=cmd_report)


COMMANDS = [add_evaluate, add_results, add_bench, add_baselines, add_report]
