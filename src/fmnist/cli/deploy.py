"""Deployment commands: predict, serve, export."""

from __future__ import annotations

import argparse

from fmnist.cli.common import model_code, model_flag


def cmd_predict(args) -> int:
    from fmnist.deploy.predict import ImageError, format_results, predict_files, write_csv
    from fmnist.files import json_text, output_file

    if args.csv:
        output_file(args.csv, "--csv", ImageError)
    results = predict_files(args.model, args.images, args.top_k, **model_code(args))
    if args.csv:
        write_csv(args.csv, results)
        print(f"wrote {len(results)} predictions to {args.csv}")
    elif args.json:
        print(json_text(results))
    else:
        print(format_results(results))
    return 0


def add_predict(sub) -> None:
    sp = sub.add_parser("predict", help="classify your own images (photos or 28x28 images)")
    model_flag(sp)
    sp.add_argument("images", metavar="IMAGE_OR_DIR", nargs="+", help="image files or folders")
    sp.add_argument("--top-k", type=int, default=3, help="classes shown per image")
    out = sp.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print one JSON list")
    out.add_argument("--csv", metavar="FILE", help="write a CSV file (file, rank, label, ...)")
    sp.set_defaults(func=cmd_predict)


def cmd_serve(args) -> int:
    from fmnist.deploy.serve import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        max_concurrent=args.max_concurrent,
        **model_code(args),
    )
    return 0


def concurrency(text: str) -> int:
    """--max-concurrent's value, checked here so that a wrong one is refused at once; serve()
    checks it again for callers from Python."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 1024:
        raise argparse.ArgumentTypeError(f"{text!r}: give 1 to 1024 requests at once")
    return n


def add_serve(sub) -> None:
    sp = sub.add_parser("serve", help="HTTP API and web page for a model")
    model_flag(sp)
    sp.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sp.add_argument("--port", type=int, default=8000, help="port to listen on")
    sp.add_argument(
        "--max-concurrent",
        type=concurrency,
        default=8,
        metavar="N",
        help="requests with a body (uploads) handled at once, 1 to 1024: each holds up to "
        "its 10 MB body and its decoded image in memory; the others wait their turn, up to "
        "10 s, then get 503 with Retry-After",
    )
    sp.set_defaults(func=cmd_serve)


def cmd_export(args) -> int:
    from fmnist.deploy.export import export

    for path in export(args.model, args.format, out=args.out, **model_code(args)):
        print(f"wrote {path}")
    return 0


def add_export(sub) -> None:
    sp = sub.add_parser("export", help="write the model as ONNX or Keras")
    model_flag(sp)
    sp.add_argument("--format", required=True, choices=["onnx", "keras"], help="file format")
    sp.add_argument(
        "--out",
        help="output file (default: beside the model, or MODEL.onnx in this folder for a "
        "packaged model; keras writes both .keras and .h5, or the one --out names)",
    )
    sp.set_defaults(func=cmd_export)


COMMANDS = [add_predict, add_serve, add_export]
