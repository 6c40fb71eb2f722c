"""Commands that question the data and a model: audit, robustness, explain."""

from __future__ import annotations

import os

import numpy as np

from fmnist.cli.common import (
    at_most,
    chosen_model,
    data_flags,
    model_code,
    model_flag,
    names_a_model,
    stopped_by_signals,
)
from fmnist.cli.training import DEVICES, default_in, recipe_help
from fmnist.errors import FmnistError
from fmnist.files import json_text

AUDIT_RECIPE = "rung90"  # the cross-validation models: the fastest recipe to 90%


def cmd_audit(args) -> int:
    from fmnist import data
    from fmnist.analysis.audit import FILES, AuditError, audit, write_audit
    from fmnist.files import output_dir
    from fmnist.training.config import make_config

    out = output_dir(args.out, "--out", AuditError, inside=FILES)
    settings = {"model": args.model, "epochs": args.epochs, "seed": args.seed}
    cfg = make_config(args.recipe, **settings, all_data=True, device=args.device)
    if args.folds < 2:
        raise AuditError(f"--folds must be at least 2, got {args.folds}")
    ds = data.load(args.data_dir, download=args.download)
    if args.quick:  # a slice, for a smoke test: 6,000 training and 2,000 test images
        ds = data.FashionMNIST(
            ds.train_images[:6000],
            ds.train_labels[:6000],
            ds.test_images[:2000],
            ds.test_labels[:2000],
            ds.directory,
            ds.origin,
            ds.sha256,
        )
    with stopped_by_signals():  # a kill still removes the folds' temporary runs
        record, arrays = audit(ds, cfg, folds=args.folds)
        page = write_audit(record, arrays, ds, out)
    print_audit(record)
    print(f"audit: {page} ({record['seconds']['total']:.0f} s)")
    return 0


def print_audit(record: dict) -> None:
    ex = record["exact_duplicates"]["counts"]
    print(
        f"exact duplicates: {ex['train_extra_copies']} extra copies within train, "
        f"{ex['test_extra_copies']} within test, {ex['test_images_in_train']} test images "
        "also in train"
    )
    near = record["near_duplicates"]
    for kind in ("pixel", "feature"):
        c = near[kind]["counts"]
        print(
            f"near-duplicates ({kind}, <= {near[kind]['threshold']:g}): {c['train_test']} "
            f"test images near a training image, {c['train']} pairs within train, "
            f"{c['test']} within test"
        )
    li = record["label_issues"]["counts"]
    print(f"label suspects: {li['train']:,} training images, {li['test']:,} test images")


def add_audit(sub) -> None:
    sp = sub.add_parser(
        "audit", help="duplicates, train/test near-duplicates and label issues, shown"
    )
    sp.add_argument(
        "--recipe", default=AUDIT_RECIPE, help=recipe_help("recipe of the cross-validation models")
    )
    sp.add_argument("--model", help="their architecture " + default_in("model", AUDIT_RECIPE))
    sp.add_argument(
        "--epochs", type=int, help="epochs of each model " + default_in("epochs", AUDIT_RECIPE)
    )
    sp.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    sp.add_argument("--seed", type=int, default=0, help="of the folds and the weights")
    sp.add_argument(
        "--device", choices=DEVICES, help="where to train " + default_in("device", AUDIT_RECIPE)
    )
    sp.add_argument("--out", default="audit", help="output folder")
    sp.add_argument(
        "--quick", action="store_true", help="a 6,000/2,000-image slice, for a smoke test"
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_audit)


def cmd_robustness(args) -> int:
    from fmnist import data
    from fmnist.analysis import plots
    from fmnist.analysis.robustness import of_clean, robustness
    from fmnist.checkpoint import load_model
    from fmnist.corruptions import CorruptionError
    from fmnist.files import output_file
    from fmnist.training.config import MAX_SEED

    if args.figure:
        output_file(args.figure, "--figure", CorruptionError)
    if args.limit is not None and args.limit < 1:
        raise CorruptionError(f"--limit must be at least 1, got {args.limit}")
    if args.seed < 0:
        raise CorruptionError(f"--seed must be 0 or more, got {args.seed}")
    at_most("--seed", args.seed, MAX_SEED)
    model_name = chosen_model(args, args.model_positional)
    model = load_model(model_name, **model_code(args))
    ds = data.load(args.data_dir, download=args.download)
    n = args.limit or len(ds.test_labels)
    log = None if args.json else print
    if log:
        log(f"{'corruption':<16}" + "  ".join(f"  s{s} " for s in args.severities))
    result = robustness(
        model,
        ds.test_images[:n],
        ds.test_labels[:n],
        args.corruptions,
        args.severities,
        args.seed,
        log,
    )
    result["model"] = str(model_name)
    if args.figure:
        from pathlib import Path

        from fmnist.checkpoint import atomic_write

        png = plots.to_png(plots.corruption_heatmap(result, str(model_name)))
        atomic_write(args.figure, lambda tmp: Path(tmp).write_bytes(png))
    if args.json:
        print(json_text(result))
    else:
        print(
            f"\nclean {result['clean']:.2%}; mean under corruption {result['mean']:.2%} "
            f"({of_clean(result)})"
        )
    return 0


def add_robustness(sub) -> None:
    from fmnist.corruptions import CORRUPTIONS, SEVERITIES

    sp = sub.add_parser("robustness", help="test accuracy under 14 corruptions, 5 severities")
    model_flag(sp, positional=True)
    sp.add_argument(
        "--severities",
        type=int,
        nargs="+",
        default=list(SEVERITIES),
        metavar="S",
        help="severities, of 1 to 5",
    )
    sp.add_argument(
        "--corruptions",
        nargs="+",
        metavar="NAME",
        help=f"corruptions to apply (default: all: {', '.join(CORRUPTIONS)})",
    )
    sp.add_argument("--seed", type=int, default=0, help="of the random corruptions")
    sp.add_argument("--limit", type=int, help="the first N test images only (default: all)")
    sp.add_argument("--figure", metavar="PNG", help="also draw the heat map here")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    data_flags(sp)
    sp.set_defaults(func=cmd_robustness)


def cmd_explain(args) -> int:
    from fmnist.analysis.explain import METHODS, ExplainError, attribute, captum_or_fail
    from fmnist.deploy.predict import Predictor, find_images, read_image
    from fmnist.files import output_dir, write_files

    model_name, inputs = model_and_images(args)
    methods = METHODS if args.method == "all" else (args.method,)
    captum_or_fail()  # missing: one line before any work
    files = find_images(inputs)
    names = [figure_name(i, f) for i, f in enumerate(files)]
    # every figure's place checked before any image is read; the folder made only at the end
    out = None if args.json else output_dir(args.out, "--out", ExplainError, inside=names)
    images = np.stack([read_image(f) for f in files])
    predictor = Predictor.load(model_name, **model_code(args))
    probs = predictor.probabilities(images)
    top_idx = probs.argmax(1)
    maps = {m: attribute(predictor.module, images, top_idx, m) for m in methods}
    figures = {} if out is not None else None
    results = [
        explained(i, f, images[i], predictor.top(probs[i], 3), maps, figures)
        for i, f in enumerate(files)
    ]
    if out is not None:
        write_files(out, figures)  # all or nothing
        for r in results:
            r["figure"] = str(out / r["figure"])
    if args.json:
        print(json_text(results))
    else:
        for r in results:
            best = r["top"][0]
            print(f"{r['file']}: {best['label']} {best['probability']:.1%} -> {r['figure']}")
    return 0


def model_and_images(args) -> tuple[str, list[str]]:
    """explain [MODEL] IMAGE...: the first positional is the model when --model is not given
    and it names one (default, best, a run directory, a .safetensors file); otherwise every
    positional is an image or a folder of them."""
    given = ([args.model_positional] if args.model_positional is not None else []) + args.images
    first, rest = given[0], given[1:]
    if not names_a_model(first):
        return args.model, given
    model_name = chosen_model(args, first)
    if not rest:
        raise FmnistError(f"{first} is a model; give the images to explain after it")
    return model_name, rest


def figure_name(i: int, file) -> str:
    """The i-th image's figure in the --out folder: a name within the 255 bytes a file
    system allows, whatever characters the image's name holds."""
    stem = file.stem[:60]
    while len(os.fsencode(stem)) > 200:
        stem = stem[:-1]
    return f"{i:03d}-{stem}-explain.png"


def explained(i: int, file, image, top: list[dict], maps: dict, figures: dict | None) -> dict:
    """One image's row: its top classes, a summary of each method's map, and (with
    `figures`, which receives its PNG) its figure's name."""
    from fmnist.analysis import plots
    from fmnist.analysis.explain import summary

    row = {
        "file": str(file),
        "top": [{"label": p["label"], "probability": p["probability"]} for p in top],
        "attributions": {m: summary(maps[m][i]) for m in maps},
    }
    if figures is not None:
        pairs = [(p["label"], p["probability"]) for p in top]
        # a name that is not UTF-8 keeps its bytes on disk; its title shows them as U+FFFD
        title = os.fsencode(file.name).decode("utf-8", "replace")
        fig = plots.explanation(image, pairs, {m: maps[m][i] for m in maps}, title)
        row["figure"] = figure_name(i, file)
        figures[row["figure"]] = plots.to_png(fig)
    return row


def add_explain(sub) -> None:
    from fmnist.analysis.explain import METHODS

    sp = sub.add_parser(
        "explain", help="why a prediction: Grad-CAM, integrated gradients, occlusion"
    )
    model_flag(sp, positional=True)
    sp.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    sp.add_argument("--method", choices=[*METHODS, "all"], default="all", help="attribution method")
    sp.add_argument("--out", default="explain", help="folder for the figures")
    sp.add_argument(
        "--json",
        action="store_true",
        help="print the top classes and a summary of each attribution map (no figures)",
    )
    sp.set_defaults(func=cmd_explain)


COMMANDS = [add_audit, add_robustness, add_explain]
