"""Validation of hourly OHLCV candles: bar checks, duplicates, vendors, spikes, gap repair."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.data.validation import DataError, IntegrityReport, Issue

log = logging.getLogger(__name__)

#: Columns of the normalised candle table, in order (the contract other stages rely on).
CANDLE_COLUMNS: tuple[str, ...] = (
    "pair",
    "open_time_utc",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "quote_volume_estimated",
    "trades",
    "vendor",
    "repaired",
)
#: Columns of the normalised funding table.
FUNDING_COLUMNS: tuple[str, ...] = ("pair", "funding_time_utc", "funding_rate")
#: Columns of the normalised open-interest table.
OPEN_INTEREST_COLUMNS: tuple[str, ...] = (
    "pair",
    "time_utc",
    "open_interest",
    "open_interest_value",
)
#: Columns of the gap table: one row per run of missing hours inside a pair's history.
GAP_COLUMNS: tuple[str, ...] = (
    "pair",
    "vendor",
    "gap_start_utc",
    "gap_end_utc",
    "missing_bars",
    "repaired",
)
#: Where each row came from; the loaders add them, `validate_candles` removes them.
SOURCE_COLUMNS: tuple[str, ...] = ("source_file", "source_row")
#: The old name of a renamed pair's row ("" for the other rows): the loaders add it only when
#: pairs are renamed, and the validators then keep the new pair's rows where both series run
#: (`drop_renamed_overlap`) and remove it.
RENAMED_FROM = "renamed_from"
#: Optional loader column: True where a row's pair is not the pair its file is named after (a few
#: ETHUSDT rows inside ``BTCUSDT_1h.csv``); such a copy of a bar loses to the named file's.
OFF_FILE_NAME = "pair_off_file_name"
#: Why an old pair's row is dropped where its new pair has rows (not in `CANDLE_DROP_REASONS`:
#: a report holds the count only when pairs are renamed).
RENAME_OVERLAP = "rename_overlap"

#: Vendor tags, in order of preference when two vendors give the same (pair, hour).
VENDOR_PREFERENCE: tuple[str, ...] = ("binance_spot", "cryptodatadownload", "binance_futures_um")

#: Reasons a row is dropped (every dropped row is counted under exactly one).
CANDLE_DROP_REASONS: tuple[str, ...] = (
    "unparseable_timestamp",
    "unparseable_value",
    "unaligned_timestamp",
    "timestamp_out_of_range",
    "missing_value",
    "non_finite_value",
    "non_positive_price",
    "high_below_open_close",
    "low_above_open_close",
    "negative_volume",
    "duplicate_bar",
    "conflicting_duplicate",
    "zero_volume",
    "vendor_overlap",
    "spike_outlier",
    "duplicate_funding",
    "negative_open_interest",
    "duplicate_open_interest",
)

HOUR_NS = 3_600_000_000_000
#: No exchange traded a crypto pair before this (Bitcoin's first block is of 3 January 2009):
#: an earlier bar is a broken timestamp (``0``, ``-3600``), dropped as ``timestamp_out_of_range``.
EARLIEST_BAR_UTC = pd.Timestamp("2009-01-01", tz="UTC")
#: At most this many issues of one reason go into a report's sample (counts stay complete), so
#: that one plentiful reason cannot crowd the others out of the sample.
MAX_ISSUES_PER_REASON = 50

#: Longest run of missing hours `repair_gaps` fills, by default (the loader's and the signal
#: server's pushes: both must repair alike, or pushed bars give other features than offline).
MAX_REPAIR_BARS = 3
_PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
_VOLUME_COLUMNS: tuple[str, ...] = ("volume", "quote_volume", "trades")
# values compared to tell an exact duplicate from a conflicting one
_VALUE_COLUMNS: tuple[str, ...] = (*_PRICE_COLUMNS, "volume", "quote_volume", "trades")
_UNKNOWN_FILE = "<frame>"
_MAD_TO_SIGMA = 1.4826  # MAD of a normal sample times this estimates its standard deviation


@dataclass(frozen=True)
class SpikeRule:
    """When a bar is a bad print: a spike in the close that reverts at once and nothing confirms.

    A bar ``t`` (with bars at ``t - 1h`` and ``t + 1h``) is dropped when all of these hold, with
    ``r_t = log(close_t / close_{t-1})``:

    1. ``|r_t| > max(k_mad * MAD_t, min_log_return)``, where ``MAD_t`` is the median absolute
       hourly log return (the MAD about zero) over the pair's previous ``window_bars`` bars (at
       least ``min_window_bars`` of them), times 1.4826 to read as a standard deviation;
    2. the next bar reverts it: ``r_{t+1}`` has the opposite sign and
       ``|r_t + r_{t+1}| <= revert_fraction * |r_t|``;
    3. the next bar does not open at the spike: ``|log(open_{t+1} / close_t)| >=
       confirm_fraction * |r_t|``. On a continuous exchange feed the next open equals the
       previous close, so a real spike (a flash crash, a news wick) is confirmed by the next bar's
       open and kept; only a close that nobody traded from is dropped.
    """

    k_mad: float = 20.0
    window_bars: int = 168
    min_window_bars: int = 24
    min_log_return: float = 0.05
    revert_fraction: float = 0.5
    confirm_fraction: float = 0.5


@dataclass(frozen=True)
class VendorCheck:
    """Closes of one pair compared between two vendors on the hours both cover."""

    pair: str
    vendor_a: str
    vendor_b: str
    bars_compared: int
    mismatches: int
    max_abs_rel_diff: float
    tolerance: float

    def to_dict(self) -> dict[str, Any]:
        """Return the check as a JSON-serialisable dict."""
        return asdict(self)


@dataclass
class CandleReport(IntegrityReport):
    """`IntegrityReport` with the candle-specific counts: gaps left open, vendor checks and
    files that hold only a header.

    Row invariant (as in the base report): ``rows_read == rows_kept + sum(dropped.values())``,
    where ``rows_kept`` counts output rows that came from a file; gap bars made by the repair are
    counted in ``repaired["gap_bars_filled"]``, so ``len(candles) + len(funding) +
    len(open_interest) == rows_kept + repaired.get("gap_bars_filled", 0)``.
    """

    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CANDLE_DROP_REASONS, 0))
    quotes_dropped: dict[str, int] = field(default_factory=dict)
    rows_by_kind: dict[str, int] = field(default_factory=dict)
    gaps_left: int = 0
    gap_bars_missing: int = 0
    vendor_checks: list[VendorCheck] = field(default_factory=list)
    #: files with a header and no data row (a truncated download?), in read order; each is also
    #: a ``header_only_file`` issue
    header_only_files: list[str] = field(default_factory=list)

    def merge(self, other: IntegrityReport) -> CandleReport:
        """Return a new report with the counts of ``self`` and ``other`` added up."""
        base = super().merge(other)
        merged = CandleReport(**{f.name: getattr(base, f.name) for f in fields(IntegrityReport)})
        merged.rows_by_kind = dict(self.rows_by_kind)
        merged.gaps_left = self.gaps_left
        merged.gap_bars_missing = self.gap_bars_missing
        merged.vendor_checks = list(self.vendor_checks)
        merged.header_only_files = list(self.header_only_files)
        if isinstance(other, CandleReport):
            merged.rows_by_kind = dict(Counter(self.rows_by_kind) + Counter(other.rows_by_kind))
            merged.gaps_left += other.gaps_left
            merged.gap_bars_missing += other.gap_bars_missing
            merged.vendor_checks.extend(other.vendor_checks)
            merged.header_only_files.extend(other.header_only_files)
        return merged

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serialisable dict (the base keys plus candle keys)."""
        out = super().to_dict()
        out["rows_by_kind"] = dict(sorted(self.rows_by_kind.items()))
        out["gaps_left"] = self.gaps_left
        out["gap_bars_missing"] = self.gap_bars_missing
        out["vendor_checks"] = [check.to_dict() for check in self.vendor_checks]
        out["header_only_files"] = list(self.header_only_files)
        return out


def check_bars(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    on_error: Literal["raise", "drop"] = "drop",
    latest_open: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Drop bars whose values cannot be a real hourly candle; each drop is counted and sampled.

    Rules, in order (a bar is counted under the first one it breaks): open time not on the hour
    (``unaligned_timestamp``); open time before `EARLIEST_BAR_UTC` or after ``latest_open``
    (``timestamp_out_of_range``); a price or the
    volume missing (``missing_value``); a price or a volume infinite, as ``close x volume``
    is when it overflows (``non_finite_value``); a price ``<= 0`` (``non_positive_price``);
    ``high < max(open, close)`` (``high_below_open_close``); ``low > min(open, close)``
    (``low_above_open_close``); a negative volume, quote volume or trade count
    (``negative_volume``).

    Parameters
    ----------
    frame
        Candles with the `CANDLE_COLUMNS` (``open_time_utc`` already parsed), optionally with
        ``source_file`` and ``source_row`` so that issues name the file and the line.
    report
        Receives the drop counts and an issue per dropped bar (up to the sample size).
    on_error
        ``"drop"``: drop and count. ``"raise"``: raise `DataError` for the first bad bar.
    latest_open
        The latest open time a bar may have (aware). ``None``: an hour before the wall clock,
        so a file's bar still in progress (partial values) or from the future is dropped.

    Returns
    -------
    DataFrame
        The bars that pass, in their original order.

    Raises
    ------
    DataError
        With ``on_error="raise"``, naming file, row and field of the first bad bar.
    """
    n = len(frame)
    reason = np.full(n, "", dtype=object)
    bad_field = np.full(n, "", dtype=object)

    def flag(mask: npt.ArrayLike, why: str, where: npt.NDArray[Any] | str) -> None:
        new = np.asarray(mask, dtype=bool) & (reason == "")
        reason[new] = why
        bad_field[new] = where if isinstance(where, str) else where[new]

    times = frame["open_time_utc"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    flag((times % HOUR_NS) != 0, "unaligned_timestamp", "open_time_utc")
    if latest_open is None:
        latest_open = pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=1)
    flag(
        (times < EARLIEST_BAR_UTC.value) | (times > latest_open.value),
        "timestamp_out_of_range",
        "open_time_utc",
    )
    required = [*_PRICE_COLUMNS, "volume"]
    values = frame[required].to_numpy(dtype=np.float64)  # (n, 5)
    flag(np.isnan(values).any(axis=1), "missing_value", _first_column(np.isnan(values), required))
    numbers = [*required, *_VOLUME_COLUMNS[1:]]
    infinite = np.isinf(frame[numbers].to_numpy(dtype=np.float64))
    flag(infinite.any(axis=1), "non_finite_value", _first_column(infinite, numbers))
    prices = values[:, :4]  # (n, 4) open, high, low, close
    with np.errstate(invalid="ignore"):
        non_positive = prices <= 0
        flag(non_positive.any(axis=1), "non_positive_price", _first_column(non_positive, required))
        o, h, lo, c = prices.T
        flag(h < np.maximum(o, c), "high_below_open_close", "high")
        flag(lo > np.minimum(o, c), "low_above_open_close", "low")
        volumes = frame[list(_VOLUME_COLUMNS)].to_numpy(dtype=np.float64)  # (n, 3)
        negative = volumes < 0
    flag(negative.any(axis=1), "negative_volume", _first_column(negative, list(_VOLUME_COLUMNS)))

    bad = _drop_flagged(frame, reason, bad_field, report, on_error)
    return frame.loc[~bad] if bad.any() else frame


def _drop_flagged(
    frame: pd.DataFrame,
    reason: npt.NDArray[np.object_],
    bad_field: npt.NDArray[np.object_],
    report: IntegrityReport,
    on_error: str,
    order: Sequence[str] | None = None,
) -> npt.NDArray[np.bool_]:
    """The rows of ``frame`` with a ``reason`` (the first rule each broke, "" for none), each
    reason counted as a drop in ``report`` with an issue per row naming file, line and its
    ``bad_field``; with ``on_error="raise"``, a `DataError` for the first such row instead.
    Reasons are counted in ``order`` when given, else as they first appear."""
    bad = reason != ""
    if not bad.any():
        return bad
    positions = np.flatnonzero(bad)
    if on_error == "raise":
        i = int(positions[0])
        col = str(bad_field[i])
        raise DataError(*_where(frame, i), col, str(reason[i]), _cell(frame, i, col))
    for why in order if order is not None else Counter(reason[positions].tolist()):
        hit = positions[reason[positions] == why]
        if not len(hit):
            continue
        report.drop(str(why), len(hit))
        for i in hit[: issue_room(report, str(why))]:
            col = str(bad_field[i])
            report.add_issue(
                Issue(*_where(frame, int(i)), col, str(why), _cell(frame, int(i), col))
            )
    return bad


def drop_duplicate_bars(frame: pd.DataFrame, report: IntegrityReport) -> pd.DataFrame:
    """Keep one bar per (pair, vendor, open_time_utc); count exact and conflicting copies.

    The bar kept is the one from a file named after its pair (a copy from another pair's file,
    `OFF_FILE_NAME`, loses: ten ETHUSDT rows inside ``BTCUSDT_1h.csv``, read first, replaced
    ETH's real bars with BTC's prices), then the one whose file gives its quote volume, then
    among those the one with a trade count, then the one read first (files in the order given,
    lines in file order). A
    dropped copy whose prices and volumes equal the kept bar's on every value both files give is
    a ``duplicate_bar``; any other is a ``conflicting_duplicate`` and is listed as an issue naming
    the first field that differs. A quote volume the loader estimated (``volume * close``, where
    ``quote_volume_estimated``) is not given by the file, so it is never compared.

    Parameters
    ----------
    frame
        Candles in read order (the loaders' concatenation order); without a
        ``quote_volume_estimated`` column, every non-missing quote volume counts as given.
    report
        Receives the counts and issues.

    Returns
    -------
    DataFrame
        One bar per key, in the original order.
    """
    keys = ["pair", "vendor", "open_time_utc"]
    dup = frame.duplicated(keys, keep=False).to_numpy()
    if not dup.any():
        return frame
    off_name = (
        frame.loc[dup, OFF_FILE_NAME].fillna(False).to_numpy(dtype=bool)
        if OFF_FILE_NAME in frame.columns
        else np.zeros(int(dup.sum()), dtype=bool)
    )
    sub = frame.loc[dup].assign(
        _off_name=off_name,
        _no_quote=~_quote_volume_given(frame.loc[dup]),
        _no_trades=frame.loc[dup, "trades"].isna().to_numpy(),
        _read=np.flatnonzero(dup),
    )
    sub = sub.sort_values([*keys, "_off_name", "_no_quote", "_no_trades", "_read"], kind="stable")
    first = ~sub.duplicated(keys, keep="first").to_numpy()
    group = np.cumsum(first) - 1  # group number of each row of ``sub``
    kept_pos = np.flatnonzero(first)[group]  # position in ``sub`` of each row's kept bar
    values = sub[list(_VALUE_COLUMNS)].to_numpy(dtype=np.float64, copy=True)  # (m, 7)
    # an estimated quote volume is the loader's, not the file's: like a missing value
    values[sub["_no_quote"].to_numpy(dtype=bool), _VALUE_COLUMNS.index("quote_volume")] = np.nan
    kept_values = values[kept_pos]
    both = ~np.isnan(values) & ~np.isnan(kept_values)
    differs = both & (values != kept_values)  # (m, 7)
    dropped = ~first
    conflicting = dropped & differs.any(axis=1)
    report.drop("duplicate_bar", int((dropped & ~conflicting).sum()))
    report.drop("conflicting_duplicate", int(conflicting.sum()))
    cols = list(_VALUE_COLUMNS)
    for i in np.flatnonzero(conflicting)[: issue_room(report, "conflicting_duplicate")]:
        j = int(np.argmax(differs[i]))
        k = kept_pos[i]
        kept_file, kept_row = _where(sub, int(k))
        report.add_issue(
            Issue(
                *_where(sub, int(i)),
                cols[j],
                "conflicting_duplicate",
                f"{float(values[i, j])!r} dropped, kept {float(kept_values[i, j])!r} "
                f"({kept_file} row {kept_row})",
            )
        )
    keep = np.ones(len(frame), dtype=bool)
    keep[sub["_read"].to_numpy()[dropped]] = False
    return frame.loc[keep]


def _quote_volume_given(frame: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """Per bar, whether its quote volume came from the file (not missing, not estimated)."""
    given = frame["quote_volume"].notna().to_numpy()
    if "quote_volume_estimated" not in frame.columns:
        return given
    return given & ~frame["quote_volume_estimated"].to_numpy(dtype=bool)


def drop_zero_volume_bars(frame: pd.DataFrame, report: IntegrityReport) -> pd.DataFrame:
    """Drop bars with zero volume (exchange placeholders), counted as ``zero_volume``.

    A zero-volume bar holds no trade: Binance writes the previous close as its OHLC during an
    outage. Dropping it leaves a one-hour gap that `repair_gaps` refills the same way but marks
    ``repaired=True``, so every no-trade hour in the output is flagged.
    """
    zero = (frame["volume"].to_numpy(dtype=np.float64) == 0) & ~frame["repaired"].to_numpy(bool)
    if not zero.any():
        return frame
    report.drop("zero_volume", int(zero.sum()))
    for i in np.flatnonzero(zero)[: issue_room(report, "zero_volume")]:
        report.add_issue(Issue(*_where(frame, int(i)), "volume", "zero_volume", "0"))
    return frame.loc[~zero]


def vendor_mismatch(a: pd.DataFrame, b: pd.DataFrame, tolerance: float = 0.005) -> CandleReport:
    """Compare closes of two candle sets on the (pair, hour) both hold.

    Parameters
    ----------
    a, b
        Candle frames (`CANDLE_COLUMNS`), typically one vendor each. Repaired bars are skipped.
    tolerance
        A bar mismatches when ``|close_a / close_b - 1| > tolerance``.

    Returns
    -------
    CandleReport
        One `VendorCheck` per pair present in both (``bars_compared``, ``mismatches``, the
        largest relative difference) and an issue per mismatched bar (up to the sample size).
        No rows are read or dropped by the comparison itself.

    Examples
    --------
    >>> t = pd.to_datetime(["2021-05-01 00:00", "2021-05-01 01:00"], utc=True)
    >>> a = pd.DataFrame({"pair": "BTCUSDT", "open_time_utc": t, "close": [100.0, 101.0],
    ...                   "vendor": "binance_spot", "repaired": False})
    >>> b = a.assign(close=[100.0, 103.0], vendor="cryptodatadownload")
    >>> check = vendor_mismatch(a, b).vendor_checks[0]
    >>> (check.bars_compared, check.mismatches, round(check.max_abs_rel_diff, 4))
    (2, 1, 0.0194)
    """
    report = CandleReport()
    report.dropped = {}
    cols = ["pair", "open_time_utc", "close", "vendor"]
    extra = [c for c in SOURCE_COLUMNS if c in a.columns]
    left = a.loc[~a["repaired"].to_numpy(bool), cols + extra]
    right = b.loc[~b["repaired"].to_numpy(bool), cols]
    both = left.merge(right, on=["pair", "open_time_utc"], suffixes=("_a", "_b"), sort=True)
    rel = np.abs(both["close_a"].to_numpy() / both["close_b"].to_numpy() - 1.0)
    mismatch = rel > tolerance
    both = both.assign(rel_diff=rel, is_mismatch=mismatch)
    vendor_a = _label(a)
    vendor_b = _label(b)
    for pair, grp in both.groupby("pair", sort=True):
        report.vendor_checks.append(
            VendorCheck(
                pair=str(pair),
                vendor_a=vendor_a,
                vendor_b=vendor_b,
                bars_compared=len(grp),
                mismatches=int(grp["is_mismatch"].sum()),
                max_abs_rel_diff=float(grp["rel_diff"].max()) if len(grp) else 0.0,
                tolerance=tolerance,
            )
        )
    bad = both.loc[mismatch]
    for row in bad.head(issue_room(report, "vendor_mismatch")).itertuples(index=False):
        file = str(getattr(row, "source_file", f"{vendor_a} vs {vendor_b}"))
        line = getattr(row, "source_row", None)
        report.add_issue(
            Issue(
                file,
                None if line is None else int(line),
                "close",
                "vendor_mismatch",
                f"{row.pair} {row.open_time_utc:%Y-%m-%d %H:%M}: "
                f"{vendor_a} {float(row.close_a)!r} vs {vendor_b} {float(row.close_b)!r} "
                f"({row.rel_diff:.4%})",
            )
        )
    return report


def drop_renamed_overlap(
    frame: pd.DataFrame, report: IntegrityReport, *, time_col: str = "open_time_utc"
) -> pd.DataFrame:
    """Where a renamed pair's old series runs into its new one, keep the new one.

    Rows read under an old name (`RENAMED_FROM` not empty) at or after the first row read
    under the new name (the same ``pair``) are dropped as `RENAME_OVERLAP`, with an issue each
    (up to the sample size): from its first row on, the new pair's series is the pair's series.
    The count is recorded even when it is 0, so a report says that renames were applied.

    Parameters
    ----------
    frame
        Rows with ``pair``, ``time_col`` and `RENAMED_FROM` (and optionally the source columns).
    report
        Receives the count and the issues.
    time_col
        The time column: ``open_time_utc``, ``funding_time_utc`` or ``time_utc``.

    Returns
    -------
    DataFrame
        The rows kept, in their original order.

    Examples
    --------
    >>> t = pd.to_datetime(["2024-09-10 02:00", "2024-09-10 03:00", "2024-09-10 03:00"], utc=True)
    >>> frame = pd.DataFrame({"pair": "POLUSDT", "open_time_utc": t,
    ...                       "renamed_from": ["MATICUSDT", "MATICUSDT", ""]})
    >>> report = IntegrityReport()
    >>> drop_renamed_overlap(frame, report)["renamed_from"].tolist()
    ['MATICUSDT', '']
    >>> report.dropped["rename_overlap"]
    1
    """
    renamed_from = frame[RENAMED_FROM].to_numpy(dtype=object)
    old = renamed_from != ""
    pairs = frame["pair"].to_numpy(dtype=object)
    times = frame[time_col].to_numpy(dtype="datetime64[ns]").view(np.int64)
    # a zero-volume placeholder is not trading (dropped next): it never starts the new series
    traded = frame["volume"].to_numpy(dtype=np.float64) > 0 if "volume" in frame else True
    overlap = np.zeros(len(frame), dtype=bool)
    first_new: dict[str, int] = {}
    for pair in sorted(set(pairs[old].tolist())):  # one pass per renamed pair: a handful
        new_rows = ~old & (pairs == pair) & traded
        if not new_rows.any():
            continue
        first_new[pair] = int(times[new_rows].min())
        old_rows = old & (pairs == pair)
        first_old = int(times[old_rows].min())
        if first_old >= first_new[pair]:  # every old row would go: the rename is backwards
            raise DataError(
                *_where(frame, int(np.flatnonzero(old_rows)[0])),
                "pair",
                f"pair_renames: {renamed_from[old_rows][0]} -> {pair}, but "
                f"{renamed_from[old_rows][0]}'s rows start "
                f"{pd.Timestamp(first_old, tz='UTC'):%Y-%m-%d %H:%M}, not before {pair}'s "
                f"({pd.Timestamp(first_new[pair], tz='UTC'):%Y-%m-%d %H:%M}): an old pair's "
                "history comes first; is the rename the wrong way round?",
            )
        overlap |= old_rows & (times >= first_new[pair])
        if "close" in frame and "open" in frame:
            _check_rename_join(frame, old_rows & ~overlap, new_rows, times, report)
    report.drop(RENAME_OVERLAP, int(overlap.sum()))
    for i in np.flatnonzero(overlap)[: issue_room(report, RENAME_OVERLAP)]:
        pair, when = str(pairs[i]), pd.Timestamp(int(times[i]), tz="UTC")
        report.add_issue(
            Issue(
                *_where(frame, int(i)),
                time_col,
                RENAME_OVERLAP,
                f"{renamed_from[i]} {when:%Y-%m-%d %H:%M} dropped: {pair}'s own rows start "
                f"{pd.Timestamp(first_new[pair], tz='UTC'):%Y-%m-%d %H:%M}",
            )
        )
    return frame.loc[~overlap] if overlap.any() else frame


#: A renamed pair's first open over its old pair's last close (in new units) outside
#: ``[1 / RENAME_JUMP, RENAME_JUMP]`` is reported: the ``new_per_old`` ratio is likely wrong.
RENAME_JUMP = 3.0


def _check_rename_join(
    frame: pd.DataFrame,
    old_rows: npt.NDArray[np.bool_],
    new_rows: npt.NDArray[np.bool_],
    times: npt.NDArray[np.int64],
    report: IntegrityReport,
) -> None:
    """Report (``rename_price_jump`` issue) a price jump across a rename's join."""
    if not old_rows.any():
        return
    last_old = int(np.flatnonzero(old_rows)[np.argmax(times[old_rows])])
    first_new = int(np.flatnonzero(new_rows)[np.argmin(times[new_rows])])
    before = float(frame["close"].iloc[last_old])
    after = float(frame["open"].iloc[first_new])
    if not (before > 0 and after > 0) or 1 / RENAME_JUMP <= after / before <= RENAME_JUMP:
        return
    detail = (
        f"{frame[RENAMED_FROM].iloc[last_old]} -> {frame['pair'].iloc[first_new]}: last close "
        f"{before:.6g} (in new units), first open {after:.6g}, {after / before:.3g}x: is "
        "new_per_old right?"
    )
    log.warning("pair_renames: %s", detail)
    report.add_issue(Issue(*_where(frame, last_old), "close", "rename_price_jump", detail))


def select_vendor(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    preference: Sequence[str] = VENDOR_PREFERENCE,
    tolerance: float = 0.005,
) -> pd.DataFrame:
    """Keep one vendor per (pair, hour), after comparing the vendors where they overlap.

    For every pair with bars from several vendors, each two vendors are compared with
    `vendor_mismatch` (the checks land in ``report`` when it is a `CandleReport`; mismatched bars
    are issues either way). Then, per (pair, open_time_utc), the bar of the vendor first in
    ``preference`` is kept and the others are dropped as ``vendor_overlap``.

    Parameters
    ----------
    frame
        Candles with at most one bar per (pair, vendor, hour).
    report
        Receives the checks, the counts and the issues.
    preference
        Vendor tags, most preferred first; a vendor not listed ranks after every listed one.
    tolerance
        Relative close difference above which two vendors' bars mismatch.

    Returns
    -------
    DataFrame
        One bar per (pair, open_time_utc).
    """
    vendors_per_pair = frame.groupby("pair", sort=True)["vendor"].nunique()
    multi = vendors_per_pair.index[vendors_per_pair.to_numpy() > 1]
    if len(multi) == 0:
        return frame
    rank_of = {v: i for i, v in enumerate(preference)}
    for pair in multi:
        sub = frame.loc[frame["pair"].to_numpy() == pair]
        vendors = sorted(sub["vendor"].unique(), key=lambda v: (rank_of.get(v, len(rank_of)), v))
        for i, va in enumerate(vendors):
            for vb in vendors[i + 1 :]:
                check = vendor_mismatch(
                    sub.loc[sub["vendor"].to_numpy() == va],
                    sub.loc[sub["vendor"].to_numpy() == vb],
                    tolerance,
                )
                if isinstance(report, CandleReport):
                    report.vendor_checks.extend(check.vendor_checks)
                for issue in check.issues:
                    report.add_issue(issue)
    rank = frame["vendor"].map(lambda v: rank_of.get(v, len(rank_of))).to_numpy(dtype=np.int64)
    order = np.lexsort((rank, frame["open_time_utc"].to_numpy(), frame["pair"].to_numpy()))
    losers = frame.iloc[order].duplicated(["pair", "open_time_utc"], keep="first").to_numpy()
    report.drop("vendor_overlap", int(losers.sum()))
    keep = np.ones(len(frame), dtype=bool)
    keep[order[losers]] = False
    return frame.loc[keep]


def spike_scale(
    log_close: npt.NDArray[np.float64], times_ns: npt.NDArray[np.int64], rule: SpikeRule
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """One pair's hourly log returns and `SpikeRule`'s robust scale before each bar.

    A return over a gap is not an hourly one (NaN, as the first bar's). The scale is the
    median absolute hourly log return of the previous ``window_bars`` bars (hourly returns have
    a median of ~0, so this is their MAD about zero) times 1.4826, to read as a standard
    deviation; NaN with fewer than ``min_window_bars`` of them. `drop_spikes` judges a close by
    it, and the signal server a pushed bar's open.
    """
    r = np.full(len(log_close), np.nan)
    r[1:] = np.diff(log_close)
    r[1:][np.diff(times_ns) != HOUR_NS] = np.nan
    mad = pd.Series(np.abs(r)).rolling(rule.window_bars, min_periods=rule.min_window_bars)
    scale = (_MAD_TO_SIGMA * mad.median()).shift(1).to_numpy()  # (n,) bars before t only
    return r, scale


def drop_spikes(
    frame: pd.DataFrame, report: IntegrityReport, rule: SpikeRule | None = None
) -> pd.DataFrame:
    """Drop bad-print bars: close spikes that revert next bar and that the next open ignores.

    Parameters
    ----------
    frame
        Candles sorted by (pair, open_time_utc), one bar per key.
    report
        Receives the ``spike_outlier`` count and an issue per dropped bar.
    rule
        Thresholds (see `SpikeRule`); the defaults are deliberately conservative.

    Returns
    -------
    DataFrame
        The frame without the spikes.
    """
    rule = rule or SpikeRule()
    spike = np.zeros(len(frame), dtype=bool)
    log_close = np.log(frame["close"].to_numpy(dtype=np.float64))
    log_open = np.log(frame["open"].to_numpy(dtype=np.float64))
    times = frame["open_time_utc"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    for start, stop in _pair_bounds(frame):
        if stop - start < 3:
            continue
        lc = log_close[start:stop]
        r, scale = spike_scale(lc, times[start:stop], rule)
        r_next = np.append(r[1:], np.nan)
        confirm = np.full(stop - start, np.nan)
        confirm[:-1] = np.abs(log_open[start + 1 : stop] - lc[:-1])
        size = np.abs(r)
        with np.errstate(invalid="ignore"):
            hit = (
                (size > np.maximum(rule.k_mad * scale, rule.min_log_return))
                & (np.sign(r_next) == -np.sign(r))
                & (np.abs(r + r_next) <= rule.revert_fraction * size)
                & (confirm >= rule.confirm_fraction * size)
            )
        spike[start:stop] = hit & ~np.isnan(r_next) & ~np.isnan(scale)
    if not spike.any():
        return frame
    report.drop("spike_outlier", int(spike.sum()))
    closes = frame["close"].to_numpy()
    for i in np.flatnonzero(spike)[: issue_room(report, "spike_outlier")]:
        report.add_issue(
            Issue(
                *_where(frame, int(i)),
                "close",
                "spike_outlier",
                f"{float(closes[i])!r} between closes {float(closes[i - 1])!r} and "
                f"{float(closes[i + 1])!r}",
            )
        )
    return frame.loc[~spike]


def repair_gaps(
    frame: pd.DataFrame, report: IntegrityReport, *, max_repair_bars: int = MAX_REPAIR_BARS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fill short runs of missing hours by carrying the previous close; list every gap.

    A gap is a run of missing hours between two bars of the same pair. A gap of at most
    ``max_repair_bars`` hours is filled with bars whose open, high, low and close equal the
    previous close, with zero volume, zero quote volume, zero trades (NaN where the vendor gives
    no trade count) and ``repaired=True``. Longer gaps stay open. Hours before a pair's first bar
    or after its last are not gaps.

    Parameters
    ----------
    frame
        Candles sorted by (pair, open_time_utc), one bar per key, all on the hour.
    report
        Receives ``repaired["gaps_filled"]``, ``repaired["gap_bars_filled"]`` and, when it is a
        `CandleReport`, ``gaps_left`` and ``gap_bars_missing``; every gap left open is an issue.
    max_repair_bars
        Longest run of missing hours that is filled (0 fills none).

    Returns
    -------
    (DataFrame, DataFrame)
        The candles with fills inserted (sorted again) and the gap table (`GAP_COLUMNS`).
    """
    if max_repair_bars < 0:
        raise ValueError(f"max_repair_bars must be >= 0, got {max_repair_bars}")
    times = frame["open_time_utc"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    pairs = frame["pair"].to_numpy()
    step = np.diff(times)
    same_pair = pairs[1:] == pairs[:-1]
    missing = np.where(same_pair, step // HOUR_NS - 1, 0)  # missing hours after bar i
    before = np.flatnonzero(missing > 0)  # position of the bar before each gap
    n_missing = missing[before]
    fill = n_missing <= max_repair_bars
    vendors = frame["vendor"].to_numpy()
    gaps = pd.DataFrame(
        {
            "pair": pairs[before].astype(str),
            "vendor": vendors[before].astype(str),
            "gap_start_utc": _utc(times[before] + HOUR_NS),
            "gap_end_utc": _utc(times[before] + n_missing * HOUR_NS),
            "missing_bars": n_missing.astype(np.int64),
            "repaired": fill,
        },
        columns=list(GAP_COLUMNS),
    )
    left = ~fill
    if isinstance(report, CandleReport):
        report.gaps_left += int(left.sum())
        report.gap_bars_missing += int(n_missing[left].sum())
    for k in np.flatnonzero(left)[: issue_room(report, "gap_left")]:
        g = gaps.iloc[k]
        report.add_issue(
            Issue(
                *_where(frame, int(before[k])),
                "open_time_utc",
                "gap_left",
                f"{g.pair} {g.gap_start_utc:%Y-%m-%d %H:%M} to {g.gap_end_utc:%Y-%m-%d %H:%M} "
                f"({g.missing_bars} bars missing)",
            )
        )
    if not fill.any():
        return frame, gaps
    src = np.repeat(before[fill], n_missing[fill])  # (n_fill,) bar whose close is carried
    offset = np.concatenate([np.arange(1, m + 1) for m in n_missing[fill]])  # hours after it
    base = frame.iloc[src]
    close = base["close"].to_numpy(dtype=np.float64)
    filled = pd.DataFrame(
        {
            "pair": pd.Series(base["pair"].to_numpy(dtype=object), dtype=object),
            "open_time_utc": _utc(times[src] + offset * HOUR_NS),
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 0.0,
            "quote_volume": 0.0,
            "quote_volume_estimated": False,
            "trades": np.where(base["trades"].isna().to_numpy(), np.nan, 0.0),
            "vendor": pd.Series(base["vendor"].to_numpy(dtype=object), dtype=object),
            "repaired": True,
        }
    )
    for col in SOURCE_COLUMNS:
        if col in frame.columns:
            filled[col] = pd.Series(base[col].to_numpy(), dtype=base[col].dtype)
    report.repair("gaps_filled", int(fill.sum()))
    report.repair("gap_bars_filled", len(filled))
    out = pd.concat([frame, filled], ignore_index=True)
    out = out.sort_values(["pair", "open_time_utc"], kind="stable", ignore_index=True)
    return out, gaps


def validate_candles(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    on_error: Literal["raise", "drop"] = "drop",
    max_repair_bars: int = MAX_REPAIR_BARS,
    preference: Sequence[str] = VENDOR_PREFERENCE,
    tolerance: float = 0.005,
    spike_rule: SpikeRule | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run every candle rule in order and return the normalised table and the gap table.

    Order: `check_bars`, `drop_renamed_overlap` (only when the frame has `RENAMED_FROM`),
    `drop_zero_volume_bars`, `drop_duplicate_bars`, `select_vendor`, `drop_spikes`,
    `repair_gaps`. Rows removed by the first six leave holes that the gap repair treats like any
    other missing hour.

    Parameters
    ----------
    frame
        Raw candles from the loaders: `CANDLE_COLUMNS` (``repaired`` all False) plus, optionally,
        ``source_file``, ``source_row`` and `RENAMED_FROM`; in read order.
    report
        Receives every count and issue; ``rows_kept`` grows by the bars kept from the input.
    on_error, max_repair_bars, preference, tolerance, spike_rule
        See the functions above.

    Returns
    -------
    (DataFrame, DataFrame)
        Candles with exactly `CANDLE_COLUMNS`, sorted by (pair, open_time_utc), RangeIndex; and
        the gap table.
    """
    out = frame.reset_index(drop=True)
    out = check_bars(out, report, on_error=on_error)
    if RENAMED_FROM in out.columns:
        out = drop_renamed_overlap(out, report)
    # placeholders first: a zero-volume copy read before the traded bar of the same hour
    # would otherwise be kept over it, then dropped, and the hour filled with a made-up bar
    out = drop_zero_volume_bars(out, report)
    out = drop_duplicate_bars(out, report)
    out = select_vendor(out, report, preference=preference, tolerance=tolerance)
    out = out.sort_values(["pair", "open_time_utc"], kind="stable", ignore_index=True)
    out = drop_spikes(out, report, spike_rule)
    kept = len(out)
    out, gaps = repair_gaps(out.reset_index(drop=True), report, max_repair_bars=max_repair_bars)
    report.rows_kept += kept
    if isinstance(report, CandleReport):
        report.rows_by_kind["candles"] = report.rows_by_kind.get("candles", 0) + kept
    return normalise_candles(out), gaps


def normalise_candles(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` with exactly `CANDLE_COLUMNS` and their contract dtypes, RangeIndex."""
    out = pd.DataFrame(
        {
            "pair": pd.Series(frame["pair"].to_numpy(dtype=object), dtype=object),
            "open_time_utc": pd.DatetimeIndex(frame["open_time_utc"]).as_unit("ns"),
            **{c: frame[c].to_numpy(dtype=np.float64) for c in (*_PRICE_COLUMNS, "volume")},
            "quote_volume": frame["quote_volume"].to_numpy(dtype=np.float64),
            "quote_volume_estimated": frame["quote_volume_estimated"].to_numpy(dtype=bool),
            "trades": frame["trades"].to_numpy(dtype=np.float64),
            "vendor": pd.Series(frame["vendor"].to_numpy(dtype=object), dtype=object),
            "repaired": frame["repaired"].to_numpy(dtype=bool),
        },
        columns=list(CANDLE_COLUMNS),
    )
    out["pair"] = out["pair"].astype(str)
    out["vendor"] = out["vendor"].astype(str)
    return out


def validate_funding(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    on_error: Literal["raise", "drop"] = "drop",
    latest_time: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Drop funding events that cannot be real, round their times to the second, drop duplicates.

    Rules, in order (an event is counted under the first one it breaks, with an issue naming file,
    line and field): a time before `EARLIEST_BAR_UTC` or after ``latest_time``
    (``timestamp_out_of_range``: a broken ``0`` or far-future stamp would otherwise stretch the
    pair's funding coverage); no rate (``missing_value``); an infinite rate, as ``1e400`` reads
    (``non_finite_value``). Binance stamps a funding event a few milliseconds after the 8-hour
    mark; the time is then rounded to the nearest second (counted as
    ``repaired["funding_time_rounded"]``). With `RENAMED_FROM`, a renamed pair's old events from
    its new pair's first event on are `RENAME_OVERLAP` (`drop_renamed_overlap`); a second event
    for the same (pair, second) is ``duplicate_funding`` (the first one read is kept; a different
    rate is an issue).

    Parameters
    ----------
    frame
        ``pair``, ``funding_time_utc`` (parsed, full precision), ``funding_rate`` and optionally
        the source columns and `RENAMED_FROM`, in read order.
    report
        Receives counts and issues; ``rows_kept`` grows by the rows returned.
    on_error
        ``"raise"`` raises `DataError` for the first bad event instead of dropping it.
    latest_time
        The latest time an event may have (aware). ``None``: the wall clock (an event is an
        instant, so unlike a bar it is complete when stamped; a later one is from the future).

    Returns
    -------
    DataFrame
        `FUNDING_COLUMNS`, sorted by (pair, funding_time_utc), RangeIndex.
    """
    out = _drop_bad_events(
        frame.reset_index(drop=True),
        report,
        time_col="funding_time_utc",
        value_cols=["funding_rate"],
        on_error=on_error,
        latest_time=latest_time,
    )
    raw = pd.DatetimeIndex(out["funding_time_utc"]).as_unit("ns")
    rounded = raw.round("1s")
    report.repair("funding_time_rounded", int((rounded != raw).sum()))
    out["funding_time_utc"] = rounded
    if RENAMED_FROM in out.columns:
        out = drop_renamed_overlap(out, report, time_col="funding_time_utc").reset_index(drop=True)
    out = _drop_duplicate_events(
        out, report, ["pair", "funding_time_utc"], "funding_rate", "duplicate_funding"
    )
    report.rows_kept += len(out)
    if isinstance(report, CandleReport):
        report.rows_by_kind["funding"] = report.rows_by_kind.get("funding", 0) + len(out)
    out = out.sort_values(["pair", "funding_time_utc"], kind="stable", ignore_index=True)
    return pd.DataFrame(
        {
            "pair": out["pair"].astype(str),
            "funding_time_utc": pd.DatetimeIndex(out["funding_time_utc"]).as_unit("ns"),
            "funding_rate": out["funding_rate"].to_numpy(dtype=np.float64),
        },
        columns=list(FUNDING_COLUMNS),
    )


def validate_open_interest(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    on_error: Literal["raise", "drop"] = "drop",
    latest_time: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Drop open-interest snapshots that cannot be real, then duplicate snapshots.

    Rules, in order (a row is counted under the first one it breaks, with an issue naming file,
    line and field): a time before `EARLIEST_BAR_UTC` or after ``latest_time``
    (``timestamp_out_of_range``); a missing value (``missing_value``); an infinite value
    (``non_finite_value``); a negative value (``negative_open_interest``). With `RENAMED_FROM`,
    a renamed pair's old snapshots from its new pair's first snapshot on are then dropped as
    `RENAME_OVERLAP` (`drop_renamed_overlap`), before duplicates are looked for.

    Parameters
    ----------
    frame
        `OPEN_INTEREST_COLUMNS` (``time_utc`` parsed) and optionally the source columns and
        `RENAMED_FROM`.
    report
        Receives counts and issues; ``rows_kept`` grows by the rows returned.
    on_error
        ``"raise"`` raises `DataError` for the first bad row instead of dropping it.
    latest_time
        The latest time a snapshot may have (aware). ``None``: the wall clock.

    Returns
    -------
    DataFrame
        `OPEN_INTEREST_COLUMNS`, sorted by (pair, time_utc), RangeIndex.
    """
    out = _drop_bad_events(
        frame.reset_index(drop=True),
        report,
        time_col="time_utc",
        value_cols=["open_interest", "open_interest_value"],
        on_error=on_error,
        latest_time=latest_time,
        negative_reason="negative_open_interest",
    )
    if RENAMED_FROM in out.columns:
        out = drop_renamed_overlap(out, report, time_col="time_utc").reset_index(drop=True)
    out = _drop_duplicate_events(
        out, report, ["pair", "time_utc"], "open_interest", "duplicate_open_interest"
    )
    report.rows_kept += len(out)
    if isinstance(report, CandleReport):
        report.rows_by_kind["open_interest"] = report.rows_by_kind.get("open_interest", 0) + len(
            out
        )
    out = out.sort_values(["pair", "time_utc"], kind="stable", ignore_index=True)
    return pd.DataFrame(
        {
            "pair": out["pair"].astype(str),
            "time_utc": pd.DatetimeIndex(out["time_utc"]).as_unit("ns"),
            "open_interest": out["open_interest"].to_numpy(dtype=np.float64),
            "open_interest_value": out["open_interest_value"].to_numpy(dtype=np.float64),
        },
        columns=list(OPEN_INTEREST_COLUMNS),
    )


def _drop_bad_events(
    frame: pd.DataFrame,
    report: IntegrityReport,
    *,
    time_col: str,
    value_cols: list[str],
    on_error: Literal["raise", "drop"],
    latest_time: pd.Timestamp | None,
    negative_reason: str | None = None,
) -> pd.DataFrame:
    """Drop funding or open-interest rows by `check_bars`'s time range and finite-value rules.

    Each row is counted under the first rule it breaks (time out of range, missing value,
    infinite value, then, with ``negative_reason``, a negative value), with an issue naming file,
    line and field (up to the sample size); ``on_error="raise"`` raises for the first one.
    """
    if latest_time is None:
        latest_time = pd.Timestamp.now(tz="UTC")
    times = frame[time_col].to_numpy(dtype="datetime64[ns]").view(np.int64)
    values = frame[value_cols].to_numpy(dtype=np.float64)  # (n, len(value_cols))
    out_of_range = (times < EARLIEST_BAR_UTC.value) | (times > latest_time.value)
    rules: list[tuple[str, npt.NDArray[np.bool_], npt.NDArray[Any]]] = [
        ("timestamp_out_of_range", out_of_range, np.full(len(frame), time_col, dtype=object)),
        (
            "missing_value",
            np.isnan(values).any(axis=1),
            _first_column(np.isnan(values), value_cols),
        ),
        (
            "non_finite_value",
            np.isinf(values).any(axis=1),
            _first_column(np.isinf(values), value_cols),
        ),
    ]
    if negative_reason is not None:
        with np.errstate(invalid="ignore"):
            negative = values < 0
        negative_rows = np.asarray(negative.any(axis=1), dtype=bool)
        rules.append((negative_reason, negative_rows, _first_column(negative, value_cols)))
    reason = np.full(len(frame), "", dtype=object)
    bad_field = np.full(len(frame), "", dtype=object)
    for why, mask, where in rules:
        new = mask & (reason == "")
        reason[new] = why
        bad_field[new] = where[new]
    bad = _drop_flagged(frame, reason, bad_field, report, on_error, [why for why, _, _ in rules])
    return frame.loc[~bad].reset_index(drop=True) if bad.any() else frame


def empty_candles() -> pd.DataFrame:
    """Return an empty candle table with the contract columns and dtypes."""
    frame = pd.DataFrame(
        {
            "pair": pd.Series([], dtype=str),
            "open_time_utc": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
            **{c: np.array([], dtype=np.float64) for c in (*_PRICE_COLUMNS, "volume")},
            "quote_volume": np.array([], dtype=np.float64),
            "quote_volume_estimated": np.array([], dtype=bool),
            "trades": np.array([], dtype=np.float64),
            "vendor": pd.Series([], dtype=str),
            "repaired": np.array([], dtype=bool),
        }
    )
    return frame.loc[:, list(CANDLE_COLUMNS)]


def empty_gaps() -> pd.DataFrame:
    """Return an empty gap table."""
    return pd.DataFrame(
        {
            "pair": pd.Series([], dtype=str),
            "vendor": pd.Series([], dtype=str),
            "gap_start_utc": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
            "gap_end_utc": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
            "missing_bars": np.array([], dtype=np.int64),
            "repaired": np.array([], dtype=bool),
        }
    )


def issue_room(report: IntegrityReport, reason: str) -> int:
    """How many more issues of ``reason`` the report's sample takes (see `MAX_ISSUES_PER_REASON`).

    Examples
    --------
    >>> report = IntegrityReport()
    >>> issue_room(report, "zero_volume")
    50
    """
    held = sum(1 for issue in report.issues if issue.reason == reason)
    return max(min(report.issues_room, MAX_ISSUES_PER_REASON - held), 0)


def _drop_duplicate_events(
    frame: pd.DataFrame,
    report: IntegrityReport,
    keys: list[str],
    value_col: str,
    reason: str,
) -> pd.DataFrame:
    dup = frame.duplicated(keys, keep="first").to_numpy()
    if not dup.any():
        return frame
    report.drop(reason, int(dup.sum()))
    first_value = frame.groupby(keys, sort=False)[value_col].transform("first").to_numpy()
    values = frame[value_col].to_numpy()
    differs = dup & (values != first_value)
    for i in np.flatnonzero(differs)[: issue_room(report, reason)]:
        report.add_issue(
            Issue(
                *_where(frame, int(i)),
                value_col,
                reason,
                f"{float(values[i])!r} dropped, kept {float(first_value[i])!r}",
            )
        )
    return frame.loc[~dup].reset_index(drop=True)


def _pair_bounds(frame: pd.DataFrame) -> list[tuple[int, int]]:
    """Start and stop positions of each pair's block in a frame sorted by pair."""
    pairs = frame["pair"].to_numpy()
    if len(pairs) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, pairs[1:] != pairs[:-1]])
    stops = np.r_[starts[1:], len(pairs)]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _first_column(mask: npt.NDArray[np.bool_], columns: Sequence[str]) -> npt.NDArray[Any]:
    """Per row, the name of the first column where ``mask`` is True ('' where none is)."""
    names = np.array([*columns, ""], dtype=object)
    first = np.where(mask.any(axis=1), np.argmax(mask, axis=1), len(columns))
    return names[first]


def _where(frame: pd.DataFrame, i: int) -> tuple[str, int | None]:
    """File and 1-based line of the row at position ``i`` (when the frame carries them: a
    stored bar before a pushed one, in the signal server's repairs, carries neither)."""
    file: Any = frame["source_file"].iat[i] if "source_file" in frame.columns else None
    row: Any = frame["source_row"].iat[i] if "source_row" in frame.columns else None
    return (
        _UNKNOWN_FILE if file is None or pd.isna(file) else str(file),
        None if row is None or pd.isna(row) else int(row),
    )


def _cell(frame: pd.DataFrame, i: int, col: str) -> str | None:
    if col not in frame.columns:
        return None
    return str(frame[col].iat[i])


def _label(frame: pd.DataFrame) -> str:
    vendors = sorted(frame["vendor"].astype(str).unique())
    return "+".join(vendors) if vendors else "none"


def _utc(ns: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize(
        "UTC"
    )
