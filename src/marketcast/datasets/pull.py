"""Download newer football-data.co.uk season files (urllib, retries, atomic writes, validated)."""

from __future__ import annotations

import http.client
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from marketcast.datasets.football_data import load_football_sources

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.football-data.co.uk/mmz4281"
_SEASON = re.compile(r"^(\d{4})-(\d{4})$")
_LEAGUE = re.compile(r"^[A-Za-z0-9]{1,8}$")
_USER_AGENT = "marketcast-pull/0.1 (+https://www.football-data.co.uk)"


class PullError(RuntimeError):
    """A download failed for good (after retries, or on an HTTP error that retrying cannot fix)."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url}: {reason}")


def season_code(season: str) -> str:
    """Return football-data.co.uk's folder code for a season.

    Examples
    --------
    >>> season_code("2024-2025")
    '2425'
    >>> season_code("1999-2000")
    '9900'
    """
    match = _SEASON.match(season)
    if not match or int(match[2]) != int(match[1]) + 1:
        raise ValueError(f"season must look like '2024-2025', got {season!r}")
    return match[1][2:] + match[2][2:]


def season_url(league: str, season: str, base_url: str = DEFAULT_BASE_URL) -> str:
    """Return the URL of one league-season file, e.g. ``.../mmz4281/2425/E0.csv``.

    Examples
    --------
    >>> season_url("E0", "2024-2025", "http://127.0.0.1:8000/mmz4281")
    'http://127.0.0.1:8000/mmz4281/2425/E0.csv'
    """
    if not _LEAGUE.match(league):
        raise ValueError(f"league code must be letters and digits, got {league!r}")
    return f"{base_url.rstrip('/')}/{season_code(season)}/{league}.csv"


def _fetch(url: str, *, timeout_s: float, retries: int, backoff_s: float) -> bytes:
    """GET ``url``; retry network errors and 5xx/429 with exponential backoff, fail fast on 4xx."""
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    last = "no attempt made"
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} {exc.reason}"
            if exc.code < 500 and exc.code != 429:
                raise PullError(url, last) from exc
        except (
            urllib.error.URLError,
            TimeoutError,
            ConnectionError,
            http.client.HTTPException,
        ) as exc:
            last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
        logger.warning("pull %s failed (attempt %d of %d): %s", url, attempt + 1, retries + 1, last)
    raise PullError(url, f"{last} (gave up after {retries + 1} attempts)")


def _write_atomic(dest: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``dest`` and rename it into place."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def pull_football(
    leagues: Sequence[str],
    seasons: Sequence[str],
    dest: str | Path,
    base_url: str = DEFAULT_BASE_URL,
    *,
    timeout_s: float = 30.0,
    retries: int = 3,
    backoff_s: float = 1.0,
) -> list[Path]:
    """Download ``{base_url}/{yyyy}/{league}.csv`` for every league and season.

    Each file is checked by loading it with the football-data loader before it is written, then
    written atomically to ``{dest}/{league}/{season}.csv``: a failure half-way leaves the files
    already pulled intact and never a partial file.

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
        Socket timeout per request, in seconds.
    retries
        Extra attempts after a network error or an HTTP 5xx/429 answer.
    backoff_s
        Wait before the first retry, in seconds; doubled after each further failure.

    Returns
    -------
    list of Path
        The written files, in the order pulled (league-major).

    Raises
    ------
    PullError
        On an HTTP error (naming the URL and status) or when retries run out.
    DataError
        When a downloaded file is not a valid football-data file (names file, row and field).
    """
    out_dir = Path(dest)
    jobs = [(league, season) for league in leagues for season in seasons]
    urls = [season_url(league, season, base_url) for league, season in jobs]  # validate first
    written: list[Path] = []
    for (league, season), url in zip(jobs, urls, strict=True):
        data = _fetch(url, timeout_s=timeout_s, retries=retries, backoff_s=backoff_s)
        target = out_dir / league / f"{season}.csv"
        loaded = load_football_sources([(url, data)])
        _write_atomic(target, data)
        logger.info("pulled %s: %d matches -> %s", url, loaded.report.rows_kept, target)
        written.append(target)
    return written
