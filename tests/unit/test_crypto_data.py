"""Crypto candle loaders and validation: every source quirk, the rules, the bundled spot set."""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.candles import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    MAX_ISSUES_PER_REASON,
    CandleReport,
    VendorCheck,
    vendor_mismatch,
)
from marketcast.data.validation import DataError
from marketcast.datasets.bundle import (
    BUNDLED_CRYPTO,
    build_bundle,
    read_archive_csvs,
)
from marketcast.datasets.crypto import (
    CandleData,
    detect_format,
    list_bundled_pairs,
    load_candles,
    pair_from_name,
)

REAL = Path("/work/shared/data/crypto")
SPOT_HEADER = "date,open,high,low,close,volume,ticker"
T0 = pd.Timestamp("2022-01-01 00:00", tz="UTC")


def spot_rows(
    closes: list[float],
    *,
    start: pd.Timestamp = T0,
    skip: tuple[int, ...] = (),
    pair: str = "BTCUSDT",
) -> list[list[str]]:
    """Spot rows: open = previous close, a small range around it, hours in ``skip`` left out."""
    rows = []
    prev = closes[0]
    for i, close in enumerate(closes):
        if i not in skip:
            t = start + pd.Timedelta(hours=i)
            high, low = max(prev, close) * 1.001, min(prev, close) * 0.999
            rows.append([f"{t:%Y-%m-%d %H:%M:%S}", repr(prev), repr(high), repr(low), repr(close),
                         "10.0", pair])  # fmt: skip
        prev = close
    return rows


def write_csv(path: Path, header: str, rows: list[list[str]]) -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def walk(n: int, seed: int = 0, start_price: float = 100.0) -> list[float]:
    rng = np.random.default_rng(seed)
    return (start_price * np.exp(np.cumsum(rng.normal(0, 0.004, n)))).round(4).tolist()


# --- formats, pairs, schema -------------------------------------------------------------------


def test_detect_format_and_pair_names() -> None:
    assert detect_format(["ticker", "volume", "close", "low", "high", "open", "date"]) == (
        "binance_spot"
    )
    futures = ["timestamp", "open", "high", "low", "close", "volume", "quote_volume", "trades"]
    assert detect_format(futures) == "binance_futures_um"
    assert detect_format(["timestamp", "symbol", "sum_open_interest",
                          "sum_open_interest_value"]) == "open_interest"  # fmt: skip
    assert detect_format(["Div", "Date", "HomeTeam"]) is None
    assert pair_from_name("crypto/binance_futures_um/SOLUSDT_funding_8h.csv") == "SOLUSDT"
    assert pair_from_name("Binance_ethusdt_1h.csv") == "ETHUSDT"
    assert pair_from_name("export.csv") is None


def test_spot_columns_read_by_name_and_contract_schema(tmp_path: Path) -> None:
    closes = [100.0, 101.0, 102.0]
    rows = spot_rows(closes)
    # same data with the columns in another order
    order = [6, 4, 0, 5, 2, 1, 3]
    header = ",".join(SPOT_HEADER.split(",")[k] for k in order)
    write_csv(tmp_path / "BTCUSDT_1h.csv", header, [[r[k] for k in order] for r in rows])
    data = load_candles([tmp_path])
    candles = data.candles
    assert tuple(candles.columns) == CANDLE_COLUMNS
    assert str(candles["open_time_utc"].dtype) == "datetime64[ns, UTC]"
    assert candles["pair"].tolist() == ["BTCUSDT"] * 3
    assert candles["close"].tolist() == closes
    assert candles["open"].tolist() == [100.0, 100.0, 101.0]
    assert isinstance(candles.index, pd.RangeIndex)
    # spot files have no quote volume: estimated as volume * close and flagged
    np.testing.assert_allclose(candles["quote_volume"], candles["volume"] * candles["close"])
    assert candles["quote_volume_estimated"].all()
    assert candles["trades"].isna().all()
    assert set(candles["vendor"]) == {"binance_spot"}
    assert not candles["repaired"].any()
    assert data.report.ok
    assert data.report.rows_read == data.report.rows_kept == 3


def test_futures_candles_keep_quote_volume_and_trades(tmp_path: Path) -> None:
    start_ms = 1_757_750_400_000
    rows = [[str(start_ms + i * 3_600_000), "10", "15", "9", str(10 + i), "2", f"{20 + i}.5",
             str(100 + i), str(start_ms + (i + 1) * 3_600_000 - 1)] for i in range(3)]  # fmt: skip
    header = "timestamp,open,high,low,close,volume,quote_volume,trades,close_time"
    write_csv(tmp_path / "ETHUSDT_1h.csv", header, rows)
    candles = load_candles([tmp_path / "ETHUSDT_1h.csv"]).candles
    assert candles["vendor"].tolist() == ["binance_futures_um"] * 3
    assert candles["quote_volume"].tolist() == [20.5, 21.5, 22.5]
    assert not candles["quote_volume_estimated"].any()
    assert candles["trades"].tolist() == [100.0, 101.0, 102.0]
    assert candles["open_time_utc"].iloc[0] == pd.Timestamp(start_ms, unit="ms", tz="UTC")


def test_numeric_times_that_are_no_time_are_dropped_not_read_as_1970(tmp_path: Path) -> None:
    """``inf`` became 1970-01-01 00:00 without an issue; ``0`` and ``-3600`` were kept as bars."""
    start_ms = 1_757_750_400_000
    good = [start_ms + h * 3_600_000 for h in range(5)]  # more than half: the file is read
    stamps = [str(good[0]), "inf", "1e30", "0", "-3600", *map(str, good[1:])]
    rows = [[t, "10", "15", "9", "11", "2", "20.5", "100", ""] for t in stamps]
    header = "timestamp,open,high,low,close,volume,quote_volume,trades,close_time"
    path = write_csv(tmp_path / "ETHUSDT_1h.csv", header, rows)
    data = load_candles([path], max_repair_bars=0)
    assert data.report.ok
    assert data.candles["open_time_utc"].tolist() == [
        pd.Timestamp(t, unit="ms", tz="UTC") for t in good
    ]
    dropped = {(i.row, i.reason) for i in data.report.issues if i.row is not None}
    assert dropped == {
        (3, "unparseable_timestamp"),
        (4, "unparseable_timestamp"),
        (5, "timestamp_out_of_range"),
        (6, "timestamp_out_of_range"),
    }


def test_old_mac_line_endings_read_like_the_plain_file(tmp_path: Path) -> None:
    """The header was cut at a line feed only, so a CR-only file was all header: a traceback."""
    plain = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, spot_rows(walk(5)))
    cr = tmp_path / "cr" / "BTCUSDT_1h.csv"
    cr.parent.mkdir()
    cr.write_bytes(plain.read_bytes().replace(b"\n", b"\r"))
    expected = load_candles([plain]).candles.drop(columns=["source_file"], errors="ignore")
    got = load_candles([cr]).candles.drop(columns=["source_file"], errors="ignore")
    pd.testing.assert_frame_equal(got, expected)


# --- CryptoDataDownload quirks ------------------------------------------------------------------

CDD_HEADER = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"


def test_cryptodatadownload_units_order_and_duplicates(tmp_path: Path) -> None:
    h = 3600
    base = 1_600_000_000 - 1_600_000_000 % h  # an exact hour, in seconds
    rows = [
        # newer export: milliseconds, trade counts, newest first
        [str((base + 3 * h) * 1000), "x", "BTC/USDT", "13", "14", "12", "13.5", "2", "27", "30"],
        [str((base + 2 * h) * 1000), "x", "BTC/USDT", "12", "13", "11", "12.5", "2", "25", "20"],
        [str((base + 1 * h) * 1000), "x", "BTC/USDT", "11", "12", "10", "11.5", "2", "23", "10"],
        # older export: seconds (written as floats), no trade count, overlapping two hours
        [f"{base + 2 * h}.0", "x", "BTC/USDT", "12", "13", "11", "12.5", "2", "25", "NULL"],
        [f"{base + 1 * h}.0", "x", "BTC/USDT", "11.01", "12", "10", "11.5", "2", "23", "NULL"],
        [f"{base}.0", "x", "BTC/USDT", "10", "11", "9", "10.5", "1", "10.5", "NULL"],
    ]
    write_csv(tmp_path / "export.csv", CDD_HEADER, rows)  # no pair in the name: from `symbol`
    data = load_candles([tmp_path / "export.csv"])
    candles, report = data.candles, data.report
    expected = pd.date_range(pd.Timestamp(base, unit="s", tz="UTC"), periods=4, freq="h")
    assert candles["open_time_utc"].tolist() == expected.tolist()
    assert candles["pair"].unique().tolist() == ["BTCUSDT"]
    assert candles["close"].tolist() == [10.5, 11.5, 12.5, 13.5]
    assert report.dropped["duplicate_bar"] == 1  # same values where both rows have them
    assert report.dropped["conflicting_duplicate"] == 1  # the open differs
    assert candles["open"].iloc[1] == 11.0  # the row with a trade count is kept
    assert candles["trades"].tolist()[1:] == [10.0, 20.0, 30.0]
    assert np.isnan(candles["trades"].iloc[0])
    assert candles["quote_volume"].tolist() == [10.5, 23.0, 25.0, 27.0]
    assert not candles["quote_volume_estimated"].any()
    assert report.repaired["timestamps_in_seconds"] == 3
    assert report.repaired["timestamps_in_milliseconds"] == 3
    conflict = next(i for i in report.issues if i.reason == "conflicting_duplicate")
    assert (conflict.row, conflict.field) == (6, "open")
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())


@pytest.mark.skipif(not (REAL / "cryptodatadownload").is_dir(), reason="shared data not present")
def test_real_cryptodatadownload_file_matches_its_raw_hours() -> None:
    path = REAL / "cryptodatadownload" / "ETHUSDT_1h.csv"
    with path.open() as handle:
        raw = list(csv.DictReader(handle))
    seconds = [float(r["unix"]) / (1000 if float(r["unix"]) > 1e11 else 1) for r in raw]
    hours = pd.to_datetime(seconds, unit="s", utc=True)
    zero = {t for t, r in zip(hours, raw, strict=True) if float(r["Volume ETH"]) == 0}
    data = load_candles([path], max_repair_bars=0)
    report = data.report
    assert report.dropped["duplicate_bar"] + report.dropped["conflicting_duplicate"] == (
        len(raw) - hours.nunique()
    )
    assert report.dropped["zero_volume"] == len(zero)
    assert set(data.candles["open_time_utc"]) == set(hours) - zero
    assert data.candles["open_time_utc"].is_monotonic_increasing
    assert data.candles["open_time_utc"].iloc[0] == hours.min()
    assert report.rows_read == len(raw) == report.rows_kept + sum(report.dropped.values())


# --- bar rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("high", "50", "high_below_open_close"),
        ("low", "500", "low_above_open_close"),
        ("close", "0", "non_positive_price"),
        ("volume", "-1", "negative_volume"),
        ("close", "abc", "unparseable_value"),
        ("date", "2022-13-45 99:00:00", "unparseable_timestamp"),
        ("high", "inf", "non_finite_value"),  # passed every check (only NaN was looked for)
        ("volume", "inf", "non_finite_value"),
        ("date", "1970-01-01 00:00:00", "timestamp_out_of_range"),  # before any crypto traded
        ("date", "2199-01-01 00:00:00", "timestamp_out_of_range"),  # not traded yet
    ],
)
def test_bad_row_names_file_row_and_field(
    tmp_path: Path, column: str, value: str, reason: str
) -> None:
    rows = spot_rows(walk(6))
    rows[2][SPOT_HEADER.split(",").index(column)] = value  # line 4 of the file
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, rows)
    # rules on the parsed time name the parsed column, as unaligned_timestamp does
    field = "open_time_utc" if reason == "timestamp_out_of_range" else column
    with pytest.raises(DataError) as info:
        load_candles([path], on_error="raise")
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 4, field)
    assert info.value.reason == reason
    assert f"row 4, field '{field}'" in str(info.value)

    data = load_candles([path], on_error="drop", max_repair_bars=0)
    assert data.report.dropped[reason] == 1
    issue = next(i for i in data.report.issues if i.reason == reason)
    assert (issue.file, issue.row, issue.field) == (str(path), 4, field)
    assert issue.value is not None
    if reason == "timestamp_out_of_range":
        assert issue.value.startswith(value[:10])
    elif reason.startswith("unparseable"):
        assert issue.value == value
    else:
        assert float(issue.value) == float(value)
    assert len(data.candles) == 5
    assert data.report.rows_read == 6


def test_zero_volume_placeholder_is_dropped_and_refilled(tmp_path: Path) -> None:
    closes = walk(6)
    rows = spot_rows(closes)
    rows[3][1:5] = [repr(closes[2])] * 4  # the exchange's placeholder: previous close, no volume
    rows[3][5] = "0"
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, rows)
    data = load_candles([path])
    assert data.report.dropped["zero_volume"] == 1
    bar = data.candles.iloc[3]
    assert bool(bar["repaired"])
    assert bar["volume"] == 0.0
    assert bar["close"] == closes[2]
    assert data.report.repaired["gap_bars_filled"] == 1
    unrepaired = load_candles([path], max_repair_bars=0)
    assert len(unrepaired.candles) == 5
    assert unrepaired.report.gaps_left == 1


def test_gap_repair_versus_threshold(tmp_path: Path) -> None:
    closes = walk(20)
    skip = (3, 7, 8, 9, 13, 14, 15, 16)  # gaps of 1, 3 and 4 missing hours
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, spot_rows(closes, skip=skip))
    data = load_candles([path])  # max_repair_bars=3
    candles, report = data.candles, data.report
    assert report.repaired["gaps_filled"] == 2
    assert report.repaired["gap_bars_filled"] == 4
    assert report.gaps_left == 1
    assert report.gap_bars_missing == 4
    assert len(candles) == 20 - 4
    filled = candles[candles["repaired"]]
    assert filled["open_time_utc"].tolist() == [T0 + pd.Timedelta(hours=h) for h in (3, 7, 8, 9)]
    # carried from the previous real close, flat and empty
    assert filled["close"].tolist() == [closes[2], closes[6], closes[6], closes[6]]
    assert (filled["open"] == filled["close"]).all()
    assert (filled["high"] == filled["low"]).all()
    assert (filled["volume"] == 0).all()
    left = data.gaps[~data.gaps["repaired"]].iloc[0]
    assert left["gap_start_utc"] == T0 + pd.Timedelta(hours=13)
    assert left["gap_end_utc"] == T0 + pd.Timedelta(hours=16)
    assert left["missing_bars"] == 4
    issue = next(i for i in report.issues if i.reason == "gap_left")
    assert issue.row == 12 + 2 - 4
    assert "4 bars missing" in str(issue.value)

    assert load_candles([path], max_repair_bars=0).report.gaps_left == 3
    assert load_candles([path], max_repair_bars=4).report.gaps_left == 0
    assert len(load_candles([path], max_repair_bars=4).candles) == 20
    with pytest.raises(ValueError, match="max_repair_bars"):
        load_candles([path], max_repair_bars=-1)


def test_spike_that_nothing_traded_from_is_dropped(tmp_path: Path) -> None:
    closes = walk(120, seed=3)
    rows = spot_rows(closes)
    # bar 100 closes 40 % up; bar 101 opens back at the old level: a bad print
    rows[100][4] = repr(closes[99] * 1.4)
    rows[100][2] = repr(closes[99] * 1.4)
    rows[101][1] = repr(closes[99])
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, rows)
    data = load_candles([path])
    assert data.report.dropped["spike_outlier"] == 1
    bar = data.candles.iloc[100]
    assert bool(bar["repaired"])
    assert bar["close"] == closes[99]
    issue = next(i for i in data.report.issues if i.reason == "spike_outlier")
    assert (issue.row, issue.field) == (102, "close")


def test_spike_confirmed_by_the_next_open_is_kept(tmp_path: Path) -> None:
    closes = walk(120, seed=3)
    closes[100] = closes[99] * 1.4  # real spike: the next bar opens where it closed, then reverts
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, spot_rows(closes))
    data = load_candles([path])
    assert data.report.dropped["spike_outlier"] == 0
    assert data.candles["close"].iloc[100] == closes[100]


def test_not_hourly_and_unknown_files_are_refused(tmp_path: Path) -> None:
    rows = spot_rows(walk(12))[::4]  # 4-hour bars
    four_hour = write_csv(tmp_path / "BTCUSDT_4h.csv", SPOT_HEADER, rows)
    other = write_csv(tmp_path / "notes.csv", "a,b", [["1", "2"]])
    with pytest.raises(DataError, match="not hourly"):
        load_candles([four_hour], on_error="raise")
    with pytest.raises(DataError, match="unrecognised header"):
        load_candles([other], on_error="raise")
    data = load_candles([tmp_path])
    assert not data.report.ok
    assert {e.file for e in data.report.errors} == {str(four_hour), str(other)}
    assert data.candles.empty
    assert tuple(data.candles.columns) == CANDLE_COLUMNS


# --- vendors -------------------------------------------------------------------------------------


def test_vendor_mismatch_counts_bars_above_tolerance() -> None:
    times = pd.date_range(T0, periods=4, freq="h")
    a = pd.DataFrame({"pair": "BTCUSDT", "open_time_utc": times,
                      "close": [100.0, 100.0, 100.0, 100.0], "vendor": "binance_spot",
                      "repaired": [False, False, False, True]})  # fmt: skip
    b = a.assign(close=[100.0, 100.4, 101.0, 150.0], vendor="cryptodatadownload", repaired=False)
    report = vendor_mismatch(a, b, tolerance=0.005)
    (check,) = report.vendor_checks
    assert (check.bars_compared, check.mismatches) == (3, 1)  # the repaired bar is not compared
    assert check.max_abs_rel_diff == pytest.approx(1 / 101)
    assert vendor_mismatch(a, b, tolerance=0.003).vendor_checks[0].mismatches == 2
    (issue,) = report.issues
    assert issue.reason == "vendor_mismatch"
    assert "binance_spot 100.0" in str(issue.value)
    assert report.to_dict()["vendor_checks"][0]["mismatches"] == 1


def test_load_prefers_spot_where_vendors_overlap(tmp_path: Path) -> None:
    closes = walk(6)
    write_csv(
        tmp_path / "BTCUSDT_1h.csv",
        SPOT_HEADER,
        spot_rows(closes[2:], start=T0 + pd.Timedelta(hours=2)),
    )
    rows = []
    for i in range(5):  # hours 0..4, newest first; hour 3 off by 2 %
        close = closes[i] * (1.02 if i == 3 else 1.0)
        t = int((T0 + pd.Timedelta(hours=i)).timestamp() * 1000)
        rows.insert(0, [str(t), "x", "BTC/USDT", repr(close), repr(close * 1.01),
                        repr(close * 0.99), repr(close), "1", repr(close), "5"])  # fmt: skip
    write_csv(tmp_path / "cdd_BTCUSDT_1h.csv", CDD_HEADER, rows)
    data = load_candles([tmp_path])
    candles, report = data.candles, data.report
    assert candles["vendor"].tolist() == ["cryptodatadownload"] * 2 + ["binance_spot"] * 4
    assert report.dropped["vendor_overlap"] == 3
    (check,) = report.vendor_checks
    assert (check.vendor_a, check.vendor_b) == ("binance_spot", "cryptodatadownload")
    assert (check.bars_compared, check.mismatches) == (3, 1)
    assert len(candles) == 6
    assert candles["open_time_utc"].is_unique


@pytest.mark.skipif(not (REAL / "cryptodatadownload").is_dir(), reason="shared data not present")
def test_real_spot_and_cryptodatadownload_overlap() -> None:
    data = load_candles([BUNDLED_CRYPTO, REAL / "cryptodatadownload"], pairs=["BTC/USDT"])
    (check,) = data.report.vendor_checks
    assert check.pair == "BTCUSDT"
    assert check.bars_compared > 1500
    assert check.mismatches <= 2  # provenance: identical closes except 2 hours
    candles = data.candles
    spot_start = pd.Timestamp("2021-04-04 20:00", tz="UTC")
    assert (candles.loc[candles["open_time_utc"] >= spot_start, "vendor"] == "binance_spot").all()
    assert candles["open_time_utc"].iloc[0] == pd.Timestamp("2017-08-17 04:00", tz="UTC")
    assert candles["open_time_utc"].is_unique
    assert candles["open_time_utc"].is_monotonic_increasing


# --- funding, open interest --------------------------------------------------------------------


def test_funding_times_are_rounded_to_the_second(tmp_path: Path) -> None:
    eight_h = 8 * 3_600_000
    base = 1_768_233_600_000
    rows = [[str(base), "BTCUSDT", "0.0001"], [str(base + eight_h + 7), "BTCUSDT", "0.0002"],
            [str(base + 2 * eight_h - 3), "BTCUSDT", "-0.0001"],
            [str(base + 2 * eight_h), "BTCUSDT", "-0.0001"]]  # fmt: skip
    write_csv(tmp_path / "BTCUSDT_funding_8h.csv", "timestamp,symbol,funding_rate", rows)
    data = load_candles([tmp_path])
    funding = data.funding
    assert tuple(funding.columns) == FUNDING_COLUMNS
    expected = pd.to_datetime([base, base + eight_h, base + 2 * eight_h], unit="ms", utc=True)
    assert funding["funding_time_utc"].tolist() == expected.tolist()
    assert funding["funding_rate"].tolist() == [0.0001, 0.0002, -0.0001]
    assert data.report.repaired["funding_time_rounded"] == 2
    assert data.report.dropped["duplicate_funding"] == 1  # the same event twice after rounding
    assert data.candles.empty


@pytest.mark.skipif(not (REAL / "binance_futures_um").is_dir(), reason="shared data not present")
def test_real_funding_and_open_interest_files() -> None:
    folder = REAL / "binance_futures_um"
    data = load_candles(
        [folder / "BTCUSDT_funding_8h.csv", folder / "BTCUSDT_open_interest_4h.csv"]
    )
    times = data.funding["funding_time_utc"]
    assert len(times) == 200
    assert (times.dt.hour % 8 == 0).all()
    assert (times.dt.minute == 0).all()
    assert (times.dt.second == 0).all()
    oi = data.open_interest
    assert len(oi) == 168
    assert (oi["open_interest"] > 0).all()
    assert data.report.rows_by_kind == {"funding": 200, "open_interest": 168}


# --- report ------------------------------------------------------------------------------------


def test_candle_report_merge_and_issue_cap() -> None:
    a = CandleReport(rows_read=3, rows_kept=3, gaps_left=1, gap_bars_missing=4)
    a.vendor_checks.append(VendorCheck("BTCUSDT", "binance_spot", "cryptodatadownload", 5, 1,
                                       0.01, 0.005))  # fmt: skip
    b = CandleReport(rows_read=2, rows_kept=1, gaps_left=2, gap_bars_missing=9)
    b.drop("zero_volume")
    merged = a.merge(b)
    assert isinstance(merged, CandleReport)
    assert (merged.rows_read, merged.gaps_left, merged.gap_bars_missing) == (5, 3, 13)
    assert merged.dropped["zero_volume"] == 1
    assert len(merged.vendor_checks) == 1
    out = merged.to_dict()
    assert out["gaps_left"] == 3
    assert out["vendor_checks"][0]["bars_compared"] == 5


def test_issue_sample_is_capped_per_reason(tmp_path: Path) -> None:
    rows = spot_rows(walk(80))
    for r in rows[: MAX_ISSUES_PER_REASON + 10]:
        r[5] = "-1"
    path = write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, rows)
    report = load_candles([path]).report
    assert report.dropped["negative_volume"] == MAX_ISSUES_PER_REASON + 10
    assert sum(i.reason == "negative_volume" for i in report.issues) == MAX_ISSUES_PER_REASON


# --- the bundled spot set ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundled() -> CandleData:
    return load_candles()


@pytest.fixture(scope="module")
def members() -> dict[str, bytes]:
    return dict(read_archive_csvs(BUNDLED_CRYPTO, include_manifest=True))


@pytest.fixture(scope="module")
def manifest(members: dict[str, bytes]) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(members.pop("crypto/MANIFEST.csv")))


def test_bundle_is_small_and_holds_the_manifest_files_byte_for_byte(
    manifest: pd.DataFrame, members: dict[str, bytes]
) -> None:
    assert 0 < BUNDLED_CRYPTO.stat().st_size < 12 * 1024 * 1024
    assert set(members) == set(manifest["file"])
    for name, sha256 in zip(manifest["file"], manifest["sha256"], strict=True):
        assert hashlib.sha256(members[name]).hexdigest() == sha256, name
    assert list_bundled_pairs() == sorted(name.split("/")[1].split("_")[0] for name in members)


def test_bundle_loads_20_pairs_over_the_expected_range(
    bundled: CandleData, manifest: pd.DataFrame
) -> None:
    candles, report = bundled.candles, bundled.report
    assert bundled.pairs == list_bundled_pairs()
    assert len(bundled.pairs) == 20
    assert report.rows_read == manifest["rows"].sum()
    assert report.ok
    assert report.files_read == 20
    first = candles.groupby("pair")["open_time_utc"].min()
    last = candles.groupby("pair")["open_time_utc"].max()
    assert first.min() == pd.Timestamp("2021-04-04 20:00", tz="UTC")
    assert first.max() == pd.Timestamp("2021-04-04 21:00", tz="UTC")
    assert (last == pd.Timestamp("2023-06-30 23:00", tz="UTC")).all()
    assert tuple(candles.columns) == CANDLE_COLUMNS
    assert set(candles["vendor"]) == {"binance_spot"}
    # the one zero-volume placeholder per pair is dropped, then refilled as a repaired bar
    assert report.dropped["zero_volume"] == 20
    assert report.rows_read == report.rows_kept + sum(report.dropped.values())
    assert len(candles) == report.rows_kept + report.repaired["gap_bars_filled"]


def test_bundle_outage_gaps_are_repaired_or_reported(bundled: CandleData) -> None:
    candles = bundled.candles
    steps = candles.groupby("pair")["open_time_utc"].diff().dropna()
    long_steps = candles.loc[steps.index[steps != pd.Timedelta(hours=1)]]
    # only the 2021-08-13 outage (4 missing hours) is longer than max_repair_bars=3
    assert long_steps["open_time_utc"].unique().tolist() == [
        pd.Timestamp("2021-08-13 06:00", tz="UTC")
    ]
    assert len(long_steps) == 20 == bundled.report.gaps_left
    repaired = candles[candles["repaired"]]
    assert (repaired["volume"] == 0).all()
    assert repaired.groupby("pair").size().nunique() == 1  # every pair shares the outages
    assert not bundled.gaps.empty
    assert set(bundled.gaps["missing_bars"]) <= {1, 2, 3, 4}


def test_build_bundle_with_a_root_is_deterministic(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    write_csv(source / "BTCUSDT_1h.csv", SPOT_HEADER, spot_rows(walk(3)))
    first = build_bundle(source, tmp_path / "a.tar.xz", root="crypto").read_bytes()
    second = build_bundle(source, tmp_path / "b.tar.xz", root="crypto").read_bytes()
    assert first == second
    assert [n for n, _ in read_archive_csvs(tmp_path / "a.tar.xz")] == ["crypto/BTCUSDT_1h.csv"]
    data = load_candles([tmp_path / "a.tar.xz"], pairs=["btc-usdt"])
    assert len(data.candles) == 3
    assert data.pairs == ["BTCUSDT"]
    assert load_candles([tmp_path / "a.tar.xz"], pairs=["ETHUSDT"]).candles.empty


def test_another_pairs_rows_inside_a_named_file_lose_to_that_pairs_own_file(
    tmp_path: Path,
) -> None:
    """Ten ETHUSDT rows inside ``BTCUSDT_1h.csv`` (read first) replaced ETH's real bars with
    BTC's prices, a 13x jump the spike filter did not catch (CLI audit, high)."""
    btc = spot_rows(walk(48, seed=1, start_price=18000.0), pair="BTCUSDT")
    eth = spot_rows(walk(48, seed=2, start_price=1300.0), pair="ETHUSDT")
    mixed = [[*row[:-1], "ETHUSDT"] if 20 <= i < 30 else row for i, row in enumerate(btc)]
    write_csv(tmp_path / "BTCUSDT_1h.csv", SPOT_HEADER, mixed)
    write_csv(tmp_path / "ETHUSDT_1h.csv", SPOT_HEADER, eth)
    data = load_candles([str(tmp_path)])
    got = data.candles.loc[data.candles["pair"] == "ETHUSDT", "close"].to_numpy()
    np.testing.assert_array_equal(got, [float(row[4]) for row in eth])
    assert data.report.dropped["conflicting_duplicate"] == 10
    conflict = next(i for i in data.report.issues if i.reason == "conflicting_duplicate")
    assert conflict.file.endswith("BTCUSDT_1h.csv")  # the copy dropped is the stray one
    assert "ETHUSDT_1h.csv" in str(conflict.value)
