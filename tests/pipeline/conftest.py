"""Shared small real data for pipeline tests: three bundled Premier League seasons."""

from __future__ import annotations

import dataclasses

import pytest

from marketcast.datasets.football_data import FootballData, load_football
from marketcast.features.football import build_features

SEASONS = ("2019-2020", "2020-2021", "2021-2022")


@pytest.fixture(scope="session")
def bundled() -> FootballData:
    return load_football(None)


@pytest.fixture(scope="session")
def epl(bundled: FootballData) -> FootballData:
    """E0 2019-20 to 2021-22 from the bundle (1,140 matches, closing odds present)."""
    keep = (bundled.matches["league"] == "E0") & bundled.matches["season"].isin(SEASONS)
    matches = bundled.matches.loc[keep].reset_index(drop=True)
    odds = bundled.odds.loc[bundled.odds["match_id"].isin(matches["match_id"])]
    return dataclasses.replace(bundled, matches=matches, odds=odds.reset_index(drop=True))


@pytest.fixture(scope="session")
def epl_features(epl: FootballData):
    return build_features(epl)
