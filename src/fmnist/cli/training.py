"""Training commands: `fmnist train` (one run, seeds, resume, torchrun), `fmnist tune` and
`fmnist recipes`."""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
from pathlib import Path

from fmnist.cli.common import MAX_RUNS, at_most, data_flags, shown, stopped_by_signals
from fmnist.errors import FmnistError
from fmnist.files import output_dir, output_file

DEFAULT_RECIPE = "seed"  # what train and tune start from
DEVICES = ["cpu", "cuda", "auto"]


@functools.cache
def recipe_config(recipe: str):
    from fmnist.training.config import make_config

    return make_config(recipe)


def default_in(setting: str, recipe: str = DEFAULT_RECIPE) -> str:
    """A flag whose value, left out, is the recipe's: its help ends "(default: the recipe's;
    seed: 30)", the value in the recipe the command starts from, read from the code."""
    return f"(default: the recipe's; {recipe}: {shown(getattr(recipe_config(recipe), setting))})"


def recipe_help(what: str) -> str:
    """--recipe's help: the names in the registry, then a recipe file."""
    from fmnist.training.recipes import RECIPES

    return (
        f"{what}: {', '.join(RECIPES)} (fmnist recipes says what each is), or a recipe file "
        "fmnist tune wrote"
    )


def cmd_train(args) -> int:
    from fmnist.training import distributed
    from fmnist.training.config import MAX_SEED

    cfg = train_config(args)
    if args.seeds < 1:
        raise FmnistError(f"--seeds must be at least 1, got {args.seeds}")
    at_most("--seeds", args.seeds, MAX_RUNS)
    if cfg.seed + args.seeds - 1 > MAX_SEED:
        raise FmnistError(
            f"--seeds {args.seeds} from seed {cfg.seed} goes past the largest seed, {MAX_SEED:,}"
        )
    if args.seeds > 1:
        if args.resume or args.mlflow is not None or distributed.from_environment().active:
            raise FmnistError("--seeds runs in one process; drop --resume, --mlflow or torchrun")
        return train_several(cfg, args)
    return train_once(cfg, args)


def train_config(args):
    """The run's settings: those a resumed run started with, or the recipe's under the flags."""
    from fmnist.models.user import check_model_args
    from fmnist.training.config import SETTING_FLAGS, make_config
    from fmnist.training.resume import resume_config

    if not args.resume:
        settings = {f: getattr(args, f) for f in SETTING_FLAGS}
        if args.model_args is not None:
            settings["model_args"] = check_model_args(args.model_args)
        if args.model_code is not None:
            raise FmnistError(
                "--model-code names a run's code again for --resume; to train your own code, "
                "give --model path/to/file.py:ClassName"
            )
        return make_config(
            args.recipe,
            **settings,
            device=args.device,
            sync_bn=args.sync_bn or None,
        )
    given = [f for f in SETTING_FLAGS + ("out", "device") if getattr(args, f) is not None]
    if given or args.recipe != DEFAULT_RECIPE or args.sync_bn:
        flags = ", ".join("--" + f.replace("_", "-") for f in given) or "--recipe/--sync-bn"
        raise FmnistError(
            f"--resume continues {args.resume} with the settings it started with; drop {flags}"
        )
    return resume_config(args.resume, args.model_code)


def train_once(cfg, args) -> int:
    from fmnist.training import distributed
    from fmnist.training.rundir import default_run_dir
    from fmnist.training.train import train

    lead = distributed.rank() == 0  # under torchrun, the one process that reports
    tracker = None
    if args.mlflow is not None and lead:
        from fmnist.training.tracking import Tracker

        tracker = Tracker(args.mlflow or None)
    # named here rather than in train, so that a stopped run's message can name it
    out = Path(args.resume or args.out or default_run_dir(cfg, f"s{cfg.seed}"))
    try:
        # SIGTERM and SIGHUP unwind as Ctrl-C does: the run keeps its checkpoint, or
        # nothing before the first one
        with stopped_by_signals():
            if tracker is not None:
                start_tracking(tracker, cfg, args)
            result = train(
                cfg,
                out=out,
                data_dir=args.data_dir,
                download=args.download,
                on_epoch=tracker.epoch if tracker else None,
                resume_run=bool(args.resume),
            )
            if lead:
                finish_run(result, args, tracker)
    except BaseException as e:
        if tracker is not None:
            tracker.fail()
        if isinstance(e, KeyboardInterrupt) and lead:
            return stopped(e, out)
        raise
    return 0


def stopped(e: KeyboardInterrupt, run_dir: Path) -> int:
    """A run stopped by Ctrl-C or a signal: one line on what its directory keeps and how to
    continue; the shell's status for that signal."""
    from fmnist.training.rundir import kept_note

    signum = getattr(e, "signum", signal.SIGINT)
    how = "interrupted" if signum == signal.SIGINT else f"stopped by {signum.name}"
    sys.stderr.write(f"fmnist train: {how}; {kept_note(run_dir)}\n")
    return 128 + signum


def start_tracking(tracker, cfg, args) -> None:
    """An MLflow run named as the run directory; a resumed run's epochs so far logged first."""
    from fmnist.training.rundir import model_label

    history = []
    if args.resume:
        from fmnist.training.resume import load

        history = load(args.resume)[1]["history"]
    name = args.resume or args.out or f"{model_label(cfg.model)}-{cfg.recipe}-s{cfg.seed}"
    tracker.start(cfg, run_name=Path(name).name, history=history)


def finish_run(result, args, tracker) -> None:
    m = result.metrics
    print(
        f"\ntest accuracy {m['test_accuracy']:.2%}  test loss {m['test_loss']:.4f}  "
        f"best epoch {m['best_epoch']}/{m['epochs']}  training {m['train_s']:.1f}s"
    )
    print(f"run directory: {result.run_dir}")
    print(f"model: {result.run_dir / 'model.safetensors'}")
    if args.report:
        from fmnist.analysis.report import write_report

        try:
            page = write_report(
                result.run_dir,
                data_dir=args.data_dir,
                download=args.download,
                **trained_code(result.config),
            )
        except OSError as e:  # a full disk: the run itself is whole
            raise FmnistError(
                f"{e.filename or result.run_dir}: cannot write the report ({e.strerror or e}); "
                f"the run finished and is kept in {result.run_dir}: fmnist report "
                f"{result.run_dir} writes the report again"
            ) from None
        print(f"report: {page}")
    if tracker is not None:
        tracker.finish(result.run_dir, m)
        print(f"mlflow: run {tracker.run_id} in {tracker.uri}")


def trained_code(cfg) -> dict:
    """The code a model of the user's own was just trained from, named again for the report
    that reloads it (a model file never names code by itself)."""
    from fmnist.models.user import is_user_spec, parse_spec

    return {"model_code": parse_spec(cfg.model)[0]} if is_user_spec(cfg.model) else {}


def train_several(cfg, args) -> int:
    from fmnist.training.seeds import train_seeds

    out, results, summary = train_seeds(
        cfg, args.seeds, out=args.out, data_dir=args.data_dir, download=args.download
    )
    if args.report:
        from fmnist.analysis.report import write_report

        for r in results:
            write_report(
                r.run_dir, data_dir=args.data_dir, download=args.download, **trained_code(cfg)
            )
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


def add_train(sub) -> None:
    sp = sub.add_parser("train", help="train a model and write a run directory")
    sp.add_argument("--recipe", default=DEFAULT_RECIPE, help=recipe_help("preset of settings"))
    setting_flags(sp.add_argument_group("settings, each on top of the recipe's"))
    run_flags(sp.add_argument_group("the run"))
    data_flags(sp)
    sp.set_defaults(func=cmd_train)


def setting_flags(group) -> None:
    """The training settings a flag can set (fmnist.training.config.SETTING_FLAGS, and the
    device); left out, each is the recipe's."""
    group.add_argument(
        "--model",
        help="architecture: a name fmnist models lists, or a model of your own code, "
        "path/to/file.py:ClassName or package.module:ClassName " + default_in("model"),
    )
    group.add_argument(
        "--model-args",
        metavar="JSON",
        help="the model's keyword arguments, a JSON object such as '{\"width\": 64}' "
        "(default: the model's own defaults)",
    )
    group.add_argument("--epochs", type=int, help="maximum epochs " + default_in("epochs"))
    group.add_argument(
        "--batch-size", type=int, help="images per step, all processes " + default_in("batch_size")
    )
    group.add_argument("--lr", type=float, help="learning rate " + default_in("lr"))
    group.add_argument(
        "--patience", type=int, help="early-stopping patience in epochs " + default_in("patience")
    )
    group.add_argument("--seed", type=int, help="random seed " + default_in("seed"))
    group.add_argument("--device", choices=DEVICES, help="where to train " + default_in("device"))
    group.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="bf16: convolutions and matmuls in bfloat16 under autocast; auto: bf16 where the "
        "device runs it natively (AVX-512 BF16, AMX, CUDA), else fp32 " + default_in("precision"),
    )
    group.add_argument(
        "--channels-last",
        action="store_const",
        const=True,
        help="NHWC activations " + default_in("channels_last"),
    )
    group.add_argument(
        "--train-limit", type=int, help="train on the first N images only (default: all)"
    )
    group.add_argument(
        "--all-data",
        action="store_const",
        const=True,
        help="train on all 60,000 training images for exactly --epochs epochs (chosen on "
        "validation beforehand), keeping the last; no validation split",
    )
    group.add_argument(
        "--augment",
        metavar="KIND",
        help="batch augmentation: none, flip, flip_erase, crop_flip, crop_flip_erase, or "
        "flip_corrupt / crop_flip_corrupt (half the images get a random corruption) "
        + default_in("augment"),
    )
    group.add_argument(
        "--exclude",
        metavar="FILE",
        help="leave these training images out: an audit.json (fmnist audit) or a list of "
        "indices (JSON, or one per line)",
    )
    group.add_argument(
        "--deterministic",
        action="store_const",
        const=True,
        help="deterministic kernels, so the same seed gives the same numbers on a GPU as on a "
        "CPU (slower on a GPU) " + default_in("deterministic"),
    )


def run_flags(group) -> None:
    """Where the run goes and what it does beside training."""
    group.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train this many seeds (seed, seed+1, ...) and report mean ± std",
    )
    group.add_argument(
        "--out", help="run directory (default: runs/<model>-<recipe>-s<seed>-<time>)"
    )
    group.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an unfinished run from its last end-of-epoch checkpoint",
    )
    group.add_argument(
        "--model-code",
        metavar="FILE",
        help="with --resume, for a run of your own code: that code, named again (a record "
        "never makes fmnist import code by itself; its SHA-256 must be the one recorded)",
    )
    group.add_argument(
        "--sync-bn",
        action="store_true",
        help="under torchrun on GPUs: BatchNorm statistics over all processes, not per process",
    )
    group.add_argument(
        "--mlflow",
        nargs="?",
        const="",
        metavar="URI",
        help="also log to MLflow (without a URI: sqlite:///mlflow.db in this directory)",
    )
    group.add_argument(
        "--no-report", dest="report", action="store_false", help="skip report.html at the end"
    )


def cmd_tune(args) -> int:
    from fmnist.training import tune
    from fmnist.training.config import MAX_SEED, make_config

    base = make_config(
        args.recipe,
        epochs=args.epochs,
        train_limit=args.train_limit,
        patience=args.patience,
        device=args.device,
    )
    if args.trials < 1:
        raise FmnistError(f"--trials must be at least 1, got {args.trials}")
    at_most("--trials", args.trials, MAX_RUNS)
    if args.sampler_seed is not None and args.sampler_seed < 0:
        raise FmnistError(f"--sampler-seed must be 0 or more, got {args.sampler_seed}")
    at_most("--sampler-seed", args.sampler_seed, MAX_SEED)
    output_dir(args.out, "--out")
    recipe_out = output_file(
        args.recipe_out or Path(args.out) / "best.json", "--recipe-out", new_folders=True
    )
    storage = args.storage or tune.default_storage(args.out)
    made = not os.path.lexists(args.out)
    try:
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
        recipe = tune.write_recipe(study, base, recipe_out, storage)
    except FmnistError:
        if made:  # a refusal leaves nothing behind: not even the folder of failed trials
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    best = study.best_trial
    print(f"\nstudy {study.study_name!r} in {tune.redact(storage)}: {len(study.trials)} trials")
    print(f"best: trial {best.number}, validation accuracy {best.value:.4f}, {best.params}")
    print(f"recipe: {recipe}  (fmnist train --recipe {recipe})")
    return 0


def add_tune(sub) -> None:
    sp = sub.add_parser(
        "tune", help="search hyperparameters with Optuna; write the best as a recipe"
    )
    sp.add_argument(
        "--recipe", default=DEFAULT_RECIPE, help=recipe_help("settings to search around")
    )
    sp.add_argument("--trials", type=int, default=20, help="trials this process runs")
    sp.add_argument("--epochs", type=int, help="maximum epochs per trial " + default_in("epochs"))
    sp.add_argument(
        "--patience", type=int, help="early-stopping patience " + default_in("patience")
    )
    sp.add_argument("--train-limit", type=int, help="train each trial on N images (default: all)")
    sp.add_argument("--device", choices=DEVICES, help="where to train " + default_in("device"))
    sp.add_argument(
        "--storage",
        help="study database URL, e.g. postgresql://user:pw@host/db (default: sqlite:///OUT/study.db)",
    )
    sp.add_argument("--study", default="fmnist", help="study name")
    sp.add_argument("--out", default="tune", help="folder of the trials' run directories and files")
    sp.add_argument("--recipe-out", help="best trial's recipe file (default: OUT/best.json)")
    sp.add_argument(
        "--sampler-seed",
        type=int,
        help="seed of the TPE sampler (default: none; give each worker its own)",
    )
    data_flags(sp)
    sp.set_defaults(func=cmd_tune)


def cmd_recipes(args) -> int:
    from fmnist.training import recipes as recipes_module
    from fmnist.training.config import TrainConfig
    from fmnist.training.recipes import PURPOSES, RECIPES

    print(f"{'recipe':<10}{'model':<12}{'epochs':>7}  purpose")
    for name, settings in RECIPES.items():
        # the settings on TrainConfig's defaults, unchecked: listing a recipe needs none of
        # the optional packages that training with it may (robust's corruptions: kornia)
        cfg = TrainConfig(**settings)
        print(f"{name:<10}{cfg.model:<12}{cfg.epochs:>7}  {PURPOSES.get(name, '')}")
    print("\nfmnist train --recipe NAME trains with one; the settings of each, with reasons:")
    print(f"  {recipes_module.__file__}")
    return 0


def add_recipes(sub) -> None:
    sp = sub.add_parser("recipes", help="the named recipes: model, epochs and purpose of each")
    sp.set_defaults(func=cmd_recipes)


COMMANDS = [add_train, add_tune, add_recipes]
