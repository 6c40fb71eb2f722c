"""Save and load models and training state: safetensors tensors plus JSON. Never unpickles.

A model file `X.safetensors` is described by `X.json` beside it: the architecture's
registry name and arguments (enough to rebuild it), the class names and its metrics.
A run directory holds `model.safetensors` and `model.json`.

A training state (`checkpoint.safetensors` in an unfinished run) is one file: the tensors
(weights, optimizer moments, random-generator states) and, in its metadata, a JSON record
of everything else. One file means one atomic rename: a kill leaves the old state or the new.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from fmnist.data import CLASSES
from fmnist.errors import FmnistError
from fmnist.files import atomic_write, read_json, regular_file, write_json
from fmnist.models import ModelError, create_model, model_args
from fmnist.models.user import USER, ChangedCodeError, build_user_model, is_module_name, parse_spec

FORMAT = "fmnist-model/1"
STATE_FORMAT = "fmnist-train-state/1"


class CheckpointError(FmnistError):
    pass


# Models that come with the package (fmnist/weights/NAME.safetensors + NAME.json)
WEIGHTS = Path(__file__).resolve().parent / "weights"
PACKAGED = {
    "default": "the tutorial's CNN as `make train` makes it (the seed recipe, seed 0)",
    "best": "the best recipe's wide_cnn (models' results table: 94.72%, 94.85% with TTA)",
}


def resolve(path: str | os.PathLike) -> tuple[Path, Path]:
    """(weights, description) for a packaged model's name (default, best), a run directory,
    a .safetensors file or its .json."""
    if str(path) in PACKAGED:
        path = WEIGHTS / f"{path}.safetensors"
    p = Path(path)
    if not p.exists() and not os.path.lexists(p):
        raise CheckpointError(
            f"{path}: no such file or directory; give a run directory or a model file"
        )
    if p.is_dir():
        p = p / "model.safetensors"
    elif p.suffix == ".json":
        p = p.with_suffix(".safetensors")
    elif p.suffix != ".safetensors":
        raise CheckpointError(
            f"{path}: not a model; give a run directory or a .safetensors file "
            "(with its .json beside it)"
        )
    desc = p.with_suffix(".json")
    for f in (p, desc):
        regular_file(
            f, "model file", CheckpointError, "no such file; give a run directory or a model file"
        )
    return p, desc


def write_tensors(path: Path, tensors: dict, metadata: dict, durable: bool = False) -> None:
    """A safetensors file written atomically. safetensors reports a failed write (a full
    disk) as its own error, not an OSError: it becomes one, with the errno it names, so
    that it reads as every other failed write does, naming `path`."""

    def write(tmp):
        try:
            save_file(tensors, tmp, metadata=metadata)
        except SafetensorError as e:
            found = re.search(r"os error (\d+)", str(e))
            code = int(found.group(1)) if found else errno.EIO
            raise OSError(code, os.strerror(code), tmp) from None

    atomic_write(path, write, durable=durable)


def save_model(
    model: nn.Module,
    path: str | os.PathLike,
    metrics: dict | None = None,
    record: dict | None = None,
) -> Path:
    """Write `path` (a .safetensors file) and its .json description, each atomically.

    `record` (the run's configuration, data digests and environment) is kept beside the
    metrics, so a model file copied out of its run still says what produced it."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_tensors(path, state, {"format": FORMAT})
    user = getattr(model, "fmnist_user", None)  # a model of the user's code (models.user)
    if user is not None:
        kind = {"model": USER, "args": user["args"], "user": {k: user[k] for k in USER_FIELDS}}
    else:
        kind = {"model": model.model_name, "args": model_args(model)}
    write_json(
        path.with_suffix(".json"),
        {
            "format": FORMAT,
            **kind,
            "classes": list(CLASSES),
            "input": "float32 (N, 1, 28, 28), pixels in [0, 1], dark background",
            "metrics": metrics or {},
            **({"record": record} if record else {}),
        },
    )
    return path


def read_description(path: str | os.PathLike) -> dict:
    """A model's description, its shape checked: format, model name, arguments, classes."""
    _, desc = resolve(path)
    info = read_json(desc, "model description", error=CheckpointError)
    if not isinstance(info, dict) or info.get("format") != FORMAT or "model" not in info:
        raise CheckpointError(f"{desc}: not an fmnist model description (format {FORMAT})")
    if not isinstance(info["model"], str):
        raise CheckpointError(f"{desc}: field 'model' must be a model's name")
    if not isinstance(info.get("args", {}), dict):
        raise CheckpointError(f"{desc}: field 'args' must be an object of the model's arguments")
    if info["model"] == USER:
        check_user_record(info.get("user"), desc)
    classes = info.get("classes")
    if classes is not None and (
        not isinstance(classes, list)
        or not all(isinstance(c, str) and c.strip() and len(c) <= 100 for c in classes)
    ):
        raise CheckpointError(f"{desc}: field 'classes' must be a list of class names")
    check_metrics(info.get("metrics", {}), desc)
    return info


# a description's "metrics": figures shown as they are (/health, predict's header, the
# ONNX metadata), so only flat, finite, short values
MAX_METRICS, MAX_TEXT = 100, 200


def check_metrics(metrics, desc: Path) -> None:
    """Refuse a "metrics" field that is not an object of at most MAX_METRICS figures, each
    a finite number, true/false, null or a string of at most MAX_TEXT characters."""
    if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
        raise CheckpointError(
            f"{desc}: field 'metrics' must be an object of at most {MAX_METRICS} figures"
        )
    for key, value in metrics.items():
        if isinstance(value, str):
            fits = len(value) <= MAX_TEXT
        elif isinstance(value, int):  # bools too
            fits = abs(value) <= 2**53
        else:
            fits = value is None or isinstance(value, float) and math.isfinite(value)
        if len(key) > MAX_TEXT or not fits:
            raise CheckpointError(
                f"{desc}: metrics field {key[:40]!r} must be a finite number, true/false, "
                f"null or a string of at most {MAX_TEXT} characters, got {str(value)[:40]!r}"
            )


# what a user model's description keeps of its code ("args" sits beside, as a registry model's)
USER_FIELDS = ("spec", "path", "sha256", "class")


def check_user_record(user, desc: Path) -> None:
    """A user model's "user" field: where its code was and the digest it had."""
    ok = isinstance(user, dict) and all(isinstance(user.get(k), str) for k in USER_FIELDS)
    if ok:
        digest = user["sha256"]
        ok = (
            len(digest) == 64
            and all(c in "0123456789abcdef" for c in digest)
            and user["class"].isidentifier()
            and len(user["path"]) <= 4096
            and len(user["spec"]) <= 4096
        )
    if not ok:
        raise CheckpointError(
            f"{desc}: field 'user' must name the model's code: spec, path, sha256 and class"
        )


def load_model(
    path: str | os.PathLike,
    device: str | torch.device = "cpu",
    *,
    model_code: str | os.PathLike | None = None,
    allow_changed_code: bool = False,
) -> nn.Module:
    """Rebuild the architecture from the description and load the weights (eval mode).

    Checked at this one door: the description (see read_description), the arguments'
    ranges, as many class names as the model has outputs, every tensor's name, shape and
    dtype against the architecture, and weights that are all finite.

    A model of the user's own code (description "model": "user") is rebuilt only from the
    code the caller names in `model_code` (a .py file or a module name), never from the
    path the description holds; a source whose SHA-256 differs from the recorded one is
    refused unless `allow_changed_code`."""
    weights, desc = resolve(path)
    info = read_description(path)
    if info["model"] == USER:
        model = user_model(info, desc, model_code, allow_changed_code)
        outputs = len(CLASSES)  # check_user_forward held it to 10 logits
    else:
        try:
            model = create_model(info["model"], **info.get("args", {}))
        except (ModelError, TypeError) as e:
            raise CheckpointError(f"{desc}: {e}") from None
        outputs = getattr(model.args, "num_classes", len(CLASSES))
    classes = info.get("classes")
    if (
        classes is None
        and outputs != len(CLASSES)
        or classes is not None
        and len(classes) != outputs
    ):
        raise CheckpointError(
            f"{desc}: {len(classes or CLASSES)} class names for a model with {outputs} outputs"
        )
    regular_file(weights, "model file", CheckpointError)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a valid safetensors file ({e})") from None
    expected = model.state_dict()
    for name, tensor in state.items():
        want = expected.get(name)
        if want is not None and tensor.dtype != want.dtype:
            raise CheckpointError(
                f"{weights}: tensor {name!r} is {tensor.dtype}, model {model_label(info)!r} "
                f"needs {want.dtype}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{weights}: tensor {name!r} holds NaN or infinite values")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = " ".join(str(e).split())
        raise CheckpointError(
            f"{weights}: weights do not fit model {model_label(info)!r} ({first[:300]})"
        ) from None
    return model.to(device).eval()


def user_model(info: dict, desc: Path, model_code, allow_changed_code: bool) -> nn.Module:
    """The user model a description records, built from the code the caller named."""
    user = info["user"]
    recorded, name = parse_spec(user["spec"])
    if model_code is None:
        code = recorded if is_module_name(recorded) else user["path"]
        raise CheckpointError(
            f"{desc}: a model of your own code ({name} in {user['path']}); fmnist imports no "
            f"code a model file names: give it with --model-code {code} "
            "(model_code= in Python)"
        )
    code = str(model_code)
    if ":" in code:  # file.py:Class given: the class must be the recorded one
        code, given = parse_spec(code)
        if given != name:
            raise CheckpointError(f"{desc}: the model's class is {name}, not {given}")
    try:
        return build_user_model(
            f"{code}:{name}",
            info.get("args", {}),
            expect_sha256=None if allow_changed_code else user["sha256"],
        )
    except ChangedCodeError as e:
        raise CheckpointError(
            f"{e} ({user['path']}); give the code it was trained with, or "
            "--allow-changed-code to load these weights into the changed code"
        ) from None
    except ModelError as e:
        raise CheckpointError(f"{desc}: {e}") from None


def model_label(info: dict) -> str:
    """A described model's name for messages: its registry name, or a user model's spec."""
    return info["user"]["spec"] if info["model"] == USER else info["model"]


def save_state(path: str | os.PathLike, tensors: dict[str, torch.Tensor], record: dict) -> None:
    """Write a training state atomically and durably; the previous one stays if this fails."""
    path = Path(path)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {"format": STATE_FORMAT, "record": json.dumps(record)}
    try:
        write_tensors(path, tensors, metadata, durable=True)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot write the checkpoint ({e.strerror or e})") from None


def load_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, record) of a training state written by save_state."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a valid safetensors file ({e})") from None
    if metadata.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not an fmnist training state (format {STATE_FORMAT})")
    try:
        record = json.loads(metadata["record"])
    except (KeyError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: training state without a readable record ({e})") from None
    return tensors, record
