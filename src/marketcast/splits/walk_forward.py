"""Walk-forward splits in calendar steps: train on every result known before a step, test on it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from marketcast.features.football import LEAGUE_RESULT_DELAY_HOURS


class LeakageError(AssertionError):
    """A split whose training data is not strictly earlier than its test data."""


@dataclass(frozen=True)
class Step:
    """One walk-forward step: the rows to train on and the rows to predict."""

    number: int
    start_utc: pd.Timestamp
    end_utc: pd.Timestamp
    train_index: np.ndarray
    test_index: np.ndarray


class WalkForwardSplit:
    """Calendar walk-forward: step ``s`` tests ``[t_s, t_s + step)`` and trains on the matches
    whose result is known by ``t_s``: kickoff + ``result_delay_hours`` <= ``t_s``.

    Steps start at midnight UTC of the first test match's day and advance by ``step_days``;
    steps without a test match are skipped. A match kicking off at 23:30 UTC (result known about
    01:20) so does not train the step starting at the next midnight, which may hold a 00:30
    kickoff; one kicking off at 21:00 still does. Every step is checked: every training kickoff
    is strictly before, and every training result known by, the earliest test kickoff, otherwise
    :class:`LeakageError` is raised.

    Parameters
    ----------
    step_days
        Length of a step; 7 gives "before each week, fit on every result known by then".
    result_delay_hours
        Hours from a kickoff until its result is known; the features use the same
        (``LEAGUE_RESULT_DELAY_HOURS``, 3).

    Examples
    --------
    >>> kickoff = pd.Series(pd.to_datetime(["2021-03-07 21:00", "2021-03-07 23:30",
    ...                                     "2021-03-08 00:30"], utc=True))
    >>> [s.train_index.tolist() for s in WalkForwardSplit(7).split(kickoff, [False, False, True])]
    [[0]]
    """

    def __init__(
        self, step_days: int = 7, result_delay_hours: float = LEAGUE_RESULT_DELAY_HOURS
    ) -> None:
        if step_days < 1:
            raise ValueError(f"step_days must be >= 1, got {step_days}")
        if not result_delay_hours >= 0:
            raise ValueError(f"result_delay_hours must be >= 0, got {result_delay_hours}")
        self.step_days = step_days
        self.result_delay_hours = result_delay_hours

    def split(self, kickoff_utc: pd.Series, test_mask: np.ndarray) -> Iterator[Step]:
        """Steps in time order over the rows where ``test_mask`` is true.

        Raises
        ------
        ValueError
            When a test row falls in no step (a missing kickoff), at the call, before any fit.
        """
        # Compare in nanoseconds whatever the column's unit (pandas 3 reads ISO text as
        # microseconds): ``asi8`` is in the column's own unit, ``Timestamp.value`` always in ns.
        kickoff = pd.DatetimeIndex(kickoff_utc).as_unit("ns")
        test_mask = np.asarray(test_mask, dtype=bool)
        if not test_mask.any():
            return iter(())
        ns = kickoff.asi8
        known = ~np.asarray(kickoff.isna(), dtype=bool)
        delay = pd.Timedelta(hours=self.result_delay_hours)
        result_ns = np.where(known, ns + delay.value, np.iinfo(np.int64).max)
        first = kickoff[test_mask].min().floor("D")
        last = kickoff[test_mask].max()
        step = pd.Timedelta(days=self.step_days)
        steps: list[Step] = []
        start = first
        while start <= last:
            end = start + step
            in_step = test_mask & (ns >= start.value) & (ns < end.value)
            if in_step.any():
                train_index = np.flatnonzero(result_ns <= start.value)
                test_index = np.flatnonzero(in_step)
                check_no_leakage(kickoff, train_index, test_index, min_gap=delay)
                steps.append(Step(len(steps), start, end, train_index, test_index))
            start = end
        n_covered = sum(len(s.test_index) for s in steps)
        if n_covered != int(test_mask.sum()):
            raise ValueError(
                f"{int(test_mask.sum()) - n_covered} of {int(test_mask.sum())} test rows fall in "
                "no walk-forward step (a missing kickoff_utc?)"
            )
        return iter(steps)


def check_no_leakage(
    kickoff: pd.DatetimeIndex,
    train_index: np.ndarray,
    test_index: np.ndarray,
    *,
    min_gap: pd.Timedelta | None = None,
) -> None:
    """Raise :class:`LeakageError` unless every training row kicks off before every test row.

    With ``min_gap`` (the time until a result is known), every training kickoff plus the gap
    must also be at or before the earliest test kickoff.
    """
    if len(train_index) == 0 or len(test_index) == 0:
        return
    latest_train = kickoff[train_index].max()
    earliest_test = kickoff[test_index].min()
    if not latest_train < earliest_test:
        raise LeakageError(
            f"training data reaches {latest_train}, not before the earliest test kickoff "
            f"{earliest_test}"
        )
    if min_gap is not None and latest_train + min_gap > earliest_test:
        raise LeakageError(
            f"a training match kicked off at {latest_train}: its result, known {min_gap} later, "
            f"is not in before the earliest test kickoff {earliest_test}"
        )
