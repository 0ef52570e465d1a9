"""Loader for football-data.co.uk match files: one normalised match table and a long odds table."""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import unicodedata
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from marketcast.data.files import gunzipped
from marketcast.data.validation import (
    ODDS_OUTLIER_FACTOR,
    OVERROUND_RANGE,
    OVERROUND_RANGE_BEST,
    QUOTE_ABSENT,
    QUOTE_DROP_REASONS,
    QUOTE_OK,
    REPEATED_HEADER,
    SAME_TEAM,
    TEAM_TWICE_ON_DAY,
    DataError,
    IntegrityReport,
    Issue,
    quote_drop_codes,
)
from marketcast.datasets.bundle import (
    BUNDLED_FOOTBALL,
    MANIFEST_NAME,
    ArchiveNames,
    read_archive_csvs,
)
from marketcast.types import (
    AVERAGE_BOOKMAKER,
    BEST_ODDS_BOOKMAKER,
    EXCHANGES,
    OUTCOMES,
    MarketKind,
)

logger = logging.getLogger(__name__)

#: Columns every file must have (by name, in any position).
REQUIRED_COLUMNS: tuple[str, ...] = ("Date", "HomeTeam", "AwayTeam", "FTHG", "FTAG")

#: Header names used by older or "new leagues" football-data files, mapped to the usual ones
#: (applied only when the usual name is absent).
HEADER_ALIASES: dict[str, str] = {
    "HT": "HomeTeam",
    "AT": "AwayTeam",
    "Home": "HomeTeam",
    "Away": "AwayTeam",
    "HG": "FTHG",
    "AG": "FTAG",
    "Res": "FTR",
}

#: football-data.co.uk column prefixes -> canonical bookmaker, in priority order: when two
#: prefixes give the same bookmaker for one market and timing (e.g. ``Max`` and ``BbMx``), the
#: first one found in the file wins.
BOOKMAKER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("B365", "b365"),  # Bet365
    ("BW", "bw"),  # Bet&Win
    ("IW", "iw"),  # Interwetten
    ("PS", "pinnacle"),  # Pinnacle, 1X2 columns (PSH, PSCH)
    ("P", "pinnacle"),  # Pinnacle, over/under and Asian handicap columns (P>2.5, PAHH, PCAHH)
    ("WH", "wh"),  # William Hill
    ("VC", "vc"),  # VC Bet
    ("LB", "lb"),  # Ladbrokes
    ("SJ", "sj"),  # Stan James
    ("GB", "gb"),  # Gamebookers
    ("BS", "bs"),  # Blue Square
    ("SB", "sb"),  # Sportingbet
    ("SO", "so"),  # Sporting Odds
    ("SY", "sy"),  # Stanleybet
    ("1XB", "1xb"),  # 1XBet
    ("BFE", "bfe"),  # Betfair exchange
    ("BF", "bf"),  # Betfair sportsbook (BFH, BFD, BFA: not Betfred's BFDH, BFDD, BFDA)
    ("BFD", "bfd"),  # Betfred
    ("BMGM", "bmgm"),  # BetMGM
    ("BV", "bv"),  # BetVictor
    ("CL", "cl"),  # Coral
    ("Max", BEST_ODDS_BOOKMAKER),  # market maximum (football-data's own, 2019-20 on)
    ("BbMx", BEST_ODDS_BOOKMAKER),  # market maximum (Betbrain, to 2018-19)
    ("Avg", AVERAGE_BOOKMAKER),  # market average (football-data's own, 2019-20 on)
    ("BbAv", AVERAGE_BOOKMAKER),  # market average (Betbrain, to 2018-19)
)

# Column suffixes after the bookmaker prefix, per (market, timing), in OUTCOMES order.
_SUFFIXES: dict[tuple[str, str], tuple[str, ...]] = {
    ("1x2", "prematch"): ("H", "D", "A"),
    ("1x2", "closing"): ("CH", "CD", "CA"),
    ("ou25", "prematch"): (">2.5", "<2.5"),
    ("ou25", "closing"): ("C>2.5", "C<2.5"),
    ("ah", "prematch"): ("AHH", "AHA"),
    ("ah", "closing"): ("CAHH", "CAHA"),
}
# Asian handicap line columns (the home team's handicap), most specific first.
_AH_LINE_COLUMNS: dict[str, tuple[str, ...]] = {
    "prematch": ("AHh", "BbAHh"),
    "closing": ("AHCh",),
}
#: Every column name of a closing quote or of the closing handicap line, from the tables above
#: (``PSCH``, ``AvgC>2.5``, ``B365CAHH``, ``AHCh``; the sanitized mirror's ``PC_2_5`` too): the
#: yardstick, known only at kick-off, so ``models.base.check_no_outcome_columns`` refuses them.
CLOSING_SOURCE_COLUMNS: frozenset[str] = frozenset(
    name
    for (_, timing), suffixes in _SUFFIXES.items()
    if timing == "closing"
    for prefix, _ in BOOKMAKER_PREFIXES
    for suffix in suffixes
    for name in (prefix + suffix, prefix + suffix.replace(">2.5", "_2_5").replace("<2.5", "_2_5_1"))
) | frozenset(_AH_LINE_COLUMNS["closing"])
#: Every bookmaker quote column name the tables above can read (``PSH``, ``B365C>2.5``, ...).
_KNOWN_QUOTE_COLUMNS: frozenset[str] = frozenset(
    prefix + suffix
    for prefix, _ in BOOKMAKER_PREFIXES
    for suffixes in _SUFFIXES.values()
    for suffix in suffixes
)
_MARKET_ORDER = {"1x2": 0, "ou25": 1, "ah": 2}
_TIMING_ORDER = {"prematch": 0, "closing": 1}

# The "sanitized" mirror renamed B365>2.5 to B365_2_5 and B365<2.5 to B365_2_5_1.
_SANITIZED_OU = re.compile(r"^(?P<prefix>.+?)_2_5(?P<under>_1)?$")
_SEASON_NAME = re.compile(r"^(\d{4})-(\d{4})$")
#: A season written in a folder's or a file's name that is not ``YYYY-YYYY.csv``: football-data's
#: own download folder ``1920`` (``mmz4281/1920/E0.csv``), ``E0_1920.csv``, ``2019-20``,
#: ``2019_2020``; never part of a longer run of digits. `_season_hint` keeps only years that
#: follow each other (``4281`` in ``mmz4281`` and ``2019-2021`` are no season).
_SEASON_HINT = re.compile(
    r"(?<![0-9])(?<![0-9]{2}[-_])(\d{4})(?:[-_](\d{4}|\d{2}))?(?![0-9]|[-_][0-9])"
)
#: An extra-league file's ``Season`` cell: ``2012`` (a calendar-year league) or ``2012/2013``.
_SEASON_CELL = r"^(\d{4})(?:\.0+)?(?:\s*[/-]\s*(\d{4}))?$"  # 2012.0: a float re-save
# Line endings: LF or CRLF; in a file with no LF at all, the old Mac CR alone. In a file that
# has LF endings a CR alone is a stray character inside a cell, not the end of a row.
_LINE_BREAK = re.compile(r"\r\n|\n")
_ANY_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_BYTE_LINE_BREAK = re.compile(rb"\r\n|\n")
_BYTE_ANY_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
#: Control characters (C0 but TAB, which is whitespace, and DEL): never part of a name or a
#: number, removed from any cell that has one (``control_characters_removed``). The C1 range is
#: left alone: a byte Windows-1252 leaves undefined is read as Latin-1 (`_decode`), as it is.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The same but LF and CR, as a whole file's first check (a negated class scans faster).
_CONTROL_BUT_BREAKS = re.compile(r"[^\t\n\r\x20-\x7e\x80-\U0010ffff]")
# Stands in for a control character while a line is split (U+FFFF is a noncharacter), followed
# by the character's code as two hex digits, so the issue can show what was removed.
_CONTROL_MARK = "\uffff"
_MARKED_CONTROL = re.compile(r"\uffff([0-9a-f]{2})")
#: A count (goals, shots, corners) as football-data writes it: digits, or a float re-save's
#: ``2.0``. Anything else that reads as a number (``1e1``, ``+2``, ``Infinity``) is not a count.
_COUNT_TEXT = r"[0-9]+(?:\.0*)?"
#: Bytes Windows-1252 leaves undefined, as ``surrogateescape`` decodes them (read as Latin-1).
_UNDEFINED_CP1252 = re.compile("[\udc80-\udcff]")
#: A line of nothing but these is a blank row (the all-comma rows of the real files).
_BLANK_ROW_CHARS = " \t,"
_LOCAL_TZ = "Europe/London"
_DEFAULT_KICKOFF_HOUR = 15

#: Optional match statistics: football-data column -> ``matches`` column (float, NaN where the
#: file lacks the column, the cell is blank or the value failed its check). They describe what
#: happened on the pitch, so like the goals they may only reach features of *later* matches.
STAT_SOURCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("HS", "home_shots"),
    ("AS", "away_shots"),
    ("HST", "home_shots_on_target"),
    ("AST", "away_shots_on_target"),
    ("HC", "home_corners"),
    ("AC", "away_corners"),
)
STAT_COLUMNS: tuple[str, ...] = tuple(name for _, name in STAT_SOURCE_COLUMNS)
#: football-data's other statistics of a match (woodwork, fouls, free kicks, offsides, cards,
#: booking points, attendance): not read, and like the ones above known only once it is played.
UNREAD_STAT_SOURCE_COLUMNS: tuple[str, ...] = (
    "HHW", "AHW", "HF", "AF", "HFKC", "AFKC", "HO", "AO", "HY", "AY", "HR", "AR", "HBP", "ABP",
    "Attendance",
)  # fmt: skip
# Read as written, not parsed by read_csv: the counts' check needs the text (the C parser
# reads ``1e1`` as 10 and ``+2`` as 2, which `_written_as_count` refuses).
_STRING_COLUMNS = (
    "Div", "Season", "Date", "Time", "HomeTeam", "AwayTeam", "FTHG", "FTAG", "FTR",
    *(source for source, _ in STAT_SOURCE_COLUMNS),
)  # fmt: skip
#: No top-flight side has come near these counts in one match; above them a cell is a typo.
_STAT_MAX = {"shots": 60.0, "shots_on_target": 40.0, "corners": 30.0}
#: One side's goals above this are a typo (no top-flight side has come near it): the match is
#: dropped as ``implausible_goals``.
_GOALS_MAX = 30.0

MATCH_COLUMNS: tuple[str, ...] = (
    "match_id",
    "league",
    "season",
    "kickoff_utc",
    "kickoff_time_known",
    "home_team",
    "away_team",
    "home_goals",
    "away_goals",
    "result",
    "source_file",
    "source_row",
    *STAT_COLUMNS,
)
ODDS_COLUMNS: tuple[str, ...] = (
    "match_id",
    "market",
    "timing",
    "bookmaker",
    "line",
    "odds_0",
    "odds_1",
    "odds_2",
)


@dataclass(frozen=True)
class FootballData:
    """Normalised football-data.co.uk content.

    Attributes
    ----------
    matches
        One row per kept match, sorted by ``kickoff_utc, league, home_team`` (RangeIndex).
    odds
        Long format, one row per (match, market, timing, bookmaker) quote.
    report
        What was read, kept, repaired and dropped.
    """

    matches: pd.DataFrame
    odds: pd.DataFrame
    report: IntegrityReport


@dataclass(frozen=True)
class QuoteColumns:
    """Where one bookmaker's quote for one market and timing sits in a file's header."""

    market: str
    timing: str
    bookmaker: str
    columns: tuple[str, ...]
    line_column: str | None = None


def bundled_football_path() -> Path:
    """Return the path of the bundled football-data tarball inside the installed package."""
    return BUNDLED_FOOTBALL


def folder_files(folder: Path) -> list[Path]:
    """Every entry under ``folder`` that is not a folder, sorted, but ``MANIFEST.csv`` and
    hidden files and folders, which every loader skips on purpose.

    Links to folders are followed, each real folder once (so a link cycle ends): a season
    folder linked in was skipped without a word. Entries that are not regular files (a broken
    link, a named pipe) are listed too, so that a reader refuses them by name
    (`not_regular_reason`) instead of passing over them or, for a pipe, waiting on it.
    """
    found: list[Path] = []
    walked: set[str] = set()
    for root, folders, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in walked:
            folders[:] = []
            continue
        walked.add(real)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found.extend(
            Path(root) / name
            for name in names
            if not name.startswith(".") and name.upper() != MANIFEST_NAME.upper()
        )
    return sorted(found)


def not_regular_reason(path: Path) -> str | None:
    """Why ``path`` cannot be read as a data file, or None for a regular file (or a link to
    one)."""
    if path.is_file():
        return None
    if path.is_symlink() and not path.exists():
        return f"a broken link (to {os.readlink(path)}): nothing to read"
    if not path.exists():
        return None  # the reader's own error says so
    if path.is_dir():
        return "a folder, not a file"
    return "not a regular file (a named pipe, socket or device): not read"


def is_csv_name(name: str) -> bool:
    """Whether a file of this name is read as a CSV file (``*.csv``, ``*.csv.gz``, any case)."""
    return name.lower().endswith((".csv", ".csv.gz"))


def iter_csv_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Yield the CSV files named by ``paths``: files as given, folders searched recursively.

    Folders yield their ``*.csv`` and ``*.csv.gz`` files (any case) in sorted order, skipping
    ``MANIFEST.csv`` and hidden files and folders. A path that does not exist raises `DataError`.

    Parameters
    ----------
    paths
        Files or folders.

    Yields
    ------
    Path
        One CSV file at a time, each at most once (a file named again, through its folder, a
        link or another spelling of its path, is read once and said so in a warning).
    """
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = [p for p in folder_files(path) if is_csv_name(p.name)]
        elif path.exists():
            found = [path]
        else:
            raise DataError(str(path), None, None, "no such file or folder")
        for p in found:
            key = p.resolve()
            if key in seen:
                logger.warning("%s is named more than once in the data paths: read once", p)
                continue
            seen.add(key)
            yield p


def detect_quote_columns(header: Iterable[str]) -> list[QuoteColumns]:
    """Find every bookmaker quote a header offers, by column name.

    Parameters
    ----------
    header
        Column names (already cleaned: sanitized over/under names restored).

    Returns
    -------
    list of QuoteColumns
        One entry per (market, timing, canonical bookmaker) whose columns are all present.

    Examples
    --------
    >>> specs = detect_quote_columns(["PSH", "PSD", "PSA", "BbMx>2.5", "BbMx<2.5", "AHCh",
    ...                               "PCAHH", "PCAHA"])
    >>> for s in specs:
    ...     print(s.market, s.timing, s.bookmaker, s.columns, s.line_column)
    1x2 prematch pinnacle ('PSH', 'PSD', 'PSA') None
    ou25 prematch max ('BbMx>2.5', 'BbMx<2.5') None
    ah closing pinnacle ('PCAHH', 'PCAHA') AHCh
    """
    names = set(header)
    specs: list[QuoteColumns] = []
    for (market, timing), suffixes in _SUFFIXES.items():
        taken: set[str] = set()
        for prefix, bookmaker in BOOKMAKER_PREFIXES:
            if bookmaker in taken:
                continue
            columns = tuple(prefix + suffix for suffix in suffixes)
            if not all(c in names for c in columns):
                continue
            line_column = None
            if market == "ah":
                # older files give a per-bookmaker handicap size (B365AH, GBAH) before AHh
                candidates = (
                    (prefix + "AH",) if timing == "prematch" and prefix[:2] != "Bb" else ()
                ) + _AH_LINE_COLUMNS[timing]
                line_column = next((c for c in candidates if c in names), None)
                if line_column is None:
                    continue
            taken.add(bookmaker)
            specs.append(QuoteColumns(market, timing, bookmaker, columns, line_column))
    return specs


def unrecognised_quote_columns(
    header: Iterable[str], specs: Sequence[QuoteColumns] | None = None
) -> list[str]:
    """Odds-shaped column groups no ``QuoteColumns`` reads, as ``"<prefix> <market> <timing>"``.

    A group is a full set of one market's suffixes after one prefix (``ZZH, ZZD, ZZA``) whose
    columns the recognised ``specs`` (``detect_quote_columns``) do not use: a bookmaker not in
    ``BOOKMAKER_PREFIXES``, a second source for a bookmaker already read, or handicap prices
    without their line column. The loader counts them in the report (``columns_ignored``) so a
    new bookmaker in a newer file is seen, not silently skipped. Closing groups are matched
    first, so ``ZZCH`` is a closing price of ``ZZ``, not a pre-match one of ``ZZC``.

    Examples
    --------
    >>> unrecognised_quote_columns(["PSH", "PSD", "PSA", "ZZH", "ZZD", "ZZA", "ZZCH", "ZZCD",
    ...                             "ZZCA", "HTHG"])
    ['ZZ 1x2 closing', 'ZZ 1x2 prematch']
    """
    names, present, used = _header_columns(header, specs)
    groups: list[str] = []
    for timing in ("closing", "prematch"):
        for (market, kind), suffixes in _SUFFIXES.items():
            if kind != timing:
                continue
            for column in names:
                if column in used or not column.endswith(suffixes[0]):
                    continue
                prefix = column[: -len(suffixes[0])]
                columns = [prefix + suffix for suffix in suffixes]
                if prefix and all(c in present and c not in used for c in columns):
                    used.update(columns)
                    groups.append(f"{prefix} {market} {timing}")
    return sorted(groups)


def _header_columns(
    header: Iterable[str], specs: Sequence[QuoteColumns] | None
) -> tuple[list[str], set[str], set[str]]:
    """A header's names (first of each), the set of them, and those the quotes ``specs`` read
    (``detect_quote_columns`` when None)."""
    names = list(dict.fromkeys(header))
    if specs is None:
        specs = detect_quote_columns(names)
    return names, set(names), {c for spec in specs for c in spec.columns}


def incomplete_quote_columns(
    header: Iterable[str], specs: Sequence[QuoteColumns] | None = None
) -> list[str]:
    """Known bookmakers' odds groups that are only partly there, and known odds columns in
    another case: ``"<prefix> <market> <timing> (incomplete: <missing> missing)"`` and
    ``"<column> (a known odds column in another case)"``.

    ``detect_quote_columns`` reads a group only whole, and ``unrecognised_quote_columns`` lists
    only whole groups, so a file without ``PSCA`` lost Pinnacle's closing 1X2 (the yardstick
    fell back to the market average) and a lower-case ``b365h`` lost Bet365's prices, both
    without a word. The loader counts these in ``columns_ignored`` too.

    Examples
    --------
    >>> incomplete_quote_columns(["PSH", "PSD", "PSA", "PSCH", "PSCD", "b365h", "HTHG"])
    ['PS 1x2 closing (incomplete: PSCA missing)', 'b365h (a known odds column in another case)']
    """
    names, present, used = _header_columns(header, specs)
    groups: list[str] = []
    for prefix, _ in BOOKMAKER_PREFIXES:
        for (market, timing), suffixes in _SUFFIXES.items():
            columns = [prefix + suffix for suffix in suffixes]
            there = [c for c in columns if c in present and c not in used]
            if there and len(there) < len(columns):
                missing = ", ".join(c for c in columns if c not in present)
                if missing:  # (a column read by another group is not missing)
                    groups.append(f"{prefix} {market} {timing} (incomplete: {missing} missing)")
    known = {name.upper(): name for name in _KNOWN_QUOTE_COLUMNS}
    groups.extend(
        f"{column} (a known odds column in another case)"
        for column in names
        if column not in _KNOWN_QUOTE_COLUMNS and known.get(column.upper()) not in (None, column)
    )
    return sorted(groups)


def load_football(
    paths: Sequence[str | Path] | None = None,
    *,
    on_error: Literal["raise", "collect"] = "raise",
    max_issues: int = 200,
) -> FootballData:
    """Read football-data.co.uk CSV files into one normalised match table and a long odds table.

    Parameters
    ----------
    paths
        Files or folders (searched recursively for ``*.csv``); tar archives (``.tar``,
        ``.tar.gz``, ``.tar.xz``) are read in memory. ``None`` reads the bundled data.
    on_error
        ``"raise"`` (default): a file that cannot be read or lacks a required column raises
        `DataError`. ``"collect"``: such a file is skipped and its error goes into
        ``report.errors`` (what ``marketcast data check`` wants).
    max_issues
        Size of the issue sample kept in the report.

    Returns
    -------
    FootballData
        ``matches``, ``odds`` and ``report`` as described in docs/internals.md.

    Raises
    ------
    DataError
        Naming file, row and field, e.g. ``"E0.csv, row 1, field 'FTHG': missing required column"``.
    """
    if paths is None:
        sources: list[tuple[str, bytes]] = read_archive_csvs(bundled_football_path())
        return load_football_sources(sources, on_error=on_error, max_issues=max_issues)
    sources, errors, names = read_csv_sources(paths, raise_on_error=on_error == "raise")
    try:
        data = load_football_sources(
            sources, on_error=on_error, max_issues=max_issues, where=names.where
        )
    except DataError as err:  # a tar member's: say which archive holds it
        raise names.name_error(err) from err
    data.report.errors.extend(e.to_issue() for e in errors)
    names.name_report(data.report)
    return data


def load_football_sources(
    sources: Sequence[tuple[str, bytes]],
    *,
    on_error: Literal["raise", "collect"] = "raise",
    max_issues: int = 200,
    where: Callable[[str], str] | None = None,
) -> FootballData:
    """Load in-memory files given as ``(name, bytes)``; see `load_football` for the options.

    The name is used in issues and errors, for the season (``.../2022-2023.csv``) and, when a
    row has no ``Div``, for the league (the parent folder). ``where`` maps a name to how an
    issue's text names another row's file (``team_twice_on_day``,
    ``duplicate_match_other_result``): `load_football` passes `ArchiveNames.where`, so the
    text names a tar member ``<archive>:<member>``, as the issue's file does once
    `ArchiveNames.name_report` has run. None: the name as given.
    """
    where = where or str
    report = IntegrityReport(max_issues=max_issues)
    files: list[_RawFile] = []
    for name, data in sources:
        # a per-file report, merged only when the whole file could be read
        file_report = IntegrityReport(max_issues=report.issues_room)
        try:
            files.append(_read_file(name, data, file_report))
        except DataError as exc:
            if on_error == "raise":
                raise
            report.errors.append(exc.to_issue())
            continue
        report = report.merge(file_report)
    report.files_read = len(files)

    matches, keep = _build_matches(files, report)
    clashing = _drop_teams_twice_on_a_day(matches, report, where)
    if clashing.any():
        keep[keep] = ~clashing
        matches = matches[~clashing].reset_index(drop=True)
    duplicated = _drop_duplicate_matches(matches, report, where)
    keep[keep] = ~duplicated
    matches = matches[~duplicated].reset_index(drop=True)
    report.rows_kept = len(matches)

    # odds, per file, for the kept rows; `position` indexes the unsorted `matches`
    parts: list[_QuoteBlock] = []
    offset = 0
    position = np.cumsum(keep) - 1
    for raw in files:
        n = raw.n_rows
        file_keep = keep[offset : offset + n]
        parts.extend(_extract_odds(raw, file_keep, position[offset : offset + n], report))
        offset += n

    order = np.lexsort(
        (
            matches["home_team"].to_numpy(dtype=object).astype(str),
            matches["league"].to_numpy(dtype=object).astype(str),
            pd.DatetimeIndex(matches["kickoff_utc"]).asi8,
        )
    )
    matches = matches.iloc[order].reset_index(drop=True).loc[:, list(MATCH_COLUMNS)]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    odds = _assemble_odds(parts, rank, matches["match_id"].to_numpy(dtype=object))
    report.quotes_kept = len(odds)
    logger.info(
        "football-data: %d files, %d matches kept of %d, %d quotes",
        report.files_read,
        report.rows_kept,
        report.rows_read,
        report.quotes_kept,
    )
    return FootballData(matches=matches, odds=odds, report=report)


def _drop_teams_twice_on_a_day(
    matches: pd.DataFrame, report: IntegrityReport, where: Callable[[str], str]
) -> npt.NDArray[np.bool_]:
    """Mark every match of a team on a (local) day it plays two fixtures in one league.

    One of them is wrong (a mistyped team or date) and nothing tells which, so all are dropped
    as ``team_twice_on_day``, each with an issue naming the team and every row of its day
    (each row's file as ``where`` names it).
    ``A v B`` and ``B v A`` on one day are two fixtures; copies of one fixture (same league,
    day, home and away) are not: they are left to `_drop_duplicate_matches`.
    """
    n = len(matches)
    dropped = np.zeros(n, dtype=bool)
    if not n:
        return dropped
    day = pd.DatetimeIndex(matches["kickoff_utc"]).tz_convert(_LOCAL_TZ).normalize()
    home = matches["home_team"].to_numpy(dtype=object)
    team = np.concatenate([home, matches["away_team"].to_numpy(dtype=object)])  # (2n,) sides
    sides = pd.DataFrame(
        {
            "league": np.tile(pd.factorize(matches["league"])[0], 2),
            "day": np.tile(day.asi8, 2),
            "team": pd.factorize(pd.Series(team).str.casefold())[0],  # as same_team: case aside
        }
    )
    key = sides.groupby(["league", "day", "team"], sort=False).ngroup().to_numpy()  # (2n,)
    fixture = np.tile(pd.factorize(matches["match_id"].str.casefold())[0], 2)
    n_fixtures = np.bincount(np.unique(key * n + fixture) // n)  # distinct fixtures per key
    clash = np.flatnonzero(n_fixtures[key] > 1)  # sides: home sides first, then away sides
    if not len(clash):
        return dropped
    row = clash % n
    dropped[row] = True
    report.drop(TEAM_TWICE_ON_DAY, int(dropped.sum()))
    files = matches["source_file"].to_numpy(dtype=object)
    lines = matches["source_row"].to_numpy(dtype=np.int64)
    rows_of: dict[int, list[int]] = {}
    for k, r in sorted(zip(key[clash].tolist(), row.tolist(), strict=True)):
        rows_of.setdefault(k, []).append(r)
    first: dict[int, int] = {}  # row -> its first clashing side (a row may clash twice)
    for side, r in zip(clash.tolist(), row.tolist(), strict=True):
        first.setdefault(r, side)
    for r in sorted(first)[: report.issues_room]:
        side = first[r]
        rows = ", ".join(f"{where(str(files[i]))} row {lines[i]}" for i in rows_of[int(key[side])])
        value = (
            f"{team[side]} plays twice on {day[r]:%Y-%m-%d} in {matches['league'].iat[r]}: {rows}"
        )
        field = "HomeTeam" if side < n else "AwayTeam"
        report.add_issue(Issue(str(files[r]), int(lines[r]), field, TEAM_TWICE_ON_DAY, value))
    return dropped


def _drop_duplicate_matches(
    matches: pd.DataFrame, report: IntegrityReport, where: Callable[[str], str]
) -> np.ndarray:
    """Mark the repeats of a match (league, day, teams) across all files; the first in file
    order is kept. A repeat with another score is ``duplicate_match_other_result`` (its issue
    names the score kept and where it came from, the file as ``where`` names it), the others
    ``duplicate_match``: two files that disagree on a result should be looked at, not counted
    with identical copies. Team names are compared case aside (``Everton v arsenal`` repeats
    ``Everton v Arsenal``), as `_drop_teams_twice_on_a_day` compares them."""
    codes, _ = pd.factorize(matches["match_id"].str.casefold())
    duplicated = pd.Series(codes).duplicated(keep="first").to_numpy()
    _, first_row = np.unique(codes, return_index=True)  # codes run 0, 1, ... in that order
    kept = first_row[codes]
    score = (matches["home_goals"].astype(str) + "-" + matches["away_goals"].astype(str)).to_numpy(
        dtype=object
    )
    other_result = duplicated & (score != score[kept])
    files = matches["source_file"].to_numpy(dtype=object)
    rows = matches["source_row"].to_numpy(dtype=np.int64)
    ids = matches["match_id"].to_numpy(dtype=object)
    for reason, mask in (
        ("duplicate_match", duplicated & ~other_result),
        ("duplicate_match_other_result", other_result),
    ):
        report.drop(reason, int(mask.sum()))
        for i in np.flatnonzero(mask)[: report.issues_room]:
            value = str(ids[i])
            if other_result[i]:
                k = kept[i]
                kept_at = f"{where(str(files[k]))} row {rows[k]}"
                value += f": {score[i]} dropped, {score[k]} kept from {kept_at}"
            report.add_issue(Issue(str(files[i]), int(rows[i]), "match_id", reason, value))
    return duplicated


@dataclass(frozen=True, eq=False)
class OddsLookup:
    """A long odds table indexed once by (market, timing, bookmaker), aligned to the matches.

    `odds_matrix` scans ``data.odds`` on every call; code that reads many bookmakers' quotes of
    one table (`market_features` reads about 15) builds this once, and each read is then an
    array slice. `odds_matrix` reads one bookmaker's quotes through it too, so both give the
    same arrays.
    """

    n_matches: int
    #: The odds rows (positions) of each (market, timing, bookmaker), in table order.
    rows: Mapping[tuple[str, str, str], npt.NDArray[np.intp]]
    #: Per odds row: the row of its match in ``matches`` (quotes of no listed match left out).
    match_row: npt.NDArray[np.intp]
    #: Per odds row: ``odds_0``, ``odds_1``, ``odds_2``, shape (n_odds, 3).
    prices: npt.NDArray[np.float64]
    line: npt.NDArray[np.float64]

    @classmethod
    def of(cls, matches: pd.DataFrame, odds: pd.DataFrame) -> OddsLookup:
        """Index ``odds`` (the long table, or any subset of its rows) against ``matches``."""
        match_row = pd.Index(matches["match_id"]).get_indexer(odds["match_id"])
        listed = match_row >= 0
        if not listed.all():  # a quote of no listed match is no one's (-1 is the last row)
            odds, match_row = odds[listed], match_row[listed]
        groups = odds.groupby(["market", "timing", "bookmaker"], sort=False, observed=True)
        # positions of each group's rows, in table order; keys are (market, timing, bookmaker)
        indices = cast(dict[tuple[object, ...], npt.NDArray[np.intp]], groups.indices)
        return cls(
            n_matches=len(matches),
            rows={(str(m), str(t), str(b)): rows for (m, t, b), rows in indices.items()},
            match_row=match_row,
            prices=np.column_stack(
                [odds[f"odds_{i}"].to_numpy(dtype=np.float64) for i in range(3)]
            ),
            line=odds["line"].to_numpy(dtype=np.float64),
        )

    def bookmakers(self, market: str, timing: str) -> list[str]:
        """The bookmakers that quoted ``market`` at ``timing``, in order of first quote."""
        return [b for m, t, b in self.rows if (m, t) == (str(market), str(timing))]

    def odds(
        self, market: str, timing: str, bookmaker: str
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """`odds_matrix` of one bookmaker (never ``"best"``), from the index."""
        k = len(OUTCOMES[MarketKind(market)])
        out = np.full((self.n_matches, k), np.nan)
        line = np.full(self.n_matches, np.nan)
        rows = self.rows.get((str(market), str(timing), str(bookmaker)))
        if rows is not None:
            pos = self.match_row[rows]
            out[pos] = self.prices[rows, :k]
            line[pos] = self.line[rows]
        return out, line


def market_rows(odds: pd.DataFrame, market: str, timing: str) -> pd.DataFrame:
    """The rows of the long odds table quoting ``market`` at ``timing``."""
    return odds[(odds["market"] == str(market)) & (odds["timing"] == str(timing))]


def odds_matrix(
    data: FootballData,
    market: str,
    timing: str,
    bookmaker: str,
    *,
    exchange_commission: float = 0.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Odds of one bookmaker aligned to ``data.matches`` rows.

    Parameters
    ----------
    data
        Loaded data.
    market
        ``"1x2"``, ``"ou25"`` or ``"ah"``.
    timing
        ``"prematch"`` or ``"closing"``.
    bookmaker
        Canonical code (``"pinnacle"``, ``"b365"``, ``"avg"``, ``"max"``...) or ``"best"``: the
        per-outcome maximum over real bookmakers and ``max``. For ``ah`` the best price is taken
        among quotes on the same line as the ``max`` quote (or, failing that, the first quote).
    exchange_commission
        Commission on net winnings charged on exchange quotes (``EXCHANGES``): their odds
        become ``1 + (odds - 1) * (1 - exchange_commission)``, what a bettor is paid. 0 (the
        default) gives the quoted prices; a backtest passes ``EXCHANGE_COMMISSION``, so "best"
        never takes an exchange price the bettor cannot get.

    Returns
    -------
    odds : ndarray, shape (n_matches, k)
        Decimal odds in ``OUTCOMES[market]`` order, NaN where missing.
    line : ndarray, shape (n_matches,)
        The home handicap for ``ah``, 2.5 for ``ou25``, NaN for ``1x2`` and where missing.
    """
    kind = MarketKind(market)
    k = len(OUTCOMES[kind])
    n = len(data.matches)
    out = np.full((n, k), np.nan)
    line = np.full(n, np.nan)
    sel = market_rows(data.odds, kind, timing)
    if not 0.0 <= exchange_commission < 1.0:
        raise ValueError(f"exchange_commission must be in [0, 1), got {exchange_commission}")
    if exchange_commission > 0.0:
        exchange = sel["bookmaker"].isin(EXCHANGES).to_numpy()
        if exchange.any():
            value_cols = [f"odds_{i}" for i in range(k)]
            sel = sel.copy()
            net = 1.0 + (sel.loc[exchange, value_cols] - 1.0) * (1.0 - exchange_commission)
            sel.loc[exchange, value_cols] = net
    if bookmaker == "best":
        sel = sel[sel["bookmaker"] != AVERAGE_BOOKMAKER]
        if kind is MarketKind.ASIAN_HANDICAP and len(sel):
            rank = (sel["bookmaker"] != BEST_ODDS_BOOKMAKER).astype(np.int8)
            ref = (
                sel.assign(_rank=rank)
                .sort_values(["_rank"], kind="stable")
                .drop_duplicates("match_id")
                .set_index("match_id")["line"]
            )
            sel = sel[sel["line"].to_numpy() == ref.reindex(sel["match_id"]).to_numpy()]
        value_cols = [f"odds_{i}" for i in range(k)]
        grouped = sel.groupby("match_id", sort=False).agg(
            {**{c: "max" for c in value_cols}, "line": "first"}
        )
        pos = pd.Index(data.matches["match_id"]).get_indexer(grouped.index)
        listed = pos >= 0  # a quote of no listed match is no one's (-1 would be the last row)
        out[pos[listed]] = grouped[value_cols].to_numpy(dtype=np.float64)[listed]
        line[pos[listed]] = grouped["line"].to_numpy(dtype=np.float64)[listed]
        return out, line
    sel = sel[sel["bookmaker"] == bookmaker]
    return OddsLookup.of(data.matches, sel).odds(kind, str(timing), bookmaker)


# --------------------------------------------------------------------------------------------
# reading one file


@dataclass
class _RawFile:
    """One file's non-blank rows: key columns as stripped text, every column for the odds."""

    name: str
    frame: pd.DataFrame  # non-blank rows, every source column
    lines: npt.NDArray[np.int64]  # 1-based line number of each row
    specs: list[QuoteColumns]
    season: str | None  # from a ``YYYY-YYYY.csv`` name: a date outside it is dropped
    folder_league: str
    extra_league: bool  # football-data's Country, League, Season layout: no Div
    # a league file of one season (a Div column, no Season column) not named ``YYYY-YYYY.csv``:
    # its season comes from `_unnamed_file_seasons`, helped by a season in its path
    one_season: bool = False
    season_hint: str | None = None

    @property
    def n_rows(self) -> int:
        return len(self.frame)


def read_csv_sources(
    paths: Iterable[str | Path], *, raise_on_error: bool
) -> tuple[list[tuple[str, bytes]], list[DataError], ArchiveNames]:
    """Read every CSV in ``paths`` (files, folders searched recursively, tar archives).

    Returns ``(name, bytes)`` pairs, an error per file or archive member that cannot be read
    (raised instead with ``raise_on_error``), so one bad file is reported without losing the
    others, and where each tar member lies (`ArchiveNames`: a member is named as its archive
    lists it, ``football/E0/2022-2023.csv``, for its league and season; the loaders name the
    archive in what they report with it).
    """
    paths = list(paths)
    sources: list[tuple[str, bytes]] = []
    errors: list[DataError] = []
    names = ArchiveNames()
    archives = [Path(p) for p in paths if is_archive(Path(p))]
    plain = [p for p in paths if not is_archive(Path(p))]
    for archive in archives:
        try:
            members = read_archive_csvs(archive, errors=None if raise_on_error else errors)
        except DataError as err:
            if raise_on_error:
                raise
            errors.append(err)
            continue
        members = [(shown_name(member), data) for member, data in members]
        sources.extend(members)
        for member, _ in members:
            names.members.setdefault(member, []).append(f"{shown_name(str(archive))}:{member}")
    for path in iter_csv_files(plain):
        name = shown_name(str(path))
        names.files.add(name)
        try:
            sources.append((name, _read_bytes(path)))
        except DataError as err:
            if raise_on_error:
                raise
            errors.append(err)
    return sources, errors, names


def shown_name(name: str) -> str:
    """A file name as valid Unicode: bytes that are not UTF-8 (which Python holds as lone
    surrogates) written as ``\\xff``. A surrogate in the matches table's ``source_file`` made
    pyarrow raise half-way through the load, and it could not be printed or written as UTF-8.

    Examples
    --------
    >>> shown_name("E0/2021-2022\\udcff.csv")
    'E0/2021-2022\\\\xff.csv'
    >>> shown_name("E0/2021-2022.csv")
    'E0/2021-2022.csv'
    """
    try:
        raw = name.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a surrogate no byte decodes to
        raw = name.encode("utf-8", errors="backslashreplace")
    return raw.decode("utf-8", errors="backslashreplace")


def _read_bytes(path: Path) -> bytes:
    """A file's bytes, gunzipped when they start with the gzip magic (whatever the name)."""
    if (why := not_regular_reason(path)) is not None:  # a pipe would block the read
        raise DataError(str(path), None, None, why)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(str(path), None, None, f"cannot read file: {exc}") from exc
    return gunzipped(str(path), data)


def _plain_name(name: str) -> str:
    """``E0/2021-2022.csv.gz`` -> ``E0/2021-2022.csv`` (for the season and league in a name)."""
    return name[:-3] if name.lower().endswith(".gz") else name


def is_archive(path: Path) -> bool:
    """True for a tar archive (plain, gzip or xz) that exists."""
    name = path.name.lower()
    return path.is_file() and name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz"))


def _decode(name: str, data: bytes, report: IntegrityReport) -> str:
    """A file's text: UTF-8, else line by line, each line not UTF-8 read as Windows-1252.

    A whole file was read as Latin-1 before. That turned Windows-1252's curly apostrophe in
    ``Nott’m Forest`` into a control character (a second team beside the UTF-8 seasons'), and
    one stray line made every other line of the file mojibake (``MÃ¡laga``). The lines read as
    Windows-1252 are counted (``cp1252_decoded_rows``) with an issue naming the first. A byte
    Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) is read as Latin-1.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    # a UTF-8 byte-order mark before legacy text: without this the first column is "ï»¿Div"
    lines: list[str] = []
    legacy: list[int] = []
    data = data.removeprefix(b"\xef\xbb\xbf")
    old_mac = _old_mac_endings(data.count(b"\r"), data.count(b"\r\n"), data.count(b"\n"))
    breaks = _BYTE_ANY_LINE_BREAK if old_mac else _BYTE_LINE_BREAK  # as in split_lines
    for number, line in enumerate(breaks.split(data)):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            text = line.decode("cp1252", errors="surrogateescape")  # 5 bytes it leaves undefined
            lines.append(_UNDEFINED_CP1252.sub(lambda m: chr(ord(m.group()) - 0xDC00), text))
            legacy.append(number + 1)
    report.repair("cp1252_decoded_rows", len(legacy))
    detail = f"{len(legacy)} line(s) not UTF-8 read as Windows-1252, the first line {legacy[0]}"
    report.add_issue(Issue(name, legacy[0], None, "not_utf8_decoded_as_cp1252", detail))
    return "\n".join(lines)


def _canonical_names(raw: list[str]) -> tuple[list[str], int, int, int]:
    """A header row's names: stripped, sanitized over/under names restored, older names aliased
    (only where the usual name is absent). Also returns how many were empty, renamed, aliased.
    """
    canonical: list[str] = []
    renamed = empty = aliased = 0
    for field in raw:
        # a byte-order mark opens a header further down too (two Excel "CSV UTF-8" files
        # joined): its first name read "\ufeffDiv", and the rows below lost their league
        col = field.strip().removeprefix("\ufeff").strip()
        if not col:
            empty += 1
        match = _SANITIZED_OU.match(col)
        if match:
            col = match["prefix"] + ("<2.5" if match["under"] else ">2.5")
            renamed += 1
        canonical.append(col)
    present = set(canonical)
    for i, col in enumerate(canonical):
        target = HEADER_ALIASES.get(col)
        if target is not None and target not in present:
            canonical[i] = target
            present.add(target)
            aliased += 1
    return canonical, empty, renamed, aliased


def is_header(fields: list[str]) -> bool:
    """True when a row names every required column: a header, wherever it is in the file."""
    return set(REQUIRED_COLUMNS) <= set(_canonical_names(fields)[0])


def _clean_header(name: str, raw: list[str], report: IntegrityReport, line: int = 1) -> list[str]:
    """Return one unique, canonical column name per position of the header row on ``line``."""
    canonical, empty, renamed, aliased = _canonical_names(raw)
    unique: list[str] = []
    seen: set[str] = set()
    repeated = 0
    for i, col in enumerate(canonical):
        key = col if col and col not in seen else f"__column_{i}"
        if col and col in seen:
            # the first column of a name is read; a later one is reported, never read silently
            repeated += 1
            report.add_issue(Issue(name, line, col, "repeated_column_ignored", f"column {i + 1}"))
        seen.add(key)
        unique.append(key)
    for required in REQUIRED_COLUMNS:
        if required not in seen:
            raise DataError(name, line, required, "missing required column")
    report.repair("empty_header_fields", empty)
    report.repair("repeated_header_fields", repeated)
    report.repair("ou_headers_renamed", renamed)
    report.repair("header_aliases", aliased)
    return unique


def _old_mac_endings(n_cr: int, n_crlf: int, n_lf: int) -> bool:
    """Whether a file's lines end in a CR alone (old Mac): its lone CRs outnumber its LFs.

    By the majority, not by any LF at all: an old Mac file that an editor gave a final CRLF
    was one header line of every row, and the file's matches were lost without an error.
    """
    return n_cr - n_crlf > n_lf


def split_lines(text: str) -> list[str]:
    """Physical lines: split at LF or CRLF, or, in a file whose lines end in a CR alone (old
    Mac endings, `_old_mac_endings`), at any of the three.

    In a file with LF endings a CR alone is a stray character inside a cell (removed with the
    other control characters, counted), not the end of a row: splitting there cut the row in
    two ``malformed_row`` drops and moved every later line number one on. ``str.splitlines``
    is not used: it also splits on ``\\x85`` and other characters a Latin-1 file may hold
    inside a team name.

    Examples
    --------
    >>> split_lines("Div,Date\\r\\nE0,M\\rJones\\r\\n"), split_lines("Div,Date\\rE0,x\\rE0,y\\r\\n")
    (['Div,Date', 'E0,M\\rJones'], ['Div,Date', 'E0,x', 'E0,y'])
    """
    return _split_lines(text)[0]


def _split_lines(text: str) -> tuple[list[str], bool]:
    """`split_lines`'s lines, and whether the text has an LF and a CR outside a CRLF: a stray
    CR that may be left inside a line, to be removed with the other control characters.

    One count of the line endings answers both.
    """
    n_cr, n_crlf, n_lf = text.count("\r"), text.count("\r\n"), text.count("\n")
    lines = (_ANY_LINE_BREAK if _old_mac_endings(n_cr, n_crlf, n_lf) else _LINE_BREAK).split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the final line ending
    return lines, n_lf > 0 and n_cr != n_crlf


def _row_fields(line: str) -> list[str]:
    """Split one physical line; `csv.Error` when its quotes are unbalanced or a field is huge."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=True))


def _marked_fields(line: str) -> list[str]:
    """Split a line holding control characters, each marked (`_CONTROL_MARK` and its code):
    the csv module refuses a bare CR, and the marks show which cells had one."""
    return _row_fields(_CONTROL.sub(lambda m: f"{_CONTROL_MARK}{ord(m.group()):02x}", line))


def _restored(field: str) -> str:
    """A field of `_marked_fields` with its control characters back."""
    return _MARKED_CONTROL.sub(lambda m: chr(int(m[1], 16)), field)


def _escaped(field: str) -> str:
    """A field of `_marked_fields` with each control character written ``\\xNN``."""
    return _MARKED_CONTROL.sub(lambda m: f"\\x{m[1]}", field)


def _header_fields(name: str, line: int, text: str, report: IntegrityReport) -> list[str]:
    """Split a header line as it is written; `csv.Error` when it cannot be split.

    A column name is matched as written, so a control character in one is not removed (a
    required column then is missing, an odds group unread or listed in ``columns_ignored``):
    each such name gets an issue ``control_character_in_header``.
    """
    if not _CONTROL.search(text):
        return _row_fields(text)
    marked = _marked_fields(text)
    for i, field in enumerate(marked):
        if _CONTROL_MARK in field:
            detail = f"column {i + 1}: matched as written"
            report.add_issue(
                Issue(name, line, _escaped(field), "control_character_in_header", detail)
            )
    return [_restored(f) for f in marked]


def _remove_controls(
    name: str, line: int, fields: list[str], columns: list[str], report: IntegrityReport
) -> list[str]:
    """``fields`` (from `_marked_fields`) without their control characters.

    Each cell that had one is counted in ``control_characters_removed``, with an issue
    ``control_character_removed`` naming the line, the column and the cell before and after
    (``Ever\\x00ton -> Everton``).
    """
    out: list[str] = []
    for i, field in enumerate(fields):
        if _CONTROL_MARK in field:
            clean = _MARKED_CONTROL.sub("", field)
            column = columns[i] if i < len(columns) else ""
            if not column or column.startswith("__column_"):
                column = f"column {i + 1}"
            shown = _escaped(field)
            report.repair("control_characters_removed")
            report.add_issue(
                Issue(name, line, column, "control_character_removed", f"{shown} -> {clean}")
            )
            field = clean
        out.append(field)
    return out


@dataclass
class _Block:
    """The rows under one header line of a file (a header repeated further down starts one)."""

    line: int  # the header's line number
    canonical: list[str]  # `_canonical_names` of the header, to compare a repeated one with
    names: list[str]  # `_clean_header`
    named_width: int  # fields up to the last named column: a row may stop there
    rows: list[str]
    numbers: list[int]

    @property
    def width(self) -> int:
        return len(self.names)


def _new_block(name: str, line: int, header: list[str], report: IntegrityReport) -> _Block:
    names = _clean_header(name, header, report, line)
    return _Block(
        line=line,
        canonical=_canonical_names(header)[0],
        names=names,
        named_width=max((i + 1 for i, raw in enumerate(header) if raw.strip()), default=len(names)),
        rows=[],
        numbers=[],
    )


def _header_change(old: list[str], new: list[str]) -> str:
    """How a repeated header's columns differ from the header above it, in a few words."""
    for i, (was, now) in enumerate(zip(old, new, strict=False)):
        if was != now:
            return f"column {i + 1} is {now!r}, was {was!r}"
    return f"{len(new)} columns, were {len(old)}"


def _read_frame(
    name: str, text: str, report: IntegrityReport
) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Parse a file's text; return the frame of its non-blank rows and their line numbers.

    Each physical line is one row: a quote left open would otherwise swallow the rest of the
    file into one field. A row must have a field for every *named* column: it may stop short
    of the header's unnamed trailing columns (``...,BbAvAHA,,,``), and is then padded (counted
    as ``ragged_rows``, with an issue). Any other row with more or fewer fields than the header
    is dropped as ``malformed_row``, with an issue naming the line: a comma added or lost in one
    field moves every later column, and a blank last cell makes an added one look like a
    harmless trailing comma, so no such row can be told apart from one whose odds would be read
    a column off. So is a row whose quotes do not close.

    A header line further down (files joined with their headers) is dropped as
    ``repeated_header``, with an issue naming its line and, when its columns differ from the
    header above it, the first difference; the rows below it are read by its columns, as they
    would be in a file of their own (the blocks are stacked; a column one block lacks is blank
    in its rows). Control characters are removed from every cell of a row
    (`_remove_controls`); a header is read as written (`_header_fields`).
    """
    lines, stray_cr = _split_lines(text)
    if not lines or not lines[0].strip():
        raise DataError(name, 1, None, "empty file or blank header")
    try:
        header = _header_fields(name, 1, lines[0], report)
    except csv.Error as exc:
        raise DataError(name, 1, None, f"cannot parse the header: {exc}") from exc
    block = _new_block(name, 1, header, report)
    blocks = [block]
    any_control = stray_cr or _CONTROL_BUT_BREAKS.search(text) is not None
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip(_BLANK_ROW_CHARS):
            report.blank_rows += 1
            continue
        control = any_control and _CONTROL.search(line) is not None
        if (
            not control
            and '"' not in line
            and "Date" not in line  # a header names it; no row of a match does
            and line.count(",") + 1 == block.width
        ):
            block.rows.append(line)  # the usual row: no need to split it here
            block.numbers.append(number)
            continue
        try:
            fields = _marked_fields(line) if control else _row_fields(line)
        except csv.Error as exc:
            _malformed(report, name, number, f"cannot split the row: {exc}")
            continue
        if "Date" in line and is_header([_restored(f) for f in fields] if control else fields):
            header = _header_fields(name, number, line, report)
            report.rows_read += 1
            report.drop(REPEATED_HEADER)
            canonical = _canonical_names(header)[0]
            if canonical == block.canonical:
                detail = f"the header again (as on line {block.line})"
            else:
                change = _header_change(block.canonical, canonical)
                detail = (
                    f"a header whose columns differ from line {block.line}'s ({change}): "
                    "the rows below are read by it"
                )
                block = _new_block(name, number, header, report)
                blocks.append(block)
            report.add_issue(Issue(name, number, None, REPEATED_HEADER, detail))
            continue
        width = block.width
        if not block.named_width <= len(fields) <= width:
            _malformed(report, name, number, f"{len(fields)} fields, the header has {width}")
            continue
        if control:
            fields = _remove_controls(name, number, fields, block.names, report)
            line = _join_fields(fields)
        if len(fields) != width:
            report.repair("ragged_rows")
            report.add_issue(
                Issue(name, number, None, "ragged_row_aligned", f"{len(fields)} fields of {width}")
            )
            line = _join_fields(fields + [""] * (width - len(fields)))
        block.rows.append(line)
        block.numbers.append(number)
    try:
        frames = [
            pd.read_csv(
                io.StringIO("\n".join(["header", *b.rows])),  # skipped: the names are given
                header=None,
                skiprows=1,
                names=b.names,
                dtype={c: str for c in _STRING_COLUMNS if c in b.names},
                keep_default_na=False,
                na_values=[""],
                skip_blank_lines=False,
                index_col=False,
                engine="c",
            )
            for b in blocks
        ]
    except (ValueError, UnicodeError) as exc:
        raise DataError(name, None, None, f"cannot parse CSV: {exc}") from exc
    numbers = [n for b in blocks for n in b.numbers]
    if len(frames) == 1:
        return frames[0], np.asarray(numbers, dtype=np.int64)
    filled = [f for f in frames if len(f)] or frames[:1]
    frame = pd.concat(filled, ignore_index=True, sort=False)
    return frame, np.asarray(numbers, dtype=np.int64)


def _malformed(report: IntegrityReport, name: str, line: int, detail: str) -> None:
    report.rows_read += 1
    report.drop("malformed_row")
    report.add_issue(Issue(name, line, None, "malformed_row", detail))


def _join_fields(fields: list[str]) -> str:
    if not any('"' in f or "," in f for f in fields):
        return ",".join(fields)
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()


def _season_from_name(name: str) -> str | None:
    match = _SEASON_NAME.match(Path(_plain_name(name).replace("\\", "/")).stem)
    if match and int(match[2]) == int(match[1]) + 1:
        return match[0]
    return None


def _season_hint(name: str) -> str | None:
    """The season a file's name or its folder's writes, for a file not named ``YYYY-YYYY.csv``.

    football-data's download layout ``mmz4281/1920/E0.csv`` names the season by its folder;
    ``E0_1920.csv``, ``E0 2019-20.csv`` and ``2019-2020/E0.csv`` are other ways to write it. The
    file's own name is looked at first, then its folder's; a name that writes two seasons gives
    none. Two-digit years 00-69 are 20xx, as in dates. Only a hint: `_unnamed_file_seasons`
    uses it where the file's dates fit it.

    Examples
    --------
    >>> [_season_hint(n) for n in ("mmz4281/1920/E0.csv", "x/E0_9900.csv", "E0 2019-20.csv",
    ...                            "2019_2020/E0.csv.gz", "x/D1.csv", "ARG/2022.csv")]
    ['2019-2020', '1999-2000', '2019-2020', '2019-2020', None, None]
    """
    path = Path(_plain_name(name).replace("\\", "/"))
    for part in (path.stem, path.parent.name):
        seasons = set()
        for match in _SEASON_HINT.finditer(part):
            first, second = match[1], match[2]
            if second is None:  # 1920: football-data's compact code
                first, second = first[:2], first[2:]
            if len(first) == 2:
                first = f"{20 if int(first) < 70 else 19}{first}"
            start = int(first)
            if int(second) == (start + 1) % 10 ** len(second):
                seasons.add(f"{start}-{start + 1}")
        if len(seasons) == 1:
            return seasons.pop()
    return None


def _read_file(name: str, data: bytes, report: IntegrityReport) -> _RawFile:
    text = _decode(name, data, report)
    malformed_before = report.dropped.get("malformed_row", 0)
    frame, lines = _read_frame(name, text, report)
    malformed = report.dropped.get("malformed_row", 0) - malformed_before
    blank = frame.isna().all(axis=1).to_numpy()  # e.g. a row of empty quoted fields
    report.blank_rows += int(blank.sum())
    if blank.any():
        frame = frame[~blank].reset_index(drop=True)
        lines = lines[~blank]
    if frame.empty:
        # a truncated download looks like this: said, not passed over; a file whose rows were
        # all malformed has rows, and its malformed_row issues say so
        if malformed == 0:
            report.add_issue(Issue(name, None, None, "header_only_file", "a header and no rows"))
    elif "Date" in frame.columns:
        _check_day_first(name, frame["Date"], lines, report)
    report.rows_read += len(frame)
    season = _season_from_name(name)
    stem = Path(_plain_name(name).replace("\\", "/")).stem
    folder = Path(name.replace("\\", "/")).parent.name
    # football-data's extra-league files (ARG.csv, BRA.csv, ... with Country and League
    # columns and no Div) hold one country each, named by the file: in one folder, they were
    # one league
    extra_league = {"Country", "League"} <= set(frame.columns) and "Div" not in frame.columns
    one_season = season is None and "Div" in frame.columns and "Season" not in frame.columns
    specs = detect_quote_columns(frame.columns)
    for group in unrecognised_quote_columns(frame.columns, specs):
        report.ignore_columns(group)
    for group in incomplete_quote_columns(frame.columns, specs):
        report.ignore_columns(group)
    return _RawFile(
        name=name,
        frame=frame,
        lines=lines,
        specs=specs,
        season=season,
        # ARG.csv is league ARG; ARG/2022.csv (a file per year) is the folder's
        folder_league=stem if extra_league and not stem[:1].isdigit() else folder or stem,
        extra_league=extra_league,
        one_season=one_season,
        season_hint=_season_hint(name) if one_season else None,
    )


def _check_day_first(
    name: str, dates: pd.Series, lines: npt.NDArray[np.int64], report: IntegrityReport
) -> None:
    """Refuse a file whose dates are month-first (``8/13/2022``), naming the first such row.

    football-data writes day/month/year; a file re-saved month-first lost its 13th-31st days
    as unparseable dates and kept the rest with day and month swapped, silently. The dates
    that read only one way decide: more that read only month-first than only day-first. A file
    with fewer is read day-first, and each date that reads only month-first gets a
    ``month_first_dates`` issue (it is dropped as unparseable): the dates near it that read both
    ways may have been written month-first too.
    """
    parts = dates.astype(str).str.extract(r"^\s*(\d{1,2})[/.-](\d{1,2})[/.-]\d{2,4}\s*$")
    first = pd.to_numeric(parts[0]).to_numpy(dtype=np.float64)
    second = pd.to_numeric(parts[1]).to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        only_month_first = (first <= 12) & (second > 12) & (second <= 31)
        only_day_first = (second <= 12) & (first > 12) & (first <= 31)
    n_month_first = int(only_month_first.sum())
    if n_month_first > int(only_day_first.sum()):
        i = int(np.flatnonzero(only_month_first)[0])
        raise DataError(
            name,
            int(lines[i]),
            "Date",
            f"dates are month/day/year ({n_month_first} read only that way, e.g. "
            f"{str(dates.iat[i]).strip()!r}); football-data files write day/month/year: save "
            "the file with day-first dates",
            str(dates.iat[i]),
        )
    for i in np.flatnonzero(only_month_first)[: report.issues_room]:
        report.add_issue(
            Issue(name, int(lines[i]), "Date", "month_first_dates", str(dates.iat[i]).strip())
        )


# --------------------------------------------------------------------------------------------
# match table, all files at once


# Characters a name can carry unseen: zero-width space, non-joiner and joiner, the
# left-to-right and right-to-left marks, the word joiner, a byte-order mark, a soft hyphen.
_INVISIBLE = "[\u200b-\u200f\u2060\ufeff\u00ad]"


def unify_team_spellings(home: pd.Series, away: pd.Series) -> tuple[pd.Series, pd.Series]:
    """One spelling per team: invisible characters removed, a no-break space made a space, runs
    of spaces made one, Unicode composed (NFC), and names equal but for case written as the
    team's most frequent spelling (the first written on a tie).

    ``ARSENAL`` in one season and ``Arsenal`` in the next were two teams, each with half a
    history, and ``Leeds`` with a zero-width space a third; the loader already compared names
    case aside for ``same_team`` and duplicated matches, but kept the variants apart. The
    loader counts each changed cell as ``team_name_unified``, with an issue naming its row.

    Examples
    --------
    >>> home, away = unify_team_spellings(
    ...     pd.Series(["Arsenal", "ARSENAL", "Leeds\u200b"]),
    ...     pd.Series(["Leeds", "Chelsea", "Arsenal"]),
    ... )
    >>> home.tolist(), away.tolist()
    (['Arsenal', 'Arsenal', 'Leeds'], ['Leeds', 'Chelsea', 'Arsenal'])
    """
    both = pd.concat([home, away], ignore_index=True)
    # the server's cleaning of a request's names, once per distinct name (a few hundred)
    cleaned = both.map({name: clean_team_name(name) for name in both.unique()})
    key = cleaned.str.casefold()
    counts = cleaned.groupby([key, cleaned], sort=False).size()  # (key, spelling) -> cells
    canonical = counts.groupby(level=0, sort=False).idxmax().map(lambda pair: pair[1])
    unified = key.map(canonical).astype(object)
    n = len(home)
    return unified.iloc[:n].reset_index(drop=True), unified.iloc[n:].reset_index(drop=True)


def clean_team_name(name: str) -> str:
    """One team name cleaned as `unify_team_spellings` cleans every name before it picks a
    spelling per team (case aside): invisible characters removed, a no-break space made a
    space, Unicode composed (NFC: "ü" one character, not "u" and a combining diaeresis), runs
    of spaces made one. "Bayern München" in NFC, in NFD and with two spaces were three teams.
    The server reads a request's team names with it, so a name sent as a file writes it (NFD,
    two spaces) finds the team the loader stored.

    Examples
    --------
    >>> clean_team_name("Bayern  Mu\u0308nchen\u200b") == "Bayern M\u00fcnchen"
    True
    """
    cleaned = re.sub(_INVISIBLE, "", name.replace("\u00a0", " "))
    return re.sub(r"\s{2,}", " ", unicodedata.normalize("NFC", cleaned))


def _spelling_change(was: npt.NDArray[np.object_], now: npt.NDArray[np.object_], i: int) -> str:
    return f"{was[i]!r} -> {now[i]!r}"


def _has_column(files: list[_RawFile], col: str, sizes: list[int]) -> npt.NDArray[np.bool_]:
    """Per row of all files (``sizes`` rows each), whether its file has the column ``col``."""
    return np.repeat(np.array([col in raw.frame.columns for raw in files], dtype=bool), sizes)


def _text_column(files: list[_RawFile], col: str) -> tuple[pd.Series, npt.NDArray[np.bool_]]:
    """One key column over all files as stripped text ("" where blank or absent).

    Returns the text and a mask of cells that had surrounding whitespace.
    """
    pieces = [
        raw.frame[col].to_numpy(dtype=object)
        if col in raw.frame.columns
        else np.full(raw.n_rows, None, dtype=object)
        for raw in files
    ]
    values = np.concatenate(pieces) if pieces else np.empty(0, dtype=object)
    series = pd.Series(values, dtype=object)
    text = series.where(series.notna(), "").astype(str)
    stripped = text.str.strip()
    return stripped, (text.str.len() != stripped.str.len()).to_numpy()


def _parse_dates(text: pd.Series) -> pd.Series:
    """Parse dd/mm/yy, dd/mm/yyyy (also with - or .) and yyyy-mm-dd; NaT where unparseable."""
    dmy = text.str.extract(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})$")
    ymd = text.str.extract(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
    day = pd.to_numeric(dmy[0]).fillna(pd.to_numeric(ymd[2]))
    month = pd.to_numeric(dmy[1]).fillna(pd.to_numeric(ymd[1]))
    year = pd.to_numeric(dmy[2]).fillna(pd.to_numeric(ymd[0]))
    # two-digit years: 00-69 -> 2000s, 70-99 -> 1900s
    year = year.where(year >= 100, np.where(year < 70, 2000 + year, 1900 + year))
    parts = pd.DataFrame({"year": year, "month": month, "day": day})
    return pd.to_datetime(parts, errors="coerce")


def _outside_season(dates: pd.Series, season: npt.NDArray[np.object_]) -> npt.NDArray[np.bool_]:
    """True where a file named for a season (``2021-2022``) holds a date outside it.

    A season runs from 1 June of its first year to 30 September of its second: wide enough
    for the 2019-20 seasons that COVID-19 stretched into August 2020 (Serie A ended on
    2 August), narrow enough to catch a mistyped year.
    """
    named = season != ""
    first = np.zeros(len(season), dtype=np.int64)
    first[named] = [int(str(s)[:4]) for s in season[named]]
    year = dates.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    month = dates.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    before = (year < first) | ((year == first) & (month < 6))
    after = (year > first + 1) | ((year == first + 1) & (month > 9))
    return named & (before | after)


def _seasons_holding(first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
    """The seasons whose window, as `_outside_season` draws it (1 June of the first year to
    30 September of the second), holds every date from ``first`` to ``last``: none when the
    dates span more than one season, two when they all lie in June to September of one year.

    Examples
    --------
    >>> _seasons_holding(pd.Timestamp("2019-08-09"), pd.Timestamp("2020-07-26"))  # COVID-19
    ['2019-2020']
    >>> _seasons_holding(pd.Timestamp("2019-08-09"), pd.Timestamp("2021-05-23"))
    []
    >>> _seasons_holding(pd.Timestamp("2006-06-30"), pd.Timestamp("2006-07-01"))
    ['2005-2006', '2006-2007']
    """
    latest = first.year if first.month >= 6 else first.year - 1
    earliest = last.year - 1 if last.month <= 9 else last.year
    return [f"{year}-{year + 1}" for year in range(earliest, latest + 1)]


def _unnamed_file_seasons(
    files: list[_RawFile],
    idx: npt.NDArray[np.int64],
    dates: pd.Series,
    season: npt.NDArray[np.object_],
    report: IntegrityReport,
) -> npt.NDArray[np.object_]:
    """``season`` (per kept row ``idx``: each date's side of 1 July) with one season per file
    for the league files of one season not named ``YYYY-YYYY.csv`` (`_RawFile.one_season`).

    Split at 1 July, football-data's ``mmz4281/1920/E0.csv`` made 2019-20's last 66 matches,
    played in July 2020 after the COVID-19 break, a season of their own. Such a file takes the
    season its path writes (`_season_hint`) when that season's window (`_seasons_holding`)
    holds all its dates, else the one season whose window does. A file whose dates no one
    season holds (several seasons in one file), or two do (June to September of one year) and
    its path names neither, keeps each date's season; when that splits it, the matches are
    counted in ``season_split_at_1_july`` with an issue naming the file and the seasons.
    """
    bounds = np.searchsorted(idx, np.cumsum([0, *(raw.n_rows for raw in files)]))
    season = season.copy()
    for f, raw in enumerate(files):
        lo, hi = int(bounds[f]), int(bounds[f + 1])  # the file's kept rows
        if not raw.one_season or lo == hi:
            continue
        first, last = dates.iloc[lo:hi].min(), dates.iloc[lo:hi].max()
        holding = _seasons_holding(first, last)
        if raw.season_hint in holding or len(holding) == 1:
            season[lo:hi] = raw.season_hint if raw.season_hint in holding else holding[0]
            continue
        sizes = pd.Series(season[lo:hi]).value_counts().sort_index()
        if len(sizes) < 2:
            continue
        report.repair("season_split_at_1_july", hi - lo)
        fit = (
            f"{' and '.join(holding)} alike, and the path names neither"
            if holding
            else "no one season (1 June to 30 September of the next year)"
        )
        split = ", ".join(f"{label} {n}" for label, n in sizes.items())
        detail = (
            f"dates {first:%Y-%m-%d} to {last:%Y-%m-%d} fit {fit}: each match's season from"
            f" its date, split at 1 July: {split}"
        )
        report.add_issue(Issue(raw.name, None, "Date", "season_split_at_1_july", detail))
    return season


def _season_from_column(
    text: pd.Series, dates: pd.Series
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Season labels from an extra-league file's ``Season`` cells; return (labels, readable,
    calendar: the usable labels that are calendar years).

    ``2012/2013`` is ``2012-2013``, as a file name gives it; a calendar-year league's ``2012``
    stays ``2012`` (it sorts between ``2011-2012`` and ``2012-2013``). The label is "" where
    the cell is blank or unreadable (``readable`` False), or where it cannot hold the row's
    date: a split season runs from January of its first year (Russia's 2011/2012 began in
    March 2011) to September of its second (COVID-19 stretched 2019-20 into August 2020), a
    calendar-year one from the December before to the March after (Brazil's 2020 season ended
    on 25 February 2021).
    """
    parts = text.str.extract(_SEASON_CELL)
    first = pd.to_numeric(parts[0]).to_numpy(dtype=np.float64)
    second = pd.to_numeric(parts[1]).to_numpy(dtype=np.float64)
    split = second == first + 1
    calendar = ~np.isnan(first) & np.isnan(second)
    # the row's month counted from the season's first year: 1 its January, 0 the December before
    year = dates.dt.year.to_numpy(dtype=np.float64, na_value=np.nan)
    month = (year - first) * 12 + dates.dt.month.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        holds = np.where(split, (month >= 1) & (month <= 21), (month >= 0) & (month <= 15))
    labels = np.where(
        split,
        (parts[0] + "-" + parts[1]).to_numpy(dtype=object),
        parts[0].to_numpy(dtype=object),
    )
    usable = (split | calendar) & holds
    return np.where(usable, labels, "").astype(object), split | calendar, calendar & usable


def _parse_times(text: pd.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Return (minutes after local midnight, known) from ``HH:MM`` (or ``HH:MM:SS``) text."""
    hm = text.str.extract(r"^(\d{1,2})[:.](\d{2})(?::\d{2})?$")
    hours = pd.to_numeric(hm[0]).to_numpy(dtype=np.float64)
    minutes = pd.to_numeric(hm[1]).to_numpy(dtype=np.float64)
    known = (hours < 24) & (minutes < 60)
    total = np.where(known, hours * 60 + minutes, _DEFAULT_KICKOFF_HOUR * 60)
    return total.astype(np.int64), known


def _written_as_count(text: pd.Series, values: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
    """Where a cell of a count (goals, a match statistic) is written in digits (or a float
    re-save's ``2.0``); ``text`` is the stripped cells, ``values`` their numbers.

    ``pd.to_numeric`` also reads ``1e1`` as 10, ``+2`` and ``Infinity``: none is how a count
    is written, so none is taken for one (a match without its goals is dropped as
    ``missing_result``, a statistic is blanked as ``invalid_match_stat``).
    """
    digits = text.str.fullmatch(_COUNT_TEXT).to_numpy(dtype=bool, na_value=False)
    return digits & np.isfinite(values)


def _build_matches(
    files: list[_RawFile], report: IntegrityReport
) -> tuple[pd.DataFrame, npt.NDArray[np.bool_]]:
    """Parse and check the key columns of every row; return (kept matches, keep mask)."""
    sizes = [raw.n_rows for raw in files]
    source_file = np.repeat(np.array([raw.name for raw in files], dtype=object), sizes)
    lines = np.concatenate([raw.lines for raw in files]) if files else np.empty(0, np.int64)
    date_text, _ = _text_column(files, "Date")
    written_home, home_padded = _text_column(files, "HomeTeam")
    written_away, away_padded = _text_column(files, "AwayTeam")
    home, away = unify_team_spellings(written_home, written_away)
    hg_text, _ = _text_column(files, "FTHG")
    ag_text, _ = _text_column(files, "FTAG")

    dates = _parse_dates(date_text)
    bad_date = dates.isna().to_numpy()
    file_season = np.repeat(np.array([raw.season or "" for raw in files], dtype=object), sizes)
    off_season = _outside_season(dates, file_season) & ~bad_date
    placed = ~(bad_date | off_season)
    missing_team = ((home == "") | (away == "")).to_numpy() & placed
    # a team cannot play itself: one of the two names is wrong, and we cannot tell which
    same_team = (home.str.casefold() == away.str.casefold()).to_numpy() & placed & ~missing_team
    teams_ok = placed & ~missing_team & ~same_team
    hg = pd.to_numeric(hg_text, errors="coerce").to_numpy(dtype=np.float64)
    ag = pd.to_numeric(ag_text, errors="coerce").to_numpy(dtype=np.float64)
    hg_ok, ag_ok = _written_as_count(hg_text, hg), _written_as_count(ag_text, ag)
    missing_result = ~(hg_ok & ag_ok) & teams_ok
    settled = teams_ok & ~missing_result
    implausible = settled & ((hg > _GOALS_MAX) | (ag > _GOALS_MAX))
    # a result cannot be known before the match: a date past the day after loading is a typo
    tomorrow = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() + pd.Timedelta(days=1)
    future = settled & ~implausible & (dates > tomorrow).to_numpy()

    def record(mask: npt.NDArray[np.bool_], field: str, reason: str, values: pd.Series) -> None:
        n = int(mask.sum())
        if n or reason in report.dropped:  # ROW_DROP_REASONS_IF_FOUND only once found
            report.drop(reason, n)
        for i in np.flatnonzero(mask)[: report.issues_room]:
            report.add_issue(
                Issue(str(source_file[i]), int(lines[i]), field, reason, str(values.iat[i]))
            )

    record(bad_date, "Date", "unparseable_date", date_text)
    record(off_season, "Date", "date_outside_season", date_text)
    # issues quote the cells as written, before `unify_team_spellings`
    record(missing_team & (home == "").to_numpy(), "HomeTeam", "missing_team", written_home)
    record(missing_team & (home != "").to_numpy(), "AwayTeam", "missing_team", written_away)
    record(same_team, "AwayTeam", SAME_TEAM, written_home + " v " + written_away)
    record(missing_result & ~hg_ok, "FTHG", "missing_result", hg_text)
    record(missing_result & hg_ok, "FTAG", "missing_result", ag_text)
    record(implausible & (hg > _GOALS_MAX), "FTHG", "implausible_goals", hg_text)
    record(implausible & ~(hg > _GOALS_MAX), "FTAG", "implausible_goals", ag_text)
    record(future, "Date", "date_in_future", date_text)

    keep = settled & ~implausible & ~future
    idx = np.flatnonzero(keep)
    dates = dates[keep].reset_index(drop=True)
    home = home[keep].reset_index(drop=True)
    away = away[keep].reset_index(drop=True)
    home_goals = hg[idx].astype(np.int64)
    away_goals = ag[idx].astype(np.int64)
    report.repair(
        "integers_written_as_floats",
        int(
            hg_text[keep].str.contains(".", regex=False).sum()
            + ag_text[keep].str.contains(".", regex=False).sum()
        ),
    )
    report.repair("team_names_stripped", int((home_padded[idx] | away_padded[idx]).sum()))

    def note(
        mask: npt.NDArray[np.bool_], field: str, reason: str, value: Callable[[int], str]
    ) -> None:
        """Count a repair of the kept rows in ``mask``, each with an issue naming its row."""
        report.repair(reason, int(mask.sum()))
        for i in np.flatnonzero(mask)[: report.issues_room]:
            row = idx[i]
            report.add_issue(
                Issue(str(source_file[row]), int(lines[row]), field, reason, value(int(i)))
            )

    for field, written, unified in (
        ("HomeTeam", written_home, home),
        ("AwayTeam", written_away, away),
    ):
        was = written[keep].reset_index(drop=True).to_numpy(dtype=object)
        now = unified.to_numpy(dtype=object)
        note(was != now, field, "team_name_unified", partial(_spelling_change, was, now))

    result = np.where(home_goals > away_goals, "H", np.where(home_goals < away_goals, "A", "D"))
    ftr = _text_column(files, "FTR")[0].to_numpy(dtype=object)[idx]
    recomputed = (ftr != "") & (ftr != result)
    note(
        recomputed,
        "FTR",
        "result_recomputed",
        lambda i: f"{ftr[i]} (goals {home_goals[i]}-{away_goals[i]}: {result[i]})",
    )
    # a blank FTR beside the goals, in a file that has the column: the result is the goals',
    # counted (it was filled in without a word); a file without FTR is not a repair
    has_ftr = _has_column(files, "FTR", sizes)[idx]
    report.repair("result_from_goals", int((has_ftr & (ftr == "")).sum()))

    has_time = _has_column(files, "Time", sizes)[idx]
    time_text = _text_column(files, "Time")[0][keep].reset_index(drop=True)
    minutes, known = _parse_times(time_text)
    # a blank Time is the documented 15:00 default, counted only; a filled one is named
    filled = (time_text != "").to_numpy()
    report.repair("kickoff_time_defaulted", int((has_time & ~known & ~filled).sum()))
    note(
        has_time & ~known & filled,
        "Time",
        "kickoff_time_defaulted",
        lambda i: str(time_text.iat[i]),
    )
    local = pd.DatetimeIndex(dates) + pd.to_timedelta(minutes, unit="min")
    kickoff_utc = (
        local.tz_localize(
            _LOCAL_TZ, ambiguous=np.ones(len(local), dtype=bool), nonexistent="shift_forward"
        )
        .tz_convert("UTC")
        .astype("datetime64[ns, UTC]")
    )

    league = _text_column(files, "Div")[0][keep].reset_index(drop=True)
    # football-data's codes are upper case (E0, SP1, SC0): an "e0" re-typed by hand was a
    # league of its own, and its matches were no team's history in E0
    upper = league.str.upper()
    lowered = np.flatnonzero((upper != league).to_numpy())
    if len(lowered):
        report.repair("league_code_upper_cased", len(lowered))
        for i in lowered[: report.issues_room]:
            report.add_issue(
                Issue(
                    str(source_file[idx][i]),
                    int(lines[idx][i]),
                    "Div",
                    "league_code_upper_cased",
                    f"{league.iat[i]} read as {upper.iat[i]}",
                )
            )
        league = upper
    folder_league = np.repeat(np.array([raw.folder_league for raw in files], dtype=object), sizes)
    no_div = (league == "").to_numpy()
    has_div = _has_column(files, "Div", sizes)[idx]
    report.repair("league_from_path", int((no_div & has_div).sum()))
    league = league.where(~no_div, pd.Series(folder_league[idx], dtype=object))

    file_season = file_season[idx]
    start_year = np.where(dates.dt.month >= 7, dates.dt.year, dates.dt.year - 1)
    date_season = pd.Series(start_year).astype(str) + "-" + pd.Series(start_year + 1).astype(str)
    season = np.where(file_season != "", file_season, date_season.to_numpy(dtype=object))
    season = _unnamed_file_seasons(files, idx, dates, season, report)
    # an extra-league file holds many seasons of one country, each row saying its own: a
    # calendar-year league's season (Brazil's, April to December) split at 1 July was two
    extra = np.repeat(np.array([raw.extra_league for raw in files], dtype=bool), sizes)[idx]
    season_text = _text_column(files, "Season")[0][keep].reset_index(drop=True)
    column_season, readable, calendar = _season_from_column(season_text, dates)
    from_column = extra & (column_season != "")
    season = np.where(from_column, column_season, season)
    fallback = extra & ~from_column
    if fallback.any():  # in a calendar-year league's file, the kick-off's year, not 1 July
        row_file = source_file[idx]
        calendar &= extra
        calendar_files = [
            name
            for name in pd.unique(row_file[fallback])
            if (calendar & (row_file == name)).sum() * 2 > (from_column & (row_file == name)).sum()
        ]
        by_year = fallback & np.isin(row_file, calendar_files)
        season = np.where(by_year, dates.dt.year.astype(str).to_numpy(dtype=object), season)
    report.repair("season_from_date", int(fallback.sum()))
    for i in np.flatnonzero(fallback)[: report.issues_room]:
        reason = "season_outside_dates" if readable[i] else "unparseable_season"
        value = f"{season_text.iat[i]!r} -> {season[i]}"
        report.add_issue(
            Issue(str(source_file[idx[i]]), int(lines[idx[i]]), "Season", reason, value)
        )

    day = dates.dt.strftime("%Y-%m-%d")
    match_id = league.astype(str) + ":" + day + ":" + home + ":" + away
    matches = pd.DataFrame(
        {
            "match_id": match_id.astype(str).to_numpy(),
            "league": league.astype(str).to_numpy(),
            "season": pd.array(season.astype(str), dtype="str"),
            "kickoff_utc": kickoff_utc,
            "kickoff_time_known": np.asarray(known, dtype=bool),
            "home_team": home.to_numpy(),
            "away_team": away.to_numpy(),
            "home_goals": home_goals,
            "away_goals": away_goals,
            "result": pd.array(result.astype(str), dtype="str"),
            "source_file": pd.array(source_file[idx].astype(str), dtype="str"),
            "source_row": lines[idx].astype(np.int64),
        }
    )
    for col in ("match_id", "league", "season", "home_team", "away_team", "result", "source_file"):
        matches[col] = matches[col].astype("str")
    for col, values in _match_stats(files, idx, source_file, lines, report).items():
        matches[col] = values
    return matches, keep


def _match_stats(
    files: list[_RawFile],
    idx: npt.NDArray[np.int64],
    source_file: npt.NDArray[np.object_],
    lines: npt.NDArray[np.int64],
    report: IntegrityReport,
) -> dict[str, npt.NDArray[np.float64]]:
    """The optional statistics of the kept rows (``idx``), checked; a bad cell becomes NaN.

    A cell is bad when it is filled but not a count (`_written_as_count`: ``1e1``, ``+2``) in
    ``[0, _STAT_MAX]`` (``invalid_match_stat``), or when shots on target exceed shots
    (``shots_on_target_exceed_shots``: the on-target count is blanked, the shots kept). Either
    is counted in ``report.repaired["match_stats_blanked"]`` with an issue naming file, row
    and field; the match itself is kept.
    """
    out: dict[str, npt.NDArray[np.float64]] = {}
    blanked = 0

    def flag(mask: npt.NDArray[np.bool_], field: str, reason: str, text: list[str]) -> None:
        for i in np.flatnonzero(mask)[: report.issues_room]:
            row = idx[i]
            report.add_issue(Issue(str(source_file[row]), int(lines[row]), field, reason, text[i]))

    for source, name in STAT_SOURCE_COLUMNS:
        # every file's cells in one column, read at once (per file, pandas' fixed cost of the
        # text checks was most of the bundle's load time)
        cells = [
            raw.frame[source].to_numpy(dtype=object)
            if source in raw.frame.columns
            else np.full(raw.n_rows, None, dtype=object)
            for raw in files
        ]
        column = np.concatenate(cells)[idx] if files else np.empty(0, dtype=object)
        values, present = _counts(pd.Series(column, dtype=object))
        limit = _STAT_MAX[name.split("_", 1)[1]]
        with np.errstate(invalid="ignore"):
            ok = (values >= 0) & (values <= limit) & (values == np.floor(values))
        bad = present & ~ok
        if bad.any():
            text = _stat_text(files, source, idx, bad)
            flag(bad, source, "invalid_match_stat", text)
            blanked += int(bad.sum())
        out[name] = np.where(ok, values, np.nan)
    for side, letter in (("home", "H"), ("away", "A")):
        shots, on_target = out[f"{side}_shots"], out[f"{side}_shots_on_target"]
        with np.errstate(invalid="ignore"):
            exceed = on_target > shots
        if exceed.any():
            text = [f"{on_target[i]:g}>{shots[i]:g}" if exceed[i] else "" for i in range(len(idx))]
            flag(exceed, f"{letter}ST", "shots_on_target_exceed_shots", text)
            blanked += int(exceed.sum())
            on_target[exceed] = np.nan
    report.repair("match_stats_blanked", blanked)
    return out


def _stat_text(
    files: list[_RawFile], source: str, idx: npt.NDArray[np.int64], bad: npt.NDArray[np.bool_]
) -> list[str]:
    """The raw cell text of ``source`` for the kept rows (only the ``bad`` ones are filled)."""
    pieces = [
        raw.frame[source].to_numpy(dtype=object)
        if source in raw.frame.columns
        else np.full(raw.n_rows, "", dtype=object)
        for raw in files
    ]
    cells = np.concatenate(pieces)[idx]
    return [str(cells[i]) if bad[i] else "" for i in range(len(idx))]


# --------------------------------------------------------------------------------------------
# odds


@dataclass
class _QuoteBlock:
    """Kept quotes of one QuoteColumns spec in one file."""

    position: npt.NDArray[np.int64]  # row in the (unsorted) kept-match table
    market: str
    timing: str
    bookmaker: str
    line: npt.NDArray[np.float64]
    odds: npt.NDArray[np.float64]  # (n, k)


def _numeric(series: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Return (values, present): NaN values where unparseable, present where non-blank."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, ~np.isnan(values)
    text = _stripped(series)
    present = (text != "").to_numpy()
    return pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64), present


def _counts(series: pd.Series) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """`_numeric` for a column of counts: NaN also where a cell is not written as a count
    (`_written_as_count`), so its check fails and names the cell as written.

    Each distinct cell is read once: a column of counts holds a few dozen (reading every cell's
    text made the bundle load a quarter slower).
    """
    codes, distinct = pd.factorize(series, use_na_sentinel=True)
    text = _stripped(pd.Series(distinct, dtype=object))
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
    values = np.where(_written_as_count(text, values), values, np.nan)
    # a blank cell (code -1) reads the extra last entry: NaN, not present
    values = np.append(values, np.nan)
    present = np.append((text != "").to_numpy(dtype=bool), False)
    return values[codes], present[codes]


def _stripped(series: pd.Series) -> pd.Series:
    """A column's cells as stripped text ("" where blank)."""
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def _extract_odds(
    raw: _RawFile,
    keep: npt.NDArray[np.bool_],
    position: npt.NDArray[np.int64],
    report: IntegrityReport,
) -> list[_QuoteBlock]:
    if not keep.any() or not raw.specs:
        return []
    rows = np.flatnonzero(keep)
    needed = list(dict.fromkeys(c for spec in raw.specs for c in _spec_columns(spec)))
    numeric = [c for c in needed if pd.api.types.is_numeric_dtype(raw.frame[c].dtype)]
    block = raw.frame[numeric].to_numpy(dtype=np.float64, na_value=np.nan)[rows]  # (n, n_cols)
    cache: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]] = {
        c: (block[:, j], ~np.isnan(block[:, j])) for j, c in enumerate(numeric)
    }

    def column(col: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
        if col not in cache:
            values, present = _numeric(raw.frame[col])
            cache[col] = (values[rows], present[rows])
        return cache[col]

    n = len(rows)
    parsed: list[tuple[QuoteColumns, npt.NDArray[np.float64], npt.NDArray[np.float64], Any]] = []
    for spec in raw.specs:
        values = np.column_stack([column(c)[0] for c in spec.columns])  # (n, k)
        present = np.column_stack([column(c)[1] for c in spec.columns])
        bounds = OVERROUND_RANGE_BEST if spec.bookmaker == BEST_ODDS_BOOKMAKER else OVERROUND_RANGE
        codes = quote_drop_codes(values, present, bounds)
        # a group in the header with no price in some or all rows is reported, not dropped
        group = f"{spec.bookmaker} {spec.market} {spec.timing}"
        report.count_unquoted(raw.name, group, n, int((codes == QUOTE_ABSENT).sum()))
        if spec.market == "ah" and spec.line_column is not None:
            line = column(spec.line_column)[0]
            finite = np.isfinite(line)  # an inf line passed the grid check (inf == inf)
            on_grid = finite & np.isclose(line * 4, np.round(line * 4))
            bad_line = (codes == QUOTE_OK) & ~on_grid
            codes[bad_line & ~finite] = QUOTE_DROP_REASONS.index("unparseable_odds") + 1
            codes[bad_line & finite] = QUOTE_DROP_REASONS.index("invalid_line") + 1
        elif spec.market == "ou25":
            line = np.full(n, 2.5)
        else:
            line = np.full(n, np.nan)
        parsed.append((spec, values, line, codes))
    _mark_outlier_quotes(parsed)
    blocks: list[_QuoteBlock] = []
    for spec, values, line, codes in parsed:
        _record_quote_drops(raw, rows, spec, codes, report)
        ok = codes == QUOTE_OK
        if ok.any():
            blocks.append(
                _QuoteBlock(
                    position=position[rows[ok]],
                    market=spec.market,
                    timing=spec.timing,
                    bookmaker=spec.bookmaker,
                    line=line[ok],
                    odds=values[ok],
                )
            )
    return blocks


def _mark_outlier_quotes(
    parsed: list[tuple[QuoteColumns, npt.NDArray[np.float64], npt.NDArray[np.float64], Any]],
) -> None:
    """Mark, in place, each quote with a price more than `ODDS_OUTLIER_FACTOR` times above or
    below the median of the same outcome's prices for the match, in the same market, timing
    and (Asian handicap) line, where at least three quotes other than the best-odds column vote.

    A decimal slip on a long shot (17 typed as 1700) moves the booksum by less than 0.06 and
    passed every other check: "best" prices are the maximum over bookmakers, so the slip became
    the price bet on, and in a closing column it moved the yardstick. The vote leaves out the
    best-odds column (``max``), which copies whichever price slipped upward: with it, one slip
    among four quotes was two bad votes, and the median between the pairs marked the right
    prices. Every quote, ``max`` included, is judged against the voters' median; with fewer
    than three voters there is no telling which price slipped, and none is marked.
    """
    code = QUOTE_DROP_REASONS.index("odds_outlier") + 1
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (spec, _, _, _) in enumerate(parsed):
        groups.setdefault((spec.market, spec.timing), []).append(i)
    for members in groups.values():
        voting = np.array([parsed[i][0].bookmaker != BEST_ODDS_BOOKMAKER for i in members])
        if voting.sum() < 3:
            continue
        values = np.stack([parsed[i][1] for i in members])  # (quotes, n, k)
        line = np.stack([parsed[i][2] for i in members])  # (quotes, n)
        ok = np.stack([parsed[i][3] == QUOTE_OK for i in members])  # (quotes, n)
        # quotes on another line than the row's most common one price another bet
        same_line = np.ones_like(ok)
        if parsed[members[0]][0].market == "ah":
            usual = _row_mode(np.where(ok & voting[:, None], line, np.nan))
            same_line = np.isclose(line, usual[None, :])
        usable = ok & same_line
        voters = usable & voting[:, None]
        priced = np.where(voters[:, :, None], values, np.nan)
        enough = voters.sum(axis=0) >= 3  # (n,)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no median
            median = np.nanmedian(priced, axis=0)  # (n, k)
            ratio = values / median[None, :, :]
        far = (ratio > ODDS_OUTLIER_FACTOR) | (ratio < 1.0 / ODDS_OUTLIER_FACTOR)
        outlier = far.any(axis=2) & usable & enough[None, :]
        for j, i in enumerate(members):
            parsed[i][3][outlier[j]] = code


def _row_mode(line: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Per column (row of the file), the most common finite value over the quotes (axis 0);
    NaN where none. Ties go to the smallest value. Rows whose quotes share one line (every
    file since football-data quotes one a match) are read without a loop.

    Examples
    --------
    >>> _row_mode(np.array([[0.5, -1.0, np.nan], [0.5, -0.5, np.nan], [0.25, -0.5, np.nan]]))
    array([ 0.5, -0.5,  nan])
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        low, high = np.nanmin(line, axis=0), np.nanmax(line, axis=0)
    out = np.where(low == high, low, np.nan)
    for r in np.flatnonzero(low != high):  # NaN columns compare unequal too: none finite
        finite = line[np.isfinite(line[:, r]), r]
        if len(finite):
            values, counts = np.unique(finite, return_counts=True)
            out[r] = values[np.argmax(counts)]
    return out


def _spec_columns(spec: QuoteColumns) -> list[str]:
    return [*spec.columns, *([spec.line_column] if spec.line_column else [])]


def _record_quote_drops(
    raw: _RawFile,
    rows: npt.NDArray[np.int64],
    spec: QuoteColumns,
    codes: npt.NDArray[np.int8],
    report: IntegrityReport,
) -> None:
    cols = _spec_columns(spec)
    for k, reason in enumerate(QUOTE_DROP_REASONS, start=1):
        bad = np.flatnonzero(codes == k)
        if not len(bad):
            continue
        report.drop_quotes(reason, len(bad))
        for i in bad[: report.issues_room]:
            r = rows[i]
            value = "/".join("" if pd.isna(v) else str(v) for v in raw.frame[cols].iloc[r])
            report.add_issue(Issue(raw.name, int(raw.lines[r]), "/".join(cols), reason, value))


def _assemble_odds(
    blocks: list[_QuoteBlock], rank: npt.NDArray[np.int64], match_ids: npt.NDArray[np.object_]
) -> pd.DataFrame:
    """Stack quote blocks into the long odds table, ordered like the sorted matches."""
    if not blocks:
        frame = pd.DataFrame({c: pd.Series(dtype="str") for c in ODDS_COLUMNS[:4]})
        for c in ODDS_COLUMNS[4:]:
            frame[c] = pd.Series(dtype=np.float64)
        return frame
    sizes = [len(b.position) for b in blocks]
    match_pos = rank[np.concatenate([b.position for b in blocks])]
    market_code = np.repeat([_MARKET_ORDER[b.market] for b in blocks], sizes)
    timing_code = np.repeat([_TIMING_ORDER[b.timing] for b in blocks], sizes)
    bookmakers = sorted({b.bookmaker for b in blocks})
    book_code = np.repeat([bookmakers.index(b.bookmaker) for b in blocks], sizes)
    odds = np.full((len(match_pos), 3), np.nan)
    offset = 0
    for b in blocks:
        odds[offset : offset + len(b.position), : b.odds.shape[1]] = b.odds
        offset += len(b.position)
    line = np.concatenate([b.line for b in blocks])
    order = np.lexsort((book_code, timing_code, market_code, match_pos))
    return pd.DataFrame(
        {
            "match_id": _as_str(match_pos[order], match_ids),
            "market": _as_str(market_code[order], list(_MARKET_ORDER)),
            "timing": _as_str(timing_code[order], list(_TIMING_ORDER)),
            "bookmaker": _as_str(book_code[order], bookmakers),
            "line": line[order],
            "odds_0": odds[order, 0],
            "odds_1": odds[order, 1],
            "odds_2": odds[order, 2],
        }
    )


def _as_str(codes: npt.NDArray[np.int64], labels: Sequence[str] | np.ndarray) -> pd.Series:
    """``labels[codes]`` as a pandas ``str`` column, gathered in Arrow (fast for long columns)."""
    taken = pa.array(np.asarray(labels, dtype=object).astype(str)).take(pa.array(codes))
    return pd.Series(taken.to_pandas(types_mapper=lambda _: pd.StringDtype("pyarrow", np.nan)))
