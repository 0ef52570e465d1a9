"""The football bench's replay of the edge/cloud router on out-of-sample forecasts."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

from marketcast.evaluation.scoring import log_loss_per_sample
from marketcast.serving.service import reliability_blend
from tests.bench_module import load_bench


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("football")


def _evaluation(n: int = 400) -> SimpleNamespace:
    rng = np.random.default_rng(7)
    prematch = rng.dirichlet([4.0, 3.0, 3.0], size=n)
    labels = np.array([rng.choice(3, p=p) for p in prematch])
    far = rng.dirichlet([1.0, 1.0, 1.0], size=n)  # a model far from the market
    forecasts = {
        "market": prematch,
        "wild": far,
        "closing": 0.9 * prematch + 0.1 * np.eye(3)[labels],
        "prematch": prematch,
    }
    losses = {name: log_loss_per_sample(labels, p) for name, p in forecasts.items()}
    return SimpleNamespace(forecasts=forecasts, labels=labels, losses=losses, champion="market")


def _kickoff(n: int = 400) -> np.ndarray:
    """Ten matches a day."""
    start = np.datetime64("2022-08-01T15:00")
    return start + (np.arange(n) // 10).astype("timedelta64[D]")


def test_routing_replays_the_servers_rule(bench: ModuleType) -> None:
    ev = _evaluation()
    out = bench.routing_section(ev, _kickoff())
    assert out["members"] == ["market", "wild"]
    # each day blended with weights from the days before it (equal on the first): weights
    # from the scored matches themselves flattered the cloud path
    probs = np.stack([ev.forecasts["market"], ev.forecasts["wild"]])
    cloud = np.empty_like(ev.forecasts["market"])
    for day in range(40):
        today, before = slice(10 * day, 10 * day + 10), slice(0, 10 * day)
        past = np.array([ev.losses[m][before].mean() if day else 0.0 for m in ("market", "wild")])
        cloud[today] = reliability_blend(probs[:, today], past)
    in_sample = reliability_blend(
        probs, np.array([ev.losses["market"].mean(), ev.losses["wild"].mean()])
    )
    assert not np.allclose(cloud, in_sample)
    closing = ev.losses["closing"].mean()
    expected_cloud = log_loss_per_sample(ev.labels, cloud).mean() / closing
    assert out["cloud"]["ratio_to_closing"] == pytest.approx(expected_cloud, abs=1e-5)

    # the market as edge model agrees with the market: it answers everything at any threshold
    market_rows = {r["threshold"]: r for r in out["edge_models"]["market"]["thresholds"]}
    assert market_rows[0.8]["edge_share"] == 1.0
    assert market_rows[1.01]["edge_share"] == 0.0
    assert market_rows[1.01]["routed"] == out["cloud"]
    assert market_rows[1.01]["edge_rows_by_edge"]["ratio_to_closing"] is None

    # a model far from the market hands most fixtures to the cloud at 0.8, none at 0.0
    wild = {r["threshold"]: r for r in out["edge_models"]["wild"]["thresholds"]}
    assert wild[0.0]["edge_share"] == 1.0
    assert wild[0.0]["routed"] == out["edge_models"]["wild"]["edge_alone"]
    assert wild[0.8]["edge_share"] < 0.2
    shares = [r["edge_share"] for r in out["edge_models"]["wild"]["thresholds"]]
    assert shares == sorted(shares, reverse=True)


def test_readme_lines_report_routing_at_the_default_threshold(bench: ModuleType) -> None:
    lines = bench.routing_lines(bench.routing_section(_evaluation(), _kickoff()))
    assert any(line.startswith("| market (champion) | ") and "100.0%" in line for line in lines)
    assert any(line.startswith("| wild | ") for line in lines)
