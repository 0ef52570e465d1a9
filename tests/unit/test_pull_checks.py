"""pull_football refuses another league's file and a cut body, and tries every file asked for.

Each test runs a real HTTP server on loopback that answers each path with bytes the test sets.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from marketcast.data.validation import DataError, IntegrityReport
from marketcast.datasets.pull import PullError, PullFailures, pull_football
from tests.local_http import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"
E0_2122 = (FIXTURES / "2122" / "E0.csv").read_bytes()  # 12 matches, CRLF, 106 columns
D1_2122 = (FIXTURES / "2122" / "D1.csv").read_bytes()  # 10 matches
E0_2223 = (FIXTURES / "2223" / "E0.csv").read_bytes()


class FilesHandler(BaseHTTPRequestHandler):
    """Answers ``files[path]`` (a list: one answer per request, the last repeated), else 404.

    With ``content_length`` False no Content-Length is sent and the connection is closed after
    the body, so the body ends where the server stops: a cut there is invisible to HTTP.
    """

    files: ClassVar[dict[str, list[bytes]]]
    requests: ClassVar[list[str]]
    content_length = True

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        answers = type(self).files.get(self.path)
        if not answers:
            self.send_error(404, "File not found")
            return
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        self.send_response(200)
        if type(self).content_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(body)
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def files_server() -> Iterator[tuple[str, type[FilesHandler]]]:
    handler = type("Handler", (FilesHandler,), {"files": {}, "requests": []})
    with serving(handler) as base:
        yield f"{base}/mmz4281", handler


def _relabel(data: bytes, div: bytes, rows: int | None = None) -> bytes:
    """``data`` with the Div cell of its first ``rows`` matches (all when None) set to ``div``."""
    lines = data.splitlines(keepends=True)
    end = len(lines) if rows is None else 1 + rows
    body = [div + line[line.index(b",") :] for line in lines[1:end]]
    return b"".join([lines[0], *body, *lines[end:]])


def _files(dest: Path) -> list[str]:
    return sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())


# --- another league's file -------------------------------------------------------------------


def test_another_leagues_file_does_not_replace_a_good_one(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """E1's file at E0's URL, as many matches as the saved E0 file: it replaced it."""
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [E0_2122, _relabel(E0_2122, b"E1")]
    dest = tmp_path / "data"
    [target] = pull_football(["E0"], ["2021-2022"], dest, base_url)
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2021-2022"], dest, base_url)
    url = f"{base_url}/2122/E0.csv"
    assert info.value.url == url
    assert info.value.reason == (
        "asked for league E0, but the file's Div column says E1 (12 of 12 matches): "
        f"keeping the existing file {target}"
    )
    assert target.read_bytes() == E0_2122
    assert _files(dest) == ["E0/2021-2022.csv"]  # no temporary file left


def test_another_leagues_file_is_not_saved(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [D1_2122]
    dest = tmp_path / "data"
    with pytest.raises(
        PullError, match=r"asked for league E0, but .* says D1 \(10 of 10 matches\)"
    ):
        pull_football(["E0"], ["2021-2022"], dest, base_url)
    assert not dest.exists()


def test_a_file_mixing_leagues_is_refused_with_the_counts(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [_relabel(E0_2122, b"E1", rows=2)]
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url)
    assert info.value.reason == (
        "asked for league E0, but the file's Div column says E1 (2 of 12 matches), "
        "E0 (10 of 12 matches): nothing written"
    )
    assert _files(tmp_path) == []


def test_rows_without_div_are_the_league_asked_for(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """A row with an empty Div takes the league from the folder it is saved in (the loader's
    rule), so it never counts as another league. (A lower-case code is refused:
    test_pull_leftovers.py, letter case.)"""
    base_url, handler = files_server
    served = _relabel(E0_2122, b"", rows=3)
    handler.files["/mmz4281/2122/E0.csv"] = [served]
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url)
    assert target.read_bytes() == served


# --- a body cut short --------------------------------------------------------------------------


def _cut_mid_line(data: bytes, n_rows: int) -> bytes:
    """The header, ``n_rows`` whole rows, then the first 40 bytes of the next row."""
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: 1 + n_rows]) + lines[1 + n_rows][:40]


@pytest.mark.parametrize("content_length", [False, True], ids=["closed-early", "cut-file"])
def test_a_body_cut_mid_line_is_retried_then_refused(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path, content_length: bool
) -> None:
    """Without Content-Length a connection closed mid-body looks complete to HTTP (and a
    server may serve a file cut mid-line); it was saved with 'malformed_row 1' in the summary."""
    base_url, handler = files_server
    handler.content_length = content_length
    handler.files["/mmz4281/2122/E0.csv"] = [_cut_mid_line(E0_2122, 5)]
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, retries=1, backoff_s=0.0)
    cut = _cut_mid_line(E0_2122, 5)
    assert info.value.url == f"{base_url}/2122/E0.csv"
    assert info.value.reason == (
        "truncated transfer: the body ends inside line 7 (no line break after it, and 7 fields "
        f"where the header names 106; {len(cut):,} bytes received) (gave up after 2 attempts)"
    )
    assert len(handler.requests) == 2
    assert _files(tmp_path) == []


def test_a_cut_body_does_not_replace_a_good_file(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [E0_2122, _cut_mid_line(E0_2122, 11)]
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url)
    with pytest.raises(PullError, match=r"truncated transfer: the body ends inside line 13"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, retries=0)
    assert target.read_bytes() == E0_2122
    assert _files(tmp_path) == ["E0/2021-2022.csv"]


def test_a_cut_body_is_retried_until_whole(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    base_url, handler = files_server
    handler.content_length = False
    handler.files["/mmz4281/2122/E0.csv"] = [_cut_mid_line(E0_2122, 3), E0_2122]
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url, backoff_s=0.0)
    assert target.read_bytes() == E0_2122
    assert len(handler.requests) == 2


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (E0_2122[:30], "ends inside line 1, the header (no line break after it;"),
        (
            E0_2122.splitlines(keepends=True)[0] + b'E0,13/08/2021,20:00,"Brent',
            "ends inside line 2 (no line break after it, and a quoted field not closed;",
        ),
    ],
    ids=["inside-header", "inside-quotes"],
)
def test_other_cuts_are_truncated_transfers(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path, body: bytes, detail: str
) -> None:
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [body]
    with pytest.raises(PullError, match="truncated transfer") as info:
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, retries=0)
    assert detail in info.value.reason
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("body", "warned"),
    [
        (E0_2122.removesuffix(b"\r\n"), True),  # the last row whole, its line break missing
        (E0_2122.removesuffix(b"\n"), False),  # cut between CR and LF: CR alone ends a line
        (E0_2122 + b",,,,", False),  # cut inside a blank all-comma row after the last match
    ],
    ids=["no-final-line-break", "final-cr", "inside-a-blank-row"],
)
def test_a_whole_last_row_without_a_line_break_is_kept(
    files_server: tuple[str, type[FilesHandler]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    warned: bool,
) -> None:
    """Kept, as a file saved without a final line break is whole; as a cut inside the last
    field looks the same, that is a warning naming the line, the field and its value."""
    base_url, handler = files_server
    handler.content_length = False
    handler.files["/mmz4281/2122/E0.csv"] = [body]
    seen: list[str] = []
    with caplog.at_level(logging.WARNING, logger="marketcast.datasets.pull"):
        pull_football(
            ["E0"],
            ["2021-2022"],
            tmp_path,
            base_url,
            on_written=lambda path, report: seen.append(report.summary("matches")),
        )
    assert seen == ["data: 12 of 12 matches kept from 1 file"]
    assert (tmp_path / "E0" / "2021-2022.csv").read_bytes() == body
    expected = (
        f"{base_url}/2122/E0.csv: no line break after the last line (13), as every "
        "football-data file has; its row has every field, so the file is kept, but if the "
        "transfer was cut inside field 'AvgCAHA' ('2.05') that value is short"
    )
    assert caplog.messages == ([expected] if warned else [])


def test_a_whole_page_that_is_no_csv_is_named_by_the_loader_at_once(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """A maintenance page served 200, whole, without a final line break was called a
    truncated transfer, fetched four times, and its real fault was lost."""
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [b"<html><body>Down for maintenance</body></html>"]
    with pytest.raises(DataError, match=r"row 1, field 'Date': missing required column"):
        pull_football(["E0"], ["2021-2022"], tmp_path, base_url, backoff_s=0.0)
    assert handler.requests == ["/mmz4281/2122/E0.csv"]


def test_a_stray_cr_in_the_last_row_is_no_line_end(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """The loader reads a CR alone in an LF or CRLF file as a character of its cell; the
    check split the last row there and refused a whole file as cut."""
    base_url, handler = files_server
    lines = E0_2122.rstrip(b"\r\n").split(b"\r\n")
    fields = lines[-1].split(b",")
    referee = lines[0].split(b",").index(b"Referee")
    fields[referee] = fields[referee][:1] + b"\r" + fields[referee][1:]
    body = b"\r\n".join([*lines[:-1], b",".join(fields)])  # no final line break
    handler.files["/mmz4281/2122/E0.csv"] = [body]
    [target] = pull_football(["E0"], ["2021-2022"], tmp_path, base_url)
    assert target.read_bytes() == body


# --- every file is tried -----------------------------------------------------------------------


def test_a_failed_season_does_not_stop_the_next(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """A 404 on 2020-2021 stopped the pull: 2021-2022 was never asked for."""
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [E0_2122]
    with pytest.raises(PullError) as info:
        pull_football(["E0"], ["2020-2021", "2021-2022"], tmp_path, base_url)
    assert str(info.value) == f"{base_url}/2021/E0.csv: HTTP 404 File not found"
    assert handler.requests == ["/mmz4281/2021/E0.csv", "/mmz4281/2122/E0.csv"]
    assert _files(tmp_path) == ["E0/2021-2022.csv"]


def test_every_failure_is_named_at_the_end(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [E0_2122]
    handler.files["/mmz4281/2223/E0.csv"] = [E0_2223]
    handler.files["/mmz4281/2122/D1.csv"] = [b"Div,Date,HomeTeam,AwayTeam,FTAG\n"]
    seen: list[str] = []

    def on_written(path: Path, report: IntegrityReport) -> None:
        seen.append(path.relative_to(tmp_path).as_posix())

    with pytest.raises(PullFailures) as info:
        pull_football(
            ["E0", "D1"],
            ["2021-2022", "2022-2023"],
            tmp_path,
            base_url,
            on_written=on_written,
        )
    assert seen == ["E0/2021-2022.csv", "E0/2022-2023.csv"]
    assert _files(tmp_path) == seen
    failed = info.value.failures
    assert [url for url, _ in failed] == [f"{base_url}/2122/D1.csv", f"{base_url}/2223/D1.csv"]
    assert isinstance(failed[0][1], DataError)
    assert isinstance(failed[1][1], PullError)
    assert info.value.url == f"{base_url}/2122/D1.csv"  # the first that failed
    assert info.value.written == [
        tmp_path / "E0" / "2021-2022.csv",
        tmp_path / "E0" / "2022-2023.csv",
    ]
    assert str(info.value) == (
        "2 of 4 files not pulled:\n"
        f"  {base_url}/2122/D1.csv, row 1, field 'FTHG': missing required column\n"
        f"  {base_url}/2223/D1.csv: HTTP 404 File not found"
    )


def test_a_file_that_cannot_be_written_is_named_by_its_url(
    files_server: tuple[str, type[FilesHandler]], tmp_path: Path
) -> None:
    """An OSError (a folder in the way of one file) is a failure like the others."""
    base_url, handler = files_server
    handler.files["/mmz4281/2122/E0.csv"] = [E0_2122]
    handler.files["/mmz4281/2223/E0.csv"] = [E0_2223]
    (tmp_path / "E0" / "2021-2022.csv").mkdir(parents=True)
    with pytest.raises(PullFailures) as info:
        pull_football(["E0"], ["2020-2021", "2021-2022", "2022-2023"], tmp_path, base_url)
    [(_, missing), (url, unwritable)] = info.value.failures
    assert isinstance(missing, PullError)
    assert isinstance(unwritable, IsADirectoryError)
    assert info.value.reason.splitlines()[2] == f"  {url}: {unwritable}"
    assert str(tmp_path / "E0" / "2021-2022.csv") in str(unwritable)
    assert info.value.written == [tmp_path / "E0" / "2022-2023.csv"]
