"""pull_football against a real local HTTP server serving fixture files in the mmz4281 layout."""

from __future__ import annotations

import contextlib
import functools
import gzip
import os
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from marketcast.cli import main
from marketcast.data.validation import DataError, IntegrityReport
from marketcast.datasets.football_data import load_football
from marketcast.datasets.pull import (
    DEFAULT_MAX_BYTES,
    PullError,
    pull_football,
    redirect_allowed,
    season_code,
    season_url,
)
from tests.local_http import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files from ``directory``; answers 503 while ``failures_left`` > 0."""

    failures_left = 0
    requests: list[str]

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if type(self).failures_left > 0:
            type(self).failures_left -= 1
            self.send_error(503, "try later")
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, type[QuietHandler], Path]]:
    root = tmp_path / "www"
    shutil.copytree(FIXTURES, root)
    handler = type("Handler", (QuietHandler,), {"failures_left": 0, "requests": []})
    with serving(functools.partial(handler, directory=str(root))) as base:
        yield f"{base}/mmz4281", handler, root


def test_season_code_and_url() -> None:
    assert season_code("2024-2025") == "2425"
    assert season_url("E0", "2024-2025", "http://h/mmz4281/") == "http://h/mmz4281/2425/E0.csv"
    with pytest.raises(ValueError, match="2024-2025"):
        season_code("2024-2026")
    with pytest.raises(ValueError, match="league code"):
        season_url("../E0", "2024-2025")


def test_pull_two_files(server: tuple[str, type[QuietHandler], Path], tmp_path: Path) -> None:
    base_url, handler, root = server
    dest = tmp_path / "data"
    written = pull_football(["E0"], ["2021-2022", "2022-2023"], dest, base_url)
    assert written == [dest / "E0" / "2021-2022.csv", dest / "E0" / "2022-2023.csv"]
    assert written[1].read_bytes() == (root / "mmz4281" / "2223" / "E0.csv").read_bytes()
    assert handler.requests == ["/mmz4281/2122/E0.csv", "/mmz4281/2223/E0.csv"]
    data = load_football([dest])
    assert data.matches.groupby("season").size().to_dict() == {"2021-2022": 12, "2022-2023": 12}
    assert list(dest.rglob("*.part")) == []


def test_404_names_the_url_and_keeps_earlier_files(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, _ = server
    dest = tmp_path / "data"
    with pytest.raises(PullError) as info:
        pull_football(["E0", "D1"], ["2021-2022", "2022-2023"], dest, base_url, backoff_s=0.0)
    assert info.value.url == f"{base_url}/2223/D1.csv"  # the fixture set has no D1 2022-23
    assert str(info.value) == f"{base_url}/2223/D1.csv: HTTP 404 File not found"
    kept = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert kept == ["D1/2021-2022.csv", "E0/2021-2022.csv", "E0/2022-2023.csv"]


def test_server_errors_are_retried_with_backoff(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, handler, _ = server
    handler.failures_left = 2
    written = pull_football(["E0"], ["2022-2023"], tmp_path, base_url, retries=2, backoff_s=0.01)
    assert len(handler.requests) == 3
    assert written[0].stat().st_size > 0


def test_retries_run_out(server: tuple[str, type[QuietHandler], Path], tmp_path: Path) -> None:
    base_url, handler, _ = server
    handler.failures_left = 10
    with pytest.raises(PullError, match=r"HTTP 503 .*gave up after 2 attempts"):
        pull_football(["E0"], ["2022-2023"], tmp_path, base_url, retries=1, backoff_s=0.01)
    assert not (tmp_path / "E0" / "2022-2023.csv").exists()


def test_invalid_file_is_not_written(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, root = server
    broken = root / "mmz4281" / "2324" / "E0.csv"
    broken.parent.mkdir()
    broken.write_text("Div,Date,HomeTeam,AwayTeam,FTAG\nE0,12/08/2023,Burnley,Man City,3\n")
    dest = tmp_path / "data"
    with pytest.raises(DataError, match=r"2324/E0\.csv, row 1, field 'FTHG'"):
        pull_football(["E0"], ["2022-2023", "2023-2024"], dest, base_url)
    assert (dest / "E0" / "2022-2023.csv").exists()
    assert not (dest / "E0" / "2023-2024.csv").exists()
    assert list(dest.rglob("*.part")) == []


def test_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler) as probe:
        port = probe.server_address[1]  # bound then closed: nothing listens there afterwards
    url = f"http://127.0.0.1:{port}/mmz4281"
    with pytest.raises(PullError, match=rf"127\.0\.0\.1:{port}/mmz4281/2223/E0\.csv"):
        pull_football(["E0"], ["2022-2023"], tmp_path, url, retries=1, backoff_s=0.0)


def _trim(path: Path, n_matches: int) -> None:
    """Keep the header and the first ``n_matches`` rows of a fixture file (a truncated upload)."""
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[: 1 + n_matches]))


def test_header_only_download_is_refused(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, root = server
    _trim(root / "mmz4281" / "2122" / "E0.csv", 0)
    dest = tmp_path / "data"
    with pytest.raises(PullError, match="no matches") as info:
        pull_football(["E0"], ["2021-2022"], dest, base_url)
    assert info.value.url == f"{base_url}/2122/E0.csv"
    assert not (dest / "E0" / "2021-2022.csv").exists()


def test_another_seasons_file_is_refused_by_the_season_it_is_saved_as(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    """Checked under its URL (no season in it), a 2021-22 file served for 2022-23 passed, then
    had every row dropped as date_outside_season once saved as 2022-2023.csv."""
    base_url, _, root = server
    seasons = root / "mmz4281"
    shutil.copyfile(seasons / "2122" / "E0.csv", seasons / "2223" / "E0.csv")
    with pytest.raises(PullError, match=r"no matches .* date_outside_season 12"):
        pull_football(["E0"], ["2022-2023"], tmp_path / "data", base_url)
    assert not (tmp_path / "data" / "E0" / "2022-2023.csv").exists()


def test_a_gzip_encoded_answer_is_saved_as_plain_csv(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    """A server sending Content-Encoding: gzip gave "row 1, field 'Date': missing column"."""
    base_url, _, root = server
    served = root / "mmz4281" / "2122" / "E0.csv"
    plain = served.read_bytes()
    served.write_bytes(gzip.compress(plain))
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path / "data", base_url)
    assert target.read_bytes() == plain


def test_smaller_download_keeps_the_existing_file(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, root = server
    dest = tmp_path / "data"
    [target] = pull_football(["E0"], ["2021-2022"], dest, base_url)
    good = target.read_bytes()
    _trim(root / "mmz4281" / "2122" / "E0.csv", 3)
    with pytest.raises(PullError, match="would replace 12 matches with 3: keeping the existing"):
        pull_football(["E0"], ["2021-2022"], dest, base_url)
    assert target.read_bytes() == good
    assert list(dest.rglob("*.part")) == []
    assert pull_football(["E0"], ["2021-2022"], dest, base_url, replace_smaller=True) == [target]
    assert target.read_bytes() == (root / "mmz4281" / "2122" / "E0.csv").read_bytes()


def test_equal_or_larger_download_replaces(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, root = server
    source = root / "mmz4281" / "2122" / "E0.csv"
    full = source.read_bytes()
    _trim(source, 3)
    dest = tmp_path / "data"
    [target] = pull_football(["E0"], ["2021-2022"], dest, base_url)  # a season in progress
    source.write_bytes(full)
    pull_football(["E0"], ["2021-2022"], dest, base_url)  # it grew
    pull_football(["E0"], ["2021-2022"], dest, base_url)  # unchanged count: replaced again
    assert target.read_bytes() == full


def test_each_file_is_reported_as_it_is_written(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, _, _ = server
    dest = tmp_path / "data"
    seen: list[tuple[str, str]] = []

    def on_written(path: Path, report: IntegrityReport) -> None:
        assert path.is_file()  # called after the file landed, not before
        seen.append((path.relative_to(dest).as_posix(), report.summary("matches")))

    with pytest.raises(PullError, match="HTTP 404"):
        pull_football(
            ["E0", "D1"], ["2021-2022", "2022-2023"], dest, base_url, on_written=on_written
        )
    assert seen == [
        ("E0/2021-2022.csv", "data: 12 of 12 matches kept from 1 file"),
        ("E0/2022-2023.csv", "data: 12 of 12 matches kept from 1 file"),
        ("D1/2021-2022.csv", "data: 10 of 10 matches kept from 1 file"),
    ]


@pytest.mark.parametrize(("leagues", "seasons"), [([], ["2021-2022"]), (["E0"], [])])
def test_nothing_to_pull_is_an_error(
    leagues: list[str], seasons: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="nothing to pull"):
        pull_football(leagues, seasons, tmp_path, "http://127.0.0.1:9/mmz4281")


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)], ids=["022", "027"])
def test_pulled_file_mode_follows_the_umask(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path, umask: int, mode: int
) -> None:
    base_url, _, _ = server
    old = os.umask(umask)
    try:
        [target] = pull_football(["E0"], ["2021-2022"], tmp_path / "data", base_url)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode


class SlowHandler(BaseHTTPRequestHandler):
    """Answers 200 with a 200-byte body, sent one byte every ``byte_every_s`` seconds.

    With ``byte_every_s`` 0 it sends the headers and then nothing at all (a hanging server).
    """

    byte_every_s = 0.05
    requests: list[str]
    release: threading.Event

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "200")
        self.end_headers()
        try:
            for _ in range(200):
                if type(self).release.wait(type(self).byte_every_s or 10.0):
                    return
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            return  # the client gave up

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def slow_server() -> Iterator[tuple[str, type[SlowHandler]]]:
    handler = type("Handler", (SlowHandler,), {"requests": [], "release": threading.Event()})
    with serving(handler) as base:
        try:
            yield f"{base}/mmz4281", handler
        finally:
            handler.release.set()  # a request still hanging lets the server stop


@pytest.mark.parametrize(
    ("byte_every_s", "retries"),
    [(0.05, 3), (0.0, 3), (0.0, 0)],
    ids=["trickling", "hanging", "hanging-no-retry"],
)
def test_total_time_limit_per_file(
    slow_server: tuple[str, type[SlowHandler]], tmp_path: Path, byte_every_s: float, retries: int
) -> None:
    base_url, handler = slow_server
    handler.byte_every_s = byte_every_s
    started = time.monotonic()
    with pytest.raises(PullError, match=r"the 1 s limit") as info:
        pull_football(
            ["E0"],
            ["2021-2022"],
            tmp_path,
            base_url,
            timeout_s=1.0,
            retries=retries,
            backoff_s=0.01,
        )
    elapsed_s = time.monotonic() - started
    assert info.value.url == f"{base_url}/2122/E0.csv"
    assert 0.9 < elapsed_s < 2.0
    assert handler.requests == ["/mmz4281/2122/E0.csv"]  # no time was left for a retry
    assert list(tmp_path.rglob("*.csv")) == []


def test_retries_stop_when_the_backoff_would_pass_the_limit(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, handler, _ = server
    handler.failures_left = 10
    started = time.monotonic()
    with pytest.raises(PullError, match=r"HTTP 503 .*gave up after 1 attempt.*the 0\.5 s limit"):
        pull_football(
            ["E0"], ["2022-2023"], tmp_path, base_url, timeout_s=0.5, retries=2, backoff_s=1.0
        )
    assert time.monotonic() - started < 0.5
    assert len(handler.requests) == 1


class ShortBodyHandler(BaseHTTPRequestHandler):
    """Promises 1,000 bytes and sends 10 before closing the connection (a cut download)."""

    requests: list[str]

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"Div,Date,H")
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_cut_connection_is_retried_not_loaded(tmp_path: Path) -> None:
    handler = type("Handler", (ShortBodyHandler,), {"requests": []})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        thread.start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/mmz4281"
        try:
            with pytest.raises(PullError, match=r"IncompleteRead.*gave up after 2 attempts"):
                pull_football(["E0"], ["2021-2022"], tmp_path, url, retries=1, backoff_s=0.0)
        finally:
            httpd.shutdown()
            thread.join(timeout=5)
    assert len(handler.requests) == 2


class PayloadHandler(BaseHTTPRequestHandler):
    """Answers every GET with ``body``, after ``headers``; no Content-Length unless given there.

    A ``location`` answers 302 to it instead (unless the path starts with ``/target/``).
    """

    body = b""
    headers_sent: ClassVar[dict[str, str]] = {}
    location: str | None = None
    requests: list[str]

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.location is not None and not self.path.startswith("/target/"):
            self.send_response(302)
            self.send_header("Location", self.location)
            self.end_headers()
            return
        self.send_response(200)
        for name, value in type(self).headers_sent.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(OSError):  # the client may stop reading
            self.wfile.write(self.body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def payload_server() -> Iterator[tuple[str, type[PayloadHandler]]]:
    handler = type("Handler", (PayloadHandler,), {"requests": [], "headers_sent": {}})
    with serving(handler) as base:
        yield f"{base}", handler


GOOD_CSV = (FIXTURES / "mmz4281" / "2122" / "E0.csv").read_bytes()


def test_content_length_over_the_default_limit_is_refused_before_reading(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path
) -> None:
    base, handler = payload_server
    handler.headers_sent = {"Content-Length": str(DEFAULT_MAX_BYTES + 1)}
    handler.body = GOOD_CSV  # far less than announced: reading it would wait for the rest
    started = time.monotonic()
    with pytest.raises(PullError, match=r"Content-Length 33,554,433 is over the 33,554,432-byte"):
        pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281", timeout_s=3.0)
    assert time.monotonic() - started < 1.0
    assert DEFAULT_MAX_BYTES == 32 * 1024 * 1024
    assert list(tmp_path.rglob("*.csv")) == []


def test_body_over_the_limit_is_cut_off_and_nothing_is_saved(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path
) -> None:
    """A real file followed by junk, with no Content-Length (the junk loads as one bad row)."""
    base, handler = payload_server
    handler.body = GOOD_CSV + b"x" * 1_000_000
    with pytest.raises(PullError, match=r"over the 100,000-byte size limit") as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281", max_bytes=100_000)
    assert info.value.url == f"{base}/mmz4281/2122/E0.csv"
    assert len(handler.requests) == 1  # not retried
    assert list(tmp_path.rglob("*.csv")) == []


def test_gzip_bomb_is_refused_while_decompressing(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path
) -> None:
    base, handler = payload_server
    handler.body = gzip.compress(GOOD_CSV + b"\n" * 5_000_000)  # about 5 KB compressed
    assert len(handler.body) < 100_000
    with pytest.raises(DataError, match=r"decompresses to more than the 100,000-byte limit") as e:
        pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281", max_bytes=100_000)
    assert e.value.file == f"{base}/mmz4281/2122/E0.csv"
    assert list(tmp_path.rglob("*.csv")) == []


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes must be positive"):
        pull_football(["E0"], ["2021-2022"], tmp_path, "http://127.0.0.1:9/x", max_bytes=0)


@pytest.mark.parametrize(
    "location",
    ["http://localhost:{port}/target/2122/E0.csv", "http://127.0.0.1:1/target/2122/E0.csv"],
    ids=["another-host", "another-port"],
)
def test_redirect_to_another_host_is_refused(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path, location: str
) -> None:
    base, handler = payload_server
    handler.location = location.format(port=base.rsplit(":", 1)[1])
    handler.body = GOOD_CSV
    url = f"{base}/mmz4281/2122/E0.csv"
    with pytest.raises(PullError, match="refusing HTTP 302 redirect") as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281")
    assert info.value.url == url
    assert f"from {url} to {handler.location}" in info.value.reason
    assert handler.requests == ["/mmz4281/2122/E0.csv"]  # the target was never asked
    assert list(tmp_path.rglob("*.csv")) == []


def test_redirect_on_the_same_host_is_followed(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path
) -> None:
    base, handler = payload_server
    handler.location = "/target/2122/E0.csv"
    handler.body = GOOD_CSV
    [written] = pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281")
    assert written.read_bytes() == GOOD_CSV
    assert handler.requests == ["/mmz4281/2122/E0.csv", "/target/2122/E0.csv"]


def test_a_redirect_loop_is_one_line(
    payload_server: tuple[str, type[PayloadHandler]], tmp_path: Path
) -> None:
    """urllib's reason for a loop ran over three lines into the error."""
    base, handler = payload_server
    handler.location = "/mmz4281/2122/E0.csv"  # itself
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, f"{base}/mmz4281")
    assert "\n" not in str(info.value)
    assert (
        "HTTP 302 The HTTP server returned a redirect error that would lead to an infinite "
        "loop. The last 30x error message was: Found" in str(info.value)
    )
    assert list(tmp_path.rglob("*.csv")) == []


@pytest.mark.parametrize(
    ("from_url", "to_url", "allowed"),
    [
        ("https://h.example/a", "https://h.example/b", True),
        ("https://h.example/a", "https://H.EXAMPLE:443/b", True),
        ("http://h.example/a", "https://h.example/a", True),
        ("https://h.example/a", "http://h.example/a", False),
        ("https://h.example/a", "https://evil.example/a", False),
        ("https://h.example/a", "https://h.example:8443/a", False),
        ("https://h.example/a", "ftp://h.example/a", False),
        ("https://h.example/a", "https://h.example:bad/a", False),
    ],
)
def test_redirect_allowed(from_url: str, to_url: str, allowed: bool) -> None:
    assert redirect_allowed(from_url, to_url) is allowed


def test_season_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="season must look like"):
        season_code("2021-2022\n")


def test_league_with_a_trailing_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="league code"):
        season_url("E0\n", "2021-2022")


@pytest.mark.parametrize("league", ["XX", "e0"])
def test_a_league_the_site_does_not_publish_is_refused_before_any_request(
    tmp_path: Path, league: str
) -> None:
    """`--leagues XX` asked football-data.co.uk four times, each a 404, before saying why; a
    mirror (another base URL) may hold other codes and is asked."""
    with pytest.raises(
        ValueError, match=f"football-data.co.uk has no league '{league}': its codes are E0, E1"
    ):
        pull_football([league], ["2024-2025"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("season", ["1850-1851", "1992-1993", "2093-2094", "2121-2122"])
def test_a_season_the_sites_two_digit_codes_cannot_name_is_refused(season: str) -> None:
    """1850-1851 asked for folder 5051 and 2121-2122 for 2122: other seasons' files."""
    with pytest.raises(ValueError, match=r"name the seasons from 1993-1994 to 2092-2093"):
        season_code(season)
    assert season_code("1993-1994") == "9394"
    assert season_code("2092-2093") == "9293"


def test_a_season_or_league_named_twice_is_pulled_once(
    server: tuple[str, type[QuietHandler], Path], tmp_path: Path
) -> None:
    base_url, handler, _ = server
    args = ["--leagues", "E0,E0", "--seasons", "2021-2022, 2021-2022", "--base-url", base_url]
    main(["data", "pull", "football", *args, "--dest", str(tmp_path / "data")])
    assert handler.requests == ["/mmz4281/2122/E0.csv"]
