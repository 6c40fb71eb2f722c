"""The bottom layer's commands: `fmnist data` and `fmnist models`."""

from __future__ import annotations

from fmnist.cli.common import data_flags, stopped_by_signals


def cmd_data(args) -> int:
    from fmnist import data, data_export

    if args.export:
        from fmnist.files import output_dir

        if args.export[0] not in ("png", "csv"):
            raise data.DataError(f"--export {args.export[0]}: give png or csv")
        output_dir(args.export[1], "--export", data.DataError, fresh=True)
    ds = data.load(args.data_dir, download=args.download)
    if args.export:
        fmt, out = args.export
        with stopped_by_signals():  # a kill still removes the half-written copy
            print(f"wrote {data_export.export(ds, fmt, out)}")
        return 0
    print(f"Fashion-MNIST from {ds.origin}: {ds.directory}")
    for name, digest in ds.sha256.items():
        print(f"  {name:<26} sha256 {digest}  verified")
    train, test = data.class_counts(ds.train_labels), data.class_counts(ds.test_labels)
    print(f"\n  {'class':<14}{'train':>8}{'test':>8}")
    for i, name in enumerate(data.CLASSES):
        print(f"  {i} {name:<12}{train[i]:>8}{test[i]:>8}")
    print(f"  {'total':<14}{train.sum():>8}{test.sum():>8}")
    mean, std = data_export.pixel_stats(ds.train_images)
    print(f"\n  training pixels in [0, 1]: mean {mean:.4f}, standard deviation {std:.4f}")
    return 0


def add_data(sub) -> None:
    sp = sub.add_parser(
        "data", help="where the data came from, checksums, class counts, pixel statistics; export"
    )
    data_flags(sp)
    sp.add_argument(
        "--download", action="store_true", help="download if no copy is found (the default)"
    )
    sp.add_argument(
        "--export",
        nargs=2,
        metavar=("png|csv", "DIR"),
        help="write every image as a PNG in per-class folders, or each split as one CSV",
    )
    sp.set_defaults(func=cmd_data)


def cmd_models(args) -> int:
    from fmnist.models import count_parameters, create_model, describe, flops, list_models, summary

    if not args.summary:
        print(f"{'model':<12}{'parameters':>12}{'statistics':>12}{'MFLOP/image':>14}  what it is")
    for name in list_models():
        model = create_model(name)
        if args.summary:
            print(f"{describe(name)}\n{summary(model)}\n")
        else:
            trainable, stats = count_parameters(model)
            mflop = flops(model) / 1e6
            print(f"{name:<12}{trainable:>12,}{stats:>12,}{mflop:>14,.2f}  {describe(name)}")
    return 0


def add_models(sub) -> None:
    sp = sub.add_parser("models", help="the registered models: what each is, its size and cost")
    sp.add_argument("--summary", action="store_true", help="print each model's layer table")
    sp.set_defaults(func=cmd_models)


COMMANDS = [add_data, add_models]
