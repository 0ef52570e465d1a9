"""`marketcast run` step 9: the report goes into the registry, champions to the publish targets.

One small real run (E0, one test season, 1X2, market and Elo) serves every test here.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from marketcast.cli import main
from marketcast.config import FootballRunConfig
from marketcast.data.validation import DataError
from marketcast.orchestration import export
from marketcast.orchestration.football import check_outputs
from marketcast.registry import Registry
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService


def _settings(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "data": {"leagues": ["E0"]},
        "models": ["market", "elo"],
        "markets": ["1x2"],
        "walk_forward": {"last_seasons": 1},
        "backtest": {"n_bootstrap": 100},
        "registry_root": str(tmp_path / "registry"),
        "runs_dir": str(tmp_path / "runs"),
        **extra,
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``marketcast run`` with two targets, the second failing while it copies; exit status,
    folders and the run folder."""
    tmp_path = tmp_path_factory.mktemp("publish")
    good, broken = tmp_path / "published", tmp_path / "broken"
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(_settings(tmp_path, publish=[str(good), str(broken)])))
    real = export.publish

    def failing(source: Registry, target: Registry, *args: Any, **kwargs: Any) -> Any:
        if target.root == str(broken):
            raise OSError(28, "No space left on device")
        return real(source, target, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(export, "publish", failing)
        status = main(["run", "--config", str(config)])
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.name != "feature_store"]
    return {
        "status": status,
        "root": tmp_path,
        "good": good,
        "broken": broken,
        "broken_after_run": broken.exists(),
        "run": run_dir,
    }


def test_a_failed_target_exits_1_after_the_rest_is_published(
    published: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert published["status"] == 1
    outcome = json.loads((published["run"] / "publish.json").read_text())
    assert [(o["target"], o["ok"]) for o in outcome] == [
        (str(published["good"]), True),
        (str(published["broken"]), False),
    ]
    assert outcome[1]["error"] == "OSError: [Errno 28] No space left on device"
    report = json.loads((published["run"] / "report.json").read_text())
    assert report["publish"] == outcome  # the report says where it was published


def test_the_registry_holds_the_runs_report_as_written(published: dict[str, Any]) -> None:
    registry = Registry(str(published["root"] / "registry"))
    run_id = published["run"].name
    assert registry.run_reports("football") == [run_id]
    stored = registry.run_report_files("football", run_id)
    assert set(stored) == {
        "report.json",
        "report.html",
        "evaluation.json",
        "losses.parquet",
        "publish.json",
    }
    for name, data in stored.items():
        assert data == (published["run"] / name).read_bytes()
    champion = registry.champion("football", "1x2")
    assert champion is not None
    manifest = registry.manifest("football", "1x2", champion.model_name, champion.version)
    assert manifest.run_id == run_id  # a champion leads to its report


def test_the_target_serves_the_same_champion_with_its_runs_members(
    published: dict[str, Any],
) -> None:
    source = Registry(str(published["root"] / "registry"))
    target = Registry(str(published["good"]))
    champion, copy = source.champion("football", "1x2"), target.champion("football", "1x2")
    assert champion is not None
    assert copy is not None
    assert (copy.model_name, copy.version) == (champion.model_name, champion.version)
    assert {m.model_name for m in target.list_models("football", "1x2")} == {"market", "elo"}
    # the report that reached the target predates publish.json; the source's copy has it
    [run_id] = target.run_reports("football")
    assert set(target.run_report_files("football", run_id)) == {
        "report.json",
        "report.html",
        "evaluation.json",
        "losses.parquet",
    }
    service = ChampionService(target)
    service.reload()
    fixture = FixtureIn.model_validate(
        {
            "league": "E0",
            "home": "Arsenal",
            "away": "Chelsea",
            "kickoff": "2023-08-12T14:00:00Z",
            "odds": {"1x2": {"home": 1.8, "draw": 3.9, "away": 4.5}},
        }
    )
    [out] = service.forecast([fixture])
    assert (out.model.name, out.model.version) == (champion.model_name, champion.version)
    assert sum(out.probabilities.values()) == pytest.approx(1.0)
    assert not published["broken_after_run"]  # probed before the run, nothing published


def test_registry_publish_repeats_the_copy_and_show_names_the_report(
    published: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(published["root"] / "registry")
    capsys.readouterr()
    assert main(["registry", "--root", root, "publish", "--to", str(published["broken"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["football"]["1x2"]["pointer_moved"] is True
    assert shown["football"]["1x2"]["report"] == "copied"
    assert main(["registry", "--root", root, "publish", "--to", str(published["good"])]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["football"]["1x2"]["copied_versions"] == []
    assert again["football"]["1x2"]["pointer_moved"] is False
    assert main(["registry", "--root", root, "show", "football/1x2"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert report["run_id"] == published["run"].name
    assert Path(report["folder"]).is_dir()
    assert "report.html" in report["files"]
    # a market with no champion is named; nothing was published, so exit 2 as documented
    # (1 when other markets were published beside it)
    assert (
        main(["registry", "--root", root, "publish", "--to", str(published["good"]), "football/ah"])
        == 2
    )
    assert "football/ah has no champion" in capsys.readouterr().err
    # a target that vanishes when the command ends is refused
    assert main(["registry", "--root", root, "publish", "--to", "memory://x"]) == 2
    assert "lives in this process only" in capsys.readouterr().err


def test_registry_show_keeps_the_pointer_when_the_report_index_is_damaged(
    published: dict[str, Any], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`show` failed whole (exit 2) on a damaged report index: the pointer and history were
    hidden when an operator needed them."""
    import shutil

    root = tmp_path / "registry"
    shutil.copytree(published["root"] / "registry", root)
    (root / "_reports" / "football" / published["run"].name / "index.json").write_text("{")
    capsys.readouterr()
    assert main(["registry", "--root", str(root), "show", "football/1x2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["champion"]["model_name"] in {"market", "elo"}
    assert "report index" in shown["report"]["error"]


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("REGISTRY", "is the registry itself"),
        ("memory://published", "lives in this process only"),
        ("nosuchprotocol://x", "cannot open registry"),
    ],
)
def test_a_publish_target_no_run_could_use_is_refused_before_any_data(
    tmp_path: Path, target: str, message: str
) -> None:
    url = f"file://{tmp_path / 'registry'}" if target == "REGISTRY" else target
    config = FootballRunConfig.model_validate(_settings(tmp_path, publish=[url]))
    with pytest.raises(DataError, match=message) as caught:
        check_outputs(config, "run.yaml")
    assert "publish[0]" in str(caught.value)


def test_a_publish_target_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("not a folder")
    config = FootballRunConfig.model_validate(
        _settings(tmp_path, publish=[str(tmp_path / "target")])
    )
    with pytest.raises(
        ValueError, match=r"the config, field 'publish\[0\]': .* is a file, not a folder"
    ):
        check_outputs(config)


def test_a_report_the_registry_cannot_store_moves_no_champion_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run stopped before moving any pointer, but its run-folder report still named the
    champions it had planned to install."""
    from marketcast.orchestration import football

    def registry_full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(football, "save_report", registry_full)
    config = FootballRunConfig.model_validate(_settings(tmp_path))
    with pytest.raises(OSError, match="No space left"):
        football.run_football(config, console=_quiet(tmp_path))
    assert Registry(config.registry_root).champion("football", "1x2") is None
    [run_dir] = [p for p in (tmp_path / "runs").iterdir() if p.name != "feature_store"]
    promotion = json.loads((run_dir / "report.json").read_text())["promotion"]["1x2"]
    assert promotion["registry_champion"] == "none"
    assert "the run stopped before this market was applied (OSError" in promotion["not_applied"]
    # its versions, complete and never champion, are what `registry clean` removes
    registry = Registry(config.registry_root)
    registered = registry.list_models()
    assert {m.model_name for m in registered} == {"market", "elo"}
    assert registry.stopped_runs(older_than=timedelta(0)) == [("football", run_dir.name)]
    assert len(registry.remove_leftovers(older_than=timedelta(0))) == len(registered) + 1
    assert registry.list_models() == []
    assert registry.stopped_runs(older_than=timedelta(0)) == []


def test_a_run_that_saves_its_report_leaves_no_mark(published: dict[str, Any]) -> None:
    """The mark a run sets before registering goes with its report's registry copy."""
    registry = Registry(str(published["root"] / "registry"))
    assert registry.list_models()
    assert registry.stopped_runs(older_than=timedelta(0)) == []
    assert list((published["root"] / "registry" / "_runs" / "football").iterdir()) == []
    assert registry.leftovers(older_than=timedelta(0)) == []
    # nor does a publish target get a mark of its own
    assert not (published["good"] / "_runs").exists()


def test_a_registry_copy_failing_after_the_moves_is_exit_1_not_a_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Re-saving the report after publishing raised out of the run: exit 2 after the
    champions had moved and been published."""
    from marketcast.orchestration import football

    real = football.save_report
    calls: list[int] = []

    def fails_after_the_moves(*args: Any) -> None:
        calls.append(1)
        if len(calls) > 1:
            raise OSError(28, "No space left on device")
        real(*args)

    monkeypatch.setattr(football, "save_report", fails_after_the_moves)
    config = tmp_path / "run.yaml"
    target = tmp_path / "published"
    config.write_text(yaml.safe_dump(_settings(tmp_path, publish=[str(target)])))
    assert main(["run", "--config", str(config)]) == 1
    assert "the registry's copy of the report was not updated" in capsys.readouterr().err
    registry = Registry(str(tmp_path / "registry"))
    champion = registry.champion("football", "1x2")
    assert champion is not None
    published = Registry(str(target)).champion("football", "1x2")
    assert published is not None
    assert published.version == champion.version
    [run_id] = registry.run_reports("football")
    assert "publish.json" not in registry.run_report_files("football", run_id)  # the first copy


def _quiet(tmp_path: Path) -> Any:
    from rich.console import Console

    return Console(file=open(tmp_path / "console.txt", "a"), width=120)
