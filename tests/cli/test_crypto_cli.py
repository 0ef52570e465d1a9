"""``marketcast evaluate crypto`` and ``data check`` on exchange candle files."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from marketcast.cli import main
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs


@pytest.fixture(scope="module")
def candle_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two pairs, 2022-11 to 2023-06, history and test period in the same files."""
    folder = tmp_path_factory.mktemp("candles")
    for name, data in read_archive_csvs(BUNDLED_CRYPTO):
        if not name.endswith(("BTCUSDT_1h.csv", "ETHUSDT_1h.csv")):
            continue
        frame = pd.read_csv(io.BytesIO(data))
        frame = frame.loc[frame["date"] >= "2022-11-01"]
        frame.to_csv(folder / Path(name).name, index=False)
    return folder


def test_evaluate_crypto_writes_the_contract_json(candle_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "crypto.json"
    code = main(
        [
            "evaluate",
            "crypto",
            "--data",
            str(candle_folder),
            "--start",
            "2023-05-01",
            "--horizons",
            "4h,1d",
            "--models",
            "flat,momentum,logistic",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text())
    assert result["pairs"] == 2
    assert result["skipped_pairs"] == []  # both traded; the list names any pair that never could
    assert set(result["horizons"]) == {"4h", "1d"}
    for section in result["horizons"].values():
        assert set(section["models"]) == {"flat", "momentum", "logistic"}
        assert section["champion"] in section["models"]
        assert {"sharpe", "net_return", "max_drawdown"} <= set(section["buy_and_hold"])
        logistic = section["models"]["logistic"]
        assert 0.5 < logistic["log_loss"] < 1.0
        assert logistic["n_periods"] > 0
        # costs are the gap between the gross and net sums, never negative
        assert logistic["costs"] >= 0


def test_evaluate_crypto_takes_the_configs_horizons_without_the_flag(
    candle_folder: Path, tmp_path: Path
) -> None:
    """`--horizons` defaulted to all three, so a config's horizons were ignored (1h ran)."""
    config = tmp_path / "crypto.yaml"
    config.write_text("vertical: crypto\nhorizons: [1d]\nmodels: [flat, momentum]\n")
    out = tmp_path / "crypto.json"
    args = ["evaluate", "crypto", "--data", str(candle_folder), "--start", "2023-05-01"]
    assert main([*args, "--config", str(config), "--json", str(out)]) == 0
    assert set(json.loads(out.read_text())["horizons"]) == {"1d"}


def test_evaluate_crypto_rejects_an_unknown_horizon(candle_folder: Path, tmp_path: Path) -> None:
    code = main(
        [
            "evaluate",
            "crypto",
            "--data",
            str(candle_folder),
            "--start",
            "2023-05-01",
            "--horizons",
            "2h",
            "--json",
            str(tmp_path / "x.json"),
        ]
    )
    assert code == 2
    assert not (tmp_path / "x.json").exists()


def test_data_check_recognises_candle_files(candle_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert main(["data", "check", str(candle_folder), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["files_read"] == 2
    assert report["ok"] is True
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (candle_folder / "BTCUSDT_1h.csv").read_text().splitlines()
    fields = text[5].split(",")
    fields[2] = "-1"  # a negative high
    text[5] = ",".join(fields)
    (bad / "BTCUSDT_1h.csv").write_text("\n".join(text) + "\n")
    report_bad = tmp_path / "bad.json"
    # a bad bar is a counted, reported drop (then refilled as a flagged one-hour gap)
    assert main(["data", "check", str(bad), "--json", str(report_bad)]) == 0
    checked = json.loads(report_bad.read_text())
    assert checked["dropped"]["non_positive_price"] == 1
    assert checked["repaired"]["gap_bars_filled"] >= 1
    issue = checked["issues"][0]
    assert (issue["row"], issue["field"], issue["reason"]) == (6, "high", "non_positive_price")
    assert issue["file"].endswith("BTCUSDT_1h.csv")


def test_evaluate_crypto_rejects_an_end_before_the_start(
    candle_folder: Path, tmp_path: Path, capsys
) -> None:
    args = ["evaluate", "crypto", "--data", str(candle_folder), "--horizons", "1h"]
    window = ["--start", "2023-05-01", "--end", "2023-04-01", "--json", str(tmp_path / "x.json")]
    assert main([*args, *window]) == 2
    assert "--end 2023-04-01 must be after --start 2023-05-01" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_data_check_recognises_candles_behind_a_bom_or_quoted_header(
    candle_folder: Path, tmp_path: Path
) -> None:
    """Both went to the football checker (exit 1, "missing required column 'Date'")."""
    text = (candle_folder / "BTCUSDT_1h.csv").read_text()
    header, rest = text.split("\n", 1)
    (tmp_path / "bom").mkdir()
    (tmp_path / "bom" / "BTCUSDT_1h.csv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "quoted").mkdir()
    quoted = ",".join(f'"{name}"' for name in header.split(","))
    (tmp_path / "quoted" / "BTCUSDT_1h.csv").write_text(quoted + "\n" + rest)
    for case in ("bom", "quoted"):
        out = tmp_path / f"{case}.json"
        assert main(["data", "check", str(tmp_path / case), "--json", str(out)]) == 0
        assert json.loads(out.read_text())["rows_by_kind"]["candles"] > 0


def test_evaluate_crypto_refuses_a_file_it_cannot_read(
    candle_folder: Path, tmp_path: Path, capsys
) -> None:
    """It used to evaluate the other pairs and exit 0, saying only '1 unreadable'."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ETHUSDT_1h.csv").write_bytes((candle_folder / "ETHUSDT_1h.csv").read_bytes())
    lines = (candle_folder / "BTCUSDT_1h.csv").read_text().splitlines()
    lines[40] = lines[40].replace(",", ',"', 1)  # a quote that never closes
    (folder / "BTCUSDT_1h.csv").write_text("\n".join(lines) + "\n")
    args = ["evaluate", "crypto", "--data", str(folder), "--start", "2023-05-01"]
    assert main([*args, "--horizons", "1d", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert "BTCUSDT_1h.csv" in err
    assert "cannot parse CSV" in err
    assert not (tmp_path / "x.json").exists()
    # `run` refuses it too: it trained, scored and promoted on the rest, saying so only in
    # data_integrity.json
    config = tmp_path / "crypto.yaml"
    config.write_text(
        f"vertical: crypto\ndata: {{paths: [{folder}]}}\nregistry_root: {tmp_path / 'reg'}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
    )
    assert main(["run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "BTCUSDT_1h.csv" in err
    assert "cannot parse CSV" in err
    assert not (tmp_path / "reg" / "crypto").exists()


def test_evaluate_crypto_from_the_first_day_says_there_is_no_history(
    candle_folder: Path, tmp_path: Path, capsys
) -> None:
    """A KeyError leaked as "marketcast: error: 'decision_time_utc'"."""
    args = ["evaluate", "crypto", "--data", str(candle_folder), "--start", "2022-11-01"]
    window = ["--end", "2022-11-15", "--horizons", "1d", "--json", str(tmp_path / "x.json")]
    assert main([*args, *window]) == 2
    assert "--start must leave some history in the files" in capsys.readouterr().err
