"""A run stopped between registering its versions and saving its report: no champion pointer
moved to them, yet they were complete versions like any other, listed, shown as the latest and
promotable, and `registry clean` never found them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from marketcast.registry import Registry
from tests.unit.test_registry import FILES, START, StepClock, make_manifest

HOUR = timedelta(hours=1)


def _clocked(root: str) -> tuple[Registry, StepClock]:
    clock = StepClock(START)
    return Registry(root, clock=clock), clock


def _register(registry: Registry, model: str, run_id: str, content: bytes) -> str:
    files = {**FILES, "params.json": content}
    manifest = make_manifest(model, files, run_id=run_id)
    return registry.register("football", "e0", model, files, manifest)


@pytest.fixture(params=["local", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "registry")
    return f"memory://stopped-runs-{tmp_path.name}"


def test_the_versions_of_a_stopped_run_are_leftovers_once_old(root: str) -> None:
    registry, clock = _clocked(root)
    kept = _register(registry, "elo", "earlier", b"0")
    registry.save_run_report("football", "earlier", {"report.json": b"{}"})
    registry.set_champion("football", "e0", "elo", kept, "first")
    registry.begin_run("football", "stopped")
    elo = _register(registry, "elo", "stopped", b"1")
    dixon_coles = _register(registry, "dixon_coles", "stopped", b"2")
    # the run stops here: no report, no pointer moved
    assert registry.stopped_runs() == []  # under an hour: it may still be writing its report
    assert registry.leftovers() == []
    clock.current += 2 * HOUR
    assert registry.stopped_runs() == [("football", "stopped")]
    mark = registry.leftovers()[0]
    assert mark.endswith("_runs/football/stopped.json")
    assert registry.leftovers()[1:] == sorted(
        registry._version_path("football", "e0", model, version)
        for model, version in (("elo", elo), ("dixon_coles", dixon_coles))
    )
    assert len(registry.remove_leftovers()) == 3
    assert [(m.model_name, m.version) for m in registry.list_models()] == [("elo", kept)]
    assert registry.leftovers() == []
    champion = registry.champion("football", "e0")
    assert champion is not None
    assert champion.version == kept


def test_a_saved_report_ends_the_run(root: str) -> None:
    registry, clock = _clocked(root)
    registry.begin_run("football", "r1")
    _register(registry, "elo", "r1", b"1")
    registry.save_run_report("football", "r1", {"report.json": b"{}"})
    clock.current += 2 * HOUR
    assert registry.stopped_runs() == []
    assert registry.leftovers() == []
    assert [m.run_id for m in registry.list_models()] == ["r1"]


def test_a_version_promoted_by_hand_stays(root: str) -> None:
    """A user who promoted a stopped run's version keeps it, now and in the history, and the
    run's other versions of that market (clean removed them, and the cloud path's blend with
    them)."""
    registry, clock = _clocked(root)
    registry.begin_run("football", "stopped")
    elo = _register(registry, "elo", "stopped", b"1")
    dixon_coles = _register(registry, "dixon_coles", "stopped", b"2")
    lightgbm = _register(registry, "lightgbm", "stopped", b"3")  # a run-mate, never champion
    registry.set_champion("football", "e0", "elo", elo, "manual promotion")
    registry.set_champion("football", "e0", "dixon_coles", dixon_coles, "manual promotion")
    clock.current += 2 * HOUR
    listed = registry.leftovers()
    assert listed == [registry._path("_runs", "football", "stopped.json")]
    registry.remove_leftovers()
    # the champion's run-mates stay too: a server blends them with it (`version_of_run`)
    assert {m.model_name for m in registry.list_models()} == {"elo", "dixon_coles", "lightgbm"}
    assert registry.version_of_run("football", "e0", "lightgbm", "stopped", near=elo) == lightgbm
    assert registry.stopped_runs() == []


def test_the_mark_goes_after_the_versions(root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A clean that dies part-way must leave the mark, or the versions left are never found."""
    registry, clock = _clocked(root)
    registry.begin_run("football", "stopped")
    _register(registry, "elo", "stopped", b"1")
    _register(registry, "dixon_coles", "stopped", b"2")
    clock.current += 2 * HOUR
    removed: list[str] = []
    monkeypatch.setattr(registry._fs, "rm", lambda path, **kw: removed.append(path))
    registry.remove_leftovers()
    assert len(removed) == 5
    assert removed[-1].endswith("_runs/football/stopped.json")
    # each version's manifest before the rest of its folder: a clean killed in between left
    # a listed version with files missing (was: three removals, folders whole)
    assert removed[0] == f"{removed[1]}/manifest.json"
    assert removed[2] == f"{removed[3]}/manifest.json"


def test_an_unreadable_mark_is_skipped_with_a_warning(
    root: str, caplog: pytest.LogCaptureFixture
) -> None:
    registry, clock = _clocked(root)
    registry.begin_run("football", "stopped")
    _register(registry, "elo", "stopped", b"1")
    path = registry._path("_runs", "football", "stopped.json")
    registry._fs.pipe_file(path, b"{not json")
    clock.current += 2 * HOUR
    with caplog.at_level("WARNING", logger="marketcast.registry.store"):
        assert registry.leftovers() == []
    assert "skipping the run mark" in caplog.text
    assert "stopped.json: unreadable" in caplog.text


def test_registry_list_says_which_versions_a_stopped_run_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from marketcast.cli import main

    root = str(tmp_path / "registry")
    registry = Registry(root, clock=StepClock(START - 2 * HOUR))  # the run began 2 h before
    registry.begin_run("football", "stopped-run")
    _register(registry, "elo", "stopped-run", b"1")
    _register(registry, "dixon_coles", "stopped-run", b"2")
    capsys.readouterr()
    assert main(["registry", "--root", root, "list"]) == 0
    err = capsys.readouterr().err
    assert "note: 2 football version(s) above are of run stopped-run, which stopped before" in err
    assert "`marketcast registry clean` removes them" in err
    assert main(["registry", "--root", root, "clean"]) == 0
    assert "removed 3 leftover(s)" in capsys.readouterr().out
    assert main(["registry", "--root", root, "list"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_stopped_runs_versions_stay_where_the_champion_pointer_cannot_be_read(
    root: str,
) -> None:
    """Which versions a damaged ``champion.json`` names cannot be told: `clean` failed with
    it, and now leaves that market's versions and the run's mark (with a warning) and cleans
    the rest."""
    registry, clock = _clocked(root)
    registry.begin_run("football", "stopped")
    _register(registry, "elo", "stopped", b"1")
    clock.current += 2 * HOUR
    pointer = registry._market_path("football", "e0", "champion.json")
    registry._write_atomic(pointer, b"{")
    assert registry.leftovers() == []  # the mark stays too, for a clean after the repair
    registry._fs.rm(pointer)
    assert len(registry.leftovers()) == 2  # the version, then the mark
