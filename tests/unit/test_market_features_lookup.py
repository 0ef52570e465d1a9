"""`market_features` reads each bookmaker's quotes through one `OddsLookup` of the long table:
the same prices, preference fall-through and columns as one `odds_matrix` scan per read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from marketcast.data.validation import IntegrityReport
from marketcast.datasets.football_data import FootballData, OddsLookup, odds_matrix
from marketcast.features.football import (
    market_features,
    prematch_probabilities,
    quoted_market_features,
)
from marketcast.margins import implied_probabilities, overround
from marketcast.types import MarketKind

NAN = np.nan
ODDS_COLUMNS = ("match_id", "market", "timing", "bookmaker", "line", "odds_0", "odds_1", "odds_2")


def _data(rows: list[tuple], n_matches: int, *, prefix: str = "m") -> FootballData:
    odds = pd.DataFrame.from_records(rows, columns=ODDS_COLUMNS)
    matches = pd.DataFrame({"match_id": [f"{prefix}{i}" for i in range(n_matches)]})
    return FootballData(matches=matches, odds=odds, report=IntegrityReport())


def _shin(*odds: float) -> np.ndarray:
    return implied_probabilities(np.array([odds]), "shin")[0]


#: Four matches, rows in no particular order: a refused Pinnacle price (1.0), a row of NaN
#: prices, a closing quote the features must not read, markets some bookmakers leave out.
HAND_BUILT = [
    ("m0", "1x2", "prematch", "pinnacle", NAN, 1.0, 3.4, 5.0),
    ("m3", "1x2", "prematch", "max", NAN, 2.1, 3.3, 3.9),
    ("m0", "1x2", "prematch", "avg", NAN, 1.9, 3.5, 4.2),
    ("m1", "ou25", "prematch", "b365", 2.5, 1.9, 1.95, NAN),
    ("m0", "1x2", "closing", "pinnacle", NAN, 2.5, 3.0, 3.0),
    ("m2", "ah", "prematch", "bw", -0.25, 1.9, 2.0, NAN),
    ("m0", "1x2", "prematch", "max", NAN, 2.0, 3.7, 4.5),
    ("m1", "ou25", "prematch", "pinnacle", 2.5, NAN, 2.0, NAN),
    ("m1", "1x2", "prematch", "pinnacle", NAN, 2.6, 3.3, 2.8),
    ("m3", "1x2", "prematch", "wh", NAN, 2.0, 3.2, 3.8),
    ("m2", "ah", "prematch", "max", -0.25, 1.95, 2.05, NAN),
    ("m0", "1x2", "prematch", "b365", NAN, 1.95, 3.4, 4.0),
    ("m1", "1x2", "prematch", "b365", NAN, 2.5, 3.4, 2.9),
]


def test_each_market_takes_the_first_bookmaker_in_the_preference_with_a_usable_price() -> None:
    f = market_features(_data(HAND_BUILT, 4))
    home_draw_away = f[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    expected = [_shin(1.9, 3.5, 4.2), _shin(2.6, 3.3, 2.8), [NAN] * 3, _shin(2.0, 3.2, 3.8)]
    np.testing.assert_allclose(home_draw_away, expected, rtol=0, atol=1e-15)  # avg, -, -, wh
    over_under = f[["mkt_ou25_over", "mkt_ou25_under"]].to_numpy()
    np.testing.assert_allclose(over_under[1], _shin(1.9, 1.95), rtol=0, atol=1e-15)  # b365
    assert np.isnan(over_under[[0, 2, 3]]).all()
    np.testing.assert_allclose(f.loc[2, ["mkt_ah_home", "mkt_ah_away"]], _shin(1.9, 2.0), atol=0)
    assert f["ah_line"].tolist()[2] == -0.25
    assert np.isnan(f["ah_line"].to_numpy()[[0, 1, 3]]).all()
    assert f["mkt_1x2_overround_avg"].tolist()[0] == overround(np.array([1.9, 3.5, 4.2]))
    assert f["mkt_1x2_overround_best"].tolist()[3] == overround(np.array([2.1, 3.3, 3.9]))
    assert f["mkt_ah_overround_best"].tolist()[2] == overround(np.array([1.95, 2.05]))
    # real bookmakers with a usable 1X2 price: the refused Pinnacle row counts for nothing
    assert f["mkt_n_bookmakers"].tolist() == [1.0, 2.0, 0.0, 1.0]
    assert np.isnan(f["mkt_1x2_home_spread"].to_numpy()[[0, 2, 3]]).all()
    homes = [implied_probabilities(np.array([o]))[0, 0] for o in ((2.6, 3.3, 2.8), (2.5, 3.4, 2.9))]
    assert f["mkt_1x2_home_spread"].tolist()[1] == pytest.approx(abs(homes[0] - homes[1]), abs=0)
    sharp_minus_avg = f["mkt_1x2_home_sharp_minus_avg"].to_numpy()
    assert np.isnan(sharp_minus_avg).all()  # Pinnacle refused where an average exists


def test_the_order_and_index_of_the_odds_rows_change_nothing() -> None:
    data = _data(HAND_BUILT, 4)
    shuffled = data.odds.iloc[::-1].set_axis(np.arange(100, 100 + len(data.odds)))
    reordered = market_features(dataclasses.replace(data, odds=shuffled))
    pd.testing.assert_frame_equal(reordered, market_features(data), check_exact=True)


def test_the_lookup_reads_every_quote_as_odds_matrix_does(epl_data: FootballData) -> None:
    """Real seasons, every (market, timing, bookmaker) of the table, bit for bit."""
    odds = epl_data.odds.sample(frac=1.0, random_state=0)  # rows out of order, index scrambled
    data = dataclasses.replace(epl_data, odds=odds)
    lookup = OddsLookup.of(data.matches, data.odds)
    keys = odds[["market", "timing", "bookmaker"]].drop_duplicates().itertuples(index=False)
    n_keys = 0
    for market, timing, bookmaker in keys:
        got, got_line = lookup.odds(market, timing, bookmaker)
        want, want_line = odds_matrix(epl_data, market, timing, bookmaker)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got_line, want_line)
        n_keys += 1
    assert n_keys > 20
    shuffled = market_features(data)
    pd.testing.assert_frame_equal(shuffled, market_features(epl_data), check_exact=True)


#: Quoted fixtures and, per fixture, the long table the loader would have made of them: the
#: average and the best prices a request leaves out filled as `quoted_market_features` says.
QUOTED = [
    (
        {"b365": {"1x2": (2.0, 3.4, 4.0)}},
        [
            ("b365", "1x2", NAN, (2.0, 3.4, 4.0)),
            ("avg", "1x2", NAN, (2.0, 3.4, 4.0)),
            ("max", "1x2", NAN, (2.0, 3.4, 4.0)),
        ],
    ),
    (
        {
            "pinnacle": {"1x2": (2.0, 3.4, 3.9), "ou25": (1.9, 1.95), "ah": (-0.25, 1.9, 2.0)},
            "avg": {"1x2": (1.95, 3.3, 3.8), "ou25": (1.85, 1.9), "ah": (-0.25, 1.85, 1.95)},
            "max": {"1x2": (2.05, 3.6, 4.1), "ou25": (1.95, 2.0), "ah": (-0.25, 1.95, 2.05)},
        },
        [
            ("pinnacle", "1x2", NAN, (2.0, 3.4, 3.9)),
            ("avg", "1x2", NAN, (1.95, 3.3, 3.8)),
            ("max", "1x2", NAN, (2.05, 3.6, 4.1)),
            ("pinnacle", "ou25", 2.5, (1.9, 1.95)),
            ("avg", "ou25", 2.5, (1.85, 1.9)),
            ("max", "ou25", 2.5, (1.95, 2.0)),
            ("pinnacle", "ah", -0.25, (1.9, 2.0)),
            ("avg", "ah", -0.25, (1.85, 1.95)),
            ("max", "ah", -0.25, (1.95, 2.05)),
        ],
    ),
    (
        {"max": {"1x2": (1.5, 4.4, 7.0)}},
        [("max", "1x2", NAN, (1.5, 4.4, 7.0)), ("avg", "1x2", NAN, (1.5, 4.4, 7.0))],
    ),
    (
        {"avg": {"1x2": (3.1, 3.3, 2.3)}, "wh": {"1x2": (3.0, 3.25, 2.4)}},
        [
            ("avg", "1x2", NAN, (3.1, 3.3, 2.3)),
            ("wh", "1x2", NAN, (3.0, 3.25, 2.4)),
            ("max", "1x2", NAN, (3.1, 3.3, 2.4)),
        ],
    ),
    (
        {"bw": {"ah": (0.5, 1.8, 2.1)}, "max": {"ah": (0.5, 1.9, 2.2)}},
        [
            ("bw", "ah", 0.5, (1.8, 2.1)),
            ("max", "ah", 0.5, (1.9, 2.2)),
            ("avg", "ah", 0.5, (1.8, 2.1)),
        ],
    ),
    (  # best prices under-round (sum of 1/odds < 1): a negative overround, Shin's z = 0
        {"b365": {"1x2": (2.2, 3.6, 3.6)}, "max": {"1x2": (3.1, 3.9, 4.0)}},
        [
            ("b365", "1x2", NAN, (2.2, 3.6, 3.6)),
            ("max", "1x2", NAN, (3.1, 3.9, 4.0)),
            ("avg", "1x2", NAN, (2.2, 3.6, 3.6)),
        ],
    ),
]


def test_quoted_fixtures_get_market_features_of_their_long_table() -> None:
    fixtures = [quotes for quotes, _ in QUOTED]
    rows = [
        (f"quoted:{i}", market, "prematch", bookmaker, line, *[*prices, NAN][:3])
        for i, (_, table) in enumerate(QUOTED)
        for bookmaker, market, line, prices in table
    ]
    rows.sort(key=lambda r: (r[1], r[3]))  # by market and bookmaker, not by fixture
    expected = market_features(_data(rows, len(QUOTED), prefix="quoted:"))
    served = quoted_market_features(fixtures)
    pd.testing.assert_frame_equal(served, expected, check_exact=True)
    assert served["mkt_1x2_overround_best"].tolist()[5] < 0
    one_at_a_time = pd.concat([quoted_market_features([f]) for f in fixtures], ignore_index=True)
    pd.testing.assert_frame_equal(one_at_a_time, served, check_exact=False, rtol=0, atol=1e-12)


@pytest.mark.parametrize("bookmaker", ["pinnacle", "best"])
def test_a_quote_of_a_match_not_listed_lands_in_no_row(bookmaker: str) -> None:
    """Aligned by ``get_indexer``, a quote of no listed match had position -1 and was written
    into the last match's row."""
    rows = [
        ("m0", "1x2", "prematch", "pinnacle", NAN, 2.0, 3.4, 3.9),
        ("gone", "1x2", "prematch", "pinnacle", NAN, 1.5, 4.0, 6.0),
    ]
    odds, _ = odds_matrix(_data(rows, 2), "1x2", "prematch", bookmaker)
    np.testing.assert_array_equal(odds[0], [2.0, 3.4, 3.9])
    assert np.isnan(odds[1]).all()
    assert np.isnan(market_features(_data(rows, 2))["mkt_1x2_home"].to_numpy()[1])


def test_an_unknown_de_margining_method_is_refused_even_without_a_usable_price() -> None:
    """Bookmakers without a price for a match still to fill are skipped, so the method was
    never checked when no bookmaker had one."""
    rows = [("m0", "1x2", "prematch", "pinnacle", NAN, NAN, NAN, NAN)]
    with pytest.raises(ValueError, match="unknown de-margining method 'fair'"):
        prematch_probabilities(_data(rows, 1), MarketKind.ONE_X_TWO, method="fair")
