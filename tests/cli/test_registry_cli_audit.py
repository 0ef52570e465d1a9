"""Registry commands: a root with brackets is listed, not read as markup; a publish that placed
nothing exits 2, as documented; a damaged feature state names the version and the file
(`publish ''` is refused in test_cli_input_safety)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.registry import Registry, build_manifest
from tests.unit.test_registry_publish import WINDOW, _register


def _local(root: Path) -> tuple[Registry, str]:
    registry = Registry(str(root))
    version = _register(registry, "market", "run-1")
    registry.set_champion("football", "1x2", "market", version, "first")
    return registry, version


def test_a_root_with_brackets_is_listed_as_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'[/x]' in a path ended `registry list` in a MarkupError traceback; '[bold]' vanished."""
    for name in ("x[", "b[bold]"):
        root = tmp_path / name / "x]" / "reg"
        _local(root)
        assert main(["registry", "--root", str(root), "list"]) == 0
        assert str(root) in capsys.readouterr().out.replace("\n", "")


def test_a_publish_that_placed_nothing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every market failing exited 1, as if some were published; one of two failing still 1."""
    _local(tmp_path / "src")
    target = tmp_path / "afile"
    target.write_text("x")
    argv = ["registry", "--root", str(tmp_path / "src"), "publish", "--to", str(target)]
    assert main(argv) == 2
    assert "exit 2: 1 market(s) not published" in capsys.readouterr().err


def test_a_damaged_feature_state_names_the_version_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """'Expecting value: line 1 column 1 (char 0)' named no file, model or version."""
    registry, _ = _local(tmp_path / "reg")
    files = {"feature_state.json": b"not json", "params.json": json.dumps({"a": 1}).encode()}
    manifest = build_manifest(
        model_name="elo", vertical="football", market="1x2", config={"seed": 1}, files=files,
        data_sha256="a" * 64, features_sha256="b" * 64, training_window=WINDOW,
        scores={"log_loss": 0.98}, backtest={}, run_id="run-2",
    )  # fmt: skip
    version = registry.register("football", "1x2", "elo", files, manifest)
    argv = ["registry", "--root", str(tmp_path / "reg"), "promote", "football/1x2/elo", version]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"football/1x2 elo {version} (feature_state.json) cannot be served: Expecting" in err
    assert registry.champion("football", "1x2").model_name == "market"  # type: ignore[union-attr]
