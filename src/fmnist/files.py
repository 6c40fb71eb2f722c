"""Paths checked before work starts: outputs writable and of the right kind; records read
through one reader that checks their shape and names the file and the field."""

from __future__ import annotations

import csv
import errno
import json
import math
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fmnist.errors import FmnistError
from fmnist.writing import (
    SPECIAL,
    atomic_write,
    json_text,
    make_folders,
    make_writable_dir,
    path_kind,
    remove_folders,
    write_files,
    write_json,
)

__all__ = [  # the writers of fmnist.writing too, for the modules that import them here
    "Output",
    "atomic_write",
    "check_outputs",
    "json_text",
    "make_folders",
    "make_writable_dir",
    "output_dir",
    "output_file",
    "path_kind",
    "read_json",
    "read_numeric_csv",
    "read_record",
    "regular_file",
    "remove_folders",
    "write_files",
    "write_json",
]


def regular_file(
    path, what: str = "file", error: type = FmnistError, missing: str = "no such file"
):
    """`path` as a Path if it names a regular file (after links); otherwise `error` with a
    true one-line reason: missing, a link that loops, a folder, a named pipe, a device."""
    a = "an" if what[:1] in "aeiou" else "a"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise error(
                f"{path}: a symbolic link that loops back on itself, not {a} {what}"
            ) from None
        if e.errno == errno.ENOTDIR:
            raise error(f"{path}: {missing} (a part of the path is a file, not a folder)") from None
        raise error(f"{path}: cannot read it ({e.strerror or e})") from None
    for test, kind in [(stat.S_ISDIR, "a folder"), *SPECIAL]:
        if test(mode):
            raise error(f"{path}: {kind}, not {a} {what}; give a regular file")
    if not stat.S_ISREG(mode):
        raise error(f"{path}: not a regular file; give {a} {what}")
    return Path(path)


def read_json(path, what: str, missing: str = "no such file", error: type = FmnistError):
    """A JSON file's content; a missing, special or unreadable file raises `error` as one
    line."""
    regular_file(path, what, error, missing)
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise error(f"{path}: not a readable {what} ({_one_line(e)})") from None


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:197] + "..."


# ----------------------------------------------------------------------------
# The output plan: every place a command will write, checked before its work starts
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """One place a command will write: `path` as the user gave it and the `flag` it came
    with (for the message). A file, or a `folder` of outputs with the file names it will
    write `inside` it (`fresh`: the folder must be new or empty). A file's missing folders
    are made at the end with `new_folders`; a folder's always are."""

    path: str | os.PathLike
    flag: str = ""
    folder: bool = False
    inside: tuple[str, ...] = ()
    fresh: bool = False
    new_folders: bool = False


def check_outputs(*outputs: Output, error: type = FmnistError) -> list[Path]:
    """The paths of `outputs`, each checked before any work: a file's place is not a folder,
    '.', a named pipe, a device (the null device excepted: what goes there is thrown away)
    or a socket, and its folder exists (or can be made) and is writable; a folder is one, or
    can be made under a writable folder, and no name it will hold is taken by a folder or a
    special file. Creates nothing; the first problem raises `error`, naming the user's
    path."""
    paths = []
    for out in outputs:
        where = f"{out.flag} {os.fspath(out.path)}" if out.flag else os.fspath(out.path)
        try:
            check = _check_folder if out.folder else _check_file
            paths.append(check(out, where, error))
        except OSError as e:  # a name too long, a loop of links, ...
            raise error(f"{where}: {e.strerror or e}") from None
        except (UnicodeError, ValueError):  # a NUL byte, or no encoding for the name
            raise error(f"{where}: not a name this system can give a file") from None
    return paths


def output_file(path, flag: str, error: type = FmnistError, new_folders: bool = False) -> Path:
    """`path` where one file will be written, checked (see check_outputs)."""
    return check_outputs(Output(path, flag, new_folders=new_folders), error=error)[0]


def output_dir(path, flag: str, error: type = FmnistError, inside=(), fresh=False) -> Path:
    """`path` where a folder of outputs will go, checked (see check_outputs)."""
    return check_outputs(Output(path, flag, True, tuple(inside), fresh), error=error)[0]


def _check_name(name: str, where: str, error: type) -> None:
    if len(os.fsencode(name)) > 255:  # bytes in a name on Linux's and macOS's file systems
        raise error(f"{where}: the name {name[:40]}... is too long for a file")


def _check_file(out: Output, where: str, error: type) -> Path:
    text = os.fspath(out.path)
    path = Path(text)
    if not text:
        raise error(f"{out.flag or 'output'}: give a file name")
    if text.endswith(("/", os.sep)) or path.name in ("", ".", ".."):
        raise error(f"{where}: a folder; give a file name")
    _check_name(path.name, where, error)
    kind = path_kind(path)
    if kind == "null":
        return path
    if kind == "folder":
        raise error(f"{where}: a folder; give a file name")
    if kind not in (None, "file"):
        raise error(f"{where}: {kind}, not a regular file; name a file or a new one")
    if out.new_folders:
        _check_new_folder(path.parent, where, error)
    else:
        folder = path.parent
        if path_kind(folder) != "folder":
            if os.path.lexists(folder):
                raise error(f"{where}: {folder} is not a folder")
            raise error(f"{where}: folder {folder} does not exist")
        _check_writable(folder, where, error)
    return path


def _check_folder(out: Output, where: str, error: type) -> Path:
    text = os.fspath(out.path)
    path = Path(text)
    if not text:
        raise error(f"{out.flag or 'output'}: give a folder")
    for name in out.inside:
        _check_name(name, where, error)
    kind = path_kind(path)
    if kind is None:
        _check_new_folder(path, where, error)
        return path
    if kind == "file":
        raise error(f"{where}: is a file, not a folder")
    if kind != "folder":
        raise error(f"{where}: {'a file' if kind == 'null' else kind}, not a folder")
    if out.fresh and any(os.scandir(path)):
        raise error(f"{where}: exists and is not an empty folder; name a new one")
    _check_writable(path, where, error)
    for name in out.inside:
        taken = path_kind(path / name)
        if taken not in (None, "file"):
            what = "a folder" if taken == "folder" else taken
            raise error(f"{where}: {path / name} is {what}, where a file of that name goes")
    return path


def _check_new_folder(path: Path, where: str, error: type) -> None:
    """`path` may be made: its nearest existing ancestor is a writable folder."""
    base = next((p for p in [path, *path.parents] if os.path.lexists(p)), Path("."))
    kind = path_kind(base)
    if kind != "folder":
        what = "is" if base == path else f"is under {base}, which is"
        raise error(
            f"{where}: {what} {'a file' if kind in ('file', 'null') else kind}, not a folder"
        )
    _check_writable(base, where, error)


def _check_writable(folder: Path, where: str, error: type) -> None:
    """Prove a file can be made in `folder`; leaves nothing."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".fmnist-write-test.", dir=folder)
    except OSError as e:
        raise error(f"{where}: cannot write in {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)


NUMBER = "number"  # an int or a finite float, never a bool


def is_number(value) -> bool:
    """A NUMBER: an int within 2**53 (beyond it no exact float, and 10**400 none at all) or a
    finite float, never a bool."""
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= 2**53
    return isinstance(value, float) and math.isfinite(value)


def _fits(value, kind) -> bool:
    if kind == NUMBER:
        return is_number(value)
    if isinstance(kind, tuple):
        return any(_fits(value, k) for k in kind)
    if kind is None:
        return value is None
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _kind_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_kind_name(k) for k in kind)
    if kind is None:
        return "null"
    if kind == NUMBER:
        return "a finite number"
    return {dict: "an object", list: "a list", str: "a string", int: "a whole number",
            bool: "true or false"}.get(kind, kind.__name__)  # fmt: skip


def check_fields(obj, fields: dict, where: str, error: type = FmnistError) -> dict:
    """Raise `error` naming `where` and the field unless `obj` is a JSON object whose
    `fields` (name: kind; a name ending in '?' may be absent) have those kinds."""
    if not isinstance(obj, dict):
        raise error(f"{where}: expected a JSON object, found {type(obj).__name__}")
    for name, kind in fields.items():
        optional = name.endswith("?")
        name = name.rstrip("?")
        if name not in obj:
            if optional:
                continue
            raise error(f"{where}: field {name!r} is missing")
        if not _fits(obj[name], kind):
            raise error(
                f"{where}: field {name!r} must be {_kind_name(kind)}, got {obj[name]!r:.60}"
            )
    return obj


def read_record(path, what: str, fields: dict, error: type = FmnistError) -> dict:
    """A JSON record whose shape is checked (see check_fields)."""
    return check_fields(read_json(path, what, error=error), fields, str(path), error)


def read_numeric_csv(
    path, what: str, columns: tuple[str, ...], error: type = FmnistError
) -> list[dict]:
    """Rows of a CSV file whose `columns` are all present and numeric (empty = missing)."""
    regular_file(path, what, error)
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            header = reader.fieldnames or []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise error(f"{path}: not a readable {what} ({e})") from None
    missing = [c for c in columns if c not in header]
    if missing:
        raise error(f"{path}: not a {what}: column {', '.join(missing)} missing")
    if not rows:
        raise error(f"{path}: {what} has no rows")
    for i, row in enumerate(rows, 2):
        for c in columns:
            value = row.get(c)
            if value in ("", None):
                continue
            try:
                float(value)
            except ValueError:
                raise error(
                    f"{path}: line {i}, column {c!r}: not a number ({value!r:.40})"
                ) from None
    return rows
