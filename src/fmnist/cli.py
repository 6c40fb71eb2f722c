"""The `fmnist` command: parse flags, call one stage, print. No logic of its own."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from fmnist import FmnistError


class Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr and exit status 2."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        raise SystemExit(2)


def cmd_data(args) -> int:
    from fmnist import data

    ds = data.load(args.data_dir, download=args.download)
    print(f"Fashion-MNIST from {ds.origin}: {ds.directory}")
    for name, digest in ds.sha256.items():
        print(f"  {name:<26} sha256 {digest}  verified")
    train, test = data.class_counts(ds.train_labels), data.class_counts(ds.test_labels)
    print(f"\n  {'class':<14}{'train':>8}{'test':>8}")
    for i, name in enumerate(data.CLASSES):
        print(f"  {i} {name:<12}{train[i]:>8}{test[i]:>8}")
    print(f"  {'total':<14}{train.sum():>8}{test.sum():>8}")
    return 0


def cmd_models(args) -> int:
    from fmnist.models import count_parameters, create_model, flops, list_models, summary

    if not args.summary:
        print(f"{'model':<12}{'parameters':>12}{'statistics':>12}{'MFLOP/image':>14}")
    for name in list_models():
        model = create_model(name)
        if args.summary:
            print(summary(model) + "\n")
        else:
            trainable, stats = count_parameters(model)
            print(f"{name:<12}{trainable:>12,}{stats:>12,}{flops(model) / 1e6:>14,.2f}")
    return 0


def cmd_train(args) -> int:
    from fmnist import distributed
    from fmnist.config import SETTING_FLAGS
    from fmnist.train import make_config, resume_config, train

    if args.resume:
        given = [f for f in SETTING_FLAGS + ("out", "device") if getattr(args, f) is not None]
        if given or args.recipe != "seed" or args.sync_bn:
            flags = ", ".join("--" + f.replace("_", "-") for f in given) or "--recipe/--sync-bn"
            raise FmnistError(
                f"--resume continues {args.resume} with the settings it started with; drop {flags}"
            )
        cfg = resume_config(args.resume)
    else:
        cfg = make_config(
            args.recipe,
            **{f: getattr(args, f) for f in SETTING_FLAGS},
            device=args.device,
            sync_bn=args.sync_bn or None,
        )
    if args.seeds < 1:
        raise FmnistError(f"--seeds must be at least 1, got {args.seeds}")
    if args.seeds > 1:
        if args.resume or args.mlflow is not None or distributed.from_environment().active:
            raise FmnistError("--seeds runs in one process; drop --resume, --mlflow or torchrun")
        return train_several(cfg, args)
    lead = distributed.rank() == 0
    tracker = None
    if args.mlflow is not None and lead:
        from fmnist.tracking import Tracker

        tracker = Tracker(args.mlflow or None)
    try:
        if tracker is not None:
            history = []
            if args.resume:
                from fmnist.resume import load

                history = load(args.resume)[1]["history"]
            name = args.resume or args.out or f"{cfg.model}-{cfg.recipe}-s{cfg.seed}"
            tracker.start(cfg, run_name=Path(name).name, history=history)
        result = train(
            cfg,
            out=args.resume or args.out,
            data_dir=args.data_dir,
            download=args.download,
            on_epoch=tracker.epoch if tracker else None,
            resume_run=bool(args.resume),
        )
        if not lead:
            return 0
        m = result.metrics
        print(
            f"\ntest accuracy {m['test_accuracy']:.2%}  test loss {m['test_loss']:.4f}  "
            f"best epoch {m['best_epoch']}/{m['epochs']}  training {m['train_s']:.1f}s"
        )
        print(f"run directory: {result.run_dir}")
        print(f"model: {result.run_dir / 'model.safetensors'}")
        if args.report:
            from fmnist.report import write_report

            page = write_report(result.run_dir, data_dir=args.data_dir, download=args.download)
            print(f"report: {page}")
        if tracker is not None:
            tracker.finish(result.run_dir, m)
            print(f"mlflow: run {tracker.run_id} in {tracker.uri}")
    except BaseException:
        if tracker is not None:
            tracker.fail()
        raise
    return 0


def train_several(cfg, args) -> int:
    from fmnist.seeds import train_seeds

    out, results, summary = train_seeds(
        cfg, args.seeds, out=args.out, data_dir=args.data_dir, download=args.download
    )
    if args.report:
        from fmnist.report import write_report

        for r in results:
            write_report(r.run_dir, data_dir=args.data_dir, download=args.download)
    acc, t = summary["test_accuracy"], summary["train_s"]
    print(
        f"\ntest accuracy {acc['mean']:.2%} ± {acc['std']:.2%} over {summary['n']} seeds "
        f"({', '.join(f'{v:.2%}' for v in acc['values'])}); training {t['mean']:.1f} s each"
    )
    if "test_accuracy_tta" in summary:
        tta = summary["test_accuracy_tta"]
        print(f"with the mirror image: {tta['mean']:.2%} ± {tta['std']:.2%}")
    print(f"runs: {out} (summary.json)")
    return 0


def cmd_results(args) -> int:
    from fmnist import results

    print(results.table([results.read(p) for p in args.records]))
    return 0


def cmd_tune(args) -> int:
    from fmnist import tune
    from fmnist.train import make_config

    base = make_config(
        args.recipe,
        epochs=args.epochs,
        train_limit=args.train_limit,
        patience=args.patience,
        device=args.device,
    )
    if args.trials < 1:
        raise FmnistError(f"--trials must be at least 1, got {args.trials}")
    storage = args.storage or tune.default_storage(args.out)
    study = tune.run(
        base,
        args.trials,
        args.out,
        storage,
        study_name=args.study,
        data_dir=args.data_dir,
        download=args.download,
        seed=args.sampler_seed,
    )
    recipe = tune.write_recipe(
        study, base, args.recipe_out or Path(args.out) / "best.json", storage
    )
    best = study.best_trial
    print(f"\nstudy {study.study_name!r} in {tune.redact(storage)}: {len(study.trials)} trials")
    print(f"best: trial {best.number}, validation accuracy {best.value:.4f}, {best.params}")
    print(f"recipe: {recipe}  (fmnist train --recipe {recipe})")
    return 0


def cmd_evaluate(args) -> int:
    from fmnist import data
    from fmnist.checkpoint import load_model
    from fmnist.evaluate import evaluate_logits, format_report, infer

    model = load_model(args.model)
    ds = data.load(args.data_dir, download=args.download)
    result = evaluate_logits(infer(model, ds.test_images, tta=args.tta), ds.test_labels)
    result["tta"] = args.tta
    result["model"] = str(args.model)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_report(result))
    return 0


def results_file(path: str | None, default: str):
    """Where a benchmark's JSON goes, checked before the (long) measurement starts."""
    from pathlib import Path

    from fmnist.rundir import make_writable_dir

    out = Path(path or default)
    try:
        make_writable_dir(out.parent)
    except OSError as e:
        raise FmnistError(f"{out}: cannot write the results ({e.strerror or e})") from None
    return out


def save_results(out, record: dict, table: str) -> None:
    from fmnist.checkpoint import write_json

    write_json(out, record)
    print(f"\n{table}\n\nresults: {out}")


def cmd_bench(args) -> int:
    from datetime import date

    from fmnist import bench, data
    from fmnist.train import resolve_device

    device = resolve_device(args.device)
    out = results_file(args.json, f"benchmarks/results/{date.today()}-{device.type}.json")
    ds = data.load(args.data_dir, download=args.download)
    result = bench.run(ds, args.device, repeats=args.repeats, epochs=args.epochs, log=print)
    save_results(out, result, bench.format_table(result))
    return 0


def cmd_baselines(args) -> int:
    from datetime import date

    from fmnist import baselines, data

    out = results_file(args.json, f"benchmarks/results/{date.today()}-baselines.json")
    ds = data.load(args.data_dir, download=args.download)
    results = baselines.run(
        ds.train_images, ds.train_labels, ds.test_images, ds.test_labels, args.only or None
    )
    record = {"date": str(date.today()), "results": results}
    save_results(out, record, baselines.format_table(results))
    return 0


def cmd_report(args) -> int:
    from fmnist.report import write_report

    page = write_report(
        args.run_dir, data_dir=args.data_dir, download=args.download, tsne_points=args.tsne_points
    )
    print(f"figures: {page.parent / 'plots'}")
    print(f"report: {page}")
    return 0


def cmd_predict(args) -> int:
    from fmnist.predict import format_results, predict_files, write_csv

    results = predict_files(args.model, args.images, top_k=args.top_k)
    if args.csv:
        write_csv(args.csv, results)
        print(f"wrote {len(results)} predictions to {args.csv}")
    elif args.json:
        print(json.dumps(results, indent=2))
    else:
        print(format_results(results))
    return 0


def cmd_serve(args) -> int:
    from fmnist.serve import serve

    serve(args.model, host=args.host, port=args.port)
    return 0


def cmd_export(args) -> int:
    from fmnist.export import export

    for path in export(args.model, args.format, out=args.out):
        print(f"wrote {path}")
    return 0


def build_parser() -> Parser:
    p = Parser(
        prog="fmnist", description="Train, inspect, serve and export CNNs for Fashion-MNIST."
    )
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    def data_flags(sp):
        sp.add_argument(
            "--data-dir",
            help="folder with the four IDX files (default: $FMNIST_DATA_DIR, the user cache, "
            "then /usr/share/datasets/fashion-mnist)",
        )
        sp.add_argument(
            "--no-download",
            dest="download",
            action="store_false",
            help="never download; fail if no local copy is found",
        )

    sp = sub.add_parser("data", help="where the data came from, checksums, class counts")
    data_flags(sp)
    sp.add_argument(
        "--download", action="store_true", help="download if no copy is found (default)"
    )
    sp.set_defaults(func=cmd_data)

    sp = sub.add_parser("models", help="list the registered models")
    sp.add_argument("--summary", action="store_true", help="print each model's layer table")
    sp.set_defaults(func=cmd_models)

    sp = sub.add_parser("train", help="train a model and write a run directory")
    sp.add_argument("--model", help="registry name (default: seed_cnn)")
    sp.add_argument(
        "--recipe",
        default="seed",
        help="preset of settings: seed, fast, or a recipe file fmnist tune wrote (default: seed)",
    )
    sp.add_argument("--epochs", type=int, help="maximum epochs (default: 30)")
    sp.add_argument("--batch-size", type=int, help="images per step, all processes (default: 128)")
    sp.add_argument("--lr", type=float, help="learning rate (default: 0.001)")
    sp.add_argument("--patience", type=int, help="early-stopping patience in epochs (default: 5)")
    sp.add_argument("--seed", type=int, help="random seed (default: 0)")
    sp.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train this many seeds (seed, seed+1, ...) and report mean ± std (default: 1)",
    )
    sp.add_argument("--device", choices=["cpu", "cuda", "auto"], help="(default: auto)")
    sp.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        help="bf16: convolutions and matmuls in bfloat16 under autocast (default: the recipe's)",
    )
    sp.add_argument(
        "--channels-last",
        action="store_const",
        const=True,
        help="NHWC activations (default: the recipe's)",
    )
    sp.add_argument(
        "--train-limit", type=int, help="train on the first N images only (default: all)"
    )
    sp.add_argument(
        "--all-data",
        action="store_const",
        const=True,
        help="train on all 60,000 training images for exactly --epochs epochs (chosen on "
        "validation beforehand), keeping the last; no validation split",
    )
    sp.add_argument("--out", help="run directory (default: runs/<model>-<recipe>-s<seed>-<time>)")
    sp.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an unfinished run from its last end-of-epoch checkpoint",
    )
    sp.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on GPUs: BatchNorm statistics over all processes "
        "(default: per process)",
    )
    sp.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log to MLflow (default store: sqlite:///mlflow.db in this directory)",
    )
    sp.add_argument(
        "--no-report", dest="report", action="store_false", help="skip report.html at the end"
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_train)

    sp = sub.add_parser(
        "tune", help="search hyperparameters with Optuna; write the best as a recipe"
    )
    sp.add_argument("--recipe", default="seed", help="settings to search around (default: seed)")
    sp.add_argument("--trials", type=int, default=20, help="trials this process runs (default: 20)")
    sp.add_argument("--epochs", type=int, help="maximum epochs per trial (default: the recipe's)")
    sp.add_argument("--patience", type=int, help="early-stopping patience (default: the recipe's)")
    sp.add_argument("--train-limit", type=int, help="train each trial on N images (default: all)")
    sp.add_argument("--device", choices=["cpu", "cuda", "auto"], help="(default: auto)")
    sp.add_argument(
        "--storage",
        help="study database URL, e.g. postgresql://user:pw@host/db (default: sqlite:///OUT/study.db)",
    )
    sp.add_argument("--study", default="fmnist", help="study name (default: fmnist)")
    sp.add_argument("--out", default="tune", help="trial run directories and files (default: tune)")
    sp.add_argument("--recipe-out", help="best trial's recipe file (default: OUT/best.json)")
    sp.add_argument(
        "--sampler-seed",
        type=int,
        help="seed of the TPE sampler (default: none; give each worker its own)",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_tune)

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

    sp = sub.add_parser("evaluate", help="test-set accuracy, per-class report, confusion matrix")
    sp.add_argument("model", metavar="MODEL", help="a run directory or a .safetensors model file")
    sp.add_argument("--tta", action="store_true", help="average with the mirrored image")
    sp.add_argument("--json", action="store_true", help="print one JSON object")
    data_flags(sp)
    sp.set_defaults(func=cmd_evaluate)

    sp = sub.add_parser("bench", help="speed side by side with a plain PyTorch loop")
    sp.add_argument("--repeats", type=int, default=3, help="timed repeats (default: 3)")
    sp.add_argument(
        "--epochs", type=int, default=15, help="epochs for time-to-accuracy (default: 15)"
    )
    sp.add_argument(
        "--device", choices=["cpu", "cuda", "auto"], default="auto", help="(default: auto)"
    )
    sp.add_argument(
        "--json", help="where to write the results (default: benchmarks/results/DATE-DEVICE.json)"
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_bench)

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

    sp = sub.add_parser("report", help="write RUN_DIR/report.html and RUN_DIR/plots/*.png")
    sp.add_argument("run_dir", metavar="RUN_DIR", help="a run directory `fmnist train` wrote")
    sp.add_argument(
        "--tsne-points",
        type=int,
        default=2000,
        help="test images in the t-SNE feature map (default: 2000)",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_report)

    sp = sub.add_parser("predict", help="classify your own images (photos or 28x28 images)")
    sp.add_argument("model", metavar="MODEL", help="a run directory or a .safetensors model file")
    sp.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    sp.add_argument("--top-k", type=int, default=3, help="classes shown per image (default: 3)")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON list")
    out.add_argument("--csv", metavar="FILE", help="write a CSV file (file, rank, label, ...)")
    sp.set_defaults(func=cmd_predict)

    sp = sub.add_parser("serve", help="HTTP API and web page for a model")
    sp.add_argument(
        "--model",
        default="models/fashion_mnist_model.safetensors",
        help="a run directory or model file (default: models/fashion_mnist_model.safetensors)",
    )
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    sp.add_argument("--port", type=int, default=8000, help="(default: 8000)")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("export", help="write the model as ONNX or Keras")
    sp.add_argument("model", metavar="MODEL", help="a run directory or a .safetensors model file")
    sp.add_argument("--format", required=True, choices=["onnx", "keras"], help="file format")
    sp.add_argument(
        "--out",
        help="output file (default: beside the model; keras writes both .keras and .h5, "
        "or the one --out names)",
    )
    sp.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FmnistError as e:
        sys.stderr.write(f"fmnist {args.command}: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"fmnist {args.command}: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (fmnist ... | head): stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
