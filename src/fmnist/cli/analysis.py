"""Analysis commands: evaluate, results, bench, baselines, report."""

from __future__ import annotations

import json

import numpy as np

from fmnist.cli.common import MODEL_HELP, data_flags, results_file, save_results
from fmnist.errors import FmnistError


def cmd_evaluate(args) -> int:
    from fmnist import data
    from fmnist.checkpoint import load_model
    from fmnist.evaluate import evaluate_logits, format_report, infer

    flagged = None
    if args.audit:
        from fmnist.analysis.audit import read_flagged_test

        flagged = read_flagged_test(args.audit)
    model = load_model(args.model)
    ds = data.load(args.data_dir, download=args.download)
    logits = infer(model, ds.test_images, tta=args.tta)
    result = evaluate_logits(logits, ds.test_labels)
    result["tta"] = args.tta
    result["model"] = str(args.model)
    if flagged is not None:
        if flagged and max(flagged) >= len(ds.test_labels):
            raise FmnistError(f"--audit {args.audit}: names test images that do not exist")
        keep = np.setdiff1d(np.arange(len(ds.test_labels)), flagged)
        right = logits.argmax(1).numpy()[keep] == ds.test_labels[keep]
        result["unflagged"] = {"images": len(keep), "test_accuracy": float(right.mean())}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
        if flagged is not None:
            u = result["unflagged"]
            print(
                f"\non the {u['images']:,} test images the audit did not flag: "
                f"{u['test_accuracy']:.2%} (all of them: {result['test_accuracy']:.2%})"
            )
    return 0


def add_evaluate(sub) -> None:
    sp = sub.add_parser("evaluate", help="test-set accuracy, per-class report, confusion matrix")
    sp.add_argument("model", metavar="MODEL", help=MODEL_HELP)
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
    from fmnist.training.config import resolve_device

    if args.repeats < 1:
        raise FmnistError(f"--repeats must be at least 1, got {args.repeats}")
    if args.epochs < 1:
        raise FmnistError(f"--epochs must be at least 1, got {args.epochs}")
    if args.merge:
        return merge_ladders(args)
    device = resolve_device(args.device)
    if args.ladder:
        return bench_ladder(args, device)
    out = results_file(args.json, f"benchmarks/results/{date.today()}-{device.type}.json")
    ds = data.load(args.data_dir, download=args.download)
    result = bench.run(ds, args.device, repeats=args.repeats, epochs=args.epochs, log=print)
    save_results(out, result, bench.format_table(result))
    return 0


def merge_ladders(args) -> int:
    from fmnist.analysis import ladder
    from fmnist.files import read_json

    runs = [flag for flag, given in (("--ladder", args.ladder), ("--seeds", args.seeds),
            ("--first-seed", args.first_seed), ("--rungs", args.rungs)) if given]  # fmt: skip
    if runs:
        raise ladder.MergeError(f"--merge combines records and runs nothing: leave out {runs[0]}")
    if not args.json:
        raise ladder.MergeError("--merge needs --json, the merged record's file")
    records = [(path, read_json(path, "ladder record", error=ladder.MergeError))
               for path in args.merge]  # fmt: skip
    merged = ladder.merge(records)
    table = ladder.format_table(merged)
    save_results(results_file(args.json, args.json), merged, table)  # nothing made before
    return 0


def bench_ladder(args, device) -> int:
    import time
    from datetime import date

    from fmnist import data
    from fmnist.analysis import ladder
    from fmnist.training.config import RECIPES, load_recipe

    rungs = [r if r.endswith("%") else r + "%" for r in (args.rungs or ladder.RUNGS)]
    unknown = [r for r in rungs if r not in ladder.RUNGS]
    if unknown:
        raise FmnistError(f"unknown rung {', '.join(unknown)}; rungs: {', '.join(ladder.RUNGS)}")
    compare = tuple(args.compare if args.compare is not None else ladder.COMPARE)
    bad = [c for c in compare if c not in RECIPES]
    if bad:
        raise FmnistError(
            f"--compare: unknown recipe {', '.join(bad)}; recipes: {', '.join(RECIPES)}"
        )
    if args.seeds is not None and args.seeds < 1:
        raise FmnistError(f"--seeds must be at least 1, got {args.seeds}")
    if args.first_seed < 0:
        raise FmnistError(f"--first-seed must be 0 or more, got {args.first_seed}")
    if args.compare_budget <= 0:
        raise FmnistError(f"--compare-budget must be positive, got {args.compare_budget}")
    recipes = {}
    for item in args.recipe or []:
        rung, sep, recipe = item.partition("=")
        rung = rung if rung.endswith("%") else rung + "%"
        if not sep or not recipe or rung not in ladder.RUNGS:
            raise FmnistError(
                f"--recipe {item!r}: expected RUNG=RECIPE with a rung of "
                f"{', '.join(ladder.RUNGS)} and a recipe name or recipe .json file"
            )
        load_recipe(recipe)  # a one-line refusal before any data is read
        recipes[rung] = recipe
    out = results_file(args.json, f"benchmarks/results/{date.today()}-ladder-{device.type}.json")
    t0 = time.perf_counter()
    ds = data.load(args.data_dir, download=args.download)
    load_s = time.perf_counter() - t0
    record = ladder.run(
        ds, rungs, args.seeds, device.type, compare, args.compare_budget, load_s, log=print,
        recipes=recipes, first_seed=args.first_seed,
    )  # fmt: skip
    save_results(out, record, ladder.format_table(record))
    return 0


def add_bench(sub) -> None:
    sp = sub.add_parser("bench", help="speed side by side with a plain PyTorch loop")
    sp.add_argument("--repeats", type=int, default=3, help="timed repeats (default: 3)")
    sp.add_argument(
        "--epochs", type=int, default=15, help="epochs for time-to-accuracy (default: 15)"
    )
    sp.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], default="auto", help="(default: auto)"
    )
    sp.add_argument(
        "--json",
        help="where to write the results (default: benchmarks/results/DATE-DEVICE.json, "
        "or DATE-ladder-DEVICE.json)",
    )
    ladder = sp.add_argument_group("the accuracy/time ladder")
    ladder.add_argument(
        "--ladder",
        action="store_true",
        help="run each accuracy rung's recipe for several seeds on all 60,000 training images "
        "and time it; beside it, when today's recipes first reach the rung",
    )
    ladder.add_argument(
        "--rungs", nargs="+", metavar="RUNG", help="90%%, 92%%, 93%%, 94%%, 95%% (default: all)"
    )
    ladder.add_argument(
        "--seeds", type=int, help="seeds per rung (default: 5; 3 for the 95%% rung)"
    )
    ladder.add_argument(
        "--first-seed",
        type=int,
        default=0,
        metavar="N",
        help="number the seeds from N (default: 0), to run a rung's seeds apart and --merge",
    )
    ladder.add_argument(
        "--merge",
        nargs="+",
        metavar="RECORD",
        help="combine ladder records of one machine and recipe whose seeds differ into the "
        "--json file (runs nothing)",
    )
    ladder.add_argument(
        "--compare",
        nargs="*",
        metavar="RECIPE",
        help="today's recipes measured beside the rungs (default: fast tuned best; none: "
        "--compare with no names)",
    )
    ladder.add_argument(
        "--recipe",
        action="append",
        metavar="RUNG=RECIPE",
        help="run a rung with another recipe (a name or a recipe .json file); repeatable",
    )
    ladder.add_argument(
        "--compare-budget",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="stop measuring a compared recipe after this much training (default: 600)",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_bench)


def cmd_baselines(args) -> int:
    from datetime import date

    from fmnist import data
    from fmnist.analysis import baselines

    out = results_file(args.json, f"benchmarks/results/{date.today()}-baselines.json")
    ds = data.load(args.data_dir, download=args.download)
    results = baselines.run(
        ds.train_images, ds.train_labels, ds.test_images, ds.test_labels, args.only or None
    )
    record = {"date": str(date.today()), "results": results}
    save_results(out, record, baselines.format_table(results))
    return 0


def add_baselines(sub) -> None:
    sp = sub.add_parser("baselines", help="classic scikit-learn classifiers for context")
    sp.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="logistic_regression, random_forest, knn, svc_rbf (default: all)",
    )
    sp.add_argument("--json", help="results file (default: benchmarks/results/DATE-baselines.json)")
    data_flags(sp)
    sp.set_defaults(func=cmd_baselines)


def cmd_report(args) -> int:
    from fmnist.analysis.report import write_report

    page = write_report(
        args.run_dir, data_dir=args.data_dir, download=args.download,
        tsne_points=args.tsne_points, with_robustness=args.robustness,
    )  # fmt: skip
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
        help="test images in the t-SNE feature map (default: 2000)",
    )
    sp.add_argument(
        "--robustness",
        action="store_true",
        help="add test accuracy under 14 corruptions at 5 severities (fmnist robustness)",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_report)


def cmd_audit(args) -> int:
    from fmnist import data
    from fmnist.analysis.audit import AuditError, audit, write_audit
    from fmnist.files import output_dir
    from fmnist.training.config import make_config

    out = output_dir(args.out, "--out", AuditError)
    settings = {"model": args.model, "epochs": args.epochs, "seed": args.seed}
    cfg = make_config(args.recipe, **settings, all_data=True, device=args.device)
    if args.folds < 2:
        raise AuditError(f"--folds must be at least 2, got {args.folds}")
    ds = data.load(args.data_dir, download=args.download)
    if args.quick:  # a slice, for a smoke test: 6,000 training and 2,000 test images
        ds = data.FashionMNIST(
            ds.train_images[:6000], ds.train_labels[:6000], ds.test_images[:2000],
            ds.test_labels[:2000], ds.directory, ds.origin, ds.sha256,
        )  # fmt: skip
    record, arrays = audit(ds, cfg, folds=args.folds)
    page = write_audit(record, arrays, ds, out)
    ex = record["exact_duplicates"]["counts"]
    near = record["near_duplicates"]
    li = record["label_issues"]["counts"]
    print(f"exact duplicates: {ex['train_extra_copies']} extra copies within train, "
          f"{ex['test_extra_copies']} within test, {ex['test_images_in_train']} test images "
          f"also in train")  # fmt: skip
    for kind in ("pixel", "feature"):
        c = near[kind]["counts"]
        print(f"near-duplicates ({kind}, <= {near[kind]['threshold']:g}): {c['train_test']} "
              f"test images near a training image, {c['train']} pairs within train, "
              f"{c['test']} within test")  # fmt: skip
    print(f"label suspects: {li['train']:,} training images, {li['test']:,} test images")
    print(f"audit: {page} ({record['seconds']['total']:.0f} s)")
    return 0


def add_audit(sub) -> None:
    sp = sub.add_parser(
        "audit", help="duplicates, train/test near-duplicates and label issues, shown"
    )
    sp.add_argument("--recipe", default="rung90",
                    help="recipe of the cross-validation models (default: rung90)")  # fmt: skip
    sp.add_argument("--model", help="their architecture (default: the recipe's)")
    sp.add_argument("--epochs", type=int, help="(default: the recipe's)")
    sp.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    sp.add_argument("--seed", type=int, default=0, help="folds and weights (default: 0)")
    sp.add_argument("--device", choices=["cpu", "cuda", "auto"], help="(default: auto)")
    sp.add_argument("--out", default="audit", help="output folder (default: audit)")
    sp.add_argument("--quick", action="store_true",
                    help="a 6,000/2,000-image slice, for a smoke test")  # fmt: skip
    data_flags(sp)
    sp.set_defaults(func=cmd_audit)


def cmd_robustness(args) -> int:
    from fmnist import data
    from fmnist.analysis import plots
    from fmnist.analysis.robustness import robustness
    from fmnist.checkpoint import load_model
    from fmnist.corruptions import CorruptionError
    from fmnist.files import output_file

    if args.figure:
        output_file(args.figure, "--figure", CorruptionError)
    if args.limit is not None and args.limit < 1:
        raise CorruptionError(f"--limit must be at least 1, got {args.limit}")
    if args.seed < 0:
        raise CorruptionError(f"--seed must be 0 or more, got {args.seed}")
    model = load_model(args.model)
    ds = data.load(args.data_dir, download=args.download)
    n = args.limit or len(ds.test_labels)
    log = None if args.json else print
    if log:
        log(f"{'corruption':<16}" + "  ".join(f"  s{s} " for s in args.severities))
    result = robustness(model, ds.test_images[:n], ds.test_labels[:n], args.corruptions,
                        args.severities, args.seed, log)  # fmt: skip
    result["model"] = str(args.model)
    if args.figure:
        from pathlib import Path

        from fmnist.checkpoint import atomic_write

        png = plots.to_png(plots.corruption_heatmap(result, str(args.model)))
        atomic_write(args.figure, lambda tmp: Path(tmp).write_bytes(png))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"\nclean {result['clean']:.2%}; mean under corruption {result['mean']:.2%} "
              f"({result['relative']:.1%} of clean)")  # fmt: skip
    return 0


def add_robustness(sub) -> None:
    from fmnist.analysis.robustness import CORRUPTIONS

    sp = sub.add_parser("robustness", help="test accuracy under 14 corruptions, 5 severities")
    sp.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sp.add_argument("--severities", type=int, nargs="+", default=[1, 2, 3, 4, 5],
                    metavar="S", help="severities 1 to 5 (default: all)")  # fmt: skip
    sp.add_argument("--corruptions", nargs="+", metavar="NAME",
                    help=f"(default: all: {', '.join(CORRUPTIONS)})")  # fmt: skip
    sp.add_argument("--seed", type=int, default=0, help="of the random corruptions (default: 0)")
    sp.add_argument("--limit", type=int, help="the first N test images only (default: all)")
    sp.add_argument("--figure", metavar="PNG", help="also draw the heat map here")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    data_flags(sp)
    sp.set_defaults(func=cmd_robustness)


def cmd_explain(args) -> int:
    from pathlib import Path

    from fmnist.analysis import plots
    from fmnist.analysis.explain import METHODS, ExplainError, attribute, captum_or_fail, summary
    from fmnist.checkpoint import atomic_write
    from fmnist.deploy.predict import Predictor, find_images, read_image
    from fmnist.files import output_dir

    methods = METHODS if args.method == "all" else (args.method,)
    captum_or_fail()  # missing: one line before any work
    out = output_dir(args.out, "--out", ExplainError) if not args.json else None
    files = find_images(args.images)
    images = np.stack([read_image(f) for f in files])
    predictor = Predictor.load(args.model)
    probs = predictor.probabilities(images)
    top_idx = probs.argmax(1)
    maps = {m: attribute(predictor.module, images, top_idx, m) for m in methods}
    results = []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        top = [(p["label"], p["probability"]) for p in predictor.top(probs[i], 3)]
        row = {"file": str(f), "top": [{"label": c, "probability": p} for c, p in top],
               "attributions": {m: summary(maps[m][i]) for m in methods}}  # fmt: skip
        if out is not None:
            fig = plots.explanation(images[i], top, {m: maps[m][i] for m in methods}, f.name)
            png = plots.to_png(fig)
            target = out / f"{i:03d}-{f.stem[:60]}-explain.png"
            atomic_write(target, lambda tmp, png=png: Path(tmp).write_bytes(png))
            row["figure"] = str(target)
        results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            best = r["top"][0]
            print(f"{r['file']}: {best['label']} {best['probability']:.1%} -> {r['figure']}")
    return 0


def add_explain(sub) -> None:
    sp = sub.add_parser(
        "explain", help="why a prediction: Grad-CAM, integrated gradients, occlusion"
    )
    sp.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    sp.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    sp.add_argument("--method", choices=["gradcam", "ig", "occlusion", "all"], default="all",
                    help="(default: all)")  # fmt: skip
    sp.add_argument("--out", default="explain", help="folder for the figures (default: explain)")
    sp.add_argument("--json", action="store_true",
                    help="print the top classes and a summary of each attribution map")  # fmt: skip
    sp.set_defaults(func=cmd_explain)


COMMANDS = [
    add_evaluate, add_results, add_bench, add_baselines, add_report, add_audit, add_robustness,
    add_explain,
]  # fmt: skip
