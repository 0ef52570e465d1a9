"""What an orchestration audit found: SIGTERM reached a Ray run only when a task finished (then
as a ``SystemError``: a traceback and status 1, after up to a whole job), and a failed crypto
job left its horizon scored, tested and promoted on the other pairs without a word."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from marketcast.cli import EXIT_TERMINATED, main
from marketcast.orchestration import crypto as crypto_job
from marketcast.orchestration.crypto_jobs import GroupResult, GroupTask
from marketcast.registry import Registry
from tests.cli import test_crypto_cli
from tests.pipeline.test_crypto_pipeline import small_config
from tests.unit.test_interrupts_workers import _wait_until
from tests.unit.test_registry import make_manifest

candle_folder = test_crypto_cli.candle_folder  # BTC and ETH, 2022-11-01 to 2023-06-30

# --------------------------------------------------------------------------- SIGTERM on Ray

#: A driver that answers SIGTERM as the CLI does (`Terminated`, exit 143) while one Ray job
#: runs for two minutes; the job touches argv[1] once it has started.
_RAY_DRIVER = """
import signal, sys, time
from pathlib import Path
import ray  # imported first: the signal is timed from the start of run_jobs
from marketcast.cli import EXIT_TERMINATED, Terminated, _raise_terminated
from marketcast.orchestration.backends import Job, run_jobs

def mark_and_sleep(path):
    Path(path).touch()
    time.sleep(120)

signal.signal(signal.SIGTERM, _raise_terminated)
print("starting", flush=True)
try:
    run_jobs([Job("slow", mark_and_sleep, (sys.argv[1],))], "ray", max_workers=1, retries=0)
except Terminated:
    print("terminated", flush=True)
    sys.exit(EXIT_TERMINATED)
print("finished", flush=True)
"""


def _session_processes(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``: the driver's Ray processes among them."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(stat.parent.name))
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("when", ["job running", "ray starting"])
def test_sigterm_stops_a_ray_run_within_seconds_and_shuts_ray_down(
    tmp_path: Path, when: str
) -> None:
    """A blocking ``ray.wait`` ran the CLI's SIGTERM handler only when a task ended, and Ray
    raised its `Terminated` as a ``SystemError``: status 1 with a traceback, minutes later. A
    SIGTERM while Ray started met Ray's own handler: status 15, no message. Both now end the
    driver with 143 within seconds, and the Ray it started goes with it."""
    pytest.importorskip("ray")
    marker = tmp_path / "job_started"
    out_path, err_path = tmp_path / "driver.out", tmp_path / "driver.err"
    with out_path.open("w") as out_file, err_path.open("w") as err_file:
        # files, not pipes: a reader of a pipe would also wait on any process holding it open
        driver = subprocess.Popen(
            [sys.executable, "-c", _RAY_DRIVER, str(marker)],
            cwd=tmp_path,
            stdout=out_file,
            stderr=err_file,
            start_new_session=True,  # its Ray processes share its session: found, ended below
        )
    try:
        assert _wait_until(lambda: "starting" in out_path.read_text(), 60)
        if when == "job running":
            assert _wait_until(marker.exists, 120), "the Ray job never started"
        else:
            time.sleep(0.5)  # ray.init takes seconds
        sent = time.monotonic()
        driver.send_signal(signal.SIGTERM)
        try:
            driver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the driver outlived SIGTERM ({when}) by 30 s")
        took = time.monotonic() - sent
        out, err = out_path.read_text(), err_path.read_text()
        assert driver.returncode == EXIT_TERMINATED, err[-3000:]
        assert "terminated" in out
        assert "SystemError" not in err
        assert took < 15, took  # it was the job's whole remaining duration
        assert _wait_until(lambda: not _session_processes(driver.pid), 10), (
            f"Ray processes outlived the driver: {_session_processes(driver.pid)}"
        )
    finally:
        for pid in _session_processes(driver.pid):  # started by this test; never left behind
            os.kill(pid, signal.SIGKILL)
        if driver.poll() is None:
            driver.kill()
            driver.wait()


# --------------------------------------------------------------------------- failed crypto jobs


def _fail_group(monkeypatch: pytest.MonkeyPatch, failing: Callable[[GroupTask], bool]) -> None:
    """Make the walk-forward jobs that ``failing`` picks raise, as a job out of memory does."""
    real = crypto_job.run_group_task

    def flaky(task: GroupTask) -> GroupResult:
        if failing(task):
            raise MemoryError("simulated: the job ran out of memory")
        return real(task)

    monkeypatch.setattr(crypto_job, "run_group_task", flaky)


def test_evaluate_crypto_names_a_failed_job_and_the_pairs_it_left_out(
    candle_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The 1d horizon was scored on BTC alone when ETH's job failed: the JSON did not say so."""
    config = tmp_path / "crypto.yaml"
    config.write_text(
        "vertical: crypto\nhorizons: [4h, 1d]\nmodels: [flat, momentum]\ngroup_size: 1\n"
        "max_workers: 1\nretries: 0\n"  # in this process: the failing job is the patched one
    )
    _fail_group(monkeypatch, lambda task: task.group == "g1" and task.horizon == "1d")
    out = tmp_path / "crypto.json"
    args = ["evaluate", "crypto", "--data", str(candle_folder), "--start", "2023-05-01"]
    # the figures it computed are written, and the exit says they are not the whole result
    assert main([*args, "--config", str(config), "--json", str(out)]) == 1
    assert "exit 1: 1 job(s) failed after every attempt (1d/g1)" in capsys.readouterr().err
    result = json.loads(out.read_text())
    [failure] = result["failed_jobs"]
    assert failure["job"] == "1d/g1"
    assert failure["horizon"] == "1d"
    assert failure["pairs_left_out"] == ["ETHUSDT"]  # g1: the less liquid of the two
    assert "MemoryError: simulated" in failure["error"]
    assert result["horizons"]["1d"]["failed_jobs"] == [failure]
    assert result["horizons"]["4h"]["failed_jobs"] == []
    assert result["not_evaluated"] == {}  # 1d has decisions, on BTC
    assert "job 1d/g1 failed after 1 attempt" in caplog.text
    assert "ETHUSDT left out of 1d's" in caplog.text


def test_run_crypto_exits_1_when_a_job_failed(
    candle_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`marketcast run` wrote its reports and moved no champion on the horizon, with exit 0."""
    config = tmp_path / "crypto.yaml"
    config.write_text(
        "vertical: crypto\nhorizons: [1d]\nmodels: [flat, momentum]\ngroup_size: 1\n"
        "max_workers: 1\nretries: 0\n"
        f"data: {{paths: ['{candle_folder}']}}\n"
        "walk_forward: {start: '2023-05-01'}\n"
        f"registry_root: '{tmp_path / 'registry'}'\nruns_dir: '{tmp_path / 'runs'}'\n"
    )
    _fail_group(monkeypatch, lambda task: task.group == "g1")
    assert main(["run", "--config", str(config)]) == 1
    assert "exit 1: 1 job(s) failed after every attempt (1d/g1)" in capsys.readouterr().err
    # the reports were written first
    assert len(list((tmp_path / "runs").glob("*_crypto_*/crypto/metrics.json"))) == 1


def _hand_crowned_flat(registry: Registry) -> str:
    files = {"m.json": b"{}"}
    version = registry.register(
        "crypto", "1d", "flat", files, make_manifest("flat", files, "crypto", "1d")
    )
    registry.set_champion("crypto", "1d", "flat", version, "by hand")
    return version


@pytest.mark.parametrize("on_record", [True, False], ids=["champion", "no champion yet"])
def test_a_run_with_a_failed_job_moves_no_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_record: bool
) -> None:
    """`run` refreshed, promoted or crowned a champion on the pairs a failed job left."""
    config = small_config(tmp_path, horizons=("1d",), models=("flat", "momentum"))
    registry = Registry(config.registry_root)
    version = _hand_crowned_flat(registry) if on_record else None
    _fail_group(monkeypatch, lambda task: task.group == "g1")
    printed = io.StringIO()
    run = crypto_job.run_crypto(config, console=Console(file=printed, width=400))
    assert not isinstance(run, dict)
    record = registry.champion("crypto", "1d")
    if on_record:
        assert record is not None
        assert (record.model_name, record.version) == ("flat", version)
        assert run.champions["1d"] == "flat"
    else:
        assert record is None
        assert run.champions["1d"] == "none"
    out = run.run_dir / "crypto"
    decision = json.loads((out / "metrics.json").read_text())["1d"]["promotion"]
    assert decision["promote"] is False
    assert "job 1d/g1 failed" in decision["reason"]
    assert [f["job"] for f in decision["failed_jobs"]] == ["1d/g1"]
    missing = decision["failed_jobs"][0]["pairs_left_out"]
    assert len(missing) == 2
    summary = json.loads((out / "daily_summary.json").read_text())
    assert summary["champions_exported"] == 0
    assert [f["job"] for f in summary["failed_jobs"]] == ["1d/g1"]
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert [f["job"] for f in evaluation["horizons"]["1d"]["failed_jobs"]] == ["1d/g1"]
    line = next(x for x in printed.getvalue().splitlines() if x.startswith("1d: "))
    assert line.startswith("1d: not promotable: ")
    assert "job 1d/g1 failed" in line


def test_a_run_whose_every_job_failed_names_the_jobs_not_the_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It blamed the window ("gave no step a decision ... move the window into the data")."""
    config = small_config(tmp_path, horizons=("1d",), models=("flat", "momentum"))
    _fail_group(monkeypatch, lambda task: True)
    with pytest.raises(ValueError, match="no horizon was evaluated") as raised:
        crypto_job.run_crypto(config, console=Console(file=io.StringIO()))
    assert "1d/g0: MemoryError" in str(raised.value)
    assert "move the window" not in str(raised.value)
    assert Registry(config.registry_root).champion("crypto", "1d") is None
