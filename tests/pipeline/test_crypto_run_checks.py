"""The crypto job's checks before and after the walk-forward: what a probing user broke."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from marketcast.config import CryptoRunConfig, load_crypto_config
from marketcast.orchestration.crypto import _shadow_and_export, prepare_crypto, shadow_test
from marketcast.registry import Registry
from marketcast.registry.promotion import PromotionRule
from tests.pipeline.test_promotion_audit_fixes import CRYPTO_WINDOW
from tests.unit.test_registry import make_manifest


def _register_champion(registry: Registry, name: str = "flat") -> str:
    files = {"m.json": json.dumps({"name": name}).encode()}
    manifest = make_manifest(
        name, files, vertical="crypto", market="1d", training_window=CRYPTO_WINDOW
    )
    version = registry.register("crypto", "1d", name, files, manifest)
    registry.set_champion("crypto", "1d", name, version, "no champion yet")
    return version


def _shadow(tmp_path: Path, registry: Registry, period_net: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    evaluation: Any = SimpleNamespace(
        horizons={"1d": SimpleNamespace(period_net=period_net, gate_enabled={}, failed_jobs=[])},
        export_rows={"1d": None},
        groups=[],  # no walk-forward groups: the export ranks the pairs itself
    )
    # the run's export groups (its pairs, compared with the champion's) are read from these
    candles = pd.DataFrame(
        {
            "open_time_utc": pd.to_datetime(["2023-01-01"], utc=True),
            "pair": ["BTCUSDT"],
            "quote_volume": [1.0e6],
        }
    )
    prepared: Any = SimpleNamespace(data=SimpleNamespace(candles=candles))
    config = CryptoRunConfig(models=tuple(period_net), registry_root=str(tmp_path / "registry"))
    return _shadow_and_export(config, registry, prepared, evaluation, "run")


def test_a_champion_this_run_did_not_evaluate_stays_champion(tmp_path: Path) -> None:
    """A run of [momentum] alone replaced the registry's champion without any test, and
    printed "momentum stays champion: no challenger"."""
    registry = Registry(str(tmp_path / "registry"))
    version = _register_champion(registry, "logistic")
    champions, decisions, moves = _shadow(tmp_path, registry, {"momentum": np.array([-0.01, 0.02])})
    assert moves == {}  # nothing to move: the champion stays
    assert champions == {"1d": "logistic"}
    assert decisions["1d"]["promote"] is False
    assert f"logistic {version} stays: this run did not evaluate it" in decisions["1d"]["reason"]
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert (record.model_name, record.version) == ("logistic", version)


def test_a_champion_trained_with_other_parameters_stays_untested(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run exported its own fit of the champion's model, with its own parameters, as the
    champion ("stays champion"), and tested the challengers against that fit."""
    from marketcast.orchestration import crypto as crypto_job

    monkeypatch.setattr(crypto_job, "run_jobs", lambda jobs, *args, **kwargs: [])  # no export
    registry = Registry(str(tmp_path / "registry"))
    files = {"m.json": b"{}"}
    config = {"model_params": {"logistic": {"c": 0.1}}, "per_regime": True, "min_edge": 0.0}
    manifest = make_manifest("logistic", files, vertical="crypto", market="1d", config=config)
    version = registry.register("crypto", "1d", "logistic", files, manifest)
    registry.set_champion("crypto", "1d", "logistic", version, "no champion yet")
    rng = np.random.default_rng(2)
    nets = {"logistic": rng.normal(0.0, 0.01, 500), "momentum": rng.normal(0.01, 0.01, 500)}
    champions, decisions, moves = _shadow(tmp_path, registry, nets)
    assert (moves, champions) == ({}, {"1d": "logistic"})
    reason = decisions["1d"]["reason"]
    assert reason.startswith(f"logistic {version} stays: this run's model_params.logistic differ")


def test_settings_a_champion_does_not_use_leave_its_horizon_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flat trades nothing and per_regime splits only the learned models: a run changing them
    froze a flat champion's horizon (no challenger tested), calling flat "another model"."""
    from marketcast.orchestration import crypto as crypto_job

    monkeypatch.setattr(crypto_job, "pair_groups", lambda prepared, size: [("g0", ["BTCUSDT"])])
    monkeypatch.setattr(crypto_job, "run_jobs", lambda jobs, *args, **kwargs: [])  # no export
    registry = Registry(str(tmp_path / "registry"))
    files = {"m.json": b"{}"}
    config = {"model_params": {}, "per_regime": False, "min_edge": 0.01}
    manifest = make_manifest(
        "flat", files, "crypto", "1d", config=config, training_window=CRYPTO_WINDOW
    )
    version = registry.register("crypto", "1d", "flat", files, manifest)
    registry.set_champion("crypto", "1d", "flat", version, "no champion yet")
    rng = np.random.default_rng(1)
    champions, decisions, _ = _shadow(tmp_path, registry, {"momentum": rng.normal(0.01, 0.01, 500)})
    assert champions == {"1d": "momentum"}
    assert decisions["1d"]["promote"] is True


def test_a_flat_champion_faces_the_challengers_of_a_run_that_leaves_flat_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """flat's net is 0 whether run or not: once a run without it had made flat champion, every
    later run skipped the test ("did not evaluate it") and flat stayed champion for good."""
    from marketcast.orchestration import crypto as crypto_job

    monkeypatch.setattr(crypto_job, "pair_groups", lambda prepared, size: [("g0", ["BTCUSDT"])])
    monkeypatch.setattr(crypto_job, "run_jobs", lambda jobs, *args, **kwargs: [])  # no export
    registry = Registry(str(tmp_path / "registry"))
    _register_champion(registry, "flat")
    rng = np.random.default_rng(1)
    champions, decisions, _ = _shadow(tmp_path, registry, {"momentum": rng.normal(0.01, 0.01, 500)})
    assert champions == {"1d": "momentum"}
    assert decisions["1d"]["promote"] is True
    assert decisions["1d"]["challengers_tested"] == 1


def test_a_crypto_run_checks_its_outputs_before_reading_any_data(tmp_path: Path) -> None:
    """An unusable registry_root surfaced only after the whole walk-forward."""
    from marketcast.orchestration.crypto import run_crypto

    a_file = tmp_path / "afile"
    a_file.write_text("")
    config = CryptoRunConfig(
        pairs=("NOSUCHUSDT",),  # never read: the check comes first
        registry_root=str(a_file / "registry"),
        runs_dir=str(tmp_path / "runs"),
    )
    with pytest.raises(ValueError, match=r"field 'registry_root': .* cannot be created"):
        run_crypto(config)
    assert not (tmp_path / "runs").exists()


def test_a_first_champion_must_beat_flat_even_when_flat_was_not_run() -> None:
    """Without `flat` in `models`, the first model listed became champion untested; flat's net
    is 0 every period whether run or not, so it is the incumbent every first run defends."""
    rng = np.random.default_rng(0)
    losing = {"momentum": rng.normal(-0.004, 0.01, 500), "logistic": rng.normal(-0.0035, 0.01, 500)}
    champion, decision = shadow_test(losing, "flat", PromotionRule())
    assert champion == "flat"
    assert decision["champion"] == "flat"
    assert decision["promote"] is False
    assert decision["challengers_tested"] == 2
    winning = {"momentum": rng.normal(0.003, 0.01, 500)}
    assert shadow_test(winning, "flat", PromotionRule())[0] == "momentum"
    # too few periods to test: flat stays
    assert shadow_test({"momentum": np.array([0.01])}, "flat", PromotionRule())[0] == "flat"


def _two_step_consensus(  # type: ignore[no-untyped-def]
    probas: dict[str, np.ndarray], n_step: int
):
    """Run the walk-forward's consensus step over two steps of one pair's daily decisions."""
    from marketcast.ensemble.regime import RegimeGate
    from marketcast.orchestration.crypto_jobs import GroupTask, _consensus_step

    n = 2 * n_step
    start = pd.Timestamp("2023-01-01", tz="UTC")
    times = start + pd.to_timedelta(np.arange(n), unit="D")
    rows = pd.DataFrame({"pair": "AAAUSDT", "decision_time_utc": times})
    gate = RegimeGate()
    for name in probas:  # an equal, resolved, positive record: every voter enabled and equal
        for k in range(40):
            gate.record(name, "range", start - pd.Timedelta(days=100 - k), 0.01 + 0.001 * (k % 3))
    task = GroupTask(
        "g",
        "1d",
        24,
        rows,
        (),
        (*probas, "consensus"),
        {},
        start,
        None,
        n_step,
        None,
        0,
        True,
        0.0,
        0,
    )
    regime = np.full(n, "range", dtype=object)
    carried: tuple[list[Any], list[Any], dict[str, float], dict[str, Any], dict[str, Any]] = (
        [],
        [],
        {},
        {},
        {},
    )
    outs = []
    for step in range(2):
        test = np.arange(step * n_step, (step + 1) * n_step)
        out = pd.DataFrame({"row": test})
        _consensus_step(
            task,
            out,
            test,
            rows,
            regime,
            {m: p[test] for m, p in probas.items()},
            gate,
            times[step * n_step],
            0.0,
            np.zeros(n),
            np.zeros(n),
            np.ones(n, dtype=bool),  # every pair in the day's universe
            *carried,
        )
        outs.append(out)
    return pd.concat(outs, ignore_index=True)


def test_the_walk_forwards_consensus_continues_across_steps() -> None:
    """The correlation penalty restarted at every step (23 of a 30-day step's daily decisions
    had none) and the threshold's long-run spread kept only the last 1,000 scores: stepped, the
    pipeline now scores exactly as one consensus call over every decision."""
    from marketcast.ensemble.consensus import consensus

    rng = np.random.default_rng(3)
    z = rng.normal(size=1300)
    probas = {
        "momentum": 0.5 + 0.2 * np.tanh(z),
        "logistic": 0.5 + 0.2 * np.tanh(z + 0.1 * rng.normal(size=1300)),
        "lightgbm": 0.5 + 0.2 * np.tanh(rng.normal(size=1300)),
    }
    probas["lightgbm"][1100:] = 0.5 + 0.4 * np.tanh(rng.normal(size=200))  # a noisier spell
    stepped = _two_step_consensus(probas, 650)
    whole = consensus(probas, dict.fromkeys(probas, 1.0))
    np.testing.assert_allclose(stepped["score__consensus"], whole.score, atol=1e-12)
    np.testing.assert_allclose(stepped["threshold__consensus"], whole.threshold, atol=1e-12)


def test_the_regime_gate_counts_only_periods_a_model_traded(  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An untraded decision was recorded as a net of 0, so one lucky trade and 29 idle periods
    passed the gate's 30-period minimum, and the reliabilities were fed the same zeros."""
    from marketcast.ensemble.regime import RegimeGate
    from marketcast.orchestration.crypto import evaluate_crypto
    from tests.pipeline.test_crypto_pipeline import small_config

    recorded: list[tuple[str, float]] = []
    original = RegimeGate.record

    def record(self, model, regime, period_end_utc, net_return):  # type: ignore[no-untyped-def]
        recorded.append((model, net_return))
        return original(self, model, regime, period_end_utc, net_return)

    monkeypatch.setattr(RegimeGate, "record", record)
    config = small_config(
        Path("/nonexistent"), models=("flat", "momentum", "logistic"), horizons=("4h",)
    )
    evaluation = evaluate_crypto(
        config, prepare_crypto(config), start="2023-04-01", end="2023-05-01"
    )
    assert evaluation.horizons["4h"].period_net
    assert {model for model, _ in recorded} == {"momentum", "logistic"}  # flat never trades
    assert all(value != 0.0 for _, value in recorded)  # no idle period among the evidence
    # nor a trade outside the day's universe, which the backtest never makes (crypto audit)
    recorded.clear()
    narrow = config.model_copy(
        update={
            "universe": config.universe.model_copy(update={"min_median_quote_volume_usd": 1e15})
        }
    )
    prepared = prepare_crypto(narrow)
    assert not prepared.features["in_universe"].any()
    evaluate_crypto(narrow, prepared, start="2023-04-01", end="2023-05-01")
    assert recorded == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [foo]\n", "models: unknown models ['foo']"),  # a StopIteration traceback
        ("models: [consensus]\n", "consensus votes over the other models"),  # exit 0, empty
        # flat casts no vote: every job failed with "consensus needs at least one model"
        ("models: [flat, consensus]\n", "flat casts no vote"),
        ("costs: {fixed_spread: 0.5}\n", "costs.fixed_spread"),  # failed after the features
        ("job_time_limit_s: 0\n", "job_time_limit_s"),
    ],
)
def test_crypto_config_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crypto.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_crypto_config(path)


def test_the_job_time_limit_reaches_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A job that hung held a crypto run for good: there was no time limit to set."""
    from marketcast.orchestration import crypto

    seen: dict[str, Any] = {}
    monkeypatch.setattr(crypto, "run_jobs", lambda jobs, backend, **kwargs: seen.update(kwargs))
    crypto._on_backend([], CryptoRunConfig(job_time_limit_s=900))
    assert seen["time_limit_s"] == 900


def test_decision_lines_are_strict_json() -> None:
    """decisions_<h>.jsonl was written with NaN and Infinity tokens, which strict JSON lacks."""
    from marketcast.orchestration.crypto import json_lines

    def refuse(token: str) -> None:
        raise ValueError(token)

    text = json_lines([{"score": float("nan"), "weights": {"m": float("inf")}}, {"a": 1}])
    rows = [json.loads(line, parse_constant=refuse) for line in text.decode().splitlines()]
    assert rows == [{"score": None, "weights": {"m": None}}, {"a": 1}]


def test_a_model_named_twice_runs_once() -> None:
    assert CryptoRunConfig(models=("flat", "flat", "logistic")).models == ("flat", "logistic")


def test_pairs_without_candles_are_named() -> None:
    """One mistyped pair was dropped without a word; only unknown pairs said 'no candles'."""
    config = CryptoRunConfig(pairs=("BTCUSDT", "FOOUSDT"))
    with pytest.raises(ValueError, match=r"pairs \['FOOUSDT'\] have no candles in the bundle"):
        prepare_crypto(config)
    # from a run, the config's file and key (the fresh-user walkthrough: it named neither)
    with pytest.raises(ValueError, match=r"^c\.yaml, field 'pairs': \['FOOUSDT'\] have no"):
        prepare_crypto(config, config_path="c.yaml")


def test_training_groups_are_ranked_on_bars_before_the_walk_forward() -> None:
    """Groups were cut by median volume over every bar: a memecoin's rally after the test
    window moved it into the liquid group and changed the scores of the window itself."""
    from marketcast.orchestration.crypto import pair_groups

    hours = pd.date_range("2025-01-01", periods=40, freq="h", tz="UTC")
    start = hours[20]
    volume = {"AAA": 100.0, "BBB": 50.0, "CCC": 10.0}
    rows = [
        {
            "pair": pair,
            "open_time_utc": t,
            "quote_volume": v * (1e6 if pair == "CCC" and t >= start else 1),
        }
        for pair, v in volume.items()
        for t in hours
    ]
    rows += [
        {"pair": "DDD", "open_time_utc": t, "quote_volume": 1e9} for t in hours[25:]
    ]  # listed later
    prepared: Any = SimpleNamespace(data=SimpleNamespace(candles=pd.DataFrame(rows)))
    assert pair_groups(prepared, 2, before=start) == [
        ("g0", ["AAA", "BBB"]),
        ("g1", ["CCC", "DDD"]),
    ]
    # over every bar (the champion's export, fitted on everything) the rally counts
    assert pair_groups(prepared, 2) == [("g0", ["DDD", "CCC"]), ("g1", ["AAA", "BBB"])]
