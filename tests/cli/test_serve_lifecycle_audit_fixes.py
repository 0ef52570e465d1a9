"""``marketcast serve`` over its life: champions that fail to load for a moment, workers whose
supervisor is killed outright, two servers started on one empty registry."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from marketcast.config import FootballRunConfig
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.service import ChampionService
from tests.api.crypto_setup import Setup
from tests.cli.test_serve_cli import _free_port, _gone

POLL_S = 0.05


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """Crypto champions (1h logistic, 1d flat) and football champions (1X2, ou25, ah: market)
    in one registry."""
    root = tmp_path_factory.mktemp("serve_lifecycle")
    crypto = Setup(root)
    config = FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 50},
            "registry_root": crypto.config.registry_root,
            "runs_dir": str(root / "runs"),
        }
    )
    with (root / "log.txt").open("w") as log:
        run_football(config, console=Console(file=log))
    return crypto


@contextlib.contextmanager
def _away(setup: Setup, horizon: str, name: str) -> Iterator[Callable[[], None]]:
    """The version folder of crypto ``horizon``'s champion moved away (a network share's blip,
    a copy in progress); yields the call that brings it back, which also runs on the way out."""
    folder = Path(setup.registry.root) / "crypto" / horizon / name / setup.versions[horizon, name]
    shutil.move(folder, f"{folder}.away")

    def back() -> None:
        if not folder.exists():
            shutil.move(f"{folder}.away", folder)

    try:
        yield back
    finally:
        back()


def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_a_horizon_that_failed_to_load_is_loaded_once_its_files_are_back(setup: Setup) -> None:
    """The failed horizon was recorded as loaded: the watcher saw no change, and the horizon
    stayed out until a restart although the registry named its champion all along."""
    with _away(setup, "1d", "flat") as back:
        service = setup.service()  # its start-up reload leaves 1d out
        assert sorted(service.snapshot().champions) == ["1h"]
        stop = service.follow(POLL_S)
        try:
            back()
            assert _until(lambda: "1d" in service.snapshot().champions)
            assert service.snapshot().champions["1d"].version == setup.versions["1d", "flat"]
        finally:
            stop.set()


def test_a_champion_that_never_loads_is_retried_with_backoff_and_one_warning(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    """Retrying must not become a reload every poll (each re-reads the version's files) with a
    warning each time: the waits double, and the watcher says it once."""
    with _away(setup, "1d", "flat"):
        service = setup.service()
        reloads: list[float] = []
        reload = service.reload

        def counted() -> dict[str, Any]:
            reloads.append(time.monotonic())
            return reload()

        service.reload = counted  # type: ignore[method-assign]
        with caplog.at_level(logging.WARNING, logger="marketcast.serving"):
            stop = service.follow(POLL_S)
            try:
                time.sleep(60 * POLL_S)  # 60 polls: retries after 1, 2, 4, 8, 16 and 32
            finally:
                stop.set()
        assert 2 <= len(reloads) <= 8, len(reloads)  # a reload each poll: about 60
        watcher = [r for r in caplog.records if r.name == "marketcast.serving.watch"]
        assert len(watcher) == 1, [r.getMessage() for r in watcher]
        assert "1d" in watcher[0].getMessage()
        assert "1d" not in service.snapshot().champions


def test_a_secondary_football_market_that_failed_to_load_is_loaded_once_it_can_be(
    setup: Setup,
) -> None:
    """As for a crypto horizon: an over/under market left out by one failed load was recorded
    as loaded, and stayed out until a restart."""
    registry = Registry(setup.registry.root)
    service = ChampionService(registry)
    broken = threading.Event()
    broken.set()
    load = service._load

    def flaky(market: str, name: str, version: str) -> Any:
        if broken.is_set() and market == "ou25":
            raise OSError(f"{name} {version}: the share is unreachable for a moment")
        return load(market, name, version)

    service._load = flaky  # type: ignore[method-assign]
    service.reload()
    assert "ou25" not in service.snapshot().champions
    assert "ah" in service.snapshot().champions
    stop = service.follow_registry(POLL_S)
    try:
        broken.clear()
        assert _until(lambda: "ou25" in service.snapshot().champions)
    finally:
        stop.set()


def _children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
                out.append(int(entry.name))
    return out


def _port_free(port: int) -> bool:
    """A restarted server could listen on ``port`` (uvicorn binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


def _wait_healthy(base: str, process: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the server ended with status {process.returncode}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=5.0).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"{base}/healthz did not answer 200 in {timeout_s:g} s")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_with_a_supervisor_killed_outright(tmp_path: Path) -> None:
    """SIGKILL of `serve --workers 2` left both workers running, adopted by init: they held the
    port, answered /readyz "loading" for good, and a restart failed with "Address already in
    use"."""
    empty = tmp_path / "registry"
    empty.mkdir()
    port = _free_port()
    env = {
        **os.environ,
        "MARKETCAST_REGISTRY": str(empty),
        "MARKETCAST_AWAIT_CHAMPIONS": "1",  # trains nothing
        "MARKETCAST_CRYPTO": "0",
    }
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "marketcast", "serve", "--port", str(port), "--workers", "2"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    workers: list[int] = []
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", server)
        assert _until(lambda: len(_children(server.pid)) >= 2, 60.0)
        workers = _children(server.pid)
        server.kill()
        server.wait()
        assert _until(lambda: all(_gone(pid) for pid in workers), 20.0), [
            pid for pid in workers if not _gone(pid)
        ]
        assert _until(lambda: _port_free(port), 5.0)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        for pid in workers:
            if not _gone(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


#: The training stand-in: says it started, then trains until its server ends.
_TRAINING = """
import os, signal, sys, time
from marketcast.orchestration.backends import end_with_parent
registry, server_pid, started = sys.argv[1:]
end_with_parent(int(server_pid), signal.SIGTERM)
with open(started, "a") as out:
    out.write(f"{os.getpid()}\\n")
time.sleep(300)
"""


def test_two_servers_on_one_empty_registry_train_it_once(tmp_path: Path) -> None:
    """Nothing stood between "no 1X2 champion" and starting the training: two servers started
    together each trained the registry, for eight minutes, into the same folders."""
    empty = tmp_path / "registry"
    empty.mkdir()
    started = tmp_path / "trainings.txt"
    child = [sys.executable, "-c", _TRAINING]
    script = (
        "import os, sys; from marketcast.orchestration import commands\n"
        f"commands.first_training_command = lambda registry: {child!r} + "
        f"[registry, str(os.getpid()), {str(started)!r}]\n"
        "from marketcast.cli import main; sys.exit(main())"
    )
    env = {**os.environ, "MARKETCAST_REGISTRY": str(empty), "MARKETCAST_CRYPTO": "0"}
    servers: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        for name in ("a", "b"):
            port = _free_port()
            log = tmp_path / f"serve_{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-c", script, "serve", "--port", str(port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            servers.append((process, f"http://127.0.0.1:{port}", log))
        for process, base, _ in servers:
            _wait_healthy(base, process)
        assert _until(lambda: started.exists() and bool(started.read_text()), 30.0)
        time.sleep(2.0)  # a second training, if any, has started by now
        assert len(started.read_text().split()) == 1
        said = " ".join(" ".join(log.read_text().split()) for _, _, log in servers)
        assert "another server is training the bundled champions" in said
        for _, base, _ in servers:
            assert httpx.get(f"{base}/readyz", timeout=5.0).status_code == 503
    finally:
        for process, _, _ in servers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _, _ in servers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if started.exists():
            for pid in map(int, started.read_text().split()):
                if not _until(functools.partial(_gone, pid), 10.0):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
