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
from tests.unit.test_registry import make_manifest


def _register_flat(registry: Registry) -> str:
    files = {"m.json": json.dumps({"name": "flat"}).encode()}
    manifest = make_manifest("flat", files, vertical="crypto", market="1d")
    version = registry.register("crypto", "1d", "flat", files, manifest)
    registry.set_champion("crypto", "1d", "flat", version, "no champion yet")
    return version


def test_a_champion_this_run_did_not_evaluate_stays_champion(tmp_path: Path) -> None:
    """A run of [momentum] alone replaced the registry's flat champion without any test, and
    printed "momentum stays champion: no challenger"."""
    registry = Registry(str(tmp_path / "registry"))
    version = _register_flat(registry)
    evaluation: Any = SimpleNamespace(
        horizons={"1d": SimpleNamespace(period_net={"momentum": np.array([-0.01, 0.02])})}
    )
    candles = pd.DataFrame({"open_time_utc": pd.to_datetime(["2023-01-01"], utc=True)})
    prepared: Any = SimpleNamespace(data=SimpleNamespace(candles=candles))
    config = CryptoRunConfig(models=("momentum",), registry_root=str(tmp_path / "registry"))
    champions, decisions, moves = _shadow_and_export(config, registry, prepared, evaluation, "run")
    assert moves == {}  # nothing to move: the champion stays
    assert champions == {"1d": "flat"}
    assert decisions["1d"]["promote"] is False
    assert f"flat {version} stays: this run did not evaluate it" in decisions["1d"]["reason"]
    record = registry.champion("crypto", "1d")
    assert record is not None
    assert (record.model_name, record.version) == ("flat", version)


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
    with pytest.raises(ValueError, match=r"registry_root .* cannot be created"):
        run_crypto(config)
    assert not (tmp_path / "runs").exists()


def test_a_first_champion_alone_is_not_called_a_survivor() -> None:
    champion, decision = shadow_test({"momentum": np.array([0.01])}, "flat", PromotionRule())
    assert champion == "momentum"
    assert decision["reason"] == "no champion yet, and no other model evaluated"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [foo]\n", "models: unknown models ['foo']"),  # a StopIteration traceback
        ("models: [consensus]\n", "consensus votes over the other models"),  # exit 0, empty
        ("costs: {fixed_spread: 0.5}\n", "costs.fixed_spread"),  # failed after the features
    ],
)
def test_crypto_config_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "crypto.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_crypto_config(path)


def test_a_model_named_twice_runs_once() -> None:
    assert CryptoRunConfig(models=("flat", "flat", "logistic")).models == ("flat", "logistic")


def test_pairs_without_candles_are_named() -> None:
    """One mistyped pair was dropped without a word; only unknown pairs said 'no candles'."""
    config = CryptoRunConfig(pairs=("BTCUSDT", "FOOUSDT"))
    with pytest.raises(ValueError, match=r"pairs \['FOOUSDT'\] have no candles in the bundle"):
        prepare_crypto(config)
