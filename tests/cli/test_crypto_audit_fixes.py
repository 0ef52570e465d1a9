"""What a crypto docs audit found: ``evaluate crypto`` ran every job on a window outside its
data, jobs started in the config's horizon order, the contract JSON carried the registry's
fields as nulls, and a failed first export printed "flat stays champion" with no champion."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from marketcast.cli import main
from marketcast.orchestration import crypto as crypto_job
from marketcast.orchestration.backends import JobOutcome
from marketcast.orchestration.crypto import (
    CryptoEvaluation,
    describe_plan,
    plan_jobs,
    prepare_crypto,
    print_crypto_summary,
)
from marketcast.orchestration.window import as_utc
from marketcast.registry import Registry
from tests.cli import test_crypto_cli
from tests.pipeline import test_crypto_run_checks
from tests.pipeline.test_crypto_pipeline import _first_run, small_config

candle_folder = test_crypto_cli.candle_folder  # BTC and ETH, 2022-11-01 to 2023-06-30
#: What only the registry's decision fills in: a time and the versions it compared
REGISTRY_ONLY_KEYS = {"decided_utc", "champion_version", "challenger_version"}


@pytest.mark.parametrize(
    ("window", "said"),
    [
        (
            ["--start", "2024-01-01"],
            "--start 2024-01-01: the window from 2024-01-01 to the end of the data holds no bar",
        ),
        (
            ["--start", "2021-01-01", "--end", "2022-01-01"],
            "--end 2022-01-01: the window from 2021-01-01 to --end 2022-01-01 holds no bar",
        ),
    ],
)
def test_evaluate_crypto_refuses_a_window_outside_the_data_before_any_job(
    candle_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    window: list[str],
    said: str,
) -> None:
    """A start after the data ran every job, then said "--start must leave some history in
    the files"; `run` refused the same window before its jobs, naming the data's span."""
    started: list[str] = []

    def no_job(jobs, *args, **kwargs):  # type: ignore[no-untyped-def]
        started.extend(job.key for job in jobs)
        return []

    monkeypatch.setattr(crypto_job, "run_jobs", no_job)
    out = tmp_path / "x.json"
    args = ["evaluate", "crypto", "--data", str(candle_folder), *window]
    assert main([*args, "--horizons", "1d", "--models", "flat,momentum", "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert said in err
    assert "(the data runs 2022-11-01 to 2023-06-30, and each step needs earlier bars" in err
    assert "history in the files" not in err
    assert started == []
    assert not out.exists()


def test_evaluate_crypto_refuses_an_end_before_the_start_before_reading_the_data(
    candle_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The files were read, validated and featured before the window was looked at."""
    prepared: list[object] = []
    monkeypatch.setattr(crypto_job, "prepare_crypto", lambda *args: prepared.append(args))
    args = ["evaluate", "crypto", "--data", str(candle_folder), "--horizons", "1d"]
    window = ["--start", "2023-05-01", "--end", "2023-04-01", "--json", str(tmp_path / "x.json")]
    assert main([*args, *window]) == 2
    assert "--end 2023-04-01 must be after --start 2023-05-01" in capsys.readouterr().err
    assert prepared == []


def test_jobs_start_with_shorter_horizons_whatever_the_configs_order(tmp_path: Path) -> None:
    """`horizons: [1d, 4h]` started 1d before 4h in each group: the priority followed the
    config's list, where the docs say "most liquid group first, then shorter horizons"."""
    config = small_config(tmp_path, horizons=("1d", "4h"))
    prepared = prepare_crypto(config)
    expected = {"4h/g0": 0, "1d/g0": 1, "4h/g1": 2, "1d/g1": 3}
    for horizons in (("1d", "4h"), ("4h", "1d")):
        plan = describe_plan(prepared, config, horizons, "2023-03-01")
        assert {job["job"]: job["priority"] for job in plan["jobs"]} == expected
    jobs = plan_jobs(prepared, config, ("1d", "4h"), as_utc("2023-03-01"), as_utc("2023-05-01"))
    assert {job.key: job.priority for job in jobs} == expected


def test_the_contract_json_keeps_the_registry_fields_null(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """evaluation.json's ``promotion`` says ``decided_utc: null`` beside metrics.json's time for
    the same test: it is the evaluation's own test against flat, no registry decision. Its time
    and versions stay null (a contract key is never dropped), and it agrees with the registry's
    decision on the rest."""
    _, run, _, _ = _first_run(tmp_path, monkeypatch, ("flat", "momentum"))
    out = run.run_dir / "crypto"
    contract = json.loads((out / "evaluation.json").read_text())["horizons"]["1d"]["promotion"]
    decided = json.loads((out / "metrics.json").read_text())["1d"]["promotion"]
    assert decided["decided_utc"] is not None
    assert {k: contract.pop(k) for k in REGISTRY_ONLY_KEYS} == dict.fromkeys(REGISTRY_ONLY_KEYS)
    leave_out = {*REGISTRY_ONLY_KEYS, "first_champion"}  # a first run: the same test
    assert contract == {k: v for k, v in decided.items() if k not in leave_out}
    assert contract["challenger"] == "momentum"


def test_a_failed_first_export_says_there_is_no_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It printed "1d: flat stays champion: no challenger" while nothing was registered."""

    def full_disk(*args: Any) -> dict[str, bytes]:
        raise OSError("disk full")

    monkeypatch.setattr(crypto_job, "fit_final_artifacts", full_disk)
    config, run, printed, _ = _first_run(tmp_path, monkeypatch, ("flat",))
    assert Registry(config.registry_root).champion("crypto", "1d") is None
    assert run.champions == {"1d": "none"}
    assert (
        "\n1d: no champion: the export of flat failed, so nothing was registered (OSError: disk "
        "full); no challenger\n" in printed
    )
    assert "stays champion" not in printed


def test_a_failed_export_keeps_the_champion_on_record_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A promoted challenger whose export failed printed "momentum promoted over flat", and
    flat stayed champion."""
    monkeypatch.setattr(crypto_job, "pair_groups", lambda prepared, size: [("g0", ["BTCUSDT"])])

    def failed(jobs, *args, **kwargs):  # type: ignore[no-untyped-def]
        return [JobOutcome(job.key, ok=False, error="OSError: disk full") for job in jobs]

    monkeypatch.setattr(crypto_job, "run_jobs", failed)
    registry = Registry(str(tmp_path / "registry"))
    test_crypto_run_checks._register_champion(registry, "flat")
    nets = {"momentum": np.random.default_rng(1).normal(0.01, 0.01, 500)}
    champions, decisions, moves = test_crypto_run_checks._shadow(tmp_path, registry, nets)
    assert (champions, moves) == ({"1d": "flat"}, {})
    assert decisions["1d"]["promote"] is True  # the test's verdict, not applied
    out = io.StringIO()
    evaluation = CryptoEvaluation(1, {}, [], [], {})
    print_crypto_summary(Console(file=out, width=400), evaluation, champions, tmp_path, decisions)
    assert (
        "\n1d: flat stays champion: the export of momentum failed, so nothing was registered "
        "(OSError: disk full); the test: momentum promoted over flat: " in out.getvalue()
    )
