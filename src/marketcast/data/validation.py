"""Integrity report, issues, data errors and the vectorised odds-quote checks loaders share."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: Reasons a whole row (match) is dropped.
ROW_DROP_REASONS: tuple[str, ...] = (
    "malformed_row",
    "unparseable_date",
    "date_outside_season",
    "missing_team",
    "missing_result",
    "implausible_goals",
    "date_in_future",
    "duplicate_match",
    "duplicate_match_other_result",
)

#: Why a header line further down a file is dropped (the rows below it are read by it).
REPEATED_HEADER = "repeated_header"
#: Why a match whose home and away team are one team is dropped.
SAME_TEAM = "same_team"
#: Why every match of a team on a day it plays twice in one league is dropped.
TEAM_TWICE_ON_DAY = "team_twice_on_day"
#: Row drop reasons well-formed files never give. Unlike `ROW_DROP_REASONS` (always in
#: ``dropped``, zero or not), a report holds one of these only once a row is dropped for it,
#: so the report of clean data keeps the keys it always had.
ROW_DROP_REASONS_IF_FOUND: tuple[str, ...] = (REPEATED_HEADER, SAME_TEAM, TEAM_TWICE_ON_DAY)

#: Reasons a single odds quote is dropped (the match itself is kept).
QUOTE_DROP_REASONS: tuple[str, ...] = (
    "unparseable_odds",
    "odds_le_1",
    "overround_out_of_range",
    "invalid_line",
    "odds_outlier",
)

#: A price more than this many times above or below the median of the same outcome's prices
#: for the match (three or more quotes) is a slip, not a price (``odds_outlier``).
ODDS_OUTLIER_FACTOR = 5.0

#: Accepted booksum (sum of 1/odds) for a real bookmaker or a market average.
OVERROUND_RANGE: tuple[float, float] = (0.90, 1.40)
#: Best-odds rows (the `max` pseudo-bookmaker) may be under-round, so allow down to 0.80.
OVERROUND_RANGE_BEST: tuple[float, float] = (0.80, 1.40)

#: How many issues the report keeps as a sample (the counts are always complete).
DEFAULT_MAX_ISSUES = 200

# Codes returned by `quote_drop_codes`: 0 keep, -1 no quote at all, k > 0 QUOTE_DROP_REASONS[k-1].
QUOTE_OK = 0
QUOTE_ABSENT = -1


@dataclass(frozen=True)
class Issue:
    """One problem found in the input: where it is and what was wrong."""

    file: str
    row: int | None
    field: str | None
    reason: str
    value: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the issue as a JSON-serialisable dict."""
        return asdict(self)


class DataError(ValueError):
    """Bad input that cannot be repaired or dropped: names the file, the row and the field.

    Parameters
    ----------
    file
        The file as the loader saw it (path or bundle member name).
    row
        1-based line number in the file (the header is line 1), or None for the whole file.
    field
        The column concerned, or None.
    reason
        What is wrong, in words.
    """

    def __init__(
        self, file: str, row: int | None, field: str | None, reason: str, value: str | None = None
    ) -> None:
        self.file = file
        self.row = row
        self.field = field
        self.reason = reason
        self.value = value
        parts = [file]
        if row is not None:
            parts.append(f"row {row}")
        if field is not None:
            parts.append(f"field {field!r}")
        super().__init__(f"{', '.join(parts)}: {reason}")

    def to_issue(self) -> Issue:
        """Return the error as an `Issue` (for reports that collect errors instead of raising)."""
        return Issue(self.file, self.row, self.field, self.reason, self.value)


@dataclass
class IntegrityReport:
    """Counts of everything read, kept, repaired and dropped, with a capped sample of issues.

    Invariant for row counts: ``rows_read == rows_kept + sum(dropped.values())``; blank all-comma
    rows are counted in ``blank_rows`` and are not part of ``rows_read``.
    """

    files_read: int = 0
    rows_read: int = 0
    rows_kept: int = 0
    blank_rows: int = 0
    quotes_kept: int = 0
    repaired: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROW_DROP_REASONS, 0))
    quotes_dropped: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(QUOTE_DROP_REASONS, 0)
    )
    #: column groups read by no rule (e.g. an unknown bookmaker's odds) -> files they were in
    columns_ignored: dict[str, int] = field(default_factory=dict)
    #: odds column groups in a file's header that are blank in every kept match,
    #: ``"<file>: <bookmaker> <market> <timing>"`` -> that file's kept matches (none quoted)
    columns_present_but_empty: dict[str, int] = field(default_factory=dict)
    #: the same for groups filled in some kept matches only: ``"<file>: <group>"`` -> the kept
    #: matches whose cells of the group are all blank
    rows_without_quote: dict[str, int] = field(default_factory=dict)
    errors: list[Issue] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    max_issues: int = DEFAULT_MAX_ISSUES

    @property
    def ok(self) -> bool:
        """True when no error was recorded (drops and repairs are not errors)."""
        return not self.errors

    def repair(self, kind: str, n: int = 1) -> None:
        """Count ``n`` repairs of kind ``kind`` (zero counts are not recorded)."""
        if n:
            self.repaired[kind] = self.repaired.get(kind, 0) + int(n)

    def drop(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dropped rows for ``reason``."""
        self.dropped[reason] = self.dropped.get(reason, 0) + int(n)

    def drop_quotes(self, reason: str, n: int = 1) -> None:
        """Count ``n`` dropped odds quotes for ``reason``."""
        self.quotes_dropped[reason] = self.quotes_dropped.get(reason, 0) + int(n)

    def ignore_columns(self, group: str) -> None:
        """Count one file holding the column group ``group`` that nothing reads."""
        self.columns_ignored[group] = self.columns_ignored.get(group, 0) + 1

    def count_unquoted(self, file: str, group: str, n_rows: int, n_blank: int) -> None:
        """Count the kept matches of ``file`` an odds column group in its header leaves blank.

        ``group`` (``"pinnacle 1x2 closing"``) has every price cell blank in ``n_blank`` of the
        file's ``n_rows`` kept matches. All of them: it is ``columns_present_but_empty``; some:
        ``rows_without_quote``; none: nothing is recorded.

        Examples
        --------
        >>> report = IntegrityReport()
        >>> report.count_unquoted("E0/2025-2026.csv", "pinnacle 1x2 closing", 380, 380)
        >>> report.count_unquoted("E0/2025-2026.csv", "pinnacle 1x2 prematch", 380, 12)
        >>> report.count_unquoted("E0/2025-2026.csv", "b365 1x2 prematch", 380, 0)
        >>> report.columns_present_but_empty
        {'E0/2025-2026.csv: pinnacle 1x2 closing': 380}
        >>> report.rows_without_quote
        {'E0/2025-2026.csv: pinnacle 1x2 prematch': 12}
        """
        key = f"{file}{_GROUP_KEY_SEP}{group}"
        if n_rows and n_blank == n_rows:
            counts = self.columns_present_but_empty
        elif n_blank:
            counts = self.rows_without_quote
        else:
            return
        counts[key] = counts.get(key, 0) + int(n_blank)

    def add_issue(self, issue: Issue) -> None:
        """Keep ``issue`` in the sample unless the sample is full."""
        if len(self.issues) < self.max_issues:
            self.issues.append(issue)

    @property
    def issues_room(self) -> int:
        """How many more issues the sample can hold."""
        return max(self.max_issues - len(self.issues), 0)

    def merge(self, other: IntegrityReport) -> IntegrityReport:
        """Return a new report with the counts of ``self`` and ``other`` added up.

        Examples
        --------
        >>> a = IntegrityReport(files_read=1, rows_read=10, rows_kept=9)
        >>> a.drop("missing_result")
        >>> b = IntegrityReport(files_read=2, rows_read=5, rows_kept=5)
        >>> m = a.merge(b)
        >>> (m.files_read, m.rows_read, m.rows_kept, m.dropped["missing_result"])
        (3, 15, 14, 1)
        """
        merged = IntegrityReport(
            files_read=self.files_read + other.files_read,
            rows_read=self.rows_read + other.rows_read,
            rows_kept=self.rows_kept + other.rows_kept,
            blank_rows=self.blank_rows + other.blank_rows,
            quotes_kept=self.quotes_kept + other.quotes_kept,
            repaired=dict(Counter(self.repaired) + Counter(other.repaired)),
            dropped=_add_counts(self.dropped, other.dropped),
            quotes_dropped=_add_counts(self.quotes_dropped, other.quotes_dropped),
            columns_ignored=_add_counts(self.columns_ignored, other.columns_ignored),
            columns_present_but_empty=_add_counts(
                self.columns_present_but_empty, other.columns_present_but_empty
            ),
            rows_without_quote=_add_counts(self.rows_without_quote, other.rows_without_quote),
            errors=[*self.errors, *other.errors],
            max_issues=self.max_issues,
        )
        for issue in [*self.issues, *other.issues]:
            merged.add_issue(issue)
        return merged

    def summary(self, unit: str = "rows") -> str:
        """One line for a terminal: what was kept of what was read, and every non-zero drop.

        Examples
        --------
        >>> report = IntegrityReport(files_read=2, rows_read=70, rows_kept=60)
        >>> report.drop("unparseable_date", 10)
        >>> report.summary("matches")
        'data: 60 of 70 matches kept from 2 files; dropped: unparseable_date 10'
        >>> report.columns_ignored["PP 1x2 prematch"] = 1
        >>> report.summary("matches")  # doctest: +ELLIPSIS
        '...unparseable_date 10; 1 odds column group no rule reads (columns_ignored)'
        >>> report.count_unquoted("E0/2025-2026.csv", "pinnacle 1x2 closing", 380, 380)
        >>> report.summary("matches")  # doctest: +ELLIPSIS
        '...; 1 odds column group present but empty in 1 file (columns_present_but_empty)'
        """
        text = (
            f"data: {self.rows_kept:,} of {self.rows_read:,} {unit} kept from {self.files_read:,}"
        )
        text += " file" if self.files_read == 1 else " files"
        for title, counts in (("dropped", self.dropped), ("quotes dropped", self.quotes_dropped)):
            shown = ", ".join(f"{k} {v:,}" for k, v in counts.items() if v)
            if shown:
                text += f"; {title}: {shown}"
        if self.columns_ignored:  # counted only: the names are the files' text (see to_dict)
            n = len(self.columns_ignored)
            plural = "" if n == 1 else "s"
            text += f"; {n} odds column group{plural} no rule reads (columns_ignored)"
        if self.columns_present_but_empty:  # the files' names are theirs too: counted only
            parts = [split_group_key(key) for key in self.columns_present_but_empty]
            files, groups = {file for file, _ in parts}, {group for _, group in parts}
            text += (
                f"; {len(groups)} odds column group{'' if len(groups) == 1 else 's'} present"
                f" but empty in {len(files)} file{'' if len(files) == 1 else 's'}"
                " (columns_present_but_empty)"
            )
        if self.repaired.get("pair_renamed"):  # crypto `pair_renames`: say they were applied
            text += f"; {self.repaired['pair_renamed']:,} rows of renamed pairs joined to the new"
            text += " names (pair_renamed)"
        if self.errors:
            text += f"; {len(self.errors)} unreadable"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-serialisable dict (stable keys)."""
        return {
            "ok": self.ok,
            "files_read": self.files_read,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "blank_rows": self.blank_rows,
            "quotes_kept": self.quotes_kept,
            "repaired": dict(sorted(self.repaired.items())),
            "dropped": dict(self.dropped),
            "quotes_dropped": dict(self.quotes_dropped),
            "columns_ignored": dict(sorted(self.columns_ignored.items())),
            "columns_present_but_empty": dict(sorted(self.columns_present_but_empty.items())),
            "rows_without_quote": dict(sorted(self.rows_without_quote.items())),
            "errors": [issue.to_dict() for issue in self.errors],
            "issues": [issue.to_dict() for issue in self.issues],
        }


_GROUP_KEY_SEP = ": "


def split_group_key(key: str) -> tuple[str, str]:
    """``"E0/2025-2026.csv: pinnacle 1x2 closing"`` -> the file and the odds column group (the
    keys of ``columns_present_but_empty`` and ``rows_without_quote``; a file name may hold ": ").

    Examples
    --------
    >>> split_group_key("E0/2025-2026.csv: pinnacle 1x2 closing")
    ('E0/2025-2026.csv', 'pinnacle 1x2 closing')
    """
    file, _, group = key.rpartition(_GROUP_KEY_SEP)
    return file, group


def sum_per_group(counts: Mapping[str, Any]) -> dict[str, int]:
    """``columns_present_but_empty`` or ``rows_without_quote`` (``{"<file>: <group>": matches}``)
    summed per group over the files: matches, the unit of the per-file counts.

    Examples
    --------
    >>> sum_per_group({"a.csv: pinnacle 1x2 closing": 380, "b.csv: pinnacle 1x2 closing": 306})
    {'pinnacle 1x2 closing': 686}
    """
    out: dict[str, int] = {}
    for key, n in counts.items():
        group = split_group_key(str(key))[1]
        out[group] = out.get(group, 0) + int(n)
    return out


def _add_counts(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    out = dict(a)
    for key, value in b.items():
        out[key] = out.get(key, 0) + value
    return out


def booksum(odds_decimal: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sum of inverse decimal odds per row (1 + overround); NaN where a price is missing.

    Examples
    --------
    >>> booksum(np.array([[2.0, 4.0, 4.0], [1.9, 1.9, np.nan]])).round(4).tolist()
    [1.0, nan]
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(1.0 / odds_decimal, axis=1)


def quote_drop_codes(
    odds_decimal: npt.NDArray[np.float64],
    present: npt.NDArray[np.bool_],
    overround_range: tuple[float, float] = OVERROUND_RANGE,
) -> npt.NDArray[np.int8]:
    """Classify each quote row: keep, absent, or the first reason it must be dropped.

    Parameters
    ----------
    odds_decimal
        Shape (n, k): parsed decimal odds, NaN where a cell was blank or unparseable. A price
        that is not finite (``inf``, ``Infinity``: read as numbers) is unparseable too: it
        passed ``> 1``, added 0 to the booksum, and made the best price infinite.
    present
        Shape (n, k): True where the source cell was non-blank.
    overround_range
        Inclusive bounds on the booksum (sum of 1/odds).

    Returns
    -------
    ndarray of int8, shape (n,)
        `QUOTE_OK` (0), `QUOTE_ABSENT` (-1, every cell blank: not a quote), or ``k >= 1`` where
        ``QUOTE_DROP_REASONS[k - 1]`` names why the quote is dropped.

    Examples
    --------
    >>> odds = np.array([[2.0, 3.4, 3.9], [np.nan] * 3, [1.0, 3.0, 9.0], [5.0, 5.0, 5.0],
    ...                  [2.0, np.nan, 3.0], [np.inf, 1.8, 1.9]])
    >>> present = np.ones((6, 3), dtype=bool)
    >>> present[1] = False
    >>> [QUOTE_DROP_REASONS[c - 1] if c > 0 else int(c) for c in quote_drop_codes(odds, present)]
    [0, -1, 'odds_le_1', 'overround_out_of_range', 'unparseable_odds', 'unparseable_odds']
    """
    odds_decimal = np.asarray(odds_decimal, dtype=np.float64)
    codes = np.zeros(odds_decimal.shape[0], dtype=np.int8)
    any_present = np.any(np.asarray(present, dtype=bool), axis=1, keepdims=True)  # (n, 1)
    unparseable = (~np.isfinite(odds_decimal) & any_present).any(axis=1)  # NaN, inf, -inf
    le_one = (odds_decimal <= 1.0).any(axis=1)
    total = booksum(np.where(odds_decimal > 1.0, odds_decimal, np.nan))
    low, high = overround_range
    out_of_range = ~((total >= low) & (total <= high))
    # later assignments win, so assign in reverse order of precedence
    codes[out_of_range] = QUOTE_DROP_REASONS.index("overround_out_of_range") + 1
    codes[le_one] = QUOTE_DROP_REASONS.index("odds_le_1") + 1
    codes[unparseable] = QUOTE_DROP_REASONS.index("unparseable_odds") + 1
    codes[~any_present[:, 0]] = QUOTE_ABSENT
    return codes
