"""Shot features: exponentially weighted over a team's earlier matches only, NaN-tolerant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketcast.features.football import (
    SHOTS_HALFLIFE_MATCHES,
    XG_PER_SHOT_OFF_TARGET,
    XG_PER_SHOT_ON_TARGET,
    shot_features,
)


def _matches(shots: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    """A plays B at home, then away, alternately, one match a week: (hs, as, hst, ast)."""
    n = len(shots)
    home = ["A" if i % 2 == 0 else "B" for i in range(n)]
    return pd.DataFrame(
        {
            "kickoff_utc": pd.date_range("2020-08-01 14:00", periods=n, freq="7D", tz="UTC"),
            "home_team": home,
            "away_team": ["B" if h == "A" else "A" for h in home],
            "home_goals": [1, 0, 2, 1][:n],
            "away_goals": [0, 0, 1, 3][:n],
            "home_shots": [s[0] for s in shots],
            "away_shots": [s[1] for s in shots],
            "home_shots_on_target": [s[2] for s in shots],
            "away_shots_on_target": [s[3] for s in shots],
        }
    )


def test_first_match_has_no_history_and_second_sees_only_the_first() -> None:
    m = _matches([(10, 4, 5, 1), (8, 12, 2, 6), (20, 2, 9, 0)])
    f = shot_features(m)
    assert f.iloc[0].isna().all()
    # match 1: B at home, A away; each side's history is match 0 alone
    assert f.loc[1, "home_shots_for_ewm"] == 4.0  # B took 4 shots in match 0
    assert f.loc[1, "away_shots_for_ewm"] == 10.0  # A took 10
    assert f.loc[1, "away_sot_against_ewm"] == 1.0
    assert f.loc[1, "away_sot_share"] == pytest.approx(5 / 6)
    xg_a = XG_PER_SHOT_ON_TARGET * 5 + XG_PER_SHOT_OFF_TARGET * 5
    assert f.loc[1, "away_xg_for_ewm"] == pytest.approx(xg_a)
    assert f.loc[1, "away_finishing_resid_ewm"] == pytest.approx(1 - xg_a)  # A scored 1


def test_weights_halve_every_halflife() -> None:
    m = _matches([(10, 4, 5, 1), (8, 12, 2, 6), (20, 2, 9, 0)])
    f = shot_features(m)
    # match 2: A at home with history [10 (older), 12 (newer)] shots
    w = 0.5 ** (1 / SHOTS_HALFLIFE_MATCHES)  # weight of the older match
    assert f.loc[2, "home_shots_for_ewm"] == pytest.approx((w * 10 + 12) / (w + 1))


def test_matches_without_stats_are_skipped_and_missing_columns_give_nan() -> None:
    m = _matches([(10, 4, 5, 1), (np.nan, np.nan, np.nan, np.nan), (20, 2, 9, 0)])
    f = shot_features(m)
    assert f.loc[2, "home_shots_for_ewm"] == 10.0  # the blank match 1 is skipped
    bare = m.drop(columns=["home_shots", "away_shots", "home_shots_on_target",
                           "away_shots_on_target"])  # fmt: skip
    assert shot_features(bare).isna().all().all()
