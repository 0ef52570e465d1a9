"""Typed configs: YAML files load into frozen pydantic models, so a mistyped key is an error."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

FOOTBALL_MODELS = ("market", "elo", "dixon_coles", "lightgbm", "neural")
FOOTBALL_MARKETS = ("1x2", "ou25", "ah")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: A run name becomes a folder name: letters, digits, ``_ . -``, at most 64, no ``..``.
_RUN_NAME = re.compile(r"(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # fullmatch: "$" lets "\n" in


def _run_name(value: str) -> str:
    if not _RUN_NAME.fullmatch(value):
        raise ValueError(
            "a run name becomes a folder name: use letters, digits, '_', '.', '-' "
            "(at most 64, starting with a letter or digit, no '..')"
        )
    return value


def _iso_date_text(value: Any) -> Any:
    """A YAML date (``start: 2021-08-01`` unquoted) as ISO text; text must be ISO 8601 itself."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date: write it as YYYY-MM-DD") from None
    return value


def _distinct_models(value: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    """Known model names, each once (a model named twice runs once)."""
    _known_keys(dict.fromkeys(value), known, "models")
    return tuple(dict.fromkeys(value))


def _known_keys(values: dict[str, Any], known: tuple[str, ...], what: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown models {unknown}; models are {', '.join(known)}")
    return values


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

    _dates = field_validator("start", "end", mode="before")(_iso_date_text)

    @field_validator("retrain_every_steps")
    @classmethod
    def _cadences(cls, value: dict[str, int]) -> dict[str, int]:
        bad = {name: steps for name, steps in value.items() if steps < 1}
        if bad:
            raise ValueError(f"refit cadences must be at least 1 step, got {bad}")
        return _known_keys(value, FOOTBALL_MODELS, "cadences")

    @model_validator(mode="after")
    def _end_needs_start(self) -> WalkForwardConfig:
        if self.end is not None and self.start is None:
            raise ValueError(
                "end without start: the window would be the last seasons, ignoring end; "
                "give start too"
            )
        return self


class BacktestSettings(_Frozen):
    """Staking at pre-match odds."""

    staking: Literal["flat", "kelly", "fractional_kelly"] = "fractional_kelly"
    kelly_fraction: float = Field(0.25, gt=0, le=1)
    min_edge: float = Field(0.02, ge=0)
    max_stake_fraction: float = Field(0.05, gt=0, le=1)
    bookmaker: str = "best"
    #: commission on net winnings charged on exchange prices (Betfair Exchange) when betting;
    #: the default is ``marketcast.types.EXCHANGE_COMMISSION`` (config may not import types)
    exchange_commission: float = Field(0.05, ge=0, lt=1)
    n_bootstrap: int = Field(1000, ge=0)


class PromotionSettings(_Frozen):
    """When a challenger replaces the champion."""

    alpha: float = Field(0.05, gt=0, lt=1)
    min_matches: int = Field(200, ge=2)


class FootballRunConfig(_Frozen):
    """The whole football job: data, models, markets, walk-forward, backtest and promotion."""

    name: str = "football"
    seed: int = Field(20240817, ge=0)
    data: DataConfig = DataConfig()
    markets: tuple[Literal["1x2", "ou25", "ah"], ...] = Field(
        FOOTBALL_MARKETS,  # type: ignore[arg-type]
        min_length=1,
    )
    models: tuple[str, ...] = Field(FOOTBALL_MODELS, min_length=1)
    model_params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    demargin_method: Literal["multiplicative", "additive", "power", "shin"] = "shin"
    walk_forward: WalkForwardConfig = WalkForwardConfig()
    backtest: BacktestSettings = BacktestSettings()
    promotion: PromotionSettings = PromotionSettings()
    registry_root: str = "registry"
    runs_dir: str = "runs"

    _name = field_validator("name")(_run_name)
    _models = field_validator("models")(lambda value: _distinct_models(value, FOOTBALL_MODELS))
    _params = field_validator("model_params")(
        lambda value: _known_keys(value, FOOTBALL_MODELS, "model_params")
    )


def load_config(path: str | Path | None) -> FootballRunConfig:
    """Load a YAML run config; ``None`` gives the defaults.

    Examples
    --------
    >>> load_config(None).walk_forward.step_days
    7
    """
    if path is None:
        return FootballRunConfig()
    return _validated(path, "football", FootballRunConfig)


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.safe_load`` that refuses a key given twice (it keeps the last one, silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<: *defaults": the keys after it override the merged ones, by design
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1 (PyYAML) reads a float only with a dot: `5e-2` and `1e3` were the strings '5e-2' and
# '1e3', which a model parameter then refused. Read them as floats, as YAML 1.2 does.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_Config = TypeVar("_Config", bound=BaseModel)


def _read_yaml(path: str | Path) -> dict[str, Any]:
    """A run config file's YAML mapping; every error names the file."""
    try:
        with Path(path).open(encoding="utf-8") as handle:
            raw = yaml.load(handle, Loader=_UniqueKeyLoader) or {}
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # an unquoted date or time that does not exist (2023-02-30)
        raise ValueError(f"{path}: not a valid date or time: {exc}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a run config must be a YAML mapping, got {type(raw).__name__}")
    return raw


def config_vertical(path: str | Path) -> str:
    """The vertical a run config is for: its ``vertical`` key, football when it has none.

    Read with the same checks as the configs themselves, so a broken file is named here too.
    """
    vertical = _read_yaml(path).get("vertical", "football")
    if vertical not in ("football", "crypto"):
        raise ValueError(f"{path}: vertical must be football or crypto, got {vertical!r}")
    return str(vertical)


def _validated(path: str | Path, vertical: str, model: type[_Config]) -> _Config:
    """Read, parse and validate a YAML config; every error names the file (and the key)."""
    raw = _read_yaml(path)
    if raw.pop("vertical", vertical) != vertical:
        raise ValueError(f"{path}: not a {vertical} config (vertical is not {vertical})")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{path}: {problems}") from None


CRYPTO_MODELS = ("flat", "momentum", "logistic", "lightgbm", "consensus")
CRYPTO_HORIZONS = ("1h", "4h", "1d")


class CryptoCosts(_Frozen):
    """Trading costs charged in every crypto backtest (see docs/crypto-backtest.md)."""

    maker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    taker_fee_rate: float = Field(0.001, ge=0, lt=0.05)
    use_taker: bool = True
    spread_method: Literal["abdi_ranaldo", "corwin_schultz", "fixed"] = "abdi_ranaldo"
    fixed_spread: float = Field(0.0005, ge=0, lt=0.5)
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

    _dates = field_validator("start", "end", mode="before")(_iso_date_text)


class CryptoRunConfig(_Frozen):
    """The crypto job: the 9 steps over pairs x horizons x models (docs/crypto-pipeline.md)."""

    name: str = "crypto"
    seed: int = Field(20240817, ge=0)
    data: DataConfig = DataConfig()
    pairs: tuple[str, ...] = ()
    horizons: tuple[Literal["1h", "4h", "1d"], ...] = Field(
        CRYPTO_HORIZONS,  # type: ignore[arg-type]
        min_length=1,
    )
    models: tuple[str, ...] = Field(CRYPTO_MODELS, min_length=1)
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

    _name = field_validator("name")(_run_name)
    _models = field_validator("models")(lambda value: _crypto_models(value))
    _params = field_validator("model_params")(
        lambda value: _known_keys(value, CRYPTO_MODELS, "model_params")
    )


def _crypto_models(value: tuple[str, ...]) -> tuple[str, ...]:
    models = _distinct_models(value, CRYPTO_MODELS)
    if models == ("consensus",):
        raise ValueError("consensus votes over the other models: name at least one of them")
    return models


def load_crypto_config(path: str | Path | None) -> CryptoRunConfig:
    """Load a YAML crypto run config; ``None`` gives the defaults.

    Examples
    --------
    >>> load_crypto_config(None).horizons
    ('1h', '4h', '1d')
    """
    if path is None:
        return CryptoRunConfig()
    return _validated(path, "crypto", CryptoRunConfig)
