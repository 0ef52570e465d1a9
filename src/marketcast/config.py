"""Typed configs: YAML files load into frozen pydantic models, so a mistyped key is an error."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

FOOTBALL_MODELS = ("market", "elo", "dixon_coles", "lightgbm")
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
        default_factory=lambda: {"market": 1, "elo": 1, "dixon_coles": 1, "lightgbm": 4}
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
    min_matches: int = Field(200, ge=1)


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
    return FootballRunConfig.model_validate(raw)
