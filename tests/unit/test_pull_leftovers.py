"""pull_football names every failure of a file, and a bug loses nothing collected before it.

An exception of a type the pull did not collect (a `ValueError` from a Content-Length of
``"\u00b2"``, an `IndexError` from a body holding only a byte-order mark, an ``SSLEOFError``) went
out at once: the failures collected before it, and which files were written, were lost. Each test
runs a real HTTP server on loopback that answers each path with headers and bytes the test sets.
"""

from __future__ import annotations

import gzip
import logging
import ssl
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from marketcast.data.validation import DataError, IntegrityReport
from marketcast.datasets import pull
from marketcast.datasets.pull import PullError, pull_football
from tests.local_http import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"
E0_2122 = (FIXTURES / "2122" / "E0.csv").read_bytes()  # 12 matches
E0_2223 = (FIXTURES / "2223" / "E0.csv").read_bytes()


class AnswerHandler(BaseHTTPRequestHandler):
    """Answers ``answers[path]``, ``(status, headers, body)``, and closes the connection; else
    404. Content-Length is sent only when the headers name it."""

    answers: ClassVar[dict[str, tuple[int, dict[str, str], bytes]]]
    requests: ClassVar[list[str]]

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        if self.path not in type(self).answers:
            self.send_error(404, "File not found")
            return
        status, headers, body = type(self).answers[self.path]
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def answers() -> Iterator[tuple[str, type[AnswerHandler]]]:
    handler = type("Handler", (AnswerHandler,), {"answers": {}, "requests": []})
    with serving(handler) as base:
        yield f"{base}/mmz4281", handler


def _ok(body: bytes) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Length": str(len(body))}, body


def _files(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


SEASONS = ["2020-2021", "2021-2022", "2022-2023", "2023-2024"]


# --- a bug stops the pull, and says what was done before it ----------------------------------


def test_a_bug_in_a_later_file_keeps_what_was_done_before_it(
    answers: tuple[str, type[AnswerHandler]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """2020-21 fails (404), 2021-22 is written, the check of 2022-23 raises a bug: the bug
    goes out as it is, 2023-24 is not tried, and the note names the three others."""
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)
    handler.answers["/mmz4281/2223/E0.csv"] = _ok(E0_2223)
    check = pull._check_download

    def buggy(url: str, target: Path, data: bytes) -> Any:
        if url.endswith("/2223/E0.csv"):
            raise RuntimeError("a bug in the check")
        return check(url, target, data)

    monkeypatch.setattr(pull, "_check_download", buggy)
    with caplog.at_level(logging.ERROR, logger=pull.__name__), pytest.raises(RuntimeError) as info:
        pull_football(["E0"], SEASONS, tmp_path, base_url)
    assert type(info.value) is RuntimeError
    assert str(info.value) == "a bug in the check"
    note = (
        f"pull_football stopped at file 3 of 4 ({base_url}/2223/E0.csv) by this error:\n"
        f"  written: {tmp_path / 'E0' / '2021-2022.csv'}\n"
        f"  not pulled: {base_url}/2021/E0.csv: HTTP 404 File not found\n"
        "  not tried: 1 more"
    )
    assert info.value.__notes__ == [note]
    assert handler.requests == [f"/mmz4281/{code}/E0.csv" for code in ("2021", "2122", "2223")]
    assert _files(tmp_path) == ["E0/2021-2022.csv"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"RuntimeError: a bug in the check\n{note}"
    ]


def test_a_bug_in_on_written_keeps_what_was_done_before_it(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)
    handler.answers["/mmz4281/2223/E0.csv"] = _ok(E0_2223)

    def on_written(path: Path, report: IntegrityReport) -> None:
        if path.name == "2022-2023.csv":
            raise KeyError("a bug in the caller")

    with pytest.raises(KeyError) as info:
        pull_football(["E0"], SEASONS, tmp_path, base_url, on_written=on_written)
    assert info.value.__notes__ == [
        f"pull_football stopped at file 3 of 4 ({base_url}/2223/E0.csv) by this error:\n"
        f"  written: {tmp_path / 'E0' / '2021-2022.csv'}\n"
        f"  written: {tmp_path / 'E0' / '2022-2023.csv'}\n"
        f"  not pulled: {base_url}/2021/E0.csv: HTTP 404 File not found\n"
        "  not tried: 1 more"
    ]
    assert _files(tmp_path) == ["E0/2021-2022.csv", "E0/2022-2023.csv"]


# --- what a server or the network can do is a failure of that file -----------------------------


def test_a_content_length_that_is_no_number_is_read_to_the_end(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    """Headers are Latin-1: "\u00b2" passes str.isdigit, and int("\u00b2") raised a
    ValueError. http.client ignores such a length and reads to the end, as the pull now does."""
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = (200, {"Content-Length": "\u00b2"}, E0_2122)
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url)
    assert target.read_bytes() == E0_2122


def test_a_body_of_a_byte_order_mark_alone_is_named_by_the_loader(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    """An empty CSV saved with a UTF-8 byte-order mark raised an IndexError, and the files
    after it were never tried."""
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(b"\xef\xbb\xbf")
    handler.answers["/mmz4281/2223/E0.csv"] = _ok(E0_2223)
    with pytest.raises(DataError) as info:
        pull_football(["E0"], ["2021-2022", "2022-2023"], tmp_path, base_url)
    assert str(info.value).startswith(f"{base_url}/2122/E0.csv, row 1: ")
    assert "empty file" in info.value.reason
    assert _files(tmp_path) == ["E0/2022-2023.csv"]


def _ssl_cut(times: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the first ``times`` reads raise the ``SSLEOFError`` a TLS connection cut without
    a close gives; returns the URLs read, in order."""
    read_body = pull._read_body
    urls: list[str] = []

    def cut(request: Any, url: str, *args: Any) -> bytes:
        urls.append(url)
        if len(urls) <= times:
            raise ssl.SSLEOFError(8, "EOF occurred in violation of protocol (_ssl.c:2427)")
        return read_body(request, url, *args)

    monkeypatch.setattr(pull, "_read_body", cut)
    return urls


def test_a_cut_tls_connection_is_retried(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An SSLError is no ConnectionError: it failed the file at once, unretried."""
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)
    urls = _ssl_cut(1, monkeypatch)
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url, backoff_s=0.01)
    assert target.read_bytes() == E0_2122
    assert urls == [f"{base_url}/2122/E0.csv"] * 2


def test_a_tls_connection_cut_every_time_is_a_pull_error_naming_the_url(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)
    _ssl_cut(2, monkeypatch)
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, retries=1, backoff_s=0.01)
    assert str(info.value) == (
        f"{base_url}/2122/E0.csv: SSLEOFError: EOF occurred in violation of protocol "
        "(_ssl.c:2427) (gave up after 2 attempts)"
    )
    assert _files(tmp_path) == []


def test_a_backoff_wait_that_oversleeps_the_limit_fails_the_file(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wait that ends past the time limit (a busy or suspended machine) left a negative
    socket timeout: a ValueError ("Timeout value out of range") stopped the pull."""
    base_url, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = (503, {"Content-Length": "0"}, b"")
    handler.answers["/mmz4281/2223/E0.csv"] = _ok(E0_2223)
    offset_s = [0.0]

    def oversleep(wait_s: float) -> None:
        offset_s[0] += wait_s + 1.0  # the clock moves on; the test does not wait

    clock = SimpleNamespace(monotonic=lambda: time.monotonic() + offset_s[0], sleep=oversleep)
    monkeypatch.setattr(pull, "time", clock)
    with pytest.raises(PullError) as info:
        pull_football(
            ["E0"], ["2021-2022", "2022-2023"], tmp_path, base_url, timeout_s=0.5, backoff_s=0.1
        )
    assert str(info.value) == (
        f"{base_url}/2122/E0.csv: HTTP 503 Service Unavailable (the 0.5 s limit is up) "
        "(gave up after 1 attempt)"
    )
    assert _files(tmp_path) == ["E0/2022-2023.csv"]


@pytest.mark.parametrize(
    "base_url",
    ["127.0.0.1:8000/mmz4281", "ftp://127.0.0.1:9/mmz4281", "http:///mmz4281"],
)
def test_a_base_url_that_is_no_http_url_is_refused_before_any_request(
    base_url: str, tmp_path: Path
) -> None:
    """Every file failed, after every retry, as a network error ("URLError: unknown url
    type", "no host given", or an FTP connection refused)."""
    with pytest.raises(ValueError, match=r"^base_url must be an http or https URL with a host"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, retries=0, timeout_s=2)
    assert _files(tmp_path) == []


def test_a_base_url_with_a_port_that_is_no_number_is_refused(tmp_path: Path) -> None:
    """It was retried as a network error ("InvalidURL: nonnumeric port: 'x'")."""
    with pytest.raises(ValueError, match=r"^base_url 'http://127\.0\.0\.1:x/m' is not a valid URL"):
        pull_football(["E0"], ["2021-2022"], tmp_path, "http://127.0.0.1:x/m")


# --- already a failure of that file (pinned) ---------------------------------------------------


def test_a_corrupt_gzip_body_is_a_failure_and_the_next_file_is_pulled(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    """Pinned (it held before): a gzip body cut short fails its file, naming the URL."""
    base_url, handler = answers
    corrupt = gzip.compress(E0_2122)[:-40]
    handler.answers["/mmz4281/2122/E0.csv"] = (
        200,
        {"Content-Encoding": "gzip", "Content-Length": str(len(corrupt))},
        corrupt,
    )
    handler.answers["/mmz4281/2223/E0.csv"] = _ok(E0_2223)
    with pytest.raises(DataError) as info:
        pull_football(["E0"], SEASONS[1:3], tmp_path, base_url)
    assert str(info.value) == (
        f"{base_url}/2122/E0.csv: cannot decompress gzip data: compressed data ended before "
        "the end-of-stream marker"
    )
    assert _files(tmp_path) == ["E0/2022-2023.csv"]


# --- an audit's findings: Retry-After, letter case, non-ASCII digits, a changed file ---------


def test_a_rate_limited_answer_waits_as_long_as_the_server_asks(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait was the backoff's (1, 2, 4 s) whatever Retry-After said."""
    base, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = (
        429,
        {"Retry-After": "7", "Content-Length": "0"},
        b"",
    )
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)  # served after the wait

    monkeypatch.setattr(pull.time, "sleep", sleep)
    [written] = pull_football(["E0"], ["2021-2022"], tmp_path, base, backoff_s=0.5)
    assert waits == [7.0]  # was: [0.5]
    assert written.read_bytes() == E0_2122


def test_a_retry_after_past_the_time_limit_fails_at_once_saying_so(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    base, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = (
        503,
        {"Retry-After": "30", "Content-Length": "0"},
        b"",
    )
    started = time.monotonic()
    with pytest.raises(PullError, match=r"HTTP 503 .*the server asked to retry after 30 s"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base, timeout_s=10.0)
    assert time.monotonic() - started < 5.0  # no pointless retries meanwhile
    assert handler.requests == ["/mmz4281/2122/E0.csv"]


def test_a_league_whose_letter_case_differs_from_the_files_div_is_refused(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    """A mirror serving E0's file at e0.csv was saved to a folder e0 beside E0: loading the
    folder read every match twice."""
    base, handler = answers
    handler.answers["/mmz4281/2122/e0.csv"] = _ok(E0_2122)
    with pytest.raises(PullError, match=r"asked for league e0, .* says E0 .*\(give --leagues E0\)"):
        pull_football(["e0"], ["2021-2022"], tmp_path, base)
    assert _files(tmp_path) == []


def test_a_season_in_other_digits_is_refused_before_any_request(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path
) -> None:
    base, handler = answers
    with pytest.raises(ValueError, match="season must look like '2024-2025'"):
        pull_football(["E0"], ["\uff12\uff10\uff12\uff11-\uff12\uff10\uff12\uff12"], tmp_path, base)
    assert handler.requests == []  # was: a UnicodeEncodeError in the request, as a bug


def test_replacing_a_file_whose_content_differs_is_said(
    answers: tuple[str, type[AnswerHandler]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A user's corrected result was overwritten without a word."""
    base, handler = answers
    handler.answers["/mmz4281/2122/E0.csv"] = _ok(E0_2122)
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base)
    edited = E0_2122.replace(b"Brentford,Arsenal,2,0", b"Brentford,Arsenal,9,0")
    assert edited != E0_2122
    target.write_bytes(edited)
    with caplog.at_level(logging.WARNING, logger="marketcast.datasets.pull"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base)
    assert f"replacing {target} (12 matches): its content differs" in caplog.text
    assert target.read_bytes() == E0_2122
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="marketcast.datasets.pull"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base)  # the same bytes: nothing to say
    assert "replacing" not in caplog.text
