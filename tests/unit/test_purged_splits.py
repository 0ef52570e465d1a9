"""Purged, embargoed walk-forward: no training label reaches the test window, steps in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketcast.labels.crypto import forward_returns
from marketcast.splits.purged import PurgedWalkForward, check_purged
from marketcast.splits.walk_forward import LeakageError

HOUR = pd.Timedelta(hours=1)
ORIGIN = pd.Timestamp("2023-01-01", tz="UTC")


def hourly(offsets_hours: list[int] | np.ndarray) -> pd.Series:
    return pd.Series(ORIGIN + pd.to_timedelta(np.asarray(offsets_hours), unit="h"))


def brute_force_train(
    decision: pd.Series,
    label_end: pd.Series,
    start: pd.Timestamp,
    embargo: pd.Timedelta,
    max_train: pd.Timedelta | None = None,
) -> np.ndarray:
    keep = (decision < start) & (label_end < start - embargo)
    if max_train is not None:
        keep &= decision >= start - max_train
    return np.flatnonzero(keep.to_numpy())


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(0, 600), min_size=1, max_size=120),
    horizon_hours=st.integers(1, 48),
    extra_embargo_hours=st.integers(0, 48),
    step_hours=st.integers(1, 120),
    start_hours=st.integers(0, 300),
    max_train_hours=st.one_of(st.none(), st.integers(1, 400)),
)
def test_no_training_label_overlaps_the_test_window(
    offsets: list[int],
    horizon_hours: int,
    extra_embargo_hours: int,
    step_hours: int,
    start_hours: int,
    max_train_hours: int | None,
) -> None:
    decision = hourly(offsets)
    # Labels of varying length up to the horizon, as with latency and gaps.
    label_end = decision + pd.to_timedelta([1 + o % horizon_hours for o in offsets], unit="h")
    horizon = pd.Timedelta(hours=horizon_hours)
    embargo = horizon + pd.Timedelta(hours=extra_embargo_hours)
    max_train = None if max_train_hours is None else pd.Timedelta(hours=max_train_hours)
    splitter = PurgedWalkForward(
        pd.Timedelta(hours=step_hours), embargo, max_train=max_train, horizon=horizon
    )
    start = ORIGIN + pd.Timedelta(hours=start_hours)
    steps = list(splitter.split(decision, label_end, start))

    previous_end = None
    seen_test: set[int] = set()
    for number, step in enumerate(steps):
        assert step.number == number
        train, test = step.train_index, step.test_index
        assert len(train) > 0
        assert len(test) > 0
        # Purge and embargo: every training label resolved before test start - embargo.
        assert (label_end.iloc[train] < step.start_utc - embargo).all()
        assert label_end.iloc[train].max() < decision.iloc[test].min()
        assert decision.iloc[train].max() < decision.iloc[test].min()
        # Test rows lie in the step's window.
        assert (decision.iloc[test] >= step.start_utc).all()
        assert (decision.iloc[test] < step.end_utc).all()
        # Exactly the rows the rule keeps (differential check against a brute force).
        np.testing.assert_array_equal(
            train, brute_force_train(decision, label_end, step.start_utc, embargo, max_train)
        )
        # Time order, disjoint windows, disjoint test sets.
        if previous_end is not None:
            assert step.start_utc >= previous_end
        previous_end = step.end_utc
        assert seen_test.isdisjoint(test.tolist())
        seen_test.update(test.tolist())
        check_purged(decision, label_end, train, test, embargo)
    # Coverage: every row from start on is tested unless its window has nothing to train on.
    step = pd.Timedelta(hours=step_hours)
    for row, decided in enumerate(decision):
        if decided < start:
            assert row not in seen_test
            continue
        window_start = start + ((decided - start) // step) * step
        trainable = len(brute_force_train(decision, label_end, window_start, embargo, max_train))
        assert (row in seen_test) == (trainable > 0)


def test_embargo_shorter_than_the_horizon_is_rejected() -> None:
    with pytest.raises(ValueError, match="shorter than the label horizon"):
        PurgedWalkForward(pd.Timedelta(days=7), pd.Timedelta(hours=3), horizon=4 * HOUR)
    ok = PurgedWalkForward(pd.Timedelta(days=7), 4 * HOUR, horizon=4 * HOUR)
    assert ok.embargo == ok.horizon == 4 * HOUR
    with pytest.raises(ValueError, match="embargo must be >= 0"):
        PurgedWalkForward(pd.Timedelta(days=7), -HOUR)
    with pytest.raises(ValueError, match="test_bars_step must be positive"):
        PurgedWalkForward(pd.Timedelta(0), HOUR)
    with pytest.raises(ValueError, match="shorter than min_train"):
        PurgedWalkForward(
            pd.Timedelta(days=7), HOUR, min_train=pd.Timedelta(days=30), max_train=pd.Timedelta(1)
        )


def test_purge_and_embargo_drop_the_right_rows() -> None:
    decision = hourly(np.arange(100))
    label_end = decision + 4 * HOUR
    start = ORIGIN + 50 * HOUR
    # Purge only: labels must resolve before hour 50, so decisions up to hour 45.
    purge_only = PurgedWalkForward(pd.Timedelta(hours=10), pd.Timedelta(0))
    first = next(iter(purge_only.split(decision, label_end, start)))
    assert first.train_index.max() == 45
    assert first.test_index.tolist() == list(range(50, 60))
    # Embargo of 6 h: labels must resolve before hour 44, so decisions up to hour 39.
    embargoed = PurgedWalkForward(pd.Timedelta(hours=10), 6 * HOUR, horizon=4 * HOUR)
    first = next(iter(embargoed.split(decision, label_end, start)))
    assert first.train_index.tolist() == list(range(40))
    steps = list(embargoed.split(decision, label_end, start))
    assert [s.start_utc for s in steps] == [start + k * 10 * HOUR for k in range(5)]
    assert steps[-1].end_utc == ORIGIN + 100 * HOUR


def test_check_purged_raises_on_overlapping_labels() -> None:
    decision = hourly([0, 1, 2, 10, 11])
    label_end = decision + 5 * HOUR
    # Row 2's label resolves at hour 7, inside a 4 h embargo before the test at hour 10.
    with pytest.raises(LeakageError, match="training label resolves"):
        check_purged(decision, label_end, np.array([0, 1, 2]), np.array([3, 4]), 4 * HOUR)
    check_purged(decision, label_end, np.array([0]), np.array([3, 4]), 4 * HOUR)
    # A training row decided after a test row is caught too.
    with pytest.raises(LeakageError):
        check_purged(decision, label_end, np.array([4]), np.array([3]), pd.Timedelta(0))


def test_min_train_max_train_and_unresolved_labels() -> None:
    decision = hourly(np.arange(200))
    label_end = decision + 2 * HOUR
    label_end.iloc[10] = pd.NaT  # never resolves: never trains
    splitter = PurgedWalkForward(
        pd.Timedelta(hours=20),
        2 * HOUR,
        min_train=pd.Timedelta(hours=50),
        max_train=pd.Timedelta(hours=60),
    )
    steps = list(splitter.split(decision, label_end, ORIGIN, end_utc=ORIGIN + 150 * HOUR))
    assert steps[0].start_utc == ORIGIN + 60 * HOUR  # first step at or after 50 h of data
    assert steps[-1].start_utc == ORIGIN + 140 * HOUR
    assert steps[-1].end_utc == ORIGIN + 150 * HOUR  # cut at end_utc
    assert steps[-1].test_index.tolist() == list(range(140, 150))
    for step in steps:
        assert 10 not in step.train_index
        train_decisions = decision.iloc[step.train_index]
        window_start = step.start_utc - pd.Timedelta(hours=60)
        assert (train_decisions >= window_start).all()
        # 60 h window minus purge (2 h labels) and embargo (2 h), minus row 10 while in it.
        unresolved_in_window = int(decision.iloc[10] >= window_start)
        assert len(step.train_index) == 60 - 4 - unresolved_in_window


def test_purged_splits_on_real_forward_returns() -> None:
    path = Path("/work/shared/data/crypto/BTCUSDT_1h.csv")
    if not path.exists():
        pytest.skip("real data not available")
    raw = pd.read_csv(path, nrows=24 * 60)
    candles = pd.DataFrame(
        {
            "pair": raw["ticker"],
            "open_time_utc": pd.to_datetime(raw["date"], utc=True),
            "open": raw["open"],
        }
    )
    labels = forward_returns(candles, 24, latency_bars=1)
    decision = candles["open_time_utc"] + HOUR
    horizon = labels["label_end_utc"].iloc[0] - decision.iloc[0]
    assert horizon == 25 * HOUR
    splitter = PurgedWalkForward(pd.Timedelta(days=7), horizon, horizon=horizon)
    start = decision.iloc[0].floor("D") + pd.Timedelta(days=21)
    steps = list(splitter.split(decision, labels["label_end_utc"], start))
    assert len(steps) >= 5
    for step in steps:
        gap = step.start_utc - decision.iloc[step.train_index].max()
        # The last training decision is at least horizon + embargo (50 h) before the test.
        assert gap > 2 * horizon
