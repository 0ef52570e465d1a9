"""CLI audit fixes: ``--json`` never replaces a data file the command reads (it did, exit 0);
``evaluate crypto --config`` keeps the config's window as football does (it ignored it); blank
registry arguments, a bookmaker that prices nothing, and an unreachable registry URL are errors
naming what is wrong."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from marketcast.cli import QUIET_LIBRARIES, main
from marketcast.config import load_crypto_config
from marketcast.orchestration.commands import _window

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "E0"
    folder.mkdir(parents=True)
    shutil.copy(FIXTURES / "2122" / "E0.csv", folder / "2021-2022.csv")
    return folder


def test_data_check_refuses_a_json_target_that_is_its_input_file(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = data / "2021-2022.csv"
    before = csv.read_bytes()
    assert main(["data", "check", str(csv), "--json", str(csv)]) == 2
    assert csv.read_bytes() == before
    assert "is a data file read from" in capsys.readouterr().err


def test_evaluate_refuses_a_json_target_inside_its_data_folder(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = data / "2021-2022.csv"
    before = csv.read_bytes()
    folder = str(data.parent)
    code = main(
        ["evaluate", "football", "--data", folder, "--start", "2021-08-20", "--json", str(csv)]
    )
    assert code == 2
    assert csv.read_bytes() == before
    assert f"is a data file read from {folder}" in capsys.readouterr().err


def test_a_new_json_file_beside_the_data_is_fine(data: Path) -> None:
    """A report written into the data folder is no data file: only an existing CSV is refused."""
    out = data / "report.json"
    assert main(["data", "check", str(data), "--json", str(out)]) == 0
    assert out.is_file()
    # and run again over it: a JSON file is not read, so not refused
    assert main(["data", "check", str(data), "--json", str(out)]) == 0


def _crypto_config(tmp_path: Path, walk_forward: str) -> str:
    path = tmp_path / "crypto.yaml"
    path.write_text(f"vertical: crypto\nwalk_forward: {{{walk_forward}}}\n")
    return str(path)


def test_evaluate_crypto_refuses_a_config_start_other_than_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The config's walk_forward window was ignored without a word (football refused it)."""
    config = _crypto_config(tmp_path, "start: '2023-01-01'")
    args = ["evaluate", "crypto", "--data", str(tmp_path), "--start", "2023-02-01"]
    assert main([*args, "--config", config, "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "field 'walk_forward.start': 2023-01-01 is not --start 2023-02-01" in err


def test_evaluate_crypto_takes_the_configs_end_when_end_is_left_out(tmp_path: Path) -> None:
    config_path = _crypto_config(tmp_path, "end: '2023-05-15'")
    config = load_crypto_config(config_path)
    assert _window(config, config_path, "2023-05-01", None) == "2023-05-15"
    with pytest.raises(ValueError, match=r"field 'walk_forward\.end': 2023-05-15 is not --end"):
        _window(config, config_path, "2023-05-01", "2023-06-30")
    # the default start (2022-07-01), not in the file, is no conflict; nor is the default config
    other = _crypto_config(tmp_path, "step_days: 10")
    assert _window(load_crypto_config(other), other, "2023-01-01", "2023-02-01") == "2023-02-01"
    assert _window(load_crypto_config(None), None, "2023-01-01", None) is None


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["registry", "--root", "", "list"], "--root"),
        (["registry", "publish", "--to", " "], "--to"),
        (["registry", "promote", "football/1x2/market", ""], "version"),
        (["registry", "show", "football/1x2/market", "--version", ""], "--version"),
        (["registry", "rollback", ""], "name"),
        (["registry", "publish", "--to", "t", ""], "name"),  # published every vertical
        # an empty path (an unset "$DIR") was the current folder, or no file at all
        (["evaluate", "football", "--data", "", "--start", "2022-04-01", "--json", "e.json"],
         "--data"),  # read the current folder
        (["evaluate", "football", "--data", "x.csv", "--start", "2022-04-01", "--json", ""],
         "--json"),
        (["evaluate", "crypto", "--data", " ", "--start", "2022-04-01", "--json", "e.json"],
         "--data"),
        (["data", "check", ""], "paths"),  # read the current folder, 1,188 files not read
        (["data", "check", "x.csv", "--json", ""], "--json"),  # wrote no JSON, said nothing
        (["data", "pull", "football", "--leagues", "E0", "--seasons", "2021-2022", "--dest", ""],
         "--dest"),  # pulled into the current folder
        (["data", "pull", "football", "--leagues", "E0", "--seasons", "2021-2022",
          "--base-url", ""], "--base-url"),
        (["run", "--config", ""], "--config"),
        (["data", "check", "--config", " "], "--config"),
    ],
)  # fmt: skip
def test_a_blank_argument_is_refused_naming_it(
    args: list[str],
    named: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--to ''`` published into the current folder, ``--version ''`` showed the latest
    version, and ``promote NAME ''`` ended in an AssertionError traceback."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    assert f"argument {named}: must not be empty" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written where it ran


def test_a_bookmaker_that_prices_nothing_is_named_with_its_config_file(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The error named the key but not the file it came from, which the README promises."""
    config = tmp_path / "bk.yaml"
    config.write_text("backtest: {bookmaker: zzz}\nmodels: [market]\n")
    args = ["evaluate", "football", "--data", str(data.parent), "--start", "2021-08-20"]
    assert main([*args, "--config", str(config), "--json", str(tmp_path / "o.json")]) == 2
    assert f"{config}, field 'backtest.bookmaker': 'zzz' prices nothing" in capsys.readouterr().err


def test_a_registry_url_that_refuses_the_connection_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The error was a bare '[Errno 111] Connection refused', naming no URL."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"ftp://127.0.0.1:{port}/registry"
    assert main(["registry", "--root", url, "list"]) == 2
    assert f"cannot open registry {url}: " in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "payload", "said"),
    [
        ("binary.csv", b"\x00\x01\x02 not text", "binary data (NUL bytes), not CSV text"),
        (
            "BTCUSDT_1h.csv",
            b"date,open,high,low,close,volume,ticker\n2022-01-01 00:00:00,1,2,0.5,1.5,10,BTCUSDT\n",
            "an exchange candle file: `marketcast evaluate crypto` reads it",
        ),
    ],
)
def test_evaluate_football_says_what_a_file_it_cannot_read_is(
    name: str, payload: bytes, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "row 1, field 'Date': missing required column", where data check knew better."""
    (tmp_path / name).write_bytes(payload)
    args = ["evaluate", "football", "--data", str(tmp_path / name), "--start", "2022-01-01"]
    assert main([*args, "--json", str(tmp_path / "o.json")]) == 2
    assert f"{tmp_path / name}: {said}" in capsys.readouterr().err


def test_an_empty_football_window_says_where_the_data_lies(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Crypto's empty-window error gave the data's span; football's did not."""
    args = ["evaluate", "football", "--data", str(data.parent), "--start", "2030-01-01"]
    assert main([*args, "--models", "market", "--json", str(tmp_path / "o.json")]) == 2
    err = capsys.readouterr().err
    assert "no matches fall in the evaluation window (the data's matches kick off from 2021-" in err


def test_a_failed_evaluate_leaves_no_folder_made_for_its_json(data: Path, tmp_path: Path) -> None:
    """The --json check made the missing folders, and a run that then failed left them."""
    target = tmp_path / "a" / "b" / "eval.json"
    args = ["evaluate", "football", "--data", str(data.parent), "--start", "2030-01-01"]
    assert main([*args, "--models", "market", "--json", str(target)]) == 2
    assert not (tmp_path / "a").exists()


def test_serve_names_a_port_in_use_and_a_host_that_does_not_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn said "address already in use" or "Name or service not known" (exit 3), naming
    neither; both are refused before any training starts."""
    monkeypatch.chdir(tmp_path)  # an empty registry here would start a training
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
        assert f"cannot listen on 127.0.0.1:{port}: " in capsys.readouterr().err
    assert main(["serve", "--host", "999.1.1.1"]) == 2
    assert "--host 999.1.1.1: cannot listen there" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no registry made, nothing trained


def test_verbose_logs_marketcast_at_debug_and_not_the_libraries(tmp_path: Path) -> None:
    """`-v` wrote hundreds of matplotlib font-manager DEBUG lines before marketcast's own."""
    import logging

    try:
        assert main(["-v", "registry", "--root", str(tmp_path), "list"]) == 0
        assert logging.getLogger("matplotlib.font_manager").getEffectiveLevel() == logging.INFO
    finally:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)
