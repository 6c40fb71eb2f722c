"""Writing files: atomically (readers see the old file or the new one), strict JSON only,
a group of files all or nothing; what is at a path, the null device told apart."""

from __future__ import annotations

import json
import math
import os
import signal
import stat
import tempfile
import threading
from contextlib import ExitStack, contextmanager
from pathlib import Path

from fmnist.errors import FmnistError

# the mode a new file gets from this process's umask (mkstemp's temporary files are 0600)
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def path_kind(path) -> str | None:
    """What is at `path` (after links): None (nothing), "file", "folder", "null" (the null
    device), or a phrase naming anything else ("a named pipe (FIFO)", "a device", ...)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "a link to nothing" if os.path.islink(path) else None
    except NotADirectoryError:
        return None  # a part of the path is a file: the folder's check says so
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == os.stat(os.devnull).st_rdev:
        return "null"
    return next((kind for test, kind in SPECIAL if test(st.st_mode)), "not a regular file")


SPECIAL = [
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
]


@contextmanager
def signals_held():
    """Ctrl-C, SIGTERM and SIGHUP wait (kept, not lost) until the block ends: a handler that
    raises (fmnist.cli.common.Stopped) must not land between the making of a temporary file
    and the line that remembers its name, or in its removal.

    The handlers are swapped, not the signal mask: a mask holds one thread, while the
    kernel may hand a signal sent to the process to any other (a server's, a loader's),
    and Python then runs the handler in this thread all the same."""
    if threading.current_thread() is not threading.main_thread():
        yield  # Python runs signal handlers in the main thread only: none lands here
        return
    arrived = []
    try:
        with ExitStack() as restore:  # every handler comes back even if one of them raises
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                handler = signal.getsignal(number)
                if handler is None:
                    continue  # installed outside Python: not ours to swap
                signal.signal(number, lambda number, frame: arrived.append(number))
                restore.callback(signal.signal, number, handler)
            yield
    finally:
        if arrived:
            signal.raise_signal(arrived[0])  # now handled as it would have been


def atomic_write(path: Path, write, durable: bool = False) -> None:
    """Call write(tmp_path), then rename over `path`: readers see the old file or the new one.
    The null device is written to, never replaced; a special file (a named pipe, a device)
    at `path` is refused. An error names `path`, never the temporary file.

    `durable` also flushes the file to disk before the rename, so a power cut cannot leave
    the new name pointing at unwritten blocks."""
    path = Path(path)
    kind = path_kind(path)
    if kind == "null":
        write(os.devnull)  # asked to be thrown away
        return
    if kind not in (None, "file"):
        kind = "a folder" if kind == "folder" else kind
        raise FmnistError(f"{path}: {kind}, not a regular file; nothing written there")
    tmp = None
    try:
        with signals_held():
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
            os.close(fd)
        write(tmp)
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; a saved file gets the usual mode
        if durable:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        if not e.errno or e.filename not in (None, tmp):
            raise
        raise OSError(e.errno, e.strerror, os.fspath(path)) from None  # the user's name
    finally:
        with signals_held():
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)


def json_text(obj, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259): a NaN or an infinity anywhere in `obj` raises FmnistError
    naming its field. A figure that is legitimately undefined is None (null) where it is
    made, never NaN."""
    try:
        return json.dumps(obj, indent=indent, allow_nan=False)
    except ValueError:
        where, value = _non_finite(obj) or ("", "")
        raise FmnistError(f"{where or 'a value'} is {value}, not a finite number") from None


def _non_finite(obj, where: str = "") -> tuple[str, float] | None:
    """(field, value) of the first NaN or infinity in `obj`."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where, obj
    items = (
        obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    )
    for key, value in items:
        found = _non_finite(value, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def write_json(path: Path, obj) -> None:
    """`obj` as strict JSON (see json_text), written atomically; nothing is written when a
    figure is NaN or infinite."""
    try:
        text = json_text(obj) + "\n"
    except FmnistError as e:
        raise FmnistError(f"{path}: {e}; nothing written") from None
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_files(folder, contents: dict) -> list[Path]:
    """Write FOLDER/name for each name: bytes or text of `contents`, all or nothing: each
    goes to a temporary file first and the renames come last, so a failure (a full disk)
    leaves the folder as it was, and removes the folders this call made."""
    folder = Path(folder)
    made = make_folders(folder)
    temps: dict[Path, str] = {}
    try:
        for name, content in contents.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
            temps[folder / name] = tmp
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
            os.chmod(tmp, _FILE_MODE)
        for path, tmp in temps.items():
            os.replace(tmp, path)
    except BaseException as e:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.unlink(tmp)
        remove_folders(made)
        if isinstance(e, OSError) and e.errno:
            raise OSError(e.errno, e.strerror, os.fspath(folder)) from None
        raise
    return list(temps)


def make_folders(path: Path) -> list[Path]:
    """Make `path` and its missing parents; return the folders made, deepest first."""
    path = Path(path)
    missing = [p for p in [path, *path.parents] if not os.path.lexists(p)]
    path.mkdir(parents=True, exist_ok=True)
    return missing


def remove_folders(made: list[Path]) -> None:
    """Take back what make_folders made, as far as the folders are empty."""
    for folder in made:
        try:
            os.rmdir(folder)
        except OSError:
            return


def make_writable_dir(path: Path) -> None:
    """Create `path` and prove a file can be written there (OSError otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    probe = path / ".write-test"
    probe.write_text("")
    probe.unlink()
