"""Local job workers do not outlive the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Runs in a child process: two jobs that each write their worker's pid, then sleep.
CHILD = """
import sys
from marketcast.orchestration.backends import Job, run_jobs
from tests.unit.test_interrupts_workers import write_pid_and_sleep
folder = sys.argv[1]
run_jobs([Job(k, write_pid_and_sleep, (folder,)) for k in "ab"], "local", max_workers=2)
"""


def write_pid_and_sleep(folder: str) -> None:
    """A job that records the pid of the worker process running it, then blocks."""
    Path(folder, f"{os.getpid()}.pid").write_text("", encoding="utf-8")
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; it waits only for its new parent to reap it


def _wait_until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_workers_exit_when_their_parent_is_killed(tmp_path: Path, signum: int) -> None:
    """Workers of a parent killed alone (SIGKILL, or SIGTERM to its pid) hung on forever."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stderr=subprocess.DEVNULL,
    )
    worker_pids: list[int] = []
    try:
        assert _wait_until(lambda: len(list(tmp_path.glob("*.pid"))) == 2, 60)
        worker_pids = [int(p.stem) for p in tmp_path.glob("*.pid")]
        assert all(_alive(pid) for pid in worker_pids)
        child.send_signal(signum)
        child.wait(timeout=30)
        gone = _wait_until(lambda: not any(_alive(pid) for pid in worker_pids), 5)
    finally:
        child.kill()
        for pid in worker_pids:  # started by this test; never leave them behind
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert gone, f"worker processes {worker_pids} outlived their parent"
