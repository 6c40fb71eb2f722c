"""fmnist tune: two workers on one study database (SQLite, then a real PostgreSQL server)."""

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fmnist import cli
from fmnist.errors import FmnistError
from fmnist.training.config import make_config

optuna = pytest.importorskip("optuna", reason="Optuna is in the [tune] extra")
from fmnist.training import tune  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ["--epochs", "1", "--train-limit", "1000", "--device", "cpu", "--no-download"]


def workers(storage: str, tmp_path: Path, trials: int) -> None:
    """Two `fmnist tune` processes started together on one study; both must finish."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fmnist",
                "tune",
                "--trials",
                str(trials),
                "--study",
                "s",
                "--storage",
                storage,
                "--out",
                str(tmp_path / f"w{i}"),
                *TRIAL,
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    study = optuna.load_study(study_name="s", storage=tune.open_storage(storage))
    state = optuna.trial.TrialState
    assert sorted(t.number for t in study.trials) == list(range(2 * trials))
    # the median pruner may stop a trial behind the others after its epoch
    assert {t.state for t in study.trials} <= {state.COMPLETE, state.PRUNED}
    assert all(list(t.intermediate_values) == [1] for t in study.trials)  # val acc, epoch 1
    done = [t for t in study.trials if t.state == state.COMPLETE]
    assert done and all(0 <= t.value <= 1 for t in done)
    # the worker that finished last saw every trial; its recipe is the study's best
    recipes = [json.loads((tmp_path / f"w{i}" / "best.json").read_text()) for i in range(2)]
    last = max(range(2), key=lambda i: recipes[i]["tuned"]["finished_trials"])
    assert recipes[last]["tuned"]["trial"] == study.best_trial.number
    cfg = make_config(str(tmp_path / f"w{last}" / "best.json"), epochs=2)
    assert cfg.recipe == "best" and cfg.epochs == 2 and cfg.train_limit == 0
    assert all(getattr(cfg, k) == v for k, v in study.best_params.items())


@pytest.mark.slow
def test_two_workers_share_a_sqlite_study(tmp_path):
    workers(f"sqlite:///{tmp_path / 'study.db'}", tmp_path, trials=2)


def test_pruned_trials_report_validation_accuracy(dataset, tmp_path, one_thread):
    base = make_config("seed", epochs=3, train_limit=300, device="cpu")
    never_enough = optuna.pruners.ThresholdPruner(lower=1.0)  # prunes after the first epoch
    study = tune.run(
        base,
        1,
        tmp_path,
        tune.default_storage(tmp_path),
        dataset=dataset,
        seed=0,
        pruner=never_enough,
        log=lambda *a: None,
    )
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    with pytest.raises(FmnistError, match="no trial has finished"):
        tune.write_recipe(study, base, tmp_path / "best.json", "sqlite://")


def test_recipe_file_errors(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text('{"format": "fmnist-recipe/1", "settings": {"lr": 0.01, "momentum": 0.9}}')
    with pytest.raises(FmnistError, match="unknown training setting.*momentum"):
        make_config(str(bad))
    with pytest.raises(FmnistError, match="no such recipe file"):
        make_config(str(tmp_path / "missing.json"))
    bad.write_text("[]")
    with pytest.raises(FmnistError, match="not an fmnist recipe"):
        make_config(str(bad))
    assert tune.redact("postgresql://me:secret@db:5432/x") == "postgresql://me:***@db:5432/x"


def postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(versions[-1]).parent if versions else None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on a free loopback port; its URL."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg is in the [tune] extra")
    home = Path(tempfile.mkdtemp(prefix="fmnist-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        user = pwd.getpwnam("postgres")
        os.chown(home, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = home / "data"
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "fmnist")
        opts = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(home / "log"), "-w",
            "start")  # fmt: skip
        yield f"postgresql://fmnist@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(postgres, tmp_path):
    workers(postgres, tmp_path, trials=1)


def test_a_bad_storage_url_is_one_line(tmp_path, capsys):
    code = cli.main(["tune", "--storage", "nosuchdb://x", "--out", str(tmp_path), "--trials", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("fmnist tune: error: study storage nosuchdb://x") and err.count("\n") == 1
