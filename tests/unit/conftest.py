"""Shared fixtures of the unit tests: a small real football sample for the neural model."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from marketcast.datasets.football_data import FootballData, load_football
from marketcast.features.football import build_features


@pytest.fixture(scope="module")
def epl_data() -> FootballData:
    """E0 2020-21 and 2021-22 (760 matches)."""
    bundled = load_football(None)
    keep = (bundled.matches["league"] == "E0") & bundled.matches["season"].isin(
        ["2020-2021", "2021-2022"]
    )
    matches = bundled.matches.loc[keep].reset_index(drop=True)
    odds = bundled.odds.loc[bundled.odds["match_id"].isin(matches["match_id"])]
    return dataclasses.replace(bundled, matches=matches, odds=odds.reset_index(drop=True))


@pytest.fixture(scope="module")
def epl(epl_data) -> tuple[pd.DataFrame, np.ndarray]:
    """Features and goals of :func:`epl_data`."""
    return build_features(epl_data), epl_data.matches[["home_goals", "away_goals"]].to_numpy()


@pytest.fixture(scope="module")
def split(epl):
    X, y = epl
    train = np.arange(len(X)) < 500
    return X[train], y[train], X[~train]
