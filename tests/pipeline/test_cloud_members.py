"""The cloud blend's members come from the champion's own run: a later one-league experiment
(which leaves the two-league champion where it is) must not put its models, which never saw the
other league's teams, into the forecasts the champion serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from marketcast.config import FootballRunConfig
from marketcast.datasets.bundle import BUNDLED_FOOTBALL, read_archive_csvs
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService, ServiceSettings

MODELS = ["market", "elo", "dixon_coles"]
SEASONS = {"E0": ("2020-2021", "2021-2022"), "SP1": ("2020-2021", "2021-2022")}
SPANISH = {
    "league": "SP1",
    "home": "Barcelona",
    "away": "Sevilla",
    "kickoff": "2025-05-10T14:00:00Z",
    "odds": {"1x2": {"home": 1.80, "draw": 3.90, "away": 4.50}},
}


def bundled_seasons(folder: Path, seasons: dict[str, tuple[str, ...]]) -> Path:
    """Copy these bundled seasons (league -> seasons) into ``folder/<league>/<season>.csv``."""
    for name, data in read_archive_csvs(BUNDLED_FOOTBALL):
        league, season = Path(name).parent.name, Path(name).stem
        if season in seasons.get(league, ()):
            (folder / league).mkdir(parents=True, exist_ok=True)
            (folder / league / f"{season}.csv").write_bytes(data)
    return folder


def small_run(root: Path, data: Path, models: list[str], **settings: Any) -> Registry:
    """A 1X2-only run of ``models`` on the files under ``data``, into ``root``; its registry."""
    config = FootballRunConfig.model_validate(
        {
            "data": {"paths": [str(data)]},
            "models": models,
            "markets": ["1x2"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 50},
            "registry_root": str(root / "registry"),
            "runs_dir": str(root / "runs"),
            **settings,
        }
    )
    run_football(config, console=Console(file=open(root / "log.txt", "a")))  # noqa: SIM115
    return Registry(config.registry_root)


def test_a_one_league_experiment_leaves_the_cloud_blend_of_a_two_league_champion(
    tmp_path: Path,
) -> None:
    bundled_seasons(tmp_path / "data", SEASONS)
    small_run(tmp_path, tmp_path / "data", MODELS)
    registry = Registry(str(tmp_path / "registry"))
    # every fixture takes the cloud path
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01))
    service.reload()
    fixture = FixtureIn.model_validate(SPANISH)
    [before] = service.forecast([fixture])
    members = {m.name: m.version for m in service.snapshot().members["1x2"]}
    assert set(members) == {"market", "elo", "dixon_coles"}
    assert before.path == "cloud"

    small_run(
        tmp_path, tmp_path / "data" / "E0", MODELS
    )  # an E0-only experiment: the champion stays
    for name in ("elo", "dixon_coles"):
        newer = registry.latest_version("football", "1x2", name)
        assert newer is not None
        assert newer != members[name]  # the experiment registered its own versions
    service.reload()
    assert {m.name: m.version for m in service.snapshot().members["1x2"]} == members
    [after] = service.forecast([fixture])
    # E0-only Elo and Dixon-Coles put Barcelona's home win at 0.38 at odds of 1.80
    assert after.probabilities == pytest.approx(before.probabilities, abs=1e-12)
    assert after.band == before.band
