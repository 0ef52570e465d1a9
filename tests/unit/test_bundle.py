"""The bundled football-data tarball: complete, intact, loadable in memory, reproducible."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd
import pytest

from marketcast.datasets.bundle import build_bundle, read_archive_csvs, read_bundle_manifest
from marketcast.datasets.football_data import FootballData, bundled_football_path, load_football

LEAGUES = {"E0", "E1", "D1", "SP1", "I1", "F1"}


@pytest.fixture(scope="module")
def manifest() -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(read_bundle_manifest(bundled_football_path())))


@pytest.fixture(scope="module")
def bundled() -> FootballData:
    return load_football(None)


def test_bundle_is_small_and_inside_the_package() -> None:
    path = bundled_football_path()
    assert path.name == "football.tar.xz"
    assert path.parent.name == "bundled"
    assert 0 < path.stat().st_size < 6 * 1024 * 1024


def test_every_manifest_file_is_bundled_byte_for_byte(manifest: pd.DataFrame) -> None:
    members = dict(read_archive_csvs(bundled_football_path()))
    assert set(members) == set(manifest["file"])
    for name, sha256 in zip(manifest["file"], manifest["sha256"], strict=True):
        assert hashlib.sha256(members[name]).hexdigest() == sha256, name


def test_bundle_loads_all_leagues_and_rows(bundled: FootballData, manifest: pd.DataFrame) -> None:
    matches = bundled.matches
    assert set(matches["league"]) == LEAGUES
    assert len(matches) == manifest["rows"].sum()
    assert bundled.report.files_read == len(manifest)
    assert bundled.report.blank_rows == manifest["blank_rows"].sum()
    assert bundled.report.ok
    per_file = matches.groupby("source_file").size()
    assert per_file.reindex(manifest["file"]).tolist() == manifest["rows"].tolist()
    assert matches["match_id"].is_unique
    assert matches["kickoff_utc"].is_monotonic_increasing


def test_bundle_odds_cover_the_manifest_closing_columns(
    bundled: FootballData, manifest: pd.DataFrame
) -> None:
    odds = bundled.odds
    psch = odds[(odds["market"] == "1x2") & (odds["timing"] == "closing")
                & (odds["bookmaker"] == "pinnacle")]  # fmt: skip
    assert len(psch) == manifest["PSCH"].sum()
    ah_close = odds[(odds["market"] == "ah") & (odds["timing"] == "closing")
                    & (odds["bookmaker"] == "pinnacle")]  # fmt: skip
    assert len(ah_close) == manifest["PCAHH"].sum()
    assert set(odds["market"]) == {"1x2", "ou25", "ah"}
    assert (odds[["odds_0", "odds_1"]] > 1).all().all()


def test_build_bundle_is_deterministic(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "E0").mkdir(parents=True)
    (source / "E0" / "2005-2006.csv").write_text(
        "Div,Date,HomeTeam,AwayTeam,FTHG,FTAG\nE0,13/08/05,Aston Villa,Bolton,2,2\n"
    )
    (source / "MANIFEST.csv").write_text("league,season\nE0,2005-2006\n")
    first = build_bundle(source, tmp_path / "a.tar.xz").read_bytes()
    second = build_bundle(source, tmp_path / "b.tar.xz").read_bytes()
    assert first == second
    names = [name for name, _ in read_archive_csvs(tmp_path / "a.tar.xz", include_manifest=True)]
    assert names == ["football/E0/2005-2006.csv", "football/MANIFEST.csv"]
    data = load_football([tmp_path / "a.tar.xz"])
    assert data.matches["match_id"].tolist() == ["E0:2005-08-13:Aston Villa:Bolton"]
    assert data.matches["season"].tolist() == ["2005-2006"]
