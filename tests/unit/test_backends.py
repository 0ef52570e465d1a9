"""Job backends: priorities, retries, failure isolation and progress, locally and on processes."""

from __future__ import annotations

import multiprocessing.spawn
import os
import signal
import time
from pathlib import Path

import pytest

from marketcast.orchestration.backends import Job, WorkerDiedError, WorkerStartError, run_jobs


def square(x: int) -> int:
    return x * x


def append_and_return(path: str, key: str) -> str:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(key + "\n")
    return key


def fail_until(marker: str, times: int) -> str:
    """Fail the first ``times`` calls (counted in a file), then succeed."""
    count = int(Path(marker).read_text()) if os.path.exists(marker) else 0
    Path(marker).write_text(str(count + 1))
    if count < times:
        raise RuntimeError(f"flaky attempt {count + 1}")
    return "ok"


def always_fail() -> None:
    raise ValueError("broken pair")


def kill_own_worker(marker: str, log: str, n_before: int, kills: int) -> str:
    """SIGKILL this worker process (as the OOM killer would) on the first ``kills`` attempts.

    It waits until ``n_before`` other jobs have logged themselves, so that no other job is in
    flight when it dies: a broken pool charges every job in flight an attempt.
    """
    count = int(Path(marker).read_text()) if os.path.exists(marker) else 0
    Path(marker).write_text(str(count + 1))
    if count >= kills:
        return "survived"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(log) and len(Path(log).read_text().split()) >= n_before:
            break
        time.sleep(0.05)
    time.sleep(0.5)  # let the other workers' results reach the parent
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")


def kill_at_once() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def slow_square(x: int) -> int:
    time.sleep(1.0)
    return x * x


class NeedsArguments(Exception):
    """An exception whose ``__init__`` its ``args`` cannot call again: it does not unpickle."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}:{b}")


def raise_unpicklable() -> None:
    raise NeedsArguments(1, 2)


def exit_3() -> None:
    raise SystemExit(3)


def hang() -> None:
    time.sleep(600)


def slow_once(marker: str) -> str:
    """Slow on the first call (counted in a file), at once after."""
    first = not os.path.exists(marker)
    Path(marker).write_text("started")
    if first:
        time.sleep(600)
    return "done"


def _no_stop(overdue: list[object], others: list[object]) -> list[object]:
    raise AssertionError("no job should run past a time limit here")


def test_a_worker_death_is_charged_only_to_the_job_that_dies_alone() -> None:
    """A job killing its worker every time took the jobs in flight beside it down with it:
    each was charged every attempt, and the innocent one was lost."""
    jobs = [  # the poison first: it dies while the innocent still waits on the pool
        Job("poison", kill_at_once, ()),
        Job("innocent", slow_square, (3,)),
        Job("later", square, (5,)),
    ]
    outcomes = {o.key: o for o in run_jobs(jobs, "local", max_workers=2, retries=1)}
    assert (outcomes["later"].ok, outcomes["later"].result) == (True, 25)
    assert (outcomes["innocent"].ok, outcomes["innocent"].result) == (True, 9)
    assert outcomes["innocent"].attempts == 1
    assert outcomes["innocent"].errors == []
    poison = outcomes["poison"]
    assert not poison.ok
    assert poison.attempts == 2  # both deaths its own, each when it ran alone
    assert "worker process ended abruptly" in (poison.error or "")


def test_deaths_reported_one_at_a_time_charge_only_the_killer() -> None:
    """A pool's failures reported one by one: the second job was then the only one running,
    and was charged for the death its neighbour caused."""
    from marketcast.orchestration.backends import _schedule

    in_flight: dict[object, str] = {}
    broken = [False]

    def submit(job: Job) -> object:
        handle = object()
        in_flight[handle] = job.key
        return handle

    def result_of(handle: object) -> tuple[str, float]:
        key = in_flight.pop(handle)
        if key == "killer" or broken[0]:  # its death fails every job in flight with it
            broken[0] = bool(in_flight)
            raise WorkerDiedError("worker died")
        return key, 0.0

    jobs = [Job("killer", square, (1,)), Job("innocent", square, (2,))]
    outcomes = _schedule(
        jobs, 0, None, 2, submit, lambda handles, _: handles[:1], result_of, _no_stop, None
    )
    assert (outcomes["innocent"].ok, outcomes["innocent"].attempts) == (True, 1)
    assert (outcomes["killer"].ok, outcomes["killer"].attempts) == (False, 1)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_job_error_that_cannot_cross_back_or_a_system_exit_is_that_jobs_failure(
    workers: int,
) -> None:
    """An exception that does not unpickle broke the pool (told as an out-of-memory kill, and
    charged to the job beside it); a SystemExit ended the whole run."""
    jobs = [
        Job("unpicklable", raise_unpicklable, ()),
        Job("exits", exit_3, ()),
        Job("fine", slow_square, (2,)),
    ]
    outcomes = {o.key: o for o in run_jobs(jobs, "local", max_workers=workers, retries=1)}
    assert outcomes["unpicklable"].error == f"{__name__}.NeedsArguments: 1:2"
    assert outcomes["exits"].error == "SystemExit: 3"
    assert outcomes["unpicklable"].attempts == outcomes["exits"].attempts == 2
    assert (outcomes["fine"].ok, outcomes["fine"].attempts) == (True, 1)


def test_a_ray_tasks_error_is_its_causes_one_line() -> None:
    """Ray's text of a failed task held the remote traceback and terminal colour codes."""
    from marketcast.orchestration.backends import _error_text

    task_error = type("RayTaskError", (RuntimeError,), {"__module__": "ray.exceptions"})(
        "\x1b[36mray::_timed_call()\x1b[39m (pid=1728)\n  File ..., line 126"
    )
    task_error.cause = ValueError("boom 7")
    assert _error_text(task_error) == "ValueError: boom 7"
    assert _error_text(RuntimeError("\x1b[31mred\x1b[0m")) == "RuntimeError: red"


def test_inline_results_keep_the_given_order_and_priorities_decide_the_start(
    tmp_path: Path,
) -> None:
    log = str(tmp_path / "order.txt")
    jobs = [
        Job("low", append_and_return, (log, "low"), priority=5),
        Job("high", append_and_return, (log, "high"), priority=0),
        Job("mid", append_and_return, (log, "mid"), priority=2),
    ]
    outcomes = run_jobs(jobs, "local", max_workers=1)
    assert [o.key for o in outcomes] == ["low", "high", "mid"]
    assert [o.result for o in outcomes] == ["low", "high", "mid"]
    assert Path(log).read_text().split() == ["high", "mid", "low"]


@pytest.mark.parametrize("workers", [1, 2])
def test_retries_recover_a_flaky_job_and_failures_do_not_stop_the_rest(
    tmp_path: Path, workers: int
) -> None:
    marker = str(tmp_path / "count.txt")
    jobs = [
        Job("flaky", fail_until, (marker, 1)),
        Job("broken", always_fail),
        Job("fine", square, (7,)),
    ]
    seen: list[tuple[int, int, str]] = []
    outcomes = {
        o.key: o
        for o in run_jobs(
            jobs,
            "local",
            max_workers=workers,
            retries=1,
            progress=lambda d, t, k: seen.append((d, t, k)),
        )
    }
    assert outcomes["flaky"].ok
    assert outcomes["flaky"].attempts == 2
    assert outcomes["flaky"].result == "ok"
    assert not outcomes["broken"].ok
    assert outcomes["broken"].attempts == 2
    assert "ValueError: broken pair" in (outcomes["broken"].error or "")
    assert outcomes["fine"].result == 49
    assert sorted(d for d, _, _ in seen) == [1, 2, 3]
    assert {t for _, t, _ in seen} == {3}


@pytest.mark.parametrize(
    ("kills", "retries", "killer_ok"),
    [(1, 1, True), (1, 0, False), (5, 1, False)],
    ids=["retried-on-a-new-pool", "no-retries", "pool-keeps-breaking"],
)
def test_a_killed_worker_process_fails_only_its_jobs_and_the_pool_is_replaced(
    tmp_path: Path, kills: int, retries: int, killer_ok: bool
) -> None:
    """A worker killed by SIGKILL used to end the whole run with BrokenProcessPool: the retry
    was submitted to the broken pool. Now the pool is replaced and the killed job is retried."""
    marker, log = str(tmp_path / "attempts.txt"), str(tmp_path / "done.txt")
    jobs = [Job(key, append_and_return, (log, key)) for key in ("a", "b", "c")]
    jobs.append(Job("killer", kill_own_worker, (marker, log, 3, kills), priority=1))
    outcomes = {o.key: o for o in run_jobs(jobs, "local", max_workers=2, retries=retries)}

    assert [outcomes[key].result for key in ("a", "b", "c")] == ["a", "b", "c"]
    killer = outcomes["killer"]
    assert killer.ok is killer_ok
    assert killer.attempts == retries + 1
    if killer_ok:
        assert killer.result == "survived"
        assert "WorkerDiedError" in killer.errors[0]
    else:
        assert "worker process ended abruptly" in (killer.error or "")


def test_worker_processes_that_cannot_start_are_named_in_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The user saw only `[Errno 32] Broken pipe` when no worker process could start."""
    spawn = multiprocessing.spawn
    monkeypatch.setattr(spawn, "_python_exe", spawn.get_executable())  # restored afterwards
    spawn.set_executable("/nonexistent/python")
    with pytest.raises(WorkerStartError, match="worker processes could not start"):
        run_jobs([Job("a", square, (1,)), Job("b", square, (2,))], "local", max_workers=2)


def test_duplicate_keys_and_unknown_backend_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        run_jobs([Job("a", square, (1,)), Job("a", square, (2,))])
    with pytest.raises(ValueError, match="unknown backend"):
        run_jobs([Job("a", square, (1,))], "dask")  # type: ignore[arg-type]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_CLIENT_DRIVER = """
import json, os, sys
import numpy as np
from marketcast.orchestration.backends import Job, run_jobs
from marketcast.orchestration.crypto_jobs import expected_move
moves = (np.array([0.02, -0.001, -0.01]), np.array([1, 0, -1]))
outcomes = run_jobs(
    [Job("move", expected_move, moves), Job("pid", os.getpid, ())],
    backend="ray", ray_address=sys.argv[1], retries=0,
)
print(json.dumps([[o.ok, o.result, o.error] for o in outcomes] + [os.getpid()]))
"""


def test_a_ray_client_address_runs_the_jobs_on_that_cluster() -> None:
    """`--ray-address ray://head:10001` failed: the runtime_env named the package as a module
    object, which a Ray Client connection cannot pickle. A real head node, started here; the
    driver runs in its own process (a failed client connection leaves Ray's client state
    behind in the process that made it)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("ray")
    ray_cli = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a throwaway local cluster
    gcs, client = _free_port(), _free_port()
    started = subprocess.run(
        [
            ray_cli,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={gcs}",
            f"--ray-client-server-port={client}",
            "--min-worker-port=21000",
            "--max-worker-port=21100",
            "--num-cpus=1",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        for _attempt in range(2):  # Ray's per-client server start is itself flaky under load
            driver = subprocess.run(
                [sys.executable, "-c", _CLIENT_DRIVER, f"ray://127.0.0.1:{client}"],
                capture_output=True,
                text=True,
                timeout=240,
                env=env,
            )
            if driver.returncode == 0:
                break
        assert driver.returncode == 0, driver.stderr[-3000:]
    finally:
        subprocess.run([ray_cli, "stop", "--force"], capture_output=True, timeout=120, env=env)
    *outcomes, driver_pid = json.loads(driver.stdout.strip().splitlines()[-1])
    assert [ok for ok, _, _ in outcomes] == [True, True], outcomes
    assert outcomes[0][1] == pytest.approx(0.01)  # the package ran on the cluster
    assert outcomes[1][1] != driver_pid


def test_a_local_ray_run_keeps_the_callers_sigterm_handler() -> None:
    """ray.init replaced the CLI's handler: SIGTERM during a Ray run crashed with status 1."""
    import signal

    pytest.importorskip("ray")

    def handler(signum: int, frame: object) -> None:
        raise RuntimeError("terminated")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        [outcome] = run_jobs([Job("sq", square, (3,))], backend="ray", max_workers=1)
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert outcome.result == 9


def test_an_overdue_job_fails_and_the_jobs_stopped_with_it_start_again_uncharged() -> None:
    """A job that hung held the whole run: there was no time limit. The scheduler stops the
    overdue job (charged, retried) and restarts those the backend ended beside it, uncharged."""
    from marketcast.orchestration.backends import _schedule

    finished: set[object] = set()
    handles: dict[object, str] = {}
    stopped: list[tuple[list[str], list[str]]] = []

    def submit(job: Job) -> object:
        handle = object()
        handles[handle] = job.key
        restarted = any(job.key in others for _, others in stopped)
        if job.key == "quick" or (job.key == "beside" and restarted):
            finished.add(handle)
        return handle

    def wait_any(running: list[object], timeout: float | None) -> list[object]:
        done = [h for h in running if h in finished]
        time.sleep(0.1 if done else timeout or 0.0)  # "beside" starts 0.1 s after "hung"
        return done

    def stop(overdue: list[object], others: list[object]) -> list[object]:
        stopped.append(([handles[h] for h in overdue], [handles[h] for h in others]))
        return others  # a local pool: every worker ended

    jobs = [Job("quick", square, (1,)), Job("hung", hang), Job("beside", square, (2,))]
    outcomes = _schedule(jobs, 1, None, 2, submit, wait_any, lambda h: (handles[h], 0.0), stop, 0.3)
    hung = outcomes["hung"]
    assert (hung.ok, hung.attempts) == (False, 2)
    assert hung.errors == ["ran past the time limit of 0.3 s (0 s) and was stopped"] * 2
    assert stopped[0] == (["hung"], ["beside"])
    assert (outcomes["beside"].ok, outcomes["beside"].attempts) == (True, 1)
    assert (outcomes["quick"].ok, outcomes["quick"].attempts) == (True, 1)


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_hung_job_is_stopped_at_the_time_limit_on_either_backend(
    backend: str, tmp_path: Path
) -> None:
    if backend == "ray":
        pytest.importorskip("ray")
    marker = str(tmp_path / "slow-once")
    t0 = time.monotonic()
    [outcome] = run_jobs(
        [Job("slow-once", slow_once, (marker,))],
        backend,  # type: ignore[arg-type]
        max_workers=2,
        retries=1,
        time_limit_s=6,
    )
    assert time.monotonic() - t0 < 120  # not the 600 s its first attempt sleeps
    assert (outcome.ok, outcome.result, outcome.attempts) == (True, "done", 2)
    [error] = outcome.errors
    assert error.startswith("ran past the time limit of 6 s")


def test_a_time_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time_limit_s must be > 0"):
        run_jobs([Job("sq", square, (2,))], time_limit_s=0)


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_ray_address_where_nothing_listens_fails_at_once(scheme: str) -> None:
    """ray.init retried a plain host:port where nothing listened for minutes before it said so."""
    pytest.importorskip("ray")
    address = f"{scheme}127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(ConnectionError, match=f"cluster at {address}: nothing answers"):
        run_jobs([Job("sq", square, (2,))], backend="ray", ray_address=address)
    assert time.monotonic() - t0 < 30
