"""`marketcast data pull football` against a real local HTTP server (nothing leaves loopback)."""

from __future__ import annotations

import contextlib
import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.datasets.football_data import load_football
from tests.local_http import serving

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _Hanging(BaseHTTPRequestHandler):
    """Sends the headers of a 200 answer, then nothing until the test ends."""

    release = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "100")
        self.end_headers()
        self.release.wait(10.0)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def _serve(handler: Callable[..., BaseHTTPRequestHandler]) -> Iterator[str]:
    with serving(handler) as base:
        yield f"{base}/mmz4281"


@pytest.fixture
def mirror() -> Iterator[str]:
    with _serve(functools.partial(_Quiet, directory=str(FIXTURES))) as url:
        yield url


@pytest.fixture
def editable_mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A mirror of a copy of the fixtures; the test edits the files it serves."""
    root = tmp_path / "www"
    shutil.copytree(FIXTURES, root)
    with _serve(functools.partial(_Quiet, directory=str(root))) as url:
        yield url, root / "mmz4281"


def _pull(*options: str) -> int:
    return main(["data", "pull", "football", *options])


def _pull_e0(
    url: str, dest: Path, *extra: str, leagues: str = "E0", season: str = "2021-2022"
) -> int:
    """``data pull football`` of one season from ``url`` into ``dest``."""
    return _pull(
        "--leagues", leagues, "--seasons", season, "--dest", str(dest), "--base-url", url, *extra
    )


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


def test_pull_reports_what_the_loader_kept(mirror: str, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "football"
    assert _pull_e0(mirror, dest) == 0
    err = capsys.readouterr().err
    assert f"pulled {dest / 'E0' / '2021-2022.csv'} (12 of 12 matches kept)\n" in err


def test_smaller_download_is_refused_unless_asked(
    editable_mirror: tuple[str, Path], tmp_path: Path, capsys
) -> None:
    url, served = editable_mirror
    dest = tmp_path / "football"
    options = ("--leagues", "E0", "--seasons", "2021-2022", "--dest", str(dest), "--base-url", url)
    assert _pull(*options) == 0
    target = dest / "E0" / "2021-2022.csv"
    good = target.read_bytes()
    source = served / "2122" / "E0.csv"
    source.write_bytes(b"".join(source.read_bytes().splitlines(keepends=True)[:4]))
    capsys.readouterr()

    assert _pull(*options) == 2
    err = capsys.readouterr().err
    assert "would replace 12 matches with 3: keeping the existing file" in err
    assert "pulled" not in err
    assert target.read_bytes() == good

    assert _pull(*options, "--replace-smaller") == 0
    assert f"pulled {target} (3 of 3 matches kept)" in capsys.readouterr().err
    assert target.read_bytes() == source.read_bytes()


def test_header_only_download_is_an_error(
    editable_mirror: tuple[str, Path], tmp_path: Path, capsys
) -> None:
    url, served = editable_mirror
    source = served / "2122" / "E0.csv"
    source.write_bytes(source.read_bytes().splitlines(keepends=True)[0])
    assert _pull_e0(url, tmp_path / "football") == 2
    assert f"{url}/2122/E0.csv: no matches" in capsys.readouterr().err
    assert not (tmp_path / "football").exists()


def test_files_pulled_before_a_failure_are_listed(mirror: str, tmp_path: Path, capsys) -> None:
    status = _pull_e0(mirror, tmp_path, leagues="E0,D1", season="2022-2023")
    assert status == 2  # the fixture set has no D1 2022-23
    err = capsys.readouterr().err
    landed = f"pulled {tmp_path / 'E0' / '2022-2023.csv'} (12 of 12 matches kept)"
    assert landed in err
    assert err.index(landed) < err.index(f"{mirror}/2223/D1.csv: HTTP 404")


@pytest.mark.parametrize(
    ("option", "value"), [("--seasons", ","), ("--leagues", ""), ("--leagues", " , ")]
)
def test_empty_list_is_an_error(
    mirror: str, tmp_path: Path, capsys, option: str, value: str
) -> None:
    given = {"--leagues": "E0", "--seasons": "2021-2022", option: value}
    options = [part for pair in given.items() for part in pair]
    status = _pull(*options, "--dest", str(tmp_path), "--base-url", mirror)
    assert status == 2
    assert f"{option} {value!r} names no" in capsys.readouterr().err
    assert list(tmp_path.rglob("*")) == []


def test_timeout_bounds_a_hanging_server(tmp_path: Path, capsys) -> None:
    handler = type("Handler", (_Hanging,), {"release": threading.Event()})
    started = time.monotonic()
    try:
        with _serve(handler) as url:
            status = _pull_e0(url, tmp_path, "--timeout", "1")
            elapsed_s = time.monotonic() - started
    finally:
        handler.release.set()
    assert status == 2
    assert elapsed_s < 2.0
    assert f"{url}/2122/E0.csv: " in (err := capsys.readouterr().err)
    assert "the 1 s limit" in err


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_timeout_must_be_a_positive_whole_number(value: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        _pull(
            "--leagues", "E0", "--seasons", "2021-2022", "--dest", str(tmp_path), "--timeout", value
        )
    assert info.value.code == 2


class _Oversized(BaseHTTPRequestHandler):
    """Announces a body far over the size limit (and sends a little of it)."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(1 << 30))
        self.end_headers()
        with contextlib.suppress(OSError):
            self.wfile.write(b"x" * 1000)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_oversized_answer_is_an_error_naming_the_url_and_limit(tmp_path: Path, capsys) -> None:
    with _serve(_Oversized) as url:
        status = _pull_e0(url, tmp_path, "--timeout", "5")
    assert status == 2
    err = capsys.readouterr().err
    assert f"{url}/2122/E0.csv: the answer's Content-Length 1,073,741,824 is over the " in err
    assert "33,554,432-byte size limit" in err
    assert list(tmp_path.rglob("*.csv")) == []


class _RedirectElsewhere(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(302)
        self.send_header("Location", "https://mirror.invalid/2122/E0.csv")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_redirect_to_another_host_is_an_error_naming_both(tmp_path: Path, capsys) -> None:
    with _serve(_RedirectElsewhere) as url:
        status = _pull_e0(url, tmp_path)
    assert status == 2
    err = capsys.readouterr().err
    assert (
        f"refusing HTTP 302 redirect from {url}/2122/E0.csv to https://mirror.invalid/2122/E0.csv"
        in err
    )
    assert list(tmp_path.rglob("*.csv")) == []


def test_every_file_is_tried_and_every_failure_named(mirror: str, tmp_path: Path, capsys) -> None:
    """A 404 on the first season stopped the command: the seasons after it were never tried."""
    dest = tmp_path / "football"
    status = _pull_e0(mirror, dest, leagues="E0,D1", season="2020-2021,2021-2022")
    assert status == 2
    err = capsys.readouterr().err
    assert f"pulled {dest / 'E0' / '2021-2022.csv'} (12 of 12 matches kept)\n" in err
    assert f"pulled {dest / 'D1' / '2021-2022.csv'} (10 of 10 matches kept)\n" in err
    assert err.endswith(
        "marketcast: error: 2 of 4 files not pulled:\n"
        f"  {mirror}/2021/E0.csv: HTTP 404 File not found\n"
        f"  {mirror}/2021/D1.csv: HTTP 404 File not found\n"
    )
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "D1",
        "D1/2021-2022.csv",
        "E0",
        "E0/2021-2022.csv",
    ]


def test_another_leagues_file_is_refused(
    editable_mirror: tuple[str, Path], tmp_path: Path, capsys
) -> None:
    """E1's season (as many matches or more) served at E0's URL replaced the E0 file."""
    url, served = editable_mirror
    dest = tmp_path / "football"
    assert _pull_e0(url, dest) == 0
    target = dest / "E0" / "2021-2022.csv"
    good = target.read_bytes()
    source = served / "2122" / "E0.csv"
    source.write_bytes(good.replace(b"\nE0,", b"\nE1,"))
    capsys.readouterr()
    assert _pull_e0(url, dest) == 2
    assert capsys.readouterr().err == (
        f"marketcast: error: {url}/2122/E0.csv: asked for league E0, but the file's Div column "
        f"says E1 (12 of 12 matches): keeping the existing file {target}\n"
    )
    assert target.read_bytes() == good
    assert sorted(p.name for p in target.parent.iterdir()) == ["2021-2022.csv"]
