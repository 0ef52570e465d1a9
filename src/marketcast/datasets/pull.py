"""Download newer football-data.co.uk season files (urllib, retries, atomic writes, validated)."""

from __future__ import annotations

import csv
import email.utils
import http.client
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

from marketcast.data.files import gunzipped, write_atomic
from marketcast.data.validation import DataError, IntegrityReport
from marketcast.datasets.football_data import (
    FootballData,
    is_header,
    load_football_sources,
    split_lines,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.football-data.co.uk/mmz4281"
#: The league files football-data.co.uk publishes under ``mmz4281/<season>/``: an unknown code
#: (``XX``, ``e0``) was asked for four times, each a 404, before the pull said why.
SITE_LEAGUES = (
    "E0", "E1", "E2", "E3", "EC", "SC0", "SC1", "SC2", "SC3", "D1", "D2", "I1", "I2",
    "SP1", "SP2", "F1", "F2", "N1", "B1", "P1", "T1", "G1",
)  # fmt: skip
#: used with fullmatch ("$" accepts a trailing newline); ASCII digits: "２０２４" passed ``\d`` and
#: ``int()``, then failed in the URL as a bug naming neither season nor URL
_SEASON = re.compile(r"([0-9]{4})-([0-9]{4})")
_LEAGUE = re.compile(r"[A-Za-z0-9]{1,8}")
_USER_AGENT = "marketcast-pull/0.1 (+https://www.football-data.co.uk)"
_READ_TIMEOUT_S = 30.0  # longest single wait on the network (connect, or one read)
_CHUNK_BYTES = 64 * 1024
_MIN_WAIT_S = 0.01  # shortest socket timeout, in seconds
#: Largest download, and largest gunzipped size, `pull_football` accepts by default, in bytes
#: (a season file is about 180 KB).
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_BLANK_ROW_CHARS = " \t,"  # a row of only these is blank to the loader


class PullError(RuntimeError):
    """A download failed for good (after retries, or on an HTTP error that retrying cannot fix)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


class PullFailures(PullError):
    """Several files could not be pulled; every other file asked for was tried and written.

    ``failures`` holds ``(url, error)`` for each failed file in the order tried (the error a
    `PullError`, `DataError` or `OSError`), ``written`` the files written, and ``url`` the first
    URL that failed. The message names every failure, one a line.
    """

    def __init__(
        self, failures: Sequence[tuple[str, Exception]], written: Sequence[Path], n_files: int
    ) -> None:
        self.failures = list(failures)
        self.written = list(written)
        self.url = self.failures[0][0]
        lines = [f"{len(self.failures)} of {n_files} files not pulled:"]
        lines += [f"  {_naming(url, exc)}" for url, exc in self.failures]
        self.reason = "\n".join(lines)
        RuntimeError.__init__(self, self.reason)  # not "{url}: ...": it names several


def _naming(url: str, exc: Exception) -> str:
    """The error's message, led by ``url`` when it does not already name it (an `OSError`)."""
    text = str(exc)
    return text if text.startswith(url) else f"{url}: {text}"


class _CutShort(Exception):
    """A body that ends inside a line: a transfer cut short that HTTP did not notice."""


#: The first season football-data.co.uk publishes (folder ``9394``).
FIRST_SEASON_START = 1993


def season_code(season: str) -> str:
    """Return football-data.co.uk's folder code for a season.

    Examples
    --------
    >>> season_code("2024-2025")
    '2425'
    >>> season_code("1999-2000")
    '9900'
    """
    match = _SEASON.fullmatch(season)
    if not match or int(match[2]) != int(match[1]) + 1:
        raise ValueError(f"season must look like '2024-2025', got {season!r}")
    if not FIRST_SEASON_START <= int(match[1]) < FIRST_SEASON_START + 100:
        # two digits a year: 1850-1851 and 2121-2122 asked for 5051 and 2122, other seasons
        raise ValueError(
            f"season {season!r}: the site's folder codes (two digits a year) name the seasons "
            f"from {FIRST_SEASON_START}-{FIRST_SEASON_START + 1} to "
            f"{FIRST_SEASON_START + 99}-{FIRST_SEASON_START + 100}"
        )
    return match[1][2:] + match[2][2:]


def season_url(league: str, season: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """Return the URL of one league-season file, e.g. ``.../mmz4281/2425/E0.csv``.

    Examples
    --------
    >>> season_url("E0", "2024-2025", "http://127.0.0.1:8000/mmz4281")
    'http://127.0.0.1:8000/mmz4281/2425/E0.csv'
    """
    if not _LEAGUE.fullmatch(league):
        raise ValueError(f"league code must be letters and digits, got {league!r}")
    return f"{base_url.rstrip('/')}/{season_code(season)}/{league}.csv"


def redirect_allowed(from_url: str, to_url: str) -> bool:
    """True when a redirect stays on the same host: same scheme and port, or http to https.

    Examples
    --------
    >>> redirect_allowed("http://h/a.csv", "https://h/a.csv")
    True
    >>> redirect_allowed("https://h/a.csv", "http://h/a.csv")
    False
    >>> redirect_allowed("https://h/a.csv", "https://mirror.example/a.csv")
    False
    """
    old, new = urllib.parse.urlsplit(from_url), urllib.parse.urlsplit(to_url)
    if old.hostname is None or old.hostname != new.hostname:
        return False
    if old.scheme == "http" and new.scheme == "https":
        return True
    try:
        old_port = old.port or _DEFAULT_PORTS.get(old.scheme)
        new_port = new.port or _DEFAULT_PORTS.get(new.scheme)
    except ValueError:  # a port that is not a number
        return False
    return old.scheme == new.scheme and old_port == new_port


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects only where `redirect_allowed`; else a `PullError` naming both URLs.

    Another host could serve anything under the mirror's name, and a move from https to http
    would let anyone on the path rewrite the file.
    """

    def __init__(self, url: str) -> None:
        self.url = url

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not redirect_allowed(req.full_url, newurl):
            fp.close()
            raise PullError(
                self.url,
                f"refusing HTTP {code} redirect from {req.full_url} to {newurl}: only "
                "redirects to the same host (and from http to https) are followed",
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _read_body(
    request: urllib.request.Request, url: str, deadline: float, limit_s: float, max_bytes: int
) -> bytes:
    """GET ``request`` in chunks; a `PullError` once ``time.monotonic()`` passes ``deadline``
    or the answer passes ``max_bytes`` (announced by Content-Length, or counted while reading).

    No single wait on the network (connecting, or one read) is longer than `_READ_TIMEOUT_S` or
    the time left when the attempt starts, whichever is shorter.
    """
    # a socket timeout must be positive (0 makes the socket non-blocking, less is a ValueError):
    # a backoff wait may oversleep the deadline; the deadline check after a read then fails it
    wait_s = max(min(_READ_TIMEOUT_S, deadline - time.monotonic()), _MIN_WAIT_S)
    chunks: list[bytes] = []
    n_bytes = 0
    too_large = f"over the {max_bytes:,}-byte size limit (a season file is about 180 KB)"
    opener = urllib.request.build_opener(_SameHostRedirects(url))
    with opener.open(request, timeout=wait_s) as response:
        expected = _content_length(response.headers)
        if expected is not None and expected > max_bytes:
            raise PullError(url, f"the answer's Content-Length {expected:,} is {too_large}")
        # read1 returns after one system call, so a server trickling bytes cannot hold it open;
        # never more than one byte past the limit is read
        while chunk := response.read1(min(_CHUNK_BYTES, max_bytes + 1 - n_bytes)):
            chunks.append(chunk)
            n_bytes += len(chunk)
            if n_bytes > max_bytes:
                raise PullError(url, f"the answer is {too_large}: download stopped")
            if time.monotonic() > deadline:
                raise PullError(
                    url,
                    f"not complete within the {limit_s:g} s limit ({n_bytes:,} bytes received)",
                )
    if expected is not None and n_bytes < expected:
        # read1 (unlike read) does not raise on a connection cut short of Content-Length
        raise http.client.IncompleteRead(b"".join(chunks), expected - n_bytes)
    return b"".join(chunks)


def _content_length(headers: http.client.HTTPMessage) -> int | None:
    """The Content-Length header as a number; None when it is missing or not ASCII digits.

    Headers are read as Latin-1, in which ``"\u00b2"`` (superscript two) passes
    `str.isdigit` but not `int`; http.client ignores such a value and reads to the end of the
    connection, and so does `_read_body`.
    """
    value = headers.get("Content-Length")
    if value is None or not (value.isascii() and value.isdigit()):
        return None
    return int(value)


def _check_whole(url: str, data: bytes, n_received: int) -> None:
    """Raise `_CutShort` when ``data`` (a CSV body) ends inside a line, naming the line.

    A server that sends no Content-Length and closes the connection mid-body, or that serves a
    file cut mid-line, gives a body HTTP calls complete. All 102 football-data.co.uk files in
    the project's shared data (E0, E1, D1, SP1, I1, F1, 2005-06 to 2022-23, copied byte for
    byte from three mirrors) end with a line break (84 LF, 18 CRLF), so a body without one was
    cut, or edited. It is refused as cut when its last line is not a whole row: the header
    alone, a row with fewer fields than the header names (which the loader would drop as
    ``malformed_row``), or a row whose quoted field is not closed. A blank all-comma last line
    is kept (nothing is lost). A last row with every named field but no line break is kept too,
    since a file saved without a final line break is whole; but a cut inside a row's last field
    looks the same (about 1.6% of cuts at random places in those 102 files, e.g. ``1.93`` read
    as ``1.``), so it is logged as a warning naming the URL, the line, the field and its value.
    A cut right at a line break loses whole matches: the check against the file already saved
    catches it when there is one.
    """
    if not data or data.endswith((b"\n", b"\r")):
        return
    # commas and quotes are ASCII in UTF-8 and Windows-1252 alike; lines as the loader splits
    # them (a CR alone inside a cell of an LF file is no line end)
    lines = split_lines(data.removeprefix(b"\xef\xbb\xbf").decode("latin-1"))
    if not lines:
        return  # a byte-order mark alone: the loader names the empty file
    try:
        header = _csv_fields(lines[0])
    except csv.Error:
        return  # the loader refuses the file, naming the header
    line_no = len(lines)
    received = f"{n_received:,} bytes received"
    if line_no == 1 and _opens_a_header(header):
        raise _CutShort(
            f"the body ends inside line 1, the header (no line break after it; {received})"
        )
    if line_no == 1 or not is_header(header):
        return  # not a football-data file at all (an HTML page): the loader names what it is
    last = lines[-1]
    if not last.strip(_BLANK_ROW_CHARS):
        return
    try:
        fields = _csv_fields(last)
    except csv.Error:
        raise _CutShort(
            f"the body ends inside line {line_no} (no line break after it, and a quoted field "
            f"not closed; {received})"
        ) from None
    named = max((i + 1 for i, name in enumerate(header) if name.strip()), default=len(header))
    if len(fields) < named:
        raise _CutShort(
            f"the body ends inside line {line_no} (no line break after it, and {len(fields)} "
            f"fields where the header names {named}; {received})"
        )
    logger.warning(
        "%s: no line break after the last line (%d), as every football-data file has; its row "
        "has every field, so the file is kept, but if the transfer was cut inside field %r "
        "(%r) that value is short",
        url,
        line_no,
        header[named - 1].strip(),
        fields[named - 1],
    )


def _opens_a_header(fields: list[str]) -> bool:
    """Whether a line begins as a football-data header does (``Div,Date,...``, or ``Date``
    first in older and extra-league files): a header cut short names only its first columns."""
    names = [f.strip().removeprefix("\ufeff").strip() for f in fields[:3]]
    return "Div" in names or "Date" in names or "Country" in names


def _csv_fields(line: str) -> list[str]:
    """One physical line's fields, as the loader splits it; `csv.Error` on an unclosed quote."""
    if '"' not in line:
        return line.split(",")
    return next(csv.reader([line], strict=True))


def _fetch(url: str, *, timeout_s: float, retries: int, backoff_s: float, max_bytes: int) -> bytes:
    """GET ``url`` within ``timeout_s`` seconds in all, attempts and backoff waits included;
    return the body, gunzipped when the server sent it gzip-encoded.

    Network errors, HTTP 5xx/429 and a body that ends inside a line (`_check_whole`) are
    retried with exponential backoff while the time limit leaves room for the wait; other HTTP
    errors, a refused redirect and an answer over ``max_bytes`` fail at once, and so does gzip
    data that cannot be decompressed (a `DataError`). A network error is any `OSError` (no
    file is opened here: `urllib.error.URLError`, timeouts, connections reset, and
    `ssl.SSLError`, e.g. an ``SSLEOFError`` when a TLS connection is cut) or
    `http.client.HTTPException` (``IncompleteRead``, ``RemoteDisconnected``, ``BadStatusLine``).
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    deadline = time.monotonic() + timeout_s
    last = "no attempt made"

    def attempts(n: int) -> str:
        return f"{n} attempt" if n == 1 else f"{n} attempts"

    for attempt in range(1, retries + 2):
        asked_s: float | None = None  # the wait a 429 or 503 asked for (Retry-After)
        try:
            body = _read_body(request, url, deadline, timeout_s, max_bytes)
            # a server may answer with Content-Encoding: gzip, which urllib leaves compressed
            data = gunzipped(url, body, max_bytes=max_bytes)
            _check_whole(url, data, len(body))
            return data
        except _CutShort as exc:
            last = f"truncated transfer: {exc}"
        except urllib.error.HTTPError as exc:
            # one line: urllib's redirect-loop reason runs over three
            last = f"HTTP {exc.code} {' '.join(str(exc.reason).split())}"
            if exc.code < 500 and exc.code != 429:
                raise PullError(url, last) from exc
            asked_s = retry_after_s(exc.headers.get("Retry-After") if exc.headers else None)
        except (OSError, http.client.HTTPException) as exc:
            # any OSError here is the network's (no file is opened): an SSLError from a cut TLS
            # connection is no ConnectionError, and was not retried
            detail = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            last = f"{type(exc).__name__}: {detail}"
        logger.warning("pull %s failed (attempt %d of %d): %s", url, attempt, retries + 1, last)
        if attempt > retries:
            break
        # at least what the server asked for: asked again after 1 s, a rate-limited server
        # was sent four requests in 7 s per file
        wait_s = max(backoff_s * 2 ** (attempt - 1), asked_s or 0.0)
        if time.monotonic() + wait_s >= deadline:
            asked = "" if asked_s is None else f"the server asked to retry after {asked_s:g} s; "
            raise PullError(
                url,
                f"{last} (gave up after {attempts(attempt)}: "
                f"{asked}no time left for another within the {timeout_s:g} s limit)",
            )
        time.sleep(wait_s)
        if time.monotonic() >= deadline:  # the wait overslept the limit: no time to try again
            break
    if time.monotonic() >= deadline:
        last += f" (the {timeout_s:g} s limit is up)"
    raise PullError(url, f"{last} (gave up after {attempts(attempt)})")


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait (a number of seconds or an HTTP date);
    None when missing or unreadable.

    Examples
    --------
    >>> retry_after_s("30")
    30.0
    >>> retry_after_s("Wed, 25 Nov 2026 12:00:30 GMT", now=1795608000.0)
    30.0
    >>> retry_after_s("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _check_download(url: str, target: Path, data: bytes) -> FootballData:
    """Load the download under the name it will be saved as, so the loader applies the rules
    it will apply to the saved file (the season window the name ``2022-2023.csv`` sets: a URL
    carries no season, and a server answering with another season's file was accepted, then
    had every row dropped once saved). Errors name the URL."""
    try:
        return load_football_sources([(str(target), data)])
    except DataError as err:
        raise DataError(url, err.row, err.field, err.reason, err.value) from err


def _other_leagues(loaded: FootballData, league: str) -> str | None:
    """The leagues of the kept matches with their counts, other leagues first, when any is not
    ``league``, e.g. ``"E1 (2 of 12 matches), E0 (10 of 12 matches)"``; else None. A row with
    an empty ``Div`` has the league of the folder it is saved in. Letter case counts: ``e0``
    from a mirror serving E0's file was saved to a folder ``e0`` beside ``E0``, and loading the
    folder read every match twice."""
    counts = Counter(str(div) for div in loaded.matches["league"])
    if all(div == league for div in counts):
        return None
    n_matches = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda kv: (kv[0].casefold() == league.casefold(), -kv[1]))
    return ", ".join(f"{div} ({n} of {n_matches} matches)" for div, n in ordered)


def _pull_one(
    url: str,
    league: str,
    target: Path,
    *,
    timeout_s: float,
    retries: int,
    backoff_s: float,
    replace_smaller: bool,
    max_bytes: int,
) -> IntegrityReport:
    """Download, check and write one file (see `pull_football`); return the loader's report."""
    data = _fetch(
        url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, max_bytes=max_bytes
    )
    loaded = _check_download(url, target, data)
    report = loaded.report
    if report.rows_kept == 0:
        raise PullError(url, f"no matches in the download ({report.summary('matches')})")
    keeping = f"keeping the existing file {target}" if target.exists() else "nothing written"
    other = _other_leagues(loaded, league)
    if other is not None:
        # a mirror serving E1.csv at E0's URL replaced a 380-match E0 season with 552 matches
        [*divs] = set(map(str, loaded.matches["league"]))
        same = len(divs) == 1 and divs[0].casefold() == league.casefold()
        hint = f" (give --leagues {divs[0]})" if same else ""
        raise PullError(
            url,
            f"asked for league {league}, but the file's Div column says {other}: {keeping}{hint}",
        )
    n_existing = _matches_in(target)
    if report.rows_kept < n_existing:
        if not replace_smaller:
            raise PullError(
                url,
                f"would replace {n_existing} matches with {report.rows_kept}: keeping the "
                f"existing file {target} (replace_smaller / --replace-smaller overrides)",
            )
        logger.warning(
            "replacing %s (%d matches) with %d matches", target, n_existing, report.rows_kept
        )
    elif n_existing and target.read_bytes() != data:
        # said, not done silently: the file may hold a user's own corrections
        logger.warning(
            "replacing %s (%d matches): its content differs from the download (%d matches)",
            target,
            n_existing,
            report.rows_kept,
        )
    write_atomic(target, data)
    logger.info("pulled %s: %d matches -> %s", url, report.rows_kept, target)
    return report


def _matches_in(path: Path) -> int:
    """Matches the loader keeps from the file at ``path``; 0 when it is missing or unreadable."""
    if not path.is_file():
        return 0
    try:
        loaded = load_football_sources([(str(path), path.read_bytes())], on_error="collect")
    except DataError:
        return 0
    return int(loaded.report.rows_kept)


def _note_stop(
    exc: Exception,
    url: str,
    n_done: int,
    n_files: int,
    failures: Sequence[tuple[str, Exception]],
    written: Sequence[Path],
) -> None:
    """Add a note to ``exc``, an error that stops `pull_football` at file ``n_done`` (``url``),
    saying what the pull did before it: each file written, each failure collected, how many
    files were not tried. The note is logged too, for a caller that shows only the message."""
    lines = [f"pull_football stopped at file {n_done} of {n_files} ({url}) by this error:"]
    lines += [f"  written: {path}" for path in written]
    lines += [f"  not pulled: {_naming(failed_url, err)}" for failed_url, err in failures]
    if n_done < n_files:
        lines.append(f"  not tried: {n_files - n_done} more")
    note = "\n".join(lines)
    exc.add_note(note)
    logger.error("%s: %s\n%s", type(exc).__name__, exc, note)


def _check_base_url(base_url: str) -> None:
    """A `ValueError` unless ``base_url`` is an http or https URL with a host and a valid port.

    Without this check every file failed, after every retry, as a network error in urllib's
    words (``URLError: unknown url type``, ``InvalidURL: nonnumeric port``).
    """
    try:
        parts = urllib.parse.urlsplit(base_url)
        parts.port  # noqa: B018  (a port that is not a number, or out of range, raises)
    except ValueError as exc:
        raise ValueError(f"base_url {base_url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"base_url must be an http or https URL with a host, got {base_url!r}")


def pull_football(
    leagues: Sequence[str],
    seasons: Sequence[str],
    dest: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    *,
    timeout_s: float = 120.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    replace_smaller: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    on_written: Callable[[Path, IntegrityReport], None] | None = None,
) -> list[Path]:
    """Download ``{base_url}/{yyyy}/{league}.csv`` for every league and season.

    Every file asked for is tried, whatever happened to the ones before it: a failed file is
    reported at the end, with every other failure, and the files that passed are written. A
    file fails on a network or HTTP error (a `PullError` naming the URL), a download the
    loader refuses (a `DataError`) or a file that cannot be written (an `OSError`). Any other
    exception is a bug, not a failed file: it stops the pull at once and propagates as it is,
    with a note (`BaseException.add_note`, also logged as an error) naming each file written
    and each failure collected before it, and how many files were not tried. Each
    file is checked by loading it with the football-data loader before it is written, then
    written atomically to ``{dest}/{league}/{season}.csv``, so a file already there is replaced
    whole or left as it was, and no partial or temporary file is left. Refused, leaving the
    file already there as it was:

    - a body that ends inside a line (no final line break and a last row that is not whole:
      fewer fields than the header names, or a quote not closed), a transfer cut short where
      HTTP could not tell (no Content-Length, or a file cut mid-line on the server). It is
      retried like a connection cut short. Real football-data files always end with a line
      break, but a whole last row without one is kept, with a warning (a cut inside its last
      field looks the same; see `_check_whole` for the evidence);
    - a download in which the loader keeps no match;
    - a download whose ``Div`` column names another league than the one asked for, in any row
      (a mirror serving ``E1.csv`` at ``E0.csv``'s URL replaced a good E0 season);
    - a download with fewer matches than the file it would replace (a season in progress only
      grows, so that is a truncated upload) unless ``replace_smaller``.

    Parameters
    ----------
    leagues
        football-data.co.uk division codes, e.g. ``["E0", "D1"]``.
    seasons
        Seasons as ``"2024-2025"``.
    dest
        Output folder (the layout `load_football` reads).
    base_url
        Where the ``mmz4281`` season folders live.
    timeout_s
        Time limit per file, in seconds: every attempt (connecting, waiting for the answer,
        reading the body) and the backoff waits between them. Checked after every chunk read;
        a stalled read is cut after 30 s or the time left when its attempt began, if less.
    retries
        Extra attempts after a network error or an HTTP 5xx/429 answer, while ``timeout_s``
        leaves room for the backoff wait.
    backoff_s
        Wait before the first retry, in seconds; doubled after each further failure.
    replace_smaller
        Replace an existing file even when the download has fewer matches than it.
    max_bytes
        Largest answer accepted, in bytes, and largest size it may gunzip to: a larger
        Content-Length is refused before reading, and a body is cut off once it passes it.
    on_written
        Called with the path and the loader's integrity report right after each file is
        written, so a caller can show progress while later files are pulled.

    Returns
    -------
    list of Path
        The written files, in the order pulled (league-major), when every file was pulled.

    Raises
    ------
    PullFailures
        After every file was tried, when two or more failed: it lists each failure (URL and
        reason) and holds them in ``failures``, and the files written in ``written``.
    PullError
        After every file was tried, when exactly this one failed: on an HTTP error (naming the
        URL and status), when retries or the time limit run out (a body cut inside a line
        included: ``truncated transfer: the body ends inside line 191 (...)``), on a redirect to
        another host or from https to http (naming both URLs), when the answer is larger than
        ``max_bytes``, or when a download has no match, another league's ``Div`` (naming the
        league asked for and each ``Div`` found, with counts), or fewer matches than the file
        it would replace.
    DataError
        After every file was tried, when exactly this one failed because a downloaded file is
        not a valid football-data file (names the URL, row and field), or gunzips to more than
        ``max_bytes``.
    OSError
        After every file was tried, when exactly this one could not be written.
    ValueError
        Before any file is asked for, when ``leagues`` or ``seasons`` is empty or malformed,
        a league is none of `SITE_LEAGUES` while ``base_url`` is the site's, ``base_url`` is
        not an http or https URL with a host, or ``timeout_s`` or ``max_bytes`` is not positive.
    Exception
        Any other, at once: a bug, with the note described above.

    Notes
    -----
    Redirects are followed only to the same host with the same scheme and port, or from
    http to https on that host (`redirect_allowed`). A failure is logged as a warning when
    more files are left to try, so a long pull shows it before the end.
    """
    if not leagues or not seasons:
        raise ValueError(f"nothing to pull: leagues {list(leagues)}, seasons {list(seasons)}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")
    _check_base_url(base_url)
    if base_url.rstrip("/") == DEFAULT_BASE_URL:  # a mirror may hold other codes
        unknown = [league for league in leagues if league not in SITE_LEAGUES]
        if unknown:
            raise ValueError(
                f"football-data.co.uk has no league {', '.join(map(repr, unknown))}: its codes "
                f"are {', '.join(SITE_LEAGUES)} (give --base-url for a mirror with others)"
            )
    out_dir = Path(dest)
    jobs = [(league, season) for league in leagues for season in seasons]
    urls = [season_url(league, season, base_url) for league, season in jobs]  # validate first
    written: list[Path] = []
    failures: list[tuple[str, Exception]] = []
    for n_done, ((league, season), url) in enumerate(zip(jobs, urls, strict=True), start=1):
        target = out_dir / league / f"{season}.csv"
        try:
            report = _pull_one(
                url,
                league,
                target,
                timeout_s=timeout_s,
                retries=retries,
                backoff_s=backoff_s,
                replace_smaller=replace_smaller,
                max_bytes=max_bytes,
            )
        except (PullError, DataError, OSError) as exc:
            # one missing season (a 404) stopped the pull: the seasons after it were never tried
            failures.append((url, exc))
            if n_done < len(jobs):
                logger.warning("%s (%d more to try)", _naming(url, exc), len(jobs) - n_done)
            continue
        except Exception as exc:
            # a bug, not a file that failed: it stops the pull, and once lost the failures and
            # files written before it
            _note_stop(exc, url, n_done, len(jobs), failures, written)
            raise
        written.append(target)
        if on_written is not None:
            try:
                on_written(target, report)
            except Exception as exc:
                _note_stop(exc, url, n_done, len(jobs), failures, written)
                raise
    if len(failures) == 1:
        raise failures[0][1]
    if failures:
        raise PullFailures(failures, written, len(jobs))
    return written
