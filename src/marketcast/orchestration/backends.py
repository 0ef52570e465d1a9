"""Run independent jobs by priority, with retries and progress: local processes (default) or Ray.

The same job list runs unchanged on either backend. A job is a top-level function and its
arguments (picklable), so a local process pool, a local Ray instance or a remote Ray cluster
(``ray_address="ray://head:10001"``) can all execute it. Jobs start in priority order (lower
first); a failed job is retried up to ``retries`` more times, then reported as failed without
stopping the others, so one bad pair never loses the rest of a run. A local worker process
that dies (killed by a signal, as the out-of-memory killer does) breaks the process pool: the
pool is replaced, and the jobs that were in flight on it run again, each alone and uncharged;
only a job whose worker dies while it runs alone is charged. An attempt running past
``time_limit_s`` is stopped and fails.
Workers exit when the process that started them dies, and ignore Ctrl-C, which the parent
handles by stopping them. On Ray, Ctrl-C and the CLI's SIGTERM handler take effect within
about half a second too: the driver waits in short slices, and Ray is shut down on the way out.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import pickle
import re
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.sharedctypes import Synchronized
from typing import Any, Literal

logger = logging.getLogger(__name__)

Backend = Literal["local", "ray"]
ProgressFn = Callable[[int, int, str], None]

#: ``prctl`` option asking Linux to send a signal when the parent dies (<linux/prctl.h>).
_PR_SET_PDEATHSIG = 1
#: Seconds between checks that the parent is alive, where ``prctl`` is not available.
_PARENT_POLL_SECONDS = 1.0
#: Longest single wait on Ray: Python signal handlers (Ctrl-C, the CLI's SIGTERM) run between
#: waits, and waited for a task to finish inside Ray's compiled code.
_RAY_WAIT_SECONDS = 0.5
#: Longest wait for a TCP connection to a Ray address before Ray is asked to connect there.
_CONNECT_SECONDS = 10.0


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class WorkerStartError(OSError):
    """The local worker processes could not be started (so no job could run)."""


class WorkerDiedError(RuntimeError):
    """A local worker process ended abruptly while a job ran or waited on its pool."""


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(*args)``; ``priority`` orders the start (lower starts first)."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    priority: int = 0


@dataclass
class JobOutcome:
    """What became of a job: its result, or the last error after every attempt failed."""

    key: str
    ok: bool
    result: Any = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def run_jobs(
    jobs: Sequence[Job],
    backend: Backend = "local",
    *,
    max_workers: int | None = None,
    retries: int = 1,
    ray_address: str | None = None,
    progress: ProgressFn | None = None,
    time_limit_s: float | None = None,
) -> list[JobOutcome]:
    """Run ``jobs`` and return their outcomes in the order the jobs were given.

    Parameters
    ----------
    jobs
        Independent jobs; keys must be unique.
    backend
        ``"local"``: a pool of ``max_workers`` spawned processes (``max_workers=1`` runs in this
        process, which keeps tracebacks and profilers simple). ``"ray"``: Ray tasks, on a local
        Ray started with ``max_workers`` CPUs, or on the cluster at ``ray_address``.
    max_workers
        Parallel workers; default: the CPUs this process may use.
    retries
        Extra attempts for a job that raised.
    progress
        Called as ``progress(done, total, key)`` after each job finishes or finally fails.
    time_limit_s
        Longest an attempt may run: one still running then is stopped and fails with a
        `JobTimeoutError` (retried like any failure). A local worker cannot stop one job, so
        the pool's workers all end, and the jobs beside it start again, uncharged. Not
        enforced on ``max_workers=1``, where the job runs in this process (a warning says so).
    """
    keys = [job.key for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError("job keys must be unique")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    if time_limit_s is not None and not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be > 0 seconds, got {time_limit_s}")
    workers = max_workers or len(os.sched_getaffinity(0))
    ordered = sorted(jobs, key=lambda job: job.priority)  # stable: ties keep the given order
    if backend == "ray":
        outcomes = _run_ray(ordered, workers, retries, ray_address, progress, time_limit_s)
    elif backend == "local" and workers == 1:
        if time_limit_s is not None:
            logger.warning(
                "the job time limit is not enforced with one worker: the jobs run in this "
                "process, where one cannot be stopped"
            )
        outcomes = _run_inline(ordered, retries, progress)
    elif backend == "local":
        outcomes = _run_processes(ordered, workers, retries, progress, time_limit_s)
    else:
        raise ValueError(f"unknown backend {backend!r}; expected 'local' or 'ray'")
    return [outcomes[key] for key in keys]


class JobTimeoutError(RuntimeError):
    """A job's attempt ran past the time limit and was stopped."""


class JobError(RuntimeError):
    """A job's own error, as text: one that would not cross back to the parent as it was (an
    exception that does not unpickle broke the whole pool, and was told as a worker killed by
    the out-of-memory killer), or a ``SystemExit``, which ended the whole run."""


def _timed_call(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    try:
        result = fn(*args)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        if not isinstance(exc, Exception) or not _round_trips(exc):
            raise JobError(_error_text(exc)) from None
        raise
    return result, time.perf_counter() - t0


def _round_trips(exc: BaseException) -> bool:
    """Whether ``exc`` pickles and unpickles (``__init__`` arguments its ``args`` lack fail)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return False
    return True


def _error_text(exc: BaseException) -> str:
    """``Type: message`` of a job's error, one line: a Ray task's is its cause's (Ray's own
    text held the remote traceback and terminal colour codes), a `JobError`'s or
    `JobTimeoutError`'s the text alone."""
    if isinstance(exc, (JobError, JobTimeoutError)):
        return str(exc)
    cause = getattr(exc, "cause", None)  # ray.exceptions.RayTaskError: the job's exception
    if isinstance(cause, BaseException) and type(exc).__module__.startswith("ray"):
        exc = cause
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return _ANSI_ESCAPE.sub("", text)


def _run_inline(
    jobs: Sequence[Job], retries: int, progress: ProgressFn | None
) -> dict[str, JobOutcome]:
    outcomes: dict[str, JobOutcome] = {}
    for done, job in enumerate(jobs, start=1):
        outcome = JobOutcome(job.key, ok=False)
        for _ in range(retries + 1):
            outcome.attempts += 1
            try:
                outcome.result, outcome.seconds = _timed_call(job.fn, job.args)
            except Exception as exc:
                outcome.errors.append(_error_text(exc))
                logger.warning("job %s attempt %d failed: %s", job.key, outcome.attempts, exc)
                continue
            outcome.ok = True
            break
        outcome.error = None if outcome.ok else outcome.errors[-1]
        outcomes[job.key] = outcome
        if progress is not None:
            progress(done, len(jobs), job.key)
    return outcomes


def _init_worker(parent_pid: int, started: Synchronized[int]) -> None:
    # One thread per worker process: the pool already uses every core, and OpenMP libraries
    # (LightGBM) read this before they are first imported in the worker.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    # Ctrl-C reaches the whole process group: the parent stops the workers, which would
    # otherwise each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # workers are started by ``submit``, on the thread that called `run_jobs`, which outlives
    # the pool
    end_with_parent(parent_pid, signal.SIGKILL)
    with started.get_lock():
        started.value += 1


def end_with_parent(parent_pid: int, signum: int) -> None:
    """Have ``signum`` sent to this process when ``parent_pid``, its parent, dies.

    A parent killed with SIGKILL, or with SIGTERM alone, runs no cleanup, and its children
    would go on forever (a pool worker blocked on its pipes, a training beside a dead server).
    On Linux the kernel sends the signal (``PR_SET_PDEATHSIG``); elsewhere a daemon thread
    checks the parent each second. ``parent_pid`` is the parent's pid as the parent itself
    gave it, not read here: a parent that died before this call has already handed the child
    to another process, and the signal comes at once. The kernel signal fires when the parent
    *thread* that started the child ends.
    """
    if not _set_parent_death_signal(signum):
        threading.Thread(
            target=_watch_parent, args=(parent_pid, signum), name="parent-watchdog", daemon=True
        ).start()
    if os.getppid() != parent_pid:  # the parent died before the signal was set up
        os.kill(os.getpid(), signum)


def _set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` when the parent dies; False where that cannot be."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int, signum: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(_PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signum)


def _schedule(
    jobs: Sequence[Job],
    retries: int,
    progress: ProgressFn | None,
    slots: int,
    submit: Callable[[Job], Any],
    wait_any: Callable[[list[Any], float | None], list[Any]],
    result_of: Callable[[Any], tuple[Any, float]],
    stop: Callable[[list[Any], list[Any]], list[Any]],
    time_limit_s: float | None,
) -> dict[str, JobOutcome]:
    """Keep ``slots`` jobs running in priority order; retry failures at the front of the queue.

    ``submit(job)`` starts a job and returns a handle, ``wait_any(handles, timeout)`` returns
    the finished ones (none once ``timeout`` seconds have passed), ``result_of(handle)`` gives
    ``(result, seconds)`` or raises the job's error.

    An attempt running ``time_limit_s`` seconds fails with a `JobTimeoutError`:
    ``stop(overdue, others)`` ends the overdue jobs and returns those of ``others`` it ended
    with them (a local pool's whole set of workers), which start again, uncharged.

    A dead worker process (`WorkerDiedError`) fails every job in flight on its pool, and which
    one killed it is unknown: none is charged, and each runs again alone (nothing beside it),
    where a death is its own. Charged at once, a job that killed its worker every time took
    its neighbours' attempts with it, and one-off deaths lost innocent jobs.
    """
    outcomes = {job.key: JobOutcome(job.key, ok=False) for job in jobs}
    by_key = {job.key: job for job in jobs}
    queue = list(jobs)  # priority order
    alone: list[str] = []  # in flight when a worker died: each reruns with nothing beside it
    beside_a_death: set[Any] = set()  # handles in flight when a worker died beside them
    running: dict[Any, str] = {}
    started: dict[Any, float] = {}  # handle -> time.monotonic() when it was submitted
    done_count = 0

    def start(key: str) -> None:
        outcomes[key].attempts += 1
        handle = submit(by_key[key])
        running[handle] = key
        started[handle] = time.monotonic()

    while queue or running or alone:
        if alone:  # once the jobs in flight have ended, one of them by itself
            if not running:
                start(alone.pop(0))
        else:
            while queue and len(running) < slots:
                start(queue.pop(0).key)
        solo = len(running) == 1  # a worker that dies now was killed by this job
        timeout = None
        if time_limit_s is not None:
            timeout = max(0.0, min(started.values()) + time_limit_s - time.monotonic())
        finished = wait_any(list(running), timeout)  # (a pool's failures may come one by one)
        overdue: list[Any] = []
        if not finished and time_limit_s is not None:
            now = time.monotonic()
            overdue = [h for h in running if now - started[h] >= time_limit_s]
            others = [h for h in running if h not in overdue]
            ended = stop(overdue, others) if overdue else []
            for handle in reversed([h for h in others if h in ended]):  # priority order kept
                key = running.pop(handle)
                del started[handle]
                outcomes[key].attempts -= 1
                queue.insert(0, by_key[key])
                logger.warning("job %s was stopped with an overdue job: started again", key)
            finished = overdue
        for handle in finished:
            key = running.pop(handle)
            seconds = time.monotonic() - started.pop(handle)
            outcome = outcomes[key]
            try:
                if handle in overdue:
                    raise JobTimeoutError(
                        f"ran past the time limit of {time_limit_s:g} s ({seconds:.0f} s) "
                        "and was stopped"
                    )
                outcome.result, outcome.seconds = result_of(handle)
            except WorkerStartError:
                raise  # no job can run anywhere: not a failure of this one
            except Exception as exc:
                died = isinstance(exc, WorkerDiedError)
                if died and (not solo or handle in beside_a_death):
                    # any job in flight may have killed it: none is charged, and those still
                    # reported as running died with it, however alone they are reported
                    beside_a_death.update(running)
                    outcome.attempts -= 1
                    alone.append(key)
                    logger.warning("job %s was in flight when a worker died: rerun alone", key)
                    continue
                outcome.errors.append(_error_text(exc))
                logger.warning("job %s attempt %d failed: %s", key, outcome.attempts, exc)
                if outcome.attempts <= retries:
                    if died:  # it killed its worker: its retry runs alone too
                        alone.insert(0, key)
                    else:
                        queue.insert(0, by_key[key])  # a retry keeps its place at the front
                    continue
                outcome.error = outcome.errors[-1]
            else:
                outcome.ok = True
            done_count += 1
            if progress is not None:
                progress(done_count, len(jobs), key)
    return outcomes


def _run_processes(
    jobs: Sequence[Job],
    workers: int,
    retries: int,
    progress: ProgressFn | None,
    time_limit_s: float | None,
) -> dict[str, JobOutcome]:
    pool = _WorkerPool(workers)
    try:

        def wait_any(futures: list[Future[tuple[Any, float]]], timeout: float | None) -> list[Any]:
            return list(wait(futures, timeout, return_when=FIRST_COMPLETED)[0])

        def stop(overdue: list[Any], others: list[Any]) -> list[Any]:
            pool.restart_stopping_all()  # a pool's worker cannot be stopped by itself
            return others

        outcomes = _schedule(
            jobs,
            retries,
            progress,
            workers,
            pool.submit,
            wait_any,
            pool.result_of,
            stop,
            time_limit_s,
        )
    except BaseException:
        # Ctrl-C or SIGTERM: stop the running jobs now rather than wait for them to finish.
        pool.stop()
        raise
    pool.close()
    return outcomes


class _WorkerPool:
    """A pool of spawned worker processes, replaced by a fresh one when a worker dies.

    A dead worker breaks a ``ProcessPoolExecutor``: every job in flight on it fails with
    ``BrokenProcessPool`` (which job killed it is unknown, so `_schedule` charges none and
    reruns each alone), and the next ``submit`` starts a new pool. ``_schedule`` retries the
    jobs while their attempts last, so a pool that keeps breaking ends in failed outcomes, not
    an exception. A pool that breaks before any worker process has started is a
    `WorkerStartError`.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.restarts = 0
        # spawn, not fork: a forked child of a process that ran OpenMP code can deadlock.
        self._context = get_context("spawn")
        try:
            self._started: Synchronized[int] = self._context.Value("i", 0)  # workers set up
        except OSError as exc:
            raise _start_error(str(exc)) from exc
        self._pool = self._start()

    def _start(self) -> ProcessPoolExecutor:
        try:
            return ProcessPoolExecutor(
                self.workers,
                mp_context=self._context,
                initializer=_init_worker,
                initargs=(os.getpid(), self._started),
            )
        except OSError as exc:
            raise _start_error(str(exc)) from exc

    def submit(self, job: Job) -> Future[tuple[Any, float]]:
        """Start ``job``; a future that fails with the pool's error if no pool will take it."""
        for fresh in (False, True):
            try:
                return self._pool.submit(_timed_call, job.fn, job.args)
            except BrokenProcessPool as exc:
                if fresh:  # a brand-new pool broke at once: let the job's attempts decide
                    failed: Future[tuple[Any, float]] = Future()
                    failed.set_exception(exc)
                    return failed
                self._restart()
            except OSError as exc:  # starting a worker process failed (spawn, pipes)
                raise _start_error(str(exc)) from exc
        raise AssertionError("unreachable: the loop returns")

    def result_of(self, future: Future[tuple[Any, float]]) -> tuple[Any, float]:
        """``(result, seconds)`` of a finished job, or its error."""
        try:
            return future.result()
        except BrokenProcessPool as exc:
            if self._started.value == 0:
                raise _start_error("every worker process ended before it was set up") from exc
            raise WorkerDiedError(
                "a worker process ended abruptly (killed by a signal, e.g. by the out-of-memory "
                "killer) while this job ran or waited on its pool"
            ) from exc

    def _restart(self) -> None:
        self.restarts += 1
        logger.warning("a worker process died; starting a new pool (restart %d)", self.restarts)
        self._pool.shutdown(wait=True)  # quick: a broken pool has already ended its workers
        self._pool = self._start()

    def restart_stopping_all(self) -> None:
        """End every worker and its job now (a job ran past its time limit); a fresh pool."""
        self.stop()
        self._pool = self._start()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def stop(self) -> None:
        """End the workers without waiting for their jobs, then release the pool."""
        terminate = getattr(self._pool, "terminate_workers", None)  # Python 3.14+
        if terminate is not None:
            terminate()
        else:
            for process in list((self._pool._processes or {}).values()):
                process.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)


def _start_error(reason: str) -> WorkerStartError:
    return WorkerStartError(
        f"the worker processes could not start ({reason}); set max_workers: 1 to run the jobs "
        "in this process"
    )


def _run_ray(
    jobs: Sequence[Job],
    workers: int,
    retries: int,
    ray_address: str | None,
    progress: ProgressFn | None,
    time_limit_s: float | None,
) -> dict[str, JobOutcome]:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError(
            "the Ray backend needs the optional extra: pip install 'marketcast[ray]'"
        ) from exc
    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if ray_address:
            _check_listening(ray_address)
            # A remote cluster gets this package shipped with the tasks, so the same code runs
            # there unchanged. As its folder, not the module object: a Ray Client connection
            # (ray://) pickles the runtime_env, and a module cannot be pickled.
            import marketcast

            init["address"] = ray_address
            init["runtime_env"] = {"py_modules": [os.path.dirname(marketcast.__file__)]}
        else:
            init["num_cpus"] = workers
            init["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": "1"}}
        _start_ray(ray, init)
    try:
        remote_call = ray.remote(num_cpus=1, max_retries=0)(_timed_call)
        # Keep at most 2x the cluster's CPUs in flight so priorities still decide the order;
        # with a time limit, which counts from the submission, no more than a task per CPU.
        in_flight = max(1, int(ray.cluster_resources().get("CPU", workers)))
        in_flight *= 1 if time_limit_s is not None else 2

        def wait_any(refs: list[Any], timeout: float | None) -> list[Any]:
            # In slices: one blocking ray.wait held off Ctrl-C and SIGTERM until a task ended
            # (minutes), and Ray then raised them as a SystemError.
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                wait_s = _RAY_WAIT_SECONDS
                if deadline is not None:
                    wait_s = max(0.0, min(wait_s, deadline - time.monotonic()))
                ready, _ = ray.wait(refs, num_returns=1, timeout=wait_s)
                if ready or (deadline is not None and time.monotonic() >= deadline):
                    return list(ready)

        def stop(overdue: list[Any], others: list[Any]) -> list[Any]:
            for ref in overdue:
                ray.cancel(ref, force=True)  # ends the worker process running it
            return []

        return _schedule(
            jobs,
            retries,
            progress,
            in_flight,
            _unwrapping_interrupts(lambda job: remote_call.remote(job.fn, job.args)),
            _unwrapping_interrupts(wait_any),
            _unwrapping_interrupts(ray.get),
            _unwrapping_interrupts(stop),
            time_limit_s,
        )
    except SystemError as exc:  # from Ray's own calls here, as the wrapped ones unwrap it
        cause = _interrupt_inside(exc)
        if cause is None:
            raise
        raise cause from None
    finally:
        if started_here:
            ray.shutdown()


def _check_listening(address: str, timeout_s: float = _CONNECT_SECONDS) -> None:
    """Raise ``ConnectionError`` when nothing answers at a Ray address's host and port.

    ``ray.init`` retried an address where nothing listens for minutes (a plain ``host:port``)
    before it said so; a TCP connection says it in at most ``timeout_s`` seconds. ``auto``, and
    an address without a port, are left to Ray.

    Examples
    --------
    >>> _check_listening("auto")
    >>> _check_listening("127.0.0.1:1", timeout_s=1)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ConnectionError: cannot start Ray on the cluster at 127.0.0.1:1: nothing answers at ...
    """
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConnectionError(
            f"cannot start Ray on the cluster at {address}: nothing answers at "
            f"{host}:{port} ({exc})"
        ) from None


def _start_ray(ray: Any, init: dict[str, Any]) -> None:
    """``ray.init(**init)``, keeping the caller's SIGTERM handler, even when interrupted.

    ray.init installs its own SIGTERM handler (``sys.exit(15)``; from a worker thread's view a
    crash dump and status 1): the caller's, the CLI's, which unwinds and exits 143, is put back.
    A SIGTERM during the start-up itself (seconds) met Ray's handler and ended the CLI with
    status 15 and no message: it is handed to the caller's handler instead. Whatever stops the
    start-up, the part of Ray already started is shut down.
    """
    previous = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(**init)
    except BaseException as exc:
        stopped = (_interrupt_inside(exc) if isinstance(exc, SystemError) else None) or exc
        with contextlib.suppress(Exception):
            ray.shutdown()
        _restore_sigterm(previous)
        if (
            isinstance(stopped, SystemExit)
            and stopped.code == signal.SIGTERM
            and callable(previous)
        ):
            previous(signal.SIGTERM, None)  # Ray's handler took it: the caller's answer
        if stopped is exc and isinstance(exc, OSError) and "address" in init:
            # Ray's own words ("ray client connection timeout") did not say which address
            raise ConnectionError(
                f"cannot start Ray on the cluster at {init['address']}: {exc}"
            ) from exc
        if stopped is exc:
            raise
        raise stopped from None
    _restore_sigterm(previous)


def _restore_sigterm(handler: Any) -> None:
    if handler is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _interrupt_inside(exc: SystemError) -> BaseException | None:
    """The interrupt (``KeyboardInterrupt``, the CLI's ``Terminated``) Ray wrapped in ``exc``.

    A Python signal handler that raises while Ray's compiled code runs surfaces as a
    ``SystemError`` whose ``__cause__`` is the handler's exception: an ``Exception``, which
    ``_schedule`` would charge to the job as its failure, and which the CLI does not catch.
    Only a cause that is no ``Exception`` is returned, so a real error is not disguised.

    Examples
    --------
    >>> wrapped = SystemError("returned a result with an exception set")
    >>> wrapped.__cause__ = KeyboardInterrupt()
    >>> type(_interrupt_inside(wrapped)).__name__
    'KeyboardInterrupt'
    >>> wrapped.__cause__ = ValueError("bad")
    >>> _interrupt_inside(wrapped) is None
    True
    """
    cause = exc.__cause__
    if isinstance(cause, BaseException) and not isinstance(cause, Exception):
        return cause
    return None


def _unwrapping_interrupts(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``, raising the interrupt a ``SystemError`` from Ray wraps (`_interrupt_inside`)."""

    def call(*args: Any) -> Any:
        try:
            return fn(*args)
        except SystemError as exc:
            cause = _interrupt_inside(exc)
            if cause is None:
                raise
            raise cause from None

    return call
