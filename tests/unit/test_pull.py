"""pull_football against a real local HTTP server serving fixture files in the mmz4281 layout."""

from __future__ import annotations

import functools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from marketcast.data.validation import DataError
from marketcast.datasets.football_data import load_football
from marketcast.datasets.pull import PullError, pull_football, season_code, season_url

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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mmz4281", handler, root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


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
