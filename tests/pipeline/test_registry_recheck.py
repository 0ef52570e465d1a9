"""``marketcast registry recheck``: a saved decision made again from its run's stored evidence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from marketcast.cli import main
from marketcast.orchestration import crypto as crypto_job
from marketcast.registry import Registry
from tests.pipeline.test_cloud_members import bundled_seasons, small_run
from tests.pipeline.test_promotion_audit_fixes import _crypto_config


@pytest.fixture(scope="module")
def football_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry after one run of market, elo and Dixon-Coles on E0 (1X2)."""
    root = tmp_path_factory.mktemp("recheck")
    bundled_seasons(root / "data", {"E0": ("2020-2021", "2021-2022")})
    small_run(root, root / "data", ["market", "elo", "dixon_coles"])
    return root


def _recheck(root: Path, name: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    status = main(["registry", "--root", str(root), "recheck", name])
    out = capsys.readouterr().out
    return status, json.loads(out) if status in (0, 1) else {}


def test_a_football_decision_made_again_agrees(
    football_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, shown = _recheck(football_root / "registry", "football/1x2", capsys)
    assert status == 0
    assert shown["agrees"] is True
    assert shown["challengers"] == ["dixon_coles", "elo"]  # Holm over both, as the run
    assert shown["saved"] == shown["recomputed"]
    assert shown["saved"]["challengers_tested"] == 2
    assert shown["evidence"] == "losses.parquet"


def test_the_registry_docs_snippet_makes_the_decision_again(
    football_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snippet in docs/registry.md, run as written: it passed ``elo`` alone, so Holm's
    correction over one challenger gave another p-value, and its own assert failed."""
    text = (Path(__file__).parents[2] / "docs" / "registry.md").read_text()
    start = text.index("```python\n", text.index("## Checking a decision again"))
    code = text[start + len("```python\n") : text.index("```", start + 3)]
    monkeypatch.chdir(football_root)
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/registry.md", "exec"), namespace)  # its assert is the check
    assert sorted(namespace["challengers"]) == ["dixon_coles", "elo"]  # type: ignore[call-overload]


def test_a_decision_whose_figures_were_edited_disagrees(
    football_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shutil.copytree(football_root / "registry", tmp_path / "registry")
    # the tested decision (the first champion's "no champion yet" beside it tested nothing)
    [tested] = [
        path
        for path in (root / "football" / "1x2" / "decisions").glob("*.json")
        if json.loads(path.read_text())["champion"] is not None
    ]
    decision = json.loads(tested.read_text())
    decision["p_value"] = 0.001
    tested.write_text(json.dumps(decision))
    status, shown = _recheck(root, "football/1x2", capsys)
    assert status == 1
    assert shown["agrees"] is False
    assert shown["saved"]["p_value"] == 0.001
    assert shown["recomputed"]["p_value"] != 0.001


def test_a_crypto_decision_made_again_agrees(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    console = Console(file=open(tmp_path / "log.txt", "a"))  # noqa: SIM115
    crypto_job.run_crypto(_crypto_config(tmp_path, ("BTCUSDT", "ETHUSDT")), console=console)
    status, shown = _recheck(tmp_path / "registry", "crypto/1d", capsys)
    assert status == 0
    assert shown["agrees"] is True
    assert shown["challengers"] == ["momentum"]
    assert shown["evidence"] == "period_net.parquet"


def test_a_run_without_stored_evidence_is_named(
    football_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = shutil.copytree(football_root / "registry", tmp_path / "registry")
    for losses in (root / "_reports").rglob("losses.parquet"):
        losses.unlink()
    index = next((root / "_reports").rglob("index.json"))
    stored = json.loads(index.read_text())
    stored["files"] = [f for f in stored["files"] if f["name"] != "losses.parquet"]
    index.write_text(json.dumps(stored))
    assert Registry(str(root)).run_reports("football")
    assert main(["registry", "--root", str(root), "recheck", "football/1x2"]) == 2
    assert "holds no losses.parquet (runs before 2026-11-24" in capsys.readouterr().err
    assert main(["registry", "--root", str(root), "recheck", "football/ou25"]) == 2
    assert "no promotion decision for football/ou25" in capsys.readouterr().err


def test_evidence_without_a_column_it_needs_is_named(
    football_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A losses.parquet without its market column ended in the bare message "'market'"."""
    import hashlib

    import pandas as pd

    root = shutil.copytree(football_root / "registry", tmp_path / "registry")
    [losses] = (root / "_reports").rglob("losses.parquet")
    pd.read_parquet(losses).drop(columns="market").to_parquet(losses)
    index = losses.parent.parent / "index.json"
    stored = json.loads(index.read_text())
    data = losses.read_bytes()
    for entry in stored["files"]:
        if entry["name"] == "losses.parquet":
            entry.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    index.write_text(json.dumps(stored))
    assert main(["registry", "--root", str(root), "recheck", "football/1x2"]) == 2
    assert "losses.parquet has no column 'market': no run wrote it so" in capsys.readouterr().err
