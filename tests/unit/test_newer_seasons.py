"""What newer football-data seasons bring: an exchange among the bookmakers, Pinnacle gaps."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from marketcast.config import BacktestSettings, FootballRunConfig
from marketcast.data.validation import DataError
from marketcast.datasets.football_data import load_football_sources, odds_matrix
from marketcast.evaluation.football import _closing_source_counts
from marketcast.features.football import (
    closing_probabilities,
    closing_yardstick,
    prematch_yardstick,
)
from marketcast.orchestration.football import check_bookmaker, check_history, evaluated_mask
from marketcast.types import EXCHANGE_COMMISSION, MarketKind

# The 2024-25 layout: Betfair Exchange (BFE) quotes beside the bookmakers, priced before its
# commission (columns trimmed to those this test reads).
HEADER = (
    "Div,Date,Time,HomeTeam,AwayTeam,FTHG,FTAG,FTR,B365H,B365D,B365A,PSH,PSD,PSA,"
    "MaxH,MaxD,MaxA,AvgH,AvgD,AvgA,BFEH,BFED,BFEA,PSCH,PSCD,PSCA,AvgCH,AvgCD,AvgCA"
)
ROWS = (
    "E0,16/08/2024,20:00,Man United,Fulham,1,0,H,1.60,4.20,5.25,1.62,4.34,5.50,"
    "1.65,4.40,5.50,1.60,4.20,5.21,1.62,4.40,5.60,1.60,4.33,5.70,1.58,4.25,5.40",
    "E0,17/08/2024,12:30,Ipswich,Liverpool,0,2,A,6.50,4.75,1.44,6.50,4.80,1.48,"
    "7.00,5.00,1.50,6.40,4.70,1.46,7.20,5.10,1.51,,,,6.10,4.90,1.50",
)
HISTORY = (
    "E0,10/05/2024,15:00,Arsenal,Everton,2,1,H,1.20,7.00,13.0,1.21,7.20,14.0,"
    "1.25,7.50,15.0,1.20,7.00,13.0,,,,1.20,7.10,14.5,1.19,7.00,13.5"
)


def _data(rows: tuple[str, ...] = ROWS):  # type: ignore[no-untyped-def]
    text = "\r\n".join([HEADER, *rows]) + "\r\n"
    return load_football_sources([("E0/2024-2025.csv", text.encode())])


def test_best_odds_take_an_exchange_price_net_of_its_commission() -> None:
    """ "best" took Betfair Exchange's 5.6 for the away win (Max 5.5): after the commission on
    winnings a bettor gets 1 + 4.6 x 0.95 = 5.37, below Max, so 5.5 is the best price."""
    data = _data()
    quoted, _ = odds_matrix(data, "1x2", "prematch", "best")
    assert quoted[0].tolist() == [1.65, 4.40, 5.60]  # what the file says
    net, _ = odds_matrix(data, "1x2", "prematch", "best", exchange_commission=EXCHANGE_COMMISSION)
    assert net[0].tolist() == [1.65, 4.40, 5.50]
    # the exchange led all three outcomes of the second match; net, none beats Max (6.89 < 7.0)
    assert (quoted[1].tolist(), net[1].tolist()) == ([7.20, 5.10, 1.51], [7.00, 5.00, 1.50])
    exchange, _ = odds_matrix(data, "1x2", "prematch", "bfe", exchange_commission=0.05)
    np.testing.assert_allclose(exchange[0], 1 + (np.array([1.62, 4.40, 5.60]) - 1) * 0.95)
    with pytest.raises(ValueError, match="exchange_commission must be in"):
        odds_matrix(data, "1x2", "prematch", "best", exchange_commission=1.0)
    assert BacktestSettings().exchange_commission == EXCHANGE_COMMISSION


def test_the_closing_yardstick_says_where_it_came_from(caplog: pytest.LogCaptureFixture) -> None:
    """Pinnacle did not close the second match: its yardstick is the closing average, and an
    evaluation over both says so instead of mixing two lines silently."""
    data = _data()
    _, _, sources = closing_yardstick(data, MarketKind.ONE_X_TWO)
    assert sources.tolist() == ["pinnacle", "avg"]
    closing, _ = closing_probabilities(data, MarketKind.ONE_X_TWO)
    assert not np.isnan(closing).any()
    with caplog.at_level(logging.WARNING):
        counts = _closing_source_counts(MarketKind.ONE_X_TWO, sources)
    assert counts == {"avg": 1, "pinnacle": 1}
    assert "mixes sources (avg 1, pinnacle 1)" in caplog.text


def test_the_prematch_yardstick_says_where_it_came_from() -> None:
    """Pinnacle did not price the second match before kick-off: the pre-match yardstick took
    the average there, which only the closing yardstick's counts used to say of itself."""
    unpriced = (ROWS[0], ROWS[1].replace(",6.50,4.80,1.48,", ",,,,"))
    _, _, sources = prematch_yardstick(_data(unpriced), MarketKind.ONE_X_TWO)
    assert sources.tolist() == ["pinnacle", "avg"]


def test_a_bookmaker_missing_from_the_evaluated_matches_is_an_error() -> None:
    """Pinnacle priced the history but not the evaluated season: the backtest placed 0 bets
    and looked valid."""
    unpriced = tuple(
        row.replace(",1.62,4.34,5.50,", ",,,,").replace(",6.50,4.80,1.48,", ",,,,") for row in ROWS
    )
    data = _data((HISTORY, *unpriced))
    evaluated = data.matches["kickoff_utc"].dt.month.to_numpy() == 8
    config = FootballRunConfig(backtest={"bookmaker": "pinnacle"})
    with pytest.raises(ValueError, match=r"prices none of the 2 matches evaluated"):
        check_bookmaker(config, data, evaluated)
    check_bookmaker(config, data)  # it does price something in the data
    check_bookmaker(config.model_copy(update={"backtest": BacktestSettings()}), data, evaluated)


def test_a_bookmaker_that_never_prices_an_evaluated_market_is_an_error() -> None:
    """B365 priced the 1X2 of the evaluated matches and no over/under (these files have no such
    columns): the over/under backtest placed 0 bets, exit 0, without a word."""
    data = _data((HISTORY, *ROWS))
    evaluated = data.matches["kickoff_utc"].dt.month.to_numpy() == 8
    config = FootballRunConfig(backtest={"bookmaker": "b365"}, markets=("1x2", "ou25", "ah"))
    with pytest.raises(DataError, match=r"'b365' prices no ou25 or ah of the 2 matches evaluated"):
        check_bookmaker(config, data, evaluated, "bw.yaml")
    check_bookmaker(config.model_copy(update={"markets": ("1x2",)}), data, evaluated)


def test_learning_models_need_matches_before_the_evaluated_ones() -> None:
    """Without earlier matches Elo stopped the evaluation with 'no rows with finite rating
    features to fit EloModel', which named no cause."""
    data = _data()
    everything = np.ones(len(data.matches), dtype=bool)
    with pytest.raises(ValueError, match=r"no match kicks off before .* elo trains on earlier"):
        check_history(FootballRunConfig(models=("market", "elo")), data, everything)
    check_history(FootballRunConfig(models=("market",)), data, everything)  # needs no history
    later = data.matches["home_team"].to_numpy() == "Ipswich"
    check_history(FootballRunConfig(models=("market", "elo")), data, later)


@pytest.mark.parametrize(
    ("walk_forward", "key", "hint"),
    [
        ({"last_seasons": 5}, "walk_forward.last_seasons", "or evaluate fewer"),
        ({"start": "2000-01-01"}, "walk_forward.start", "or start the evaluation later"),
    ],
)
def test_a_config_window_without_history_names_the_file_and_key(
    walk_forward: dict[str, object], key: str, hint: str
) -> None:
    """``run`` said "start the evaluation later", naming neither the config nor its key."""
    config = FootballRunConfig(models=("market", "elo", "dixon_coles"), walk_forward=walk_forward)
    with pytest.raises(DataError) as raised:
        evaluated_mask(config, _data(), "c6.yaml")
    message = str(raised.value)
    assert message.startswith(f"c6.yaml, field '{key}': no match kicks off before")
    assert "elo, dixon_coles train on earlier matches only" in message
    assert message.endswith(hint)
