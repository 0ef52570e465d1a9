"""Typed configs: YAML files load into frozen pydantic models, so a mistyped key is an error."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

FOOTBALL_MODELS = ("market", "elo", "dixon_coles", "lightgbm", "neural")
FOOTBALL_MARKETS = ("1x2", "ou25", "ah")


class _Frozen(BaseModel):
    """A config section: unknown keys refused, infinite and NaN numbers refused (``.inf`` was
    no stake cap's or edge's value anyone meant, and a manifest recorded it as ``null``), and a
    YAML yes/no never read as a number."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_yes_no_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        # YAML reads yes/no/on/off/true/false as booleans, which pydantic took as 1 and 0:
        # ``max_stake_fraction: yes`` was a 100% stake cap
        name = info.field_name
        if isinstance(value, bool) and name and _takes_number(cls.model_fields[name].annotation):
            raise ValueError(
                f"{value!r} is a yes/no (YAML reads yes, no, on, off, true, false as one), "
                "not a number: write the number"
            )
        return value


def _takes_number(annotation: Any) -> bool:
    """Whether a field's type is ``int`` or ``float`` (or either ``| None``)."""
    if annotation in (int, float):
        return True
    arguments = get_args(annotation)
    return type(None) in arguments and any(a in (int, float) for a in arguments)


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
    if isinstance(value, datetime) and value.tzinfo is None and value.time() == datetime.min.time():
        return value.date().isoformat()  # an unquoted "2021-08-01 00:00:00": the day, as text's
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date: write it as YYYY-MM-DD") from None
        if moment.tzinfo is None and moment.time() == datetime.min.time():
            # one day, one spelling (" 2021-08-01 ", "2021-08-01T00:00"): one config_sha256
            return moment.date().isoformat()
        return value.strip()
    return value


#: Largest run seed: numpy's legacy seeding and scikit-learn take seeds below ``2**32``, and
#: the neural model seeds torch with ``seed + n_fits_`` (torch takes up to ``2**64 - 1``). A
#: larger seed passed validation and ``--dry-run``, then stopped the walk-forward with
#: "Overflow when unpacking long long", naming no file or key.
MAX_SEED = 2**32 - 1


def _utc(text: str) -> datetime:
    """An ISO date or time as an aware UTC datetime; a naive one is read as UTC."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _end_after_start(end: str | None, info: ValidationInfo) -> str | None:
    """``end`` unless it is not after ``start`` (a window with no time in it). The run stopped
    after loading the data, with "--end ... must be after --start ...": options ``run`` does
    not have, naming neither the file nor the key."""
    start = info.data.get("start")
    if end is not None and isinstance(start, str) and _utc(end) <= _utc(start):
        raise ValueError(f"end {end} must be after start {start}")
    return end


def _distinct_models(value: tuple[str, ...], known: tuple[str, ...]) -> tuple[str, ...]:
    """Known model names, each once (a model named twice runs once)."""
    _known_keys(dict.fromkeys(value), known, "models")
    return _distinct(value)


def _known_keys(values: dict[str, Any], known: tuple[str, ...], what: str) -> dict[str, Any]:
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{what}: unknown models {unknown}; models are {', '.join(known)}")
    return values


def _model_params(values: dict[str, dict[str, Any]], known: tuple[str, ...]) -> dict[str, Any]:
    """Known models' parameters, none of them infinite or NaN (a manifest recorded ``.inf`` as
    ``null``, which no run could be rebuilt from), and a model given none left out (``elo: {}``
    hashed apart from no entry)."""
    _known_keys(values, known, "model_params")
    for model, params in values.items():
        for key, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(
                    f"model_params.{model}.{key}: {value} is not a finite number (for no decay "
                    "or no limit, give a large finite one)"
                )
    return {model: params for model, params in values.items() if params}


def _distinct(value: tuple[str, ...]) -> tuple[str, ...]:
    """Each item once, in first-given order: ``[1x2, 1x2]`` is ``[1x2]`` (and hashes as it)."""
    return tuple(dict.fromkeys(value))


def _a_place(value: Any) -> Any:
    """A folder or URL results go to: blank text was the current folder, where a run wrote
    ``football/``, ``_runs/``, ``_reports/`` and its run folder among the user's files."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("must name a folder or URL, not be empty (use '.' for this folder)")
    return value


def _home(value: str) -> str:
    """A local path with a leading ``~`` (``~user``) expanded to the home folder, as fsspec
    expands one in ``registry_root``: ``runs_dir: ~/runs`` made a folder named ``~`` in the
    working directory while ``registry_root: ~/reg`` opened the home folder's.

    Examples
    --------
    >>> _home("~/runs") == str(Path.home() / "runs"), _home("runs/~x"), _home("s3://b/~x")
    (True, 'runs/~x', 's3://b/~x')
    """
    return os.path.expanduser(value) if value.startswith("~") else value


class DataConfig(_Frozen):
    """Where the matches come from: files or folders, or the bundled data when empty."""

    paths: tuple[str, ...] = ()
    leagues: tuple[str, ...] = ()

    _paths = field_validator("paths")(lambda value: tuple(_home(path) for path in value))
    _leagues = field_validator("leagues")(_distinct)


#: Walk-forward steps between refits, per football model.
REFIT_EVERY_STEPS = {"market": 1, "elo": 1, "dixon_coles": 1, "lightgbm": 4, "neural": 4}


class WalkForwardConfig(_Frozen):
    """How the evaluation walks forward in time."""

    start: str | None = None
    end: str | None = None
    last_seasons: int = Field(2, ge=1, description="used when start is None: per league")
    step_days: int = Field(7, ge=1)
    #: a model the config's mapping leaves out keeps its default (`REFIT_EVERY_STEPS`)
    retrain_every_steps: dict[str, int] = Field(default_factory=lambda: dict(REFIT_EVERY_STEPS))

    _dates = field_validator("start", "end", mode="before")(_iso_date_text)
    _window = field_validator("end")(_end_after_start)

    @field_validator("retrain_every_steps", mode="before")
    @classmethod
    def _over_defaults(cls, value: Any) -> Any:
        # ``{elo: 2}`` set every other model's cadence to 1 (lightgbm and neural refit weekly)
        if not isinstance(value, Mapping):
            return value
        if said := {name: steps for name, steps in value.items() if isinstance(steps, bool)}:
            raise ValueError(
                f"{next(iter(said.values()))!r} is a yes/no (YAML reads yes, no, on, off, true, "
                f"false as one), not a number of steps: {said}"
            )
        return {**REFIT_EVERY_STEPS, **value}

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

    @field_validator("bookmaker")
    @classmethod
    def _bookmaker_offers_prices(cls, value: str) -> str:
        return check_bet_bookmaker(value)


def check_bet_bookmaker(name: str) -> str:
    """``name``, unless it is the market average (``avg``): the mean of the bookmakers' prices,
    which no bookmaker offers, so no bet can be placed at it (a ``ValueError`` says so). The
    run's config and `evaluation.football.evaluate_predictions` both check it here.

    ``"avg"`` is ``marketcast.types.AVERAGE_BOOKMAKER`` (config may not import types; a test
    holds the two together).
    """
    if name.strip().lower() == "avg":
        raise ValueError(
            f"bookmaker {name!r} is the market average of the bookmakers' prices, which "
            "no bookmaker offers, so no bet can be placed at it; use 'best' (the best "
            "price across bookmakers) or a named bookmaker such as 'pinnacle' or 'b365'"
        )
    return name


class PromotionSettings(_Frozen):
    """When a challenger replaces the champion (`marketcast.promotion.PromotionRule`'s fields).

    ``test``: ``t``, the paired t-test, whose ``alpha`` holds per run; ``sequential``, the
    always-valid test whose ``alpha`` holds over every run on growing evidence (docs/registry.md),
    tightest near ``planned_matches`` paired matches (periods for crypto).
    """

    alpha: float = Field(0.05, gt=0, lt=1)
    min_matches: int = Field(200, ge=2)
    test: Literal["t", "sequential"] = "t"
    planned_matches: int = Field(2000, ge=2)


class FootballRunConfig(_Frozen):
    """The whole football job: data, models, markets, walk-forward, backtest and promotion."""

    name: str = "football"
    seed: int = Field(20240817, ge=0, le=MAX_SEED)
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
    #: registries (folders or fsspec URLs) each champion, its run's versions, decision and
    #: report are copied to after the run moves the pointers (docs/registry.md, "Publish")
    publish: tuple[str, ...] = ()

    _name = field_validator("name")(_run_name)
    _outputs = field_validator("registry_root", "runs_dir", mode="before")(_a_place)
    _runs_dir = field_validator("runs_dir")(_home)
    _models = field_validator("models")(lambda value: _distinct_models(value, FOOTBALL_MODELS))
    _markets = field_validator("markets")(_distinct)
    _params = field_validator("model_params")(lambda value: _model_params(value, FOOTBALL_MODELS))


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
            try:
                hash(key)
            except TypeError:  # ``{[a, b]: 1}``: a raw TypeError before
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"a key must be text or a number, not a {type(key).__name__}",
                    key_node.start_mark,
                ) from None
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
    except OSError as exc:  # was "[Errno 2] No such file or directory: 'x.yaml'"
        raise ValueError(f"--config {path}: cannot read it ({exc.strerror or exc})") from None
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
    named = "vertical" in raw
    if raw.pop("vertical", vertical) != vertical:
        raise ValueError(f"{path}: not a {vertical} config (vertical is not {vertical})")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        if not named and vertical == "crypto" and _is_valid(FootballRunConfig, raw):
            # a football config has no vertical key: eight "extra inputs" errors said less
            raise ValueError(
                f"{path}: not a crypto config (it has no 'vertical: crypto' and reads as a "
                "football config)"
            ) from None
        raise ValueError(f"{path}, {_problems(model, exc)}") from None


def _problems(model: type[BaseModel], exc: ValidationError) -> str:
    """A config's validation errors as ``field 'a.b': message`` joined by ``; ``: pydantic's
    "Value error, " left out, an unknown key with the nearest known one, and an error of a list
    or mapping dropped when one of its items has its own (``horizons: [2h]`` also said the list
    held no item).

    Examples
    --------
    >>> try:
    ...     FootballRunConfig.model_validate({"modles": ["elo"], "seed": -1})
    ... except ValidationError as exc:
    ...     for problem in _problems(FootballRunConfig, exc).split("; "):
    ...         print(problem)
    field 'seed': Input should be greater than or equal to 0
    field 'modles': unknown key (did you mean 'models'?)
    """
    errors = exc.errors()
    locs = [tuple(str(part) for part in e["loc"]) for e in errors]
    out = []
    for error, loc in zip(errors, locs, strict=True):
        if any(len(other) > len(loc) and other[: len(loc)] == loc for other in locs):
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            near = difflib.get_close_matches(loc[-1], _keys_at(model, loc[:-1]), n=1)
            message = "unknown key" + (f" (did you mean {near[0]!r}?)" if near else "")
        out.append(f"field {'.'.join(loc) or 'config'!r}: {message}")
    return "; ".join(out)


def _keys_at(model: type[BaseModel], loc: tuple[str, ...]) -> list[str]:
    """The keys the config section at ``loc`` takes ([] where it is no section of fields).

    A mapping or list of sections (``pair_renames: {OLD: {to: ...}}``) passes its key or index
    by; an optional section is the section.
    """
    current: Any = model
    container = False
    for part in loc:
        if container:  # the key of a mapping, the index of a list: the value is the section
            container = False
            continue
        section = _section_of(current)
        field = section.model_fields.get(part) if section is not None else None
        if field is None:
            return []
        current = field.annotation
        container = get_origin(current) in (dict, list, tuple, Mapping)
    section = _section_of(current)
    return list(section.model_fields) if section is not None else []


def _section_of(annotation: Any) -> type[BaseModel] | None:
    """The model a field's type holds: itself, or inside ``X | None``, ``dict[str, X]``,
    ``tuple[X, ...]`` (the first found)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _section_of(argument)
        if found is not None:
            return found
    return None


def _is_valid(model: type[BaseModel], raw: dict[str, Any]) -> bool:
    try:
        model.model_validate(raw)
    except ValidationError:
        return False
    return True


CRYPTO_MODELS = ("flat", "momentum", "logistic", "lightgbm", "consensus")
CRYPTO_HORIZONS = ("1h", "4h", "1d")

#: Quote assets a pair symbol ends in (longest first): a pair is a base asset, then one of these.
#: The crypto loaders also find the pair in a file name by them.
QUOTE_ASSETS: tuple[str, ...] = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "TRY", "BTC", "ETH", "BNB", "DAI",
)  # fmt: skip
_SYMBOL_SPLIT = re.compile(r"[/\-_ ]")
_SYMBOL_CHARS = re.compile(r"[A-Z0-9]+")


def normalise_pair(symbol: str) -> str:
    """``"BTC/USDT"``, ``"btc-usdt"``, ``"BTC/USDT:USDT"`` -> ``"BTCUSDT"``.

    Examples
    --------
    >>> normalise_pair("BTC/USDT:USDT")
    'BTCUSDT'
    """
    return _SYMBOL_SPLIT.sub("", symbol.split(":", 1)[0].strip()).upper()


def quote_asset(pair: str) -> str | None:
    """The quote asset (`QUOTE_ASSETS`) a normalised pair symbol ends in after a base asset.

    Examples
    --------
    >>> quote_asset("POLUSDT"), quote_asset("ETHBTC"), quote_asset("USDT"), quote_asset("POL")
    ('USDT', 'BTC', None, None)
    """
    if not _SYMBOL_CHARS.fullmatch(pair):
        return None
    return next((q for q in QUOTE_ASSETS if pair.endswith(q) and len(pair) > len(q)), None)


class PairRename(_Frozen):
    """Where a renamed pair's history continues: the new pair, and the units of the swap."""

    to: str
    #: new tokens one old token became: 1 for MATIC -> POL, 1000 for a 1:1000 redenomination
    new_per_old: float = Field(1.0, gt=0, allow_inf_nan=False)


def check_pair_renames(renames: Mapping[str, str | PairRename]) -> dict[str, PairRename]:
    """Check renamed pairs (old pair -> new pair) and spell every symbol as the loaders do.

    Both names must be pair symbols (any spelling `normalise_pair` reads) with the same quote
    asset. A pair is renamed at most once and to a name that is not renamed itself (no chains,
    no cycles: rename every old pair straight to its current name), and two old pairs do not
    become the same new one.

    Parameters
    ----------
    renames
        Old pair -> new pair, or -> `PairRename` (with ``new_per_old``).

    Returns
    -------
    dict
        Normalised old pair -> `PairRename` with the normalised new pair.

    Raises
    ------
    ValueError
        Naming ``pair_renames`` and the entry.

    Examples
    --------
    >>> check_pair_renames({"MATIC/USDT": "polusdt"})
    {'MATICUSDT': PairRename(to='POLUSDT', new_per_old=1.0)}
    >>> check_pair_renames({"MATICUSDT": "POLUSDT", "POLUSDT": "MATICUSDT"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: pair_renames.POLUSDT: POLUSDT is the new name of MATICUSDT ... (a chain ...
    """
    out: dict[str, PairRename] = {}
    for old_text, target in renames.items():
        rename = target if isinstance(target, PairRename) else PairRename(to=target)
        old, new = normalise_pair(str(old_text)), normalise_pair(rename.to)
        where = f"pair_renames.{old_text}"
        for symbol, text in ((old, old_text), (new, rename.to)):
            if quote_asset(symbol) is None:
                raise ValueError(
                    f"{where}: {text!r} is not a pair symbol: a base asset, then a quote asset "
                    f"({', '.join(QUOTE_ASSETS)}), e.g. MATICUSDT"
                )
        if old == new:
            raise ValueError(f"{where}: renames {old} to itself")
        if quote_asset(old) != quote_asset(new):
            raise ValueError(
                f"{where}: {old} -> {new} changes the quote asset ({quote_asset(old)} to "
                f"{quote_asset(new)}): that is another market, not a rename"
            )
        if old in out:
            raise ValueError(f"{where}: {old} is renamed twice")
        out[old] = rename.model_copy(update={"to": new})
    for new, count in Counter(rename.to for rename in out.values()).items():
        if count > 1:
            olds = sorted(old for old, rename in out.items() if rename.to == new)
            raise ValueError(
                f"pair_renames: {' and '.join(olds)} become {new}: one old pair per new pair"
            )
    for old, rename in out.items():
        if rename.to in out:
            raise ValueError(
                f"pair_renames.{rename.to}: {rename.to} is the new name of {old} and is renamed "
                "again (a chain or a cycle): rename every old pair straight to its current name"
            )
    return out


def pair_rename_targets(value: Any) -> Any:
    """``{MATICUSDT: POLUSDT}`` is short for ``{MATICUSDT: {to: POLUSDT}}``."""
    if isinstance(value, Mapping):
        return {old: {"to": new} if isinstance(new, str) else new for old, new in value.items()}
    return value


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
    #: yearly interest on a short that pays no funding (spot: borrowed on margin)
    short_borrow_rate: float = Field(0.10, ge=0, lt=5)


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
    _window = field_validator("end")(_end_after_start)


#: Crypto's promotion defaults: a period is a day of a pair's returns, fewer than a league's
#: matches (docs/registry.md).
CRYPTO_PROMOTION: dict[str, Any] = {"alpha": 0.05, "min_matches": 30, "planned_matches": 500}


class CryptoRunConfig(_Frozen):
    """The crypto job: the 9 steps over pairs x horizons x models (docs/crypto-pipeline.md)."""

    name: str = "crypto"
    seed: int = Field(20240817, ge=0, le=MAX_SEED)
    data: DataConfig = DataConfig()
    #: old pair -> new pair (or ``{to: <pair>, new_per_old: <ratio>}``): the old pair's bars
    #: continue the new pair's series (docs/crypto-data.md, "Renamed pairs")
    pair_renames: dict[str, PairRename] = Field(default_factory=dict)
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
    #: keys a config's ``promotion`` leaves out keep these (`CRYPTO_PROMOTION`)
    promotion: PromotionSettings = PromotionSettings(**CRYPTO_PROMOTION)
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    max_workers: int | None = Field(None, ge=1)
    retries: int = Field(1, ge=0)
    #: longest a job's attempt may run before it is stopped and fails (None: no limit)
    job_time_limit_s: float | None = Field(None, gt=0)
    registry_root: str = "registry"
    runs_dir: str = "runs"
    #: registries (folders or fsspec URLs) each champion, its run's versions, decision and
    #: report are copied to after the run moves the pointers (docs/registry.md, "Publish")
    publish: tuple[str, ...] = ()

    _name = field_validator("name")(_run_name)
    _outputs = field_validator("registry_root", "runs_dir", mode="before")(_a_place)
    _runs_dir = field_validator("runs_dir")(_home)
    _models = field_validator("models")(lambda value: _crypto_models(value))
    _horizons = field_validator("horizons")(_distinct)
    _params = field_validator("model_params")(lambda value: _model_params(value, CRYPTO_MODELS))

    @field_validator("promotion", mode="before")
    @classmethod
    def _over_crypto_defaults(cls, value: Any) -> Any:
        # ``promotion: {test: sequential}`` took football's 200 and 2000 for the rest
        return {**CRYPTO_PROMOTION, **value} if isinstance(value, Mapping) else value

    _renames_short = field_validator("pair_renames", mode="before")(pair_rename_targets)
    _renames = field_validator("pair_renames")(check_pair_renames)

    @field_validator("pairs")
    @classmethod
    def _pairs_by_new_names(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        renames: dict[str, PairRename] = info.data.get("pair_renames", {})
        value = _distinct(tuple(normalise_pair(p) for p in value))  # one spelling, one hash
        renamed = sorted(set(value) & set(renames))
        if renamed:  # the old name has no candles of its own: its bars are the new pair's
            new = ", ".join(renames[old].to for old in renamed)
            raise ValueError(
                f"pairs: {', '.join(renamed)} renamed by pair_renames: list the new name ({new})"
            )
        return value

    @model_serializer(mode="wrap")
    def _without_empty_renames(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        if not self.pair_renames:  # a run without renames dumps (and hashes) as before the key
            dumped.pop("pair_renames", None)
        return dumped


def _crypto_models(value: tuple[str, ...]) -> tuple[str, ...]:
    models = _distinct_models(value, CRYPTO_MODELS)
    # flat holds no view, so it casts no vote: [flat, consensus] failed in every job
    if "consensus" in models and not set(models) - {"consensus", "flat"}:
        raise ValueError(
            "consensus votes over the other models, and flat casts no vote: name at least one "
            "of momentum, logistic, lightgbm beside it"
        )
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
