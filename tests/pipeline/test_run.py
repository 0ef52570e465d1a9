"""`marketcast run` end to end on one league: report files, registry, manifests, promotion."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from marketcast.config import FootballRunConfig
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry


def _config(tmp_path: Path) -> FootballRunConfig:
    return FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market", "elo", "dixon_coles"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 100},
            "registry_root": str(tmp_path / "registry"),
            "runs_dir": str(tmp_path / "runs"),
        }
    )


def test_run_writes_reports_registers_and_promotes(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "console.txt", "w"), width=120)  # noqa: SIM115
    config = _config(tmp_path)
    run = run_football(config, console=console)

    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["run_id"] == run.run_id
    one = report["evaluation"]["markets"]["1x2"]
    assert set(one["engines"]) == {"market", "elo", "dixon_coles"}
    assert one["engines"]["market"]["n"] == 380
    assert report["per_league"]["E0"]["1x2"]["ratio_to_closing"]["market"] > 0.9
    assert report["data"]["rows_kept"] == 39891  # the whole bundle was read and validated
    assert report["data"]["matches_in_run"] == 18 * 380
    html = (run.run_dir / "report.html").read_text()
    assert "dixon_coles" in html
    assert "<svg" in html
    contract = json.loads((run.run_dir / "evaluation.json").read_text())
    assert contract == report["evaluation"]

    registry = Registry(config.registry_root)
    for market in ("1x2", "ou25", "ah"):
        champion = registry.champion("football", market)
        assert champion is not None
        assert champion.model_name == run.champions[market]
        manifest = registry.manifest("football", market, champion.model_name, champion.version)
        assert "rps" in manifest.scores
        assert "log_loss" in manifest.scores
        assert len(manifest.data_sha256) == 64
        assert len(manifest.features_sha256) == 64
        assert manifest.training_window.n_matches == 18 * 380
        assert registry.decisions("football", market)
    # Elo prices 1X2 only: it is registered there and nowhere else.
    assert {m.model_name for m in registry.list_models("football", "ou25")} == {
        "market",
        "dixon_coles",
    }
    console_text = (tmp_path / "console.txt").read_text()
    assert "ratio" in console_text
    for market, decision in report["promotion"].items():
        verdict = "promoted" if decision["promote"] else "not promoted"
        line = f"{market}: {decision['challenger']} {verdict} over {decision['champion']}: "
        assert line + decision["reason"] in " ".join(console_text.split())

    # A second run finds the champion and refreshes it; the first champion stays in history.
    first = registry.champion("football", "1x2")
    run_football(config, console=console)
    history = registry.champion_history("football", "1x2")
    assert first is not None
    assert first.version in {h.version for h in history}
