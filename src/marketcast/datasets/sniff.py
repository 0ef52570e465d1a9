"""What a file is, from its first bytes: ``data check`` names a file neither reader can read
(a zip archive, a workbook, UTF-16 text, JSON, another delimiter, no header row) instead of
passing it to the football reader, which would only say a ``Date`` column is missing, and gives
a tar archive to the checker of its members."""

from __future__ import annotations

import csv
import gzip
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from marketcast.data.files import GZIP_MAGIC
from marketcast.data.validation import DataError, Issue
from marketcast.datasets.bundle import read_archive_csvs
from marketcast.datasets.crypto import (
    BINANCE_VISION_KLINE_COLUMNS,
    detect_format,
    detect_source,
    is_number,
    pair_from_name,
)
from marketcast.datasets.football_data import (
    HEADER_ALIASES,
    REQUIRED_COLUMNS,
    folder_files,
    is_csv_name,
)

__all__ = [
    "FolderFiles",
    "archive_vertical",
    "is_candle_name",
    "read_head",
    "refusal",
    "scan_folder",
    "zips_instead_of_csvs",
]

#: Bytes of a file read to tell its kind: the crypto detector's first lines (its own limit), and
#: all `refusal` looks at. The checker then reads the file once, whole.
_HEAD_BYTES = 65_536
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member, or an empty zip
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: an Excel 97-2003 workbook
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32"),
    (b"\xff\xfe", "utf-16-le", "UTF-16"),
    (b"\xfe\xff", "utf-16-be", "UTF-16"),
)
_DELIMITERS = ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"))
#: A candle interval as exchanges write it in file names: 1h, 4h, 1d, 15m, 1w, 1mo
_INTERVAL_TOKEN = re.compile(r"\d+(?:mo|[smhdwM])")
_NAME_TOKENS = re.compile(r"[^A-Za-z0-9]+")
_LEADING_TIME = re.compile(r"\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?")
_UNZIP = "unzip it and check the CSV inside (data.binance.vision ships its candles zipped)"


def read_head(path: Path) -> bytes | None:
    """A file's first `_HEAD_BYTES` bytes, gunzipped when they start with the gzip magic (as
    the loaders read it, whatever its name); None when it cannot be read."""
    try:
        with path.open("rb") as raw:
            head = raw.read(_HEAD_BYTES)
            if head[:2] == GZIP_MAGIC:
                raw.seek(0)
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    head = unzipped.read(_HEAD_BYTES)
    except (OSError, EOFError, zlib.error):
        return None
    return head


def archive_vertical(path: Path) -> str:
    """Which checker reads a tar archive (``.tar``, ``.tar.gz``, ``.tar.xz``).

    ``"crypto"`` when a member is a file the candle loader reads (`detect_source`), or one whose
    first line shows it for a candle file neither reader can read (`refusal`): the candle
    checker then reads the whole archive, as a crypto run given it reads it, so a member that is
    not candles is an error there naming it. Else ``"football"``: the football reader reads the
    archive, as before. An archive that cannot be read goes by its own name (`is_candle_name`),
    with no member; that checker names what is wrong (``cannot read archive: ...``).

    Examples
    --------
    >>> import io, tarfile, tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> with tarfile.open(folder / "candles.tar", "w") as tar:
    ...     text = b"date,open,high,low,close,volume,ticker\\n"
    ...     info = tarfile.TarInfo("crypto/BTCUSDT_1h.csv")
    ...     info.size = len(text)
    ...     tar.addfile(info, io.BytesIO(text))
    >>> archive_vertical(folder / "candles.tar")
    'crypto'
    """
    errors: list[DataError] = []  # members that cannot be read: their checker names them
    try:
        members = read_archive_csvs(path, errors=errors)
    except DataError:
        return "crypto" if is_candle_name(path.name) else "football"
    for name, data in members:
        head = data[:_HEAD_BYTES]
        if detect_source(name, head) is not None:
            return "crypto"
        why = refusal(Path(name), head)
        if why is not None and why[0] == "crypto":
            return "crypto"
    return "football"


def refusal(path: Path, head: bytes) -> tuple[str, int | None, str, str | None] | None:
    """Why neither checker can read a file its first bytes show to be something else.

    Returns ``(vertical, row, reason, value)``: the section the error goes into (``"crypto"``
    for a file named like a candle file, ``<PAIR>_1h.csv`` or ``<PAIR>-1h-2025-01.csv``, or
    whose columns are a candle layout; else ``"football"``), the line concerned (None for the
    whole file), what the file is and what to do, and the start of its first line where that
    shows it. None when the football reader should read the file: it reads it, or names what
    is wrong itself (a comma-separated header missing a required column, a truncated gzip).

    Examples
    --------
    >>> vertical, row, reason, value = refusal(Path("E0.csv"), b"Div;Date;HomeTeam\\nE0;1/8/21;A")
    >>> vertical, row, reason
    ('football', 1, 'semicolon-delimited: football-data files are comma-separated')
    >>> refusal(Path("E0.csv"), b"Div,Date,HomeTeam\\nE0,13/08/2021,Brentford\\n") is None
    True
    """
    candle_name = is_candle_name(path.name)
    named = "crypto" if candle_name else "football"
    if head.startswith(_ZIP_MAGIC):
        member = _first_zip_member(head)
        if path.name.lower().endswith((".xlsx", ".xlsm")) or (
            member is not None and (member == "[Content_Types].xml" or member.startswith("xl/"))
        ):
            return "football", None, "an Excel workbook, not CSV: save it as CSV (UTF-8)", None
        if member is not None and is_candle_name(member):
            named = "crypto"
        holding = f" holding {member}" if member else ""
        return named, None, f"a zip archive{holding}: {_UNZIP}", None
    if head.startswith(_XLS_MAGIC):
        return "football", None, "an Excel 97-2003 workbook, not CSV: save it as CSV (UTF-8)", None
    for bom, codec, encoding in _BOMS:
        if head.startswith(bom):
            fields = _header_fields(head[len(bom) :].decode(codec, errors="replace"), ",")
            vertical = "crypto" if detect_format(fields) is not None else named
            return vertical, None, f"{encoding} text: save it as UTF-8", None
    if (utf16 := _utf16_without_bom(head)) is not None:
        fields = _header_fields(head.decode(utf16, errors="replace"), ",")
        vertical = "crypto" if detect_format(fields) is not None else named
        return vertical, None, "UTF-16 text (no byte-order mark): save it as UTF-8", None

    text = head.decode("utf-8-sig", errors="replace")
    first_line = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    shown = first_line if len(first_line) <= 120 else first_line[:117] + "..."
    fields = _header_fields(first_line, ",")
    football_names = {*REQUIRED_COLUMNS, *HEADER_ALIASES}
    if not first_line.strip() or football_names & set(fields):
        return None  # empty, or a football header: the football reader says what is missing
    if "\x00" in first_line:
        return named, None, "binary data (NUL bytes), not CSV text", None
    start = text.lstrip()[:20].lower()
    if start[:1] in ("{", "["):
        return (
            named,
            None,
            "JSON, not CSV: data check reads football-data and candle CSV files",
            None,
        )
    if start.startswith(("<!doctype html", "<html")):
        reason = "HTML, not CSV: a web page saved in place of the file? (download the file itself)"
        return named, None, reason, None
    if "," not in first_line:
        for delimiter, word in _DELIMITERS:
            split = _header_fields(first_line, delimiter)
            if len(split) < 2:
                continue
            if detect_format(split) is not None:
                return "crypto", 1, f"{word}-delimited: candle files are comma-separated", shown
            if football_names & set(split):
                kind = "football-data files are"
                return "football", 1, f"{word}-delimited: {kind} comma-separated", shown
            return named, 1, f"{word}-delimited: data check reads comma-separated files", shown
    if len(fields) >= 2 and _is_data_row(fields):
        if _is_vision_name(path.name):
            n_columns = len(BINANCE_VISION_KLINE_COLUMNS)
            reason = (
                f"no header row, and {len(fields)} columns: a data.binance.vision kline file "
                f"without a header has {n_columns} (docs/crypto-data.md)"
            )
            return "crypto", 1, reason, shown
        if candle_name:
            reason = (
                "no header row: a candle file is told by its column names (Binance spot: "
                "date,open,high,low,close,volume,ticker); only data.binance.vision klines "
                "named <PAIR>-<interval>-YYYY-MM.csv are read without one"
            )
            return "crypto", 1, reason, shown
        return named, 1, "no header row: data check tells a file by its column names", shown
    if candle_name:
        reason = "unrecognised candle header: not a layout in docs/crypto-data.md"
        return "crypto", 1, reason, shown
    return None


def _header_fields(line: str, delimiter: str) -> list[str]:
    """The first line of ``line`` split as CSV on ``delimiter`` (quotes removed, stripped)."""
    first = re.split(r"\r\n|\r|\n", line, maxsplit=1)[0]
    try:
        return [f.strip() for f in next(csv.reader([first], delimiter=delimiter), [])]
    except csv.Error:
        return []


def _is_data_row(fields: list[str]) -> bool:
    """A first line that is data, not column names: it starts with a number or a date, and at
    least half its cells are numbers."""
    numbers = sum(is_number(f) for f in fields)
    leading = is_number(fields[0]) or _LEADING_TIME.fullmatch(fields[0]) is not None
    return leading and 2 * numbers >= len(fields)


def is_candle_name(name: str) -> bool:
    """A file name with a pair and an interval in it: ``BTCUSDT_1h.csv``,
    ``BTCUSDT-1h-2025-01.zip``, ``Binance_ETHUSDT_1h.csv``.

    Examples
    --------
    >>> is_candle_name("BTCUSDT_1h.csv"), is_candle_name("2021-2022.csv")
    (True, False)
    """
    stem = Path(name.replace("\\", "/")).name.split(".", 1)[0]
    tokens = _NAME_TOKENS.split(stem)
    return pair_from_name(name) is not None and any(_INTERVAL_TOKEN.fullmatch(t) for t in tokens)


def _is_vision_name(name: str) -> bool:
    """``<PAIR>-<interval>-...``, as data.binance.vision names its kline files."""
    base = Path(name.replace("\\", "/")).name
    return re.match(r"[A-Za-z0-9]+-\d+(?:mo|[smhdwM])-", base) is not None


def _utf16_without_bom(head: bytes) -> str | None:
    """``"utf-16-le"`` or ``"utf-16-be"`` for ASCII text written as UTF-16 without a byte-order
    mark (every other byte of the first line is NUL), else None."""
    sample = head[:512]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    sample = sample[: len(sample) // 2 * 2]
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) == len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) == len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _first_zip_member(head: bytes) -> str | None:
    """The name of a zip's first member, from its local file header (the name's length is at
    offset 26, the name at 30: PKWARE APPNOTE 4.3.7); None when the head does not hold it."""
    if not head.startswith(b"PK\x03\x04") or len(head) < 30:
        return None
    length = int.from_bytes(head[26:28], "little")
    name = head[30 : 30 + length].decode("utf-8", errors="replace")
    return name or None


@dataclass(frozen=True)
class FolderFiles:
    """A folder's files in one walk (`scan_folder`): ``csv_files`` those a run reads, as
    `iter_csv_files` yields them, and ``not_read`` every other file (a workbook, a zip or tar
    archive, notes), both sorted."""

    csv_files: list[Path]
    not_read: list[Path]

    def zips(self) -> list[Path]:
        """The ``*.zip`` files (any case) among ``not_read``."""
        return [p for p in self.not_read if p.name.lower().endswith(".zip")]


def scan_folder(folder: Path) -> FolderFiles:
    """Walk ``folder`` once for the CSV files a run reads and the files no loader reads.

    The CSV files are chosen as `iter_csv_files` chooses a folder's: ``*.csv`` and
    ``*.csv.gz`` (any case), each file once (a symlink to a file already chosen is passed
    over). Hidden files and folders, and ``MANIFEST.csv``, are in neither list, as the loaders
    skip them on purpose; so is a file that resolves to a CSV file chosen (a link to it).

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> for name in ("E0/2021-2022.csv", "E0/notes.txt", "MANIFEST.csv", ".DS_Store"):
    ...     (folder / name).parent.mkdir(exist_ok=True)
    ...     _ = (folder / name).write_text("")
    >>> found = scan_folder(folder)
    >>> [p.relative_to(folder).as_posix() for p in found.csv_files + found.not_read]
    ['E0/2021-2022.csv', 'E0/notes.txt']
    """
    files = folder_files(folder)
    csv_files: list[Path] = []
    chosen: set[Path] = set()
    for p in files:
        if is_csv_name(p.name) and (key := p.resolve()) not in chosen:
            chosen.add(key)
            csv_files.append(p)
    # every CSV file first: a link sorted before the file it points to is still passed over;
    # a file reached twice (through a linked folder) is named once
    not_read: list[Path] = []
    for p in files:
        if (key := p.resolve()) not in chosen:
            chosen.add(key)
            not_read.append(p)
    return FolderFiles(csv_files, not_read)


def zips_instead_of_csvs(given: str, zips: list[Path]) -> Issue:
    """The error for a folder holding zip archives and no CSV file."""
    names = ", ".join(z.name for z in zips[:3]) + (", ..." if len(zips) > 3 else "")
    what, them = ("zip archives", "them") if len(zips) > 1 else ("zip archive", "it")
    reason = (
        f"no CSV files found, only {len(zips):,} {what} ({names}): unzip {them} and check the "
        "CSVs inside (data.binance.vision ships its candles zipped)"
    )
    return Issue(given, None, None, reason)
