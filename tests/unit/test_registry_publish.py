"""Step 9, export: run reports stored in the registry, and publishing champions to another one."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

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
    folder = Path(
        registry.save_run_report("football", "r1", {"report.json": b"{}", "a.html": b"x"})
    )
    (folder / "report.json").write_bytes(b'{"roi": 9}')
    with pytest.raises(ArtifactIntegrityError, match=r"'report\.json' was modified"):
        registry.run_report_files("football", "r1")
    (folder / "report.json").unlink()
    with pytest.raises(ArtifactIntegrityError, match=r"'report\.json' is missing"):
        registry.run_report_files("football", "r1")
    (folder / "index.json").write_text("{not json")
    with pytest.raises(ArtifactIntegrityError, match=r"report index .* is unreadable"):
        registry.run_report_index("football", "r1")
    with pytest.raises(ModelNotFoundError, match="no report of football run r2"):
        registry.run_report_files("football", "r2")


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


def test_publish_copies_the_champion_its_runs_versions_decision_report_then_the_pointer(
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
    with pytest.raises(RegistryError, match=r"publishing football/1x2 .* with other files"):
        publish(source, target, "football")
    assert target.champion("football", "1x2") is None


def test_a_tampered_source_artifact_is_not_published(tmp_path: Path) -> None:
    source = Registry(str(tmp_path / "source"))
    version = _register(source, "market", "run-1")
    source.set_champion("football", "1x2", "market", version, "first")
    artifact = tmp_path / "source" / "football" / "1x2" / "market" / version / "params.json"
    artifact.write_bytes(b'{"model": "edited"}')
    target = Registry(str(tmp_path / "published"))
    with pytest.raises(ArtifactIntegrityError, match=r"'params\.json' was modified"):
        publish(source, target, "football")
    assert target.versions("football", "1x2", "market") == []
    assert target.champion("football", "1x2") is None


def test_publish_refuses_its_own_registry_and_a_market_without_champion(tmp_path: Path) -> None:
    source, _ = _source_with_champion()
    with pytest.raises(RegistryError, match="to itself"):
        publish(source, Registry(source.root + "/"), "football")
    local = Registry(str(tmp_path / "reg"))
    with pytest.raises(RegistryError, match="to itself"):
        publish(local, Registry(f"file://{tmp_path / 'reg'}"), "football")
    with pytest.raises(RegistryError, match="football/ou25 has no champion"):
        publish(source, Registry(str(tmp_path / "t")), "football", ["ou25"])
    # unnamed, markets without a champion are simply left out
    _register(source, "market", "run-1", market="ah")
    assert [m.market for m in publish(source, Registry(str(tmp_path / "t")), "football")] == ["1x2"]


def test_copy_version_keeps_a_version_already_there(tmp_path: Path) -> None:
    source, versions = _source_with_champion()
    target = Registry(str(tmp_path / "t"))
    assert copy_version(source, target, "football", "1x2", "elo", versions["elo_older"])
    assert not copy_version(source, target, "football", "1x2", "elo", versions["elo_older"])
