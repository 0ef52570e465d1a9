"""A run whose settings make the champion's model another model leaves the champion: it used to
"refresh" it by name with the new parameters, untested, and test the challengers against those."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from marketcast.registry import Registry
from tests.pipeline.test_cloud_members import bundled_seasons, small_run


def _run(root: Path, **settings: Any) -> Registry:
    return small_run(root, root / "data", ["elo"], **settings)


def test_new_parameters_for_the_champions_model_leave_the_champion(tmp_path: Path) -> None:
    bundled_seasons(tmp_path / "data", {"E0": ("2020-2021", "2021-2022")})
    # a first champion is the market model (a run without it is refused): elo is then made
    # champion by hand, as a promotion or a rollback could have
    registry = small_run(tmp_path, tmp_path / "data", ["market", "elo"])
    version = registry.latest_version("football", "1x2", "elo")
    assert version is not None
    registry.set_champion("football", "1x2", "elo", version, "crowned for the test")
    first = registry.champion("football", "1x2")
    assert first is not None
    assert first.model_name == "elo"

    registry = _run(tmp_path, model_params={"elo": {"use_pi": True}})
    kept = registry.champion("football", "1x2")
    assert kept == first
    newest = registry.latest_version("football", "1x2", "elo")
    assert newest != first.version  # the new parameters' version is registered, not crowned
    report = sorted((tmp_path / "runs").glob("*/report.json"))[-1].read_text()
    assert "model_params.elo differ from the champion's" in report

    registry = _run(tmp_path, demargin_method="power")
    assert registry.champion("football", "1x2") == first

    registry = _run(tmp_path)  # the champion's own settings: refreshed as before
    refreshed = registry.champion("football", "1x2")
    assert refreshed is not None
    assert refreshed.version not in (first.version, newest)
    assert refreshed.model_name == "elo"
