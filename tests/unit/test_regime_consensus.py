"""Regime detection, the regime gate and the consensus vote."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from marketcast.ensemble.consensus import (
    DecisionEvent,
    consensus,
    decision_events,
    reliability_from_history,
)
from marketcast.ensemble.regime import REGIMES, RegimeGate, RegimeRules, classify_regimes
from tests.unit.test_crypto_models import BTC_CSV, btc_features


# -- regimes -----------------------------------------------------------------------------------
def calm_pair(pair: str = "AAA", n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A quiet pair with hand-placed illiquid, panic and trend bars."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "open_time_utc": pd.date_range("2023-01-01", periods=n, freq="h", tz="UTC"),
            "pair": pair,
            "realised_vol_24h": 0.01 * (1 + 0.1 * rng.random(n)),
            "ret_log_24h": rng.normal(0, 0.01, n),
            "trend_strength_168h": rng.normal(0, 0.5, n),
            "log_quote_volume_24h": 15 + 0.1 * rng.normal(size=n),
            "spread_estimate_168h": 0.0005 + 0.0001 * rng.random(n),
        }
    )
    marks = {
        300: {"spread_estimate_168h": 0.01},
        310: {"log_quote_volume_24h": 10.0},
        320: {"realised_vol_24h": 0.05, "ret_log_24h": -0.10},
        330: {"realised_vol_24h": 0.05, "ret_log_24h": -0.10, "spread_estimate_168h": 0.01},
        340: {"realised_vol_24h": 0.05, "ret_log_24h": 0.10, "trend_strength_168h": 0.0},
        350: {"trend_strength_168h": 5.0},
        351: {"trend_strength_168h": -5.0},
        100: {"spread_estimate_168h": 0.01},  # warm-up: absolute rules still apply
        50: {
            "realised_vol_24h": 0.05,
            "ret_log_24h": -0.10,
            "trend_strength_168h": 5.0,
        },  # warm-up: no trailing stats
    }
    for row, values in marks.items():
        # marked rows are liquid unless the mark says otherwise (calm rows fall below the
        # trailing 10% volume quantile about 10% of the time)
        for column, value in {"log_quote_volume_24h": 15.5, **values}.items():
            frame.loc[row, column] = value
    return frame


def test_rules_fire_in_priority_order() -> None:
    regimes = classify_regimes(calm_pair())
    assert list(regimes.cat.categories) == list(REGIMES)
    assert regimes.name == "regime"
    expected = {
        300: "illiquid",
        310: "illiquid",
        320: "panic",
        330: "illiquid",  # illiquid beats panic
        340: "range",  # a volatile rally is not a panic
        350: "trend",
        351: "trend",  # trend strength counts in both directions
        100: "illiquid",
        50: "range",  # warm-up rows without trailing statistics
    }
    assert {row: regimes[row] for row in expected} == expected
    calm = regimes.drop(list(expected)).iloc[200:]
    assert set(calm.unique()) == {"range", "trend", "illiquid"}
    # quantile rules: ~10% of calm rows have volume below the trailing 10% quantile, and ~30% of
    # the rest a trend strength above the trailing 70% quantile
    assert 0.03 < (calm == "illiquid").mean() < 0.2
    assert 0.15 < (calm == "trend").mean() < 0.45


def test_absolute_trend_threshold_and_switched_off_columns() -> None:
    frame = calm_pair()
    regimes = classify_regimes(frame, rules=RegimeRules(min_trend_strength=2.0))
    assert set(np.flatnonzero(regimes == "trend")) == {50, 350, 351}
    no_spread = classify_regimes(
        frame.drop(columns="spread_estimate_168h"), rules=RegimeRules(spread_column=None)
    )
    assert no_spread[300] != "illiquid"
    assert no_spread[100] != "illiquid"
    assert no_spread[310] == "illiquid"  # the volume part of the rule still applies
    with pytest.raises(ValueError, match=r"'spread_estimate_168h' \(RegimeRules.spread_column\)"):
        classify_regimes(frame.drop(columns="spread_estimate_168h"))


def test_rules_are_frozen_and_strict() -> None:
    rules = RegimeRules()
    with pytest.raises(ValidationError):
        rules.max_spread = 0.1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        RegimeRules(max_sprad=0.1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="min_periods"):
        RegimeRules(min_periods=800, lookback_periods=720)


def test_regimes_never_look_ahead_or_across_pairs() -> None:
    frame = pd.concat([calm_pair("AAA", seed=1), calm_pair("BBB", seed=2)], ignore_index=True)
    before = classify_regimes(frame)
    cut = frame["open_time_utc"].iloc[400]
    rng = np.random.default_rng(9)
    future = frame.copy()
    later = (future["open_time_utc"] > cut).to_numpy()
    numeric = [
        "realised_vol_24h",
        "ret_log_24h",
        "trend_strength_168h",
        "log_quote_volume_24h",
        "spread_estimate_168h",
    ]
    future.loc[later, numeric] = future.loc[later, numeric] * rng.uniform(0.1, 10, (later.sum(), 5))
    after = classify_regimes(future)
    pd.testing.assert_series_equal(before[~later], after[~later])
    assert (before[later] != after[later]).any()  # the perturbation did change later regimes
    # pair BBB's history does not move pair AAA's regimes
    other = frame.copy()
    is_b = (other["pair"] == "BBB").to_numpy()
    other.loc[is_b, "log_quote_volume_24h"] = 0.0
    pd.testing.assert_series_equal(classify_regimes(other)[~is_b], before[~is_b])


def test_row_order_does_not_matter() -> None:
    frame = pd.concat([calm_pair("AAA", seed=1), calm_pair("BBB", seed=2)], ignore_index=True)
    shuffled = frame.sample(frac=1.0, random_state=3)
    pd.testing.assert_series_equal(classify_regimes(shuffled).sort_index(), classify_regimes(frame))


@pytest.mark.skipif(not BTC_CSV.exists(), reason="shared BTC data not present")
def test_real_btc_regimes_satisfy_their_rules() -> None:
    X, _ = btc_features(4000)
    rules = RegimeRules()
    regimes = classify_regimes(X, rules=rules)
    assert len(regimes) == len(X)
    assert set(regimes.unique()) <= set(REGIMES)

    def trailing(column: pd.Series, q: float) -> pd.Series:
        return column.shift(1).rolling(720, min_periods=168).quantile(q)

    volume_floor = trailing(X["log_quote_volume_24h"], 0.10)
    illiquid_rule = (X["spread_estimate_168h"] > rules.max_spread) | (
        X["log_quote_volume_24h"] < volume_floor
    )
    panic_rule = (X["realised_vol_24h"] > 2.5 * trailing(X["realised_vol_24h"], 0.5)) & (
        X["ret_log_24h"] < -0.05
    )
    trend_rule = X["trend_strength_168h"].abs() > trailing(X["trend_strength_168h"].abs(), 0.7)
    np.testing.assert_array_equal(regimes == "illiquid", illiquid_rule)
    np.testing.assert_array_equal(regimes == "panic", panic_rule & ~illiquid_rule)
    np.testing.assert_array_equal(regimes == "trend", trend_rule & ~panic_rule & ~illiquid_rule)
    assert (regimes == "range").sum() > 0


# -- regime gate -------------------------------------------------------------------------------
T0 = pd.Timestamp("2024-01-01", tz="UTC")


def _hours(k: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=k)


def test_gate_falls_back_without_history_or_with_bad_records() -> None:
    gate = RegimeGate(min_periods=30, lookback_periods=90)
    assert gate.choose(["momentum", "logistic"], "trend", _hours(100)) == "flat"
    for k in range(29):  # one period short
        gate.record("momentum", "trend", _hours(k), 0.01)
    assert not gate.enabled("momentum", "trend", _hours(100))
    for k in range(60):
        gate.record("logistic", "trend", _hours(k), -0.002)
    assert gate.choose(["momentum", "logistic"], "trend", _hours(100)) == "flat"
    assert "<= 0.0" in gate.stats("logistic", "trend", _hours(100)).reason


def test_gate_enables_a_model_once_its_record_is_good_and_picks_the_best() -> None:
    gate = RegimeGate(min_periods=30, lookback_periods=90, fallback="flat")
    for k in range(40):
        gate.record("momentum", "trend", _hours(k), 0.001 * (1 if k % 3 else -1))
        gate.record("logistic", "trend", _hours(k), 0.002)
    assert gate.enabled("momentum", "trend", _hours(40))
    assert gate.choose(["momentum", "logistic"], "trend", _hours(40)) == "logistic"
    # the record is per regime
    assert gate.choose(["momentum", "logistic"], "range", _hours(40)) == "flat"
    # before the 30th period resolved the model was not enabled; a period ending at as_of has
    # not (it exits at the open the decisions of as_of enter at)
    assert not gate.enabled("logistic", "trend", _hours(29))
    assert gate.enabled("logistic", "trend", _hours(30))


def test_gate_ignores_records_not_resolved_at_as_of() -> None:
    gate = RegimeGate(min_periods=30, lookback_periods=90)
    for k in range(50):
        gate.record("lightgbm", "panic", _hours(100 + k), 0.01)  # resolve from hour 100 on
    assert gate.stats("lightgbm", "panic", _hours(100)).n_periods == 0  # ends at as_of: open
    assert gate.choose(["lightgbm"], "panic", _hours(120)) == "flat"  # 20 resolved
    assert gate.choose(["lightgbm"], "panic", _hours(129)) == "flat"  # 29 resolved
    assert gate.choose(["lightgbm"], "panic", _hours(130)) == "lightgbm"  # 30 resolved


def test_gate_judges_only_the_latest_lookback_periods_in_time_order() -> None:
    gate = RegimeGate(min_periods=10, lookback_periods=20)
    # recorded out of order: 20 recent losses first, then 50 older gains
    for k in range(50, 70):
        gate.record("momentum", "range", _hours(k), -0.01)
    for k in range(50):
        gate.record("momentum", "range", _hours(k), 0.02)
    records = gate.records("momentum", "range")
    assert records["period_end_utc"].is_monotonic_increasing
    assert gate.enabled("momentum", "range", _hours(49))
    stats = gate.stats("momentum", "range", _hours(80))
    assert (stats.n_periods, stats.enabled) == (20, False)
    assert stats.mean_net_return == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="unknown regime"):
        gate.record("momentum", "sideways", _hours(1), 0.0)
    with pytest.raises(ValueError, match="nan"):
        gate.record("momentum", "range", _hours(1), float("nan"))


# -- consensus ---------------------------------------------------------------------------------
def _random_probas(n: int, names: list[str], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {m: np.clip(0.5 + rng.normal(0, 0.1, n), 0, 1) for m in names}


def test_a_copied_model_is_down_weighted() -> None:
    probas = _random_probas(400, ["a", "b"], seed=1)
    probas["a_copy"] = probas["a"].copy()
    reliability = {"a": 1.0, "b": 1.0, "a_copy": 1.0}
    rolling = consensus(probas, reliability, corr_min_periods=24)
    names = rolling.model_names
    w = rolling.weights[-1]
    a, b, a_copy = (w[names.index(m)] for m in ("a", "b", "a_copy"))
    assert a == pytest.approx(a_copy)
    assert a < b
    # a and its copy correlate fully with each other and barely with b: penalty factor ~ 1.25
    assert b / a == pytest.approx(1.25, abs=0.05)
    assert np.allclose(rolling.weights[0], 1 / 3)  # no penalty before enough history
    signals = {m: 2 * p - 1 for m, p in probas.items()}
    static = consensus(probas, reliability, signals, corr_penalty=1.0)
    ws = static.weights[0]
    assert ws[names.index("a")] < ws[names.index("b")]
    np.testing.assert_allclose(static.weights, np.broadcast_to(ws, static.weights.shape))


def test_vote_history_carries_the_correlation_penalty_across_calls() -> None:
    """A walk-forward calls consensus once per step: with the earlier votes the penalty goes on
    as in one call over every row; without them it restarted at 0 at each step."""
    probas = _random_probas(300, ["a", "b"], seed=3)
    probas["a_copy"] = np.clip(probas["a"] + np.random.default_rng(4).normal(0, 0.01, 300), 0, 1)
    reliability = {"a": 1.0, "b": 1.0, "a_copy": 1.0}
    whole = consensus(probas, reliability)
    first = consensus({m: p[:200] for m, p in probas.items()}, reliability)
    votes = {m: first.votes[:, k] for k, m in enumerate(first.model_names)}
    second = consensus(
        {m: p[200:] for m, p in probas.items()},
        reliability,
        score_history=first.score,
        vote_history=votes,
    )
    np.testing.assert_allclose(second.mean_abs_corr, whole.mean_abs_corr[200:], atol=1e-12)
    np.testing.assert_allclose(second.position, whole.position[200:], atol=1e-12)
    assert second.mean_abs_corr[0, 0] > 0.5  # a and its near copy, from the first row on
    restarted = consensus({m: p[200:] for m, p in probas.items()}, reliability)
    assert np.all(restarted.mean_abs_corr[:23] == 0.0)
    with pytest.raises(ValueError, match="missing for models"):
        consensus(probas, reliability, vote_history={"a": votes["a"]})
    with pytest.raises(ValueError, match="one length"):
        consensus(probas, reliability, vote_history={**votes, "b": votes["b"][1:]})


def test_zero_reliability_models_get_no_weight_or_say() -> None:
    probas = _random_probas(200, ["a", "b", "junk"], seed=2)
    with_junk = consensus(probas, {"a": 1.0, "b": 0.5, "junk": 0.0})
    assert np.all(with_junk.weights[:, 2] == 0.0)
    without = consensus({"a": probas["a"], "b": probas["b"]}, {"a": 1.0, "b": 0.5})
    np.testing.assert_allclose(with_junk.score, without.score, atol=1e-12)
    negative = consensus(probas, {"a": -1.0, "b": 0.0, "junk": -0.3})
    assert np.all(negative.weights == 0)
    assert np.all(negative.score == 0)
    assert np.all(negative.position == 0)


def test_inactive_models_lose_their_weight_per_row() -> None:
    probas = _random_probas(50, ["a", "b"], seed=3)
    mask = np.arange(50) % 2 == 0
    result = consensus(probas, {"a": 1.0, "b": 1.0}, active={"a": mask})
    assert np.all(result.weights[~mask, 0] == 0)
    assert np.all(result.weights[mask, 0] > 0)
    np.testing.assert_allclose(result.score[~mask], 2 * probas["b"][~mask] - 1)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=3, max_size=3),
    st.lists(st.floats(-1, 5), min_size=3, max_size=3),
    st.floats(0, 3),
)
def test_score_level_and_position_stay_in_range(
    p_up: list[float], reliability: list[float], corr_penalty: float
) -> None:
    names = ["a", "b", "c"]
    rng = np.random.default_rng(0)
    probas = {
        m: np.clip(p + rng.normal(0, 0.2, 40), 0, 1) for m, p in zip(names, p_up, strict=True)
    }
    result = consensus(
        probas, dict(zip(names, reliability, strict=True)), corr_penalty=corr_penalty
    )
    assert np.all(np.abs(result.score) <= 1.0)
    assert np.all((result.level >= 0) & (result.level <= 1))
    assert np.all(np.abs(result.position) <= 1.0)
    sums = result.weights.sum(axis=1)
    assert np.all(np.isclose(sums, 1.0) | (sums == 0.0))


def test_unanimity_gives_level_one_and_split_votes_less() -> None:
    up = consensus({"a": [0.6, 0.7], "b": [0.55, 0.9]}, {"a": 1.0, "b": 2.0})
    np.testing.assert_array_equal(up.level, 1.0)
    split = consensus({"a": [0.7], "b": [0.4]}, {"a": 3.0, "b": 1.0})
    assert split.score[0] > 0
    assert split.level[0] == pytest.approx(0.75)


def test_opposite_votes_of_equal_weight_are_a_tie() -> None:
    """2 * 0.7 - 1 is 0.3999999999999999 in floats: the score was -5.6e-17, read as a short
    side with a consensus level of 0.5."""
    tie = consensus({"a": [0.7], "b": [0.3]}, {"a": 1.0, "b": 1.0})
    assert tie.score[0] == 0.0
    assert tie.level[0] == 0.0
    assert tie.position[0] == 0.0


def test_returns_a_rounding_step_apart_are_no_record() -> None:
    """Their spread of 1e-19 gave a Sharpe of 1e14, and the model took every weight."""
    x = 0.001
    flat_ish = [x, x, x, float(np.nextafter(x, 1.0))]
    good = np.random.default_rng(0).normal(0.002, 0.01, 1000)
    reliability = reliability_from_history({"flat_ish": flat_ish, "good": good})
    assert reliability["flat_ish"] == 0.0
    assert reliability["good"] > 0.0
    blended = consensus({"flat_ish": [0.51], "good": [0.2]}, reliability)
    np.testing.assert_array_equal(blended.weights, [[0.0, 1.0]])


def test_threshold_adapts_to_recent_dispersion_without_looking_ahead() -> None:
    rng = np.random.default_rng(4)
    calm = 0.5 + rng.normal(0, 0.01, 300)
    wild = np.clip(0.5 + rng.normal(0, 0.2, 150), 0, 1)
    calm_again = 0.5 + rng.normal(0, 0.01, 150)
    p = np.concatenate([calm, wild, calm_again])
    result = consensus({"m": p}, {"m": 1.0}, base_threshold=0.1, dispersion_window=48)
    assert np.all(result.threshold[:24] == 0.1)  # ratio 1 before enough history
    # steady dispersion: near the base
    assert 0.07 < result.threshold[100:300].min() <= result.threshold[100:300].max() < 0.13
    assert result.threshold[350:450].min() > 0.15  # S noisier than usual: a higher bar
    np.testing.assert_allclose(result.threshold[500:], 0.05)  # quieter than usual: floor 0.5 x
    assert result.threshold.max() <= 0.2 + 1e-12  # bounded at 2 x base
    # the threshold at t uses scores before t only
    later = p.copy()
    later[450:] = 0.5
    again = consensus({"m": later}, {"m": 1.0}, base_threshold=0.1, dispersion_window=48)
    np.testing.assert_array_equal(again.threshold[:451], result.threshold[:451])
    # a streaming call with the earlier scores as history gives the same threshold
    tail = consensus(
        {"m": p[500:]},
        {"m": 1.0},
        base_threshold=0.1,
        dispersion_window=48,
        score_history=result.score[:500],
    )
    np.testing.assert_allclose(tail.threshold, result.threshold[500:], rtol=1e-9)


def test_position_rule() -> None:
    result = consensus(
        {"m": [0.5, 0.52, 0.6, 0.75, 0.95, 0.2]},
        {"m": 1.0},
        base_threshold=0.1,
        position_cap=0.5,
    )
    # S = 0, 0.04, 0.2, 0.5, 0.9, -0.6: below threshold -> 0; else sign(S) min(1, |S| / 0.5)
    np.testing.assert_allclose(result.position, [0, 0, 0.4, 1.0, 1.0, -1.0], atol=1e-12)


def test_events_are_emitted_exactly_at_position_changes() -> None:
    p = np.array([0.5, 0.7, 0.7, 0.75, 0.5, 0.2, 0.2, 0.5])
    result = consensus({"m": p, "n": p}, {"m": 1.0, "n": 1.0}, base_threshold=0.1)
    times = pd.date_range("2024-03-01", periods=len(p), freq="4h", tz="UTC")
    regimes = ["range", "trend", "trend", "trend", "range", "panic", "panic", "range"]
    events = decision_events(result, times, pair="BTCUSDT", horizon="4h", regimes=regimes)
    changes = np.flatnonzero(np.diff(np.concatenate([[0.0], result.position])) != 0)
    assert [e.time_utc for e in events] == [times[t].to_pydatetime() for t in changes]
    assert [e.reason.split(":")[0] for e in events] == [
        "open long",
        "increase long",
        "close long",
        "open short",
        "close short",
    ]
    assert [e.regime for e in events] == [regimes[t] for t in changes]
    first = events[0].to_dict()
    assert json.loads(json.dumps(first))["time_utc"].startswith("2024-03-01T04:00:00")
    assert first["model_votes"] == {"m": pytest.approx(0.4), "n": pytest.approx(0.4)}
    assert first["weights"] == {"m": 0.5, "n": 0.5}
    assert first["previous_position"] == 0.0
    with pytest.raises(ValidationError):
        events[0].position = 0.0  # type: ignore[misc]
    assert isinstance(events[0], DecisionEvent)
    resumed = decision_events(
        result, times, pair="BTCUSDT", horizon="4h", regimes="range", initial_position=0.8
    )
    assert resumed[0].reason.startswith("close long")


def test_bad_inputs_name_the_model_and_row() -> None:
    with pytest.raises(ValueError, match=r"probas\['b'\] row 1"):
        consensus({"a": [0.5, 0.5], "b": [0.5, np.nan]}, {"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="reliability is missing"):
        consensus({"a": [0.5]}, {})
    with pytest.raises(ValueError, match="3 rows"):
        consensus({"a": [0.5, 0.5], "b": [0.5, 0.5, 0.5]}, {"a": 1.0, "b": 1.0})


def test_reliability_rewards_edge_and_long_records() -> None:
    rng = np.random.default_rng(5)
    good = rng.normal(0.005, 0.01, 500)
    rel = reliability_from_history(
        {"good": good, "short": good[:50], "bad": -good, "none": [], "nan": [np.nan, 0.01]}
    )
    assert rel["good"] > rel["short"] > 0  # same edge, more evidence
    assert rel["bad"] == 0.0
    assert rel["none"] == 0.0
    assert rel["nan"] == 0.0
    sharpe = good.mean() / good.std(ddof=1)
    assert rel["good"] == pytest.approx(sharpe * 500 / 600)
    hits = reliability_from_history({"good": good, "flat": np.zeros(100)}, method="hit_rate")
    assert hits["good"] == pytest.approx((2 * (good > 0).mean() - 1) * 500 / 600)
    assert hits["flat"] == 0.0
