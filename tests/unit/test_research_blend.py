"""The blend research script scores geometric blends of two forecast files on the same matches."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "research_blend_forecasts.py"


def _script():
    spec = importlib.util.spec_from_file_location("research_blend_forecasts", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(path: Path, ids: np.ndarray, model: np.ndarray, seed: int = 0) -> None:
    """A forecast file as `research_football_features.py --probs` writes it: same matches,
    labels, closing line and market in every file; ``model`` is the file's own forecast."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    closing = rng.dirichlet([4.0, 3.0, 3.0], size=n)
    labels = (rng.random(n)[:, None] > closing.cumsum(axis=1)).sum(axis=1)
    market = _normalise(closing * np.exp(rng.normal(0, 0.2, (n, 3))))
    np.savez(path, match_id=ids, label=labels, closing=closing, market=market, model=model)


def _normalise(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)


def _log_loss(labels: np.ndarray, p: np.ndarray) -> float:
    return float(-np.log(p[np.arange(len(labels)), labels]).mean())


def test_blends_are_geometric_and_scored_against_the_closing_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ids = np.array([f"m{i}" for i in range(500)])
    a, b = (_normalise(rng.dirichlet([4.0, 3.0, 3.0], size=len(ids))) for _ in range(2))
    _write(tmp_path / "a.npz", ids, a)
    _write(tmp_path / "b.npz", ids, b)
    with np.load(tmp_path / "a.npz") as saved:
        labels, closing = saved["label"], saved["closing"]
    out = tmp_path / "blend.json"
    _script().main(
        [f"{tmp_path / 'a.npz'}:model", f"{tmp_path / 'b.npz'}:model", "--json", str(out)]
    )
    report = json.loads(out.read_text())
    blends = {row["weight_b"]: row for row in report["blends"]}
    assert sorted(blends) == [0, 0.25, 0.5, 0.75, 1]
    close = _log_loss(labels, closing)
    half = _normalise(np.sqrt(a * b))
    for w, forecast in ((0, a), (0.5, half), (1, b)):
        assert blends[w]["ratio_to_closing"] == pytest.approx(_log_loss(labels, forecast) / close)
    assert blends[0]["vs_a"] is None
    gain = _log_loss(labels, a) - _log_loss(labels, b)
    assert blends[1]["vs_a"]["mean_difference"] == pytest.approx(gain)


def test_files_of_different_matches_are_refused(tmp_path: Path) -> None:
    forecast = np.full((2, 3), 1 / 3)
    _write(tmp_path / "a.npz", np.array(["m1", "m2"]), forecast)
    _write(tmp_path / "b.npz", np.array(["m1", "m3"]), forecast)
    with pytest.raises(SystemExit):
        _script().main([f"{tmp_path / 'a.npz'}:model", f"{tmp_path / 'b.npz'}:model"])
