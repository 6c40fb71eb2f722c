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
from pathlib import Path

from fmnist.errors import FmnistError

# the mode a new file gets from this process's umask (mkstemp's temporary files are 0600)
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK

__all__ = [
    "atomic_write",
    "make_writable_dir",
    "output_dir",
    "output_file",
    "read_json",
    "read_numeric_csv",
    "read_record",
    "regular_file",
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
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    for test, kind in kinds:
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


def _probe(folder: Path) -> None:
    """Prove a file can be created in `folder` (OSError otherwise); leaves nothing."""
    fd, tmp = tempfile.mkstemp(prefix=".fmnist-write-test.", dir=folder)
    os.close(fd)
    os.unlink(tmp)


def _existing_ancestor(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if os.path.lexists(parent):
            return parent
    return Path(".")


def output_file(path, flag: str, error: type = FmnistError, new_folders: bool = False) -> Path:
    """`path` where a file will be written: not a folder or special file, its folder an
    existing, writable folder (or, with `new_folders`, one that can be made). Writes
    nothing."""
    where = f"{flag} {path}" if flag else str(path)
    try:
        return _output_file(Path(path), where, error, new_folders)
    except OSError as e:  # a name too long, a loop of links, ...
        raise error(f"{where}: {e.strerror or e}") from None


def _output_file(path: Path, where: str, error: type, new_folders: bool) -> Path:
    if path.is_dir():
        raise error(f"{where}: a folder; give a file name")
    if os.path.lexists(path) and not path.is_file():
        raise error(f"{where}: exists and is not a regular file")
    folder = path.parent
    if new_folders:
        try:
            output_dir(folder, "", error)
        except error as e:
            raise error(f"{where}: {e}") from None
        return path
    if not folder.is_dir():
        if os.path.lexists(folder):
            raise error(f"{where}: {folder} is not a folder")
        raise error(f"{where}: folder {folder} does not exist")
    try:
        _probe(folder)
    except OSError as e:
        raise error(f"{where}: cannot write in {folder} ({e.strerror or e})") from None
    return path


def output_dir(path, flag: str, error: type = FmnistError) -> Path:
    """`path` where a folder of outputs will go: an existing writable folder, or a new one
    whose nearest existing ancestor is a writable folder. Creates nothing."""
    where = f"{flag} {path}" if flag else str(path)
    try:
        return _output_dir(Path(path), where, error)
    except OSError as e:
        raise error(f"{where}: {e.strerror or e}") from None


def _output_dir(path: Path, where: str, error: type) -> Path:
    base = _existing_ancestor(path)
    if not base.is_dir():
        what = "is" if base == path else f"is under {base}, which is"
        raise error(f"{where}: {what} a file, not a folder")
    try:
        _probe(base)
    except OSError as e:
        raise error(f"{where}: cannot write in {base} ({e.strerror or e})") from None
    return path


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


# ----------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------


def atomic_write(path: Path, write, durable: bool = False) -> None:
    """Call write(tmp_path), then rename over `path`: readers see the old file or the new one.

    `durable` also flushes the file to disk before the rename, so a power cut cannot leave
    the new name pointing at unwritten blocks."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; a saved file gets the usual mode
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=False)
            f.write("\n")

    atomic_write(path, write)


def make_writable_dir(path: Path) -> None:
    """Create `path` and prove a file can be written there (OSError otherwise), before
    any long work whose results would go there."""
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".write-test"
    probe.write_text("")
    probe.unlink()
