"""ChampionService on a real registry: forecasts, routing, atomic reload, rankings, do-not-trade."""

from __future__ import annotations

import dataclasses
import shutil
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import marketcast.serving.service as service_module
from marketcast.config import FootballRunConfig
from marketcast.features.football import MARKET_COLUMNS
from marketcast.features.football_state import FeatureState
from marketcast.margins import implied_probabilities
from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.registry.store import ChampionChangedError
from marketcast.serving.protocol import KickoffTooEarlyError, UnknownTeamError
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import (
    ChampionService,
    RequestFeatures,
    ServiceSettings,
    _fixture_dict,
    _predict,
    edge_confidence,
    load_servable,
)
from marketcast.types import MarketKind
from tests.bench_module import load_bench


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    root = tmp_path_factory.mktemp("serving")
    config = FootballRunConfig.model_validate(
        {
            "data": {"leagues": ["E0"]},
            "models": ["market", "elo", "dixon_coles", "lightgbm", "neural"],
            "model_params": {
                "lightgbm": {"n_estimators": 60, "early_stopping_rounds": 10},
                "neural": {"max_epochs": 2, "d_model": 16, "warm_epochs": 1},
            },
            "walk_forward": {
                "last_seasons": 1,
                "retrain_every_steps": {"lightgbm": 12, "neural": 20},
            },
            "backtest": {"n_bootstrap": 100},
            "registry_root": str(root / "registry"),
            "runs_dir": str(root / "runs"),
        }
    )
    run_football(config, console=Console(file=open(root / "log.txt", "w")))  # noqa: SIM115
    return Registry(config.registry_root)


def _fixture(home: str = "Arsenal", away: str = "Chelsea", odds=(1.80, 3.90, 4.50), **extra):
    body = {
        "league": "E0",
        "home": home,
        "away": away,
        "kickoff": "2023-08-12T14:00:00Z",
        "odds": {"1x2": dict(zip(("home", "draw", "away"), odds, strict=True)), **extra},
    }
    return FixtureIn.model_validate(body)


def test_forecast_routes_edge_when_close_to_the_market(registry: Registry) -> None:
    service = ChampionService(registry)
    assert not service.ready
    service.reload()
    assert service.ready
    assert service.known_leagues == {"E0"}
    [out] = service.forecast(
        [_fixture(ou25={"over": 1.7, "under": 2.2}, ah={"line": -0.75, "home": 1.95, "away": 1.95})]
    )
    assert sum(out.probabilities.values()) == pytest.approx(1.0)
    champion = registry.champion("football", "1x2")
    assert out.path == "edge"
    assert (out.model.name, out.model.version) == (champion.model_name, champion.version)
    assert out.confidence >= 0.8
    for outcome, (low, high) in out.band.items():
        assert low <= out.probabilities[outcome] <= high
    assert set(out.markets) == {"ou25", "ah"}
    assert out.markets["ah"].line == -0.75
    for market, forecast in out.markets.items():  # each names its own champion
        record = registry.champion("football", market)
        assert forecast.model is not None
        assert (forecast.model.name, forecast.model.version) == (record.model_name, record.version)
    assert "Arsenal" in out.explanation
    assert "Elo" in out.explanation


def test_forecast_routes_cloud_when_threshold_is_unreachable(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01))
    service.reload()
    with monkeypatch.context() as patch:  # every member, and the goal difference, reads rows
        patch.setattr(FeatureState, "frame", _no_frame)
        [out] = service.forecast([_fixture()])
    assert out.path == "cloud"
    assert out.model.name == "ensemble"
    assert out.model.version == service.snapshot_id
    [dc] = [m for m in service.snapshot().members["1x2"] if m.name == "dixon_coles"]
    goals = dc.model.expected_goals(dc.state.fixture_frame([_fixture_dict(_fixture())]))
    assert out.expected_goal_difference == pytest.approx(goals[0, 0] - goals[0, 1], abs=1e-12)
    for outcome, (low, high) in out.band.items():
        assert low <= out.probabilities[outcome] <= high


class _RecordingExplainer:
    """Stands in for `LLMExplainer`: keeps what the service gives the LLM, answers the text."""

    timeout_s = 2.0

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def explain(
        self, rationale: str, facts: dict[str, Any], *, timeout_s: float | None = None
    ) -> str:
        self.calls.append((rationale, dict(facts)))
        return rationale


def test_the_llm_is_given_each_outcomes_forecast_and_market_price(registry: Registry) -> None:
    """The explanation check binds a chance to the outcome it is said of; the market price of
    an outcome other than the favourite is the forecast's to cite only when the LLM has it."""
    explainer = _RecordingExplainer()
    settings = ServiceSettings(edge_threshold=1.01, llm=explainer)  # type: ignore[arg-type]
    service = ChampionService(registry, settings)
    service.reload()
    odds = (1.80, 3.90, 4.50)
    [out] = service.forecast([_fixture(odds=odds)])
    assert out.path == "cloud"
    [(rationale, facts)] = explainer.calls
    assert out.explanation == rationale
    assert facts["probabilities"] == out.probabilities
    assert set(facts["market"]) == {"home", "draw", "away"}
    market = implied_probabilities(np.array([odds]), method="shin")[0]
    for outcome, price in zip(("home", "draw", "away"), market, strict=True):
        assert facts["market"][outcome] == pytest.approx(price, abs=0.02)
    assert sum(facts["market"].values()) == pytest.approx(1.0)


def test_the_cloud_band_holds_the_blend_and_its_confidence_is_the_blends(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Members agreeing on the draw (0.20) and split on home/away: the renormalised geometric
    blend lifts the draw to 0.227, above every member and the market, and the band (members and
    market) left the answer outside it; ``confidence`` was the champion's, not the answer's."""
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01))
    service.reload()
    names = sorted(m.name for m in service.snapshot().members["1x2"])
    split = {name: [0.7, 0.2, 0.1] if k % 2 else [0.3, 0.2, 0.5] for k, name in enumerate(names)}

    def member_says(loaded: Any, features: RequestFeatures, market: MarketKind) -> np.ndarray:
        return np.array([split[loaded.name]] * len(features.rows))

    monkeypatch.setattr(service_module, "_predict", member_says)
    fixture = _fixture(odds=(2.0, 9.0, 2.2))  # the market's draw ~0.11
    [out] = service.forecast([fixture])
    assert out.path == "cloud"
    assert out.probabilities["draw"] > 0.2 + 1e-3  # above every member and the market
    for outcome, (low, high) in out.band.items():
        assert low <= out.probabilities[outcome] <= high
    state = service.snapshot().champions["1x2"].state
    [row] = state.fixture_rows([_fixture_dict(fixture)])
    market = np.array([[row[c] for c in MARKET_COLUMNS[MarketKind.ONE_X_TWO]]])
    p = np.array([[out.probabilities[o] for o in ("home", "draw", "away")]])
    champion = np.array([split[service.snapshot().champions["1x2"].name]])
    assert out.confidence == pytest.approx(edge_confidence(p, market)[0], abs=1e-12)
    assert abs(out.confidence - edge_confidence(champion, market)[0]) > 0.05


#: Three bookmakers' quotes as a request's ``odds.bookmakers`` gives them.
_BOOKMAKERS = {
    "pinnacle": {"1x2": {"home": 1.95, "draw": 3.70, "away": 4.20}},
    "b365": {"1x2": {"home": 1.80, "draw": 3.90, "away": 4.50}},
    "wh": {"1x2": {"home": 1.83, "draw": 3.75, "away": 4.40}},
}


def test_quotes_by_bookmaker_reach_the_models_features(registry: Registry) -> None:
    """The market model answers the sharpest bookmaker's de-margined price (Pinnacle, as in
    training), not the top-level one, and the spread across bookmakers is filled."""
    service = ChampionService(registry)
    service.reload()
    snap = service.snapshot()
    state = snap.champions["1x2"].state
    market = next(m for m in snap.members["1x2"] if m.name == "market")
    fixture = _fixture(odds=(1.80, 3.90, 4.50), bookmakers=_BOOKMAKERS)
    [row] = state.fixture_rows([_fixture_dict(fixture)])
    pinnacle = np.array([[1.95, 3.70, 4.20]])
    np.testing.assert_allclose(
        market.model.predict_market_rows([row], MarketKind.ONE_X_TWO),
        implied_probabilities(pinnacle, state.demargin_method),
        rtol=0,
        atol=1e-12,
    )
    homes = [
        1 / q["1x2"]["home"] / sum(1 / v for v in q["1x2"].values()) for q in _BOOKMAKERS.values()
    ]
    assert row["mkt_1x2_home_spread"] == pytest.approx(max(homes) - min(homes), abs=1e-12)
    assert row["mkt_n_bookmakers"] == 3
    [out] = service.forecast([fixture])
    [plain] = service.forecast([_fixture(odds=(1.80, 3.90, 4.50))])
    assert out.probabilities != plain.probabilities


def _no_frame(self: FeatureState, rows: Any) -> Any:
    raise AssertionError("a feature frame was built on the serving path")


def test_row_fast_path_predicts_what_the_frame_predicts(registry: Registry) -> None:
    """Models that read feature rows directly must agree with their DataFrame path exactly."""
    service = ChampionService(registry)
    service.reload()
    snap = service.snapshot()
    champion = snap.champions["1x2"]
    fixtures = [
        _fixture(ou25={"over": 1.7, "under": 2.2}, ah={"line": -0.75, "home": 1.95, "away": 1.95}),
        _fixture(home="Liverpool", away="Everton", odds=(1.30, 5.50, 9.00)),
        _fixture(
            home="Brighton",
            away="Fulham",
            odds=(2.05, 3.40, 3.70),
            ou25={"over": 2.0, "under": 1.8},
        ),
        _fixture(odds=(1.80, 3.90, 4.50), bookmakers=_BOOKMAKERS),
    ]
    rows = champion.state.fixture_rows([_fixture_dict(f) for f in fixtures])
    features = RequestFeatures(champion.state, rows)
    loaded = [*snap.champions.values(), *(m for ms in snap.members.values() for m in ms)]
    fast = [m for m in loaded if hasattr(m.model, "predict_market_rows")]
    assert {"market", "elo", "dixon_coles", "lightgbm", "neural"} <= {m.name for m in fast}
    for member in fast:
        for market in MarketKind:
            by_rows = member.model.predict_market_rows(rows, market)
            by_frame = member.model.predict_market_proba(features.frame, market)
            if by_frame is None:
                assert by_rows is None
            else:
                np.testing.assert_allclose(by_rows, by_frame, rtol=0, atol=1e-12)
    # the edge path of a row-reading champion never builds the frame
    if hasattr(champion.model, "predict_market_rows"):
        single = features.subset([0])
        _predict(champion, single, MarketKind.ONE_X_TWO)
        assert "frame" not in single.__dict__  # functools.cached_property stores it there


def _neural(service: ChampionService) -> Any:
    service.reload()
    [member] = [m for m in service.snapshot().members["1x2"] if m.name == "neural"]
    return member.model


def test_models_carry_each_markets_latest_promotion_decision(registry: Registry) -> None:
    service = ChampionService(registry)
    service.reload()
    rows = {row["market"]: row for row in service.models()}
    assert set(rows) == {"1x2", "ou25", "ah"}
    for market, row in rows.items():
        latest = registry.latest_decision("football", market)
        assert latest is not None  # the run decided every market
        assert row["last_decision"] == latest.model_dump(mode="json")
        assert row["name"] == (latest.challenger if latest.promote else latest.champion)
        pointer = registry.champion("football", market)
        assert pointer is not None
        assert row["promotion_reason"] == pointer.reason
        assert row["promoted_utc"] == pointer.model_dump(mode="json")["promoted_utc"]
        assert row["last_decision_superseded"] is None  # the run's decision left it champion


def test_models_say_when_the_champion_moved_after_the_latest_decision(
    registry: Registry, tmp_path: Path
) -> None:
    """Registry audit (medium): a promotion by hand saves no decision, so ``last_decision``
    beside the new champion read as its evidence (it had left another model champion)."""
    copy = Registry(str(shutil.copytree(registry.root, tmp_path / "registry")))
    latest = copy.latest_decision("football", "1x2")
    assert latest is not None
    kept = latest.challenger if latest.promote else latest.champion
    other = next(name for name in ("elo", "market") if name != kept)
    version = copy.latest_version("football", "1x2", other)
    assert version is not None
    copy.set_champion("football", "1x2", other, version, "by hand")
    service = ChampionService(copy)
    service.reload()
    row = next(row for row in service.models() if row["market"] == "1x2")
    kept_version = latest.challenger_version if latest.promote else latest.champion_version
    assert row["last_decision_superseded"] == (
        f"the champion pointer moved after this decision (to {other} {version}: by hand); it "
        f"left {kept} {kept_version} champion"
    )


def test_neural_models_serve_through_onnxruntime_unless_told_torch(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cloud = {"edge_threshold": 1.01}  # every fixture takes the ensemble, which holds the network
    fixtures = [_fixture(), _fixture(home="Liverpool", away="Everton", odds=(1.30, 5.50, 9.00))]
    onnx = ChampionService(registry, ServiceSettings(**cloud))
    assert hasattr(_neural(onnx), "onnx_session_")
    plain = ChampionService(registry, ServiceSettings(neural_runtime="torch", **cloud))
    assert not hasattr(_neural(plain), "onnx_session_")
    for a, b in zip(onnx.forecast(fixtures), plain.forecast(fixtures), strict=True):
        assert a.path == b.path == "cloud"
        for outcome, p in a.probabilities.items():
            assert p == pytest.approx(b.probabilities[outcome], abs=1e-6)

    def fail(self: Any, **kwargs: Any) -> None:
        raise RuntimeError("no onnxruntime here")

    monkeypatch.setattr(type(_neural(plain)), "use_onnx", fail)
    broken = ChampionService(registry, ServiceSettings(**cloud))
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        assert not hasattr(_neural(broken), "onnx_session_")
    assert "neural" in caplog.text
    assert "stays on torch, onnxruntime failed: no onnxruntime here" in caplog.text
    [out] = broken.forecast(fixtures[:1])
    assert out.probabilities == plain.forecast(fixtures[:1])[0].probabilities


def test_unknown_team_is_named(registry: Registry) -> None:
    service = ChampionService(registry)
    service.reload()
    with pytest.raises(UnknownTeamError, match="Arsenl"):
        service.forecast([_fixture(home="Arsenl")])


def test_rankings_and_do_not_trade_give_reasons(registry: Registry) -> None:
    clock = lambda: datetime(2026, 11, 21, tzinfo=UTC)  # noqa: E731
    service = ChampionService(registry, ServiceSettings(clock=clock))
    service.reload()
    rankings = service.rankings()
    assert {r.market for r in rankings} == {"1x2", "ou25", "ah"}
    edges = [r.edge_after_costs for r in rankings if r.edge_after_costs is not None]
    assert edges == sorted(edges, reverse=True)
    blocked = service.do_not_trade()
    stale = [r for r in blocked if r.check == "staleness"]
    assert {r.market for r in stale} == {"1x2", "ou25", "ah"}  # data ends May 2023
    assert all("days old" in r.reason for r in stale)


def test_promote_and_rollback_swap_atomically_under_load(registry: Registry) -> None:
    service = ChampionService(registry)
    service.reload()
    versions = {m.model_name: m.version for m in registry.list_models("football", "1x2")}
    allowed = {(n, v) for n, v in versions.items()} | {("ensemble", service.snapshot_id)}
    errors: list[BaseException] = []
    seen: set[tuple[str, str]] = set()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                [out] = service.forecast([_fixture()])
                seen.add((out.model.name, out.model.version))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for _ in range(3):
            allowed.add(("ensemble", service.promote("1x2", "elo", versions["elo"])["snapshot_id"]))
            allowed.add(("ensemble", service.rollback("1x2")["snapshot_id"]))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    # Every answer names a version that was really being served: never a half-loaded mix.
    assert seen
    assert seen <= allowed
    assert registry.champion("football", "1x2").model_name == "market"


def test_a_rollback_never_brings_back_an_earlier_snapshot_id(registry: Registry) -> None:
    """Ids were content hashes, so promote-then-rollback (A, B, A) repeated A's id, and an
    answer computed from B while both ran could be cached under A's key."""
    service = ChampionService(registry)
    first = service.reload()["snapshot_id"]
    assert service.reload()["snapshot_id"] == first  # nothing changed: the cache stays valid
    promoted = service.promote("1x2", "elo", registry.latest_version("football", "1x2", "elo"))
    rolled_back = service.rollback("1x2")["snapshot_id"]
    assert len({first, promoted["snapshot_id"], rolled_back}) == 3
    assert rolled_back.split("-")[0] == first.split("-")[0]  # the same models as at first


def test_the_watcher_undoes_nothing_an_admin_reload_hid_from_it(registry: Registry) -> None:
    """A promotion through this server (its own reload) then a rollback elsewhere, both between
    two watcher ticks: the watcher compared the registry with its own previous look, saw no
    change, and the server served the rolled-back champion for good."""
    import time

    service = ChampionService(registry)
    service.reload()
    before = registry.champion("football", "1x2")
    assert before is not None
    stop = service.follow_registry(poll_s=0.5)
    try:
        elo = registry.latest_version("football", "1x2", "elo")
        assert elo is not None
        service.promote("1x2", "elo", elo)  # this server reloads itself
        registry.rollback("football", "1x2")  # another worker, or the CLI
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if service.snapshot().champions["1x2"].version == before.version:
                break
            time.sleep(0.05)
        assert service.snapshot().champions["1x2"].version == before.version
    finally:
        stop.set()


def test_a_second_worker_follows_a_promotion_made_elsewhere(registry: Registry) -> None:
    import time

    follower, other = ChampionService(registry), ChampionService(registry)
    follower.reload()
    other.reload()
    elo_version = registry.latest_version("football", "1x2", "elo")
    assert elo_version is not None
    stop = follower.follow_registry(poll_s=0.05)
    try:
        other.promote("1x2", "elo", elo_version)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if follower.snapshot().champions["1x2"].name == "elo":
                break
            time.sleep(0.02)
        assert follower.snapshot().champions["1x2"].version == elo_version
        other.rollback("1x2")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and follower.snapshot().champions["1x2"].name == "elo":
            time.sleep(0.02)
        assert follower.snapshot().champions["1x2"].name == "market"
    finally:
        stop.set()


def test_a_reload_that_failed_is_retried_until_it_succeeds(registry: Registry) -> None:
    """The service recorded the registry's fingerprint before loading: after one failed reload
    (the new champion unloadable for a moment) the watcher saw no change, and the server kept
    the old champion for good while the pointer named the new one."""
    import time

    follower = ChampionService(registry)
    follower.reload()
    elo = registry.latest_version("football", "1x2", "elo")
    assert elo is not None
    broken = threading.Event()
    broken.set()
    load = follower._load

    def flaky(market: str, name: str, version: str) -> Any:
        if broken.is_set() and name == "elo":
            raise LookupError(f"{name} {version} has no feature_state.json")
        return load(market, name, version)

    follower._load = flaky  # type: ignore[method-assign]
    registry.set_champion("football", "1x2", "elo", elo, "by hand")
    stop = follower.follow_registry(poll_s=0.05)
    try:
        time.sleep(0.5)  # several ticks fail
        assert follower.snapshot().champions["1x2"].name == "market"
        broken.clear()  # repaired
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and follower.snapshot().champions["1x2"].name != "elo":
            time.sleep(0.02)
        assert follower.snapshot().champions["1x2"].version == elo
    finally:
        stop.set()
        registry.rollback("football", "1x2")


def test_gpu_cloud_path_bench_times_both_runtimes(registry: Registry) -> None:
    """``bench/gpu_cloud_path.py`` runs on the CPU too: same forecast, the runtime it names."""
    bench = load_bench("gpu_cloud_path")
    fixture = FixtureIn.model_validate(bench.FIXTURE)
    in_torch, in_onnx = (
        bench.time_runtime(registry, rt, fixture, repeats=20) for rt in ("torch", "onnx")
    )
    assert in_torch["path"] == in_onnx["path"] == "cloud"
    assert (in_torch["onnxruntime_session"], in_onnx["onnxruntime_session"]) == (False, True)
    assert in_onnx["p_home"] == pytest.approx(in_torch["p_home"], abs=1e-6)
    assert 0 < in_onnx["p50_ms"] <= in_onnx["p99_ms"]


def test_a_fixture_before_the_champions_data_is_refused(registry: Registry) -> None:
    """Its ratings already hold later results: the answer would see the future."""
    service = ChampionService(registry)
    service.reload()
    as_of = service.snapshot().champions["1x2"].state.as_of_utc
    last = FixtureIn.model_validate({**_fixture().model_dump(by_alias=True), "kickoff": as_of})
    with pytest.raises(ValueError, match="before the champion's data ends"):
        service.forecast([last])  # the last match in the data is itself in the past
    past = FixtureIn.model_validate(
        {**_fixture().model_dump(by_alias=True), "kickoff": "2005-08-13T14:00:00Z"}
    )
    with pytest.raises(
        KickoffTooEarlyError, match=f"before the champion's data ends .*{as_of[:10]}"
    ) as caught:
        service.forecast([_fixture(), past])
    assert (caught.value.index, caught.value.field) == (1, "kickoff")


def test_a_batch_reports_the_error_at_its_earliest_position(registry: Registry) -> None:
    """The kick-off check ran over the whole batch first, so a later fixture's error hid an
    unknown team earlier in the request."""
    service = ChampionService(registry)
    service.reload()
    past = FixtureIn.model_validate(
        {**_fixture().model_dump(by_alias=True), "kickoff": "2005-08-13T14:00:00Z"}
    )
    with pytest.raises(UnknownTeamError) as unknown:
        service.forecast([_fixture(), _fixture(home="Arsenl"), past])
    assert (unknown.value.index, unknown.value.side) == (1, "home")
    with pytest.raises(KickoffTooEarlyError) as early:
        service.forecast([_fixture(), past, _fixture(home="Arsenl")])
    assert early.value.index == 1


def _copy(registry: Registry, tmp_path: Path) -> Registry:
    shutil.copytree(registry.root, tmp_path / "registry")
    return Registry(str(tmp_path / "registry"))


def _served_copy(registry: Registry, tmp_path: Path) -> tuple[Registry, ChampionService]:
    """A copy of the module's registry (tests may damage or promote in it) and its service."""
    copy = _copy(registry, tmp_path)
    service = ChampionService(copy)
    service.reload()
    return copy, service


def _corrupt(registry: Registry, market: str, name: str) -> str:
    version = registry.latest_version("football", market, name)
    assert version is not None
    folder = Path(registry.root) / "football" / market / name / version
    target = next(p for p in sorted(folder.iterdir()) if p.name != "manifest.json")
    target.write_bytes(target.read_bytes() + b"garbage")
    return version


def test_promoting_a_damaged_version_leaves_the_champion_where_it_was(
    registry: Registry, tmp_path: Path
) -> None:
    copy = _copy(registry, tmp_path)
    before = copy.champion("football", "1x2")
    version = _corrupt(copy, "1x2", "elo")
    service = ChampionService(copy)
    service.reload()
    with pytest.raises(ValueError, match="elo"):
        service.promote("1x2", "elo", version)
    assert copy.champion("football", "1x2") == before
    assert service.snapshot().champions["1x2"].version == before.version
    assert ChampionService(copy).reload()["champions"]["1x2"]["version"] == before.version


def test_a_damaged_challenger_is_left_out_of_the_ensemble_not_fatal(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = _copy(registry, tmp_path)
    version = _corrupt(copy, "1x2", "neural")
    service = ChampionService(copy)
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()
    names = [m.name for m in service.snapshot().members["1x2"]]
    assert "neural" not in names
    assert {"market", "elo", "dixon_coles", "lightgbm"} <= set(names)
    assert f"neural {version} left out" in caplog.text


def test_rolling_back_an_unknown_market_is_a_lookup_error(registry: Registry) -> None:
    service = ChampionService(registry)
    service.reload()
    with pytest.raises(LookupError, match="unknown market 'zz'"):
        service.rollback("zz")


def test_a_damaged_secondary_market_leaves_the_rest_served(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged ou25 pointer failed every reload: a 1X2 promotion moved its pointer, then
    answered "failed" while the server kept the old champion."""
    copy = _copy(registry, tmp_path)
    (Path(copy.root) / "football" / "ou25" / "champion.json").write_text("nonsense")
    service = ChampionService(copy)
    with caplog.at_level("WARNING", logger="marketcast.serving.service"):
        service.reload()
    assert set(service.snapshot().champions) == {"1x2", "ah"}
    assert "football/ou25 left out of this snapshot" in caplog.text
    elo = copy.latest_version("football", "1x2", "elo")
    assert elo is not None
    service.promote("1x2", "elo", elo)
    assert service.snapshot().champions["1x2"].version == elo


def test_after_a_rollback_the_champion_stands_for_its_model_in_the_blend(
    registry: Registry, tmp_path: Path
) -> None:
    """The newer version rolled back from stayed in the cloud blend as the model's latest."""
    copy, service = _served_copy(registry, tmp_path)
    [older] = copy.versions("football", "1x2", "elo")
    files = copy.load_files("football", "1x2", "elo", older)
    manifest = copy.manifest("football", "1x2", "elo", older).model_copy(update={"version": None})
    newer = copy.register("football", "1x2", "elo", files, manifest)
    service.promote("1x2", "elo", older)
    service.promote("1x2", "elo", newer)
    service.rollback("1x2")
    members = {m.name: m.version for m in service.snapshot().members["1x2"]}
    assert members["elo"] == older == service.snapshot().champions["1x2"].version


def test_rolling_back_with_no_earlier_champion_is_a_lookup_error(
    registry: Registry, tmp_path: Path
) -> None:
    _, service = _served_copy(registry, tmp_path)
    with pytest.raises(LookupError, match="nothing to roll back to"):
        service.rollback("ah")


def test_promotions_at_the_same_time_keep_every_history_entry(
    registry: Registry, tmp_path: Path
) -> None:
    """Two promotes could each read the pointer before the other wrote it: one entry was lost."""
    copy, service = _served_copy(registry, tmp_path)
    versions = {m.model_name: m.version for m in copy.list_models("football", "1x2")}
    before = len(copy.champion_history("football", "1x2"))
    names = ["elo", "dixon_coles", "lightgbm", "neural"]
    threads = [
        threading.Thread(target=service.promote, args=("1x2", name, versions[name]))
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(copy.champion_history("football", "1x2")) == before + len(names)


def _secondary_of_another_run(
    service: ChampionService, registry: Registry, market: str, state: FeatureState
) -> Any:
    """Serve ``market`` by this run's network as if another run had made it, with ``state``."""
    loaded = load_servable(
        registry, market, "neural", registry.latest_version("football", market, "neural")
    )
    other = dataclasses.replace(
        loaded, manifest=loaded.manifest.model_copy(update={"run_id": "another-run"}), state=state
    )
    snap = service.snapshot()
    service._snapshot = dataclasses.replace(snap, champions={**snap.champions, market: other})
    return other


def test_a_secondary_champion_of_another_run_reads_its_own_runs_features(
    registry: Registry,
) -> None:
    """It was given the 1X2 champion's feature rows: another run's ratings and data end."""
    service = ChampionService(registry)
    service.reload()
    state = service.snapshot().champions["1x2"].state
    shifted = {
        team: {k: v + 150.0 if k.startswith("elo") else v for k, v in values.items()}
        for team, values in state.home_side.items()
    }
    own = dataclasses.replace(state, home_side=shifted)
    other = _secondary_of_another_run(service, registry, "ou25", own)
    fixture = _fixture(ou25={"over": 1.7, "under": 2.2})
    [out] = service.forecast([fixture])
    rows = own.fixture_rows([_fixture_dict(fixture)])
    expected = _predict(other, RequestFeatures(own, rows), MarketKind.OVER_UNDER_25)[0]
    from_1x2_state = _predict(
        other,
        RequestFeatures(state, state.fixture_rows([_fixture_dict(fixture)])),
        MarketKind.OVER_UNDER_25,
    )[0]
    assert not np.allclose(expected, from_1x2_state)  # the shift reaches this model
    served = out.markets["ou25"].probabilities
    np.testing.assert_allclose([served["over"], served["under"]], expected, rtol=0, atol=1e-12)


def test_a_secondary_champion_whose_data_ends_later_leaves_its_market_out(
    registry: Registry,
) -> None:
    """Its ratings hold the fixture's own result: the 1X2 answer stands, ou25 is left out."""
    service = ChampionService(registry)
    service.reload()
    state = service.snapshot().champions["1x2"].state
    later = dataclasses.replace(state, as_of_utc="2023-09-01T00:00:00+00:00")
    _secondary_of_another_run(service, registry, "ou25", later)
    ah = {"line": -0.75, "home": 1.95, "away": 1.95}
    [out] = service.forecast([_fixture(ou25={"over": 1.7, "under": 2.2}, ah=ah)])
    assert "ou25" not in out.markets
    assert "ah" in out.markets
    assert sum(out.probabilities.values()) == pytest.approx(1.0)
    # and says why (the fresh-user walkthrough: a market asked for went missing without a word)
    assert list(out.markets_not_served) == ["ou25"]
    reason = out.markets_not_served["ou25"]
    assert "of another run than the 1X2 champion's, and it kicks off before that run's" in reason
    assert "(2023-09-01T00:00:00+00:00)" in reason
    snap = service.snapshot()
    service._snapshot = dataclasses.replace(
        snap, champions={m: c for m, c in snap.champions.items() if m != "ah"}
    )
    [out] = service.forecast([_fixture(ou25={"over": 1.7, "under": 2.2}, ah=ah)])
    assert out.markets_not_served["ah"] == "no champion for the market"
    [out] = service.forecast([_fixture()])  # no secondary odds: nothing was asked for
    assert out.markets_not_served == {}


def test_an_admin_rollback_restores_only_the_version_it_checked(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's promotion between the check and the move: it restored another version."""
    copy, service = _served_copy(registry, tmp_path)
    [elo] = copy.versions("football", "1x2", "elo")
    [dixon_coles] = copy.versions("football", "1x2", "dixon_coles")
    service.promote("1x2", "elo", elo)  # history: [market]; rolling back would restore market
    checked = service._load_to_serve

    def another_process_promotes_in_between(market: str, name: str, version: str) -> Any:
        loaded = checked(market, name, version)
        copy.set_champion("football", "1x2", "dixon_coles", dixon_coles, "promoted elsewhere")
        return loaded

    monkeypatch.setattr(service, "_load_to_serve", another_process_promotes_in_between)
    with pytest.raises(ChampionChangedError):
        service.rollback("1x2")
    current = copy.champion("football", "1x2")
    assert current is not None
    assert (current.model_name, current.version) == ("dixon_coles", dixon_coles)


def test_a_member_answering_nan_is_left_out_of_that_fixtures_blend(
    registry: Registry, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """One member's NaN made the cloud answer NaN (a 500 on serialising it): the blend is now
    the other members' on the fixtures that member did not answer, and a warning says so."""
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01))
    service.reload()
    fixtures = [_fixture(), _fixture("Liverpool", "Everton", odds=(1.6, 4.2, 5.5))]
    snap = service.snapshot()
    [dc] = [m for m in snap.members["1x2"] if m.name == "dixon_coles"]
    others = [m for m in snap.members["1x2"] if m.name != "dixon_coles"]
    with monkeypatch.context() as patch:  # the blend of everyone else
        patch.setitem(snap.members, "1x2", others)
        without = service.forecast(fixtures)
    with_all = service.forecast(fixtures)

    answer = service_module._predict

    def nan_on_first(loaded, features, market):
        p = answer(loaded, features, market)
        if loaded is dc:
            p = p.copy()
            p[0] = np.nan
        return p

    monkeypatch.setattr(service_module, "_predict", nan_on_first)
    with caplog.at_level("WARNING", logger=service_module.__name__):
        first, second = service.forecast(fixtures)
    assert first.probabilities == pytest.approx(without[0].probabilities, abs=1e-12)
    assert first.probabilities != pytest.approx(with_all[0].probabilities, abs=1e-9)
    assert second.probabilities == pytest.approx(with_all[1].probabilities, abs=1e-12)
    for outcome, (low, high) in first.band.items():
        assert low <= first.probabilities[outcome] <= high
    assert "dixon_coles" in caplog.text
    assert "1 of 2 cloud fixtures" in caplog.text


def test_a_fixture_no_member_answered_is_a_server_error_not_nan(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01))
    service.reload()
    monkeypatch.setattr(
        service_module, "_predict", lambda loaded, features, market: np.full((1, 3), np.nan)
    )
    with pytest.raises(RuntimeError, match="gave finite probabilities for 1 cloud fixture"):
        service.forecast([_fixture()])
