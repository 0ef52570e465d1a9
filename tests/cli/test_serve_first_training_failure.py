"""``marketcast serve`` on an empty registry when a part of its first training fails."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from marketcast.config import FootballRunConfig
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.orchestration import crypto, first_training, football
from marketcast.orchestration.first_training import CRYPTO_FAILED, FirstTraining
from marketcast.orchestration.football import run_football
from tests.api.crypto_setup import BARS_KEPT, PAIRS
from tests.cli.test_serve_cli import FIXTURE, _free_port, _wait_for

#: The training child with the real ``first_training.main`` and stand-ins for the two runs:
#: football moves a trained registry into place whole (or raises), crypto always raises.
_TRAINING = """
import os, shutil, sys
from marketcast.orchestration import crypto, first_training, football
registry, server_pid, trained, failing = sys.argv[1:]

def run_football(config, console=None):
    if failing == "football":
        raise RuntimeError("the football stand-in broke")
    shutil.copytree(trained, config.registry_root + ".tmp")
    os.replace(config.registry_root + ".tmp", config.registry_root)

def run_crypto(config, console=None):
    raise RuntimeError("the crypto stand-in broke")

football.run_football = run_football
crypto.run_crypto = run_crypto
sys.exit(first_training.main([registry, server_pid]))
"""


@pytest.fixture(scope="module")
def football_only(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A registry with football champions and no crypto one, and a short candle folder."""
    root = tmp_path_factory.mktemp("first_training_failure")
    config = FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 50},
            "registry_root": str(root / "registry"),
            "runs_dir": str(root / "runs"),
        }
    )
    with (root / "log.txt").open("w") as log:
        run_football(config, console=Console(file=log))
    candles = root / "candles"
    candles.mkdir()
    for name, raw in read_archive_csvs(BUNDLED_CRYPTO):
        if any(f"{pair}_" in name for pair in PAIRS):
            header, *lines = raw.decode().splitlines()
            (candles / Path(name).name).write_text("\n".join([header, *lines[-BARS_KEPT:]]) + "\n")
    return root / "registry", candles


@contextlib.contextmanager
def _serve_with_failing_training(
    tmp_path: Path, trained: Path, candles: Path, failing: str, workers: int = 1
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`marketcast serve` on an empty registry, its training `_TRAINING` with the ``failing``
    part raising; killed on the way out if a test left it running."""
    empty = tmp_path / "registry"
    empty.mkdir()
    child = [sys.executable, "-c", _TRAINING]
    script = (
        "import os, sys; from marketcast.orchestration import commands\n"
        f"commands.first_training_command = lambda registry: {child!r} + "
        f"[registry, str(os.getpid()), {str(trained)!r}, {failing!r}]\n"
        "from marketcast.cli import main; sys.exit(main())"
    )
    port = _free_port()
    env = {
        **os.environ,
        "MARKETCAST_REGISTRY": str(empty),
        "MARKETCAST_CRYPTO_CANDLES": str(candles),
        # the failure comes before the watcher's next look: football is not loaded yet
        "MARKETCAST_REGISTRY_POLL_S": "2",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", script, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_keeps_serving_football_when_the_crypto_training_fails(
    football_only: tuple[Path, Path], tmp_path: Path, workers: int
) -> None:
    """A crypto training that failed after football was registered stopped the server, and
    with it football forecasts that were already served."""
    trained, candles = football_only
    serving = _serve_with_failing_training(tmp_path, trained, candles, "crypto", workers)
    with serving as (process, base):
        _wait_for(base, "/healthz", 200, process)
        _wait_for(base, "/readyz", 200, process)
        _wait_for(base, "/v1/forecast", 200, process, FIXTURE)
        time.sleep(2.0)  # the child has long failed: a server about to stop would have by now
        assert httpx.get(f"{base}/readyz", timeout=5.0).status_code == 200
        crypto_answer = httpx.get(f"{base}/v1/crypto/signals?horizon=1h", timeout=10.0)
        assert crypto_answer.status_code == 503
        assert "marketcast run --vertical crypto" in crypto_answer.json()["detail"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143  # stopped by the signal, not by the training
    err = process.stderr.read().decode() if process.stderr else ""
    assert "the crypto stand-in broke" in err  # the child's traceback
    assert (
        f"marketcast: error: training the crypto champions into {tmp_path / 'registry'} failed "
        f"(exit status {CRYPTO_FAILED}"
    ) in err
    assert "The server goes on serving football" in err
    assert "`marketcast run --vertical crypto`" in err


def test_serve_stops_when_the_football_training_fails(
    football_only: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without a football champion the server could never become ready: it stops."""
    trained, candles = football_only
    serving = _serve_with_failing_training(tmp_path, trained, candles, "football")
    with serving as (process, _):
        assert process.wait(timeout=60) == 2
    err = process.stderr.read().decode() if process.stderr else ""
    assert "the football stand-in broke" in err
    assert "training the bundled champions" in err
    assert "failed (exit status 1" in err
    assert "before a football champion was registered" in err


def test_train_bundled_returns_crypto_failed_when_only_crypto_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trained: list[str] = []

    def run_crypto(config: object, console: object = None) -> None:
        raise RuntimeError("no candles today")

    monkeypatch.setattr(football, "run_football", lambda config, console: trained.append("1x2"))
    monkeypatch.setattr(crypto, "run_crypto", run_crypto)
    assert first_training.train_bundled(str(tmp_path)) == CRYPTO_FAILED
    assert trained == ["1x2"]
    assert "RuntimeError: no candles today" in capsys.readouterr().err


def test_train_bundled_lets_a_football_failure_and_a_stop_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(config: object, console: object = None) -> None:
        raise RuntimeError("no fixtures today")

    def stopped(config: object, console: object = None) -> None:
        raise SystemExit(128 + signal.SIGTERM)  # what the child's SIGTERM handler raises

    monkeypatch.setattr(football, "run_football", broken)
    with pytest.raises(RuntimeError, match="no fixtures today"):
        first_training.train_bundled(str(tmp_path))
    monkeypatch.setattr(football, "run_football", lambda config, console: None)
    monkeypatch.setattr(crypto, "run_crypto", stopped)
    with pytest.raises(SystemExit) as stop:
        first_training.train_bundled(str(tmp_path))
    assert stop.value.code == 128 + signal.SIGTERM


def _watch_child(status: int, has_football: bool) -> tuple[FirstTraining, list[str], str]:
    """A :class:`FirstTraining` over a child exiting with ``status``, once it was watched: the
    training, the failures it reported and what it said."""
    # a negative status is a child killed by that signal, as Popen reports it
    end = f"sys.exit({status})" if status >= 0 else f"os.kill(os.getpid(), {-status})"
    failures: list[str] = []
    out = io.StringIO()
    training = FirstTraining(
        [sys.executable, "-c", f"import os, sys; {end}"],
        lambda: failures.append("stop the server"),
        Console(file=out, width=80),
        has_football=lambda: has_football,
        registry="reg",
    )
    deadline = time.monotonic() + 30.0
    while training.failure is None and training.partial_failure is None:
        assert time.monotonic() < deadline, "the child's end was not seen in 30 s"
        time.sleep(0.01)
    training.stop()  # joins the watcher: what it says is written
    return training, failures, out.getvalue()


@pytest.mark.parametrize("status", [CRYPTO_FAILED, -signal.SIGKILL])
def test_a_failure_after_football_was_registered_does_not_stop_the_server(status: int) -> None:
    """Also a child killed outright (out of memory) while it trained crypto."""
    training, failures, said = _watch_child(status, has_football=True)
    assert failures == []
    assert (training.failure, training.partial_failure) == (None, status)
    part = "crypto" if status == CRYPTO_FAILED else "bundled"
    assert f"marketcast: error: training the {part} champions into reg failed" in said
    assert "\n" not in said.rstrip("\n")  # one line, not wrapped at the console's width


def test_a_failure_without_a_football_champion_stops_the_server() -> None:
    training, failures, said = _watch_child(CRYPTO_FAILED, has_football=False)
    assert failures == ["stop the server"]
    assert (training.failure, training.partial_failure) == (CRYPTO_FAILED, None)
    assert said == ""
