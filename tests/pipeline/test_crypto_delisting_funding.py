"""A perpetual's holding into its delisting pays funding up to the exit, not to the label's end.

At a delisting the position closes at the pair's last close, while its label resolves only
``delisting_bars`` hours later (``label_end_utc``, which the purge needs). The funding window ran
to the label's end, past the pair's last funding event, so the whole period's funding came back
NaN: charged 0 and counted missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from marketcast.config import CryptoRunConfig
from marketcast.orchestration.crypto import horizon_rows, prepare_crypto
from tests.pipeline.test_crypto_costs_audit_fixes import PAIRS, _bundle_slice

RATE = 1e-4


def _eth_rows(
    tmp_path: Path, gone_from: str, last_event: str, horizon: str
) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """ETH's rows at ``horizon`` when its candles stop at ``gone_from`` while BTC trades on (a
    delisting), with funding every 8 h up to ``last_event``; and those funding times."""
    folder = _bundle_slice(
        tmp_path, "2023-02-01", "2023-03-15", holes={"ETHUSDT": (gone_from, "2023-03-15")}
    )
    events = pd.date_range("2023-02-01 08:00", last_event, freq="8h", tz="UTC")
    pd.DataFrame(
        {"timestamp": events.as_unit("ms").asi8, "symbol": "ETHUSDT", "funding_rate": RATE}
    ).to_csv(folder / "ETHUSDT_funding_8h.csv", index=False)
    config = CryptoRunConfig(pairs=PAIRS, horizons=(horizon,), models=("flat",), max_workers=1)
    rows = horizon_rows(prepare_crypto(config, [str(folder)]), horizon, config)
    return rows.loc[rows["pair"] == "ETHUSDT"], events


def test_a_delisted_pairs_last_holding_pays_its_funding_up_to_the_last_close(
    tmp_path: Path,
) -> None:
    # ETH's candles stop at 2023-02-28 23:00 (its last close 2023-03-01 00:00): its funding
    # runs every 8 h up to that close
    eth, events = _eth_rows(tmp_path, "2023-03-01", "2023-03-01 00:00", "1d")
    delisted = eth.loc[eth["delisting_exit"]]
    assert len(delisted) == 24  # the last day's decisions, every hour
    last_close = pd.Timestamp("2023-03-01 00:00", tz="UTC")
    assert (delisted["label_end_utc"] > last_close).all()  # resolved later, for the purge
    for entry, charged in zip(delisted["entry_time_utc"], delisted["funding_period"], strict=True):
        paid = RATE * ((events > entry) & (events <= last_close)).sum()
        assert paid > 0
        assert np.isclose(charged, paid, rtol=0, atol=1e-15)
    # an ordinary holding is unchanged: its funding from entry to the exit bar's open
    ordinary = eth.loc[~eth["delisting_exit"] & eth["forward_return"].notna()].iloc[-1]
    expected = (
        RATE * ((events > ordinary["entry_time_utc"]) & (events <= ordinary["label_end_utc"])).sum()
    )
    assert np.isclose(ordinary["funding_period"], expected, rtol=0, atol=1e-15)


def test_a_last_close_between_funding_events_still_pays_the_events_before_it(
    tmp_path: Path,
) -> None:
    """The last close almost never falls on a funding time: ETH stops at 18:00 (closing 19:00),
    its last event at 16:00. A window ending past the last event was 'not covered': every period
    held into the delisting came back NaN, charged 0, and a short among them paid borrow
    interest instead of receiving funding."""
    eth, events = _eth_rows(tmp_path, "2023-02-28 19:00", "2023-02-28 16:00", "4h")
    held_into = eth.loc[eth["period_delisting"]]
    assert len(held_into) > 0
    last_close = pd.Timestamp("2023-02-28 19:00", tz="UTC")
    for entry, charged in zip(
        held_into["entry_time_utc"], held_into["funding_period"], strict=True
    ):
        paid = RATE * ((events > entry) & (events <= last_close)).sum()
        assert np.isclose(charged, paid, rtol=0, atol=1e-15)  # was NaN
    assert (held_into["entry_time_utc"] < events[-1]).any()  # one pays the 16:00 event
