"""What a crypto costs audit found: ``costs.spread_method: corwin_schultz`` charged the
Abdi-Ranaldo spread, a horizon without a decision was dropped without a word, and the label
dead zone (and the exported spec's) was the taker round trip even with maker fills."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from marketcast.cli import main
from marketcast.config import CryptoRunConfig, CryptoWalkForward
from marketcast.data.validation import DataError
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.features.spread import rolling_spread
from marketcast.features.universe import build_universe
from marketcast.labels.crypto import direction_label
from marketcast.models.crypto import CRYPTO_CHAMPION_SPEC
from marketcast.orchestration.crypto import (
    cost_spread_estimate,
    fit_final_artifacts,
    horizon_rows,
    pair_groups,
    prepare_crypto,
    prepared_rows_for_export,
    run_crypto,
)
from marketcast.registry import Registry

PAIRS = ("BTCUSDT", "ETHUSDT")


def _bundle_slice(folder: Path, first_day: str, end_day: str) -> Path:
    """BTC and ETH hourly candles from ``first_day`` up to (not including) ``end_day``."""
    for name, data in read_archive_csvs(BUNDLED_CRYPTO):
        if not name.endswith(tuple(f"{p}_1h.csv" for p in PAIRS)):
            continue
        frame = pd.read_csv(io.BytesIO(data))
        frame = frame.loc[(frame["date"] >= first_day) & (frame["date"] < end_day)]
        frame.to_csv(folder / Path(name).name, index=False)
    return folder


@pytest.fixture(scope="module")
def january(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """January 2023, no missing hour in either pair."""
    return _bundle_slice(tmp_path_factory.mktemp("january"), "2023-01-01", "2023-02-01")


@pytest.fixture(scope="module")
def six_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2023-01-01 to 2023-01-06: enough history for 1h from 2023-01-03, not for 1d."""
    return _bundle_slice(tmp_path_factory.mktemp("six_days"), "2023-01-01", "2023-01-07")


def _config(**costs: object) -> CryptoRunConfig:
    return CryptoRunConfig(horizons=("4h",), models=("flat",), max_workers=1).model_copy(
        update={"costs": CryptoRunConfig().costs.model_copy(update=costs)}
    )


def test_the_costs_charge_the_spread_of_the_configured_estimator(january: Path) -> None:
    """`corwin_schultz` read the Abdi-Ranaldo feature: the same costs as the default, with
    a manifest that said corwin_schultz (median AR 0, floored to 1 bp; CS 9 to 14 bp)."""
    ar_config, cs_config = _config(), _config(spread_method="corwin_schultz")
    prepared = prepare_crypto(ar_config, [str(january)])
    ar = horizon_rows(prepared, "4h", ar_config)
    cs = horizon_rows(prepared, "4h", cs_config)
    floor = ar_config.costs.min_spread

    # the default is what it was: the feature, floored
    feature = np.nan_to_num(ar["spread_estimate_168h"].to_numpy(dtype=np.float64), nan=0.0)
    np.testing.assert_array_equal(ar["spread_cost_est"].to_numpy(), np.fmax(feature, floor))
    # corwin_schultz: the estimator's own trailing 168-bar estimate, bars up to the decision
    candles = prepared.data.candles
    for pair in PAIRS:
        one = candles.loc[candles["pair"] == pair].sort_values("open_time_utc")
        assert (one["open_time_utc"].diff().dropna() == pd.Timedelta(hours=1)).all()
        own = rolling_spread(one, 168, method="corwin_schultz").to_numpy()
        expected = np.fmax(np.nan_to_num(own, nan=0.0), floor)
        got = cs.loc[one.index, "spread_cost_est"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=0.0)
    # the model's feature is not a cost setting: it stays Abdi-Ranaldo
    pd.testing.assert_series_equal(cs["spread_estimate_168h"], ar["spread_estimate_168h"])

    known = np.isfinite(cs["spread_estimate_168h"].to_numpy())
    assert (cs.loc[known, "spread_cost_est"] != ar.loc[known, "spread_cost_est"]).mean() > 0.9
    finite = np.isfinite(ar["round_trip_cost"].to_numpy()) & known
    assert (cs.loc[finite, "round_trip_cost"] != ar.loc[finite, "round_trip_cost"]).mean() > 0.9
    assert cs.loc[known, "spread_cost_est"].median() > ar.loc[known, "spread_cost_est"].median()


def test_maker_fills_set_the_dead_zone_to_the_maker_round_trip(january: Path) -> None:
    """The dead zone is one round trip of the fee charged: with `use_taker: false` the labels
    and the exported spec used the taker's (0.2 %) where the backtest charged the maker's."""
    maker = _config(use_taker=False, maker_fee_rate=0.0002, taker_fee_rate=0.001)
    default = _config()
    prepared = prepare_crypto(default, [str(january)])

    rows = horizon_rows(prepared, "4h", maker)
    expected = direction_label(rows["forward_return"].to_numpy(), 2 * 0.0002)
    np.testing.assert_array_equal(rows["direction"].to_numpy(), expected)
    between = rows["forward_return"].abs().between(0.0004, 0.002, inclusive="neither")
    assert between.sum() > 50  # the rows the taker's zone labelled flat
    assert (rows.loc[between, "direction"] != 0).all()

    groups = pair_groups(prepared, default.group_size)
    for config, zone in ((maker, 0.0004), (default, 0.002)):
        train = prepared_rows_for_export(prepared, config, "4h")
        files = fit_final_artifacts(train, "flat", groups, config, "4h")
        spec = json.loads(files[CRYPTO_CHAMPION_SPEC])
        assert spec["dead_zone"] == pytest.approx(zone, rel=1e-12)


def test_evaluate_names_a_horizon_it_could_not_evaluate(
    six_days: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`--horizons 1h,1d` with too little history for 1d exited 0 listing 1h alone."""
    out = tmp_path / "x.json"
    args = ["evaluate", "crypto", "--data", str(six_days), "--start", "2023-01-03"]
    with caplog.at_level("WARNING", logger="marketcast.orchestration.crypto"):
        code = main([*args, "--horizons", "1h,1d", "--models", "flat,momentum", "--json", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    assert list(result["horizons"]) == ["1h"]
    assert set(result["not_evaluated"]) == {"1d"}
    reason = result["not_evaluated"]["1d"]
    assert "no walk-forward step had training rows whose labels resolved before it" in reason
    assert "needs decisions before 2023-01-01 00:00 UTC (more than 48 h of history" in reason
    said = capsys.readouterr().err + caplog.text
    assert f"horizon 1d not evaluated: {reason}" in said


def test_evaluate_lists_the_pairs_that_stop_trading_before_the_end(
    six_days: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The crypto time-honesty audit: every bundled pair trades to the data's end, which
    flatters longs and buy-and-hold if the set was picked among survivors, and no output said
    so. A pair that stops early is listed, and the warning goes."""
    data = tmp_path / "data"
    data.mkdir()
    for csv in six_days.iterdir():
        frame = pd.read_csv(csv)
        if csv.name.startswith("ETHUSDT"):
            frame = frame.loc[frame["date"] < "2023-01-05 06:00:00"]  # delisted a day early
        frame.to_csv(data / csv.name, index=False)
    results, printed = {}, {}
    for name, folder in (("both", six_days), ("eth_early", data)):
        out = tmp_path / f"{name}.json"
        args = ["evaluate", "crypto", "--data", str(folder), "--start", "2023-01-03"]
        assert main([*args, "--horizons", "1h", "--models", "flat", "--json", str(out)]) == 0
        results[name] = json.loads(out.read_text())["survivorship"]
        printed[name] = capsys.readouterr().err
    assert results["both"]["pairs_ending_early"] == []
    # the terminal says so too, as `run`'s does (evaluate wrote the warning to the JSON alone)
    assert "survivorship: all 2 pairs trade to the data's last bar" in printed["both"]
    assert "survivorship:" not in printed["eth_early"]
    assert "all 2 pairs trade to the data's last bar" in results["both"]["warning"]
    assert results["eth_early"] == {
        "pairs": 2,
        "pairs_ending_early": [{"pair": "ETHUSDT", "last_bar_utc": "2023-01-05T05:00:00Z"}],
        "warning": None,
    }


def test_a_run_says_which_horizon_it_did_not_evaluate(six_days: Path, tmp_path: Path) -> None:
    """`marketcast run` gave 1d no champion and no word of why."""
    config = CryptoRunConfig(
        data={"paths": (str(six_days),)},
        horizons=("1h", "1d"),
        models=("flat", "momentum"),
        walk_forward=CryptoWalkForward(start="2023-01-03", step_days=30, max_train_days=30),
        max_workers=1,
        registry_root=str(tmp_path / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )
    printed = io.StringIO()
    run = run_crypto(config, console=Console(file=printed, width=120))
    assert not isinstance(run, dict)
    out = run.run_dir / "crypto"
    metrics = json.loads((out / "metrics.json").read_text())
    reason = metrics["not_evaluated"]["1d"]
    assert "1d" not in metrics
    assert "1h" in metrics
    assert "needs decisions before 2023-01-01 00:00 UTC" in reason
    assert json.loads((out / "daily_summary.json").read_text())["not_evaluated"] == {"1d": reason}
    assert json.loads((out / "evaluation.json").read_text())["not_evaluated"] == {"1d": reason}
    assert f"\n1d: not evaluated: {reason}\n" in printed.getvalue()
    # both pairs trade to the data's end: the run says a survivor-only set flatters longs
    assert "survivorship: all 2 pairs trade to the data's last bar" in printed.getvalue()
    summary = json.loads((out / "daily_summary.json").read_text())
    assert summary["survivorship"]["pairs_ending_early"] == []
    registry = Registry(config.registry_root)
    assert registry.champion("crypto", "1d") is None  # no champion change for it
    assert registry.champion("crypto", "1h") is not None


def test_the_universe_filters_on_the_spread_the_costs_charge(january: Path) -> None:
    """The universe's wide-spread rule read Abdi-Ranaldo's spread whatever the costs charged:
    a run charging Corwin-Schultz's (median 9 to 14 bp here, Abdi-Ranaldo's 0) kept pairs on a
    spread its own costs never measured."""
    ar = prepare_crypto(_config(), [str(january)]).universe
    cs = prepare_crypto(_config(spread_method="corwin_schultz"), [str(january)]).universe
    fixed = prepare_crypto(_config(spread_method="fixed"), [str(january)]).universe
    candles = prepare_crypto(_config(), [str(january)]).data.candles
    for method, universe in (("corwin_schultz", cs), ("abdi_ranaldo", ar)):
        expected = build_universe(candles, spread_method=method)  # the config's defaults
        pd.testing.assert_frame_equal(universe, expected)
    pd.testing.assert_frame_equal(fixed, ar)  # a fixed spread keeps the default filter
    known = cs["spread_estimate"].notna() & ar["spread_estimate"].notna()
    assert known.sum() > 40
    assert (cs.loc[known, "spread_estimate"] != ar.loc[known, "spread_estimate"]).all()
    assert cs.loc[known, "spread_estimate"].median() > ar.loc[known, "spread_estimate"].median()


def _recording_run_jobs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the keys of every job list handed to a backend (and run them)."""
    from marketcast.orchestration import crypto as crypto_job

    run_jobs = crypto_job.run_jobs
    shipped: list[list[str]] = []

    def recording(jobs, *args, **kwargs):  # type: ignore[no-untyped-def]
        shipped.append([job.key for job in jobs])
        return run_jobs(jobs, *args, **kwargs)

    monkeypatch.setattr(crypto_job, "run_jobs", recording)
    return shipped


def test_a_window_with_too_little_history_ships_no_job(
    six_days: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Bars in the window but none with a resolved label before it: every job went to the
    backend (processes, or a Ray cluster started for it) before "nothing to evaluate"."""
    shipped = _recording_run_jobs(monkeypatch)
    out = tmp_path / "x.json"
    args = ["evaluate", "crypto", "--data", str(six_days), "--start", "2023-01-01"]
    code = main([*args, "--end", "2023-01-03", "--horizons", "1h,1d", "--json", str(out)])
    assert code != 0
    assert "nothing to evaluate from 2023-01-01" in capsys.readouterr().err
    assert shipped == []
    assert not out.exists()


def test_only_the_jobs_with_a_step_go_to_the_backend(
    six_days: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1d has no step from 2023-01-03 in six days of bars, 1h has: 1d's job stays here and
    still says why its horizon was not evaluated."""
    shipped = _recording_run_jobs(monkeypatch)
    out = tmp_path / "x.json"
    args = ["evaluate", "crypto", "--data", str(six_days), "--start", "2023-01-03"]
    assert main([*args, "--horizons", "1h,1d", "--models", "flat", "--json", str(out)]) == 0
    assert shipped == [["1h/g0"]]
    result = json.loads(out.read_text())
    assert list(result["horizons"]) == ["1h"]
    assert "no walk-forward step had training rows" in result["not_evaluated"]["1d"]


def test_a_run_that_evaluates_nothing_leaves_no_feature_snapshot(
    six_days: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run wrote its feature store, ran every job, then blamed the window."""
    shipped = _recording_run_jobs(monkeypatch)
    config = CryptoRunConfig(
        data={"paths": (str(six_days),)},
        horizons=("1d",),
        models=("flat", "momentum"),
        walk_forward=CryptoWalkForward(start="2023-01-02", end="2023-01-04", step_days=30),
        max_workers=1,
        registry_root=str(tmp_path / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )
    with pytest.raises(DataError, match="gave no step a decision"):
        run_crypto(config, console=Console(file=io.StringIO()))
    assert shipped == []
    assert not (tmp_path / "runs" / "feature_store").exists()
    assert Registry(config.registry_root).champion("crypto", "1d") is None


def test_a_missing_spread_estimate_is_the_pairs_last_one_not_the_floor(january: Path) -> None:
    """Crypto audit (low): a NaN estimate was charged the 1 bp floor while the pair's last
    estimate was known; volume and volatility already took their last known value."""
    config = _config()
    prepared = prepare_crypto(config, [str(january)])
    spread = cost_spread_estimate(prepared, "abdi_ranaldo").copy()
    candles = prepared.data.candles
    btc = np.flatnonzero((candles["pair"] == "BTCUSDT").to_numpy())
    known = btc[np.isfinite(spread[btc]) & (spread[btc] > 0.0005)]
    hole = known[len(known) // 2]
    spread[hole] = np.nan
    prepared.spread_by_method["abdi_ranaldo"] = spread
    rows = horizon_rows(prepared, "4h", config)  # a row per candle, in the candles' order
    assert len(rows) == len(candles)
    assert rows["pair"].iloc[hole] == "BTCUSDT"
    previous = spread[btc[btc < hole][-1]]  # the pair's row just before, known
    charged = rows["spread_cost_est"].iloc[hole]
    assert charged == max(previous, config.costs.min_spread)
    assert charged > config.costs.min_spread  # not the floor it was charged before
    assert bool(rows["cost_inputs_filled"].iloc[hole])
