"""The crypto pipeline end to end on a slice of the bundled spot set: local, Ray, CLI, registry."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from marketcast.config import CryptoRunConfig, CryptoWalkForward
from marketcast.models.crypto import load_crypto_champion
from marketcast.orchestration import crypto as crypto_job
from marketcast.orchestration.crypto import (
    evaluate_crypto,
    prepare_crypto,
    prepared_rows_for_export,
    run_crypto,
)

PAIRS = ("BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT")
HOURS_12 = pd.Timedelta(hours=12)


def small_config(tmp_path: Path, **updates: object) -> CryptoRunConfig:
    config = CryptoRunConfig(
        pairs=PAIRS,
        horizons=("4h", "1d"),
        group_size=2,
        walk_forward=CryptoWalkForward(
            start="2023-03-01", end="2023-05-01", step_days=30, max_train_days=120
        ),
        model_params={"lightgbm": {"n_estimators": 40, "min_child_samples": 100}},
        max_workers=1,
        registry_root=str(tmp_path / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )
    return config.model_copy(update=updates)


@pytest.fixture(scope="module")
def prepared_small(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    config = small_config(tmp_path_factory.mktemp("prep"))
    return config, prepare_crypto(config)


def test_evaluation_follows_the_contract_and_costs_reconcile(prepared_small) -> None:  # type: ignore[no-untyped-def]
    config, prepared = prepared_small
    evaluation = evaluate_crypto(config, prepared, start="2023-03-01", end="2023-05-01")
    out = evaluation.to_contract_json()
    assert out["pairs"] == len(PAIRS)
    assert set(out["horizons"]) == {"4h", "1d"}
    for horizon in ("4h", "1d"):  # the export's rows, kept from planning
        pd.testing.assert_frame_equal(
            evaluation.export_rows[horizon], prepared_rows_for_export(prepared, config, horizon)
        )
    for horizon, section in out["horizons"].items():
        assert set(section["models"]) == set(config.models)
        assert section["champion"] in section["models"]
        for name, m in section["models"].items():
            for key in (
                "sharpe",
                "sortino",
                "max_drawdown",
                "hit_rate",
                "profit_factor",
                "turnover",
                "net_return",
                "gross_return",
                "costs",
                "log_loss",
                "brier",
                "n_periods",
            ):
                assert key in m, (horizon, name, key)
            # the flat model never trades: no costs, no return
            if name == "flat":
                assert m["net_return"] == 0.0
                assert m["turnover"] == 0.0
            elif m["turnover"] > 0:  # spot candles carry no funding: every held period counted
                assert m["n_funding_missing"] > 0, (horizon, name)
        # per-period nets: gross minus every cost equals net (checked in the backtest tests);
        # here every model is scored on the same periods
        ev = evaluation.horizons[horizon]
        lengths = {len(v) for v in ev.period_net.values()}
        assert len(lengths) == 1
        assert section["buy_and_hold"]["n_periods"] == lengths.pop()
    # 1d has about 61 decisions per pair in two months; 4h six times as many
    assert (
        out["horizons"]["4h"]["models"]["flat"]["n_periods"]
        > 5 * out["horizons"]["1d"]["models"]["flat"]["n_periods"]
    )


def test_a_delisting_crash_is_booked_not_held_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DOGE's bars stop on 2023-04-10 12:00 after a 60% fall: the daily holding that runs into
    the end is closed at the last close, so buy-and-hold loses it. Before, the period's return
    was NaN and the position was booked flat from its entry."""
    from marketcast.labels.crypto import forward_returns

    end = pd.Timestamp("2023-04-10 12:00", tz="UTC")
    load = crypto_job.load_candles

    def delisted(*args: Any, **kwargs: Any) -> Any:
        data = load(*args, **kwargs)
        candles = data.candles
        doge = candles["pair"] == "DOGEUSDT"
        candles = candles.loc[~doge | (candles["open_time_utc"] <= end)].reset_index(drop=True)
        fall = (candles["pair"] == "DOGEUSDT") & (candles["open_time_utc"] > end - HOURS_12)
        scale = np.linspace(0.9, 0.4, int(fall.sum()))
        for column in ("open", "high", "low", "close"):
            candles.loc[fall, column] *= scale
        data.candles = candles
        return data

    monkeypatch.setattr(crypto_job, "load_candles", delisted)
    config = small_config(tmp_path, horizons=("1d",), models=("flat", "logistic"))
    prepared = prepare_crypto(config)
    rows = crypto_job.horizon_rows(prepared, "1d", config)
    held = rows.loc[rows["delisting_exit"]]
    assert held["pair"].unique().tolist() == ["DOGEUSDT"]
    candles = prepared.data.candles.set_index(["pair", "open_time_utc"])
    on_grid = held.loc[held["on_grid"]]
    assert len(on_grid) == 1  # the day decided at 00:00 runs into the 12:00 end
    entry = candles.loc[("DOGEUSDT", on_grid["entry_time_utc"].iloc[0]), "open"]
    last_close = candles.loc[("DOGEUSDT", end), "close"]
    assert on_grid["forward_return"].iloc[0] == pytest.approx(last_close / entry - 1.0)
    assert on_grid["forward_return"].iloc[0] < -0.5
    assert on_grid["label_end_utc"].iloc[0] == end + pd.Timedelta(hours=1 + 24)  # + the day

    out = evaluate_crypto(config, prepared, start="2023-03-01", end="2023-05-01")
    section = out.to_contract_json()["horizons"]["1d"]
    assert section["delisting_exits"] == [
        {"pair": "DOGEUSDT", "periods": 1, "first_decision_utc": "2023-04-10T00:00:00+00:00"}
    ]
    assert crypto_job.caveat_lines(out) == [
        "1d: periods closed at a delisting pair's last price: DOGEUSDT 1 from 2023-04-10"
    ]
    # the same run with the delisting exit off: the crash is not in buy-and-hold
    monkeypatch.setattr(
        crypto_job,
        "forward_returns",
        lambda *a, **k: forward_returns(*a, **k, delisting_bars=None),
    )
    blind = evaluate_crypto(config, prepared, start="2023-03-01", end="2023-05-01")
    blind_bh = blind.horizons["1d"].buy_and_hold
    assert blind.to_contract_json()["horizons"]["1d"]["delisting_exits"] == []
    assert section["buy_and_hold"]["n_untradable"] == blind_bh["n_untradable"] - 1
    assert section["buy_and_hold"]["net_return"] < blind_bh["net_return"] - 0.05


def test_funding_outside_the_datas_coverage_is_missing_not_zero() -> None:
    """It was summed as 0, so n_funding_missing never counted anything in a run."""
    from marketcast.orchestration.crypto import _funding_in_period

    times = pd.date_range("2022-07-10", "2022-07-20", freq="8h", tz="UTC")
    funding = pd.DataFrame(
        {"pair": "BTCUSDT", "funding_time_utc": times, "funding_rate": np.full(len(times), 1e-4)}
    )
    entry = pd.Series(
        pd.to_datetime(
            ["2022-07-08 00:00", "2022-07-12 00:00", "2022-07-19 12:00", "2022-07-12 00:00"]
        )
    )
    entry = entry.dt.tz_localize("UTC")
    end = entry + pd.Timedelta(days=1)
    pair = pd.Series(["BTCUSDT", "BTCUSDT", "BTCUSDT", "ETHUSDT"])
    held = pd.Series(False, index=pair.index)  # no period held into a delisting
    sums = _funding_in_period(funding, pair, entry, end, held)
    assert np.isnan(sums[0])  # before the data starts
    assert sums[1] == pytest.approx(3e-4)  # three 8-hourly events in (entry, entry + 1 day]
    assert np.isnan(sums[2])  # runs past the data's end
    assert np.isnan(sums[3])  # a pair with no funding data (spot)
    assert np.isnan(_funding_in_period(None, pair, entry, end, held)).all()


def test_no_training_label_reaches_into_a_test_window(prepared_small) -> None:  # type: ignore[no-untyped-def]
    from marketcast.orchestration.crypto import horizon_rows
    from marketcast.splits.purged import PurgedWalkForward, check_purged

    config, prepared = prepared_small
    rows = horizon_rows(prepared, "1d", config)
    splitter = PurgedWalkForward(
        test_bars_step=pd.Timedelta(days=30),
        embargo=pd.Timedelta(hours=24),
        horizon=pd.Timedelta(hours=24),
    )
    steps = list(
        splitter.split(
            rows["decision_time_utc"], rows["label_end_utc"], pd.Timestamp("2023-03-01", tz="UTC")
        )
    )
    assert steps
    for step in steps:
        check_purged(
            rows["decision_time_utc"],
            rows["label_end_utc"],
            step.train_index,
            step.test_index,
            pd.Timedelta(hours=24),
        )
        latest_label = rows["label_end_utc"].iloc[step.train_index].max()
        assert latest_label < rows["decision_time_utc"].iloc[step.test_index].min()


def test_the_expected_move_counts_the_rows_inside_the_dead_zone(  # type: ignore[no-untyped-def]
    prepared_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """P(up) is learned outside the dead zone only, so a tilt's expected return is
    ``(2p - 1) * mean(|r| * outside)``. The mean of |r| over the outside rows alone left out
    P(outside): it overstated the edge and took trades that lost after costs."""
    from marketcast.orchestration import crypto_jobs
    from marketcast.orchestration.crypto import fit_final_artifacts

    config, prepared = prepared_small
    config = config.model_copy(update={"models": ("flat", "logistic"), "horizons": ("4h",)})
    rows = prepared_rows_for_export(prepared, config, "4h")
    inside = rows["direction"] == 0
    assert inside.any()  # the export keeps the dead zone's rows
    assert (~inside).any()
    pairs = ["BTCUSDT", "ETHUSDT"]
    files = fit_final_artifacts(rows, "logistic", [("g0", pairs)], config, "4h")
    spec = load_crypto_champion(files)["spec"]
    part = rows.loc[rows["pair"].isin(pairs)]
    absolute = part["forward_return"].abs()
    recorded = spec["mean_abs_forward_return"]["g0"]
    assert recorded == pytest.approx(float((absolute * (part["direction"] != 0)).mean()))
    assert recorded < float(absolute[part["direction"] != 0].mean())

    seen: list[np.ndarray] = []
    original = crypto_jobs.expected_move

    def recorded_move(forward_return: np.ndarray, direction: np.ndarray) -> float:
        seen.append(np.asarray(direction))
        return original(forward_return, direction)

    monkeypatch.setattr(crypto_jobs, "expected_move", recorded_move)
    evaluate_crypto(config, prepared, start="2023-04-01", end="2023-05-01")
    assert seen  # one per walk-forward step and group, each over the dead zone's rows too
    assert all((direction == 0).any() for direction in seen)


def test_lightgbm_early_stopping_is_purged_in_the_walk_forward_and_the_export(  # type: ignore[no-untyped-def]
    prepared_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Day-ahead labels of the last training day overlap the held-out rows' bars: every
    LightGBM fit (walk-forward steps and the champion's export) gets each row's label end and
    keeps those rows out of the booster that picks the tree count."""
    from marketcast.models.crypto import LightGBMDirectionModel
    from marketcast.orchestration.crypto import fit_final_artifacts

    config, prepared = prepared_small
    config = config.model_copy(update={"models": ("flat", "lightgbm"), "horizons": ("1d",)})
    fits: list[tuple[bool, int, float | None]] = []
    original = LightGBMDirectionModel.fit

    def recorded_fit(self, X, y):  # type: ignore[no-untyped-def]
        fitted = original(self, X, y)
        fits.append(("label_end_utc" in X.columns, fitted.n_purged_, fitted.validation_log_loss_))
        return fitted

    monkeypatch.setattr(LightGBMDirectionModel, "fit", recorded_fit)
    evaluate_crypto(config, prepared, start="2023-04-01", end="2023-05-01")
    rows = prepared_rows_for_export(prepared, config, "1d")
    fit_final_artifacts(rows, "lightgbm", [("g0", ["BTCUSDT", "ETHUSDT"])], config, "1d")
    assert len(fits) >= 2
    assert all(has_end for has_end, _, _ in fits)
    early_stopped = [purged for _, purged, loss in fits if loss is not None]
    assert early_stopped
    assert all(purged > 0 for purged in early_stopped)


def test_ray_backend_gives_the_same_result_as_local_processes(prepared_small) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("ray")
    config, prepared = prepared_small
    config = config.model_copy(update={"horizons": ("1d",)})
    local = evaluate_crypto(
        config.model_copy(update={"max_workers": 2}),
        prepared,
        start="2023-03-01",
        end="2023-05-01",
    )
    ray_run = evaluate_crypto(
        config.model_copy(update={"backend": "ray", "max_workers": 2}),
        prepared,
        start="2023-03-01",
        end="2023-05-01",
    )
    assert local.to_contract_json() == ray_run.to_contract_json()
    for name, net in local.horizons["1d"].period_net.items():
        np.testing.assert_array_equal(net, ray_run.horizons["1d"].period_net[name])


def test_run_exports_champions_with_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = small_config(tmp_path, horizons=("1d",)).model_copy(
        update={"publish": (str(tmp_path / "published"),)}
    )
    built: list[str] = []
    horizon_rows = crypto_job.horizon_rows

    def counted(prepared, horizon, config):  # type: ignore[no-untyped-def]
        built.append(horizon)
        return horizon_rows(prepared, horizon, config)

    monkeypatch.setattr(crypto_job, "horizon_rows", counted)
    with (tmp_path / "console.txt").open("w") as log:
        run = run_crypto(config, console=Console(file=log, width=80))
    assert built == ["1d"]  # labels built once: the export reuses the planned rows
    assert not isinstance(run, dict)
    out = run.run_dir / "crypto"
    summary = json.loads((out / "daily_summary.json").read_text())
    assert summary["pairs_processed"] == len(PAIRS)
    assert summary["champions_exported"] == 1
    assert summary["jobs_failed"] == 0
    decision = json.loads((out / "metrics.json").read_text())["1d"]["promotion"]
    verdict = "promoted" if decision["promote"] else "not promoted"
    crowned = f"first champion {decision['first_champion']}; "  # a first run: said first
    line = f"1d: {crowned}{decision['challenger']} {verdict} over {decision['champion']}: "
    assert line + decision["reason"] in " ".join((tmp_path / "console.txt").read_text().split())
    # the summary table fits an 80-column terminal (its headers were clipped) and says how many
    # periods each model held a position, the sample behind its Sharpe
    console = (tmp_path / "console.txt").read_text()
    assert "held" in console
    assert "…" not in console.split("champion marked *")[0]
    # spot candles with costs.funding on: the costs say which pairs had no rates to charge
    costs = json.loads((out / "costs.json").read_text())
    assert costs["funding_rates"] == {"pairs_with_rates": [], "pairs_without_rates": sorted(PAIRS)}
    assert "n_funding_missing" in costs["by_horizon"]["1d"]["lightgbm"]
    for name in (
        "evaluation.json",
        "metrics.json",
        "costs.json",
        "regime_map.json",
        "data_integrity.json",
        "decisions_1d.jsonl",
    ):
        assert (out / name).exists(), name
    from marketcast.registry import Registry

    registry = Registry(config.registry_root)
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert record.model_name == run.champions["1d"]
    files = registry.load_files("crypto", "1d", record.model_name, record.version)
    rebuilt = load_crypto_champion(files)
    assert set(rebuilt["spec"]["groups"]) == {"g0", "g1"}
    manifest = registry.manifest("crypto", "1d", record.model_name, record.version)
    assert manifest.features_sha256
    assert manifest.data_sha256
    # step 9: the reports are in the registry, and the champion on the publish target
    assert manifest.run_id == run.run_id
    stored = registry.run_report_files("crypto", run.run_id)
    assert stored == {
        **{p.name: p.read_bytes() for p in out.iterdir()},
        "publish.json": (run.run_dir / "publish.json").read_bytes(),
    }
    [target] = run.published
    assert target["ok"]
    assert target["markets"]["1d"]["champion"] == f"{record.model_name} {record.version}"
    copy = Registry(str(tmp_path / "published")).champion("crypto", "1d")
    assert copy is not None
    assert (copy.model_name, copy.version) == (record.model_name, record.version)


def test_a_report_the_registry_cannot_store_moves_no_champion_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run stopped before moving any pointer, but daily_summary.json still counted the
    champion it had planned to export."""

    def registry_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(crypto_job, "save_report", registry_full)
    config = small_config(tmp_path, horizons=("1d",))
    with (tmp_path / "console.txt").open("w") as log, pytest.raises(OSError, match="No space"):
        run_crypto(config, console=Console(file=log, width=80))
    from marketcast.registry import Registry

    assert Registry(config.registry_root).champion("crypto", "1d") is None
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.name != "feature_store"]
    summary = json.loads((run_dir / "crypto" / "daily_summary.json").read_text())
    assert summary["champions_exported"] == 0
    assert summary["champions"]["1d"] == "none"
    metrics = json.loads((run_dir / "crypto" / "metrics.json").read_text())
    assert (
        "the run stopped before this horizon was applied"
        in metrics["1d"]["promotion"]["not_applied"]
    )


def test_dry_run_plans_without_training(tmp_path: Path) -> None:
    config = small_config(tmp_path)
    plan = run_crypto(config, dry_run=True)
    assert isinstance(plan, dict)
    assert plan["pairs"] == sorted(PAIRS)
    assert len(plan["jobs"]) == 2 * 2  # two groups x two horizons
    assert sorted(j["priority"] for j in plan["jobs"]) == [0, 1, 2, 3]
    assert not Path(config.registry_root).exists()


def test_a_champion_moved_during_the_run_is_not_undone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run read the champion, refit for minutes, then set its own: a promotion or rollback
    made meanwhile was silently undone. The reports land first, then the pointer moves only if
    it still holds what the run read."""
    from marketcast.registry import Registry
    from tests.unit.test_registry import make_manifest

    config = small_config(tmp_path, horizons=("1d",), models=("flat", "momentum"))
    registry = Registry(config.registry_root)
    files = {"m.json": b"{}"}
    manual = registry.register(
        "crypto", "1d", "manual", files, make_manifest("manual", files, "crypto", "1d")
    )
    write_reports = crypto_job.write_crypto_reports
    order: list[str] = []

    def promote_meanwhile(*args: Any, **kwargs: Any) -> Any:
        order.append("reports")
        if registry.champion("crypto", "1d") is None:  # the first time: someone promotes
            registry.set_champion("crypto", "1d", "manual", manual, "by hand")
        return write_reports(*args, **kwargs)

    monkeypatch.setattr(crypto_job, "write_crypto_reports", promote_meanwhile)
    with (tmp_path / "console.txt").open("w") as log:
        run = run_crypto(config, console=Console(file=log, width=80))
    assert not isinstance(run, dict)
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert (record.model_name, record.version) == ("manual", manual)
    assert run.champions["1d"] == "manual"
    metrics = json.loads((run.run_dir / "crypto" / "metrics.json").read_text())
    assert "changed after it was read" in metrics["1d"]["promotion"]["not_applied"]
    assert order == ["reports", "reports"]  # rewritten with the outcome


def _first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: tuple[str, ...]
) -> tuple[CryptoRunConfig, crypto_job.CryptoRun, str, datetime]:
    """A first run of ``models`` on 1d: the run, what it printed and when its export began."""
    config = small_config(tmp_path, horizons=("1d",), models=models)
    run_jobs = crypto_job.run_jobs
    export_started: list[datetime] = []

    def timed(jobs, *args, **kwargs):  # type: ignore[no-untyped-def]
        if any(job.key.startswith("export/") for job in jobs):
            export_started.append(datetime.now(UTC))
        return run_jobs(jobs, *args, **kwargs)

    monkeypatch.setattr(crypto_job, "run_jobs", timed)
    out = io.StringIO()
    run = run_crypto(config, console=Console(file=out, width=400))
    assert not isinstance(run, dict)
    assert len(export_started) == 1
    return config, run, out.getvalue(), export_started[0]


def test_a_decision_carries_one_time_in_the_report_and_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The test's decision was stamped when made (kept in the report only when the export
    failed) and restamped after the export: one decision, two times. It is stamped once, at
    the test; the champion's record says when the pointer moved."""
    from marketcast.registry import Registry

    config, run, _, export_started = _first_run(tmp_path, monkeypatch, ("flat", "momentum"))
    reported = json.loads((run.run_dir / "crypto" / "metrics.json").read_text())["1d"]["promotion"]
    registry = Registry(config.registry_root)
    first, tested = registry.decisions("crypto", "1d")  # in the order football saves them
    assert first.reason == "no champion yet"
    assert tested.challenger == reported["challenger"]
    assert tested.model_dump(mode="json")["decided_utc"] == reported["decided_utc"]
    assert first.decided_utc is not None
    assert tested.decided_utc is not None
    assert first.decided_utc <= tested.decided_utc < export_started  # decided at the test
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert record.promoted_utc > export_started


@pytest.mark.parametrize(
    ("models", "then"),
    [
        # the others were tested: the line says the first champion, then the test
        (("flat", "momentum"), "; momentum "),
        # flat alone: it read "1d: flat stays champion: no challenger", with no champion there
        (("flat",), "\n"),
    ],
)
def test_the_terminal_says_a_first_crypto_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models: tuple[str, ...], then: str
) -> None:
    from marketcast.registry import Registry

    config, run, printed, _ = _first_run(tmp_path, monkeypatch, models)
    record = Registry(config.registry_root).champion("crypto", "1d")
    assert record is not None
    assert record.reason == "no champion yet"
    crowned = f"{record.model_name} {record.version}: no champion yet"
    assert f"\n1d: first champion {crowned}{then}" in printed
    assert "stays champion" not in printed
    reported = json.loads((run.run_dir / "crypto" / "metrics.json").read_text())["1d"]["promotion"]
    assert reported["first_champion"] == crowned  # as football's report says it


def test_the_exported_champion_is_fitted_per_regime_as_it_was_evaluated(  # type: ignore[no-untyped-def]
    prepared_small, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk-forward scored logistic and LightGBM with a model per regime (`RegimeModels`),
    but the export fitted one pooled model whatever ``per_regime`` said: the served champion
    was not the one the shadow test chose (P(up) apart by up to 0.42 on the same rows)."""
    from marketcast.orchestration import crypto_jobs
    from marketcast.orchestration.crypto import fit_final_artifacts

    monkeypatch.setattr(crypto_jobs, "MIN_REGIME_ROWS", 100)  # the small set's regimes qualify
    config, prepared = prepared_small
    config = config.model_copy(update={"models": ("flat", "logistic"), "per_regime": True})
    rows = prepared_rows_for_export(prepared, config, "4h")
    pairs = ["BTCUSDT", "ETHUSDT"]
    rebuilt = load_crypto_champion(
        fit_final_artifacts(rows, "logistic", [("g0", pairs)], config, "4h")
    )
    own = rebuilt["regime_models"]["g0"]["logistic"]
    assert own  # a regime with enough rows has its own model
    assert rebuilt["spec"]["regime_models"] == {"g0": {"logistic": sorted(own)}}

    columns = [*rebuilt["spec"]["feature_columns"], "open_time_utc", "label_end_utc"]
    part = rows.loc[rows["pair"].isin(pairs) & (rows["direction"] != 0)]
    y = (part["direction"].to_numpy() > 0).astype(np.int64)
    params = crypto_jobs.model_params(
        "logistic", config.model_params, tuple(rebuilt["spec"]["feature_columns"]), config.seed
    )
    evaluated = crypto_jobs.RegimeModels("logistic", params, True).fit(
        part[columns], y, part["regime"].to_numpy()
    )
    regime = sorted(own)[0]
    X = part.loc[part["regime"] == regime, columns]
    served = own[regime].predict_proba(X)[:, 1]
    np.testing.assert_allclose(served, evaluated.predict_up(X, np.full(len(X), regime)), atol=1e-12)
    pooled = rebuilt["models"]["g0"]["logistic"].predict_proba(X)[:, 1]
    assert np.abs(served - pooled).max() > 1e-3  # the pooled model answered here before

    pooled_only = fit_final_artifacts(
        rows, "logistic", [("g0", pairs)], config.model_copy(update={"per_regime": False}), "4h"
    )
    assert not any("@" in name for name in pooled_only)
    assert load_crypto_champion(pooled_only)["regime_models"] == {}


def test_the_export_keeps_the_walk_forwards_pair_groups(prepared_small, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The export re-ranked the pairs over every bar: when two pairs' volumes swapped places
    after the walk-forward's start, a consensus's regime gate (keyed by group name) earned by
    DOGE's group was served to MATIC's."""
    config, prepared = prepared_small
    config = config.model_copy(
        update={"horizons": ("4h",), "models": ("flat", "momentum"), "registry_root": str(tmp_path)}
    )
    evaluation = evaluate_crypto(config, prepared, start="2023-03-01", end="2023-05-01")
    assert evaluation.groups == crypto_job.pair_groups(prepared, 2, before="2023-03-01")
    # groups no ranking over every bar gives: the export must keep them as they are
    evaluation.groups = [("g0", ["DOGEUSDT", "XRPUSDT"]), ("g1", ["BTCUSDT", "ETHUSDT"])]
    registry = crypto_job.Registry(str(tmp_path))
    prepared = copy.copy(prepared)
    prepared.features_sha256 = "c" * 64  # a run's feature snapshot's
    crypto_job._shadow_and_export(config, registry, prepared, evaluation, "run-groups")
    [version] = registry.versions("crypto", "4h", evaluation.horizons["4h"].champion)
    spec = load_crypto_champion(
        registry.load_files("crypto", "4h", evaluation.horizons["4h"].champion, version)
    )["spec"]
    assert spec["groups"] == dict(evaluation.groups)


def test_the_consensus_holds_nothing_outside_the_days_universe(tmp_path: Path) -> None:
    """Its decision log entered and resized positions on days its pair was out of the
    universe, which the backtest never held: 57 such events on this set."""
    config = small_config(tmp_path)
    free = {"taker_fee_rate": 0.0, "maker_fee_rate": 0.0, "slippage_model": "none"}
    config = config.model_copy(
        update={
            "horizons": ("4h",),
            "models": ("flat", "momentum", "logistic", "consensus"),
            "costs": config.costs.model_copy(
                update={**free, "spread_method": "fixed", "fixed_spread": 0.0}
            ),  # the gate then enables members, and the consensus trades
            "universe": config.universe.model_copy(update={"min_median_quote_volume_usd": 1e8}),
        }
    )
    prepared = prepare_crypto(config)
    assert not prepared.features["in_universe"].all()
    evaluation = evaluate_crypto(config, prepared, start="2023-03-01", end="2023-05-01")
    events = pd.DataFrame(evaluation.horizons["4h"].events)
    assert len(events)
    universe = prepared.features.set_index(["pair", "decision_time_utc"])["in_universe"]
    at = pd.MultiIndex.from_arrays([events["pair"], pd.to_datetime(events["time_utc"], utc=True)])
    outside = ~universe.reindex(at).to_numpy(dtype=bool)
    assert (events.loc[outside, "position"] == 0).all()  # leaving the universe is an exit
