"""The evaluation window both verticals read from ``--start`` / ``--end`` (or their config)."""

from __future__ import annotations

from datetime import datetime

import pandas as pd


def as_utc(value: str | pd.Timestamp) -> pd.Timestamp:
    """A date or time as a UTC timestamp; a naive value (``2024-08-01``) is read as UTC.

    Text must be ISO 8601: ``01/10/2021`` is refused, not guessed (pandas would read it as
    10 January while the football files write 1 October that way).

    Examples
    --------
    >>> as_utc("2024-08-01")
    Timestamp('2024-08-01 00:00:00+0000', tz='UTC')
    >>> as_utc("2024-08-01T02:00:00+02:00")
    Timestamp('2024-08-01 00:00:00+0000', tz='UTC')
    >>> as_utc("01/10/2021")
    Traceback (most recent call last):
    ...
    ValueError: '01/10/2021' is not an ISO 8601 date: write it as YYYY-MM-DD
    """
    if isinstance(value, str):
        try:
            ts = pd.Timestamp(datetime.fromisoformat(value.strip()))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date: write it as YYYY-MM-DD") from None
    else:
        ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc_window(
    start: str | pd.Timestamp, end: str | pd.Timestamp | None
) -> tuple[pd.Timestamp, pd.Timestamp | None]:
    """``start`` and ``end`` as UTC; ``ValueError`` naming both when ``end`` is not after ``start``.

    Examples
    --------
    >>> utc_window("2023-01-01", "2022-01-01")
    Traceback (most recent call last):
    ...
    ValueError: --end 2022-01-01 must be after --start 2023-01-01
    """
    start_utc = as_utc(start)
    end_utc = as_utc(end) if end is not None else None
    if end_utc is not None and end_utc <= start_utc:
        raise ValueError(f"--end {end} must be after --start {start}")
    return start_utc, end_utc
