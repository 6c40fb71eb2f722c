"""A model of your own: `path/to/file.py:ClassName` or `package.module:ClassName`.

Any torch.nn.Module whose constructor needs no argument beyond keyword arguments given as a
JSON object, taking float pixels in [0, 1] shaped (N, 1, 28, 28) and returning (N, 10)
logits. A spec is a user model's when it holds a ':' (registry names never do).

The source is read once, hashed (SHA-256) and those same bytes executed, so the digest a
record keeps is that of the code that ran. A model file never names code for fmnist to
import: loading one back needs the source named again (checkpoint.load_model's model_code).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fmnist.errors import ModelError
from fmnist.files import regular_file
from fmnist.models.limits import meta_cost

USER = "user"  # a model description's "model" for a user model (no registry name)
SPEC_HELP = "path/to/file.py:ClassName or package.module:ClassName"
CHECK_BATCH = (8, 1, 28, 28)  # the one batch a new user model must answer before training
MAX_ARGS_CHARS = 100_000  # --model-args: keyword arguments, not data


class ChangedCodeError(ModelError):
    """The source named differs (SHA-256) from the one a model was trained with."""


def is_user_spec(name: str) -> bool:
    return isinstance(name, str) and ":" in name


def one_line(e: BaseException, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:limit]}" if text else type(e).__name__


def parse_spec(spec: str) -> tuple[str, str]:
    """(source, class name) of `file.py:Class` or `package.module:Class`."""
    source, _, name = str(spec).rpartition(":")
    if not source or not name.isidentifier():
        raise ModelError(f"model {spec!r}: give a model of your own as {SPEC_HELP}")
    return source, name


def is_module_name(source: str) -> bool:
    return not source.endswith(".py") and all(p.isidentifier() for p in source.split("."))


@dataclass(frozen=True)
class Source:
    """Code as read: where it is, its digest, and (for a file) the bytes that were hashed."""

    given: str  # as the user wrote it: a .py path or a module name
    path: Path  # the source file, resolved
    sha256: str
    data: bytes | None  # a file's bytes, executed as hashed; None for an installed module


def read_source(source: str) -> Source:
    """A .py file's bytes and digest, or an importable module's source file and digest
    (found without running the module itself)."""
    if is_module_name(source):
        try:
            found = importlib.util.find_spec(source)
        except Exception as e:  # a parent package that fails to import
            raise ModelError(f"module {source}: cannot import it ({one_line(e)})") from None
        if found is None or not found.origin or not Path(found.origin).is_file():
            raise ModelError(
                f"module {source}: no such module, or none with a Python source file; give "
                f"{SPEC_HELP}"
            )
        path = Path(found.origin).resolve()
        return Source(source, path, hashlib.sha256(path.read_bytes()).hexdigest(), None)
    path = Path(source).expanduser()
    if path.suffix != ".py":
        raise ModelError(f"{source}: not a Python file; give {SPEC_HELP}")
    regular_file(path, "Python file", ModelError, "no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ModelError(f"{source}: cannot read it ({e.strerror or e})") from None
    return Source(source, path.resolve(), hashlib.sha256(data).hexdigest(), data)


_LOADED: dict[tuple[str, str], object] = {}  # (path, sha256) -> module: each version runs once


def import_source(src: Source):
    """The module of `src`: a file's hashed bytes executed under a name of their own."""
    if src.data is None:
        try:
            return importlib.import_module(src.given)
        except (Exception, SystemExit) as e:
            raise ModelError(f"module {src.given}: cannot import it ({one_line(e)})") from None
    key = (str(src.path), src.sha256)
    if key in _LOADED:
        return _LOADED[key]
    try:
        code = compile(src.data, str(src.path), "exec")
    except (SyntaxError, ValueError) as e:
        where = f" line {e.lineno}" if getattr(e, "lineno", None) else ""
        raise ModelError(f"{src.given}:{where} not valid Python ({one_line(e)})") from None
    # a name of its own per version, so two versions of one file never share a module
    name = f"fmnist_user_{src.path.stem}_{src.sha256[:16]}"
    spec = importlib.util.spec_from_file_location(name, src.path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look a class's module up here
    try:
        exec(code, module.__dict__)
    except (Exception, SystemExit) as e:
        del sys.modules[name]
        raise ModelError(f"{src.given}: running it failed ({one_line(e)})") from None
    _LOADED[key] = module
    return module


def class_from(src: Source, name: str) -> type:
    module = import_source(src)
    cls = getattr(module, name, None)
    if cls is None:
        raise ModelError(f"{src.given}: has no class {name}")
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise ModelError(f"{src.given}: {name} is not a torch.nn.Module subclass")
    return cls


def load_user_class(spec: str) -> type:
    """The class `spec` names, its source imported (once per version)."""
    source, name = parse_spec(spec)
    return class_from(read_source(source), name)


def check_model_args(args, where: str = "--model-args") -> dict:
    """Keyword arguments for a constructor: a JSON object (as text or a dict)."""
    if args is None:
        return {}
    if isinstance(args, str):
        if len(args) > MAX_ARGS_CHARS:
            raise ModelError(f"{where}: {len(args):,} characters; arguments, not data")
        try:
            args = json.loads(args)
        except (json.JSONDecodeError, RecursionError) as e:
            raise ModelError(
                f"{where}: not JSON ({one_line(e, 120)}); e.g. '{{\"width\": 64}}'"
            ) from None
    if not isinstance(args, dict):
        raise ModelError(
            f"{where}: must be a JSON object of keyword arguments, e.g. '{{\"width\": 64}}'; "
            f"got {type(args).__name__}"
        )
    bad = [k for k in args if not isinstance(k, str) or not k.isidentifier()]
    if bad:
        raise ModelError(f"{where}: {bad[0]!r} is not an argument name")
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ModelError(f"{where}: arguments must be plain JSON values ({one_line(e)})") from None
    return dict(args)


def user_model_info(spec: str, args=None) -> dict:
    """What a record keeps of a user model: spec, path, sha256, class, args."""
    source, name = parse_spec(spec)
    src = read_source(source)
    return info_of(spec, src, name, check_model_args(args))


def info_of(spec: str, src: Source, name: str, args: dict) -> dict:
    return {"spec": spec, "path": str(src.path), "sha256": src.sha256, "class": name, "args": args}


def build_user_model(spec: str, args=None, *, expect_sha256: str | None = None) -> nn.Module:
    """The model `spec` names, built with `args`: its cost counted on the meta device first
    (fmnist.models.limits), then built for real and checked on one batch. With
    `expect_sha256`, a source of another digest is refused (ChangedCodeError) before it
    runs. The model carries `fmnist_user` (user_model_info's record)."""
    source, name = parse_spec(spec)
    args = check_model_args(args)
    src = read_source(source)
    if expect_sha256 is not None and src.sha256 != expect_sha256:
        raise ChangedCodeError(
            f"{src.given}: SHA-256 {src.sha256[:12]}... differs from the "
            f"{expect_sha256[:12]}... the model was trained with"
        )
    cls = class_from(src, name)
    what = f"model {spec}"
    meta_cost(lambda: cls(**args), what)  # its size, before any memory is taken
    try:
        model = cls(**args)
    except Exception as e:
        raise ModelError(f"{what}: the constructor failed ({one_line(e)})") from None
    model.fmnist_user = info_of(spec, src, name, args)
    if not hasattr(model, "model_name"):
        model.model_name = name  # what summaries and messages call it
    check_user_forward(model, what)
    return model


def check_user_forward(model: nn.Module, what: str = "the model") -> None:
    """One batch of (8, 1, 28, 28) pixels in [0, 1] must give (8, 10) finite logits. Run in
    eval mode without gradients, the global random state untouched, so the check changes
    neither the weights nor BatchNorm's statistics nor the run's seeded draws."""
    x = torch.rand(CHECK_BATCH, generator=torch.Generator().manual_seed(0))
    was_training = model.training
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            out = model(x.to(device))
    except Exception as e:
        raise ModelError(
            f"{what}: forward on a {tuple(CHECK_BATCH)} batch failed ({one_line(e)})"
        ) from None
    finally:
        model.train(was_training)
    want = (CHECK_BATCH[0], 10)
    if not isinstance(out, torch.Tensor):
        raise ModelError(
            f"{what}: forward returned a {type(out).__name__}, not a tensor of {want} logits"
        )
    if tuple(out.shape) != want:
        raise ModelError(
            f"{what}: forward returned shape {tuple(out.shape)} for a {tuple(CHECK_BATCH)} "
            f"batch; it must return {want} logits (N images, 10 classes)"
        )
    if not out.is_floating_point():
        raise ModelError(f"{what}: forward returned {out.dtype}, not floating-point logits")
    if not bool(torch.isfinite(out).all()):
        raise ModelError(
            f"{what}: forward returned NaN or infinite logits on a {want[0]}-image batch"
        )


def create_any(name: str, args=None) -> nn.Module:
    """A registry model by name, or a user model by spec, with keyword arguments."""
    from fmnist.models.registry import create_model

    if is_user_spec(name):
        return build_user_model(name, args)
    return create_model(name, **check_model_args(args))
