"""Typed configs: YAML files load into frozen pydantic models, so a mistyped key is an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

FOOTBALL_MODELS = ("market", "elo", "dixon_coles", "lightgbm", "neural")
FOOTBALL_MARKETS = ("1x2", "ou25", "ah")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Frozen):
    """Where the matches come from: files or folders, or the bundled data when empty."""

    paths: tuple[str, ...] = ()
    leagues: tuple[str, ...] = ()


class WalkForwardConfig(_Frozen):
    """How the evaluation walks forward in time."""

    start: str | None = None
    end: str | None = None
    last_seasons: int = Field(2, ge=1, description="used when start is None: per league")
    step_days: int = Field(7, ge=1)
    retrain_every_steps: dict[str, int] = Field(
        default_factory=lambda: {
            "market": 1,
            "elo": 1,
            "dixon_coles": 1,
            "lightgbm": 4,
            "neural": 4,
        }
    )


class BacktestSettings(_Frozen):
    """Staking at pre-match odds."""

    staking: Literal["flat", "kelly", "fractional_kelly"] = "fractional_kelly"
    kelly_fraction: float = Field(0.25, gt=0, le=1)
    min_edge: float = Field(0.02, ge=0)
    max_stake_fraction: float = Field(0.05, gt=0, le=1)
    bookmaker: str = "best"
    n_bootstrap: int = Field(1000, ge=0)


class PromotionSettings(_Frozen):
    """When a challenger replaces the champion."""

    alpha: float = Field(0.05, gt=0, lt=1)
    min_matches: int = Field(200, ge=2)


class FootballRunConfig(_Frozen):
    """The whole football job: data, models, markets, walk-forward, backtest and promotion."""

    name: str = "football"
    seed: int = 20240817
    data: DataConfig = DataConfig()
    markets: tuple[Literal["1x2", "ou25", "ah"], ...] = FOOTBALL_MARKETS  # type: ignore[assignment]
    models: tuple[str, ...] = FOOTBALL_MODELS
    model_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    demargin_method: Literal["multiplicative", "additive", "power", "shin"] = "shin"
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    backtest: BacktestSettings = BacktestSettings()
    promotion: PromotionSettings = PromotionSettings()
    registry_root: str = "registry"
    runs_dir: str = "runs"


def load_config(path: str | Path | None) -> FootballRunConfig:
    """Load a YAML run config; ``None`` gives the defaults.

    Examples
    --------
    >>> load_config(None).walk_forward.step_days
    7
    """
    if path is None:
        return FootballRunConfig()
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a run config must be a YAML mapping, got {type(raw).__name__}")
    if raw.pop("vertical", "football") != "football":
        raise ValueError(f"{path}: not a football config (vertical is not football)")
    return FootballRunConfig.model_validate(raw)


CRYPTO_MODELS = ("flat", "momentum", "logistic", "lightgbm", "consensus")
CRYPTO_HORIZONS = ("1h", "4h", "1d")


class CryptoCosts(_Frozen):
    """Trading costs charged in every crypto backtest (see docs/crypto-backtest.md)."""

    maker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    taker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    use_taker: bool = True
    spread_method: Literal["abdi_ranaldo", "corwin_schultz", "fixed"] = "abdi_ranaldo"
    fixed_spread: float = Field(0.0005, ge=0)
    min_spread: float = Field(0.0001, ge=0, description="floor under the estimated spread")
    slippage_model: Literal["square_root", "linear", "none"] = "square_root"
    slippage_coef: float = Field(1.0, ge=0)
    notional_usd: float = Field(10_000.0, gt=0)
    funding: bool = True


class CryptoUniverseConfig(_Frozen):
    """Daily pair universe: liquidity and estimated-spread filters, no limit on the pair count."""

    lookback_days: int = Field(30, ge=1)
    min_median_quote_volume_usd: float = Field(1e6, ge=0)
    max_spread: float = Field(0.003, gt=0)
    min_history_days: int = Field(30, ge=0)


class CryptoWalkForward(_Frozen):
    """Purged walk-forward: refit every ``step_days`` on everything resolved before the step."""

    start: str | None = "2022-07-01"
    end: str | None = None
    step_days: int = Field(30, ge=1)
    max_train_days: int | None = Field(365, ge=30)
    latency_bars: int = Field(0, ge=0)


class CryptoRunConfig(_Frozen):
    """The crypto job: the 9 steps over pairs x horizons x models (docs/crypto-pipeline.md)."""

    name: str = "crypto"
    seed: int = 20240817
    data: DataConfig = DataConfig()
    pairs: tuple[str, ...] = ()
    horizons: tuple[Literal["1h", "4h", "1d"], ...] = CRYPTO_HORIZONS  # type: ignore[assignment]
    models: tuple[str, ...] = CRYPTO_MODELS
    model_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    group_size: int = Field(5, ge=1, description="pairs per pooled training group")
    per_regime: bool = True
    min_edge: float = Field(0.0, ge=0, description="edge after costs required to trade")
    walk_forward: CryptoWalkForward = CryptoWalkForward()
    universe: CryptoUniverseConfig = CryptoUniverseConfig()
    costs: CryptoCosts = CryptoCosts()
    promotion: PromotionSettings = PromotionSettings(alpha=0.05, min_matches=30)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    max_workers: int | None = Field(None, ge=1)
    retries: int = Field(1, ge=0)
    registry_root: str = "registry"
    runs_dir: str = "runs"


def load_crypto_config(path: str | Path | None) -> CryptoRunConfig:
    """Load a YAML crypto run config; ``None`` gives the defaults.

    Examples
    --------
    >>> load_crypto_config(None).horizons
    ('1h', '4h', '1d')
    """
    if path is None:
        return CryptoRunConfig()
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a run config must be a YAML mapping, got {type(raw).__name__}")
    if raw.pop("vertical", "crypto") != "crypto":
        raise ValueError(f"{path}: not a crypto config (vertical is not crypto)")
    return CryptoRunConfig.model_validate(raw)
