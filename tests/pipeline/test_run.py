"""`marketcast run` end to end on one league: report files, registry, manifests, promotion."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
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
        first = decision.get("first_champion")  # this first run crowned it, then tested
        crowned = f"first champion {first}; " if first else ""
        line = (
            f"{market}: {crowned}{decision['challenger']} {verdict} over {decision['champion']}: "
        )
        assert line + decision["reason"] in " ".join(console_text.split())
        # the report's decision is the saved one, time included (the report's was null)
        saved = registry.decisions("football", market)[-1]
        assert decision["decided_utc"] is not None
        assert decision["decided_utc"] == saved.model_dump(mode="json")["decided_utc"]

    # A second run finds the champion and refreshes it; the first champion stays in history.
    first = registry.champion("football", "1x2")
    run_football(config, console=console)
    history = registry.champion_history("football", "1x2")
    assert first is not None
    assert first.version in {h.version for h in history}


def _small(tmp_path: Path, models: list[str]) -> FootballRunConfig:
    return FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": models,
            "markets": ["1x2"],
            "walk_forward": {"last_seasons": 1},
            "backtest": {"n_bootstrap": 100},
            "registry_root": str(tmp_path / "registry"),
            "runs_dir": str(tmp_path / "runs"),
        }
    )


def _quiet(tmp_path: Path) -> Console:
    return Console(file=open(tmp_path / "console.txt", "a"), width=120)


def test_a_run_that_cannot_write_its_report_moves_no_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pointers moved before the reports were written: a full disk there left champions
    whose run had no report. Now the reports land first."""
    from marketcast.orchestration import football

    def full_disk(run_dir: Path, report: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(football, "write_report", full_disk)
    config = _small(tmp_path, ["market", "elo"])
    with pytest.raises(OSError, match="No space left"):
        run_football(config, console=_quiet(tmp_path))
    registry = Registry(config.registry_root)
    assert registry.champion("football", "1x2") is None
    assert registry.decisions("football", "1x2") == []  # no decision without its effect
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["feature_store"]  # no run folder


def _run_failing_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, method: str, models: list[str]
) -> dict[str, Any]:
    """Run with the registry's ``method`` raising; the 1X2 promotion entry of its report."""
    from marketcast.registry import RegistryError

    def broken(*args: object, **kwargs: object) -> None:
        raise RegistryError("the object store refused the write")

    monkeypatch.setattr(Registry, method, broken)
    with pytest.raises(RegistryError, match="refused the write"):
        run_football(_small(tmp_path, models), console=_quiet(tmp_path))
    [report_file] = (tmp_path / "runs").glob("*/report.json")
    promotion: dict[str, Any] = json.loads(report_file.read_text())["promotion"]["1x2"]
    promotion["html"] = (report_file.parent / "report.html").read_text()
    return promotion


def test_a_run_stopped_while_moving_pointers_leaves_a_report_that_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The report (written first) said "registry champion after this run: market" while a
    registry error stopped the run before any pointer moved."""
    promotion = _run_failing_at(tmp_path, monkeypatch, "set_champion", ["market", "elo"])
    assert promotion["not_applied"].startswith("the run stopped before this market was applied")
    assert promotion["registry_champion"] == "none"
    assert "not applied" in promotion["html"]


def test_a_run_stopped_after_moving_a_pointer_does_not_call_the_move_unapplied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure saving the decision (after the pointer moved) marked the market not applied
    beside a registry champion the move had just made."""
    promotion = _run_failing_at(tmp_path, monkeypatch, "save_decision", ["market"])
    assert Registry(str(tmp_path / "registry")).champion("football", "1x2") is not None
    assert "not_applied" not in promotion
    # but the move stands without its decision, which the report did not say
    assert promotion["decision_not_saved"].startswith(
        "the run stopped while saving this market's promotion decision (RegistryError: "
    )
    assert "Decision not saved: the run stopped while saving" in promotion["html"]


def test_a_wide_table_leaves_a_terminal_following_console_as_it_was() -> None:
    """Widening the console for one print pinned one that followed its terminal at 80."""
    import io

    from rich.table import Table

    from marketcast.orchestration.football import print_unclipped

    console = Console(file=io.StringIO())
    assert console._width is None  # follows the terminal
    table = Table()
    table.add_column("x" * 200)
    print_unclipped(console, table)
    assert console._width is None
    assert "x" * 200 in console.file.getvalue()


def test_the_first_champion_is_in_the_report_and_the_summary_fits_a_narrow_terminal(
    tmp_path: Path,
) -> None:
    """A run that crowned the first champion with no challenger left no promotion entry, and
    a pipe's 80 columns cut the summary's ratios to "1.00…"."""
    import io

    out = io.StringIO()
    run = run_football(_small(tmp_path, ["market"]), console=Console(file=out, width=60))
    first = run.report["promotion"]["1x2"]
    version = Registry(str(tmp_path / "registry")).champion("football", "1x2")
    assert version is not None
    assert first["first_champion"].startswith(f"market {version.version}: no champion yet")
    text = out.getvalue()
    assert "…" not in text
    ratio = run.evaluation.markets["1x2"].summary["ratio_to_closing"]["market"]
    assert f"{ratio:.4f}" in text
    assert "1x2: first champion market" in text


def test_a_champion_the_run_did_not_evaluate_stays_untested(tmp_path: Path) -> None:
    """A run of [elo] alone made elo champion over market, with the reason "no champion yet".

    A ``market`` champion is tested by such a run on the ``prematch`` yardstick's losses (as
    ``evaluate`` tests it; tests/pipeline/test_promotion_audit_fixes.py); a champion of another
    model the run leaves out stays untested."""
    run_football(_small(tmp_path, ["market"]), console=_quiet(tmp_path))
    registry = Registry(str(tmp_path / "registry"))
    before = registry.champion("football", "1x2")
    assert before is not None
    assert before.model_name == "market"
    first = registry.latest_decision("football", "1x2")  # "no champion yet": names the version
    assert first is not None
    assert (first.challenger, first.challenger_version) == ("market", before.version)
    run = run_football(_small(tmp_path, ["elo"]), console=_quiet(tmp_path))
    assert registry.champion("football", "1x2") == before
    assert run.champions == {"1x2": "market"}
    decision = run.report["promotion"]["1x2"]
    assert (decision["challenger"], decision["promote"]) == ("elo", False)
    assert decision["champion_version"] == before.version
    elo = registry.latest_version("football", "1x2", "elo")
    assert elo is not None
    registry.set_champion("football", "1x2", "elo", elo, "by hand")
    crowned = registry.champion("football", "1x2")
    run = run_football(_small(tmp_path, ["market"]), console=_quiet(tmp_path))
    assert registry.champion("football", "1x2") == crowned
    assert run.champions == {"1x2": "elo"}
    reason = run.report["promotion"]["1x2"]["reason"]
    assert reason.startswith(f"elo {elo} stays: this run did not evaluate it")
    assert "(models: market)" in reason


def test_a_narrower_run_leaves_a_champion_serving_more_leagues(tmp_path: Path) -> None:
    """An E0-only experiment against the production registry "refreshed" the two-league
    champion with its E0 refit: the server then refused every E1 fixture."""
    wide = _small(tmp_path, ["market", "elo"])
    wide = wide.model_copy(update={"data": wide.data.model_copy(update={"leagues": ("E0", "E1")})})
    run_football(wide, console=_quiet(tmp_path))
    registry = Registry(str(tmp_path / "registry"))
    before = registry.champion("football", "1x2")
    assert before is not None
    run = run_football(_small(tmp_path, ["market", "elo"]), console=_quiet(tmp_path))
    assert registry.champion("football", "1x2") == before
    reason = run.report["promotion"]["1x2"]["reason"]
    assert reason == (
        f"{before.model_name} {before.version} stays: it serves E1, which this run did not "
        "cover (this run: E0), so neither its refit nor a challenger may replace it (this "
        "run's versions are registered: `marketcast registry promote` one to drop those leagues "
        "on purpose)"
    )
    # the same leagues again: refreshed as before
    run_football(wide, console=_quiet(tmp_path))
    after = registry.champion("football", "1x2")
    assert after is not None
    assert after.version != before.version


def test_a_promotion_made_during_the_run_is_not_undone(tmp_path: Path) -> None:
    """A rollback made while a run worked was silently undone by the run's refresh."""
    from marketcast.orchestration.football import _apply_promotions, _MarketPlan
    from marketcast.registry import PromotionRule, decide_promotion
    from tests.unit.test_registry import make_manifest

    registry = Registry(str(tmp_path / "registry"))
    files = {"m.json": b"{}"}
    versions = {
        name: registry.register(
            "football", "1x2", name, files, make_manifest(name, files, market="1x2")
        )
        for name in ("market", "elo", "dixon_coles")
    }
    registry.set_champion("football", "1x2", "market", versions["market"], "first")
    decision = decide_promotion(None, None, "elo", [0.9] * 300, PromotionRule())
    plan = _MarketPlan(
        "1x2",
        ("market", versions["market"]),  # what the run read before deciding
        [("elo", versions["elo"], "elo wins")],
        [decision],
        "elo",
        None,
    )
    # meanwhile, someone promotes dixon_coles by hand
    registry.set_champion("football", "1x2", "dixon_coles", versions["dixon_coles"], "by hand")
    not_applied = _apply_promotions(registry, [plan])
    assert "changed after it was read" in not_applied["1x2"]
    champion = registry.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "dixon_coles"
    assert registry.decisions("football", "1x2") == []
    # with the pointer as read, the same plan applies and its decision is saved
    registry.set_champion("football", "1x2", "market", versions["market"], "back")
    assert _apply_promotions(registry, [plan]) == {}
    champion = registry.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "elo"
    assert len(registry.decisions("football", "1x2")) == 1


def test_a_run_whose_promotion_was_not_applied_says_so_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal printed "promoted" and the page "Promote ..." for a pointer never moved."""
    from marketcast.orchestration import football

    config = _small(tmp_path, ["market", "elo"])
    registry = Registry(config.registry_root)
    write_report = football.write_report
    calls: list[int] = []

    def meanwhile(run_dir: Path, report: dict[str, object]) -> object:
        if not calls:  # someone makes elo champion while the run writes its report
            elo = registry.latest_version("football", "1x2", "elo")
            assert elo is not None
            registry.set_champion("football", "1x2", "elo", elo, "by hand")
        calls.append(1)
        return write_report(run_dir, report)

    monkeypatch.setattr(football, "write_report", meanwhile)
    run = run_football(config, console=_quiet(tmp_path))
    assert len(calls) == 2  # written, then rewritten with the outcome
    assert run.champions["1x2"] == "elo"
    decision = json.loads((run.run_dir / "report.json").read_text())["promotion"]["1x2"]
    assert "changed after it was read" in decision["not_applied"]
    assert decision["registry_champion"] == "elo"
    html = (run.run_dir / "report.html").read_text()
    assert "not applied" in html
    assert "Registry champion after this run: <strong>elo</strong>" in html
    assert "[NOT APPLIED: " in " ".join((tmp_path / "console.txt").read_text().split())


def test_progress_is_written_as_plain_lines_where_the_console_is_no_terminal() -> None:
    """A progress bar is drawn only when it finishes on a console that is no terminal: `make
    run > log`, CI or nohup wrote nothing for the half hour of a slow walk-forward."""
    from marketcast.orchestration.football import _progress

    out = io.StringIO()
    with _progress(Console(file=out, width=100), "walk-forward", every_s=3600) as step:
        for done in range(1, 6):
            step(done, 5, f"week {done}")
    lines = out.getvalue().splitlines()
    # the first step at once, then none within the hour, and the last one
    assert [line.split()[1] for line in lines] == ["1/5", "5/5"]
    assert lines[-1].startswith("walk-forward 5/5 0:00:0")
    assert lines[-1].endswith("week 5")
    terminal = io.StringIO()
    with _progress(Console(file=terminal, force_terminal=True), "walk-forward") as step:
        step(1, 5, "week 1")
    assert "walk-forward 1/5 0:00" not in terminal.getvalue()  # the bar draws it
