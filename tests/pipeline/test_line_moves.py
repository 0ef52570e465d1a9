"""Line-move features: a team's earlier moves from the pre-match price to the closing line."""

from __future__ import annotations

import numpy as np
import pytest

from marketcast.datasets.football_data import FootballData
from marketcast.features.football import (
    LINE_MOVE_HALFLIFE_MATCHES,
    closing_probabilities,
    line_move_features,
    market_features,
    prematch_probabilities,
)
from marketcast.types import MarketKind


def _moves(epl: FootballData) -> tuple[np.ndarray, np.ndarray]:
    """Per match: the 1X2 move of log(home / away) and the over/under move of log(over / under)."""
    out = []
    for market, (up, down) in ((MarketKind.ONE_X_TWO, (0, 2)), (MarketKind.OVER_UNDER_25, (0, 1))):
        before, _ = prematch_probabilities(epl, market)
        after, _ = closing_probabilities(epl, market)
        out.append(np.log(after[:, up] / after[:, down]) - np.log(before[:, up] / before[:, down]))
    return out[0], out[1]


def test_a_team_carries_its_earlier_moves_from_its_own_side(epl: FootballData) -> None:
    f = line_move_features(epl, market_features(epl))
    line, total = _moves(epl)
    m = epl.matches
    team = m.at[0, "home_team"]
    played = np.flatnonzero(((m["home_team"] == team) | (m["away_team"] == team)).to_numpy())
    first, second, third = played[:3]
    assert np.isnan(f.loc[first, "home_line_move_ewm"])  # no earlier match in the data
    # its own move, from its own side: a move towards the away side counts against the home team
    own = [line[i] if m.at[i, "home_team"] == team else -line[i] for i in (first, second)]
    side = "home" if m.at[second, "home_team"] == team else "away"
    assert f.loc[second, f"{side}_line_move_ewm"] == pytest.approx(own[0])
    assert f.loc[second, f"{side}_total_move_ewm"] == pytest.approx(total[first])
    w = 0.5 ** (1 / LINE_MOVE_HALFLIFE_MATCHES)  # weight of the older of two matches
    side = "home" if m.at[third, "home_team"] == team else "away"
    assert f.loc[third, f"{side}_line_move_ewm"] == pytest.approx((w * own[0] + own[1]) / (w + 1))
    np.testing.assert_allclose(
        f["line_move_diff"], f["home_line_move_ewm"] - f["away_line_move_ewm"]
    )
    np.testing.assert_allclose(
        f["total_move_sum"], f["home_total_move_ewm"] + f["away_total_move_ewm"]
    )


def test_matches_without_a_closing_price_are_skipped(epl: FootballData) -> None:
    m = epl.matches
    team = m.at[0, "home_team"]
    played = np.flatnonzero(((m["home_team"] == team) | (m["away_team"] == team)).to_numpy())
    unpriced = epl.odds["match_id"].eq(m.at[played[0], "match_id"]) & epl.odds["timing"].eq(
        "closing"
    )
    without = FootballData(m, epl.odds.loc[~unpriced], epl.report)
    f = line_move_features(without, market_features(epl))
    side = "home" if m.at[played[1], "home_team"] == team else "away"
    assert np.isnan(f.loc[played[1], f"{side}_line_move_ewm"])  # its only earlier match: no move
    line, _ = _moves(epl)
    own = line[played[1]] if side == "home" else -line[played[1]]
    side = "home" if m.at[played[2], "home_team"] == team else "away"
    assert f.loc[played[2], f"{side}_line_move_ewm"] == pytest.approx(own)
