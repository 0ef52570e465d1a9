"""Renamed pairs (MATICUSDT -> POLUSDT): one series under the new name, every row counted."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.config import CryptoRunConfig, PairRename, check_pair_renames, load_crypto_config
from marketcast.data.candles import CANDLE_DROP_REASONS
from marketcast.data.validation import DataError
from marketcast.datasets.crypto import CandleData, load_candles

SPOT_HEADER = "date,open,high,low,close,volume,ticker"
OLD_START = pd.Timestamp("2024-09-09 20:00", tz="UTC")
OLD_LAST = pd.Timestamp("2024-09-10 05:00", tz="UTC")  # 10 bars, 20:00 to 05:00
NEW_START = pd.Timestamp("2024-09-13 06:00", tz="UTC")  # 3 days after the last old bar
HOUR = pd.Timedelta(hours=1)
RENAME = {"MATICUSDT": "POLUSDT"}


def spot_file(path: Path, pair: str, start: pd.Timestamp, closes: list[float]) -> Path:
    """A Binance spot file: open = previous close, a small range around it, volume 10."""
    lines = [SPOT_HEADER]
    prev = closes[0]
    for i, close in enumerate(closes):
        t = start + i * HOUR
        high, low = max(prev, close) * 1.001, min(prev, close) * 0.999
        lines.append(f"{t:%Y-%m-%d %H:%M:%S},{prev!r},{high!r},{low!r},{close!r},10.0,{pair}")
        prev = close
    path.write_text("\n".join(lines) + "\n")
    return path


def old_and_new(tmp_path: Path, new_start: pd.Timestamp = NEW_START) -> tuple[Path, Path]:
    old = spot_file(tmp_path / "MATICUSDT_1h.csv", "MATICUSDT", OLD_START,
                    [0.40 + 0.001 * i for i in range(10)])  # fmt: skip
    new = spot_file(tmp_path / "POLUSDT_1h.csv", "POLUSDT", new_start,
                    [0.42 + 0.001 * i for i in range(5)])  # fmt: skip
    return old, new


def assert_rows_add_up(data: CandleData) -> None:
    report = data.report
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())
    out = len(data.candles) + len(data.funding) + len(data.open_interest)
    assert out == report.rows_kept + report.repaired.get("gap_bars_filled", 0)


# --- loading ------------------------------------------------------------------------------------


def test_renamed_pair_is_one_series_under_the_new_name_with_the_gap_left_open(
    tmp_path: Path,
) -> None:
    """Without the rename POLUSDT started cold and MATICUSDT's history was lost to it."""
    old, new = old_and_new(tmp_path)
    cold = load_candles([old, new])
    assert cold.pairs == ["MATICUSDT", "POLUSDT"]

    data = load_candles([old, new], pair_renames=RENAME)
    candles, report = data.candles, data.report
    assert data.pairs == ["POLUSDT"]
    expected_times = [OLD_START + i * HOUR for i in range(10)] + [
        NEW_START + i * HOUR for i in range(5)
    ]
    assert candles["open_time_utc"].tolist() == expected_times
    np.testing.assert_array_equal(  # MATIC's bars, then POL's, values as read
        candles["close"].to_numpy(),
        np.r_[cold.candles.loc[cold.candles["pair"] == "MATICUSDT", "close"],
              cold.candles.loc[cold.candles["pair"] == "POLUSDT", "close"]],
    )  # fmt: skip
    assert report.repaired["pair_renamed"] == 10
    assert report.dropped["rename_overlap"] == 0
    issue = next(i for i in report.issues if i.reason == "pair_renamed")
    assert (issue.file, issue.value) == (str(old), "MATICUSDT -> POLUSDT: 10 rows")
    # the 3-day migration gap is a long gap like any outage: open, listed, never filled
    assert not candles["repaired"].any()
    assert "gap_bars_filled" not in report.repaired
    assert (report.gaps_left, report.gap_bars_missing) == (1, 72)
    gap = data.gaps.iloc[0]
    assert (gap["pair"], gap["missing_bars"], bool(gap["repaired"])) == ("POLUSDT", 72, False)
    assert (gap["gap_start_utc"], gap["gap_end_utc"]) == (OLD_LAST + HOUR, NEW_START - HOUR)
    gap_issue = next(i for i in report.issues if i.reason == "gap_left")
    assert gap_issue.file == str(old)
    assert_rows_add_up(data)


def test_the_joined_series_is_the_one_pair_with_a_gap_would_be(tmp_path: Path) -> None:
    """The rename adds nothing but the name: the same bars in one POLUSDT file load the same
    (same gap, same repairs), so features and the universe see one pair with a long outage."""
    old, new = old_and_new(tmp_path)
    joined = load_candles([old, new], pair_renames=RENAME)
    text = old.read_text().replace("MATICUSDT", "POLUSDT")
    text += new.read_text().split("\n", 1)[1]  # without its header
    (tmp_path / "one").mkdir()
    one = load_candles([write_text(tmp_path / "one" / "POLUSDT_1h.csv", text)])
    pd.testing.assert_frame_equal(joined.candles, one.candles)
    pd.testing.assert_frame_equal(joined.gaps, one.gaps)


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_where_the_series_overlap_the_new_pair_wins_and_the_overlap_is_counted(
    tmp_path: Path,
) -> None:
    old, new = old_and_new(tmp_path, new_start=OLD_LAST)  # one hour in both files
    data = load_candles([new, old], pair_renames=RENAME)  # read order does not decide
    candles, report = data.candles, data.report
    assert data.pairs == ["POLUSDT"]
    assert len(candles) == 10 + 5 - 1
    assert candles["open_time_utc"].is_unique
    at_overlap = candles.loc[candles["open_time_utc"] == OLD_LAST].iloc[0]
    assert at_overlap["close"] == 0.42  # POL's first close, not MATIC's last (0.409)
    assert report.repaired["pair_renamed"] == 10
    assert report.dropped["rename_overlap"] == 1
    assert report.dropped["duplicate_bar"] == report.dropped["conflicting_duplicate"] == 0
    issue = next(i for i in report.issues if i.reason == "rename_overlap")
    assert (issue.file, issue.row) == (str(old), 11)  # MATIC's last bar, line 11 of its file
    assert "MATICUSDT 2024-09-10 05:00 dropped" in str(issue.value)
    assert report.gaps_left == 0
    assert not candles["repaired"].any()
    assert_rows_add_up(data)
    # dropping instead of raising: the overlap is a handled quirk, not a bad row
    strict = load_candles([new, old], pair_renames=RENAME, on_error="raise")
    pd.testing.assert_frame_equal(strict.candles, candles)


def test_funding_and_open_interest_are_renamed_and_the_new_pair_wins(tmp_path: Path) -> None:
    eight_h = 8 * 3_600_000
    base = int(OLD_START.timestamp() * 1000)
    funding = ["timestamp,symbol,funding_rate"]
    funding += [f"{base + k * eight_h},MATICUSDT,0.000{k + 1}" for k in range(3)]
    funding += [f"{base + (2 + k) * eight_h + 5},POLUSDT,-0.000{k + 1}" for k in range(2)]
    (tmp_path / "funding.csv").write_text("\n".join(funding) + "\n")
    oi = ["timestamp,symbol,sum_open_interest,sum_open_interest_value"]
    oi += [f"{base + k * 3_600_000},MATICUSDT,100,40" for k in range(2)]
    oi += [f"{base + 3_600_000},POLUSDT,200,84"]
    (tmp_path / "oi.csv").write_text("\n".join(oi) + "\n")

    data = load_candles([tmp_path], pair_renames=RENAME)
    assert data.funding["pair"].unique().tolist() == ["POLUSDT"]
    # MATIC's third event and POL's first round to the same second: POL's is kept
    assert data.funding["funding_rate"].tolist() == [0.0001, 0.0002, -0.0001, -0.0002]
    assert data.open_interest["open_interest"].tolist() == [100.0, 200.0]
    report = data.report
    assert report.repaired["pair_renamed"] == 3 + 2
    assert report.dropped["rename_overlap"] == 1 + 1
    assert report.dropped["duplicate_funding"] == report.dropped["duplicate_open_interest"] == 0
    assert_rows_add_up(data)


def test_a_redenomination_is_put_in_new_units(tmp_path: Path) -> None:
    """``new_per_old``: one old token became that many new ones; quote volume is unchanged."""
    old, new = old_and_new(tmp_path)
    plain = load_candles([old]).candles
    rename = {"MATICUSDT": PairRename(to="POLUSDT", new_per_old=1000)}
    data = load_candles([old, new], pair_renames=rename)
    moved = data.candles.iloc[:10]
    for col in ("open", "high", "low", "close"):
        np.testing.assert_allclose(moved[col], plain[col] / 1000, rtol=1e-15)
    np.testing.assert_allclose(moved["volume"], plain["volume"] * 1000, rtol=1e-15)
    np.testing.assert_array_equal(moved["quote_volume"], plain["quote_volume"])
    assert data.report.repaired["pair_rescaled"] == 10
    assert "1000 new per old" in next(
        str(i.value) for i in data.report.issues if i.reason == "pair_renamed"
    )
    # these files' POL prices are MATIC's (a 1:1 swap): the join jumps 1000x, and says so
    jump = next(i for i in data.report.issues if i.reason == "rename_price_jump")
    assert (jump.file, jump.row) == (str(old), 11)  # MATIC's last bar
    assert "last close 0.000409 (in new units), first open 0.42, 1.03e+03x" in str(jump.value)
    one_to_one = load_candles([old, new], pair_renames=RENAME).report.issues
    assert not [i for i in one_to_one if i.reason == "rename_price_jump"]


def test_asking_for_a_pair_reads_the_pair_it_was_renamed_from(tmp_path: Path) -> None:
    old_and_new(tmp_path)
    spot_file(tmp_path / "BTCUSDT_1h.csv", "BTCUSDT", OLD_START, [100.0, 101.0, 102.0])
    for wanted in (["POLUSDT"], ["MATIC/USDT"]):
        data = load_candles([tmp_path], pairs=wanted, pair_renames=RENAME)
        assert data.pairs == ["POLUSDT"]
        assert len(data.candles) == 15
        assert data.report.rows_read == 15  # BTC's rows are not read, as without renames


def test_without_renames_loading_is_unchanged(tmp_path: Path) -> None:
    old, new = old_and_new(tmp_path, new_start=OLD_LAST)
    before = load_candles([old, new])
    for renames in (None, {}):
        again = load_candles([old, new], pair_renames=renames)
        pd.testing.assert_frame_equal(again.candles, before.candles)
        pd.testing.assert_frame_equal(again.gaps, before.gaps)
        assert again.report.to_dict() == before.report.to_dict()
    report = before.report.to_dict()
    assert "rename_overlap" not in report["dropped"]
    assert set(report["dropped"]) == set(CANDLE_DROP_REASONS)
    assert "pair_renamed" not in report["repaired"]
    assert before.pairs == ["MATICUSDT", "POLUSDT"]


def test_bad_renames_given_to_the_loader_name_the_argument(tmp_path: Path) -> None:
    old, new = old_and_new(tmp_path)
    with pytest.raises(ValueError, match=r"^pair_renames\.MATIC: 'MATIC' is not a pair symbol"):
        load_candles([old, new], pair_renames={"MATIC": "POLUSDT"})


# --- config -------------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crypto.yaml"
    path.write_text("vertical: crypto\n" + text)
    return path


def test_config_reads_renames_in_any_spelling_and_with_a_ratio(tmp_path: Path) -> None:
    text = "pair_renames:\n  matic/usdt: POL-USDT\n  BTTUSDT: {to: BTTCUSDT, new_per_old: 1000}\n"
    config = load_crypto_config(write_config(tmp_path, text))
    assert config.pair_renames == {
        "MATICUSDT": PairRename(to="POLUSDT"),
        "BTTUSDT": PairRename(to="BTTCUSDT", new_per_old=1000.0),
    }
    assert config.model_dump(mode="json")["pair_renames"]["MATICUSDT"] == {
        "to": "POLUSDT",
        "new_per_old": 1.0,
    }
    assert check_pair_renames(config.pair_renames) == config.pair_renames  # the loader's check


def test_a_config_without_renames_dumps_as_before() -> None:
    """The manifest's config (and its hash) of a run without renames does not change."""
    assert "pair_renames" not in CryptoRunConfig().model_dump(mode="json")
    shipped = load_crypto_config("configs/experiments/crypto.yaml")
    assert shipped.pair_renames == {}
    assert "pair_renames" not in shipped.model_dump(mode="json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pair_renames: {MATIC: POLUSDT}", "field 'pair_renames': pair_renames.MATIC: "
         "'MATIC' is not a pair symbol"),
        ("pair_renames: {MATICUSDT: POL}", "pair_renames.MATICUSDT: 'POL' is not a pair symbol"),
        ("pair_renames: {MATICUSDT: MATIC/USDT}", "pair_renames.MATICUSDT: renames MATICUSDT "
         "to itself"),
        ("pair_renames: {MATICUSDT: POLUSDC}", "pair_renames.MATICUSDT: MATICUSDT -> POLUSDC "
         "changes the quote asset (USDT to USDC)"),
        ("pair_renames: {MATICUSDT: POLUSDT, POLUSDT: NEWUSDT}", "pair_renames.POLUSDT: POLUSDT "
         "is the new name of MATICUSDT and is renamed again (a chain or a cycle)"),
        ("pair_renames: {MATICUSDT: POLUSDT, POLUSDT: MATICUSDT}", "(a chain or a cycle)"),
        ("pair_renames: {AUSDT: POLUSDT, BUSDT: POLUSDT}", "pair_renames: AUSDT and BUSDT become "
         "POLUSDT: one old pair per new pair"),
        ("pair_renames: {MATICUSDT: POLUSDT, matic/usdt: POLUSDT}", "pair_renames.matic/usdt: "
         "MATICUSDT is renamed twice"),
        ("pair_renames: {MATICUSDT: {to: POLUSDT, new_per_old: 0}}",
         "field 'pair_renames.MATICUSDT.new_per_old': Input should be greater than 0"),
        ("pair_renames: {MATICUSDT: {to: POLUSDT, ratio: 2}}",
         "field 'pair_renames.MATICUSDT.ratio': unknown key"),
        ("pair_renames: [MATICUSDT, POLUSDT]",
         "field 'pair_renames': Input should be a valid dictionary"),
        ("pair_renames: {MATICUSDT: POLUSDT}\npairs: [matic/usdt, BTCUSDT]",
         "pairs: MATICUSDT renamed by pair_renames: list the new name (POLUSDT)"),
    ],
)  # fmt: skip
def test_a_bad_rename_in_the_config_names_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write_config(tmp_path, text + "\n")
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.")) as caught:
        load_crypto_config(path)
    assert message in str(caught.value)


# --- the run and the server apply the renames ---------------------------------------------------


def test_a_run_prepares_the_renamed_pair_as_one_series(tmp_path: Path) -> None:
    """`pair_renames` was checked and then ignored: the run loaded MATIC and POL apart."""
    from marketcast.orchestration.crypto import prepare_crypto

    old, new = old_and_new(tmp_path)
    config = CryptoRunConfig(pair_renames=RENAME, data={"paths": [str(old), str(new)]})  # type: ignore[arg-type]
    prepared = prepare_crypto(config)
    assert prepared.data.pairs == ["POLUSDT"]
    assert prepared.data.report.repaired["pair_renamed"] == 10
    summary = prepared.data.report.summary("rows")  # the line run and evaluate print
    assert "10 rows of renamed pairs joined to the new names (pair_renamed)" in summary
    assert set(prepared.features["pair"]) == {"POLUSDT"}
    plain = prepare_crypto(CryptoRunConfig(data={"paths": [str(old), str(new)]}))  # type: ignore[arg-type]
    assert plain.data.pairs == ["MATICUSDT", "POLUSDT"]


def test_the_server_reads_renames_from_the_environment_and_applies_them(tmp_path: Path) -> None:
    from marketcast.registry import Registry
    from marketcast.serving.crypto import CryptoService, CryptoSettings
    from marketcast.serving.settings import SettingsEnvError

    old, new = old_and_new(tmp_path)
    env = {
        "MARKETCAST_CRYPTO_CANDLES": f"{old}{os.pathsep}{new}",
        "MARKETCAST_CRYPTO_PAIR_RENAMES": "MATICUSDT=POLUSDT, BTTUSDT=BTTCUSDT*1000",
    }
    settings = CryptoSettings.from_env(env)
    assert settings.pair_renames == {
        "MATICUSDT": PairRename(to="POLUSDT"),
        "BTTUSDT": PairRename(to="BTTCUSDT", new_per_old=1000.0),
    }
    service = CryptoService(Registry(str(tmp_path / "registry")), settings)
    assert service.snapshot().store.pairs == ("POLUSDT",)
    for bad, match in (
        ("MATICUSDT", "is not OLD=NEW"),
        ("MATICUSDT=", "is not OLD=NEW"),
        ("MATICUSDT=POLUSDC", "changes the quote asset"),
        ("MATICUSDT=POLUSDT*abc", "must be a number .field pair_renames.MATICUSDT.new_per_old"),
        ("MATICUSDT=POLUSDT*0", "must be > 0"),
        ("MATICUSDT=POLUSDT,matic/usdt=XUSDT", "MATICUSDT|matic/usdt is renamed twice"),
    ):
        # one line naming the variable and its text, as the server's own settings say it
        variable = re.escape(f"MARKETCAST_CRYPTO_PAIR_RENAMES={bad!r}: ")
        with pytest.raises(SettingsEnvError, match=f"^{variable}.*({match})") as caught:
            CryptoSettings.from_env({"MARKETCAST_CRYPTO_PAIR_RENAMES": bad})
        assert "\n" not in str(caught.value)
    with pytest.raises(
        SettingsEnvError, match=r"^MARKETCAST_CRYPTO_WINDOW_BARS='5': must be >= 200 "
    ):
        CryptoSettings.from_env({"MARKETCAST_CRYPTO_WINDOW_BARS": "5"})


# --- renames that cannot be right ---------------------------------------------------------------


def test_a_rename_of_a_pair_with_no_rows_is_reported_not_silent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt old name (MATCIUSDT) was accepted and renamed nothing, without a word."""
    old, new = old_and_new(tmp_path)
    with caplog.at_level("WARNING", logger="marketcast.datasets.crypto"):
        data = load_candles([old, new], pair_renames={"MATCIUSDT": "POLUSDT"})
    assert data.pairs == ["MATICUSDT", "POLUSDT"]
    issue = next(i for i in data.report.issues if i.reason == "rename_unused")
    assert (
        issue.value
        == "MATCIUSDT -> POLUSDT: no rows of MATCIUSDT were read, so nothing was renamed"
    )
    assert "MATCIUSDT -> POLUSDT: no rows" in caplog.text
    # asking for other pairs only: the rename's files were not read on purpose, no warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="marketcast.datasets.crypto"):
        load_candles([old], pairs=["MATICUSDT"], pair_renames={"ETHUSDT": "ETHWUSDT"})
    assert "rename" not in caplog.text


def test_a_rename_the_wrong_way_round_is_an_error(tmp_path: Path) -> None:
    """POLUSDT -> MATICUSDT dropped every POL row as overlap, saying so only in a count."""
    old, new = old_and_new(tmp_path)
    expected = (
        r"POLUSDT -> MATICUSDT, but POLUSDT's rows start 2024-09-13 06:00, not before "
        r"MATICUSDT's \(2024-09-09 20:00\).*wrong way"
    )
    with pytest.raises(DataError, match=expected):
        load_candles([old, new], pair_renames={"POLUSDT": "MATICUSDT"})


def test_placeholder_bars_of_the_new_pair_do_not_start_its_series(tmp_path: Path) -> None:
    """Zero-volume placeholders (Binance's pre-listing OHLC) under the new name made the
    overlap start there: real bars of the old pair were dropped and the gap grew."""
    old, new = old_and_new(tmp_path)
    lines = new.read_text().splitlines()
    early = OLD_START + 5 * HOUR  # a placeholder inside MATIC's trading
    lines.insert(1, f"{early:%Y-%m-%d %H:%M:%S},0.4,0.4,0.4,0.4,0.0,POLUSDT")
    new.write_text("\n".join(lines) + "\n")
    data = load_candles([old, new], pair_renames=RENAME)
    dropped = data.report.dropped
    assert dropped["rename_overlap"] == 0  # before: MATIC's bars from 01:00 on, 5 of them
    assert (data.candles["open_time_utc"] < NEW_START).sum() == 10  # MATIC's 10 bars all kept
    # the placeholder itself goes, as the copy of MATIC's 01:00 bar under the new name
    assert dropped["zero_volume"] + dropped["conflicting_duplicate"] == 1


def test_data_check_with_a_config_joins_its_renamed_pairs(tmp_path: Path) -> None:
    """`data check` took no config: MATICUSDT and POLUSDT were checked as two pairs."""
    import json

    from marketcast.cli import main

    old, new = old_and_new(tmp_path)
    config = write_config(tmp_path, f"data: {{paths: ['{tmp_path}']}}\npair_renames: {RENAME}\n")
    out = tmp_path / "report.json"
    assert main(["data", "check", "--config", str(config), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert "football" not in report  # a crypto config checks its candles only
    assert (report["rows_kept"], report["repaired"]["pair_renamed"]) == (15, 10)
    assert main(["data", "check", str(old), str(new), "--json", str(out)]) == 0
    assert "pair_renamed" not in json.loads(out.read_text())["repaired"]
