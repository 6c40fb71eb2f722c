"""Run the real `fmnist` command line many times, fast: one process imports the package
once, then forks a child per command, which runs `fmnist.cli.main` exactly as the
console script does, in the folder it is given, with its own stdout and stderr.

    with CommandServer() as run:
        result = run(["predict", "x.png"], cwd=tmp, timeout=20)
        result.rc, result.stdout, result.stderr, result.hung
        run(["train", ...], cwd=tmp, file_limit=300_000)  # a disk that fills (RLIMIT_FSIZE)

An exception that escapes `main` prints its traceback and ends with status 1, as Python
would. A child still running after `timeout` seconds is killed and reported as hung.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# the stages a command imports lazily, imported once here so a child starts at once
PRELOAD = (
    "fmnist.cli",
    "fmnist.training.train",
    "fmnist.training.tune",
    "fmnist.analysis.report",
    "fmnist.analysis.results",
    "fmnist.analysis.bench",
    "fmnist.deploy.predict",
    "fmnist.deploy.export",
    # elementwise operations on the meta device import it on first use: models are costed
    # there before they are built (fmnist.models.limits), 2 s in every child otherwise
    "torch._dynamo",
)


@dataclass
class Result:
    rc: int | None
    stdout: str
    stderr: str
    hung: bool


def _child(argv: list[str], cwd: str, out: str, err: str, file_limit: int | None) -> None:
    code = 1
    try:
        os.chdir(cwd)
        if file_limit:
            # no file may grow past file_limit bytes; SIGXFSZ ignored, so a write past it
            # fails with EFBIG (an OSError) as on a full disk, instead of killing the child
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
        fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(fd, 0)
        for path, target in ((out, 1), (err, 2)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(fd, target)
            os.close(fd)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
        sys.argv = ["fmnist", *argv]
        from fmnist.cli import main

        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        code = 0 if code is None else code
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)


def serve() -> None:
    """Read one JSON request per line on stdin, answer one JSON line on stdout."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    reply = sys.stdout
    for line in sys.stdin:
        req = json.loads(line)
        with tempfile.TemporaryDirectory() as io_dir:
            out, err = Path(io_dir, "out"), Path(io_dir, "err")
            pid = os.fork()
            if pid == 0:
                os.setpgid(0, 0)
                _child(req["argv"], req["cwd"], str(out), str(err), req.get("file_limit"))
            deadline = time.monotonic() + req["timeout"]
            status, hung = None, False
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    hung = True
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.005)
            rc = None if hung else os.waitstatus_to_exitcode(status)
            res = {
                "rc": rc,
                "stdout": out.read_text(errors="replace") if out.exists() else "",
                "stderr": err.read_text(errors="replace") if err.exists() else "",
                "hung": hung,
            }
        reply.write(json.dumps(res) + "\n")
        reply.flush()


class CommandServer:
    def __init__(self, env: dict | None = None):
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}

    def __enter__(self):
        self.proc = subprocess.Popen(
            [sys.executable, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        return self

    def __call__(
        self, argv: list[str], cwd, timeout: float = 60, file_limit: int | None = None
    ) -> Result:
        req = {"argv": [str(a) for a in argv], "cwd": str(cwd), "timeout": timeout}
        req["file_limit"] = file_limit
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the command server died")
        return Result(**json.loads(line))

    def __exit__(self, *exc):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


if __name__ == "__main__":
    serve()
