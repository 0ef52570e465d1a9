"""Step 9, export: run reports stored in the registry, and publishing champions to another one."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from marketcast.registry import (
    ArtifactIntegrityError,
    ModelNotFoundError,
    PromotionDecision,
    PromotionRule,
    Registry,
    RegistryError,
    build_manifest,
)
from marketcast.registry.publish import copy_version, publish

WINDOW = {
    "start_utc": "2020-08-01T00:00:00Z",
    "end_utc": "2022-05-31T00:00:00Z",
    "n_matches": 760,
}


def _register(registry: Registry, model: str, run_id: str, market: str = "1x2") -> str:
    files = {"params.json": json.dumps({"model": model, "run": run_id}).encode()}
    manifest = build_manifest(
        model_name=model,
        vertical="football",
        market=market,
        config={"seed": 1},
        files=files,
        data_sha256="a" * 64,
        features_sha256="b" * 64,
        training_window=WINDOW,
        scores={"log_loss": 0.98},
        backtest={},
        run_id=run_id,
    )
    return registry.register("football", market, model, files, manifest)


def _memory(name: str) -> Registry:
    return Registry(f"memory://{name}-{uuid.uuid4().hex}")


# ------------------------------------------------------------------ run reports


def test_a_run_report_round_trips_with_its_index() -> None:
    registry = _memory("reports")
    files = {"report.json": b'{"run_id": "r1"}', "report.html": b"<html></html>"}
    folder = registry.save_run_report("football", "2026-11-24T04-00-00_football_s1", files)
    assert folder.endswith("_reports/football/2026-11-24T04-00-00_football_s1")
    assert registry.run_reports("football") == ["2026-11-24T04-00-00_football_s1"]
    assert registry.run_report_files("football", "2026-11-24T04-00-00_football_s1") == files
    index = registry.run_report_index("football", "2026-11-24T04-00-00_football_s1")
    assert index is not None
    assert [entry.name for entry in index.files] == ["report.html", "report.json"]
    # saved again (a run rewrites its report when a move was not applied): the new set wins
    registry.save_run_report("football", "2026-11-24T04-00-00_football_s1", {"report.json": b"{}"})
    assert registry.run_report_files("football", "2026-11-24T04-00-00_football_s1") == {
        "report.json": b"{}"
    }


def test_reports_are_invisible_to_every_model_listing(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "reg"))
    version = _register(registry, "market", "r1")
    registry.save_run_report("football", "r1", {"report.json": b"{}"})
    assert registry.verticals() == ["football"]  # "_reports" is no vertical
    assert [(m.model_name, m.version) for m in registry.list_models()] == [("market", version)]
    assert registry.leftovers() == []


def test_a_modified_or_missing_report_file_is_named(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "reg"))
    registry.save_run_report("football", "r1", {"report.json": b"{}", "a.html": b"x"})
    index = registry.run_report_index("football", "r1")
    assert index is not None
    generation = tmp_path / "reg" / "_reports" / "football" / "r1" / index.generation
    (generation / "report.json").write_bytes(b'{"roi": 9}')
    with pytest.raises(ArtifactIntegrityError, match=r"'report\.json' was modified"):
        registry.run_report_files("football", "r1")
    (generation / "report.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"'report\.json' is missing"):
        registry.run_report_files("football", "r1")
    (generation.parent / "index.json").write_text("{not json")
    with pytest.raises(ArtifactIntegrityError, match=r"report index .* is unreadable"):
        registry.run_report_index("football", "r1")
    with pytest.raises(ModelNotFoundError, match="no report of football run r2"):
        registry.run_report_files("football", "r2")


def test_a_save_that_dies_part_way_leaves_the_earlier_report_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saved in place, a second save that died between the files and the index left an index
    naming files that had changed: every later read, and publish, failed for good."""
    registry = Registry(str(tmp_path / "reg"))
    registry.save_run_report("football", "r1", {"report.json": b'{"v": 1}'})
    real = registry._write_atomic

    def full_disk_at_the_index(path: str, data: bytes) -> None:
        if path.endswith("index.json"):
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(registry, "_write_atomic", full_disk_at_the_index)
    with pytest.raises(OSError, match="No space left"):
        registry.save_run_report("football", "r1", {"report.json": b'{"v": 2, "more": 1}'})
    assert registry.run_report_files("football", "r1") == {"report.json": b'{"v": 1}'}
    # what the dead save wrote is a leftover once old enough, and nothing else is
    later = Registry(str(tmp_path / "reg"), clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    [orphan] = later.leftovers()
    assert Path(orphan).parent.name == "r1"
    assert later.remove_leftovers() == [orphan]
    assert registry.run_report_files("football", "r1") == {"report.json": b'{"v": 1}'}
    # a good save replaces the index, then removes the earlier generation
    monkeypatch.undo()
    registry.save_run_report("football", "r1", {"report.json": b'{"v": 3}'})
    assert registry.run_report_files("football", "r1") == {"report.json": b'{"v": 3}'}
    assert len([p for p in (tmp_path / "reg/_reports/football/r1").iterdir() if p.is_dir()]) == 1


@pytest.mark.parametrize("root", ["local", "memory"])
def test_two_overlapping_saves_of_one_report_leave_the_index_readable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root: str
) -> None:
    """Save A wrote its index; save B then ran whole; A went on to remove every generation but
    its own, B's among them, which the index named: the report was unreadable for good."""
    url = str(tmp_path / "reg") if root == "local" else f"memory://overlap-{uuid.uuid4().hex}"
    registry = Registry(url)
    end_run = registry._end_run
    other = {"report.json": b'{"saved_by": "B"}'}

    def other_save_meanwhile(vertical: str, run_id: str) -> None:
        end_run(vertical, run_id)
        Registry(url).save_run_report(vertical, run_id, other)

    monkeypatch.setattr(registry, "_end_run", other_save_meanwhile)
    registry.save_run_report("football", "r1", {"report.json": b'{"saved_by": "A"}'})
    assert registry.run_report_files("football", "r1") == other  # the last index wins
    # B removed A's generation, written before B's: nothing is left over
    later = Registry(url, clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    assert later.leftovers() == []


def test_a_report_file_may_not_take_the_index_name() -> None:
    with pytest.raises(ValueError, match=r"'index\.json' is the registry's own name"):
        _memory("idx").save_run_report("football", "r1", {"index.json": b"{}"})


def test_an_index_copied_into_another_runs_folder_is_refused(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "reg"))
    registry.save_run_report("football", "r1", {"report.json": b"{}"})
    other = tmp_path / "reg" / "_reports" / "football" / "r2"
    other.mkdir()
    index = tmp_path / "reg" / "_reports" / "football" / "r1" / "index.json"
    (other / "index.json").write_bytes(index.read_bytes())
    with pytest.raises(ArtifactIntegrityError, match="describes football run r1"):
        registry.run_report_index("football", "r2")


@pytest.mark.parametrize("run_id", ["../x", "a/b", ".hidden", ""])
def test_a_run_id_that_could_leave_the_reports_folder_is_refused(run_id: str) -> None:
    with pytest.raises(ValueError, match="file name"):
        _memory("bad").save_run_report("football", run_id, {"report.json": b"{}"})


def test_a_report_needs_files() -> None:
    with pytest.raises(ValueError, match="no report files"):
        _memory("empty").save_run_report("football", "r1", {})


# ------------------------------------------------------------------ publish


def _source_with_champion() -> tuple[Registry, dict[str, str]]:
    source = _memory("source")
    versions = {
        "market": _register(source, "market", "run-1"),
        "elo": _register(source, "elo", "run-1"),
        "elo_older": _register(source, "elo", "run-0"),  # another run's: not copied
        "dixon_coles": _register(source, "dixon_coles", "run-0"),  # not in run-1: not copied
    }
    source.set_champion("football", "1x2", "market", versions["market"], "no champion yet")
    source.save_decision(
        "football",
        "1x2",
        PromotionDecision(
            champion="market",
            challenger="elo",
            promote=False,
            reason="not better",
            mean_difference=-0.001,
            p_value=None,
            n=400,
            rule=PromotionRule(),
        ),
    )
    source.save_run_report("football", "run-1", {"report.json": b'{"run_id": "run-1"}'})
    return source, versions


def test_publish_copies_the_champion_its_runs_versions_report_the_pointer_then_decision(
    tmp_path: Path,
) -> None:
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "published"))
    [done] = publish(source, target, "football")

    assert done.champion == f"market {versions['market']}"
    assert sorted(done.copied_versions) == sorted(
        [f"market {versions['market']}", f"elo {versions['elo']}"]
    )
    assert done.pointer_moved
    assert done.decision_copied
    assert done.report == "copied"
    champion = target.champion("football", "1x2")
    assert champion is not None
    assert (champion.model_name, champion.version) == ("market", versions["market"])
    assert champion.reason == f"published from {source.root}: no champion yet"
    # the version is the source's, byte for byte, manifest included
    assert target.manifest("football", "1x2", "market", versions["market"]) == source.manifest(
        "football", "1x2", "market", versions["market"]
    )
    assert target.load_files("football", "1x2", "elo", versions["elo"]) == source.load_files(
        "football", "1x2", "elo", versions["elo"]
    )
    assert target.versions("football", "1x2", "dixon_coles") == []
    assert target.versions("football", "1x2", "elo") == [versions["elo"]]
    assert target.latest_decision("football", "1x2") == source.latest_decision("football", "1x2")
    assert target.run_report_files("football", "run-1") == {"report.json": b'{"run_id": "run-1"}'}

    # publishing again copies nothing and moves nothing
    [again] = publish(source, target, "football")
    assert again.copied_versions == []
    assert not again.pointer_moved
    assert not again.decision_copied
    assert again.report == "present"
    assert len(target.decisions("football", "1x2")) == 1
    assert target.champion_history("football", "1x2") == []


def test_a_new_champion_in_the_source_moves_the_targets_pointer_with_history(
    tmp_path: Path,
) -> None:
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "published"))
    publish(source, target, "football")
    source.set_champion("football", "1x2", "elo", versions["elo"], "elo promoted")
    [done] = publish(source, target, "football", ["1x2"])
    assert done.pointer_moved
    assert done.copied_versions == []  # elo was there already
    champion = target.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "elo"
    assert [h.model_name for h in target.champion_history("football", "1x2")] == ["market"]


def test_a_target_version_with_other_content_is_refused_and_moves_nothing(
    tmp_path: Path,
) -> None:
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "published"))
    forged = source.manifest("football", "1x2", "market", versions["market"])
    files = {"params.json": b'{"model": "something else"}'}
    target.register("football", "1x2", "market", files, forged.model_copy(update={"files": []}))
    [done] = publish(source, target, "football")
    assert done.error is not None
    assert "with other files than the source's" in done.error
    assert target.champion("football", "1x2") is None


def test_a_damaged_copy_on_the_target_is_named_not_served(tmp_path: Path) -> None:
    """It counted as present, and the pointer moved to a version that could not load."""
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "published"))
    copy_version(source, target, "football", "1x2", "market", versions["market"])
    folder = tmp_path / "published" / "football" / "1x2" / "market" / versions["market"]
    (folder / "params.json").write_bytes(b"{}")
    [done] = publish(source, target, "football")
    assert done.error is not None
    assert "holds a damaged copy of football/1x2/market" in done.error
    assert target.champion("football", "1x2") is None


def test_a_tampered_source_artifact_is_not_published(tmp_path: Path) -> None:
    source = Registry(str(tmp_path / "source"))
    version = _register(source, "market", "run-1")
    source.set_champion("football", "1x2", "market", version, "first")
    artifact = tmp_path / "source" / "football" / "1x2" / "market" / version / "params.json"
    artifact.write_bytes(b'{"model": "edited"}')
    target = Registry(str(tmp_path / "published"))
    [done] = publish(source, target, "football")
    assert done.error is not None
    assert "ArtifactIntegrityError" in done.error
    assert "'params.json' was modified" in done.error
    assert target.versions("football", "1x2", "market") == []
    assert target.champion("football", "1x2") is None


def test_one_failing_market_leaves_the_others_published(tmp_path: Path) -> None:
    """The first failure ended the publish: later markets (and verticals) were not tried."""
    source, versions = _source_with_champion()
    ah = _register(source, "market", "run-1", market="ah")
    source.set_champion("football", "ah", "market", ah, "first")
    target = Registry(str(tmp_path / "published"))
    forged = source.manifest("football", "1x2", "market", versions["market"])
    bad = {"params.json": b'{"model": "something else"}'}
    target.register("football", "1x2", "market", bad, forged.model_copy(update={"files": []}))
    done = {m.market: m for m in publish(source, target, "football")}
    assert done["1x2"].error is not None
    assert done["ah"].error is None
    champion = target.champion("football", "ah")
    assert champion is not None
    assert champion.version == ah


def test_publish_refuses_its_own_registry_and_names_a_market_without_champion(
    tmp_path: Path,
) -> None:
    source, _ = _source_with_champion()
    with pytest.raises(RegistryError, match="to itself"):
        publish(source, Registry(source.root + "/"), "football")
    local = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError, match="to itself"):
        publish(local, Registry(f"file://{tmp_path / 'reg'}"), "football")
    [named] = publish(source, Registry(str(tmp_path / "t")), "football", ["ou25"])
    assert named.error is not None
    assert "football/ou25 has no champion" in named.error
    # unnamed, markets without a champion are simply left out
    _register(source, "market", "run-1", market="ah")
    assert [m.market for m in publish(source, Registry(str(tmp_path / "t")), "football")] == ["1x2"]


def test_copy_version_keeps_a_version_already_there(tmp_path: Path) -> None:
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "t"))
    assert copy_version(source, target, "football", "1x2", "elo", versions["elo_older"])
    assert not copy_version(source, target, "football", "1x2", "elo", versions["elo_older"])


def test_a_source_rollback_is_a_rollback_on_the_target(tmp_path: Path) -> None:
    """Published as a promotion, the withdrawn version stayed the newest of the target's
    history, and a rollback there restored it."""
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "t"))
    publish(source, target, "football")
    source.set_champion("football", "1x2", "elo", versions["elo"], "elo promoted")
    publish(source, target, "football")
    source.rollback("football", "1x2")
    [done] = publish(source, target, "football")
    assert done.pointer_moved
    champion = target.champion("football", "1x2")
    assert champion is not None
    assert (champion.model_name, champion.version) == ("market", versions["market"])
    assert target.champion_history("football", "1x2") == []  # as on the source
    with pytest.raises(RegistryError, match="cannot roll back football/1x2"):
        target.rollback("football", "1x2")


def test_a_decision_already_on_the_target_is_not_saved_again(tmp_path: Path) -> None:
    """Behind a newer decision of the target's own, it was saved again at every publish."""
    source, _ = _source_with_champion()
    target = Registry(str(tmp_path / "t"))
    publish(source, target, "football")
    own = PromotionDecision(
        champion="market",
        challenger="dixon_coles",
        promote=False,
        reason="the target's own",
        mean_difference=-0.01,
        p_value=None,
        n=300,
        rule=PromotionRule(),
    )
    target.save_decision(
        "football",
        "1x2",
        own.model_copy(update={"decided_utc": datetime.now(UTC) + timedelta(days=1)}),
    )
    for _ in range(2):
        [done] = publish(source, target, "football")
        assert not done.decision_copied
    assert len(target.decisions("football", "1x2")) == 2


def test_a_source_pointer_moved_while_publishing_is_published_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The target kept the version the source had just withdrawn, reported as success."""
    from marketcast.registry import publish as publish_module

    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "t"))
    real = publish_module.copy_version
    moved: list[bool] = []

    def promoting_meanwhile(*args: Any) -> bool:
        if not moved:
            moved.append(True)
            source.set_champion("football", "1x2", "elo", versions["elo"], "elo promoted")
        return real(*args)

    monkeypatch.setattr(publish_module, "copy_version", promoting_meanwhile)
    [done] = publish(source, target, "football")
    assert done.error is None
    assert done.champion == f"elo {versions['elo']}"
    champion = target.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "elo"
    # what the first pass did is reported too (only the last pass's, all copied, was)
    assert sorted(done.copied_versions) == sorted(
        [f"market {versions['market']}", f"elo {versions['elo']}"]
    )
    assert done.decision_copied
    assert done.pointer_moved


def test_a_hand_made_run_id_has_no_report_and_still_publishes(tmp_path: Path) -> None:
    source = _memory("handmade")
    version = _register(source, "market", "made by hand / v1")
    source.set_champion("football", "1x2", "market", version, "manual promotion")
    [done] = publish(source, Registry(str(tmp_path / "t")), "football")
    assert done.error is None
    assert done.report == "absent"
    assert done.pointer_moved


def test_the_report_state_is_the_champions_runs_when_the_publishing_run_is_it(
    tmp_path: Path,
) -> None:
    """It said "present" for a report copied a moment before, as the publishing run's."""
    source, _ = _source_with_champion()
    [done] = publish(source, Registry(str(tmp_path / "t")), "football", extra_runs=("run-1",))
    assert done.report == "copied"


def test_a_run_publishes_past_a_market_whose_pointer_is_damaged(tmp_path: Path) -> None:
    """Reading that pointer to choose the markets ended the run after its moves."""
    from rich.console import Console

    from marketcast.orchestration.export import publish_champions

    source = Registry(str(tmp_path / "source"))
    for market in ("1x2", "ah"):
        version = _register(source, "market", "run-1", market=market)
        source.set_champion("football", market, "market", version, "first")
    (tmp_path / "source" / "football" / "ah" / "champion.json").write_text("{")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    console = Console(file=open(tmp_path / "log.txt", "w"))  # noqa: SIM115
    target = str(tmp_path / "t")
    [entry] = publish_champions(
        (target,), source, "football", ["1x2", "ah"], "run-1", run_dir, console
    )
    assert not entry["ok"]
    assert entry["markets"]["1x2"].get("error") is None
    assert "champion file" in entry["markets"]["ah"]["error"]
    assert json.loads((run_dir / "publish.json").read_text()) == [entry]
    assert Registry(target).champion("football", "1x2") is not None


def test_a_pointer_that_cannot_move_leaves_the_decision_uncopied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, _ = _source_with_champion()
    target = Registry(str(tmp_path / "published"))
    elo = _register(target, "elo", "run-9")
    target.set_champion("football", "1x2", "elo", elo, "first")

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(target, "set_champion", full_disk)
    [failed] = publish(source, target, "football")
    assert "No space left" in (failed.error or "")
    assert not failed.pointer_moved
    assert not failed.decision_copied  # was: copied before the pointer
    assert target.champion("football", "1x2").model_name == "elo"
    assert target.decisions("football", "1x2") == []  # no "keep market" beside champion elo

    monkeypatch.undo()  # the next publish completes both
    [done] = publish(source, target, "football")
    assert done.pointer_moved
    assert done.decision_copied
    assert target.latest_decision("football", "1x2") == source.latest_decision("football", "1x2")


def test_publish_copies_the_versions_the_copied_decision_tested(tmp_path: Path) -> None:
    """A champion kept from run-1 faced run-2's challenger: the target got the decision naming
    run-2's version, and not the version, so a recheck there found nothing to test."""
    source = _memory("kept")
    kept = _register(source, "market", "run-1")
    source.set_champion("football", "1x2", "market", kept, "no champion yet")
    challenger = _register(source, "dixon_coles", "run-2")
    source.save_decision(
        "football",
        "1x2",
        PromotionDecision(
            champion="market",
            challenger="dixon_coles",
            promote=False,
            reason="not significant",
            mean_difference=0.0001,
            p_value=0.4,
            n=400,
            rule=PromotionRule(),
            champion_version=kept,
            challenger_version=challenger,
        ),
    )
    target = Registry(str(tmp_path / "published"))
    [done] = publish(source, target, "football")
    assert done.error is None
    assert sorted(done.copied_versions) == sorted([f"market {kept}", f"dixon_coles {challenger}"])
    assert target.versions("football", "1x2", "dixon_coles") == [challenger]
    decision = target.latest_decision("football", "1x2")
    assert decision is not None
    assert decision.challenger_version == challenger
