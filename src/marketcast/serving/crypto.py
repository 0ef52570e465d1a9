"""Crypto signals: the registry's champions over a live candle store, swapped atomically."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import math
import os
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import InitErrorDetails

from marketcast.config import (
    CryptoCosts,
    CryptoUniverseConfig,
    PairRename,
    check_pair_renames,
    normalise_pair,
    pair_rename_targets,
)
from marketcast.costs import CostModel, carry_forward, round_trip_cost_rate, short_borrow_over
from marketcast.data.candles import (
    CANDLE_COLUMNS,
    FUNDING_COLUMNS,
    HOUR_NS,
    MAX_REPAIR_BARS,
    CandleReport,
    SpikeRule,
    check_bars,
    drop_spikes,
    drop_zero_volume_bars,
    normalise_candles,
    repair_gaps,
    spike_scale,
)
from marketcast.data.validation import DataError, IntegrityReport
from marketcast.datasets.crypto import CandleData, load_candles
from marketcast.ensemble.consensus import consensus
from marketcast.ensemble.regime import RegimeRules, classify_regimes
from marketcast.features.crypto import FUNDING_MAX_AGE, build_crypto_features, charged_spread
from marketcast.features.spread import SpreadMethod
from marketcast.features.universe import build_universe, universe_spread_method
from marketcast.labels.crypto import HORIZON_BARS
from marketcast.models.crypto import load_crypto_champion
from marketcast.registry import Registry
from marketcast.serving.crypto_schemas import (
    CandleIn,
    CryptoDoNotTradeRow,
    CryptoRankingRow,
    CryptoSignal,
    FundingIn,
)
from marketcast.serving.schemas import ModelRef, by_edge
from marketcast.serving.settings import SettingsEnvError
from marketcast.serving.watch import (
    Fingerprint,
    champion_fingerprint,
    follow_champions,
    mark_failed,
)

log = logging.getLogger(__name__)

VERTICAL = "crypto"
HORIZONS: tuple[str, ...] = tuple(HORIZON_BARS)
ENV_PREFIX = "MARKETCAST_CRYPTO_"
_HOUR = pd.Timedelta(hours=1)
_Section = TypeVar("_Section", bound=BaseModel)
_Record = TypeVar("_Record", CandleIn, FundingIn)
_Times = TypeVar("_Times", pd.Timestamp, pd.Series)
# E|X| = sqrt(2 / pi) * sigma for a normal X: the fallback mean |forward return| of old exports.
_MEAN_ABS_NORMAL = math.sqrt(2.0 / math.pi)
# Universe reason -> the check of the shared do-not-trade schema.
_UNIVERSE_CHECK: dict[str, Literal["liquidity", "cost", "staleness"]] = {
    "short_history": "liquidity",
    "stale": "staleness",
    "low_liquidity": "liquidity",
    "wide_spread": "cost",
}


#: How far ahead of the server's clock a feed's may run: a bar is accepted once the server's
#: clock is within this of the bar's close.
CLOCK_SKEW = pd.Timedelta(seconds=60)
#: How far a journal record's bar may run ahead of a replaying worker's clock: another worker's
#: clock accepted it, and a worker whose clock is behind must not refuse what others serve.
REPLAY_CLOCK_SKEW = pd.Timedelta(hours=1)

#: The loader's bad-print rule (``data.candles.drop_spikes`` at its default thresholds, as
#: ``datasets.crypto.load_candles`` runs it at start-up), applied to pushed bars too.
SPIKE_RULE = SpikeRule()
#: A pushed quote volume is the sum of price x quantity over the hour's trades, so it lies in
#: ``[low x volume, high x volume]``; a sanity bound allows this factor either way (a feed that
#: prices its volume elsewhere, rounds it), while a unit error or a corrupt value is off by
#: orders of magnitude.
QUOTE_VOLUME_FACTOR = 2.0
#: A pushed bar's high may lie at most this factor above its open and close, and its low this
#: factor below them (``wick_outlier``): in the bundled history (20 pairs, 2021-2023) no wick
#: went past 1.73x, while a high of 1000 x the close saturated P(up) and topped the rankings.
WICK_FACTOR = 10.0
#: A pushed bar's quote volume may be at most this factor above the median of the pair's stored
#: quote volumes over the last `VOLUME_HISTORY_BARS` bars (``volume_outlier``; judged from 24
#: bars with volume on). Quote volume, not base volume: a coin whose price collapses trades far
#: more tokens an hour, not far more dollars. In the bundled history no hour went past 497x its
#: trailing 720-bar median, while a volume of 1e300 (with a quote volume to match) made its pair
#: the top-ranked short.
VOLUME_FACTOR = 2_000.0
VOLUME_HISTORY_BARS = 720
#: Bars the features need to equal the offline pipeline's to 1e-9: the EMA features (span 168)
#: weigh the start of the window by ``(1 - 2/169)^n``, and the regimes read 720 bars.
FEATURE_HISTORY_BARS = 2_500


class UnknownNameError(LookupError):
    """An unknown pair or horizon (answered as 422 naming it)."""

    def __init__(self, kind: str, name: str, known: Sequence[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = list(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")


class JournalWriteError(RuntimeError):
    """A push could not be journaled (a full disk): nothing of it was kept, and a retry of it
    is taken (answered 503 with ``Retry-After``)."""


class CandleRejectedError(ValueError):
    """A pushed bar breaks a candle rule; names its position in the push and the field."""

    def __init__(
        self, row: int, field: str, kind: str, reason: str, value: str | None = None
    ) -> None:
        self.row = row
        self.field = field
        self.kind = kind  # a code: non_positive_price, duplicate_bar, unknown_pair ...
        self.reason = reason
        self.value = value
        super().__init__(f"bar {row}, field {field!r}: {reason}")


class CryptoSettings(BaseModel):
    """Where the candle store starts and how signals are judged (``MARKETCAST_CRYPTO_*``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    candle_paths: tuple[str, ...] = Field(
        default=(), description="candle files or folders at start-up; empty: the bundled set"
    )
    pairs: tuple[str, ...] = Field(default=(), description="pairs to serve; empty: all")
    pair_renames: dict[str, PairRename] = Field(
        default_factory=dict,
        description="old pair -> new pair: the old pair's bars continue the new pair's series "
        "(docs/crypto-data.md, 'Renamed pairs'); the same as a run's pair_renames",
    )
    window_bars: int = Field(
        default=24 * 180,
        ge=200,
        description="trailing hours kept per pair: EMAs (span 168) need ~2,500 h to forget "
        "their start to 1e-9, regimes 720 h, the universe 60 days",
    )
    stale_after_hours: float = Field(
        default=3.0, gt=0, description="a pair is stale when its latest bar closed longer ago"
    )
    journal_path: str | None = Field(
        default=None,
        description="append-only file of accepted bars (JSON lines): every worker replays it at "
        "start and follows it, so a push to one worker reaches all; empty: this process only",
    )
    journal_max_bytes: int = Field(
        default=64 * 2**20,
        ge=1,
        description="past this size the worker that appends rewrites the journal with only the "
        "bars inside the trailing window (what a worker starting then would keep); the next "
        "rewrite waits until it is also twice the rewritten size",
    )

    _renames_short = field_validator("pair_renames", mode="before")(pair_rename_targets)
    _renames = field_validator("pair_renames")(check_pair_renames)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CryptoSettings:
        """Read ``MARKETCAST_CRYPTO_CANDLES`` (paths, ``os.pathsep``-separated), ``_PAIRS``
        (comma-separated), ``_PAIR_RENAMES`` (``OLD=NEW`` or ``OLD=NEW*RATIO``,
        comma-separated, e.g. ``MATICUSDT=POLUSDT``), ``_WINDOW_BARS``, ``_STALE_AFTER_HOURS``,
        ``_JOURNAL`` and ``_JOURNAL_MAX_BYTES``.

        Raises
        ------
        SettingsEnvError
            As the server's own settings raise it: one line naming each bad variable, the text
            it held and what is wanted.

        Examples
        --------
        >>> CryptoSettings.from_env({"MARKETCAST_CRYPTO_PAIRS": "BTCUSDT,ETHUSDT"}).pairs
        ('BTCUSDT', 'ETHUSDT')
        >>> CryptoSettings.from_env({"MARKETCAST_CRYPTO_JOURNAL": "/srv/feed.jsonl"}).journal_path
        '/srv/feed.jsonl'
        >>> env = {"MARKETCAST_CRYPTO_PAIR_RENAMES": "matic/usdt=POLUSDT"}
        >>> CryptoSettings.from_env(env).pair_renames
        {'MATICUSDT': PairRename(to='POLUSDT', new_per_old=1.0)}
        >>> CryptoSettings.from_env({"MARKETCAST_CRYPTO_WINDOW_BARS": "abc"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        marketcast.serving.settings.SettingsEnvError: MARKETCAST_CRYPTO_WINDOW_BARS='abc': must ...
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        if env.get(ENV_PREFIX + "CANDLES", "").strip():
            values["candle_paths"] = tuple(
                p.strip() for p in env[ENV_PREFIX + "CANDLES"].split(os.pathsep) if p.strip()
            )
        if env.get(ENV_PREFIX + "PAIRS", "").strip():
            values["pairs"] = tuple(
                p.strip().upper() for p in env[ENV_PREFIX + "PAIRS"].split(",") if p.strip()
            )
        for name, variable in _SCALAR_ENV_VARIABLES.items():
            raw = env.get(ENV_PREFIX + variable, "").strip()
            if raw:
                values[name] = raw
        renames = env.get(ENV_PREFIX + "PAIR_RENAMES", "").strip()
        errors: list[ValidationError] = []
        if renames:
            try:
                values["pair_renames"] = _env_renames(renames)
            except ValidationError as error:  # the others are still checked, and all named
                errors.append(error)
        try:
            settings = cls.model_validate(values)
        except ValidationError as error:
            errors.append(error)
        if errors:  # the variables' names and text, not the fields'
            raise SettingsEnvError.from_error(
                errors,
                frozenset(),  # no secret among them
                variables={name: ENV_PREFIX + v for name, v in ENV_VARIABLES.items()},
                texts={"pair_renames": renames},  # not the mapping parsed from it
                field_order=list(cls.model_fields),
            ) from None
        return settings


#: Settings field -> the ``MARKETCAST_CRYPTO_*`` variable that sets it, for the fields read
#: as the variable's text (the lists and the renames are parsed first).
_SCALAR_ENV_VARIABLES = {
    "window_bars": "WINDOW_BARS",
    "stale_after_hours": "STALE_AFTER_HOURS",
    "journal_path": "JOURNAL",
    "journal_max_bytes": "JOURNAL_MAX_BYTES",
}
#: `CryptoSettings` field -> its variable after `ENV_PREFIX`.
ENV_VARIABLES = {
    "candle_paths": "CANDLES",
    "pairs": "PAIRS",
    "pair_renames": "PAIR_RENAMES",
    **_SCALAR_ENV_VARIABLES,
}


def _env_renames(text: str) -> dict[str, dict[str, str]]:
    """``"MATICUSDT=POLUSDT,BTTUSDT=BTTCUSDT*1000"`` -> the settings' ``pair_renames``.

    Text that is not a list of renames raises a ``ValidationError`` of ``pair_renames``, as the
    settings' own checks of the renames do.
    """
    out: dict[str, dict[str, str]] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        old, sep, target = item.partition("=")
        if not sep or not old.strip() or not target.strip():
            raise _renames_error(
                text, f"{item!r} is not OLD=NEW (or OLD=NEW*RATIO), e.g. MATICUSDT=POLUSDT"
            )
        new, star, ratio = target.partition("*")
        if normalise_pair(old) in {normalise_pair(seen) for seen in out}:
            raise _renames_error(text, f"{old.strip()} is renamed twice")
        out[old.strip()] = {"to": new.strip(), **({"new_per_old": ratio.strip()} if star else {})}
    return out


def _renames_error(text: str, reason: str) -> ValidationError:
    line = InitErrorDetails(
        type="value_error", loc=("pair_renames",), input=text, ctx={"error": ValueError(reason)}
    )
    return ValidationError.from_exception_data(CryptoSettings.__name__, [line])


@dataclass(frozen=True)
class CandleStore:
    """The trailing window of hourly candles of every served pair (never mutated)."""

    candles: pd.DataFrame  # CANDLE_COLUMNS, sorted by (pair, open_time_utc), RangeIndex
    funding: pd.DataFrame | None

    @functools.cached_property
    def content_sha256(self) -> str:
        """A hash of every stored bar and funding event: equal on two workers holding the same
        data, however their pushes and journal replays were batched (2 ms for 40,000 bars)."""
        digest = hashlib.sha256()
        for frame in (self.candles, self.funding):
            if frame is not None:
                digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
            digest.update(b"|")
        return digest.hexdigest()

    @functools.cached_property
    def pairs(self) -> tuple[str, ...]:
        return tuple(sorted(self.candles["pair"].unique()))

    @functools.cached_property
    def latest_open(self) -> pd.Timestamp:
        return pd.Timestamp(self.candles["open_time_utc"].max())

    def last_open_by_pair(self) -> dict[str, pd.Timestamp]:
        last = self.candles.groupby("pair", sort=True)["open_time_utc"].max()
        return {str(p): pd.Timestamp(t) for p, t in last.items()}

    def last_funding_by_pair(self) -> dict[str, pd.Timestamp]:
        """The latest stored funding time of each pair that has one."""
        if self.funding is None or self.funding.empty:
            return {}
        last = self.funding.groupby("pair", sort=True)["funding_time_utc"].max()
        return {str(p): pd.Timestamp(t) for p, t in last.items()}


@dataclass(frozen=True)
class LoadedCryptoChampion:
    """One horizon's champion, rebuilt from its registry version."""

    horizon: str
    name: str
    version: str
    spec: dict[str, Any]
    models: dict[str, dict[str, Any]]  # group -> member -> fitted model
    scores: dict[str, float]
    #: group -> member -> regime -> its own fitted model (``per_regime``; the pooled model
    #: answers in the other regimes)
    regime_models: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def group_of(self) -> dict[str, str]:
        return {pair: group for group, pairs in self.spec["groups"].items() for pair in pairs}

    @property
    def costs(self) -> CryptoCosts:
        # spec version 1 (before serving) recorded no costs: the pipeline's defaults then
        return _spec_section(self.spec, "costs", CryptoCosts)

    @property
    def cost_model(self) -> CostModel:
        """The costs as the cost functions take them (``min_spread`` is passed on its own)."""
        return CostModel(**self.costs.model_dump(exclude={"min_spread"}))

    @property
    def universe(self) -> CryptoUniverseConfig:
        return _spec_section(self.spec, "universe", CryptoUniverseConfig)

    @property
    def dead_zone(self) -> float:
        default = 2.0 * self.costs.taker_fee_rate  # labels.crypto.dead_zone_for
        return float(self.spec.get("dead_zone", default))

    @property
    def min_edge(self) -> float:
        return float(self.spec.get("min_edge", 0.0))


@dataclass(frozen=True)
class CryptoSnapshot:
    """Everything one request reads: champions and candles, replaced whole on reload or push."""

    snapshot_id: str
    champions: dict[str, LoadedCryptoChampion]
    store: CandleStore
    loaded_utc: str


@dataclass(frozen=True)
class CandlePush:
    """What a candle push changed: the new snapshot and the loader's repairs of its bars."""

    snapshot: CryptoSnapshot
    #: bars without volume, left out (an hour without trades, filled when the next bar comes)
    zero_volume: int
    #: missing hours before a pushed bar, filled with the previous close (``repaired=True``)
    gap_bars_filled: int
    #: missing hours before a pushed bar left open: runs longer than `MAX_REPAIR_BARS`
    gap_bars_left: int


@dataclass(frozen=True)
class _PairState:
    """What the universe and the clock-free checks say about a pair at its latest bar."""

    bar_open: pd.Timestamp
    universe_reason: str  # "ok" or a universe reason
    universe_detail: str


@dataclass(frozen=True)
class SignalTable:
    """Signals of one snapshot before the clock is applied (staleness is judged per request).

    ``pairs``: each pair's latest bar and the universe of the first champion (the default
    universe without one); ``universe_by_horizon``: each champion's own universe decision per
    pair, by its export's filters and spread estimator, which its signals follow.
    """

    signals: dict[tuple[str, str], CryptoSignal]
    pairs: dict[str, _PairState]
    capacity_usd: dict[tuple[str, str], float | None]
    universe_by_horizon: dict[str, dict[str, _PairState]] = field(default_factory=dict)


class CryptoService:
    """Serve each horizon's crypto champion on the latest bar of every pair.

    Features come from :func:`marketcast.features.crypto.build_crypto_features` over the store's
    trailing window of all pairs at once (cross-sectional ranks and beta to BTC need them all),
    regimes from :func:`marketcast.ensemble.regime.classify_regimes`, and the universe from
    :func:`marketcast.features.universe.build_universe` with the export's filters: the same code
    the pipeline trained with. The table is computed once per snapshot (a new bar or a reload
    makes a new snapshot) and kept; staleness is judged on every request against ``clock``.

    Reloads and candle pushes build a complete new :class:`CryptoSnapshot` and swap one
    reference, so a request in flight keeps the snapshot it started with.
    """

    def __init__(
        self,
        registry: Registry,
        settings: CryptoSettings | None = None,
        *,
        candles: CandleData | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.registry = registry
        self.settings = settings or CryptoSettings()
        self.clock = clock
        self._lock = threading.Lock()
        #: the registry's champions as the latest reload read them (the watcher compares)
        self._loaded_fingerprint: Fingerprint | None = None
        self._table_lock = threading.Lock()
        self._tables: OrderedDict[str, SignalTable] = OrderedDict()
        self._loaded: dict[tuple[str, str, str], LoadedCryptoChampion] = {}
        data = candles if candles is not None else self._load_candles()
        if data.candles.empty:
            raise ValueError("no candles to serve: check MARKETCAST_CRYPTO_CANDLES")
        funding = data.funding if data.funding is not None and len(data.funding) else None
        store = CandleStore(self._trim(data.candles), funding)
        #: the pairs this server serves: its start-up files' (settings.pairs filtering them).
        #: Fixed for the service's life, so no push, trim or replay can make one unknown.
        self._served_pairs: tuple[str, ...] = store.pairs
        self._snapshot = CryptoSnapshot(_snapshot_id({}, store), {}, store, self._now_text())
        self._journal = Path(self.settings.journal_path) if self.settings.journal_path else None
        # The flock lives on a file beside the journal that is never replaced: a compaction
        # swaps the journal's inode, and a lock on the old inode would exclude no one.
        self._journal_lock = _lock_path(self._journal) if self._journal is not None else None
        # The journal file this worker reads, held open: while it is, its inode cannot be reused,
        # so a path whose inode differs from the handle's means the file was replaced.
        self._journal_handle: BinaryIO | None = None
        self._journal_offset = 0  # bytes of ``_journal_handle``'s file already applied
        self._compact_at = self.settings.journal_max_bytes
        if self._journal is not None:
            self._journal.parent.mkdir(parents=True, exist_ok=True)
            self._journal.touch()
            with self._lock, _locked(self._journal_lock, exclusive=False):
                self._catch_up()

    # -- state -------------------------------------------------------------------------------
    def _load_candles(self) -> CandleData:
        paths = list(self.settings.candle_paths) or None
        data = load_candles(
            paths, pairs=list(self.settings.pairs) or None, pair_renames=self.settings.pair_renames
        )
        for error in data.report.errors:  # served without them, but never silently
            log.error(
                "crypto candles: %s refused (%s): none of its rows is served",
                error.file,
                error.reason,
            )
        return data

    def _trim(self, candles: pd.DataFrame) -> pd.DataFrame:
        """Keep, per pair, the trailing ``window_bars`` hours up to that pair's latest bar.

        Per pair, not up to the latest bar of any pair: a bar pushed after a long outage
        trimmed every pair that was behind out of the store, and they became unknown for good.
        When every pair is current the two are the same window.
        """
        latest = candles.groupby("pair", sort=False)["open_time_utc"].transform("max")
        kept = candles.loc[candles["open_time_utc"] >= self._window_start(latest)]
        out: pd.DataFrame = kept.sort_values(
            ["pair", "open_time_utc"], kind="stable", ignore_index=True
        )
        return out

    def _window_start(self, latest: _Times) -> _Times:
        """Open time of the oldest bar kept: ``window_bars`` hours ending at ``latest``."""
        return latest - pd.Timedelta(hours=self.settings.window_bars - 1)

    def _now(self) -> pd.Timestamp:
        """The service clock as an aware UTC timestamp (what pushes are judged against)."""
        now = pd.Timestamp(self.clock())
        return now.tz_localize("UTC") if now.tzinfo is None else now.tz_convert("UTC")

    def _now_text(self) -> str:
        return self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    def snapshot(self) -> CryptoSnapshot:
        """The current snapshot (read once per request)."""
        return self._snapshot

    @property
    def snapshot_id(self) -> str:
        return self._snapshot.snapshot_id

    @property
    def ready(self) -> bool:
        """True once at least one horizon has a champion."""
        return bool(self._snapshot.champions)

    @property
    def pairs(self) -> tuple[str, ...]:
        """The pairs served: those of the start-up files (a pair behind is stale, not unknown)."""
        return self._served_pairs

    @staticmethod
    def latest_bar_time(snap: CryptoSnapshot) -> datetime:
        """Close of the latest bar in the snapshot's store."""
        stamp: datetime = (snap.store.latest_open + _HOUR).to_pydatetime()
        return stamp

    @staticmethod
    def bar_closes(snap: CryptoSnapshot) -> dict[str, datetime]:
        """Close of each pair's latest bar in the snapshot's store."""
        return {p: (t + _HOUR).to_pydatetime() for p, t in snap.store.last_open_by_pair().items()}

    # -- loading -----------------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Read each horizon's champion from the registry and swap them in atomically."""
        with self._lock:
            # read first: a change made while loading is then seen by the next watcher tick;
            # recorded only once the snapshot is in, so a reload that fails is tried again
            fingerprint = self.champion_fingerprint()
            champions: dict[str, LoadedCryptoChampion] = {}
            for horizon in HORIZONS:
                record = None
                try:
                    record = self.registry.champion(VERTICAL, horizon)
                    if record is not None:
                        champions[horizon] = self._load(horizon, record.model_name, record.version)
                except Exception as exc:
                    # one damaged horizon must not hold the others back (it failed the whole
                    # reload, so every horizon kept its old champion): served without it, and
                    # recorded as not loaded, so the watcher tries it again (it was recorded
                    # as loaded, and a moment's outage kept the horizon out until a restart).
                    # Any exception, as football's: a TypeError from a spec another code
                    # version wrote answered the admin reload 500 and failed every watcher tick
                    log.warning(
                        "%s/%s left out of this snapshot: %s: %s",
                        VERTICAL,
                        horizon,
                        type(exc).__name__,
                        exc,
                    )
                    version = record.version if record is not None else ""
                    fingerprint = mark_failed(fingerprint, horizon, version)
            self._check_window(champions)
            store = self._snapshot.store
            snapshot = CryptoSnapshot(
                _snapshot_id(champions, store), champions, store, self._now_text()
            )
            self._snapshot = snapshot
            self._loaded_fingerprint = fingerprint
        log.info(
            "crypto champions %s (snapshot %s)", _champion_key(champions), snapshot.snapshot_id
        )
        return {
            "snapshot_id": snapshot.snapshot_id,
            "champions": {h: {"name": c.name, "version": c.version} for h, c in champions.items()},
        }

    def _check_window(self, champions: Mapping[str, LoadedCryptoChampion]) -> None:
        """Refuse champions whose features or universe need more than ``window_bars`` hours.

        A shorter window made every pair ``short_history`` (do-not-trade) and the served
        numbers differ from the offline pipeline's. Raised as :class:`SettingsEnvError` naming
        ``MARKETCAST_CRYPTO_WINDOW_BARS``, before anything is swapped in.
        """
        needs = {h: _window_needed(c) for h, c in champions.items()}
        short = {h: n for h, n in needs.items() if n > self.settings.window_bars}
        if not short:
            return
        need = max(short.values())
        names = ", ".join(f"{h} {champions[h].name} {champions[h].version}" for h in sorted(short))
        reason = (
            f"must be >= {need} for the crypto champions ({names}): their features and "
            "universe (min_history_days, lookback_days) need that much history per pair"
        )
        line = InitErrorDetails(
            type="value_error",
            loc=("window_bars",),
            input=self.settings.window_bars,
            ctx={"error": ValueError(reason)},
        )
        error = ValidationError.from_exception_data(CryptoSettings.__name__, [line])
        raise SettingsEnvError.from_error(
            error,
            frozenset(),
            variables={"window_bars": ENV_PREFIX + ENV_VARIABLES["window_bars"]},
            texts={"window_bars": str(self.settings.window_bars)},
        ) from None

    def _load(self, horizon: str, name: str, version: str) -> LoadedCryptoChampion:
        key = (horizon, name, version)
        cached = self._loaded.get(key)
        if cached is not None:  # versions are immutable
            return cached
        files = self.registry.load_files(VERTICAL, horizon, name, version)
        rebuilt = load_crypto_champion(files)
        manifest = self.registry.manifest(VERTICAL, horizon, name, version)
        trained = manifest.config.get("pair_renames") or {}
        served = {old: r.model_dump() for old, r in self.settings.pair_renames.items()}
        if trained != served:  # a renamed pair's history would be read unlike in training
            log.warning(
                "crypto champion %s/%s %s was trained with pair_renames %s, but this server "
                "joins %s (MARKETCAST_CRYPTO_PAIR_RENAMES): set the variable to the run's",
                horizon,
                name,
                version,
                trained or "{}",
                served or "{}",
            )
        loaded = LoadedCryptoChampion(
            horizon,
            name,
            version,
            rebuilt["spec"],
            rebuilt["models"],
            dict(manifest.scores),
            rebuilt["regime_models"],
        )
        self._loaded[key] = loaded
        return loaded

    # -- candles -----------------------------------------------------------------------------
    def push_candles(self, bars: Sequence[CandleIn]) -> CandlePush:
        """Validate and append closed bars, then swap in a snapshot with the longer store.

        Rules (the first broken one is raised as :class:`CandleRejectedError`): the pair is
        served; ``data.candles.check_bars`` (open time on the hour, prices > 0, high >= open
        and close, low <= open and close, volumes >= 0); the quote volume within ``[low x
        volume, high x volume]`` (``quote_volume_out_of_range``); no two bars of a pair at one
        hour (``duplicate_bar``); per pair, bars in time order (``out_of_order``) and after the
        pair's latest stored bar (``duplicate_bar`` at the same hour, else ``out_of_order``);
        the loader's spike rule on the pair's stored tail and the pushed bars
        (``spike_outlier``) and a pushed bar's open at the previous close (``price_spike``),
        see :func:`_check_price_moves`.

        Accepted bars are then repaired as the loader repairs a file (`_repair_pushed`): a bar
        without volume is left out and a gap of up to `MAX_REPAIR_BARS` hours is filled.
        """
        frame = _bars_frame(bars)
        with self._lock, _locked(self._journal_lock, exclusive=True):
            if self._journal is not None:
                self._catch_up()  # what other workers accepted comes first
            store = self._snapshot.store
            _check_pairs(frame, set(self._served_pairs))
            # a bar must have closed by the server's clock, give or take CLOCK_SKEW for a feed
            # whose clock runs a little ahead: a bar accepted early (it opened at the clock)
            # stayed in the store for good, and the real one was a duplicate_bar
            _check_bars_against(frame, store, self._now(), CLOCK_SKEW)
            repairs = CandleReport()
            snapshot = self._commit(bars, bars=frame, repairs=repairs)
        return CandlePush(
            snapshot,
            zero_volume=repairs.dropped.get("zero_volume", 0),
            gap_bars_filled=repairs.repaired.get("gap_bars_filled", 0),
            gap_bars_left=repairs.gap_bars_missing,
        )

    def push_funding(self, rates: Sequence[FundingIn]) -> CryptoSnapshot:
        """Validate and append funding events of perpetuals, then swap in a new snapshot.

        The schema has checked each event (a timezone, a finite rate within
        ``MAX_ABS_FUNDING_RATE``); here, the pair is served (``unknown_pair``) and, per pair,
        events are in time order and after the pair's latest stored event
        (``duplicate_funding`` at the same second, else ``out_of_order``). Times are rounded to
        the second, as the loader rounds Binance's. Raised as :class:`CandleRejectedError`.
        """
        frame = _funding_frame(rates)
        with self._lock, _locked(self._journal_lock, exclusive=True):
            if self._journal is not None:
                self._catch_up()
            store = self._snapshot.store
            _check_pairs(frame, set(self._served_pairs))
            # times were rounded to the second: an event 0.6 s after T is compared as T + 1 s
            _check_not_after(frame, "funding_time_utc", self._now().ceil("s"))
            _check_order(frame, store.last_funding_by_pair(), "funding_time_utc", "funding")
            return self._commit(rates, funding=frame)

    def _commit(
        self,
        records: Sequence[CandleIn | FundingIn],
        *,
        bars: pd.DataFrame | None = None,
        funding: pd.DataFrame | None = None,
        repairs: CandleReport | None = None,
    ) -> CryptoSnapshot:
        """Journal validated records, swap them in, compact when due (under both locks)."""
        journal = self._journal
        if journal is not None:
            try:
                self._journal_offset = _append_journal(journal, records)
            except OSError as exc:
                raise JournalWriteError(
                    f"the crypto journal could not be written ({exc}): nothing of the push was "
                    "kept; retry it"
                ) from exc
        snapshot = self._swap_in(bars=bars, funding=funding, repairs=repairs)
        if journal is not None and self._journal_offset > self._compact_at:
            try:
                self._compact_journal()
            except OSError as exc:  # a full disk, a read-only folder: the push stands
                # The records are journaled and swapped in: a 500 here told the client the
                # push failed, and its retry was refused as a duplicate. The next try waits
                # until the journal has doubled again: each try reads the whole journal under
                # the lock every worker waits on.
                self._compact_at = max(self._compact_at, 2 * self._journal_offset)
                log.warning(
                    "crypto journal %s: compaction failed (%s); the push is applied, and "
                    "compaction is tried again at %d bytes",
                    journal,
                    exc,
                    self._compact_at,
                )
        return snapshot

    def _compact_journal(self) -> None:
        """Rewrite the journal with what a worker starting now would keep (under the locks).

        That is, per pair, the bars inside the trailing ``window_bars`` hours of the pair's
        latest stored bar (``_trim`` drops older ones at start-up anyway) and the funding events
        from ``FUNDING_MAX_AGE`` before that window on (an older rate reaches no feature of a
        bar in it). The new file replaces the old one atomically; followers notice the new inode and
        replay it from the start, skipping what they hold (``_catch_up`` is idempotent).
        """
        assert self._journal is not None
        before = self._journal_offset
        store = self._snapshot.store
        start = self._window_start(store.latest_open)
        starts = {p: self._window_start(t) for p, t in store.last_open_by_pair().items()}
        with self._journal.open("rb") as handle:
            lines = handle.read().splitlines()
        records = _journal_records(self._journal, lines)  # a corrupt line is dropped, logged
        kept = [
            _journal_line(r)
            for r in records
            if _record_time(r) >= _keep_from(r, starts.get(r.pair, start))
        ]
        staging = self._journal.with_name(self._journal.name + ".compacting")
        try:
            with staging.open("wb") as handle:
                handle.writelines(kept)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, self._journal)
        except OSError:
            staging.unlink(missing_ok=True)  # a part-written copy (a full disk) is not left
            raise
        _fsync_dir(self._journal.parent)
        self._open_journal()
        size = self._journal_offset = os.fstat(self._handle().fileno()).st_size
        self._compact_at = max(self.settings.journal_max_bytes, 2 * size)
        log.info(
            "crypto journal %s compacted from %d to %d bytes (%d records kept)",
            self._journal,
            before,
            size,
            len(kept),
        )

    def _open_journal(self) -> None:
        """(Re)open the journal at its path; the next read starts at its first byte."""
        assert self._journal is not None
        if self._journal_handle is not None:
            self._journal_handle.close()
        self._journal_handle = self._journal.open("rb")
        self._journal_offset = 0

    def _handle(self) -> BinaryIO:
        assert self._journal_handle is not None
        return self._journal_handle

    def _journal_replaced(self) -> bool:
        """True before the first read and after another worker compacted the journal."""
        assert self._journal is not None
        handle = self._journal_handle
        return handle is None or os.stat(self._journal).st_ino != os.fstat(handle.fileno()).st_ino

    def close(self) -> None:
        """Close the journal file this worker follows (a later read reopens it)."""
        if self._journal_handle is not None:
            self._journal_handle.close()
            self._journal_handle = None

    def _swap_in(
        self,
        *,
        bars: pd.DataFrame | None = None,
        funding: pd.DataFrame | None = None,
        repairs: CandleReport | None = None,
    ) -> CryptoSnapshot:
        """Append validated bars (repaired as the loader repairs them, counted in ``repairs``)
        and funding events to the store and swap in the new snapshot (under the lock)."""
        snap = self._snapshot
        store = snap.store
        candles = store.candles
        if bars is not None:
            report = repairs if repairs is not None else CandleReport()
            added = _repair_pushed(candles, bars, report)
            candles = self._trim(pd.concat([candles, added], ignore_index=True))
        rates = store.funding
        if funding is not None:
            rates = pd.concat([f for f in (rates, funding) if f is not None], ignore_index=True)
            rates = rates.sort_values(["pair", "funding_time_utc"], kind="stable")
            rates = rates.reset_index(drop=True)
        new_store = CandleStore(candles, rates)
        snapshot = CryptoSnapshot(
            _snapshot_id(snap.champions, new_store), snap.champions, new_store, snap.loaded_utc
        )
        self._snapshot = snapshot
        return snapshot

    def _catch_up(self) -> int:
        """Apply the journal's records written since the last read (under ``self._lock``).

        Bars at or before a pair's latest stored bar, and funding events at or before its
        latest stored event, are skipped (this worker already has them, or the start-up files
        did), so replaying is idempotent. Returns the records applied.
        """
        assert self._journal is not None
        if self._journal_replaced():
            followed = self._journal_handle is not None
            self._open_journal()
            if followed:  # another worker compacted it: wait as long as that worker does
                size = os.fstat(self._handle().fileno()).st_size
                self._compact_at = max(self.settings.journal_max_bytes, 2 * size)
        handle = self._handle()
        handle.seek(self._journal_offset)
        chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
        if not complete:
            return 0
        self._journal_offset += len(complete)
        journal = self._journal
        records = _journal_records(journal, complete.splitlines())
        store = self._snapshot.store
        served = set(self._served_pairs)
        replayed = fresh = None
        if bars_in := _of(records, CandleIn):
            renamed = _renamed(_bars_frame(bars_in), self.settings.pair_renames)
            bars = _served(journal, renamed, served)
            bars = bars.loc[_after_stored(bars, "open_time_utc", store.last_open_by_pair())]
            replayed = _replayable(journal, bars.reset_index(drop=True), self._now())
        if events_in := _of(records, FundingIn):
            renamed_events = _renamed(_funding_frame(events_in), self.settings.pair_renames)
            events = _served(journal, renamed_events, served)
            last = store.last_funding_by_pair()
            events = events.loc[_after_stored(events, "funding_time_utc", last)]
            fresh = _replayable_funding(journal, events.reset_index(drop=True), self._now())
        replayed = replayed if replayed is not None and len(replayed) else None
        fresh = fresh if fresh is not None and len(fresh) else None
        if replayed is not None or fresh is not None:
            self._swap_in(bars=replayed, funding=fresh)
        return sum(len(f) for f in (replayed, fresh) if f is not None)

    def follow(self, poll_s: float = 1.0) -> threading.Event:
        """Follow the journal (bars pushed to other workers) and the registry's crypto champions.

        Returns the event that stops the watcher thread.
        """
        return follow_champions(
            "crypto-watch",
            poll_s,
            self.champion_fingerprint,
            self.reload,
            also=self._follow_journal,
            loaded=lambda: self._loaded_fingerprint,
        )

    def _follow_journal(self) -> None:
        journal = self._journal
        if journal is None:
            return
        # under the lock: a push on another thread may be swapping the handle (compaction)
        with self._lock:
            if not self._journal_replaced() and journal.stat().st_size <= self._journal_offset:
                return
            with _locked(self._journal_lock, exclusive=False):
                self._catch_up()

    def champion_fingerprint(self) -> Fingerprint:
        """The champion (name, version) per horizon as the registry holds it now."""
        return champion_fingerprint(self.registry, VERTICAL, HORIZONS)

    # -- signals -----------------------------------------------------------------------------
    def table(self, snap: CryptoSnapshot | None = None) -> SignalTable:
        """The signal table of ``snap`` (the current snapshot by default), computed once."""
        snap = snap or self._snapshot
        table = self._tables.get(snap.snapshot_id)
        if table is not None:
            return table
        with self._table_lock:
            table = self._tables.get(snap.snapshot_id)
            if table is None:
                table = compute_signal_table(snap)
                self._tables[snap.snapshot_id] = table
                while len(self._tables) > 4:
                    self._tables.popitem(last=False)
        return table

    def signals(
        self,
        horizon: str | None = None,
        pair: str | None = None,
        *,
        snapshot: CryptoSnapshot | None = None,
    ) -> tuple[CryptoSnapshot, list[CryptoSignal]]:
        """Signals of one snapshot, filtered by horizon and pair, judged stale against the clock.

        Raises
        ------
        UnknownNameError
            For a horizon other than 1h, 4h, 1d or a pair the store does not hold.
        LookupError
            For a known horizon without a champion.
        """
        snap = snapshot or self._snapshot
        if horizon is not None and horizon not in HORIZONS:
            raise UnknownNameError("horizon", horizon, HORIZONS)
        if pair is not None and pair not in self._served_pairs:
            raise UnknownNameError("pair", pair, self._served_pairs)
        if horizon is not None and horizon not in snap.champions:
            raise LookupError(
                f"no crypto champion for {horizon}: run `marketcast run --vertical crypto`"
            )
        table = self.table(snap)
        now = pd.Timestamp(self.clock())
        limit = pd.Timedelta(hours=self.settings.stale_after_hours)
        out = []
        for (p, h), signal in table.signals.items():
            if (horizon is not None and h != horizon) or (pair is not None and p != pair):
                continue
            out.append(_judge_staleness(signal, now, limit))
        return snap, out

    def rankings(self) -> list[CryptoRankingRow]:
        """Tradable (pair, horizon) rows by edge after costs, then confidence max(P, 1 - P)."""
        snap = self._snapshot
        _, signals = self.signals(snapshot=snap)
        table = self.table(snap)
        rows = []
        for s in signals:
            if not s.tradable:
                continue
            champion = snap.champions[s.horizon]
            rows.append(
                CryptoRankingRow(
                    vertical=VERTICAL,
                    market=f"{s.pair}/{s.horizon}",
                    champion=s.model.name,
                    version=s.model.version,
                    edge_after_costs=s.edge_after_costs,
                    confidence=max(s.p_up, 1.0 - s.p_up),
                    capacity_bets=None,
                    roi=_finite(champion.scores.get("net_return")),
                    clv=None,
                    log_loss_ratio_to_closing=None,
                    pair=s.pair,
                    horizon=s.horizon,
                    position=s.position,
                    capacity_usd=table.capacity_usd.get((s.pair, s.horizon)),
                    bar_time=s.bar_time,
                )
            )
        return by_edge(rows)

    def do_not_trade(self) -> list[CryptoDoNotTradeRow]:
        """Pairs failing the staleness or universe checks, and horizons without a champion."""
        snap = self._snapshot
        table = self.table(snap)
        now = pd.Timestamp(self.clock())
        limit = pd.Timedelta(hours=self.settings.stale_after_hours)
        rows = [
            CryptoDoNotTradeRow(
                vertical=VERTICAL,
                market=h,
                reason="no_champion",
                check="no_champion",
                horizon=h,
                detail=f"no crypto champion for {h}: run `marketcast run --vertical crypto`",
            )
            for h in HORIZONS
            if h not in snap.champions
        ]
        for pair, state in table.pairs.items():
            age = now - (state.bar_open + _HOUR)
            if age > limit:
                rows.append(
                    CryptoDoNotTradeRow(
                        vertical=VERTICAL,
                        market=pair,
                        reason="stale",
                        check="staleness",
                        pair=pair,
                        detail=f"latest bar closed {age.total_seconds() / 3600:.1f} h ago "
                        f"(limit {self.settings.stale_after_hours:g} h): the feed is behind",
                    )
                )
            # one row per pair when every champion's universe agrees (as before), else one
            # per horizon whose champion's universe leaves the pair out
            by_horizon = {h: states[pair] for h, states in table.universe_by_horizon.items()}
            verdicts = {(st.universe_reason, st.universe_detail) for st in by_horizon.values()}
            judged: list[tuple[str | None, _PairState]] = (
                [(None, state)] if len(verdicts) <= 1 else list(by_horizon.items())
            )
            for horizon, verdict in judged:
                if verdict.universe_reason == "ok" or (
                    verdict.universe_reason == "stale" and age > limit
                ):
                    continue
                rows.append(
                    CryptoDoNotTradeRow(
                        vertical=VERTICAL,
                        market=pair,
                        reason=verdict.universe_reason,
                        check=_UNIVERSE_CHECK[verdict.universe_reason],
                        pair=pair,
                        horizon=horizon,
                        detail=verdict.universe_detail,
                    )
                )
        return rows

    def status(self) -> dict[str, Any]:
        """The store and the champions (``GET /v1/crypto/status``)."""
        snap = self._snapshot
        return {
            "snapshot_id": snap.snapshot_id,
            "loaded_utc": snap.loaded_utc,
            "pairs": list(self._served_pairs),
            "bars": len(snap.store.candles),
            "window_bars": self.settings.window_bars,
            "latest_bar_time": self.latest_bar_time(snap),
            "champions": {
                h: ModelRef(name=c.name, version=c.version) for h, c in snap.champions.items()
            },
            "latest_funding_by_pair": {
                p: t.to_pydatetime() for p, t in snap.store.last_funding_by_pair().items()
            },
        }


# -- the computation ---------------------------------------------------------------------------
def compute_signal_table(snap: CryptoSnapshot) -> SignalTable:
    """Features, regimes and the universe on the store, then each champion on each pair's last bar.

    Position rule (as in the walk-forward, ``orchestration/crypto_jobs.edge_positions``): the
    expected return is ``(2 P(up) - 1) * m`` with ``m`` the group's mean |forward return| on its
    training rows; the position is the side of P(up) when ``|expected| - round trip cost -
    short_borrow > min_edge`` (``short_borrow``: a short's interest over the hold on a pair with
    no funding event in the store, or any pair with the champion's ``costs.funding`` off), the
    pair is in the universe and (consensus only) the regime gate enables a member.
    """
    candles = snap.store.candles
    features = build_crypto_features(candles, snap.store.funding)
    last = features.groupby("pair", sort=True).tail(1)  # latest bar per pair
    last_rows = last.index.to_numpy()

    rules = RegimeRules()
    recent = features.groupby("pair", sort=False).tail(rules.lookback_periods + 1)
    regimes = classify_regimes(recent, rules=rules).reindex(last.index).astype(str)

    universe_by_horizon = _universe_states(candles, last, snap)
    pairs_state = next(iter(universe_by_horizon.values()), None) or _pair_states(
        candles, last, CryptoUniverseConfig(), "abdi_ranaldo"
    )
    # the decision bar's volume and volatility as last known (a repaired or no-trade bar has
    # volume 0): the pipeline's edge gate and backtest price a trade so (costs.carry_forward)
    pair_of_row = candles["pair"].to_numpy()
    quote_volume = carry_forward(candles["quote_volume"], pair_of_row, positive=True)[0][last_rows]
    vol_1h = carry_forward(features["realised_vol_24h"], pair_of_row, positive=False)[0][last_rows]
    bar_open = pd.DatetimeIndex(last["open_time_utc"])
    # a short on spot borrows the asset; a perpetual's (a pair with funding) pays funding instead
    perpetual = last["pair"].isin(snap.store.last_funding_by_pair()).to_numpy()
    # the spread each champion's costs charge, by its spread_method, as its run charged it
    spreads: dict[str, npt.NDArray[np.float64]] = {}
    signals: dict[tuple[str, str], CryptoSignal] = {}
    capacity: dict[tuple[str, str], float | None] = {}
    for horizon, champion in snap.champions.items():
        method = champion.cost_model.spread_method
        if method not in spreads:
            spreads[method] = charged_spread(features, candles, method)[last_rows]
        cost = round_trip_cost_rate(
            champion.cost_model,
            spreads[method],
            vol_1h,
            quote_volume,
            min_spread=champion.costs.min_spread,
        )
        p_up, groups = _predict_champion(champion, last, regimes)
        bars = HORIZON_BARS[horizon]
        borrow = short_borrow_over(champion.cost_model, bars, perpetual)
        for i, pair in enumerate(last["pair"].astype(str)):
            group = groups[i]
            mean_abs = _mean_abs_return(champion, group, float(vol_1h[i]), bars)
            tilt = 2.0 * p_up[i] - 1.0
            expected = tilt * mean_abs
            finite_cost = bool(np.isfinite(cost[i]))
            short_borrow = float(borrow[i]) if tilt < 0 else 0.0
            edge = abs(expected) - cost[i] - short_borrow if finite_cost else None
            direction = int(np.sign(tilt)) if abs(expected) > champion.dead_zone else 0
            state = universe_by_horizon[horizon][pair]  # this champion's own universe
            position, reason = _position(
                champion, group, str(regimes.iat[i]), tilt, edge, state.universe_reason
            )
            signals[(pair, horizon)] = CryptoSignal(
                pair=pair,
                horizon=horizon,
                bar_time=(bar_open[i] + _HOUR).to_pydatetime(),
                bar_open_utc=bar_open[i].to_pydatetime(),
                p_up=float(p_up[i]),
                direction=direction,  # type: ignore[arg-type]
                position=position,  # type: ignore[arg-type]
                expected_return=float(expected),
                round_trip_cost=float(cost[i]) if finite_cost else None,
                short_borrow=short_borrow,
                edge_after_costs=None if edge is None else float(edge),
                regime=str(regimes.iat[i]),
                model=ModelRef(name=champion.name, version=champion.version),
                group=group,
                stale=False,
                tradable=state.universe_reason == "ok",
                reason=reason,
            )
            capacity[(pair, horizon)] = _capacity_usd(
                champion.cost_model,
                champion.costs.min_spread,
                abs(expected) - short_borrow,  # what the trade earns after its borrow
                float(spreads[method][i]),
                float(vol_1h[i]),
                float(quote_volume[i]),
            )
    return SignalTable(signals, pairs_state, capacity, universe_by_horizon)


def _predict_champion(
    champion: LoadedCryptoChampion, last: pd.DataFrame, regimes: pd.Series
) -> tuple[np.ndarray, list[str | None]]:
    """P(up) per row of ``last`` from the member models of each row's pair group."""
    group_of = champion.group_of
    groups: list[str | None] = [group_of.get(str(p)) for p in last["pair"]]
    p_up = np.full(len(last), 0.5)
    columns = [*champion.spec["feature_columns"], "open_time_utc"]
    for group, members in champion.models.items():
        rows = np.flatnonzero(np.array([g == group for g in groups], dtype=bool))
        if not len(rows):
            continue
        X = last.iloc[rows][columns]
        p_members = {name: model.predict_proba(X)[:, 1] for name, model in members.items()}
        # a member's own model in a regime answers there, as in the walk-forward (RegimeModels)
        row_regimes = regimes.iloc[rows].to_numpy()
        for name, by_regime in champion.regime_models.get(group, {}).items():
            for regime, model in by_regime.items():
                mask = row_regimes == regime
                if mask.any():
                    p_members[name][mask] = model.predict_proba(X.iloc[mask])[:, 1]
        if champion.name == "consensus":
            p_up[rows] = _consensus_p_up(champion, group, p_members, regimes.iloc[rows])
        else:
            p_up[rows] = p_members[champion.name]
    return p_up, groups


def _consensus_p_up(
    champion: LoadedCryptoChampion,
    group: str,
    p_members: dict[str, np.ndarray],
    regimes: pd.Series,
) -> np.ndarray:
    """(1 + S) / 2 of the consensus vote, members gated by the last walk-forward regime gate.

    Serving has no resolved out-of-sample record, so enabled members vote with equal
    reliability; with one decision the correlation penalty is 0.
    """
    gate = (champion.spec.get("gate_enabled") or {}).get(group)
    voters = [m for m in p_members if m != "flat"]
    out = np.full(len(regimes), 0.5)
    for j, regime in enumerate(regimes.astype(str)):
        enabled = voters if gate is None else [m for m in voters if m in gate.get(regime, [])]
        if not enabled:
            continue
        result = consensus(
            {m: p_members[m][j : j + 1] for m in enabled}, dict.fromkeys(enabled, 1.0)
        )
        out[j] = (1.0 + float(result.score[0])) / 2.0
    return out


def _position(
    champion: LoadedCryptoChampion,
    group: str | None,
    regime: str,
    tilt: float,
    edge: float | None,
    universe_reason: str,
) -> tuple[int, str]:
    if group is None:
        return 0, "pair not in any training group of the champion"
    if universe_reason != "ok":
        return 0, f"not in the universe: {universe_reason}"
    gate = (champion.spec.get("gate_enabled") or {}).get(group)
    if champion.name == "consensus" and gate is not None and not gate.get(regime):
        return 0, f"regime gate: no member enabled in {regime}"
    if tilt == 0.0:
        return 0, "no view (P(up) = 0.5)"
    if edge is None:
        return 0, "no volume or volatility known for the pair yet: a trade cannot be priced"
    if not edge > champion.min_edge:
        return 0, f"edge {edge:+.5f} does not clear costs by min_edge {champion.min_edge:g}"
    return int(np.sign(tilt)), f"edge {edge:+.5f} after costs"


def _mean_abs_return(
    champion: LoadedCryptoChampion, group: str | None, vol_1h: float, bars: int
) -> float:
    """The group's mean |forward return| from the export, else a normal-law estimate."""
    recorded = (champion.spec.get("mean_abs_forward_return") or {}).get(group)
    if recorded is not None:
        return float(recorded)
    vol = float(vol_1h) if np.isfinite(vol_1h) else 0.0
    return _MEAN_ABS_NORMAL * vol * math.sqrt(bars)


def _capacity_usd(
    costs: CostModel,
    min_spread: float,
    gross_edge: float,
    spread: float,
    vol: float,
    quote_volume: float,
) -> float | None:
    """Notional N at which ``2 * slippage(N)`` equals the edge left after fees and spread."""
    if costs.slippage_model == "none" or costs.slippage_coef == 0.0:
        return None
    zero_slip = costs.model_copy(update={"slippage_model": "none"})
    fixed = float(
        round_trip_cost_rate(zero_slip, [spread], [vol], [quote_volume], min_spread=min_spread)[0]
    )
    room = gross_edge - fixed
    if not (np.isfinite(room) and room > 0 and np.isfinite(vol) and vol > 0):
        return 0.0
    # 2 * coef * vol * (N / qv) ** e = room
    exponent = 0.5 if costs.slippage_model == "square_root" else 1.0
    share = (room / (2.0 * costs.slippage_coef * vol)) ** (1.0 / exponent)
    return float(share * quote_volume)


def _universe_states(
    candles: pd.DataFrame, last: pd.DataFrame, snap: CryptoSnapshot
) -> dict[str, dict[str, _PairState]]:
    """Per horizon with a champion, each pair's universe decision by that champion's filters.

    Each champion may come from another run, with its own ``universe`` and spread estimator
    (``universe_spread_method`` of its costs): the universe is built once per distinct pair of
    them (usually one). It used to be the first champion's for every horizon, so a champion
    whose run would never hold a pair was served as tradable there.
    """
    built: dict[tuple[str, str], dict[str, _PairState]] = {}
    out: dict[str, dict[str, _PairState]] = {}
    for horizon, champion in snap.champions.items():
        u = champion.universe
        method = universe_spread_method(champion.cost_model.spread_method)
        key = (u.model_dump_json(), method)
        if key not in built:
            built[key] = _pair_states(candles, last, u, method)
        out[horizon] = built[key]
    return out


def _pair_states(
    candles: pd.DataFrame, last: pd.DataFrame, u: CryptoUniverseConfig, spread_method: SpreadMethod
) -> dict[str, _PairState]:
    """Each pair's universe decision for the day of its latest bar's decision time."""
    universe = build_universe(
        candles,
        lookback_days=u.lookback_days,
        min_median_quote_volume_usd=u.min_median_quote_volume_usd,
        max_spread=u.max_spread,
        min_history_days=u.min_history_days,
        spread_method=spread_method,
    )
    states: dict[str, _PairState] = {}
    for pair, bar_open in zip(last["pair"].astype(str), last["open_time_utc"], strict=True):
        rows = universe.loc[universe["pair"] == pair]
        day = (pd.Timestamp(bar_open) + _HOUR).floor("D")
        today = rows.loc[rows["date"] <= day].tail(1)
        if today.empty:
            states[pair] = _PairState(pd.Timestamp(bar_open), "short_history", "no history")
            continue
        row = today.iloc[0]
        reason = str(row["reason"])
        states[pair] = _PairState(pd.Timestamp(bar_open), reason, _universe_detail(row, u))
    return states


def _window_needed(champion: LoadedCryptoChampion) -> int:
    """Hours of history per pair the champion's signals need to be the pipeline's.

    The features' `FEATURE_HISTORY_BARS`, and the universe's: it is decided for the day of the
    latest bar's decision from the ``max(min_history_days, lookback_days)`` days before it.
    """
    u = champion.universe
    return max(FEATURE_HISTORY_BARS, 24 * (max(u.min_history_days, u.lookback_days) + 1))


def _universe_detail(row: pd.Series, u: CryptoUniverseConfig) -> str:
    reason = str(row["reason"])
    if reason == "short_history":
        return f"{row['history_days']:.0f} days of history (< {u.min_history_days})"
    if reason == "stale":
        return f"no traded bar for {row['hours_since_last_trade']:.0f} h before the day"
    if reason == "low_liquidity":
        return (
            f"median daily quote volume {row['median_quote_volume_usd']:,.0f} USD "
            f"(< {u.min_median_quote_volume_usd:,.0f}) over {u.lookback_days} days"
        )
    if reason == "wide_spread":
        return f"spread lower bound {row['spread_lower_bound']:.4%} (> {u.max_spread:.4%})"
    return "ok"


def _judge_staleness(signal: CryptoSignal, now: pd.Timestamp, limit: pd.Timedelta) -> CryptoSignal:
    age = now - pd.Timestamp(signal.bar_time)
    if age <= limit:
        return signal
    return signal.model_copy(
        update={
            "stale": True,
            "tradable": False,
            "position": 0,
            "reason": f"stale: latest bar closed {age.total_seconds() / 3600:.1f} h ago",
        }
    )


# -- helpers -----------------------------------------------------------------------------------
def _bars_frame(bars: Sequence[CandleIn]) -> pd.DataFrame:
    """Pushed bars as a candle frame in push order, ``source_row`` 1-based like a file line."""
    times = pd.DatetimeIndex([pd.Timestamp(b.open_time_utc).tz_convert("UTC") for b in bars])
    frame = pd.DataFrame(
        {
            "pair": [b.pair for b in bars],
            "open_time_utc": times.as_unit("ns"),
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
            "quote_volume": [
                b.quote_volume if b.quote_volume is not None else b.close * b.volume for b in bars
            ],
            "quote_volume_estimated": [b.quote_volume is None for b in bars],
            "trades": [float(b.trades) if b.trades is not None else np.nan for b in bars],
            "vendor": "feed",
            "repaired": False,
        },
        columns=list(CANDLE_COLUMNS),
    )
    frame["source_file"] = "request"
    frame["source_row"] = np.arange(1, len(frame) + 1)
    return frame


def _repair_pushed(
    stored: pd.DataFrame, pushed: pd.DataFrame, report: CandleReport
) -> pd.DataFrame:
    """Pushed bars repaired as ``load_candles`` repairs a file, ready to append to ``stored``.

    A bar without volume (an exchange's placeholder for an hour without trades) is left out
    (``data.candles.drop_zero_volume_bars``), and a run of at most `MAX_REPAIR_BARS` missing
    hours between a pair's latest stored bar and its next pushed bar, or between two pushed
    bars, is filled with the previous close, ``repaired=True``
    (``data.candles.repair_gaps``). The journal holds the bars as pushed; every worker replays
    them through this function, so all of them, and a restart, hold the same repaired store.
    A later bar of an hour left out is accepted (it is after the pair's latest stored bar).

    ``pushed`` is a pushed frame (`_bars_frame`) whose bars of each pair are in time order and
    after the pair's latest stored bar; ``report`` receives the loader's counts and issues.
    """
    kept = drop_zero_volume_bars(pushed.reset_index(drop=True), report)
    if kept.empty:
        return normalise_candles(kept)
    last = stored.loc[stored["pair"].isin(set(kept["pair"]))].groupby("pair", sort=False).tail(1)
    both = pd.concat([last, kept], ignore_index=True)
    both = both.sort_values(["pair", "open_time_utc"], kind="stable", ignore_index=True)
    both, _ = repair_gaps(both, report, max_repair_bars=MAX_REPAIR_BARS)
    stored_last = both["pair"].map(last.set_index("pair")["open_time_utc"])
    new = ~(both["open_time_utc"] <= stored_last)  # a pair with no stored bar compares NaT
    return normalise_candles(both.loc[new.to_numpy(dtype=bool)])


def _funding_frame(rates: Sequence[FundingIn]) -> pd.DataFrame:
    """Pushed funding events as a funding table in push order, times rounded to the second."""
    times = pd.DatetimeIndex(
        [pd.Timestamp(r.funding_time_utc).tz_convert("UTC") for r in rates],
        dtype="datetime64[ns, UTC]",
    )
    return pd.DataFrame(
        {
            "pair": [r.pair for r in rates],
            "funding_time_utc": times.round("1s"),
            "funding_rate": np.array([r.funding_rate for r in rates], dtype=np.float64),
        },
        columns=list(FUNDING_COLUMNS),
    )


def _check_pairs(frame: pd.DataFrame, known: set[str]) -> None:
    """Every row's pair is one the store holds."""
    for row, pair in enumerate(frame["pair"]):
        if pair not in known:
            raise CandleRejectedError(row, "pair", "unknown_pair", f"unknown pair {pair!r}", pair)


def _of(records: Sequence[CandleIn | FundingIn], kind: type[_Record]) -> list[_Record]:
    return [r for r in records if isinstance(r, kind)]


def _renamed(frame: pd.DataFrame, renames: Mapping[str, PairRename]) -> pd.DataFrame:
    """Journaled bars (or funding events) of a pair renamed since (``pair_renames``) under the
    new name, a bar in the new pair's units, as the loader reads an old pair's files: they were
    dropped as a pair not served, and the new pair's series stopped at the start-up files'
    last bar. A funding rate is per unit of notional: it stays."""
    for old, rename in renames.items():
        rows = (frame["pair"] == old).to_numpy()
        if rows.any():
            frame.loc[rows, "pair"] = rename.to
            if "open" in frame.columns:
                frame.loc[rows, ["open", "high", "low", "close"]] /= rename.new_per_old
                frame.loc[rows, "volume"] *= rename.new_per_old
    return frame


def _served(journal: Path, frame: pd.DataFrame, served: set[str]) -> pd.DataFrame:
    """The records of served pairs; those of another pair (one ``MARKETCAST_CRYPTO_PAIRS`` left
    out) are left out with one warning a pair (they were left out without a word)."""
    others = ~frame["pair"].isin(served).to_numpy()
    for pair, n in Counter(frame["pair"].to_numpy()[others].tolist()).items():
        log.warning(
            "crypto journal %s: %d records of %s left out: this server does not serve that pair",
            journal,
            n,
            pair,
        )
    return frame.loc[~others]


def _after_stored(
    frame: pd.DataFrame, time_col: str, last: Mapping[str, pd.Timestamp]
) -> npt.NDArray[np.bool_]:
    """Rows after their pair's latest stored time: earlier ones are held already (replaying is
    idempotent)."""
    latest = pd.to_datetime(frame["pair"].map(last), utc=True)  # NaT: nothing stored
    return (latest.isna() | (frame[time_col] > latest)).to_numpy(dtype=bool)


def _in_journal_order(
    journal: Path, frame: pd.DataFrame, time_col: str, advances: npt.NDArray[np.bool_], noun: str
) -> pd.DataFrame:
    """The rows each after its pair's earlier kept row, in journal order; each other one left
    out with a warning. Read in one batch, a hand-written ``[T+2, T+1]`` kept both, where a
    worker that read them in two kept one: the workers' stores differed. A row whose
    ``advances`` is False (a bar without volume, which the store leaves out) moves no pair on.
    """
    keep = np.ones(len(frame), dtype=bool)
    latest: dict[str, pd.Timestamp] = {}
    for i, (pair, time) in enumerate(zip(frame["pair"], frame[time_col], strict=True)):
        if pair in latest and time <= latest[pair]:
            keep[i] = False
            log.warning(
                "crypto journal %s: skipped the %s %s at %s: not after the %s before it",
                journal,
                pair,
                noun,
                time,
                latest[pair],
            )
        elif advances[i]:
            latest[pair] = time
    return frame.loc[keep].reset_index(drop=True)


def _replayable_funding(journal: Path, events: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Replayed funding events without those the push rules that judge an event alone refuse:
    one after ``now`` (give or take `REPLAY_CLOCK_SKEW`), or not after its pair's earlier
    event. An event dated 2199 was restored and refused every real one after it."""
    late = (events["funding_time_utc"] > now + REPLAY_CLOCK_SKEW).to_numpy()
    for row in np.flatnonzero(late).tolist():
        _skipped(journal, events, row, "timestamp_out_of_range", "funding_time_utc")
    events = events.loc[~late].reset_index(drop=True)
    return _in_journal_order(
        journal, events, "funding_time_utc", np.ones(len(events), dtype=bool), "funding event"
    )


def _replayable(journal: Path, frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Replayed journal bars (`_bars_frame`) without those the push rules that read no state
    refuse, nor a second bar of a pair at one hour; each left out with a warning.

    Those rules are `data.candles.check_bars` (a bar must have closed by ``now``, give or take
    `REPLAY_CLOCK_SKEW`), `_check_quote_volume` and `_check_wicks`: a line written by hand, or
    by a version before a rule (a bar dated 2199, a quote volume of 1e307), reached every
    worker as it stood. They judge a bar alone, so every worker and every restart leaves out the
    same lines. The rules that read the store (order, spikes, volume against the pair's median)
    are not re-run: a worker that replays a long journal in one batch judges against another
    store than the pushing worker did, and could refuse a bar that worker serves. A bar without
    volume followed by the same hour's bar is what the push path accepts (the first is left out
    of the store), so only a second bar with volume is a duplicate.
    """
    while len(frame):
        frame["source_row"] = np.arange(1, len(frame) + 1)
        try:
            _check_bar_values(frame, now, REPLAY_CLOCK_SKEW)
            break
        except CandleRejectedError as err:
            _skipped(journal, frame, err.row, err.kind)
            frame = frame.drop(index=frame.index[err.row]).reset_index(drop=True)
    traded = frame["volume"].to_numpy(dtype=np.float64) > 0
    again = np.zeros(len(frame), dtype=bool)
    again[traded] = frame.loc[traded].duplicated(["pair", "open_time_utc"]).to_numpy()
    for twice in np.flatnonzero(again):
        _skipped(journal, frame, int(twice), "duplicate_bar")
    frame = frame.loc[~again].reset_index(drop=True)
    traded = frame["volume"].to_numpy(dtype=np.float64) > 0
    return _in_journal_order(journal, frame, "open_time_utc", traded, "bar")


def _skipped(
    journal: Path, frame: pd.DataFrame, row: int, kind: str, time_col: str = "open_time_utc"
) -> None:
    """Warn of a replayed bar (or funding event: ``time_col``) a push rule refuses."""
    log.warning(
        "crypto journal %s: skipped the %s %s at %s (%s): the push rules refuse it, so the line "
        "was written by hand or by a version before the rule",
        journal,
        frame["pair"].iat[row],
        "bar" if time_col == "open_time_utc" else "funding event",
        frame[time_col].iat[row],
        kind,
    )


def _check_bars_against(
    frame: pd.DataFrame, store: CandleStore, now: pd.Timestamp, skew: pd.Timedelta
) -> None:
    """The push rules after ``unknown_pair``, in order, on bars of served pairs (see
    `CryptoService.push_candles`); the first broken one is raised as `CandleRejectedError`.
    A bar must have closed by ``now``, give or take ``skew``."""
    _check_bar_values(frame, now, skew)
    _check_order(frame, store.last_open_by_pair(), "open_time_utc", "bar")
    _check_price_moves(frame, store.candles)
    _check_volume(frame, store.candles)  # after: a price unit error is named as such


def _check_bar_values(frame: pd.DataFrame, now: pd.Timestamp, skew: pd.Timedelta) -> None:
    """The push rules that judge a bar alone, the store aside: `data.candles.check_bars` (a
    bar must have closed by ``now``, give or take ``skew``), `_check_quote_volume`,
    `_check_wicks`. A journal's replay runs these only (`_replayable`)."""
    try:
        latest_open = now - pd.Timedelta(hours=1) + skew
        check_bars(frame, IntegrityReport(), on_error="raise", latest_open=latest_open)
    except DataError as err:
        row = (err.row or 1) - 1
        message = err.reason
        if err.reason == "timestamp_out_of_range":
            message += (
                f": a pushed bar must have closed by the server's clock ({_iso(now)}, give "
                f"or take {skew.seconds} s) and open after 2009"
            )
        raise CandleRejectedError(row, err.field or "", err.reason, message, err.value) from err
    _check_quote_volume(frame)
    _check_wicks(frame)


def _check_quote_volume(frame: pd.DataFrame) -> None:
    """Every bar's quote volume lies in ``[low x volume, high x volume]``, give or take a factor
    `QUOTE_VOLUME_FACTOR`: it is the sum of price x quantity over the hour's trades, each at a
    price within the bar's range. A quote volume of 1e307 on a volume of 1 made its pair the
    top-ranked tradable signal (costs fell to nothing). One left out is ``close x volume``."""
    volume = frame["volume"].to_numpy(dtype=np.float64)
    quote = frame["quote_volume"].to_numpy(dtype=np.float64)
    low = frame["low"].to_numpy(dtype=np.float64) * volume / QUOTE_VOLUME_FACTOR
    high = frame["high"].to_numpy(dtype=np.float64) * volume * QUOTE_VOLUME_FACTOR
    outside = np.flatnonzero((quote < low) | (quote > high))
    if not len(outside):
        return
    row = int(outside[0])
    given = float(quote[row])
    raise CandleRejectedError(
        row,
        "quote_volume",
        "quote_volume_out_of_range",
        f"quote_volume_out_of_range: {given!r} is not within low x volume and high x volume, "
        f"a factor {QUOTE_VOLUME_FACTOR:g} either way ({low[row]:.6g} to {high[row]:.6g}): a "
        "quote volume is the hour's sum of price x quantity",
        repr(given),
    )


def _check_wicks(frame: pd.DataFrame) -> None:
    """Every bar's high lies at most `WICK_FACTOR` above its open and close, and its low at most
    that factor below them: the spike rules judge opens and closes only, and a high of 1e300
    went through them into the features."""
    top = frame[["open", "close"]].max(axis=1).to_numpy(dtype=np.float64)
    bottom = frame[["open", "close"]].min(axis=1).to_numpy(dtype=np.float64)
    high = frame["high"].to_numpy(dtype=np.float64)
    low = frame["low"].to_numpy(dtype=np.float64)
    for side, far in (("high", high > top * WICK_FACTOR), ("low", low * WICK_FACTOR < bottom)):
        rows = np.flatnonzero(far)
        if len(rows):
            row = int(rows[0])
            given = float(frame[side].to_numpy(dtype=np.float64)[row])
            raise CandleRejectedError(
                row,
                side,
                "wick_outlier",
                f"wick_outlier: {side} {given!r} lies more than a factor {WICK_FACTOR:g} beyond "
                f"the bar's open and close ({bottom[row]!r} to {top[row]!r}): a bad print",
                repr(given),
            )


def _check_volume(frame: pd.DataFrame, stored: pd.DataFrame) -> None:
    """Every bar's quote volume is at most `VOLUME_FACTOR` times the median of its pair's stored
    quote volumes over the last `VOLUME_HISTORY_BARS` bars with volume (judged from 24 of them);
    a pair with less history is not judged. Only the pushed pairs' history is read."""
    pushed = set(frame["pair"])
    medians = {}
    for pair, volumes in stored.loc[stored["pair"].isin(pushed)].groupby("pair", sort=False)[
        "quote_volume"
    ]:
        on = volumes.to_numpy(dtype=np.float64)
        on = on[on > 0][-VOLUME_HISTORY_BARS:]
        if len(on) >= 24:
            medians[pair] = float(np.median(on))
    limit = frame["pair"].map(medians).to_numpy(dtype=np.float64) * VOLUME_FACTOR
    quote = frame["quote_volume"].to_numpy(dtype=np.float64)
    rows = np.flatnonzero(quote > limit)  # NaN limits (no history) compare False
    if len(rows):
        row = int(rows[0])
        raise CandleRejectedError(
            row,
            "quote_volume",
            "volume_outlier",
            f"volume_outlier: quote volume {quote[row]!r} is more than {VOLUME_FACTOR:g} times "
            f"the median of {frame['pair'].iat[row]}'s last {VOLUME_HISTORY_BARS} stored bars "
            f"({limit[row] / VOLUME_FACTOR:.6g}): a unit error or a bad print",
            repr(float(quote[row])),
        )


def _check_price_moves(frame: pd.DataFrame, stored: pd.DataFrame) -> None:
    """Pushed bars pass the loader's bad-print rule (`SPIKE_RULE`), judged with each pair's
    stored tail; call after `_check_order` (pushed bars of a pair are in time order, after the
    stored ones).

    1. ``spike_outlier`` (field ``close``): ``data.candles.drop_spikes`` itself on the pair's
       stored tail followed by the pushed bars would drop the bar: its close spikes and the
       next pushed bar reverts it without opening at it. The last pushed bar has no next bar
       yet, as the last bar of a file, and the rule cannot judge it.
    2. ``price_spike`` (field ``open``): the bar opens away from the previous close (the
       previous pushed bar, else the pair's latest stored bar, leaving out a stored bar that
       rule 1 finds a spike) by more than the rule's threshold, ``max(k_mad x scale,
       min_log_return)`` in log return, ``scale`` the rule's robust hourly volatility of the
       pair's previous ``window_bars`` bars, times ``sqrt(hours)`` across a gap. On a
       continuous feed a bar opens at the previous close, the premise of the rule's
       confirmation clause: in the bundled history (20 pairs, 2021-2023) no open was past 7 %
       of the threshold, while a bar priced 1e-300 (a unit error) opens ~700 log units away.
       A real move shows in the close, which only rule 1 judges.
    """
    rule = SPIKE_RULE
    columns = ["pair", "open_time_utc", "open", "high", "low", "close"]
    stored_rows = stored.groupby("pair", sort=False).indices
    for pair, rows in frame.groupby("pair", sort=False).indices.items():
        pushed_rows = np.asarray(rows, dtype=np.intp)
        before = stored_rows.get(pair, np.array([], dtype=np.int64))[-(rule.window_bars + 2) :]
        tail = stored.iloc[before][columns]
        pushed = frame.iloc[pushed_rows][columns]
        both = pd.concat([tail, pushed], ignore_index=True)
        n_tail = len(tail)
        kept = drop_spikes(both, IntegrityReport(), rule).index.to_numpy()
        spike = np.ones(len(both), dtype=bool)
        spike[kept] = False
        if spike[n_tail:].any():
            j = int(np.flatnonzero(spike[n_tail:])[0])
            row = int(pushed_rows[j])
            close = float(both["close"].to_numpy(dtype=np.float64)[n_tail + j])
            raise CandleRejectedError(
                row,
                "close",
                "spike_outlier",
                f"spike_outlier: {pair} close {close!r} at "
                f"{_iso(both['open_time_utc'].iat[n_tail + j])} spikes and the next bar "
                "reverts it without opening at it (the loader's spike rule, "
                "data.candles.SpikeRule): a bad print",
                repr(close),
            )
        _check_opens(both, spike, n_tail, pushed_rows, rule)


def _check_opens(
    both: pd.DataFrame,
    spike: npt.NDArray[np.bool_],
    n_tail: int,
    pushed_rows: npt.NDArray[np.intp],
    rule: SpikeRule,
) -> None:
    """Rule 2 of `_check_price_moves` on one pair's stored tail and pushed bars (``both``)."""
    close = both["close"].to_numpy(dtype=np.float64)
    opens = both["open"].to_numpy(dtype=np.float64)
    log_close, log_open = np.log(close), np.log(opens)
    times = both["open_time_utc"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    hours = times // HOUR_NS
    _, scale = spike_scale(log_close, times, rule)  # the loader's, from the bars before each
    previous = -1  # position of the previous close that is not a spike
    for i in range(len(both)):
        # unjudged while the scale is unknown (too few bars before), as in drop_spikes
        if i >= n_tail and previous >= 0 and np.isfinite(scale[i]):
            spread = rule.k_mad * float(scale[i]) * math.sqrt(float(hours[i] - hours[previous]))
            limit = max(spread, rule.min_log_return)
            move = float(log_open[i] - log_close[previous])
            if abs(move) > limit:
                row = int(pushed_rows[i - n_tail])
                raise CandleRejectedError(
                    row,
                    "open",
                    "price_spike",
                    f"price_spike: {both['pair'].iat[i]} opens at {float(opens[i])!r}, a log "
                    f"move of {move:+.4g} from the previous close {float(close[previous])!r} "
                    f"at {_iso(both['open_time_utc'].iat[previous])} (limit {limit:.4g}: the "
                    "loader's spike rule); a bar opens where the last one closed",
                    repr(float(opens[i])),
                )
        if not spike[i]:
            previous = i


def _check_not_after(frame: pd.DataFrame, column: str, now: pd.Timestamp) -> None:
    """Every ``column`` time has happened by ``now``: an event from the future would make
    every real one after it ``out_of_order`` (and it is journaled, so it outlives a restart)."""
    times = frame[column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    late = np.flatnonzero(times > now.value)
    if len(late):
        row = int(late[0])
        at = _iso(int(times[row]))
        raise CandleRejectedError(
            row,
            column,
            "timestamp_out_of_range",
            f"timestamp_out_of_range: {at} is after the server's clock ({_iso(now)})",
            at,
        )


def _check_order(
    frame: pd.DataFrame, last_stored: dict[str, pd.Timestamp], column: str, what: str
) -> None:
    """Per pair: strictly increasing ``column`` times, all after the stored latest one.

    The same time again is ``duplicate_<what>``, an earlier one ``out_of_order``.
    """
    times = frame[column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    previous: dict[str, int] = {p: t.value for p, t in last_stored.items()}
    stored = dict(previous)
    for row, (pair, t) in enumerate(zip(frame["pair"], times, strict=True)):
        before = previous.get(pair)
        if before is not None and t <= before:
            is_stored = t <= stored.get(pair, -1)
            where = f"the latest stored {what}" if is_stored else f"an earlier {what} of this push"
            reason = f"duplicate_{what}" if t == before else "out_of_order"
            raise CandleRejectedError(
                row,
                column,
                reason,
                f"{reason}: {pair} {what} at {_iso(int(t))} is not after {where} "
                f"({_iso(int(before))})",
                _iso(int(t)),
            )
        previous[pair] = int(t)


def _iso(when: Any) -> str:
    """A time (or int64 ns since the epoch) as a request writes it: ``2023-07-01T00:00:00Z``
    (push errors printed pandas' ``2023-07-01 00:00:00+00:00``).

    >>> _iso(pd.Timestamp("2023-07-01 08:00:00.5", tz="UTC")), _iso(0)
    ('2023-07-01T08:00:00.500000Z', '1970-01-01T00:00:00Z')
    """
    if isinstance(when, int | np.integer):
        return _iso(pd.Timestamp(int(when), tz="UTC"))
    at = pd.Timestamp(when).tz_convert("UTC")
    return at.isoformat().replace("+00:00", "Z")


@contextlib.contextmanager
def _locked(path: Path | None, *, exclusive: bool) -> Iterator[None]:
    """An advisory ``flock`` on ``path`` across processes (no-op without a path)."""
    if path is None:
        yield
        return
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _journal_records(journal: Path, lines: Sequence[bytes]) -> list[CandleIn | FundingIn]:
    """The bars and funding events of journal ``lines`` (`_journal_line`); a line that is
    neither (a write cut short by a full disk, say) is skipped with a warning naming it, so one
    bad line cannot stop every worker."""
    records: list[CandleIn | FundingIn] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            if line.startswith(_FUNDING_PREFIX):
                records.append(_FundingLine.model_validate_json(line).funding)
            else:
                records.append(CandleIn.model_validate_json(line))
        except ValueError as err:
            log.warning(
                "crypto journal %s: skipped a line that is not a bar or a funding event "
                "(%d bytes, %s)",
                journal,
                len(line),
                str(err).splitlines()[0],
            )
    return records


class _FundingLine(BaseModel):
    """A funding event's journal line, ``{"funding": {...}}`` (a bar's line is the bar)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    funding: FundingIn


_FUNDING_PREFIX = b'{"funding":'


def _record_time(record: CandleIn | FundingIn) -> pd.Timestamp:
    when = record.open_time_utc if isinstance(record, CandleIn) else record.funding_time_utc
    return pd.Timestamp(when).tz_convert("UTC")


def _keep_from(record: CandleIn | FundingIn, window_start: pd.Timestamp) -> pd.Timestamp:
    """The oldest time of ``record``'s kind a compaction keeps."""
    return window_start if isinstance(record, CandleIn) else window_start - FUNDING_MAX_AGE


def _lock_path(journal: Path) -> Path:
    """The lock file of ``journal`` (created empty; never replaced)."""
    lock = journal.with_name(journal.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    lock.touch()
    return lock


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _journal_line(record: CandleIn | FundingIn) -> bytes:
    """One bar, or one funding event wrapped as ``{"funding": ...}``, as a journal line (JSON,
    newline-terminated)."""
    if isinstance(record, FundingIn):
        return _FundingLine(funding=record).model_dump_json().encode() + b"\n"
    return record.model_dump_json().encode() + b"\n"


def _append_journal(path: Path, records: Sequence[CandleIn | FundingIn]) -> int:
    """Append records as JSON lines (flushed to disk); returns the journal's new size.

    A journal whose last line was cut short (a write that failed half-way: a full disk, a
    killed worker) gets a newline first. Appended to the torn line, the first record read as
    part of one bad line, and every other worker skipped it: the push was held by this worker
    only, and lost by it too at the next compaction.

    A write that fails (a full disk) is cut back to the journal's size before it, then raises:
    its complete lines were replayed by every worker and restart although the push was
    answered 500, and the feed's retry was refused as a duplicate.
    """
    payload = b"".join(_journal_line(record) for record in records)
    with path.open("a+b") as handle:
        end = handle.seek(0, os.SEEK_END)
        if end:
            handle.seek(end - 1)
            if handle.read(1) != b"\n":
                payload = b"\n" + payload
        try:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        except BaseException:
            try:
                handle.truncate(end)
                os.fsync(handle.fileno())
            except OSError as exc:  # the lines written stay: replayed as the push's part
                log.error("crypto journal %s: a failed push could not be cut back: %s", path, exc)
            raise
        return handle.tell()


def _champion_key(champions: Mapping[str, LoadedCryptoChampion]) -> str:
    return "|".join(f"{h}:{c.name}:{c.version}" for h, c in sorted(champions.items()))


def _snapshot_id(champions: Mapping[str, LoadedCryptoChampion], store: CandleStore) -> str:
    key = f"{_champion_key(champions)}#{store.content_sha256}"
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _spec_section(spec: Mapping[str, Any], key: str, model: type[_Section]) -> _Section:
    """``spec[key]`` as ``model``, keeping the fields it knows (absent or None: its defaults)."""
    known = set(model.model_fields)
    return model.model_validate({k: v for k, v in (spec.get(key) or {}).items() if k in known})


def _finite(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


__all__ = [
    "HORIZONS",
    "CandleRejectedError",
    "CandleStore",
    "CryptoService",
    "CryptoSettings",
    "CryptoSnapshot",
    "JournalWriteError",
    "UnknownNameError",
    "compute_signal_table",
]
