"""The run lock: a live holder refuses a second run with one line; a killed run's lock is taken over.

Nothing here starts Prefect or trains: the lock module directly, small Python subprocesses that only hold
the lock, and the CLI's refusal path (which runs before any heavy import).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from alignflow.runlock import RunLocked, acquire, read_holder, release, run_lock

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
HOLDER = """
import sys, time
from pathlib import Path
from alignflow.runlock import RunLocked, acquire
try:
    acquire(Path(sys.argv[1]))
except RunLocked as exc:
    print("refused", exc, flush=True)
    sys.exit(3)
print("held", flush=True)
while not Path(sys.argv[2]).exists():
    time.sleep(0.05)
"""


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def write_lock(path: Path, **holder) -> dict:
    started = datetime.now().astimezone().isoformat(timespec="seconds")
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": started, **holder}
    path.write_text(json.dumps(holder))
    return holder


def start_holder(lock: Path, stop: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), str(stop)],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_held_lock_refuses_a_second_run_naming_the_holder(tmp_path):
    path = tmp_path / ".alignflow.lock"
    with run_lock(path) as lock:
        assert read_holder(path) == lock.holder and lock.took_over is None
        with pytest.raises(RunLocked) as refused:
            acquire(path)
        message = str(refused.value)
        assert "\n" not in message
        for part in (f"pid {os.getpid()}", f"host {socket.gethostname()}", f"started {lock.holder['started']}"):
            assert part in message
        assert read_holder(path) == lock.holder  # the refused attempt changed nothing
    assert not path.exists()


def test_the_lock_is_released_when_the_run_raises(tmp_path):
    path = tmp_path / ".alignflow.lock"
    with pytest.raises(ValueError):
        with run_lock(path):
            raise ValueError("stage failed")
    assert not path.exists()
    with run_lock(path):
        pass


def test_a_lock_whose_pid_is_dead_is_taken_over(tmp_path):
    path = tmp_path / ".alignflow.lock"
    stale = write_lock(path, pid=dead_pid())
    with run_lock(path) as lock:
        assert lock.took_over == stale
        assert read_holder(path)["pid"] == os.getpid()


def test_an_unreadable_lock_file_is_taken_over(tmp_path):
    path = tmp_path / ".alignflow.lock"
    path.write_text("")  # its writer died between creating and writing it
    with run_lock(path) as lock:
        assert lock.took_over == {}


def test_a_pid_reused_by_a_newer_process_does_not_hold_the_lock(tmp_path):
    path = tmp_path / ".alignflow.lock"
    write_lock(path, started="2000-01-01T00:00:00+00:00")  # our pid, but this process started long after
    with run_lock(path) as lock:
        assert lock.took_over["started"].startswith("2000")


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    path = tmp_path / ".alignflow.lock"
    other = write_lock(path, pid=dead_pid(), host="build-box-7")
    with pytest.raises(RunLocked, match=rf"pid {other['pid']} on host build-box-7, .*delete .*\.alignflow\.lock"):
        acquire(path)
    assert read_holder(path) == other


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path):
    path = tmp_path / ".alignflow.lock"
    lock = acquire(path)
    newer = write_lock(path, pid=os.getppid())
    release(lock)
    assert read_holder(path) == newer


def test_a_sigkilled_holder_leaves_a_stale_lock_that_the_next_run_takes_over(tmp_path):
    path, stop = tmp_path / ".alignflow.lock", tmp_path / "stop"
    holder = start_holder(path, stop)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked, match=rf"pid {holder.pid} "):
            acquire(path)
    finally:
        holder.kill()  # SIGKILL: no finally block, no atexit, the file stays
        holder.wait()
    assert read_holder(path)["pid"] == holder.pid
    with run_lock(path) as lock:
        assert lock.took_over["pid"] == holder.pid


def test_runs_racing_for_one_stale_lock_leave_exactly_one_winner(tmp_path):
    path, stop = tmp_path / ".alignflow.lock", tmp_path / "stop"
    write_lock(path, pid=dead_pid())
    racers = [start_holder(path, stop) for _ in range(4)]
    try:
        answers = sorted(racer.stdout.readline().split()[0] for racer in racers)
    finally:
        stop.touch()
        for racer in racers:
            racer.wait(timeout=60)
    assert answers == ["held", "refused", "refused", "refused"]


def test_the_cli_refuses_before_touching_params_or_importing_the_orchestrator(tmp_path):
    holder = write_lock(tmp_path / ".alignflow.lock")  # held by this test process, which is alive
    (tmp_path / "params.yaml").write_text("dedup:\n  threshold: 0.9\n")
    probe = (
        "import sys\nfrom alignflow import cli\n"
        "cli._apply = lambda *args: sys.exit(99)  # past the lock: stop before params.yaml, Prefect or DVC\n"
        "try:\n    cli.main(sys.argv[1:])\nexcept SystemExit as exc:\n"
        "    heavy = sorted({m.split('.')[0] for m in sys.modules} & {'prefect', 'torch', 'mlflow', 'dvc'})\n"
        "    print(exc.code, heavy)\n"
    )
    for command in (["run", "--set", "dedup.threshold=0.5"], ["stage", "ingest"]):
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", probe, *command], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120
        )
        assert result.stdout.strip() == "1 []", result.stderr
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(
            "error: .alignflow.lock: another alignflow run"
        )
        assert f"pid {holder['pid']} on host {holder['host']}, started {holder['started']}" in result.stderr
        assert time.monotonic() - started < 60
    assert (tmp_path / "params.yaml").read_text() == "dedup:\n  threshold: 0.9\n"


def test_the_lock_is_re_entrant_in_its_holder_and_the_outer_block_releases(tmp_path):
    path = tmp_path / ".alignflow.lock"
    with run_lock(path) as outer:
        with run_lock(path) as inner:  # `alignflow run` holds it around the flow, which takes it again
            assert inner.holder == outer.holder
        assert read_holder(path) == outer.holder  # the inner block did not release it
    assert not path.exists()
