"""`marketcast data pull football` against a real local HTTP server (nothing leaves loopback)."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.datasets.football_data import load_football

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[str]:
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(FIXTURES))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mmz4281"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_pull_then_check_then_load(mirror: str, tmp_path: Path) -> None:
    dest = tmp_path / "football"
    status = main(
        [
            "data",
            "pull",
            "football",
            "--leagues",
            "E0,D1",
            "--seasons",
            "2021-2022",
            "--dest",
            str(dest),
            "--base-url",
            mirror,
        ]
    )
    assert status == 0
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.csv")) == [
        "D1/2021-2022.csv",
        "E0/2021-2022.csv",
    ]
    assert main(["data", "check", str(dest)]) == 0
    data = load_football([dest])
    assert set(data.matches["league"]) == {"E0", "D1"}
    assert (data.matches["season"] == "2021-2022").all()


def test_pull_missing_season_names_the_url(mirror: str, tmp_path: Path, capsys) -> None:
    status = main(
        [
            "data",
            "pull",
            "football",
            "--leagues",
            "E0",
            "--seasons",
            "2030-2031",
            "--dest",
            str(tmp_path),
            "--base-url",
            mirror,
        ]
    )
    assert status != 0
    assert f"{mirror}/3031/E0.csv" in capsys.readouterr().err
