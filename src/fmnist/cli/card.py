"""`fmnist card`: a model through the fair protocol, as card.json and card.html."""

from __future__ import annotations

from fmnist.cli.common import data_flags
from fmnist.cli.training import DEVICES, recipe_help
from fmnist.errors import FmnistError


def cmd_card(args) -> int:
    from fmnist import data
    from fmnist.analysis import card, card_board, card_html
    from fmnist.models.user import check_model_args

    model_args = check_model_args(args.model_args) if args.model_args is not None else None
    plan = card.make_plan(
        args.model,
        args.recipe,
        seeds=args.seeds,
        model_args=model_args,
        device=args.device,
        epochs=args.epochs,
        train_limit=args.train_limit,
        test_limit=args.test_limit,
    )
    compare = compare_recipes(args.compare, plan)
    out = card.card_folder(args.out or f"cards/{plan.name}")
    board = card_board.read_board(args.board)  # a bad record refused before any training
    card.try_model(plan)
    ds = data.load(args.data_dir, download=args.download)
    record, figures = card.measure(ds, plan, log=print)
    compared = [card.compare_row(ds, recipe, plan, log=print) for recipe in compare]
    record["compare"] = compared
    record["leaderboard"] = card_board.leaderboard(record, board, compared)
    json_path, page = card.write(out, record, card_html.render(record, figures))
    print_card(record)
    print(f"\nrecord: {json_path}\npage: {page}")
    return 0


def compare_recipes(asked: list[str] | None, plan) -> list[str]:
    """The recipes --compare re-runs: those named, or alone, the ladder's rungs that fit in
    a few minutes here (as `fmnist bench --ladder` alone runs)."""
    from fmnist.analysis import ladder
    from fmnist.training.config import RECIPES, resolve_device

    if asked is None:
        return []
    if not asked:
        device = resolve_device(plan.settings.get("device", "auto"))
        chosen = ladder.rung_recipes(device.type)
        return [chosen[rung] for rung in ladder.quick_plan(device)]
    bad = [r for r in asked if r not in RECIPES]
    if bad:
        raise FmnistError(f"--compare: unknown recipe {bad[0]}; recipes: {', '.join(RECIPES)}")
    return list(dict.fromkeys(asked))


def print_card(record: dict) -> None:
    acc, rob = record["test_accuracy"], record["robustness"]
    each = ", ".join(f"{v:.2%}" for v in acc["values"])
    print(
        f"\n{record['name']}: test accuracy {acc['mean']:.2%} ± {acc['std']:.2%} over "
        f"{len(acc['values'])} seeds ({each}); training {record['train_s']['median']:.1f} s "
        f"per seed; {record['parameters']:,} parameters, {record['mflop_per_image']:g} MFLOP; "
        f"ECE {record['ece']['mean']:.2%}; under corruptions {rob['mean']:.2%}, inverted "
        f"{rob['inverted_image']:.2%}"
    )
    for row in record["leaderboard"]:
        if row["compares"]:
            mark = "  <-" if row["this"] else ""
            print(
                f"  {row['place']:>2}. {row['model']:<24} {row['recipe']:<14} "
                f"{row['test_accuracy']['mean']:.2%}  {row['train_s']:>8.1f} s{mark}"
            )


def add_card(sub) -> None:
    from fmnist.analysis.card import DEFAULT_SEEDS, MAX_SEEDS, MODEL_RECIPE
    from fmnist.models.user import SPEC_HELP

    sp = sub.add_parser(
        "card", help="a model through the fair protocol: card.json and card.html with a leaderboard"
    )
    sp.add_argument(
        "--model", help=f"a name fmnist models lists, or a model of your own code, {SPEC_HELP}"
    )
    sp.add_argument(
        "--model-args", metavar="JSON", help="the model's keyword arguments, a JSON object"
    )
    sp.add_argument(
        "--recipe",
        help=recipe_help(f"how to train (default with --model: {MODEL_RECIPE}; a recipe alone "
                         "trains its own model)"),
    )  # fmt: skip
    sp.add_argument(
        "--seeds",
        type=int,
        default=DEFAULT_SEEDS,
        metavar="N",
        help=f"seeds 0 ... N-1, N from 1 to {MAX_SEEDS}",
    )
    sp.add_argument("--out", metavar="DIR", help="the card's folder (default: cards/NAME)")
    sp.add_argument(
        "--compare",
        nargs="*",
        metavar="RECIPE",
        help="re-run packaged recipes beside it under the same protocol; alone: the ladder's "
        "rungs that fit in a few minutes here",
    )
    sp.add_argument(
        "--board",
        action="append",
        metavar="DIR",
        help="a folder of ladder records and cards for the leaderboard; repeatable (default: "
        "the checkout's benchmarks/results and benchmarks/cards, and ./cards)",
    )
    smaller = sp.add_argument_group("a smaller run than the protocol's (smoke tests; marked)")
    smaller.add_argument("--epochs", type=int, help="epochs instead of the recipe's")
    smaller.add_argument("--train-limit", type=int, help="train on the first N images only")
    smaller.add_argument(
        "--test-limit", type=int, default=0, help="the first N test images only (0: all)"
    )
    sp.add_argument("--device", choices=DEVICES, default="auto", help="where to train")
    data_flags(sp)
    sp.set_defaults(func=cmd_card)


COMMANDS = [add_card]
