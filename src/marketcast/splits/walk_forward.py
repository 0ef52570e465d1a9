"""Walk-forward splits in calendar steps: train on everything before a step, test on the step."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd


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
    """Calendar walk-forward: step ``s`` tests ``[t_s, t_s + step)`` and trains on ``< t_s``.

    Steps start at midnight UTC of the first test match's day and advance by ``step_days``;
    steps without a test match are skipped. Every step is checked: the latest training kickoff
    is strictly before the earliest test kickoff, otherwise :class:`LeakageError` is raised.

    Parameters
    ----------
    step_days
        Length of a step; 7 gives "before each week, fit on everything earlier".
    """

    def __init__(self, step_days: int = 7) -> None:
        if step_days < 1:
            raise ValueError(f"step_days must be >= 1, got {step_days}")
        self.step_days = step_days

    def split(self, kickoff_utc: pd.Series, test_mask: np.ndarray) -> Iterator[Step]:
        """Yield steps in time order over the rows where ``test_mask`` is true."""
        kickoff = pd.DatetimeIndex(kickoff_utc)
        test_mask = np.asarray(test_mask, dtype=bool)
        if not test_mask.any():
            return
        ns = kickoff.asi8
        first = kickoff[test_mask].min().floor("D")
        last = kickoff[test_mask].max()
        step = pd.Timedelta(days=self.step_days)
        start = first
        number = 0
        while start <= last:
            end = start + step
            in_step = test_mask & (ns >= start.value) & (ns < end.value)
            if in_step.any():
                train_index = np.flatnonzero(ns < start.value)
                test_index = np.flatnonzero(in_step)
                check_no_leakage(kickoff, train_index, test_index)
                yield Step(number, start, end, train_index, test_index)
                number += 1
            start = end


def check_no_leakage(
    kickoff: pd.DatetimeIndex, train_index: np.ndarray, test_index: np.ndarray
) -> None:
    """Raise :class:`LeakageError` unless every training row kicks off before every test row."""
    if len(train_index) == 0 or len(test_index) == 0:
        return
    latest_train = kickoff[train_index].max()
    earliest_test = kickoff[test_index].min()
    if not latest_train < earliest_test:
        raise LeakageError(
            f"training data reaches {latest_train}, not before the earliest test kickoff "
            f"{earliest_test}"
        )
