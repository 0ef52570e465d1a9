"""Purged and embargoed walk-forward splits for labels that resolve after their decision time."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.splits.walk_forward import LeakageError, Step, check_no_leakage

__all__ = ["PurgedWalkForward", "check_purged"]

IntArray = npt.NDArray[np.int64]

# Sentinel for a label that never resolves (NaT): it can never enter a training set.
_NEVER_NS = np.iinfo(np.int64).max


def _as_utc(value: pd.Timestamp | str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _ns(times: pd.Series | pd.DatetimeIndex, name: str) -> IntArray:
    index = pd.DatetimeIndex(times)
    if index.tz is None:
        raise ValueError(f"{name} must be tz-aware (UTC)")
    return np.asarray(index.as_unit("ns").asi8, dtype=np.int64)


def _positive(name: str, value: pd.Timedelta | None) -> pd.Timedelta | None:
    if value is None:
        return None
    delta = pd.Timedelta(value)
    if delta <= pd.Timedelta(0):
        raise ValueError(f"{name} must be positive, got {delta}")
    return delta


class PurgedWalkForward:
    """Walk forward in fixed calendar steps, purging and embargoing overlapping labels.

    Step ``s`` starts at ``t_s = start_utc + s * test_bars_step``. Its test rows are those
    with ``decision_time_utc`` in ``[t_s, t_s + test_bars_step)`` (and before ``end_utc``).
    Its training rows are those with ``decision_time_utc < t_s`` whose label resolved
    strictly before ``t_s - embargo``::

        label_end_utc < t_s - embargo

    With ``embargo = 0`` this is the purge alone: a training label resolving at or after the
    test window opens is dropped. A positive embargo additionally drops training labels that
    resolve within ``embargo`` before ``t_s``, so serially correlated features or returns just
    before the test window do not leak into it. A row whose ``label_end_utc`` is NaT never
    trains. Steps without test rows or without training rows are skipped; step numbers count
    the yielded steps. Every step is checked with :func:`check_purged`.

    Parameters
    ----------
    test_bars_step
        Length of each test window (e.g. ``pd.Timedelta(days=7)``).
    embargo
        Extra gap between the last training label's resolution and the test window (>= 0).
    min_train
        Skip steps that start less than ``min_train`` after the earliest decision time.
    max_train
        Train only on rows decided within ``max_train`` before ``t_s`` (a rolling window).
    horizon
        The label horizon (decision to resolution, latency included). When given, an
        ``embargo`` shorter than it is rejected.
    """

    def __init__(
        self,
        test_bars_step: pd.Timedelta,
        embargo: pd.Timedelta,
        min_train: pd.Timedelta | None = None,
        max_train: pd.Timedelta | None = None,
        *,
        horizon: pd.Timedelta | None = None,
    ) -> None:
        step = _positive("test_bars_step", test_bars_step)
        assert step is not None
        self.test_bars_step = step
        self.embargo = pd.Timedelta(embargo)
        if self.embargo < pd.Timedelta(0):
            raise ValueError(f"embargo must be >= 0, got {self.embargo}")
        self.min_train = _positive("min_train", min_train)
        self.max_train = _positive("max_train", max_train)
        if (
            self.min_train is not None
            and self.max_train is not None
            and self.max_train < self.min_train
        ):
            raise ValueError(
                f"max_train {self.max_train} is shorter than min_train {self.min_train}"
            )
        self.horizon = _positive("horizon", horizon)
        if self.horizon is not None and self.embargo < self.horizon:
            raise ValueError(
                f"embargo {self.embargo} is shorter than the label horizon {self.horizon}; "
                "use an embargo of at least the horizon"
            )

    def split(
        self,
        decision_time_utc: pd.Series,
        label_end_utc: pd.Series,
        start_utc: pd.Timestamp | str,
        end_utc: pd.Timestamp | str | None = None,
    ) -> Iterator[Step]:
        """Yield steps in time order; indices are positions into the given series.

        Parameters
        ----------
        decision_time_utc
            When each row's forecast is made (tz-aware); need not be sorted.
        label_end_utc
            When each row's label resolves (tz-aware, NaT allowed), same length.
        start_utc
            Start of the first test window (naive values are read as UTC).
        end_utc
            End (exclusive) of the last test window, which is cut short there; by default
            steps continue until one covers the last decision time.
        """
        decision = _ns(decision_time_utc, "decision_time_utc")
        label_end_index = pd.DatetimeIndex(label_end_utc)
        label_end = _ns(label_end_index, "label_end_utc")
        if len(decision) != len(label_end):
            raise ValueError(
                f"decision_time_utc has {len(decision)} rows, label_end_utc {len(label_end)}"
            )
        if pd.isna(pd.DatetimeIndex(decision_time_utc)).any():
            raise ValueError("decision_time_utc has missing values")
        label_end = np.where(label_end_index.isna(), _NEVER_NS, label_end)
        if np.any(label_end < decision):
            row = int(np.flatnonzero(label_end < decision)[0])
            raise ValueError(f"row {row}: label_end_utc is before decision_time_utc")
        if len(decision) == 0:
            return
        start = _as_utc(start_utc)
        # Without end_utc, steps run until one covers the last decision time.
        end_ns = int(decision.max()) + 1 if end_utc is None else _as_utc(end_utc).value
        clip_ns = None if end_utc is None else end_ns
        if self.min_train is not None:
            earliest_allowed = pd.Timestamp(int(decision.min()), tz="UTC") + self.min_train
            if earliest_allowed > start:
                skip = int(np.ceil((earliest_allowed - start) / self.test_bars_step))
                start = start + skip * self.test_bars_step

        order = np.argsort(decision, kind="stable")
        sorted_decision = decision[order]
        step_ns = self.test_bars_step.value
        embargo_ns = self.embargo.value
        number = 0
        window_start = start.value
        while window_start < end_ns:
            window_end = window_start + step_ns
            if clip_ns is not None:
                window_end = min(window_end, clip_ns)
            lo, hi = np.searchsorted(sorted_decision, [window_start, window_end], side="left")
            test_index = np.sort(order[lo:hi])
            before = order[:lo]
            keep = label_end[before] < window_start - embargo_ns
            if self.max_train is not None:
                keep &= decision[before] >= window_start - self.max_train.value
            train_index = np.sort(before[keep])
            if len(test_index) and len(train_index):
                check_purged(
                    decision_time_utc, label_end_utc, train_index, test_index, self.embargo
                )
                yield Step(
                    number,
                    pd.Timestamp(window_start, tz="UTC"),
                    pd.Timestamp(window_end, tz="UTC"),
                    train_index,
                    test_index,
                )
                number += 1
            window_start += step_ns


def check_purged(
    decision_time_utc: pd.Series,
    label_end_utc: pd.Series,
    train_index: npt.ArrayLike,
    test_index: npt.ArrayLike,
    embargo: pd.Timedelta,
) -> None:
    """Raise :class:`LeakageError` if any training label reaches into the embargoed test window.

    Holds when every training row is decided before the earliest test decision and every
    training label resolved strictly before ``earliest test decision - embargo`` (NaT counts
    as never resolved).
    """
    train = np.asarray(train_index, dtype=np.int64)
    test = np.asarray(test_index, dtype=np.int64)
    if len(train) == 0 or len(test) == 0:
        return
    decision = pd.DatetimeIndex(decision_time_utc)
    check_no_leakage(decision, train, test)
    label_end = pd.DatetimeIndex(label_end_utc)
    train_end = label_end[train]
    if train_end.isna().any():
        raise LeakageError("a training row has no label end time (its label never resolves)")
    earliest_test = decision[test].min()
    latest_label = train_end.max()
    limit = earliest_test - pd.Timedelta(embargo)
    if not latest_label < limit:
        raise LeakageError(
            f"a training label resolves at {latest_label}, not before {limit} "
            f"(earliest test decision {earliest_test} minus embargo {pd.Timedelta(embargo)})"
        )
