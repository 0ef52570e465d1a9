"""``marketcast serve`` as a user starts it: a real process on a free port, football and crypto."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from marketcast.config import FootballRunConfig
from marketcast.orchestration.first_training import command
from marketcast.orchestration.football import run_football
from tests.api.crypto_setup import Setup

TOKEN = "serve-cli-token-0123456789"
#: A fixture of the E0 champion's league, with 1X2 prices.
FIXTURE = {
    "league": "E0",
    "home": "Arsenal",
    "away": "Chelsea",
    "kickoff": "2023-08-12T14:00:00Z",
    "odds": {"1x2": {"home": 1.80, "draw": 3.90, "away": 4.50}},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def registry_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry with a football champion (E0, market model) and crypto champions (1h, 1d)."""
    root = tmp_path_factory.mktemp("serve_cli")
    crypto = Setup(root)  # registers under root / "registry", candles under root / "candles"
    config = FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market", "elo"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 50},
            "registry_root": crypto.config.registry_root,
            "runs_dir": str(root / "runs"),
        }
    )
    with (root / "log.txt").open("w") as log:
        run_football(config, console=Console(file=log))
    return Path(crypto.config.registry_root), crypto.candle_dir


def test_serve_answers_football_and_crypto(registry_root: tuple[Path, Path]) -> None:
    registry, candles = registry_root
    port = _free_port()
    env = {
        **os.environ,
        "MARKETCAST_REGISTRY": str(registry),
        "MARKETCAST_CRYPTO_CANDLES": str(candles),
        "MARKETCAST_ADMIN_TOKEN": TOKEN,
    }
    command = [sys.executable, "-c", "from marketcast.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base)

        forecast = httpx.post(f"{base}/v1/forecast", json=FIXTURE, timeout=10.0)
        assert forecast.status_code == 200, forecast.text
        assert forecast.json()["path"] == "edge"

        status = httpx.get(f"{base}/v1/crypto/status", timeout=10.0)
        assert status.status_code == 200, status.text
        assert set(status.json()["champions"]) == {"1h", "1d"}
        signals = httpx.get(f"{base}/v1/crypto/signals?horizon=1h", timeout=30.0).json()
        assert {s["pair"] for s in signals["signals"]} == set(status.json()["pairs"])
        # the default journal sits beside the registry
        assert (registry.parent / "feed" / "crypto-bars.jsonl").exists()
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.parametrize(
    ("workers", "stop", "status"),
    [(1, signal.SIGINT, 130), (2, signal.SIGINT, 130), (2, signal.SIGTERM, 143)],
)
def test_serve_stopped_by_a_signal_exits_as_other_commands_do(
    registry_root: tuple[Path, Path], workers: int, stop: signal.Signals, status: int
) -> None:
    """uvicorn swallowed Ctrl-C (and, with workers, SIGTERM): serve exited 0, so a process
    manager or a shell script could not tell a stop from a clean end."""
    registry, candles = registry_root
    port = _free_port()
    env = {
        **os.environ,
        "MARKETCAST_REGISTRY": str(registry),
        "MARKETCAST_CRYPTO_CANDLES": str(candles),
    }
    command = [
        sys.executable,
        "-c",
        "import sys; from marketcast.cli import main; sys.exit(main())",
    ]
    process = subprocess.Popen(
        [*command, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}")
        process.send_signal(stop)
        assert process.wait(timeout=30) == status
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    message = "interrupted" if stop == signal.SIGINT else "terminated"
    assert f"marketcast: {message}" in (process.stderr.read().decode() if process.stderr else "")


def _wait_ready(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 90.0
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if httpx.get(f"{base}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail("marketcast serve did not become ready in 90 s")


class _RegistryWithChampion:
    """Stands in for the registry ``serve`` checks before starting: it has a champion."""

    def __init__(self, root: str) -> None:
        self.root = root

    def champion(self, vertical: str, market: str) -> object:
        return object()

    def require_root(self) -> None:
        """It exists (serve checks a MARKETCAST_REGISTRY that was set)."""


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_passes_connection_limits_to_uvicorn(
    monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    from marketcast.orchestration import commands
    from marketcast.serving import default, http_server

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(commands, "Registry", _RegistryWithChampion)
    monkeypatch.setattr(default, "build_default_app", lambda settings: "app")
    monkeypatch.setattr(http_server, "run_until_signal", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.delenv("MARKETCAST_LIMIT_CONCURRENCY", raising=False)
    monkeypatch.delenv("MARKETCAST_KEEP_ALIVE_TIMEOUT_S", raising=False)
    monkeypatch.delenv("MARKETCAST_REGISTRY", raising=False)  # serve sets it for its workers
    assert commands.serve(None, None, workers) == 0
    monkeypatch.setenv("MARKETCAST_LIMIT_CONCURRENCY", "64")
    monkeypatch.setenv("MARKETCAST_KEEP_ALIVE_TIMEOUT_S", "2")
    assert commands.serve(None, None, workers) == 0
    limits = [(c["limit_concurrency"], c["timeout_keep_alive"]) for c in calls]
    assert limits == [(1024, 5), (64, 2)]


def test_serve_warns_of_a_marketcast_variable_no_setting_reads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """MARKETCAST_PROT=9000 was ignored without a word, and the server bound port 8000."""
    from marketcast.orchestration import commands
    from marketcast.serving import default, http_server

    monkeypatch.setattr(commands, "Registry", _RegistryWithChampion)
    monkeypatch.setattr(default, "build_default_app", lambda settings: "app")
    monkeypatch.setattr(http_server, "run_until_signal", lambda app, **kwargs: None)
    monkeypatch.delenv("MARKETCAST_REGISTRY", raising=False)
    monkeypatch.setenv("MARKETCAST_PROT", "9000")
    monkeypatch.setenv("MARKETCAST_CRYPTO_CANDLE", "a.csv")
    assert commands.serve(None, None, 1) == 0
    err = capsys.readouterr().err
    assert "warning: MARKETCAST_PROT (did you mean MARKETCAST_PORT?) is no marketcast" in err
    assert "MARKETCAST_CRYPTO_CANDLE (did you mean MARKETCAST_CRYPTO_CANDLES?)" in err
    assert "MARKETCAST_REGISTRY " not in err  # every variable serve itself sets is known


def test_rejected_admin_token_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from marketcast.cli import main

    secret = "hunter2 secret"  # too short and holds a space
    monkeypatch.setenv("MARKETCAST_ADMIN_TOKEN", secret)
    assert main(["serve", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "admin_token" in err
    assert "at least 16 characters" in err
    assert "hunter2" not in err


#: The stand-in for the bundled training that `serve` starts beside an empty registry: it waits
#: for a gate file, then moves a trained registry into place whole (or exits with a status).
_FAKE_TRAINING = """
import os, shutil, sys, time
registry, gate, source, status, pid_file = sys.argv[1:]
open(pid_file, "w").write(str(os.getpid()))
while not os.path.exists(gate):
    time.sleep(0.05)
if status != "0":
    sys.exit(int(status))
shutil.copytree(source, registry + ".tmp")
os.replace(registry + ".tmp", registry)
"""


@contextlib.contextmanager
def _serve_with_fake_training(
    tmp_path: Path, trained: Path, candles: Path, status: int, workers: int = 1
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path, Path]]:
    """`marketcast serve` on an empty registry, its training replaced by `_FAKE_TRAINING`;
    killed on the way out if a test left it running."""
    empty = tmp_path / "registry"
    empty.mkdir()
    gate, pid_file = tmp_path / "gate", tmp_path / "training.pid"
    fake = [sys.executable, "-c", _FAKE_TRAINING]
    extra = [str(gate), str(trained), str(status), str(pid_file)]
    script = (
        "import sys; from marketcast.orchestration import commands\n"
        f"commands.first_training_command = lambda registry: {fake!r} + [registry] + {extra!r}\n"
        "from marketcast.cli import main; sys.exit(main())"
    )
    port = _free_port()
    env = {
        **os.environ,
        "MARKETCAST_REGISTRY": str(empty),
        "MARKETCAST_CRYPTO_CANDLES": str(candles),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", script, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process, f"http://127.0.0.1:{port}", gate, pid_file
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_for(
    base: str,
    path: str,
    status: int,
    process: subprocess.Popen[bytes],
    body: dict[str, object] | None = None,
) -> None:
    """Until ``path`` answers ``status`` (POSTed ``body`` when given); each of several workers
    loads new champions on its own poll, so one answering is not all of them answering."""
    deadline = time.monotonic() + 90.0
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            url = f"{base}{path}"
            answer = httpx.get(url, timeout=5.0) if body is None else httpx.post(url, json=body)
            if answer.status_code == status:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{path} did not answer {status} in 90 s")


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_opens_its_port_while_it_trains_an_empty_registry(
    registry_root: tuple[Path, Path], tmp_path: Path, workers: int
) -> None:
    """The port opened only after the eight-minute training: a liveness probe restarted the
    server, and its training, again and again."""
    trained, candles = registry_root
    serving = _serve_with_fake_training(tmp_path, trained, candles, 0, workers)
    with serving as (process, base, gate, _):
        _wait_for(base, "/healthz", 200, process)  # up while the training waits on its gate
        assert httpx.get(f"{base}/readyz", timeout=5.0).status_code == 503
        waiting = httpx.post(f"{base}/v1/forecast", json=FIXTURE, timeout=10.0)
        assert waiting.status_code == 503
        crypto = httpx.get(f"{base}/v1/crypto/signals?horizon=1h", timeout=10.0)
        assert crypto.status_code == 503
        gate.touch()  # the training registers its champions: the watcher loads them
        _wait_for(base, "/readyz", 200, process)
        _wait_for(base, "/v1/forecast", 200, process, FIXTURE)
        _wait_for(base, "/v1/crypto/signals?horizon=1h", 200, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143


def test_serve_stops_when_its_training_fails(
    registry_root: tuple[Path, Path], tmp_path: Path
) -> None:
    _, candles = registry_root
    with _serve_with_fake_training(tmp_path, tmp_path, candles, 3) as (process, base, gate, _):
        _wait_for(base, "/healthz", 200, process)
        gate.touch()
        assert process.wait(timeout=30) == 2
    err = process.stderr.read().decode() if process.stderr else ""
    assert "training the bundled champions" in err
    assert "failed (exit status 3" in err


def test_a_stopped_server_stops_its_training(
    registry_root: tuple[Path, Path], tmp_path: Path
) -> None:
    _, candles = registry_root
    serving = _serve_with_fake_training(tmp_path, tmp_path, candles, 0)
    with serving as (process, base, _, pid_file):
        _wait_for(base, "/healthz", 200, process)
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.05)
        training = int(pid_file.read_text())
        process.send_signal(signal.SIGINT)  # Ctrl-C reaches the server, not the training
        assert process.wait(timeout=30) == 130
    with pytest.raises(ProcessLookupError):
        os.kill(training, 0)  # reaped by serve, not left running


def _gone(pid: int) -> bool:
    """Ended (a zombie not yet reaped by whoever adopted it counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _assert_training_ends_with_its_server(training_argv: str) -> None:
    """A stand-in server starts the training child (``training_argv``, a Python expression of
    its command line run in the server), is killed with SIGKILL, and the child must end."""
    script = (
        "import os, subprocess, sys, time\n"
        "from marketcast.orchestration.first_training import command\n"
        f"child = subprocess.Popen({training_argv}, start_new_session=True, "
        "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    server = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    training = 0
    try:
        assert server.stdout is not None
        training = int(server.stdout.readline())
        time.sleep(3.0)  # the child is importing or training by now
        assert not _gone(training)
        server.kill()
        server.wait()
        deadline = time.monotonic() + 30.0
        while not _gone(training) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(training)
    finally:
        if server.poll() is None:
            server.kill()
        if training:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(training, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_training_ends_with_a_server_killed_outright(tmp_path: Path) -> None:
    """The training leads its own session: a server ended by SIGKILL (or SIGHUP) skipped its
    `finally`, and the training went on; a restarted server started a second one into the
    same registry."""
    _assert_training_ends_with_its_server(f"command({str(tmp_path / 'registry')!r})")


def test_a_training_whose_server_died_before_it_started_trains_nothing(tmp_path: Path) -> None:
    """The child read its parent's pid itself: a server that died while the child started had
    already handed it to another process, whose pid the child took for the server's."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a pid that is no process's parent any more
    registry = tmp_path / "registry"
    child = subprocess.run(
        [*command(str(registry))[:-1], str(dead.pid)], capture_output=True, timeout=60
    )
    assert child.returncode == 128 + signal.SIGTERM, child.stderr.decode()
    assert not registry.exists()


def test_the_training_ends_with_its_server_where_prctl_is_missing(tmp_path: Path) -> None:
    """Without PR_SET_PDEATHSIG (macOS, or a libc without prctl) a thread watches the server."""
    child_script = (
        "import sys, time\n"
        "from marketcast.orchestration import backends, first_training\n"
        "backends._set_parent_death_signal = lambda signum: False\n"
        "first_training.train_bundled = lambda registry: time.sleep(120) or 0\n"
        "sys.exit(first_training.main(sys.argv[1:]))\n"
    )
    registry = str(tmp_path / "registry")
    _assert_training_ends_with_its_server(
        f"[sys.executable, '-c', {child_script!r}, {registry!r}, str(os.getpid())]"
    )


@pytest.mark.parametrize("prefix", ["", "simplecache::", "dir::"])
def test_serve_refuses_to_train_into_a_memory_registry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], prefix: str
) -> None:
    """The training runs in another process: a memory:// registry would never see it, and the
    server said 503 for good after "training done" (behind a cache or ``dir::`` layer too,
    which the check read as another protocol)."""
    from marketcast.cli import main

    monkeypatch.setenv("MARKETCAST_REGISTRY", f"{prefix}memory://empty-for-serve")
    assert main(["serve", "--port", str(_free_port())]) == 2
    assert "a memory:// registry lives in one process" in capsys.readouterr().err
