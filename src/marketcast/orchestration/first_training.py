"""The bundled champions trained into an empty registry, beside a server that is already up.

``marketcast serve`` on a registry without a football champion runs
``python -m marketcast.orchestration.first_training REGISTRY SERVER_PID`` as a child process
(its own session, so a Ctrl-C at the terminal reaches the server, which then stops it; it ends
when the server dies outright, even in the second it takes to start) and opens its port
at once with ``await_champions``: ``/healthz`` answers, ``/readyz`` and the forecast routes
answer 503 until the champions are registered, and the server's registry watcher loads them.
Before, the port opened only after the eight-minute training, so a liveness probe restarted
the server, and its training, over and over.

Two servers started on one empty local registry train it once: the training holds an
exclusive ``flock`` on the registry folder for its life (:func:`lock_for_training`), and a server
that finds it held waits for the champions as with ``await_champions``. Before, each started its
own eight-minute training into the same registry.

Football is trained first, and it alone makes the server ready. A training that ends without a
football champion stops the server, which could never become ready. One that fails after
football was registered (crypto failed: exit status :data:`CRYPTO_FAILED`) leaves the server up,
serving football, and says so loudly. Before, that failure also stopped the server, taking down
football forecasts that were already being served.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from types import FrameType

import fsspec.core
from fsspec.implementations.local import LocalFileSystem
from rich.console import Console

from marketcast.orchestration.backends import end_with_parent
from marketcast.registry.store import underlying

__all__ = [
    "CRYPTO_FAILED",
    "FirstTraining",
    "TrainingElsewhereError",
    "command",
    "lock_for_training",
    "main",
]

#: The child's exit status when football was trained and registered but crypto failed. Python
#: itself exits 1 on an uncaught exception and 2 on a usage error, so 4 is unambiguous.
CRYPTO_FAILED = 4


def command(registry: str, server_pid: int | None = None) -> list[str]:
    """The child process's command line: this module, run by this interpreter, told the pid of
    the server that starts it (this process unless ``server_pid`` says otherwise)."""
    server = os.getpid() if server_pid is None else server_pid
    return [sys.executable, "-m", "marketcast.orchestration.first_training", registry, str(server)]


class TrainingElsewhereError(Exception):
    """Another process holds the registry's training lock: it trains the bundled champions."""


def lock_for_training(registry: str) -> int | None:
    """Take the lock that makes one server alone train the empty ``registry``.

    An exclusive, non-blocking ``flock`` on the registry folder itself (created if missing, as
    the training would create it): no file is written into the registry. The caller hands the
    returned descriptor to the training child (:class:`FirstTraining` ``lock_fd``) and then
    closes it: the child holds the lock for its life, so the lock ends with the training,
    however it ends. Of two servers that both found no champion, the second is refused here.

    Returns
    -------
    int | None
        The locked descriptor, or ``None`` where no lock can be had: a registry with no local
        folder (``s3://`` ...: object stores have no ``flock``), or a filesystem that refuses a
        ``flock`` on a folder. The caller then trains unlocked, as before.

    Raises
    ------
    TrainingElsewhereError
        When another process holds the lock.
    """
    # a cache or dir:: layer over a local folder is that folder, as the registry opens it
    filesystem, path = underlying(*fsspec.core.url_to_fs(registry))
    if not isinstance(filesystem, LocalFileSystem):
        return None
    try:
        os.makedirs(path, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TrainingElsewhereError(
            f"another process is training the bundled champions into {registry}"
        ) from None
    except OSError:  # NFS, for one, locks only descriptors open for writing, never a folder
        os.close(fd)
        return None
    return fd


class FirstTraining:
    """The training child of ``marketcast serve``, watched from a thread.

    Parameters
    ----------
    argv
        The child's command line (:func:`command`).
    on_failure
        Called from the watching thread when the child ends with a status other than 0 while
        not being stopped (kept in ``failure``) and ``has_football`` is false: the server
        cannot become ready, so it stops.
    console
        Where the end of the training is said, and a failure the server lives with.
    has_football
        Whether the registry holds a football 1X2 champion, what ``/readyz`` waits for. Asked
        when the child fails: with one, the server goes on serving football, whatever part of
        the training failed (crypto, with :data:`CRYPTO_FAILED`, or a child killed outright).
    registry
        The registry trained into, as the messages name it.
    lock_fd
        A descriptor holding the registry's training lock (:func:`lock_for_training`), handed
        to the child, which holds the lock for its life once the caller closes its own copy.
    """

    def __init__(
        self,
        argv: Sequence[str],
        on_failure: Callable[[], None],
        console: Console,
        *,
        has_football: Callable[[], bool],
        registry: str,
        lock_fd: int | None = None,
    ) -> None:
        #: the child's exit status when it failed on its own (not stopped) without registering
        #: a football champion, else None
        self.failure: int | None = None
        #: the child's exit status when it failed on its own after registering one, else None
        self.partial_failure: int | None = None
        self._console = console
        self._has_football = has_football
        self._registry = registry
        self._stopping = threading.Event()
        # start_new_session: a Ctrl-C at the terminal goes to the server alone, which stops
        # the child in `stop` (the child also interrupted would look like a failed training)
        inherited = () if lock_fd is None else (lock_fd,)
        self._process = subprocess.Popen(list(argv), start_new_session=True, pass_fds=inherited)
        self._on_failure = on_failure
        self._watcher = threading.Thread(target=self._watch, name="first-training", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        status = self._process.wait()
        if self._stopping.is_set():
            return
        if status == 0:
            self._console.print("training done: the server loads the new champions")
        elif self._football_registered():
            self.partial_failure = status
            self._console.print(
                _partial_failure_message(self._registry, status),
                style="bold red",
                markup=False,
                highlight=False,
                soft_wrap=True,  # one line, whole, for a log reader to find
            )
        else:
            self.failure = status
            self._on_failure()

    def _football_registered(self) -> bool:
        try:
            return self._has_football()
        except Exception:  # an unreadable registry: the server cannot count on becoming ready
            return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the child if it still runs (SIGTERM, then SIGKILL after ``timeout_s``).

        A stopped training leaves what it had registered: versions are written whole, and a
        version without its manifest is a leftover that ``marketcast registry clean`` removes.
        """
        self._stopping.set()
        if self._process.poll() is None:
            # the child leads its own process group: its worker processes are stopped with it
            _signal_group(self._process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout_s)
            # what is left of the group (the child, or a worker of it that ignored SIGTERM);
            # the group's id cannot be reused while a member of it lives
            _signal_group(self._process.pid, signal.SIGKILL)
            self._process.wait()
        self._watcher.join(timeout_s)


def _partial_failure_message(registry: str, status: int) -> str:
    """What the server says when the training failed after registering football."""
    part = "the crypto champions" if status == CRYPTO_FAILED else "the bundled champions"
    return (
        f"marketcast: error: training {part} into {registry} failed (exit status {status}; "
        "its output is above) after the football champions were registered. The server goes "
        "on serving football; crypto signals for a horizon answer 503 (no crypto champion), "
        "and the crypto lists are empty, until `marketcast run --vertical crypto` registers "
        "crypto champions, which the server then loads without a restart."
    )


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group ended in the meantime
        os.killpg(pid, sig)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second one ends the process at once
    raise SystemExit(128 + signal.SIGTERM)  # in the main thread: `finally` blocks clean up


def main(argv: Sequence[str] | None = None) -> int:
    """Train the bundled football and crypto champions into the registry ``argv[0]``, for as
    long as the server whose pid is ``argv[1]`` lives."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or not args[1].isdigit():
        sys.stderr.write(
            "usage: python -m marketcast.orchestration.first_training REGISTRY SERVER_PID\n"
        )
        return 2
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # The child leads its own session, so a SIGHUP or SIGKILL that ends the server without its
    # `finally` would leave it training, and a restarted server would start a second training
    # into the same registry. The server's pid comes from the server: read here, it would
    # already be the adopter's if the server died while this process started.
    end_with_parent(int(args[1]), signal.SIGTERM)
    return train_bundled(args[0])


def train_bundled(registry: str, console: Console | None = None) -> int:
    """The default football run, then the default crypto run, both registering in ``registry``.

    Returns
    -------
    int
        0, or :data:`CRYPTO_FAILED` when the crypto run raised (its traceback is printed): the
        football champions are registered by then, and the server goes on serving them. A
        football run that raises is not caught: the child exits 1 and the server stops.
    """
    from marketcast.config import load_config, load_crypto_config
    from marketcast.orchestration.crypto import run_crypto
    from marketcast.orchestration.football import run_football

    console = console or Console()
    football = load_config(None).model_copy(update={"registry_root": registry})
    run_football(football, console=console)
    try:
        crypto = load_crypto_config(None).model_copy(update={"registry_root": registry})
        run_crypto(crypto, console=console)
    except Exception:  # not SystemExit: a SIGTERM from the server is a stop, not a failure
        traceback.print_exc()
        return CRYPTO_FAILED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
