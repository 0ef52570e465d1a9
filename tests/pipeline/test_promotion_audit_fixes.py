"""What the promotion audit found: a crypto run on fewer pairs replaced the champion on those
pairs; a damaged crypto ``champion.json`` surfaced after the whole walk-forward; a champion whose
files could not be read passed the coverage and settings guards; and ``run`` left a ``market``
champion untested when ``models`` left the ``market`` model out, where ``evaluate`` tests it."""

from __future__ import annotations

import io
import json
import shutil
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from marketcast.config import CryptoRunConfig, CryptoWalkForward, FootballRunConfig
from marketcast.datasets.football_data import FootballData
from marketcast.features.football_state import build_feature_state
from marketcast.models.crypto import CRYPTO_CHAMPION_SPEC
from marketcast.orchestration import crypto as crypto_job
from marketcast.orchestration import football as football_job
from marketcast.promotion import decide_among, superseded_note
from marketcast.registry import Registry, TrainingWindow
from marketcast.registry.store import RegistryDamagedError
from tests.pipeline.test_cloud_members import bundled_seasons, small_run
from tests.unit.test_registry import make_manifest

CRYPTO_SETTINGS: dict[str, Any] = {"model_params": {}, "per_regime": False, "min_edge": 0.0}
#: the bars a crypto champion below was fit on: one a run's candles in `_shadow` reach
CRYPTO_WINDOW = TrainingWindow(
    start_utc=datetime(2022, 1, 1, tzinfo=UTC),
    end_utc=datetime(2023, 1, 1, tzinfo=UTC),
    n_matches=1,
)


# -- crypto: the shadow test against a registered champion, without the walk-forward ---------
def _crypto_champion(
    registry: Registry, name: str, pairs: list[str], window: TrainingWindow = CRYPTO_WINDOW
) -> str:
    """A crypto 1d champion whose ``crypto_model.json`` serves ``pairs`` (one group), fit on
    the bars of ``window``."""
    spec = {"spec_version": 2, "champion": name, "members": [name], "groups": {"g0": pairs}}
    files = {CRYPTO_CHAMPION_SPEC: json.dumps(spec).encode(), "g0-m.json": b"{}"}
    manifest = make_manifest(
        name, files, "crypto", "1d", config=CRYPTO_SETTINGS, training_window=window
    )
    version = registry.register("crypto", "1d", name, files, manifest)
    registry.set_champion("crypto", "1d", name, version, "by hand")
    return version


def _shadow(
    tmp_path: Path,
    registry: Registry,
    run_pairs: list[str],
    monkeypatch: pytest.MonkeyPatch,
    **settings: Any,
) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
    """This run's shadow test on 1d over ``run_pairs``: flat against momentum, which is better
    by far (a tested champion would lose), over ``periods`` days (400 by default); the export
    is skipped. The run's candles: one bar a pair, at ``last_bar`` (2023-01-01 by default)."""
    monkeypatch.setattr(crypto_job, "run_jobs", lambda jobs, *args, **kwargs: [])
    rng = np.random.default_rng(3)
    periods = settings.pop("periods", 400)
    period_net = {"flat": np.zeros(periods), "momentum": rng.normal(0.01, 0.01, periods)}
    horizon = SimpleNamespace(period_net=period_net, gate_enabled={}, failed_jobs=[])
    evaluation: Any = SimpleNamespace(horizons={"1d": horizon}, export_rows={"1d": None}, groups=[])
    candles = pd.DataFrame(
        {
            "open_time_utc": pd.Timestamp(settings.pop("last_bar", "2023-01-01"), tz="UTC"),
            "pair": run_pairs,
            "quote_volume": 1.0e6,
        }
    )
    prepared: Any = SimpleNamespace(data=SimpleNamespace(candles=candles))
    config = CryptoRunConfig(
        models=("flat", "momentum"),
        registry_root=str(tmp_path / "registry"),
        **{**CRYPTO_SETTINGS, **settings},
    )
    return crypto_job._shadow_and_export(config, registry, prepared, evaluation, "run")


def test_a_crypto_run_on_fewer_pairs_leaves_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BTCUSDT-only experiment refreshed (or replaced) a BTCUSDT+ETHUSDT champion with a fit
    on BTCUSDT alone; the server then answered ETHUSDT "pair not in any training group"."""
    registry = Registry(str(tmp_path / "registry"))
    version = _crypto_champion(registry, "flat", ["BTCUSDT", "ETHUSDT"])
    champions, decisions, moves = _shadow(tmp_path, registry, ["BTCUSDT"], monkeypatch)
    assert (moves, champions) == ({}, {"1d": "flat"})  # momentum was not promoted either
    reason = decisions["1d"]["reason"]
    assert reason.startswith(f"flat {version} stays: it serves ETHUSDT, which this run did not")
    assert "(this run: BTCUSDT)" in reason
    assert "challenger" not in decisions["1d"]
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert record.version == version
    # the guard's other side: a run on the champion's pairs (and more) tests it
    champions, decisions, _ = _shadow(
        tmp_path, registry, ["BTCUSDT", "ETHUSDT", "BNBUSDT"], monkeypatch
    )
    assert champions == {"1d": "momentum"}
    assert decisions["1d"]["promote"] is True
    assert decisions["1d"]["challengers_tested"] == 1


def test_a_pair_renamed_since_the_champion_counts_under_its_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MATICUSDT's history continues as POLUSDT (``pair_renames``): a run on POLUSDT covers
    the MATICUSDT of a champion made before the rename, and one without the rename does not."""
    registry = Registry(str(tmp_path / "registry"))
    version = _crypto_champion(registry, "flat", ["BTCUSDT", "MATICUSDT"])
    champions, decisions, _ = _shadow(tmp_path, registry, ["BTCUSDT", "POLUSDT"], monkeypatch)
    assert champions == {"1d": "flat"}
    assert decisions["1d"]["reason"].startswith(
        f"flat {version} stays: it serves MATICUSDT, which this run did not cover (this run: "
        "BTCUSDT, POLUSDT)"
    )
    champions, decisions, _ = _shadow(
        tmp_path,
        registry,
        ["BTCUSDT", "POLUSDT"],
        monkeypatch,
        pair_renames={"MATICUSDT": "POLUSDT"},
    )
    assert champions == {"1d": "momentum"}
    assert decisions["1d"]["challengers_tested"] == 1


def test_a_crypto_run_on_older_or_fewer_bars_or_no_period_leaves_the_champion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Registry audit (high): a run's refit (or a challenger) replaced the champion untested
    whatever it was fit on, bars that end before the champion's or fewer of them, and a run
    that scored nothing tested nothing."""
    registry = Registry(str(tmp_path / "registry"))
    window = TrainingWindow(
        start_utc=datetime(2021, 1, 1, tzinfo=UTC),
        end_utc=datetime(2023, 6, 1, 12, tzinfo=UTC),
        n_matches=5,
    )
    version = _crypto_champion(registry, "flat", ["BTCUSDT"], window)
    five = ["BTCUSDT", "ETHUSDT", "BNBUSDT", "XRPUSDT", "ADAUSDT"]
    champions, decisions, moves = _shadow(tmp_path, registry, five, monkeypatch)
    assert (moves, champions) == ({}, {"1d": "flat"})  # momentum was not promoted either
    assert decisions["1d"]["reason"] == (
        f"flat {version} stays: this run's data ends 2023-01-01, before the champion's "
        "(2023-06-01 12:00 UTC), so neither its refit nor a challenger may replace it "
        "(`marketcast registry promote` a version to replace it on purpose, or run on bars "
        "that reach the champion's)"
    )
    champions, decisions, _ = _shadow(
        tmp_path, registry, five[:3], monkeypatch, last_bar="2023-07-01"
    )
    assert champions == {"1d": "flat"}
    assert decisions["1d"]["reason"].startswith(
        f"flat {version} stays: this run's data holds 3 bars, fewer than the 5 the champion was "
        "fit on, so"
    )
    champions, decisions, _ = _shadow(
        tmp_path, registry, five, monkeypatch, last_bar="2023-07-01", periods=0
    )
    assert champions == {"1d": "flat"}
    assert decisions["1d"]["reason"] == (
        f"flat {version} stays: this run scored no period, so it tested neither its refit nor "
        "a challenger"
    )
    # per pair: one bar of BTCUSDT, where the champion was fit on five
    by_pair = TrainingWindow.model_validate(
        {**window.model_dump(), "groups": {"BTCUSDT": {"end_utc": window.end_utc, "n_matches": 5}}}
    )
    pair_version = _crypto_champion(registry, "flat", ["BTCUSDT"], by_pair)
    champions, decisions, _ = _shadow(tmp_path, registry, five, monkeypatch, last_bar="2023-07-01")
    assert decisions["1d"]["reason"].startswith(
        f"flat {pair_version} stays: this run's data holds 1 BTCUSDT bars, fewer than the 5 the "
        "champion was fit on, so"
    )
    _crypto_champion(registry, "flat", ["BTCUSDT"], window)
    # the guard's other side: as many bars, reaching as far, are tested
    champions, decisions, _ = _shadow(tmp_path, registry, five, monkeypatch, last_bar="2023-07-01")
    assert champions == {"1d": "momentum"}
    assert decisions["1d"]["challengers_tested"] == 1


@pytest.mark.parametrize("damage", ["spec", "manifest"])
def test_a_crypto_champion_that_cannot_be_read_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """A damaged champion passed the pair and settings guards (a missing manifest counted as
    "no setting changed"), and was replaced by a challenger: the run could not know what it
    served or how it was made, and said nothing about the damage."""
    registry = Registry(str(tmp_path / "registry"))
    version = _crypto_champion(registry, "flat", ["BTCUSDT"])
    folder = tmp_path / "registry" / "crypto" / "1d" / "flat" / version
    if damage == "spec":
        (folder / CRYPTO_CHAMPION_SPEC).write_text('{"groups": ')
    else:
        (folder / "manifest.json").unlink()
    champions, decisions, moves = _shadow(tmp_path, registry, ["BTCUSDT"], monkeypatch)
    assert (moves, champions) == ({}, {"1d": "flat"})
    reason = decisions["1d"]["reason"]
    assert reason.startswith(f"flat {version} stays: its manifest or files cannot be read (")
    named = (
        CRYPTO_CHAMPION_SPEC if damage == "spec" else f"no model crypto/1d/flat version {version}"
    )
    assert named in reason
    assert "cannot tell which pairs it serves" in reason


# -- crypto: whole runs on two bundled pairs ---------------------------------------------------
def _crypto_config(tmp_path: Path, pairs: tuple[str, ...]) -> CryptoRunConfig:
    return CryptoRunConfig(
        pairs=pairs,
        horizons=("1d",),
        models=("flat", "momentum"),
        group_size=2,
        walk_forward=CryptoWalkForward(
            start="2023-03-01", end="2023-04-01", step_days=30, max_train_days=90
        ),
        max_workers=1,
        registry_root=str(tmp_path / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )


def test_a_one_pair_run_leaves_a_two_pair_crypto_champion(tmp_path: Path) -> None:
    """The audit's run: a second run on BTCUSDT alone "refreshed" the champion of a run on
    BTCUSDT and ETHUSDT with a refit on BTCUSDT, and said nothing of ETHUSDT."""
    console = Console(file=open(tmp_path / "log.txt", "a"))  # noqa: SIM115
    crypto_job.run_crypto(_crypto_config(tmp_path, ("BTCUSDT", "ETHUSDT")), console=console)
    registry = Registry(str(tmp_path / "registry"))
    first = registry.champion("crypto", "1d")
    assert first is not None
    run = crypto_job.run_crypto(_crypto_config(tmp_path, ("BTCUSDT",)), console=console)
    assert not isinstance(run, dict)
    assert registry.champion("crypto", "1d") == first
    decision = json.loads((run.run_dir / "crypto" / "metrics.json").read_text())["1d"]["promotion"]
    assert decision["promote"] is False
    assert decision["reason"].startswith(
        f"{first.model_name} {first.version} stays: it serves ETHUSDT, which this run did not "
        "cover (this run: BTCUSDT)"
    )


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry run"])
def test_a_damaged_crypto_champion_file_stops_the_run_before_any_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    """The champion was first read after the data preparation and every walk-forward job: the
    run then ended with exit 2 and no report, the work before it thrown away."""

    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the data was read")

    monkeypatch.setattr(crypto_job, "prepare_crypto", no_data)
    config = _crypto_config(tmp_path, ("BTCUSDT",)).model_copy(update={"horizons": ("4h", "1d")})
    pointer = tmp_path / "registry" / "crypto" / "1d" / "champion.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text('{"model_name": "flat", "vers')
    with pytest.raises(RegistryDamagedError, match=r"crypto/1d/champion\.json is unreadable"):
        crypto_job.run_crypto(config, dry_run=dry_run)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry run"])
def test_a_damaged_football_champion_file_stops_a_run_with_market_before_any_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dry_run: bool
) -> None:
    """Football read its champions before the data only for a run without ``market``; with it
    (the default) the pointer was first read after the walk-forward, as crypto's was."""

    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the data was read")

    monkeypatch.setattr(football_job, "load_data", no_data)
    config = FootballRunConfig(
        models=("market", "elo"),
        markets=("1x2", "ou25"),
        registry_root=str(tmp_path / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )
    pointer = tmp_path / "registry" / "football" / "ou25" / "champion.json"
    pointer.parent.mkdir(parents=True)
    pointer.write_text("nonsense")
    console = Console(file=open(tmp_path / "log.txt", "w"))  # noqa: SIM115
    start = (
        football_job.plan_football
        if dry_run
        else partial(football_job.run_football, console=console)
    )
    with pytest.raises(RegistryDamagedError, match=r"football/ou25/champion\.json is unreadable"):
        start(config)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


# -- football: a champion that cannot be read --------------------------------------------------
def _football_champion(registry: Registry, epl: FootballData) -> str:
    """A market 1x2 champion serving E0, with the feature state a run exports."""
    state = build_feature_state(epl, demargin_method="shin").to_json()
    files = {"market.json": b"{}", football_job.FEATURE_STATE_FILE: state}
    config = {"model_params": {}, "demargin_method": "shin"}
    manifest = make_manifest("market", files, "football", "1x2", config=config)
    version = registry.register("football", "1x2", "market", files, manifest)
    registry.set_champion("football", "1x2", "market", version, "no champion yet")
    return version


def _football_stays(
    registry: Registry,
    config: FootballRunConfig,
    window: dict[str, Any] | None = None,
    scored: int = 3,
) -> str | None:
    """Why the 1x2 champion stays against a run of market and elo on E0 that scored
    ``scored`` matches and was fit on ``window`` (by default the champion's own)."""
    champion = registry.champion("football", "1x2")
    assert champion is not None
    ev: Any = SimpleNamespace(
        losses={name: np.ones(scored) for name in ("market", "elo", "prematch")},
        summary={"engines": {"market": {}, "elo": {}}},
    )
    if window is None:  # the champion's own (make_manifest's)
        window = {"start_utc": "2019-08-09T19:00:00Z", "end_utc": "2024-05-19T15:00:00Z"}
        window["n_matches"] = 1900
    return football_job._why_champion_stays(registry, "1x2", champion, config, ev, ["E0"], window)


@pytest.mark.parametrize("damage", ["feature state", "manifest"])
def test_a_football_champion_that_cannot_be_read_stays(
    tmp_path: Path, epl: FootballData, damage: str
) -> None:
    """A damaged champion counted as "serves no league" and "no setting changed": an E0-only
    run then replaced a damaged champion serving E0 and D1, and a run with another
    ``demargin_method`` refreshed it untested, with no word of the damage."""
    registry = Registry(str(tmp_path / "registry"))
    version = _football_champion(registry, epl)
    assert _football_stays(registry, FootballRunConfig()) is None  # intact: it may be tested
    folder = tmp_path / "registry" / "football" / "1x2" / "market" / version
    if damage == "feature state":
        path = folder / football_job.FEATURE_STATE_FILE
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        config = FootballRunConfig()
    else:
        (folder / "manifest.json").unlink()
        config = FootballRunConfig(demargin_method="power")
    why = _football_stays(registry, config)
    assert why is not None
    assert why.startswith("its manifest or files cannot be read (")
    named = football_job.FEATURE_STATE_FILE if damage == "feature state" else "no model football"
    assert named in why
    assert "cannot tell which leagues it serves" in why


def test_a_football_run_on_older_or_fewer_matches_or_none_scored_leaves_the_champion(
    tmp_path: Path, epl: FootballData
) -> None:
    """Registry audit (high): an elo champion fit on 6,840 matches up to 2023 was "refreshed"
    by a run over 2019-2021 with a refit on 1,520, and a run over files without closing prices
    (it scored no match) replaced a champion all the same."""
    registry = Registry(str(tmp_path / "registry"))
    version = _football_champion(registry, epl)  # fit on 1,900 matches up to 2024-05-19 15:00
    config = FootballRunConfig()
    start = datetime(2019, 8, 9, 19, tzinfo=UTC)
    older = {"start_utc": start, "end_utc": datetime(2021, 5, 23, tzinfo=UTC), "n_matches": 6840}
    assert _football_stays(registry, config, older) == (
        "this run's data ends 2021-05-23, before the champion's (2024-05-19 15:00 UTC), so "
        "neither its refit nor a challenger may replace it (this run's versions are "
        "registered: `marketcast registry promote` one to replace it on purpose, or run on "
        "data that reaches the champion's)"
    )
    fewer = {"start_utc": start, "end_utc": datetime(2025, 5, 25, tzinfo=UTC), "n_matches": 1520}
    why = _football_stays(registry, config, fewer)
    assert why is not None
    assert why.startswith(
        "this run's data holds 1,520 matches, fewer than the 1,900 the champion was fit on, so"
    )
    assert _football_stays(registry, config, scored=0) == (
        "this run scored no match in this market (a match is scored once it has its closing "
        "prices and result), so it tested neither its refit nor a challenger"
    )
    # the guard's other side: as many matches, reaching as far or further, are tested
    assert _football_stays(registry, config, {**fewer, "n_matches": 1900}) is None
    assert registry.champion("football", "1x2").version == version  # type: ignore[union-attr]


# -- football: run without the market model against a market champion -----------------------
@pytest.fixture(scope="module")
def market_champion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose 1x2 champion is ``market``, crowned by a run of market and elo on E0."""
    root = tmp_path_factory.mktemp("market_champion")
    bundled_seasons(root / "data", {"E0": ("2020-2021", "2021-2022")})
    small_run(root, root / "data", ["market", "elo"])
    return root


def _copy(market_champion: Path, tmp_path: Path) -> Registry:
    shutil.copytree(market_champion / "registry", tmp_path / "registry")
    return Registry(str(tmp_path / "registry"))


def test_a_run_without_market_tests_its_challengers_against_the_market_champion(
    market_champion: Path, tmp_path: Path
) -> None:
    """docs/evaluation.md promised it, ``evaluate`` did it, and ``run`` with ``models: [elo]``
    said "market stays: this run did not evaluate it", testing nothing."""
    registry = _copy(market_champion, tmp_path)
    champion = registry.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "market"
    saved = len(registry.decisions("football", "1x2"))
    small_run(tmp_path, market_champion / "data", ["elo"])
    assert registry.champion("football", "1x2") == champion  # no refit of it to refresh with
    report = json.loads(next((tmp_path / "runs").glob("*/report.json")).read_text())
    decision = report["promotion"]["1x2"]
    assert decision["challenger"] == "elo"
    assert decision["challengers_tested"] == 1
    assert decision["champion"] == "market"
    assert decision["champion_version"] == champion.version
    assert decision["n"] >= 300  # a season of E0, tested on the prematch yardstick's losses
    latest = registry.decisions("football", "1x2")
    assert len(latest) == saved + 1  # the rejection is on file, as a refreshed champion's is
    assert latest[-1].decided_utc == datetime.fromisoformat(decision["decided_utc"])


def test_a_challenger_that_beats_the_market_champion_is_promoted_over_it(
    market_champion: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The promotion's move, when the market champion is not in the run: the only move, from
    the version on record (there is no refit of it)."""
    registry = _copy(market_champion, tmp_path)
    champion = registry.champion("football", "1x2")
    assert champion is not None
    decide_among = football_job.decide_among

    def elo_wins(*args: Any, **kwargs: Any) -> Any:  # the real test, its verdict turned
        decision = decide_among(*args, **kwargs)
        return decision.model_copy(update={"promote": True, "reason": "elo wins (the test)"})

    monkeypatch.setattr(football_job, "decide_among", elo_wins)
    small_run(tmp_path, market_champion / "data", ["elo"])
    record = registry.champion("football", "1x2")
    assert record is not None
    assert record.model_name == "elo"
    assert record.version == registry.latest_version("football", "1x2", "elo")
    assert record.reason == "elo wins (the test)"
    history = registry.champion_history("football", "1x2")
    assert (history[-1].model_name, history[-1].version) == ("market", champion.version)
    latest = registry.decisions("football", "1x2")[-1]
    assert (latest.challenger, latest.promote) == ("elo", True)
    assert latest.champion_version == champion.version


def test_a_run_on_older_seasons_leaves_the_champion_it_would_have_refreshed(
    market_champion: Path, tmp_path: Path
) -> None:
    """The audit's run: a second run of market and elo on E0 2019-20 and 2020-21 refreshed the
    champion of a run on 2020-21 and 2021-22 with a refit that ends a season earlier."""
    registry = _copy(market_champion, tmp_path)
    champion = registry.champion("football", "1x2")
    assert champion is not None
    manifest = registry.manifest("football", "1x2", "market", champion.version)
    older = bundled_seasons(tmp_path / "older", {"E0": ("2019-2020", "2020-2021")})
    small_run(tmp_path, older, ["market", "elo"])
    assert registry.champion("football", "1x2") == champion
    report = json.loads(next((tmp_path / "runs").glob("*/report.json")).read_text())
    reason = report["promotion"]["1x2"]["reason"]
    assert reason.startswith(
        f"market {champion.version} stays: this run's E0 data ends 2021-05-23 15:00 UTC, "
        "before the champion's (2022-05-22 15:00 UTC), so neither its refit nor"
    )
    assert manifest.training_window.end_utc == datetime(2022, 5, 22, 15, tzinfo=UTC)
    # this run's refit is registered, for a promotion by hand
    assert registry.latest_version("football", "1x2", "market") != champion.version


def test_a_refreshed_crypto_champion_is_the_version_its_decision_names(tmp_path: Path) -> None:
    """The review of a89f66c: a crypto run that refreshed its champion and rejected the
    challenger saved the decision with the version on record before the refresh, so
    `registry show` said the pointer had moved after it, on every ordinary run."""
    console = Console(file=open(tmp_path / "log.txt", "a"))  # noqa: SIM115
    config = _crypto_config(tmp_path, ("BTCUSDT", "ETHUSDT"))
    crypto_job.run_crypto(config, console=console)
    crypto_job.run_crypto(config, console=console)
    registry = Registry(str(tmp_path / "registry"))
    champion = registry.champion("crypto", "1d")
    decision = registry.latest_decision("crypto", "1d")
    assert champion is not None
    assert decision is not None
    left = decision.challenger_version if decision.promote else decision.champion_version
    assert left == champion.version
    assert (
        superseded_note(
            decision.model_dump(), champion.model_name, champion.version, champion.reason
        )
        is None
    )


def test_a_run_whose_league_data_is_older_leaves_the_champion_though_it_holds_more(
    market_champion: Path, tmp_path: Path
) -> None:
    """The review of ca242ed: the windows were compared in all only, so a run on E0 to 2021
    and SP1 to 2022 (more matches, reaching as far) replaced an E0 champion fit to 2022 with an
    E0 fit a season older."""
    registry = _copy(market_champion, tmp_path)
    champion = registry.champion("football", "1x2")
    assert champion is not None
    manifest = registry.manifest("football", "1x2", "market", champion.version)
    assert manifest.training_window.groups is not None
    assert set(manifest.training_window.groups) == {"E0"}
    mixed = bundled_seasons(
        tmp_path / "mixed",
        {"E0": ("2019-2020", "2020-2021"), "SP1": ("2020-2021", "2021-2022")},
    )
    small_run(tmp_path, mixed, ["market", "elo"])
    assert registry.champion("football", "1x2") == champion
    report = json.loads(next((tmp_path / "runs").glob("*/report.json")).read_text())
    assert report["promotion"]["1x2"]["reason"].startswith(
        f"market {champion.version} stays: this run's E0 data ends 2021-05-23 15:00 UTC, before "
        "the champion's (2022-05-22 15:00 UTC), so neither its refit nor"
    )


def test_a_saved_decision_can_be_checked_again_from_the_runs_stored_losses(
    market_champion: Path,
) -> None:
    """Registry audit (medium): the per-match losses behind a decision were not kept, so its
    p-value could only be checked by re-running the whole walk-forward."""
    registry = Registry(str(market_champion / "registry"))
    decision = registry.latest_decision("football", "1x2")
    assert decision is not None
    assert (decision.champion, decision.challenger) == ("market", "elo")
    assert decision.challenger_version is not None
    run_id = registry.manifest("football", "1x2", "elo", decision.challenger_version).run_id
    files = registry.run_report_files("football", run_id)
    losses = pd.read_parquet(io.BytesIO(files[football_job.LOSSES_FILE]))
    one_x_two = losses[losses["market"] == "1x2"]
    assert len(one_x_two) == decision.n
    assert one_x_two["match_id"].is_unique
    again = decide_among(
        "market",
        one_x_two["loss_market"].to_numpy(),
        {"elo": one_x_two["loss_elo"].to_numpy()},
        decision.rule,
    )
    assert (again.p_value, again.mean_difference, again.promote) == (
        decision.p_value,
        decision.mean_difference,
        decision.promote,
    )
    assert again.reason == decision.reason


def test_a_saved_crypto_decision_can_be_checked_again_from_the_stored_net_returns(
    tmp_path: Path,
) -> None:
    """As football's: the shadow test's per-period nets were not kept beside the report."""
    console = Console(file=open(tmp_path / "log.txt", "a"))  # noqa: SIM115
    run = crypto_job.run_crypto(_crypto_config(tmp_path, ("BTCUSDT", "ETHUSDT")), console=console)
    assert not isinstance(run, dict)
    registry = Registry(str(tmp_path / "registry"))
    decision = registry.latest_decision("crypto", "1d")
    assert decision is not None
    assert (decision.champion, decision.challenger) == ("flat", "momentum")
    files = registry.run_report_files("crypto", run.run_id)
    nets = pd.read_parquet(io.BytesIO(files[crypto_job.PERIOD_NET_FILE]))
    rows = nets[nets["horizon"] == "1d"]
    assert len(rows) == decision.n
    assert rows["period_utc"].is_monotonic_increasing
    # the test's losses are these nets negated (`registry recheck` makes it again from them,
    # tests/pipeline/test_registry_recheck.py)
    assert {"net_flat", "net_momentum"} <= set(rows.columns)
    assert rows["net_flat"].eq(0.0).all()
    assert rows["net_momentum"].notna().all()
