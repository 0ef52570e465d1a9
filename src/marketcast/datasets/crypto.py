"""Loaders for exchange candle, funding and open-interest CSVs, and the bundled Binance spot set."""

from __future__ import annotations

import copy
import csv
import functools
import gzip
import io
import itertools
import logging
import re
import tarfile
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from marketcast.config import (
    QUOTE_ASSETS,
    PairRename,
    check_pair_renames,
    normalise_pair,
    quote_asset,
)
from marketcast.costs import LONGEST_FUNDING_INTERVAL_NS, funding_gaps
from marketcast.data.candles import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    HOUR_NS,
    MAX_REPAIR_BARS,
    OFF_FILE_NAME,
    OPEN_INTEREST_COLUMNS,
    RENAMED_FROM,
    CandleReport,
    check_bars,
    empty_candles,
    empty_gaps,
    issue_room,
    validate_candles,
    validate_funding,
    validate_open_interest,
)
from marketcast.data.files import GZIP_MAGIC
from marketcast.data.validation import DataError, Issue
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.datasets.football_data import read_csv_sources

log = logging.getLogger(__name__)

__all__ = [
    "BUNDLED_CRYPTO",
    "NAME_MAJOR_QUOTES",
    "CandleData",
    "detect_file",
    "detect_format",
    "detect_source",
    "epoch_ns",
    "list_bundled_pairs",
    "load_candle_sources",
    "load_candles",
    "name_pair_candidates",
    "normalise_pair",
    "pair_from_name",
]

OnError = Literal["raise", "drop"]
#: File kinds the loader recognises from the header, by column name.
FileKind = Literal[
    "binance_spot",
    "cryptodatadownload",
    "binance_futures_um",
    "binance_vision",
    "generic",
    "funding",
    "open_interest",
]
#: How a layout's time column is written: epoch numbers, date text, or either (told per file).
TimeFormat = Literal["epoch", "text", "epoch_or_text"]

#: Columns of a data.binance.vision kline file (spot and USD-M futures), as its header row names
#: them; files without a header row have the same 12 columns in this order.
BINANCE_VISION_KLINE_COLUMNS: tuple[str, ...] = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "count",
    "taker_buy_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip

# Unix timestamps: below 1e11 they are seconds (1e11 s is the year 5138), below 1e14
# milliseconds, below 1e17 microseconds, else nanoseconds.
_UNIT_BOUNDS: tuple[tuple[float, int, str], ...] = (
    (1e11, 1_000_000_000, "seconds"),
    (1e14, 1_000_000, "milliseconds"),
    (1e17, 1_000, "microseconds"),
    (9.2e18, 1, "nanoseconds"),  # int64 nanoseconds end near 9.22e18 (year 2262)
)
#: The last whole hour before `_UNIT_BOUNDS`' end, in nanoseconds (2261-07-15 11:00 UTC).
_LAST_HOUR_NS = int(_UNIT_BOUNDS[-1][0]) // 3_600_000_000_000 * 3_600_000_000_000


def epoch_ns(value: int) -> int:
    """An integer epoch time in nanoseconds, its unit told by its size as the loader tells it
    (seconds, milliseconds, microseconds or nanoseconds: Binance spot files use microseconds
    since 2025).

    Examples
    --------
    >>> epoch_ns(1_735_689_600) == epoch_ns(1_735_689_600_000) == epoch_ns(1_735_689_600_000_000)
    True
    """
    magnitude = abs(value)
    for bound, scale, _ in _UNIT_BOUNDS:
        if magnitude < bound:
            return value * scale
    raise ValueError(f"epoch time {value} is out of range")


_CANDLE_KINDS = (
    "binance_spot", "cryptodatadownload", "binance_futures_um", "binance_vision", "generic",
)  # fmt: skip
_OHLC = ("open", "high", "low", "close")
# data.binance.vision names its files <PAIR>-<interval>-<period>.csv: BTCUSDT-1h-2025-01.csv
_VISION_NAME = re.compile(r"^(?P<pair>[A-Za-z0-9]+)-(?P<interval>\d+(?:mo|[smhdwM]))-")
# folder-name tokens that mark a data.binance.vision kline file as USD-M futures (data/futures/um)
_FUTURES_FOLDER_TOKENS = frozenset({"futures", "um"})
_HEAD_BYTES = 65_536  # enough for the first two lines of any file the loader reads
_SPOT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_NAME_TOKENS = re.compile(r"[^A-Za-z0-9]+")
#: Quote assets that decide between several pair-like words of a file name (`pair_from_name`):
#: English words end in TRY, EUR or DAI (INDUSTRY, ENTRY, AMATEUR) far more often than in these.
NAME_MAJOR_QUOTES: frozenset[str] = frozenset(
    {"FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB"}
)


@dataclass
class CandleData:
    """What `load_candles` returns.

    Attributes
    ----------
    candles
        `CANDLE_COLUMNS` (see docs/crypto-data.md), sorted by (pair, open_time_utc), RangeIndex.
    funding
        `FUNDING_COLUMNS`, sorted by (pair, funding_time_utc).
    report
        Every count, repair, drop, gap and vendor check.
    open_interest
        `OPEN_INTEREST_COLUMNS` (empty unless open-interest files were given).
    gaps
        One row per run of missing hours (filled or not), see `GAP_COLUMNS`.
    """

    candles: pd.DataFrame
    funding: pd.DataFrame
    report: CandleReport
    open_interest: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(OPEN_INTEREST_COLUMNS))
    )
    gaps: pd.DataFrame = field(default_factory=empty_gaps)

    @property
    def pairs(self) -> list[str]:
        """The pairs with at least one candle, sorted."""
        return sorted(self.candles["pair"].unique().tolist())

    @property
    def pairs_without_funding(self) -> list[str]:
        """The pairs with candles but no funding rate (spot pairs): funding charges them nothing."""
        funded = set(self.funding["pair"])
        return [pair for pair in self.pairs if pair not in funded]


@dataclass(frozen=True)
class _Layout:
    """One file layout: the columns that tell it apart and where each normalised value is."""

    kind: FileKind
    time_col: str
    numeric: dict[str, str]  # normalised name -> header name (lower case), all required
    optional: dict[str, str] = field(default_factory=dict)  # read where the header has them
    symbol_cols: tuple[str, ...] = ("symbol",)  # the first one the header has gives the pair
    time: TimeFormat = "epoch"
    any_of: frozenset[str] = frozenset()  # the header must also have one of these, if given

    @property
    def required(self) -> frozenset[str]:
        return frozenset({self.time_col, *self.numeric.values()})


_OHLCV = {**{c: c for c in _OHLC}, "volume": "volume"}
_VOLUMES = {"quote_volume": "quote_volume", "trades": "trades"}
# what tells a Binance USD-M futures export from any ``timestamp,open,high,low,close,volume`` file
_FUTURES_COLUMNS = frozenset({"close_time", "quote_volume", "trades"})
_SPOT_SYMBOLS = ("ticker", "symbol")
_VISION_KLINES = _Layout(
    "binance_vision", "open_time", _OHLCV, {"quote_volume": "quote_volume", "trades": "count"}, ()
)
#: The layouts the loader reads, tried in order on a file's header (names in any order and any
#: case): the first whose columns are all there (and one of its ``any_of``) wins.
#: ``cryptodatadownload`` also needs two ``Volume <ASSET>`` columns (base and quote, see `_spec`).
#: ``generic`` is any other ``timestamp,open,high,low,close,volume`` export (ccxt, pandas): no
#: market is assumed, and its ``timestamp`` may be epoch numbers or date text. A
#: ``date,open,high,low,close,volume`` file is ``binance_spot`` only with its ``ticker`` (or
#: ``symbol``) column, as every Binance spot export has one; without, it is ``generic`` too.
_LAYOUTS: tuple[_Layout, ...] = (
    _Layout("funding", "timestamp", {"funding_rate": "funding_rate"}),
    _Layout("funding", "calc_time", {"funding_rate": "last_funding_rate"}),  # binance.vision
    _Layout(
        "open_interest",
        "timestamp",
        {"open_interest": "sum_open_interest", "open_interest_value": "sum_open_interest_value"},
    ),
    _Layout("cryptodatadownload", "unix", {c: c for c in _OHLC}, {"trades": "tradecount"}),
    _VISION_KLINES,
    _Layout("binance_futures_um", "timestamp", _OHLCV, _VOLUMES, any_of=_FUTURES_COLUMNS),
    _Layout("generic", "timestamp", _OHLCV, time="epoch_or_text"),
    _Layout("binance_spot", "date", _OHLCV, _VOLUMES, _SPOT_SYMBOLS, time="text",
            any_of=frozenset(_SPOT_SYMBOLS)),
    _Layout("generic", "date", _OHLCV, time="text"),
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    kind: FileKind
    time_col: str
    time: TimeFormat
    numeric: dict[str, str]  # normalised name -> source column
    symbol_col: str | None


def detect_format(header: Iterable[str]) -> FileKind | None:
    """Tell the file kind from its header (column names, any order, any case).

    Parameters
    ----------
    header
        Column names of the file's first line.

    Returns
    -------
    str or None
        ``"binance_spot"``, ``"cryptodatadownload"``, ``"binance_futures_um"``,
        ``"binance_vision"``, ``"generic"``, ``"funding"``, ``"open_interest"``, or None when the
        header matches none of them. Files without a header row are told by `detect_source`.

    Examples
    --------
    >>> detect_format(["date", "open", "high", "low", "close", "volume", "ticker"])
    'binance_spot'
    >>> detect_format(["unix", "date", "symbol", "open", "high", "low", "close",
    ...                "Volume BTC", "Volume USDT", "tradecount"])
    'cryptodatadownload'
    >>> detect_format(["timestamp", "open", "high", "low", "close", "volume", "close_time"])
    'binance_futures_um'
    >>> detect_format(["timestamp", "open", "high", "low", "close", "volume"])  # ccxt, pandas
    'generic'
    >>> detect_format(["date", "open", "high", "low", "close", "volume"])  # no ticker: no market
    'generic'
    >>> detect_format(["timestamp", "symbol", "funding_rate"])
    'funding'
    >>> detect_format(["calc_time", "funding_interval_hours", "last_funding_rate"])
    'funding'
    >>> detect_format(["Date", "HomeTeam"]) is None
    True
    """
    layout = _match_layout(header)
    return None if layout is None else layout.kind


def detect_source(name: str, data: bytes) -> FileKind | None:
    """Tell a file's kind from its first lines and, for a file without a header, its name.

    Recognised, besides a header `detect_format` knows: a data.binance.vision kline file without
    a header (12 numeric columns, named ``<PAIR>-<interval>-...``, e.g.
    ``BTCUSDT-1h-2025-01.csv``), and a one-cell notice line (CryptoDataDownload's URL) before a
    known header.

    Parameters
    ----------
    name
        The file's path or archive member name.
    data
        The file's bytes (decompressed), or at least its first two lines.

    Returns
    -------
    str or None
        As `detect_format`; None when the file is not one the loader reads.

    Examples
    --------
    >>> detect_source("BTCUSDT-1h-2025-01.csv", b"1735689600000000,1,2,0.5,1.5,10,"
    ...               b"1735693199999999,15,7,5,7.5,0\\n")
    'binance_vision'
    >>> detect_source("Binance_ETHUSDT_1h.csv", b"https://www.CryptoDataDownload.com\\n"
    ...               b"Unix,Date,Symbol,Open,High,Low,Close,Volume ETH,Volume USDT,tradecount\\n")
    'cryptodatadownload'
    """
    found = _find_layout(name, data)
    return None if found is None else found[0].kind


def detect_file(path: str | Path) -> FileKind | None:
    """`detect_source` on a file's first bytes (gunzipped); None when it cannot be read."""
    try:
        with Path(path).open("rb") as raw:
            gzipped = raw.read(2) == GZIP_MAGIC
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error):  # the football reader then names what is wrong
        return None
    return detect_source(str(path), head)


def _match_layout(header: Iterable[str]) -> _Layout | None:
    """The first of `_LAYOUTS` whose columns are all in ``header``."""
    names = {h.strip().lower() for h in header}
    for layout in _LAYOUTS:
        if not layout.required <= names or (layout.any_of and not layout.any_of & names):
            continue
        if layout.kind == "cryptodatadownload" and sum(n.startswith("volume ") for n in names) < 2:
            continue
        return layout
    return None


def _find_layout(name: str, data: bytes) -> tuple[_Layout, list[str], int, int] | None:
    """The layout of a file, its column names, how many lines come before the data and how many
    empty fields end the header line (a trailing comma: no column)."""
    head = data[:_HEAD_BYTES].decode("utf-8-sig", errors="replace")
    lines = re.split(r"\r\n|\r|\n", head, maxsplit=2)
    first = _fields(lines[0])
    header = _named(first)
    layout = _match_layout(header)
    if layout is not None:
        return layout, header, 1, len(first) - len(header)
    if (
        len(header) == len(BINANCE_VISION_KLINE_COLUMNS)
        and all(is_number(h) for h in header)
        and _VISION_NAME.match(_base_name(name))
    ):
        return _VISION_KLINES, list(BINANCE_VISION_KLINE_COLUMNS), 0, 0
    if len(header) == 1 and len(lines) > 1:  # a notice (CryptoDataDownload's URL), then a header
        second = _fields(lines[1])
        header = _named(second)
        if (layout := _match_layout(header)) is not None:
            return layout, header, 2, len(second) - len(header)
    return None


def _fields(line: str) -> list[str]:
    try:
        return [h.strip() for h in next(csv.reader([line]), [])]
    except csv.Error:
        return []


def _named(fields: list[str]) -> list[str]:
    """``fields`` without the empty ones at the end: a trailing comma makes no column."""
    end = len(fields)
    while end and not fields[end - 1]:
        end -= 1
    return fields[:end]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _base_name(name: str) -> str:
    return Path(name.replace("\\", "/")).name


def _vision_vendor(name: str) -> str:
    """``binance_futures_um`` for a data.binance.vision kline file under a ``futures`` or ``um``
    folder (``data/futures/um/monthly/klines/...``, ``binance_futures_um/``), else
    ``binance_spot``: the file itself does not tell spot from futures."""
    folders = Path(name.replace("\\", "/")).parent.parts
    tokens = {t.lower() for folder in folders for t in _NAME_TOKENS.split(folder)}
    return "binance_futures_um" if tokens & _FUTURES_FOLDER_TOKENS else "binance_spot"


def name_pair_candidates(name: str) -> list[str]:
    """The words of a file name (split at non-alphanumerics) that end with a known quote asset
    after at least one character, upper-cased, in order, without repeats.

    Examples
    --------
    >>> name_pair_candidates("crypto_industry_BTCUSDT_1h.csv")
    ['INDUSTRY', 'BTCUSDT']
    """
    stem = Path(name.replace("\\", "/")).name.rsplit(".", 1)[0]
    found: list[str] = []
    for token in _NAME_TOKENS.split(stem):
        upper = token.upper()
        if upper not in found and any(
            upper.endswith(q) and len(upper) > len(q) for q in QUOTE_ASSETS
        ):
            found.append(upper)
    return found


def pair_from_name(name: str) -> str | None:
    """Find the pair in a file name: its one word that ends with a known quote asset.

    The words are `name_pair_candidates`. One word is the pair, whatever its quote asset. When
    there are several, the one whose quote asset is a major quote (`NAME_MAJOR_QUOTES`: USD
    stablecoins, USD, BTC, ETH, BNB) is the pair if exactly one is: ``crypto_industry_BTCUSDT``
    gives ``BTCUSDT``, not ``INDUSTRY`` (IndUS + TRY). Otherwise the name is ambiguous and gives
    None: a file with a symbol column goes by its symbols, one without is refused naming the
    candidates. A single word may still end like a pair (``binance_top_entry.csv`` gives
    ``ENTRY``): where a file has a symbol column, the loader goes by its symbols (see
    `load_candles`'s ``pairs``).

    Examples
    --------
    >>> pair_from_name("data/crypto/BTCUSDT_1h.csv")
    'BTCUSDT'
    >>> pair_from_name("Binance_ethusdt_funding_8h.csv")
    'ETHUSDT'
    >>> pair_from_name("crypto_industry_BTCUSDT_1h.csv")
    'BTCUSDT'
    >>> pair_from_name("BTCUSDT_vs_ETHUSDT.csv") is None  # two pairs: ambiguous
    True
    >>> pair_from_name("prices.csv") is None
    True
    """
    candidates = name_pair_candidates(name)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    major = [c for c in candidates if quote_asset(c) in NAME_MAJOR_QUOTES]
    return major[0] if len(major) == 1 else None


def list_bundled_pairs() -> list[str]:
    """Return the pairs in the bundled spot set, sorted (e.g. ``["ADAUSDT", ..., "XRPUSDT"]``)."""
    stat = BUNDLED_CRYPTO.stat()
    return list(_bundled_pairs(str(BUNDLED_CRYPTO), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4)
def _bundled_pairs(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    with tarfile.open(path, mode="r:*") as tar:
        names = [m.name for m in tar.getmembers() if m.isfile() and m.name.endswith(".csv")]
    return tuple(sorted({p for n in names if (p := pair_from_name(n)) is not None}))


def _may_hold(name: str, data: bytes, name_pair: str | None, wanted: set[str]) -> bool:
    """Whether a file may hold one of the ``wanted`` pairs, told before it is read.

    A file with a symbol column holds the pairs its symbols name (`normalise_pair`); its name
    only adds its own pair (its rows without a symbol take it, and a file whose symbols all
    contradict its name is refused, `_check_name_pair`). A word that ends like a pair
    (``ENTRY`` in ``binance_top_entry.csv``) so never hides the pairs of a file's symbol column.
    A file without a symbol column, or that the loader does not read, goes by its name's pair.
    """
    if name_pair is None or name_pair in wanted:
        return True
    found = _find_layout(name, data)
    if found is None:
        return False
    layout, header, skip, _ = found
    symbol_col = _symbol_col(layout, header)
    if symbol_col is None:
        return False
    # a symbol is one of ``wanted`` only if the bytes hold it without separators: most files of
    # other pairs are told from that, without being parsed
    squeezed = data.upper().translate(None, b"/-_ ")
    if not any(p.encode() in squeezed for p in wanted):
        return False
    column = header.index(symbol_col)
    lines = io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")
    try:
        symbols = {row[column] for row in itertools.islice(csv.reader(lines), skip, None)
                   if len(row) > column}  # fmt: skip
    except csv.Error:  # reading it says what is wrong
        return True
    return any(normalise_pair(s) in wanted for s in symbols)


def load_candles(
    paths: Sequence[str | Path] | None = None,
    *,
    on_error: OnError = "drop",
    max_repair_bars: int = MAX_REPAIR_BARS,
    pairs: Sequence[str] | None = None,
    pair_renames: Mapping[str, str | PairRename] | None = None,
) -> CandleData:
    """Read hourly candle, funding and open-interest CSVs into normalised, validated tables.

    Each file's kind is told from its header (`detect_format`) and its pair from a symbol column
    or else the file name (`pair_from_name`); a renamed pair's rows take the new name. Candles
    then go through
    `marketcast.data.candles.validate_candles`: bad bars, duplicates, zero-volume placeholders,
    vendor overlap (checked, then ``binance_spot`` > ``cryptodatadownload`` >
    ``binance_futures_um``), bad-print spikes, and gap repair.

    Parameters
    ----------
    paths
        Files or folders (searched recursively for ``*.csv``) and tar archives (``.tar``,
        ``.tar.gz``, ``.tar.xz``, read in memory). ``None`` reads the bundled spot set.
    on_error
        ``"drop"`` (default): a bad row is dropped and counted, with an issue naming file, row
        and field; a file that cannot be read (unknown header, not hourly, hourly then 4-hourly,
        no pair, symbols that all contradict the file name) is skipped and its error lands in
        ``report.errors``, as does one more than half of whose rows are bad (read and counted,
        none of them used). ``"raise"``: either raises `DataError`.
    max_repair_bars
        Runs of at most this many missing hours are filled from the previous close.
    pairs
        Keep only these pairs (any spelling `normalise_pair` accepts); None keeps all. An old
        name in ``pair_renames`` asks for the new pair, which holds its bars. A file is read
        when its name's pair or a symbol of its symbol column is one of them: the name decides
        alone only for a file without a symbol column (``binance_top_entry.csv`` holding BTCUSDT
        rows is read for BTCUSDT, though its name gives ENTRY).
    pair_renames
        Old pair -> new pair (or `marketcast.config.PairRename` with ``new_per_old``), checked
        by `marketcast.config.check_pair_renames`. The old pair's candles, funding and open
        interest continue the new pair's (in new units); from the new pair's first row on, its
        own rows win (the old ones are dropped as ``rename_overlap``). None or empty: no rename.

    Returns
    -------
    CandleData

    Raises
    ------
    DataError
        A path that does not exist; with ``on_error="raise"``, any bad file or row.
    ValueError
        ``pair_renames`` is not a valid set of renames.
    """
    renames = check_pair_renames(pair_renames or {})  # before reading: a bad rename fails fast
    if paths is None:
        sources = read_archive_csvs(BUNDLED_CRYPTO)
        return load_candle_sources(
            sources,
            on_error=on_error,
            max_repair_bars=max_repair_bars,
            pairs=pairs,
            pair_renames=renames,
        )
    sources, report_errors, names = read_csv_sources(paths, raise_on_error=on_error == "raise")
    try:
        data = load_candle_sources(
            sources,
            on_error=on_error,
            max_repair_bars=max_repair_bars,
            pairs=pairs,
            pair_renames=renames,
        )
    except DataError as err:  # a tar member's: say which archive holds it
        raise names.name_error(err) from err
    data.report.errors.extend(e.to_issue() for e in report_errors)
    names.name_report(data.report)
    return data


def load_candle_sources(
    sources: Sequence[tuple[str, bytes]],
    *,
    on_error: OnError = "drop",
    max_repair_bars: int = MAX_REPAIR_BARS,
    pairs: Sequence[str] | None = None,
    pair_renames: Mapping[str, str | PairRename] | None = None,
) -> CandleData:
    """Like `load_candles`, from in-memory ``(name, bytes)`` sources (files or archive members)."""
    renames = check_pair_renames(pair_renames or {})
    wanted = None if pairs is None else {normalise_pair(p) for p in pairs}
    if wanted is not None and renames:  # the new pair holds the old one's bars: read both
        wanted = {renames[p].to if p in renames else p for p in wanted}
        wanted |= {old for old, rename in renames.items() if rename.to in wanted}
    report = CandleReport()
    parts: dict[str, list[pd.DataFrame]] = {"candles": [], "funding": [], "open_interest": []}
    renamed: Counter[str] = Counter()  # rows read under each old name
    candle_files: list[_CandleFile] = []  # not yet mostly bad: the bar checks may make them so
    for name, data in sources:
        name_pair = pair_from_name(name)
        if wanted is not None and not _may_hold(name, data, name_pair, wanted):
            continue
        counts = _Counts.of(report)
        try:
            kind, n_rows, n_other, frame = _read_source(
                name, data, report, on_error=on_error, name_pair=name_pair, renames=renames,
                wanted=wanted,
            )  # fmt: skip
        except DataError as err:
            if on_error == "raise":
                raise
            counts.restore(report)  # a refused file's rows are not read, so none is dropped
            report.errors.append(err.to_issue())
            continue
        mostly_bad = 2 * len(frame) < n_rows  # read, counted, and an error (`_mostly_bad`)
        if n_rows + n_other == 0:  # a file of other pairs only is not truncated
            _note_header_only(name, report)
        elif mostly_bad:
            first = _first_bad_row(name, data, name_pair, renames, wanted)
            report.errors.append(_mostly_bad(name, n_rows - len(frame), n_rows, first))
        if mostly_bad:  # its good rows go with it: none of the file is used (or served)
            report.drop(MOSTLY_BAD_FILE, len(frame))
            frame = frame.iloc[:0]
        if renames:
            frame = _rename_pairs(frame, kind, renames, name, report, renamed)
        report.files_read += 1
        report.rows_read += n_rows
        parts["candles" if kind in _CANDLE_KINDS else kind].append(frame)
        if kind in _CANDLE_KINDS and not mostly_bad:
            candle_files.append(
                _CandleFile(name, data, name_pair, n_rows, frame, len(parts["candles"]) - 1)
            )

    for old, rename in renames.items():
        if not renamed[old] and (wanted is None or old in wanted):  # misspelt? say so
            detail = f"{old} -> {rename.to}: no rows of {old} were read, so nothing was renamed"
            log.warning("pair_renames: %s", detail)
            report.add_issue(Issue("pair_renames", None, "pair", "rename_unused", detail))
    if parts["candles"]:
        before = copy.deepcopy(report)
        bar_drops = sum(report.dropped.get(r, 0) for r in _BAR_CHECK_REASONS)
        candles, gaps = validate_candles(
            pd.concat(parts["candles"], ignore_index=True),
            report,
            on_error=on_error,
            max_repair_bars=max_repair_bars,
        )
        if sum(report.dropped.get(r, 0) for r in _BAR_CHECK_REASONS) > bar_drops and (
            mostly_bad_bars := _mostly_bad_bars(candle_files, renames, wanted)
        ):  # validated again without those files: none of their bars is used
            report = before
            candles, gaps = _without_files(
                parts["candles"], mostly_bad_bars, report, max_repair_bars
            )
    else:
        candles, gaps = empty_candles(), empty_gaps()
    if parts["funding"]:
        raw_funding = pd.concat(parts["funding"], ignore_index=True)
        funding = validate_funding(raw_funding, report, on_error=on_error)
        _note_funding_gaps(funding, raw_funding, report)
    else:
        funding = pd.DataFrame(
            {
                "pair": pd.Series([], dtype=str),
                "funding_time_utc": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
                "funding_rate": np.array([], dtype=np.float64),
            },
            columns=list(FUNDING_COLUMNS),
        )
    if parts["open_interest"]:
        open_interest = validate_open_interest(
            pd.concat(parts["open_interest"], ignore_index=True), report, on_error=on_error
        )
    else:
        open_interest = pd.DataFrame(
            {
                "pair": pd.Series([], dtype=str),
                "time_utc": pd.DatetimeIndex([], tz="UTC").as_unit("ns"),
                "open_interest": np.array([], dtype=np.float64),
                "open_interest_value": np.array([], dtype=np.float64),
            },
            columns=list(OPEN_INTEREST_COLUMNS),
        )
    return CandleData(candles, funding, report, open_interest=open_interest, gaps=gaps)


def _note_funding_gaps(funding: pd.DataFrame, raw: pd.DataFrame, report: CandleReport) -> None:
    """A ``funding_gap`` issue for each hole in a pair's funding times (`costs.funding_gaps`).

    The holding periods that overlap a hole are charged no funding and counted as missing
    (``n_funding_missing``), as the periods outside the data are; the report says where the
    holes are (a month's file not downloaded, say), where they used to read as 0 funding paid.
    An issue, not an error: the data are usable.
    """
    files = (
        raw.groupby("pair")["source_file"].agg(lambda f: ", ".join(sorted(set(map(str, f)))))
        if "source_file" in raw.columns
        else pd.Series(dtype=object)
    )
    for pair, group in funding.groupby("pair", sort=True):
        times = pd.DatetimeIndex(group["funding_time_utc"])
        starts, ends = funding_gaps(times.asi8, end_spacing=LONGEST_FUNDING_INTERVAL_NS)
        for start, end in zip(starts, ends, strict=True):
            t0, t1 = pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC")
            hours = (t1 - t0) / pd.Timedelta(hours=1)
            detail = (
                f"funding_gap: {pair} has no funding event between {t0:%Y-%m-%d %H:%M} and "
                f"{t1:%Y-%m-%d %H:%M} UTC ({hours:,.0f} h): holding periods overlapping it are "
                "charged no funding and counted in n_funding_missing"
            )
            report.add_issue(
                Issue(str(files.get(pair, "funding")), None, "funding_time_utc", detail)
            )


#: Why the good rows of a file more than half of whose rows are bad are dropped: the file is an
#: error (`_mostly_bad`), and none of it is used (in ``dropped`` only once a row is).
MOSTLY_BAD_FILE = "mostly_bad_file"

#: `marketcast.data.candles.check_bars`'s reasons: a row dropped for one was bad, not redundant
_BAR_CHECK_REASONS = (
    "unaligned_timestamp", "timestamp_out_of_range", "missing_value", "non_finite_value",
    "non_positive_price", "high_below_open_close", "low_above_open_close", "negative_volume",
)  # fmt: skip


@dataclass(frozen=True)
class _Counts:
    """What reading one file may add to a report before it refuses the file."""

    dropped: dict[str, int]
    repaired: dict[str, int]
    blank_rows: int
    n_issues: int

    @classmethod
    def of(cls, report: CandleReport) -> _Counts:
        return cls(dict(report.dropped), dict(report.repaired), report.blank_rows,
                   len(report.issues))  # fmt: skip

    def restore(self, report: CandleReport) -> None:
        report.dropped, report.repaired = dict(self.dropped), dict(self.repaired)
        report.blank_rows = self.blank_rows
        del report.issues[self.n_issues :]


def _mostly_bad(name: str, n_bad: int, n_rows: int, first: DataError | None) -> Issue:
    """The error for a file more than half of whose data rows were bad (dropped by parsing or
    by the bar checks), naming the first bad row, field and value as ``on_error="raise"`` would.

    Its rows stay read and counted as dropped; but a file that is mostly bad is read wrong (a
    ``timestamp`` of date text, swapped columns, another pair's rows), and a pair that vanishes
    from the data, or keeps a few stray bars, is no quiet drop: `report.ok` is False, so run,
    evaluate and data check refuse the data.
    """
    what = f"{n_bad:,} of its {n_rows:,} data rows were dropped as bad (more than half)"
    if first is None:
        return Issue(name, None, None, what)
    value = "" if first.value is None else f" ({first.value!r})"
    return Issue(name, first.row, first.field, f"{what}; the first{value}: {first.reason}",
                 first.value)  # fmt: skip


def _first_bad_row(
    name: str,
    data: bytes,
    name_pair: str | None,
    renames: Mapping[str, PairRename],
    wanted: set[str] | None,
) -> DataError | None:
    """The error ``on_error="raise"`` gives for a file: it is read again (mostly bad files only)."""
    try:
        _read_source(name, data, CandleReport(), on_error="raise", name_pair=name_pair,
                     renames=renames, wanted=wanted)  # fmt: skip
    except DataError as err:
        return err
    return None


@dataclass(frozen=True)
class _CandleFile:
    """A candle file as read: its rows that passed parsing in ``frame``, out of ``n_rows``;
    ``part`` is the frame's place among the loader's candle frames."""

    name: str
    data: bytes
    name_pair: str | None
    n_rows: int
    frame: pd.DataFrame
    part: int


def _mostly_bad_bars(
    files: Sequence[_CandleFile], renames: Mapping[str, PairRename], wanted: set[str] | None
) -> list[tuple[_CandleFile, Issue]]:
    """The candle files left with fewer than half their rows by the bar checks
    (`marketcast.data.candles.check_bars`), each with its `_mostly_bad` error; looked for only
    when some bar broke one."""
    found = []
    for file in files:
        kept = len(check_bars(file.frame, CandleReport())) if len(file.frame) else 0
        if 2 * kept >= file.n_rows:
            continue
        first = _first_bad_row(file.name, file.data, file.name_pair, renames, wanted)
        if first is None:  # no row was bad while parsing: the first bad bar
            try:
                check_bars(file.frame, CandleReport(), on_error="raise")
            except DataError as err:
                first = err
        found.append((file, _mostly_bad(file.name, file.n_rows - kept, file.n_rows, first)))
    return found


def _without_files(
    frames: Sequence[pd.DataFrame],
    refused: Sequence[tuple[_CandleFile, Issue]],
    report: CandleReport,
    max_repair_bars: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate the candle ``frames`` but those of the ``refused`` files (mostly bad by the bar
    checks), into ``report`` as it was before the first validation: each refused file's error
    goes in, its bad bars are counted under their reasons and its good ones as
    `MOSTLY_BAD_FILE`, so no bar of it is used, as after a parsing failure. Only with
    ``on_error="drop"``: with ``"raise"`` the first bad bar has raised."""
    for file, error in refused:
        report.errors.append(error)
        report.drop(MOSTLY_BAD_FILE, len(check_bars(file.frame, report)))
    parts = {file.part for file, _ in refused}
    kept = [frame for i, frame in enumerate(frames) if i not in parts]
    if not kept:
        return empty_candles(), empty_gaps()
    raw = pd.concat(kept, ignore_index=True)
    return validate_candles(raw, report, on_error="drop", max_repair_bars=max_repair_bars)


def _symbol_col(layout: _Layout, header: Sequence[str]) -> str | None:
    """The file's column that gives the pair (the first of ``layout.symbol_cols`` it has)."""
    by_lower = {h.lower(): h for h in header}
    return next((by_lower[s] for s in layout.symbol_cols if s in by_lower), None)


def _spec(layout: _Layout, header: list[str]) -> _Spec:
    """Map normalised names to the file's own column names (matched case-insensitively)."""
    by_lower = {h.lower(): h for h in header}
    numeric = {target: by_lower[source] for target, source in layout.numeric.items()}
    for target, source in layout.optional.items():
        if source in by_lower:
            numeric[target] = by_lower[source]
    symbol_col = _symbol_col(layout, header)
    if layout.kind == "cryptodatadownload":
        # "Volume <BASE>" and "Volume <QUOTE>"
        volume_cols = [h for h in header if h.lower().startswith("volume ")]
        quote = next((q for q in QUOTE_ASSETS
                      if any(v.upper() == f"VOLUME {q}" for v in volume_cols)), None)  # fmt: skip
        if quote is None or len(volume_cols) != 2:
            raise DataError("", 1, "Volume",
                            "expected one base and one quote 'Volume <ASSET>' column")  # fmt: skip
        quote_col = next(v for v in volume_cols if v.upper() == f"VOLUME {quote}")
        numeric["volume"] = next(v for v in volume_cols if v != quote_col)
        numeric["quote_volume"] = quote_col
    spec = _Spec(layout.kind, by_lower[layout.time_col], layout.time, numeric, symbol_col)
    lowered = [h.lower() for h in header]
    for column in (spec.time_col, *numeric.values(), *([symbol_col] if symbol_col else [])):
        if lowered.count(column.lower()) > 1:  # which one holds the values cannot be told
            twice = [i + 1 for i, h in enumerate(lowered) if h == column.lower()]
            raise DataError("", 1, column, f"column given more than once (columns {twice})")
    return spec


def _read_source(
    name: str,
    data: bytes,
    report: CandleReport,
    *,
    on_error: OnError,
    name_pair: str | None,
    renames: Mapping[str, PairRename],
    wanted: set[str] | None = None,
) -> tuple[FileKind, int, int, pd.DataFrame]:
    """Parse one file into a raw frame of its kind, with ``source_file`` and ``source_row``.

    Also returns how many non-blank data rows of the ``wanted`` pairs (all pairs when None)
    the file has, kept or dropped while parsing, and how many rows of other pairs it skipped
    unread: neither checked, counted nor raised on. ``renames`` only tell which symbols agree
    with the file name (`_check_name_pair`).
    """
    if b"\n" not in data and b"\r" in data:
        data = data.replace(b"\r", b"\n")  # old Mac line endings: the header was the whole file
    first_line = data.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    if not first_line.strip():
        raise DataError(name, 1, None, "empty file or blank header")
    found = _find_layout(name, data)
    if found is None:
        raise DataError(name, 1, None, f"unrecognised header: {first_line[:120]!r}")
    layout, header, skip, blank_header_fields = found  # ``skip`` lines: notice, header
    kind = layout.kind
    try:
        spec = _spec(layout, header)
    except DataError as err:
        raise DataError(name, err.row, err.field, err.reason) from err
    vendor: str = kind
    if kind == "binance_vision":
        vendor = _vision_vendor(name)
        if (named := _VISION_NAME.match(_base_name(name))) is not None:
            name_pair = name_pair or named["pair"].upper()
            if named["interval"] != "1h":
                raise DataError(name, None, spec.time_col, "candles are not hourly: the file "
                                f"name gives {named['interval']} bars")  # fmt: skip
    used = [spec.time_col, *spec.numeric.values()] + ([spec.symbol_col] if spec.symbol_col else [])
    n_read = max(header.index(c) for c in used) + 1  # a line short of these lacks a read value
    width, trailing_rows, short_lines = _row_widths(name, data, skip, len(header), n_read)
    names = [h if h and h not in header[:i] else f"__column_{i}" for i, h in enumerate(header)]
    names += [f"__column_{i}" for i in range(len(header), width)]  # empty trailing fields
    dtypes: dict[str, type] = {c: str for c in used}
    dtypes.update(dict.fromkeys(spec.numeric.values(), np.float64))
    if (blank_lines := _blank_after_header(data, skip)) is not None:
        report.blank_rows += blank_lines
        data = data.rstrip(b"\r\n")  # else pandas, finding no line as wide as the header, fails
    try:
        try:
            frame = _read_csv(data, names, used, dtypes, skip)
        except pd.errors.ParserError:
            raise
        except ValueError:
            # a non-numeric value somewhere: read the numbers as text, then find the bad cells
            frame = _read_csv(data, names, used, dict.fromkeys(used, str), skip)
    except (ValueError, UnicodeError) as exc:
        raise DataError(name, None, None, f"cannot parse CSV: {exc}") from exc
    _count_trailing_fields(name, report, blank_header_fields, trailing_rows)

    rows = np.arange(skip + 1, len(frame) + skip + 1, dtype=np.int64)  # 1-based file lines
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        report.blank_rows += int(blank.sum())
        frame, rows = frame.loc[~blank].reset_index(drop=True), rows[~blank]
    pair, cut, symbols = _pairs(frame, spec, name_pair, renames)
    _check_name_pair(name, spec, frame, rows, name_pair, pair, symbols, renames)
    n_other = 0
    if wanted is not None:  # a row without a pair may be a wanted one's: it is checked
        other = (pair != "") & ~np.isin(pair, list(wanted))
        n_other = int(other.sum())
        if n_other:
            frame, rows = frame.loc[~other].reset_index(drop=True), rows[~other]
            pair, cut = pair[~other], cut[~other]
    n_rows = len(frame)
    # a line with fewer fields than the header (a download cut off): its last value may be cut
    bad = _reject_short_rows(name, rows, short_lines, header, report, on_error)
    values: dict[str, npt.NDArray[np.float64]] = {}
    for target, source in spec.numeric.items():
        raw = frame[source]
        if raw.dtype == np.float64:
            values[target] = raw.to_numpy(dtype=np.float64)
            continue
        parsed = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        unparseable = np.isnan(parsed) & raw.notna().to_numpy() & ~_is_null_text(raw)
        _reject(name, rows, unparseable & ~bad, source, raw, "unparseable_value", report, on_error)
        bad |= unparseable
        values[target] = parsed

    _refuse_serial_days(name, spec.time_col, frame[spec.time_col], rows)
    times_ns, unparseable_time, time_is_text = _parse_times(
        frame[spec.time_col], spec.time, name, report
    )
    if unparseable_time.all() and n_rows and spec.time == "epoch":
        _refuse_dates(name, kind, spec.time_col, frame[spec.time_col], rows)
    if kind in _CANDLE_KINDS and not time_is_text:
        _check_rounded_times(name, spec.time_col, frame[spec.time_col], times_ns, rows)
    _reject(name, rows, unparseable_time & ~bad, spec.time_col, frame[spec.time_col],
            "unparseable_timestamp", report, on_error)  # fmt: skip
    bad |= unparseable_time

    no_pair = pair == ""
    if no_pair.all() and len(frame):
        if name_pair is None and len(candidates := name_pair_candidates(name)) > 1:
            raise DataError(name, None, spec.symbol_col, "cannot tell the pair: no symbol "
                            f"column and the file name holds several ({', '.join(candidates)}), "
                            "not exactly one with a major quote asset "
                            f"({', '.join(sorted(NAME_MAJOR_QUOTES))}); rename the file or add "
                            "a symbol column")  # fmt: skip
        raise DataError(name, None, spec.symbol_col, "cannot tell the pair: no symbol column "
                        "and none in the file name")  # fmt: skip
    _reject(name, rows, no_pair & ~bad, spec.symbol_col or "symbol", frame[spec.symbol_col]
            if spec.symbol_col else pd.Series([""] * len(frame)), "missing_value", report,
            on_error)  # fmt: skip
    bad |= no_pair
    if cut.any() and spec.symbol_col is not None:  # ``BTCU`` would be a phantom pair of one bar
        reason = "symbol_mismatch" if quote_asset(str(pair[-1])) else "unknown_symbol"
        _reject(name, rows, cut & ~bad, spec.symbol_col, frame[spec.symbol_col], reason, report,
                on_error)  # fmt: skip
        bad |= cut

    keep = ~bad
    if spec.symbol_col is not None:  # a blank symbol cell given the file name's pair
        report.repair("pair_from_file_name", int((frame[spec.symbol_col].isna() & keep).sum()))
    times_ns, rows, pair = times_ns[keep], rows[keep], pair[keep]
    values = {k: v[keep] for k, v in values.items()}
    source_file = np.full(len(rows), name, dtype=object)
    if kind == "funding":
        return (
            kind,
            n_rows,
            n_other,
            pd.DataFrame(
                {
                    "pair": pair,
                    "funding_time_utc": _utc(times_ns),
                    "funding_rate": values["funding_rate"],
                    "source_file": source_file,
                    "source_row": rows,
                }
            ),
        )
    if kind == "open_interest":
        return (
            kind,
            n_rows,
            n_other,
            pd.DataFrame(
                {
                    "pair": pair,
                    "time_utc": _utc(times_ns),
                    "open_interest": values["open_interest"],
                    "open_interest_value": values["open_interest_value"],
                    "source_file": source_file,
                    "source_row": rows,
                }
            ),
        )
    _check_hourly(name, spec.time_col, times_ns, pair, rows)
    volume = values["volume"]
    quote = values.get("quote_volume")
    close = values["close"]
    estimated = np.ones(len(rows), dtype=bool) if quote is None else np.isnan(quote)
    quote_volume = volume * close if quote is None else np.where(estimated, volume * close, quote)
    trades = values.get("trades", np.full(len(rows), np.nan))
    frame_out = pd.DataFrame(
        {
            # text columns stay object while validating: numpy takes are much cheaper than
            # Arrow string takes; `normalise_candles` turns them into ``str`` at the end
            "pair": pd.Series(pair, dtype=object),
            "open_time_utc": _utc(times_ns),
            **{c: values[c] for c in _OHLC},
            "volume": volume,
            "quote_volume": quote_volume,
            "quote_volume_estimated": estimated,
            "trades": trades,
            "vendor": pd.Series(np.full(len(rows), vendor, dtype=object), dtype=object),
            "repaired": False,
            "source_file": pd.Series(source_file, dtype=object),
            "source_row": rows,
            OFF_FILE_NAME: _off_file_name(pair, name_pair, renames),
        },
        columns=[*CANDLE_COLUMNS, "source_file", "source_row", OFF_FILE_NAME],
    )
    return kind, n_rows, n_other, frame_out


def _off_file_name(
    pair: npt.NDArray[np.object_], name_pair: str | None, renames: Mapping[str, PairRename]
) -> npt.NDArray[np.bool_]:
    """Rows whose pair is not the one the file is named after (`_name_agrees`, per distinct
    pair); all False for a file named after no pair."""
    if name_pair is None:
        return np.zeros(len(pair), dtype=bool)
    names, codes = np.unique(pair.astype(str), return_inverse=True)
    off = np.array([not _name_agrees(name_pair, [p], renames) for p in names], dtype=bool)
    return off[codes]


def _rename_pairs(
    frame: pd.DataFrame,
    kind: FileKind,
    renames: dict[str, PairRename],
    name: str,
    report: CandleReport,
    renamed: Counter[str],
) -> pd.DataFrame:
    """Give a renamed pair's rows the new name, in new units, with the old name in `RENAMED_FROM`.

    Every frame gets `RENAMED_FROM` ("" where not renamed), so that the validators can tell the
    old series from the new one (`marketcast.data.candles.drop_renamed_overlap`). Prices are
    divided and base-asset amounts (volume, open interest) multiplied by ``new_per_old``; quote
    volumes, trade counts and funding rates stay. Counted in ``repaired["pair_renamed"]`` (and
    ``repaired["pair_rescaled"]`` where ``new_per_old != 1``), one issue per file and rename;
    ``renamed`` adds the rows of each old name (the loader warns of a rename that had none).
    """
    out = frame.copy()
    pair = out["pair"].to_numpy(dtype=object, copy=True)
    renamed_from = np.full(len(out), "", dtype=object)
    new_per_old = np.ones(len(out))
    for old, rename in renames.items():
        rows = pair == old
        n = int(rows.sum())
        if not n:
            continue
        renamed[old] += n
        pair[rows] = rename.to
        renamed_from[rows] = old
        new_per_old[rows] = rename.new_per_old
        report.repair("pair_renamed", n)
        detail = f"{old} -> {rename.to}: {n} rows"
        if rename.new_per_old != 1.0:
            report.repair("pair_rescaled", n)
            detail += f", {rename.new_per_old:g} new per old"
        if issue_room(report, "pair_renamed"):
            report.add_issue(Issue(name, None, "pair", "pair_renamed", detail))
    if (new_per_old != 1.0).any():
        if kind in _CANDLE_KINDS:
            for col in _OHLC:
                out[col] = out[col].to_numpy(dtype=np.float64) / new_per_old
            out["volume"] = out["volume"].to_numpy(dtype=np.float64) * new_per_old
        elif kind == "open_interest":
            out["open_interest"] = out["open_interest"].to_numpy(dtype=np.float64) * new_per_old
    out["pair"] = pair
    out[RENAMED_FROM] = renamed_from
    return out


def _read_csv(
    data: bytes, names: list[str], used: list[str], dtypes: dict[str, type], skip: int
) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        header=None,
        skiprows=skip,
        names=names,
        usecols=used,
        dtype=dtypes,  # type: ignore[arg-type]
        skip_blank_lines=False,
        encoding="utf-8-sig",
        engine="c",
    )


def _blank_after_header(data: bytes, skip: int) -> int | None:
    """How many blank lines follow the first ``skip`` lines (notice, header) when nothing else
    does; None when there is a data line (or no header)."""
    if not skip:
        return None
    parts = data.split(b"\n", skip)
    body = parts[skip] if len(parts) > skip else b""
    return None if body.strip(b"\r\n") else body.count(b"\n")


def _row_widths(
    name: str, data: bytes, skip: int, width: int, n_read: int
) -> tuple[int, int, dict[int, tuple[int, str]]]:
    """Check that no data line has more fields than the header names, but empty trailing ones,
    and find the lines too short to hold every column the loader reads.

    A trailing comma (``...,0,``) ends a line with an empty field that is no data: such lines are
    read without it. A line with a value past the header's columns (a comma inside a value, as in
    a price typed ``1,5``) would be read with its values a column off: it is an error. A line
    without one of the columns read (a download cut off inside its last line: ``...,2339.2904``
    and no ``ticker``) would be read with its last value cut and the columns after it empty: the
    caller drops it. A line that only lacks columns after those (a ragged export's empty ``note``
    column) is read as it is.

    Parameters
    ----------
    name
        The file, for the error.
    data
        The file's bytes (line feeds end its lines).
    skip
        Lines before the data (notice, header).
    width
        The header's columns (its empty trailing fields left out).
    n_read
        The columns up to the last one the loader reads (at most ``width``).

    Returns
    -------
    (int, int, dict)
        The most fields a data line has (at least ``width``); how many non-blank data lines
        end in empty fields past the header's; and the non-blank data lines with fewer than
        ``n_read`` fields, line number (1-based) -> (fields, the line's first 120 characters).

    Raises
    ------
    DataError
        Naming the file and the first line with a value past the header's columns.
    """
    chars = np.frombuffer(data, dtype=np.uint8)
    line_ends = np.flatnonzero(chars == ord("\n"))
    commas = np.flatnonzero(chars == ord(","))
    n_commas = np.bincount(np.searchsorted(line_ends, commas), minlength=len(line_ends) + 1)
    # lines with more commas than the header: a quoted comma counts here, `_fields` then splits
    wide = np.flatnonzero(n_commas[skip:] >= width) + skip
    starts = np.r_[0, line_ends + 1]
    most, trailing = width, 0
    for i in wide:
        stop = int(line_ends[i]) if i < len(line_ends) else len(data)
        line = data[int(starts[i]) : stop].decode("utf-8-sig", errors="replace")
        fields = _fields(line.rstrip("\r\n"))
        if len(fields) <= width:
            continue
        if any(fields[width:]):
            raise DataError(name, int(i) + 1, None, f"{len(fields)} fields, the header has "
                            f"{width}: a value past the last column (a comma inside a value?)",
                            line[:120])  # fmt: skip
        most = max(most, len(fields))
        trailing += any(fields[:width])  # an all-comma line is a blank row, not a repair
    return most, trailing, _short_lines(data, skip, n_read, n_commas, starts, line_ends)


def _short_lines(
    data: bytes,
    skip: int,
    n_read: int,
    n_commas: npt.NDArray[np.intp],
    starts: npt.NDArray[np.intp],
    line_ends: npt.NDArray[np.intp],
) -> dict[int, tuple[int, str]]:
    """The data lines with fewer fields than ``n_read``, but blank ones (see `_row_widths`)."""
    ends = np.r_[line_ends, len(data)]
    # too few commas and more than a line ending: blank lines are not short
    narrow = np.flatnonzero((n_commas[skip:] < n_read - 1) & (ends[skip:] - starts[skip:] > 1))
    short: dict[int, tuple[int, str]] = {}
    for i in narrow + skip:
        line = data[int(starts[i]) : int(ends[i])].decode("utf-8-sig", errors="replace")
        fields = _named(_fields(line.rstrip("\r\n")))
        if fields and len(fields) < n_read:  # an all-comma line is blank; quoted commas count
            short[int(i) + 1] = (len(fields), line.rstrip("\r\n")[:120])
    return short


def _count_trailing_fields(
    name: str, report: CandleReport, blank_header_fields: int, trailing_rows: int
) -> None:
    """Count a file's trailing commas: ``repaired["empty_header_fields"]`` (the header's) and
    ``repaired["trailing_empty_fields"]`` (data lines), with one issue for the file."""
    if not blank_header_fields and not trailing_rows:
        return
    report.repair("empty_header_fields", blank_header_fields)
    report.repair("trailing_empty_fields", trailing_rows)
    if issue_room(report, "trailing_empty_fields"):
        parts = []
        if blank_header_fields:
            parts.append(f"the header ends in {blank_header_fields} empty field(s)")
        if trailing_rows:
            parts.append(f"{trailing_rows} row(s) end in empty fields")
        detail = f"{'; '.join(parts)} (trailing commas, no data): read without them"
        report.add_issue(Issue(name, None, None, "trailing_empty_fields", detail))


def _check_rounded_times(
    name: str,
    time_col: str,
    raw: pd.Series,
    times_ns: npt.NDArray[np.int64],
    rows: npt.NDArray[np.int64],
) -> None:
    """Refuse a candle file whose open times a spreadsheet rounded (``1.68558E+15``).

    A spreadsheet writes a long number with six significant digits and an exponent: the hourly
    bars then fall on a few times hours apart (``1.68558E+15`` µs is 2023-06-01 00:40), so the
    file would be refused as "not hourly", or its bars dropped as unaligned, with no word of
    why. An open time written with an exponent and off the hour is that rounding.

    Raises
    ------
    DataError
        Naming the file, the first such row and the time column.
    """
    off_hour = np.flatnonzero((times_ns % HOUR_NS) != 0)
    if not len(off_hour):
        return
    text = raw.iloc[off_hour].astype(object)
    exponent = text.map(lambda v: isinstance(v, str) and "e" in v.lower()).to_numpy(dtype=bool)
    if not exponent.any():
        return
    i = int(off_hour[np.argmax(exponent)])
    value = str(raw.iat[i])
    raise DataError(
        name,
        int(rows[i]),
        time_col,
        f"open time {value} was rounded (written in scientific notation, as a spreadsheet "
        "writes long numbers), so the bars' hours are lost: re-export the file with whole-number "
        "timestamps",
        value,
    )


def _first_filled(raw: pd.Series) -> int | None:
    """The position of the column's first filled cell (None when every cell is empty)."""
    filled = np.flatnonzero(raw.notna().to_numpy())
    return int(filled[0]) if len(filled) else None


def _refuse_dates(
    name: str, kind: FileKind, time_col: str, raw: pd.Series, rows: npt.NDArray[np.int64]
) -> None:
    """Refuse a file whose epoch time column holds date text (``2021-04-04 20:00:00``), as a
    pandas or ccxt export writes it: every row would be dropped as unparseable.

    Called when no cell of the column is a number; nothing happens unless the first filled one
    reads as a date (other text is left to the per-row ``unparseable_timestamp`` drops).

    Raises
    ------
    DataError
        Naming the file, the first row and the time column.
    """
    i = _first_filled(raw)
    if i is None:
        return
    _, bad = _parse_text_times(raw.iloc[i : i + 1])
    if bad[0]:
        return
    value = str(raw.iat[i])
    raise DataError(
        name,
        int(rows[i]),
        time_col,
        f"{time_col} holds dates ({value!r}), expected epoch milliseconds (such as "
        f"1617566400000) in a {kind} file",
        value,
    )


#: Spreadsheet serial days (days since 1899-12-30, Excel's and LibreOffice's dates) of
#: 2009-01-01 to 2100-01-01. As epoch numbers they are times of 1970-01-01 (seconds): no bar.
SERIAL_DAY_RANGE = (39_814.0, 73_051.0)
_SERIAL_EPOCH = pd.Timestamp("1899-12-30")


def _refuse_serial_days(
    name: str, time_col: str, raw: pd.Series, rows: npt.NDArray[np.int64]
) -> None:
    """Refuse a file whose time column holds spreadsheet serial days (``45292.041666666664``,
    2024-01-01 01:00), as a spreadsheet saves a date column it formats as a number: read as
    epoch seconds they are hours of 1970-01-01, a few hundredths of a second apart (refused as
    "not hourly"), and as date text they are unparseable.

    They are not converted: the day count depends on the sheet's date system (1904 on old Mac
    sheets: 1,462 days later), its clock is the sheet's local time, and its fractions of a day
    are rounded. Called when the first filled cell is such a number; nothing happens unless more
    than half of the column's numbers are (one stray number in an epoch file is a dropped row).

    Raises
    ------
    DataError
        Naming the file, the first row and the time column.
    """
    i = _first_filled(raw)
    if i is None:
        return
    value = str(raw.iat[i]).strip()
    low, high = SERIAL_DAY_RANGE
    if not is_number(value) or not low <= float(value) < high:
        return
    number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    number = number[np.isfinite(number)]
    if 2 * int(((number >= low) & (number < high)).sum()) <= len(number):
        return
    as_date = _SERIAL_EPOCH + pd.Timedelta(days=float(value))
    raise DataError(
        name,
        int(rows[i]),
        time_col,
        f"{time_col} holds {value}, which looks like a spreadsheet serial day number (days "
        f"since 1899-12-30: {as_date:%Y-%m-%d %H:%M} in a sheet's own clock), not an epoch time "
        "or a date: re-export the file with the times as epoch milliseconds or as UTC date text "
        "(format the column as yyyy-mm-dd hh:mm:ss before saving)",
        value,
    )


def _note_header_only(name: str, report: CandleReport) -> None:
    """Record a file that holds a header and no data row: a ``header_only_file`` issue (a
    warning: the other files are read), in ``report.header_only_files``."""
    log.warning("%s: a header and no data rows (a truncated download?)", name)
    report.header_only_files.append(name)
    if issue_room(report, "header_only_file"):
        detail = "a header and no data rows (a truncated download?)"
        report.add_issue(Issue(name, None, None, "header_only_file", detail))


def _is_null_text(raw: pd.Series) -> npt.NDArray[np.bool_]:
    text = raw.astype(str).str.strip().str.upper()
    return text.isin(["", "NULL", "NAN", "NA", "N/A", "NONE"]).to_numpy()


def _parse_times(
    raw: pd.Series, time: TimeFormat, name: str, report: CandleReport
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], bool]:
    """Return UTC nanoseconds since the epoch, a mask of unparseable cells, and whether the
    column was read as date text (``"epoch_or_text"``: when no cell is a number)."""
    if time == "text":
        return *_parse_text_times(raw), True
    number = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    if time == "epoch_or_text" and not np.isfinite(number).any() and raw.notna().any():
        return *_parse_text_times(raw), True
    return *_parse_epoch_times(raw, number, name, report), False


def _parse_text_times(raw: pd.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Date text (naive: UTC) to nanoseconds since the epoch, and a mask of unparseable cells."""
    parsed = pd.to_datetime(raw, format=_SPOT_TIME_FORMAT, errors="coerce", utc=True)
    retry = parsed.isna().to_numpy() & raw.notna().to_numpy()
    if retry.any():
        parsed.loc[retry] = pd.to_datetime(
            raw.loc[retry], format="ISO8601", errors="coerce", utc=True
        )
    index = pd.DatetimeIndex(parsed).as_unit("ns")
    bad = np.asarray(index.isna())
    ns = np.where(bad, 0, index.asi8)
    return ns.astype(np.int64), bad


def _parse_epoch_times(
    raw: pd.Series, number: npt.NDArray[np.float64], name: str, report: CandleReport
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Epoch numbers (``number``, parsed from ``raw``) to nanoseconds, unit told by size."""
    bad = ~np.isfinite(number)  # NaN, and inf (which used to become 1970-01-01)
    ns = np.zeros(len(number), dtype=np.int64)
    magnitude = np.abs(np.where(bad, 0.0, number))
    unit_counts: dict[str, int] = {}
    low = 0.0
    converted = np.zeros(len(number), dtype=bool)
    for bound, scale, unit in _UNIT_BOUNDS:
        mask = ~bad & (magnitude >= low) & (magnitude < bound)
        low = bound
        if not mask.any():
            continue
        converted |= mask
        unit_counts[unit] = int(mask.sum())
        v = number[mask]
        # past int64 nanoseconds (seconds or milliseconds beyond 2262) the product would wrap
        # to some other time: such a stamp is the last whole hour int64 holds, which the bar
        # checks drop as ``timestamp_out_of_range``
        beyond = np.abs(v) * scale >= _UNIT_BOUNDS[-1][0]
        v = np.where(beyond, 0.0, v)
        whole = np.rint(v)
        exact = whole == v
        ns[mask] = np.where(
            beyond,
            _LAST_HOUR_NS,
            np.where(exact, whole.astype(np.int64) * scale, np.rint(v * scale).astype(np.int64)),
        )
    bad |= ~converted  # beyond every unit's range (1e30): no time at all, not 1970
    if len(unit_counts) > 1:
        # a file mixing units (the CryptoDataDownload overlap): count what was converted
        for unit, count in unit_counts.items():
            report.repair(f"timestamps_in_{unit}", count)
        if issue_room(report, "mixed_timestamp_units"):
            counts = ", ".join(f"{u}: {c}" for u, c in unit_counts.items())
            report.add_issue(Issue(name, None, str(raw.name), "mixed_timestamp_units", counts))
    return ns, bad


def _pairs(
    frame: pd.DataFrame,
    spec: _Spec,
    name_pair: str | None,
    renames: Mapping[str, PairRename],
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.bool_], list[str]]:
    """Pair per row: the symbol column where it has a value, else the pair in the file name.

    A row without a symbol takes the name's pair only when the file's symbols agree with it
    (`_name_agrees`) or it has none: ``binance_top_entry.csv`` holding BTCUSDT and ETHUSDT rows
    names no pair (its ``ENTRY`` is a word), so its row without a symbol has none.

    Also returns the row cut inside its symbol, if any (`_cut_symbol`), and the pairs the symbol
    column names, in the order of their first rows.
    """
    cut = np.zeros(len(frame), dtype=bool)
    if spec.symbol_col is None:
        return np.full(len(frame), name_pair or "", dtype=object), cut, []
    codes, uniques = pd.factorize(frame[spec.symbol_col], use_na_sentinel=True)
    labels = np.array([normalise_pair(str(u)) for u in uniques] + [""], dtype=object)
    if len(codes) and _cut_symbol(labels[:-1], codes, name_pair):
        cut[-1] = True
    symbols = list(dict.fromkeys(p for p in labels[:-1].tolist() if p))
    if name_pair is not None and (not symbols or _name_agrees(name_pair, symbols, renames)):
        labels[-1] = name_pair
    return labels[np.where(codes < 0, len(uniques), codes)], cut, symbols


def _cut_symbol(
    labels: npt.NDArray[np.object_], codes: npt.NDArray[np.intp], name_pair: str | None
) -> bool:
    """Whether the file's last row holds a symbol cut short by a half-written last line: one
    found on no other row that is the start of another symbol of the file or of the file name's
    pair (``BTCU`` or ``BTCUSD`` where the file holds ``BTCUSDT``), a phantom pair of one bar.

    Only the last line: a download cut off ends there. A symbol of an exchange's own spelling
    (``BTC-GBP``, ``BTC-USDT-SWAP``, ``BTCUSD_PERP``, whatever its quote asset) is no cut one.
    """
    last = int(codes[-1])
    if last < 0 or not labels[last]:
        return False
    symbol = str(labels[last])
    if np.isin(codes, np.flatnonzero(labels == symbol)).sum() > 1:  # any spelling of it
        return False
    longer = [str(p) for p in labels if p != symbol] + ([name_pair] if name_pair else [])
    return any(len(p) > len(symbol) and p.startswith(symbol) for p in longer)


#: Base assets an exchange spells its own way, as the file name's pair may not: Kraken's
#: ``XBT/USD`` in ``BTCUSD_1h.csv`` (only to compare a symbol with the file name, `_name_says`).
_BASE_ALIASES = {"XBT": "BTC", "XDG": "DOGE"}


def _check_name_pair(
    name: str,
    spec: _Spec,
    frame: pd.DataFrame,
    rows: npt.NDArray[np.int64],
    name_pair: str | None,
    pair: npt.NDArray[np.object_],
    symbols: Sequence[str],
    renames: Mapping[str, PairRename],
) -> None:
    """Refuse a file whose symbols all contradict the pair in its name (`pair_from_name`): ETH
    bars saved as ``BTCUSDT_1h.csv``, a pair that would vanish from the data.

    A symbol agrees with the name when both are one pair after `pair_renames` (either way:
    ``MATICUSDT`` rows in ``POLUSDT_1h.csv``) and `_BASE_ALIASES`, or when it starts with the
    name's pair (``BTCUSD_PERP`` in ``BTCUSD_PERP_1h.csv``, ``BTCUSDT_230630``). One agreeing
    symbol is enough: a file of several pairs may be named after one. Only symbols with the quote
    asset of the name's pair can contradict it: a word that ends like a pair (``ENTRY`` in
    ``binance_top_entry.csv``) names none.

    Raises
    ------
    DataError
        ``symbol_mismatch``, naming the first row of a contradicting symbol.
    """
    if spec.symbol_col is None or name_pair is None or not symbols:
        return
    if _name_agrees(name_pair, symbols, renames):
        return
    quote = quote_asset(name_pair)
    others = [s for s in symbols if quote_asset(s) == quote]
    if quote is None or not others:
        return
    i = int(np.flatnonzero(np.isin(pair, others))[0])
    listed = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    raise DataError(
        name, int(rows[i]), spec.symbol_col,
        f"symbol_mismatch: the file name gives {name_pair}, its {spec.symbol_col} column holds "
        f"{listed} and no {name_pair} row (another pair's bars saved under this name?); name "
        "the file after the pair it holds, or without a pair (prices_1h.csv)",
        str(frame[spec.symbol_col].iat[i]),
    )  # fmt: skip


def _name_agrees(name_pair: str, symbols: Sequence[str], renames: Mapping[str, PairRename]) -> bool:
    """Whether one of a file's ``symbols`` is its name's pair (see `_check_name_pair`)."""
    said = _same_pair(name_pair, renames)
    return any(_same_pair(s, renames).startswith(said) for s in symbols)


def _same_pair(pair: str, renames: Mapping[str, PairRename]) -> str:
    """``pair`` spelt as the file name's pair is compared with: aliases and renames applied."""
    for alias, base in _BASE_ALIASES.items():
        if pair.startswith(alias):
            pair = base + pair[len(alias) :]
    return renames[pair].to if pair in renames else pair


def _check_hourly(
    name: str,
    time_col: str,
    times_ns: npt.NDArray[np.int64],
    pair: npt.NDArray[np.object_],
    rows: npt.NDArray[np.int64],
) -> None:
    """Refuse a candle file whose bars are mostly not one hour apart (4h, daily files...), or
    that switches to coarser bars (a 4h export joined to a 1h one, `_coarse_run`), which the gap
    repair would otherwise fill with made-up hourly bars."""
    for p in np.unique(pair):
        of_pair = np.flatnonzero(pair == p)
        t, first = np.unique(times_ns[of_pair], return_index=True)
        if len(t) < 3:
            continue
        gaps = np.diff(t)
        steps, counts = np.unique(gaps, return_counts=True)
        modal = int(steps[np.argmax(counts)])
        if modal != HOUR_NS:
            raise DataError(
                name, None, time_col,
                f"candles are not hourly: most {p} bars are {pd.Timedelta(modal)} apart",
            )  # fmt: skip
        if (run := _coarse_run(t)) is not None:
            start, n_steps = run
            hours = int(gaps[start] // HOUR_NS)
            when = f"{_utc(t[start : start + 1])[0]:%Y-%m-%d %H:%M}"
            raise DataError(
                name, int(rows[of_pair[first[start]]]), time_col,
                f"mixed_interval: {p} bars are hourly, then {hours} hours apart from this row "
                f"({when} UTC) on, {n_steps} times in a row: {hours}h bars mixed into an hourly "
                "file (two exports joined?) would be filled as gaps with made-up hourly bars; "
                "split the file or download those hours again at 1h",
                when,
            )  # fmt: skip


#: Steps in a row of one same whole number (> 1) of hours, every bar on a multiple of it, that
#: make an hourly file "mixed" where they run to the pair's first or last bar (two exports
#: joined). A pair trading about half its hours (Coinbase and ccxt omit no-trade hours) makes
#: one by chance about once in 65,000 pairs: a step is 2h with a chance of at most 1/4, so
#: 2 ends x (1/4)^8 x 1/2 (on even hours); the audit's 6 steps anywhere came within weeks.
MIXED_INTERVAL_STEPS = 8
#: The same, anywhere in the file (three exports joined): a run no thin pair makes by chance.
MIXED_INTERVAL_STEPS_INSIDE = 48


def _coarse_run(t: npt.NDArray[np.int64]) -> tuple[int, int] | None:
    """The first run of equal steps of 2 or more whole hours, with every bar on a multiple of the
    step (UTC), that is `MIXED_INTERVAL_STEPS` long and reaches the first or last of the times
    ``t`` (sorted, unique), or is `MIXED_INTERVAL_STEPS_INSIDE` long: (index of its first step,
    its length), or None. Gaps of a thin pair, even of one size many times in a row, are none.

    Examples
    --------
    >>> h = HOUR_NS
    >>> hourly_then_4h = np.r_[np.arange(24), np.arange(24, 60, 4)] * h  # 8 steps of 4h
    >>> _coarse_run(hourly_then_4h)
    (24, 8)
    >>> _coarse_run(np.r_[np.arange(24), np.arange(24, 60, 4), np.arange(61, 70)] * h) is None
    True
    >>> _coarse_run(np.r_[np.arange(24), np.arange(25, 61, 4)] * h) is None  # 1, 5, 9 UTC: gaps
    True
    """
    gaps = np.diff(t)
    coarse = (gaps >= 2 * HOUR_NS) & (gaps % HOUR_NS == 0)
    if coarse.sum() < MIXED_INTERVAL_STEPS:
        return None
    starts = np.flatnonzero(np.r_[True, gaps[1:] != gaps[:-1]])
    lengths = np.diff(np.r_[starts, len(gaps)])
    at_end = (starts == 0) | (starts + lengths == len(gaps))
    long = coarse[starts] & (
        (lengths >= MIXED_INTERVAL_STEPS_INSIDE) | (at_end & (lengths >= MIXED_INTERVAL_STEPS))
    )
    aligned = t[starts[long]] % gaps[starts[long]] == 0  # the run's bars: 00, 04, 08 UTC ...
    if not aligned.any():
        return None
    i = int(np.flatnonzero(long)[np.argmax(aligned)])
    return int(starts[i]), int(lengths[i])


def _reject_short_rows(
    name: str,
    rows: npt.NDArray[np.int64],
    short_lines: Mapping[int, tuple[int, str]],
    header: Sequence[str],
    report: CandleReport,
    on_error: OnError,
) -> npt.NDArray[np.bool_]:
    """Drop the rows with fewer fields than the header (`_row_widths`) as ``short_row``.

    A cut line's last value may itself be cut (``2339.2904`` for ``2339.29041500``), so none of
    it is read. Each issue names the file, the row, the first missing column and the line.

    Returns
    -------
    numpy.ndarray
        bool, shape ``(len(rows),)``: the short rows.

    Raises
    ------
    DataError
        With ``on_error="raise"``, for the first short row.
    """
    short = np.zeros(len(rows), dtype=bool)
    if not short_lines:
        return short
    short = np.isin(rows, np.fromiter(short_lines, dtype=np.int64))
    positions = np.flatnonzero(short)
    if not len(positions):
        return short
    if on_error == "raise":
        row = int(rows[positions[0]])
        n_fields, line = short_lines[row]
        raise DataError(name, row, header[n_fields], f"short_row: {n_fields} fields, the header "
                        f"has {len(header)} (a line cut short?)", line)  # fmt: skip
    report.drop("short_row", len(positions))
    for i in positions[: issue_room(report, "short_row")]:
        row = int(rows[i])
        n_fields, line = short_lines[row]
        report.add_issue(Issue(name, row, header[n_fields], "short_row", line))
    return short


def _reject(
    name: str,
    rows: npt.NDArray[np.int64],
    mask: npt.NDArray[np.bool_],
    field_name: str,
    raw: pd.Series,
    reason: str,
    report: CandleReport,
    on_error: OnError,
) -> None:
    """Raise for the first masked row, or count the masked rows as dropped with issues."""
    if not mask.any():
        return
    positions = np.flatnonzero(mask)
    if on_error == "raise":
        i = int(positions[0])
        raise DataError(name, int(rows[i]), field_name, reason, str(raw.iat[i]))
    report.drop(reason, len(positions))
    for i in positions[: issue_room(report, reason)]:
        report.add_issue(Issue(name, int(rows[i]), field_name, reason, str(raw.iat[i])))


def _utc(ns: npt.NDArray[np.int64]) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(ns, dtype=np.int64).view("datetime64[ns]")).tz_localize(
        "UTC"
    )
