"""A football run into a registry with no champion needs the ``market`` model: it crowned the
lowest log loss untested before (a known limit of the evaluate audit, closed here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.config import load_config
from marketcast.orchestration.football import check_first_champions
from marketcast.registry import Registry
from tests.unit.test_registry import FILES, make_manifest


def _config(tmp_path: Path, models: str, markets: str = "[1x2, ou25]") -> Path:
    path = tmp_path / "football.yaml"
    path.write_text(
        "data: {leagues: [E0]}\n"
        f"models: {models}\nmarkets: {markets}\n"
        f"registry_root: {tmp_path / 'registry'}\nruns_dir: {tmp_path / 'runs'}\n"
    )
    return path


def _crown(tmp_path: Path, market: str) -> None:
    registry = Registry(str(tmp_path / "registry"))
    manifest = make_manifest("elo", FILES, market=market)
    version = registry.register("football", market, "elo", FILES, manifest)
    registry.set_champion("football", market, "elo", version, "crowned by an earlier run")


def test_a_dry_run_without_market_into_an_empty_registry_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path, "[elo, dixon_coles]")
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}, field 'models': 1x2, ou25 have no champion" in err
    assert "add 'market' to models" in err
    assert "Traceback" not in err


def test_only_the_markets_without_a_champion_are_named(tmp_path: Path) -> None:
    path = _config(tmp_path, "[elo]")
    _crown(tmp_path, "1x2")
    with pytest.raises(ValueError, match=rf"^{path}, field 'models': ou25 has no champion in "):
        check_first_champions(load_config(path), str(path))


def test_a_run_without_market_defends_a_champion_on_record(tmp_path: Path) -> None:
    path = _config(tmp_path, "[elo]", markets="[1x2]")
    _crown(tmp_path, "1x2")
    check_first_champions(load_config(path), str(path))  # no first champion to crown


def test_market_in_the_models_crowns_the_first_champion(tmp_path: Path) -> None:
    path = _config(tmp_path, "[market, elo]")
    check_first_champions(load_config(path), str(path))
