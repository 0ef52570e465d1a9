"""The champions of a registry behind one call: load, forecast, rank, and swap atomically."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import numbers
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from marketcast.features.football import MARKET_COLUMNS
from marketcast.features.football_state import FeatureState, UnknownFixtureError
from marketcast.models.factory import FOOTBALL_MODEL_CLASSES, load_model
from marketcast.models.gbm import ModelTextError
from marketcast.promotion import superseded_note
from marketcast.registry import Registry
from marketcast.registry.manifest import Manifest
from marketcast.registry.store import RegistryError
from marketcast.serving.explain import LLMExplainer, template_explanation
from marketcast.serving.protocol import (
    KickoffTooEarlyError,
    TeamLeagueMismatchError,
    UnknownLeagueError,
    UnknownTeamError,
)
from marketcast.serving.schemas import (
    BookmakerOdds,
    DoNotTradeRow,
    FixtureIn,
    FixtureOdds,
    ForecastOut,
    MarketForecast,
    ModelRef,
    RankingRow,
    by_edge,
)
from marketcast.serving.watch import (
    Fingerprint,
    champion_fingerprint,
    follow_champions,
    mark_failed,
)
from marketcast.types import MarketKind

log = logging.getLogger(__name__)

VERTICAL = "football"
FEATURE_STATE_FILE = "feature_state.json"
MARKETS = (MarketKind.ONE_X_TWO, MarketKind.OVER_UNDER_25, MarketKind.ASIAN_HANDICAP)
#: Ensemble weight per model: exp(-RELIABILITY_SHARPNESS * (its log loss - the best log loss)).
RELIABILITY_SHARPNESS = 200.0
#: Runtimes a neural model can be served with (:attr:`ServiceSettings.neural_runtime`).
NEURAL_RUNTIMES = ("onnx", "torch")


@dataclass(frozen=True)
class LoadedModel:
    """One registered model version, rebuilt from its artifact, with its manifest."""

    name: str
    version: str
    model: Any
    manifest: Manifest
    state: FeatureState


@dataclass(frozen=True)
class Snapshot:
    """Everything one request reads: never mutated, replaced whole on reload."""

    snapshot_id: str
    champions: dict[str, LoadedModel]
    members: dict[str, list[LoadedModel]]
    loaded_utc: str
    #: per market, the champion pointer's ``promoted_utc`` and ``reason`` (why it is champion)
    pointers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per market, the registry's latest promotion decision (JSON form) when there is one
    decisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per market whose champion could not be loaded: why (the market is not served; it read
    #: as "no champion" to clients)
    unloaded: dict[str, str] = field(default_factory=dict)

    @property
    def leagues(self) -> frozenset[str]:
        champion = self.champions.get(MarketKind.ONE_X_TWO.value)
        return champion.state.leagues if champion else frozenset()

    @property
    def team_leagues(self) -> Mapping[str, str]:
        champion = self.champions.get(MarketKind.ONE_X_TWO.value)
        return champion.state.team_league if champion else {}


@dataclass
class ServiceSettings:
    """How the service routes and judges markets.

    Checked when built (:func:`setting_requirement` holds the rules, which the
    ``MARKETCAST_*`` reader of ``serving.default`` applies too): a value out of range raises
    ``ValueError`` naming the field, instead of silently sending every fixture one way.
    """

    edge_threshold: float = 0.8
    stale_after_days: float = 14.0
    min_bets_for_liquidity: int = 100
    llm: LLMExplainer | None = None
    clock: Any = field(default=lambda: datetime.now(UTC))
    #: How a neural model runs small batches: ``"onnx"`` (onnxruntime, exported at load) or
    #: ``"torch"``. Large batches always run in torch (on a GPU where the model lives there).
    neural_runtime: str = "onnx"

    def __post_init__(self) -> None:
        for name in CHECKED_SETTINGS:
            value = getattr(self, name)
            requirement = setting_requirement(name, value)
            if requirement is not None:
                raise ValueError(f"{name} must be {requirement}, got {value!r}")


#: The :class:`ServiceSettings` fields with a range (:func:`setting_requirement`).
CHECKED_SETTINGS = (
    "edge_threshold",
    "stale_after_days",
    "min_bets_for_liquidity",
    "neural_runtime",
)


def setting_requirement(name: str, value: Any) -> str | None:
    """What the :class:`ServiceSettings` field ``name`` needs when ``value`` misses it, else
    ``None``: the one place these ranges are written down.

    Examples
    --------
    >>> setting_requirement("edge_threshold", 0.9) is None
    True
    >>> setting_requirement("stale_after_days", -5.0)
    'a number of days > 0 (inf: never stale)'
    """
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if name == "edge_threshold":
        if real and 0.0 <= value <= 1.01:  # NaN fails both comparisons
            return None
        return "a number in [0, 1.01] (1.01 sends every fixture to the cloud path)"
    if name == "stale_after_days":
        # inf: never stale (NaN fails the comparison)
        return None if real and value > 0.0 else "a number of days > 0 (inf: never stale)"
    if name == "min_bets_for_liquidity":
        whole = real and math.isfinite(value) and float(value).is_integer()
        return None if whole and value >= 0 else "a whole number of bets >= 0"
    if name == "neural_runtime":
        return None if value in NEURAL_RUNTIMES else f"one of {NEURAL_RUNTIMES}"
    raise KeyError(f"ServiceSettings has no checked field {name!r}")


class ChampionService:
    """Serve the champion per market of a registry, with an edge/cloud router.

    * **edge** (fast path): the 1X2 champion alone. Its confidence is
      ``1 - 5 * TV(p_champion, p_market)``, TV the total-variation distance to the de-margined
      price in the request: a forecast close to the market is routine, one far from it deserves
      the careful path. At or above ``edge_threshold`` (0.8: TV <= 0.04) the edge answers, with
      a band spanning the champion and the market.
    * **cloud** (full path): a reliability-weighted ensemble of every model the champion's run
      registered for the market (weights from their walk-forward log losses on that run's
      test window), a band spanning the members, the market and the blend, the
      Dixon-Coles expected goal difference, and the LLM explanation when one is configured
      (refused for the template when it holds a number the forecast does not; a forecast call
      waits on the LLM ``timeout_s`` in all, not per fixture: see `_LLMCalls`). Its
      ``confidence`` is the same ``1 - 5 * TV`` of the blend it answers with.

    Reloads build a complete new :class:`Snapshot` first and then swap one reference, so a
    request in flight keeps the snapshot it started with and never sees a mix.
    """

    def __init__(self, registry: Registry, settings: ServiceSettings | None = None) -> None:
        self.registry = registry
        self.settings = settings or ServiceSettings()
        self._snapshot: Snapshot | None = None
        self._reload_lock = threading.Lock()
        self._admin_lock = threading.Lock()
        #: the registry's champions as the latest reload read them (the watcher compares)
        self._loaded_fingerprint: Fingerprint | None = None
        self._loaded_cache: dict[tuple[str, str, str], LoadedModel] = {}
        self._swap_listeners: list[Callable[[], object]] = []

    # -- protocol properties -------------------------------------------------------------------
    @property
    def blocking_io(self) -> bool:
        """True when a forecast may wait on the network (the LLM explainer).

        Without it a forecast is ~2 ms of CPU; the app then runs it on the event loop, which on
        one worker beats hopping to a thread pool and fighting over the GIL.
        """
        return self.settings.llm is not None

    @property
    def ready(self) -> bool:
        snap = self._snapshot
        return snap is not None and MarketKind.ONE_X_TWO.value in snap.champions

    @property
    def known_leagues(self) -> frozenset[str]:
        snap = self._snapshot
        return snap.leagues if snap else frozenset()

    @property
    def team_leagues(self) -> Mapping[str, str]:
        snap = self._snapshot
        return snap.team_leagues if snap else {}

    @property
    def snapshot_id(self) -> str:
        snap = self._snapshot
        return snap.snapshot_id if snap else "empty"

    def snapshot(self) -> Snapshot:
        """The current snapshot (raises when nothing is loaded)."""
        snap = self._snapshot
        if snap is None:
            raise LookupError("no champions loaded: run `marketcast run` or reload")
        return snap

    # -- loading -----------------------------------------------------------------------------
    def reload(self) -> dict[str, Any]:
        """Read the champions from the registry and swap them in atomically."""
        with self._reload_lock:
            # read first: a change made while loading is then seen by the next watcher tick;
            # recorded only once the snapshot is in, so a reload that fails is tried again
            fingerprint = self.champion_fingerprint()
            # Versions are immutable (hash-checked when first loaded): reuse what is loaded, so a
            # reload that changes nothing costs only the registry reads.
            previous = self._snapshot
            self._loaded_cache = {
                (market, m.name, m.version): m
                for market, ms in (previous.members.items() if previous else [])
                for m in ms
            } | {
                (market, m.name, m.version): m
                for market, m in (previous.champions.items() if previous else [])
            }
            champions: dict[str, LoadedModel] = {}
            members: dict[str, list[LoadedModel]] = {}
            pointers: dict[str, dict[str, Any]] = {}
            decisions: dict[str, dict[str, Any]] = {}
            unloaded: dict[str, str] = {}
            for market in MARKETS:
                record = None
                try:
                    record = self.registry.champion(VERTICAL, market.value)
                    if record is None:
                        continue
                    champion = self._load(market.value, record.model_name, record.version)
                except Exception as exc:
                    # any exception: a version this installation cannot rebuild (a parameter
                    # another code version wrote, a LightGBM or torch error) is a TypeError or
                    # a library's own error, and it stopped the whole server
                    version = record.version if record is not None else ""
                    champion_text = f"{record.model_name} {version}" if record else "champion"
                    if market is MarketKind.ONE_X_TWO:
                        # nothing can be served without it; one line, as `serve` prints it
                        if isinstance(exc, RegistryError | ValueError | LookupError | OSError):
                            raise
                        raise UnservableVersionError(
                            f"{VERTICAL}/{market.value} {champion_text}", exc
                        ) from exc
                    # a damaged secondary market must not block the others (nor make a 1X2
                    # promotion that already moved its pointer answer "failed"); recorded as
                    # not loaded, so the watcher tries it again (recorded as loaded, a moment's
                    # outage kept the market out until a restart)
                    log.warning(
                        "%s/%s left out of this snapshot%s: %s",
                        VERTICAL,
                        market.value,
                        f" ({champion_text})" if record is not None else "",
                        exc.reason if isinstance(exc, UnservableVersionError) else _one_line(exc),
                    )
                    unloaded[market.value] = f"its {champion_text} could not be loaded"
                    fingerprint = mark_failed(fingerprint, market.value, version)
                    continue
                champions[market.value] = champion
                pointers[market.value] = record.model_dump(
                    mode="json", include={"promoted_utc", "reason"}
                )
                # what the previous snapshot read beside this same champion, kept when the
                # registry cannot be read again now
                kept = previous if _serves(previous, market.value, champion) else None
                decision = self._latest_decision(market.value, kept)
                if decision is not None:
                    decisions[market.value] = decision
                members[market.value], left_out = self._members(market.value, champion, kept)
                for name, version in left_out:
                    # retried by the watcher, as a failed market is: recorded as loaded, a
                    # moment's outage kept the member out of the blend until the champion
                    # changed (and, with several workers, until each was restarted)
                    fingerprint = mark_failed(fingerprint, f"{market.value} member {name}", version)
            key = "|".join(f"{m}:{c.name}:{c.version}" for m, c in sorted(champions.items()))
            member_key = "|".join(
                f"{m}:{x.name}:{x.version}" for m, ms in sorted(members.items()) for x in ms
            )
            content = hashlib.sha256((key + "#" + member_key).encode()).hexdigest()[:12]
            snapshot_id = _next_snapshot_id(previous.snapshot_id if previous else None, content)
            self._snapshot = Snapshot(
                snapshot_id=snapshot_id,
                champions=champions,
                members=members,
                loaded_utc=self.settings.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                pointers=pointers,
                decisions=decisions,
                unloaded=unloaded,
            )
            self._loaded_fingerprint = fingerprint
        log.info("loaded champions %s (snapshot %s)", key, snapshot_id)
        if previous is None or snapshot_id != previous.snapshot_id:
            self._swapped()
        return {
            "snapshot_id": snapshot_id,
            "champions": {m: {"name": c.name, "version": c.version} for m, c in champions.items()},
        }

    def on_swap(self, listener: Callable[[], object]) -> None:
        """Call ``listener`` after each reload that swaps in a new snapshot (a new
        ``snapshot_id``), whoever runs it: an admin call, the registry watcher, Python.

        The app drops its forecast cache's dead entries so (``TTLCache.prune``): a watcher's
        swap left them to age out. A listener's error is logged, never the reload's.
        """
        self._swap_listeners.append(listener)

    def _swapped(self) -> None:
        for listener in list(self._swap_listeners):
            try:
                listener()
            except Exception:
                log.exception("a snapshot swap listener failed")

    def _latest_decision(self, market: str, kept: Snapshot | None) -> dict[str, Any] | None:
        """The market's latest promotion decision (JSON form), or ``None`` before any.

        A decision is what ``/v1/models`` reports, never a reason to fail a reload: when the
        registry cannot list them (a decisions folder it cannot read, a store's error; an
        unreadable file is skipped by the registry itself), the one ``kept`` served (the previous
        snapshot, when it served the same champion) stays, else none, with one warning. The
        error escaped the reload before: ``serve`` could not start, and a running worker's
        watcher failed every reload, so a new 1X2 champion was never served.
        """
        try:
            decision = self.registry.latest_decision(VERTICAL, market)
        except Exception as exc:
            previous = kept.decisions.get(market) if kept is not None else None
            log.warning(
                "%s/%s latest promotion decision not read (%s): %s",
                VERTICAL,
                market,
                "the previous one kept" if previous is not None else "none reported",
                _one_line(exc),
            )
            return previous
        return decision.model_dump(mode="json") if decision is not None else None

    def _members(
        self, market: str, champion: LoadedModel, kept: Snapshot | None
    ) -> tuple[list[LoadedModel], list[tuple[str, str]]]:
        """The cloud blend's members (`_run_versions`), each loaded or left out (`_load_member`),
        and the ``(name, version)`` of those an error left out (``("*", "")`` when the search
        itself failed).

        When the registry cannot be searched for them (a model folder it cannot list), the
        members ``kept`` served beside this champion stay, else the champion alone, with one
        warning; the error escaped the reload before, as `_latest_decision`'s did.
        """
        try:
            run_versions = self._run_versions(market, champion)
        except Exception as exc:
            previous = kept.members.get(market) if kept is not None else None
            log.warning(
                "%s/%s ensemble members not searched (%s): %s",
                VERTICAL,
                market,
                "the previous ones kept" if previous else "the champion alone",
                _one_line(exc),
            )
            return (list(previous) if previous else [champion]), [("*", "")]
        members: list[LoadedModel] = []
        left_out: list[tuple[str, str]] = []
        for name, version in run_versions:
            member = champion if name == champion.name else self._load_member(market, name, version)
            if member is None:
                left_out.append((name, version))
            else:
                members.append(member)
        return members, left_out

    def _run_versions(self, market: str, champion: LoadedModel) -> list[tuple[str, str]]:
        """The cloud blend's members: each model's version from the champion's own run.

        Their log losses, the blend's weights, are then scores on one test window, and every
        member knows the champion's leagues and teams. The latest version of each model was
        used before: a one-league experiment run (which leaves a six-league champion where it
        is) put models that had never seen the other leagues' teams into their forecasts, and
        a rollback would blend the newer run it rolled back from. A model the run did not
        registered is left out.
        """
        run_id = champion.manifest.run_id
        out = []
        for name in FOOTBALL_MODEL_CLASSES:
            if name == champion.name:
                out.append((name, champion.version))
                continue
            found = self.registry.version_of_run(
                VERTICAL, market, name, run_id, near=champion.version
            )
            if found is not None:
                out.append((name, found))
        return out

    def _load_member(self, market: str, name: str, version: str) -> LoadedModel | None:
        """An ensemble member, or ``None`` with a warning when its artifact cannot be loaded.

        Only the champion must load: one damaged challenger would otherwise keep a server from
        starting (the cloud path then blends the members that did load). Any exception leaves
        it out, not only the registry's and the loaders' own: a version this installation
        cannot rebuild fails with a ``TypeError``, a LightGBM or a torch error.
        """
        try:
            return self._load(market, name, version)
        except Exception as exc:
            log.warning(
                "ensemble member %s/%s/%s %s left out: %s",
                VERTICAL,
                market,
                name,
                version,
                _one_line(exc),
            )
            return None

    def _load(self, market: str, name: str, version: str) -> LoadedModel:
        cached = self._loaded_cache.get((market, name, version))
        if cached is not None:
            return cached
        loaded = load_servable(self.registry, market, name, version)
        if self.settings.neural_runtime == "onnx" and hasattr(loaded.model, "use_onnx"):
            _use_onnx(loaded.model, f"{VERTICAL}/{market}/{name} {version}")
        return loaded

    # -- forecasting ---------------------------------------------------------------------------
    def forecast(self, fixtures: Sequence[FixtureIn]) -> list[ForecastOut]:
        """Forecast every fixture from ONE snapshot; routed edge or cloud per fixture.

        Raises
        ------
        ValueError
            For an empty list (the batch route refuses one too).
        UnknownLeagueError
            For the first fixture of a league the champion was not trained on, checked over
            the whole list first, as the HTTP app does.
        TeamLeagueMismatchError
            For the first fixture with a team that last played in another country's league
            (E0 v a SP1 team; E1 to E0 is a promotion and is answered), checked next over the
            whole list, as the HTTP app does.
        UnknownTeamError, KickoffTooEarlyError
            For the earliest fixture with an unknown team or a kick-off inside the data.
        LookupError
            When no 1X2 champion is loaded (saying why: no champion, or no registry folder).
        """
        if not fixtures:
            raise ValueError("no fixtures to forecast: give at least one")
        snap = self.snapshot()
        champion = snap.champions.get(MarketKind.ONE_X_TWO.value)
        if champion is None:
            raise LookupError(no_champion_reason(self.registry))
        UnknownLeagueError.check(fixtures, champion.state.leagues)
        TeamLeagueMismatchError.check(fixtures, champion.state.team_league)
        raw = [_fixture_dict(f) for f in fixtures]
        too_early = _first_too_early(fixtures, champion.state.as_of_utc)
        try:  # the error reported is the one at the earliest position
            rows = champion.state.fixture_rows(raw if too_early is None else raw[: too_early.index])
        except UnknownFixtureError as exc:
            raise UnknownTeamError(
                str(exc), index=exc.index, side=exc.field, team=exc.value
            ) from exc
        if too_early is not None:
            raise too_early
        features = RequestFeatures(champion.state, rows)
        market_p = np.array(
            [[row[c] for c in MARKET_COLUMNS[MarketKind.ONE_X_TWO]] for row in rows], dtype=float
        )
        p_champion = _predict(champion, features, MarketKind.ONE_X_TWO)
        confidence = edge_confidence(p_champion, market_p)
        edge = confidence >= self.settings.edge_threshold
        cloud_rows = np.flatnonzero(~edge)
        ensemble = band_lo = band_hi = egd_cloud = None
        if len(cloud_rows):
            sub = features.subset(cloud_rows.tolist())
            ensemble, band_lo, band_hi = self._ensemble(snap, sub, market_p[cloud_rows])
            # a cloud answer's confidence is of the blend it gives: the champion's routed it
            # here, but it was reported as this forecast's (1.0 for a market champion the
            # ensemble moved 0.008 TV away)
            confidence[cloud_rows] = edge_confidence(ensemble, market_p[cloud_rows])
            egd_cloud = self._expected_goal_difference(snap, sub)
        secondary, not_served = self._secondary_markets(snap, champion, features, fixtures, raw)

        out = []
        cloud_pos = {int(row): k for k, row in enumerate(cloud_rows)}
        llm = _LLMCalls(self.settings.llm) if self.settings.llm is not None else None
        for i, fixture in enumerate(fixtures):
            if edge[i]:
                p = p_champion[i]
                lo = np.minimum(p, market_p[i])
                hi = np.maximum(p, market_p[i])
                ref = ModelRef(name=champion.name, version=champion.version)
                egd = float(rows[i]["pi_expected_gd"])
                path = "edge"
            else:
                k = cloud_pos[i]
                assert ensemble is not None
                assert band_lo is not None
                assert band_hi is not None
                p, lo, hi = ensemble[k], band_lo[k], band_hi[k]
                ref = ModelRef(name="ensemble", version=snap.snapshot_id)
                egd = float(egd_cloud[k]) if egd_cloud is not None else float("nan")
                path = "cloud"
            probabilities = dict(zip(("home", "draw", "away"), map(float, p), strict=True))
            market = dict(zip(("home", "draw", "away"), map(float, market_p[i]), strict=True))
            text = template_explanation(
                fixture.home, fixture.away, probabilities, market, rows[i], model_name=ref.name
            )
            if path == "cloud" and llm is not None:
                text = llm.explain(
                    text,
                    {
                        "home": fixture.home,
                        "away": fixture.away,
                        "probabilities": probabilities,
                        "market": market,  # each outcome's, so its price may be cited
                    },
                )
            out.append(
                ForecastOut(
                    probabilities=probabilities,
                    band={
                        o: (float(lo[j]), float(hi[j]))
                        for j, o in enumerate(("home", "draw", "away"))
                    },
                    expected_goal_difference=egd if math.isfinite(egd) else None,
                    logits={
                        o: float(np.log(max(p[j], 1e-12)))
                        for j, o in enumerate(("home", "draw", "away"))
                    },
                    explanation=text,
                    model=ref,
                    path=path,
                    confidence=float(confidence[i]),
                    markets=secondary[i],
                    markets_not_served=not_served[i],
                    data_timestamp=champion.state.as_of_utc,
                )
            )
        if llm is not None and llm.n_unasked:
            # one line a forecast, as a failed call is: not one per fixture left unasked
            log.warning(
                "LLM time of this forecast (%g s) spent: %d of its cloud fixtures were given "
                "the template without a call",
                llm.budget_s,
                llm.n_unasked,
            )
        return out

    def _ensemble(
        self, snap: Snapshot, features: RequestFeatures, market_p: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        members = snap.members.get(MarketKind.ONE_X_TWO.value) or [
            snap.champions[MarketKind.ONE_X_TWO.value]
        ]
        losses = np.array([m.manifest.scores.get("log_loss", np.nan) for m in members])
        probs = np.stack([_predict(m, features, MarketKind.ONE_X_TWO) for m in members])
        answered = np.isfinite(probs).all(axis=2)
        if not answered.any(axis=0).all():  # a server fault, not the request's: no 422
            raise RuntimeError(
                f"no 1X2 ensemble member ({', '.join(m.name for m in members)}) gave finite "
                f"probabilities for {int((~answered.any(axis=0)).sum())} cloud fixture(s)"
            )
        for member, rows in zip(members, answered, strict=True):
            if not rows.all():
                log.warning(
                    "%s/1x2/%s %s gave non-finite probabilities for %d of %d cloud fixtures: "
                    "blended without it there",
                    VERTICAL,
                    member.name,
                    member.version,
                    int((~rows).sum()),
                    rows.size,
                )
        blend = reliability_blend(probs, losses)
        # a member left out of a row stands there as the blend, outside nobody's band
        probs = np.where(answered[..., None], probs, blend[None])
        # the blend itself too: a geometric mean renormalised lifts the outcome its members
        # agree on above all of them when they disagree on the others (both 0.20 on the draw,
        # 0.7/0.1 and 0.3/0.5 on home/away: a draw of 0.227), and a band that left the answer
        # outside it described the members, not the forecast
        everyone = np.concatenate([probs, market_p[None], blend[None]], axis=0)
        return blend, everyone.min(axis=0), everyone.max(axis=0)

    def _expected_goal_difference(
        self, snap: Snapshot, features: RequestFeatures
    ) -> np.ndarray | None:
        # The request's feature rows, as the ensemble's members read them: building a feature
        # frame (once per request, or a second one from this member's state) cost 0.7-1.3 ms of
        # a 3.6-5 ms cloud forecast.
        for member in snap.members.get(MarketKind.ONE_X_TWO.value, []):
            if hasattr(member.model, "expected_goals"):
                goals = member.model.expected_goals(features.rows)
                return np.asarray(goals[:, 0] - goals[:, 1], dtype=float)
        return None

    def _secondary_markets(
        self,
        snap: Snapshot,
        one_x_two: LoadedModel,
        features: RequestFeatures,
        fixtures: Sequence[FixtureIn],
        raw: list[dict[str, Any]],
    ) -> tuple[list[dict[str, MarketForecast]], list[dict[str, str]]]:
        """Each fixture's over/under and handicap forecasts, for the markets its odds quote; and
        each quoted market left out, with the reason (it was left out without a word)."""
        out: list[dict[str, MarketForecast]] = [{} for _ in raw]
        not_served: list[dict[str, str]] = [{} for _ in raw]
        for market, quoted in (
            (MarketKind.OVER_UNDER_25, "ou25"),
            (MarketKind.ASIAN_HANDICAP, "ah"),
        ):
            champion = snap.champions.get(market.value)
            rows = [i for i, f in enumerate(raw) if f["odds"].get(quoted)]
            if champion is None:
                why = snap.unloaded.get(market.value, "no champion for the market")
                for i in rows:
                    not_served[i][market.value] = why
                continue
            if not rows:
                continue
            if champion.manifest.run_id == one_x_two.manifest.run_id:  # one run, one state
                sub = features if len(rows) == len(raw) else features.subset(rows)
            else:
                sub, rows, skipped = _own_features(champion.state, fixtures, raw, rows)
                for i, why in skipped.items():
                    not_served[i][market.value] = (
                        f"its champion ({champion.name} {champion.version}) is of another run "
                        f"than the 1X2 champion's, and {why}"
                    )
                if not rows:
                    continue
            p = _predict(champion, sub, market)
            ref = ModelRef(name=champion.name, version=champion.version)
            names = ("over", "under") if market is MarketKind.OVER_UNDER_25 else ("home", "away")
            for k, i in enumerate(rows):
                line = 2.5 if market is MarketKind.OVER_UNDER_25 else float(raw[i]["odds"]["ah"][0])
                out[i][market.value] = MarketForecast(
                    probabilities={n: float(p[k, j]) for j, n in enumerate(names)},
                    line=line,
                    model=ref,
                )
        return out, not_served

    # -- tables ------------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        """Champion per market with its manifest summary, why it is champion (``promoted_utc``,
        ``promotion_reason``: the registry pointer's) and the market's latest promotion decision
        (``last_decision``: who challenged, p, and how many matches a gain that was not
        significant would need; ``None`` before any)."""
        snap = self.snapshot()
        rows = []
        for market, loaded in sorted(snap.champions.items()):
            m = loaded.manifest
            rows.append(
                {
                    "vertical": VERTICAL,
                    "market": market,
                    "name": loaded.name,
                    "version": loaded.version,
                    "run_id": m.run_id,
                    "git_sha": m.git_sha,
                    "created_utc": m.created_utc.isoformat(),
                    "training_window": m.training_window.model_dump(mode="json"),
                    "scores": m.scores,
                    "backtest": {k: v for k, v in m.backtest.items() if not isinstance(v, dict)},
                    "data_sha256": m.data_sha256,
                    "features_sha256": m.features_sha256,
                    "members": [
                        {"name": x.name, "version": x.version} for x in snap.members.get(market, [])
                    ],
                    "promoted_utc": snap.pointers.get(market, {}).get("promoted_utc"),
                    "promotion_reason": snap.pointers.get(market, {}).get("reason"),
                    "last_decision": snap.decisions.get(market),
                    "last_decision_superseded": _superseded(snap, market, loaded),
                }
            )
        return rows

    def rankings(self) -> list[RankingRow]:
        """Markets ranked by edge after costs (walk-forward ROI at real prices), then confidence."""
        rows = []
        for market, loaded in self.snapshot().champions.items():
            bt = loaded.manifest.backtest
            roi = _float(bt.get("roi"))
            ci = bt.get("roi_ci") or [None, None]
            confidence = _probability_positive(roi, _float(ci[0]), _float(ci[1]))
            rows.append(
                RankingRow(
                    vertical=VERTICAL,
                    market=market,
                    champion=loaded.name,
                    version=loaded.version,
                    edge_after_costs=roi,
                    confidence=confidence,
                    capacity_bets=int(bt["n_bets"]) if bt.get("n_bets") is not None else None,
                    roi=roi,
                    clv=_float(bt.get("clv")),
                    log_loss_ratio_to_closing=_float(
                        loaded.manifest.scores.get("ratio_to_closing")
                    ),
                )
            )
        return by_edge(rows)

    def do_not_trade(self) -> list[DoNotTradeRow]:
        """Markets failing a staleness, liquidity or cost check, with the reason."""
        snap = self.snapshot()
        now = self.settings.clock()
        rows = []
        for market in MARKETS:
            loaded = snap.champions.get(market.value)
            if loaded is None:
                rows.append(
                    DoNotTradeRow(
                        vertical=VERTICAL,
                        market=market.value,
                        reason=snap.unloaded.get(market.value, "no champion registered"),
                        check="no_champion",
                    )
                )
                continue
            as_of = pd.Timestamp(loaded.state.as_of_utc).to_pydatetime()
            age_days = (now - as_of).total_seconds() / 86400.0
            if age_days > self.settings.stale_after_days:
                rows.append(
                    DoNotTradeRow(
                        vertical=VERTICAL,
                        market=market.value,
                        check="staleness",
                        reason=f"latest data is {age_days:.0f} days old (limit "
                        f"{self.settings.stale_after_days:.0f}): pull newer results and rerun",
                    )
                )
            bt = loaded.manifest.backtest
            n_bets = int(bt.get("n_bets") or 0)
            if n_bets < self.settings.min_bets_for_liquidity:
                rows.append(
                    DoNotTradeRow(
                        vertical=VERTICAL,
                        market=market.value,
                        check="liquidity",
                        reason=f"only {n_bets} walk-forward bets cleared the minimum edge (< "
                        f"{self.settings.min_bets_for_liquidity}): too thin to trust",
                    )
                )
            roi = _float(bt.get("roi"))
            ci = bt.get("roi_ci") or [None, None]
            low = _float(ci[0])
            if roi is None or roi <= 0 or (low is not None and low <= 0):
                rows.append(
                    DoNotTradeRow(
                        vertical=VERTICAL,
                        market=market.value,
                        check="cost",
                        reason=f"walk-forward ROI after the bookmaker margin {_pct(roi)} with 95% "
                        f"interval from {_pct(low)}: no edge survives costs",
                    )
                )
        return rows

    # -- following the registry ----------------------------------------------------------------
    def champion_fingerprint(self) -> Fingerprint:
        """The champion (name, version) per market as the registry holds it now."""
        return champion_fingerprint(self.registry, VERTICAL, (m.value for m in MARKETS))

    def follow_registry(self, poll_s: float = 1.0) -> threading.Event:
        """Reload whenever the registry's champions change (a promotion made by another worker
        or by ``marketcast registry promote``); returns the event that stops the watcher thread.
        """
        return follow_champions(
            "registry-watch",
            poll_s,
            self.champion_fingerprint,
            self.reload,
            loaded=lambda: self._loaded_fingerprint,
        )

    # -- admin ---------------------------------------------------------------------------------
    def promote(self, market: str, model_name: str, version: str) -> dict[str, Any]:
        """Make a registered version champion, then reload.

        The version is loaded first, exactly as a reload would load it: a version that fails
        (a file that no longer matches its manifest, no feature state) leaves the champion
        pointer where it was, instead of moving it to a model no server could start with.
        Promotions and rollbacks of this service run one at a time (two at once could each read
        the pointer before the other wrote it, and one history entry was lost).
        """
        with self._admin_lock:
            self._load_to_serve(market, model_name, version)
            self.registry.set_champion(VERTICAL, market, model_name, version, "promoted via API")
            return self.reload()

    def rollback(self, market: str) -> dict[str, Any]:
        """Restore the previous champion of ``market``, then reload (checked like `promote`)."""
        if market not in {m.value for m in MARKETS}:
            raise LookupError(
                f"unknown market {market!r}; football has {[m.value for m in MARKETS]}"
            )
        with self._admin_lock:
            history = self.registry.champion_history(VERTICAL, market)
            if not history:
                raise LookupError(f"nothing to roll back to: {market} has no earlier champion")
            restore = (history[-1].model_name, history[-1].version)
            self._load_to_serve(market, *restore)
            # compare-and-set: another process's rollback or promotion in between would have
            # this one restore a version other than the one just checked
            self.registry.rollback(VERTICAL, market, expected=restore)
            return self.reload()

    def _load_to_serve(self, market: str, name: str, version: str) -> LoadedModel:
        """`_load` for promote and rollback: a failure the app maps (``RegistryError``,
        ``ValueError``, ``LookupError``, ``OSError``) as it is, any other (a damaged booster's
        ``ModelTextError``, a torch error) a ``RegistryError`` naming the version, which
        the app answers with a 409 like a version failing its integrity check (it was a 500)."""
        with unservable_as_registry_error(VERTICAL, market, name, version):
            return self._load(market, name, version)


@contextmanager
def unservable_as_registry_error(
    vertical: str, market: str, name: str, version: str
) -> Iterator[None]:
    """Loading a version to serve it (the server's promote and rollback, and `marketcast
    registry promote`'s check): ``RegistryError``, ``ValueError``, ``LookupError`` and
    ``OSError`` pass as they are (each has its own message); a damaged booster's
    ``ModelTextError`` (a ``ValueError``, but the stored version's fault) and any other error (a
    torch error) become a ``RegistryError`` naming the version."""
    try:
        yield
    except ModelTextError as exc:
        raise _unservable(vertical, market, name, version, exc) from exc
    except (RegistryError, ValueError, LookupError, OSError):
        raise
    except Exception as exc:
        raise _unservable(vertical, market, name, version, exc) from exc


def _unservable(
    vertical: str, market: str, name: str, version: str, exc: Exception
) -> RegistryError:
    return RegistryError(
        f"{vertical}/{market}/{name} {version} cannot be served: "
        f"{type(exc).__name__}: {exc}; the champion is unchanged"
    )


class UnservableVersionError(RegistryError):
    """A stored version this installation cannot rebuild; ``reason`` is the error, one line."""

    def __init__(self, what: str, cause: Exception) -> None:
        self.reason = _one_line(cause)
        super().__init__(f"{what} cannot be served: {self.reason}")


def load_servable(registry: Registry, market: str, name: str, version: str) -> LoadedModel:
    """A football version loaded as a server loads it (files checked against the manifest, the
    feature state, the model); the check `marketcast registry promote` and the admin promote
    run before moving a pointer, so no champion is one a server cannot start with.

    Raises
    ------
    LookupError
        Without a feature state (a version registered by hand, without the run's).
    ArtifactIntegrityError, ModelNotFoundError, ValueError
        From the registry and the model loaders.
    UnservableVersionError
        For a feature state that cannot be read (damaged JSON: its parser's message named
        nothing), and any other error rebuilding the model (a ``KeyError`` or ``TypeError``
        from a version another code version wrote), naming the version.
    """
    files = registry.load_files(VERTICAL, market, name, version)
    if FEATURE_STATE_FILE not in files:
        raise LookupError(
            f"{VERTICAL}/{market}/{name} {version} has no {FEATURE_STATE_FILE}: no server could "
            "forecast with it"
        )
    try:
        state = FeatureState.from_json(files.pop(FEATURE_STATE_FILE))
    except Exception as exc:  # "Expecting value: line 1 column 1" named no file, no version
        where = f"{VERTICAL}/{market} {name} {version} ({FEATURE_STATE_FILE})"
        raise UnservableVersionError(where, exc) from exc
    try:
        model = load_model(name, files)
    except (ValueError, OSError):  # the loaders' own errors, each naming what is wrong
        raise
    except Exception as exc:
        # the stored version's content (a key another code version did not write, a
        # parameter it did): a KeyError read as "unknown version" (404) with the bare key
        # name for message, and `serve` stopped on it
        raise UnservableVersionError(f"{VERTICAL}/{market} {name} {version}", exc) from exc
    manifest = registry.manifest(VERTICAL, market, name, version)
    return LoadedModel(name, version, model, manifest, state)


def no_champion_reason(registry: Registry) -> str:
    """Why ``registry`` serves no football forecast: a missing folder, or no 1X2 champion."""
    try:
        registry.require_root()
    except RegistryError as exc:
        return f"{exc}: check the path, or create it with `marketcast run`"
    return f"registry {registry.root!r} has no football 1x2 champion: run `marketcast run`"


def edge_confidence(p_champion: np.ndarray, market_p: np.ndarray) -> np.ndarray:
    """The edge path's confidence per row: ``1 - 5 * TV(champion, market)``, clipped to [0, 1].

    A forecast within 0.04 total variation of the de-margined price (confidence >= 0.8) is
    routine; one further from it deserves the careful path.
    """
    tv = 0.5 * np.abs(np.asarray(p_champion) - np.asarray(market_p)).sum(axis=1)
    return np.asarray(np.clip(1.0 - 5.0 * tv, 0.0, 1.0))


def reliability_blend(probs: np.ndarray, losses: np.ndarray) -> np.ndarray:
    """The cloud path's ensemble: a weighted geometric mean of members' probabilities.

    ``probs`` has shape (members, rows, outcomes), ``losses`` each member's walk-forward log
    loss; weights are ``exp(-RELIABILITY_SHARPNESS * (loss - best loss))`` (a member without a
    score counts as the worst one).

    A member whose probabilities on a row are not all finite is left out of that row's blend
    (the others' weights renormalised), so one member's NaN does not turn the answer into
    NaN; a row no member answered raises ``ValueError``.
    """
    probs = np.asarray(probs, dtype=float)
    losses = np.asarray(losses, dtype=float)
    losses = np.where(
        np.isfinite(losses), losses, np.nanmax(losses) if np.isfinite(losses).any() else 1.0
    )
    answered = np.isfinite(probs).all(axis=2)  # (members, rows)
    if not answered.any(axis=0).all():
        row = int(np.flatnonzero(~answered.any(axis=0))[0])
        raise ValueError(f"no ensemble member gave finite probabilities for row {row}")
    weights = np.exp(-RELIABILITY_SHARPNESS * (losses - losses.min()))[:, None] * answered
    weights /= weights.sum(axis=0)
    log_p = np.log(np.clip(np.where(answered[..., None], probs, 1.0), 1e-12, 1.0))
    blend = np.exp(np.einsum("mr,mro->ro", weights, log_p))
    return np.asarray(blend / blend.sum(axis=1, keepdims=True))


class RequestFeatures:
    """The feature rows of one request; their DataFrame is built only if a model needs it.

    Models with ``predict_market_rows`` (:class:`marketcast.models.base.RowPredictor`) read the
    rows directly: the one-row DataFrame costs more than the market model's whole forecast.
    """

    def __init__(self, state: FeatureState, rows: list[dict[str, Any]]) -> None:
        self.state = state
        self.rows = rows

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a feature frame with the training columns (built once, on first use)."""
        return self.state.frame(self.rows)

    def subset(self, positions: list[int]) -> RequestFeatures:
        """The features of the fixtures at ``positions`` (in that order)."""
        return RequestFeatures(self.state, [self.rows[i] for i in positions])


class _LLMCalls:
    """The LLM calls of one forecast: ``timeout_s`` in all from the first, not ``timeout_s`` each.

    Called one fixture after another, a batch of 256 cloud fixtures against an endpoint that
    never answers waited 256 x 2 s (8.5 minutes), holding a worker. The first call gets the
    explainer's whole ``timeout_s``, each later one what is left of it, and once none is left
    the remaining fixtures get the template without a call (counted in ``n_unasked``).
    """

    def __init__(self, llm: LLMExplainer) -> None:
        self.llm = llm
        self.started: float | None = None  # time.monotonic() of the first call
        self.n_unasked = 0

    @property
    def budget_s(self) -> float:
        return float(self.llm.timeout_s)

    def explain(self, rationale: str, facts: Mapping[str, Any]) -> str:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        left_s = self.started + self.budget_s - now
        if left_s <= 0:
            self.n_unasked += 1
            return rationale
        return self.llm.explain(rationale, facts, timeout_s=left_s)


def _use_onnx(model: Any, label: str) -> None:
    """Switch ``model`` to onnxruntime for small batches; on failure it keeps answering in torch.

    An export onnxruntime cannot load is not worth refusing to serve: torch gives the same
    forecasts, ~6x slower for one fixture.
    """
    try:
        model.use_onnx()
    except Exception as exc:  # any failure leaves the torch path, which works
        log.warning("%s stays on torch, onnxruntime failed: %s", label, exc)


def _superseded(snap: Snapshot, market: str, champion: LoadedModel) -> str | None:
    """``/v1/models``' ``last_decision_superseded``: why the market's latest decision no longer
    describes the champion served (:func:`superseded_note`), or None."""
    decision = snap.decisions.get(market)
    if decision is None:
        return None
    reason = snap.pointers.get(market, {}).get("reason")
    return superseded_note(decision, champion.name, champion.version, reason)


def _one_line(exc: BaseException, max_chars: int = 400) -> str:
    """``exc`` as one log line: its lines joined by ``"; "`` (a torch error runs over many)
    and cut at ``max_chars``, after its type unless it is a registry or loader error, whose
    text says it all (a bare ``TypeError`` text does not say it is one).

    Examples
    --------
    >>> _one_line(TypeError("__init__() got an unexpected keyword argument 'x'\\n  at load"))
    "TypeError: __init__() got an unexpected keyword argument 'x'; at load"
    >>> _one_line(RegistryError("champion.json is damaged"))
    'champion.json is damaged'
    """
    text = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if not text:
        text = type(exc).__name__
    elif isinstance(exc, KeyError) or not isinstance(
        exc, RegistryError | ValueError | LookupError | OSError
    ):  # a KeyError's text is the bare key ('base_rates'), which says nothing alone
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= max_chars else text[: max_chars - 3] + "..."


def _serves(snapshot: Snapshot | None, market: str, champion: LoadedModel) -> bool:
    """True when ``snapshot`` serves ``champion`` (its name and version) for ``market``."""
    served = snapshot.champions.get(market) if snapshot is not None else None
    return served is not None and (served.name, served.version) == (champion.name, champion.version)


def _next_snapshot_id(previous: str | None, content: str) -> str:
    """``<content hash>-<generation>``: a reload that changes nothing keeps the id, and every
    change takes the next generation, so a promotion followed by a rollback (A, B, A) gives three
    ids, never A's again: an answer computed from B can never be cached under A's key.

    >>> _next_snapshot_id(None, "aaa"), _next_snapshot_id("aaa-1", "aaa")
    ('aaa-1', 'aaa-1')
    >>> _next_snapshot_id("bbb-2", "aaa")
    'aaa-3'
    """
    if previous is None:
        return f"{content}-1"
    previous_content, _, generation = previous.rpartition("-")
    return previous if previous_content == content else f"{content}-{int(generation) + 1}"


def _predict(loaded: LoadedModel, features: RequestFeatures, market: MarketKind) -> np.ndarray:
    fast = getattr(loaded.model, "predict_market_rows", None)
    if fast is not None:
        p = fast(features.rows, market)
    else:
        p = loaded.model.predict_market_proba(features.frame, market)
    if p is None:
        raise LookupError(f"{loaded.name} does not price {market.value}")
    return np.asarray(p, dtype=float)


@functools.lru_cache(maxsize=64)
def _utc_instant(text: str) -> datetime:
    """An ISO time as an aware datetime (UTC when naive), parsed once per distinct text: the
    per-request check compares plain datetimes instead of building timestamps."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _own_features(
    state: FeatureState,
    fixtures: Sequence[FixtureIn],
    raw: list[dict[str, Any]],
    positions: list[int],
) -> tuple[RequestFeatures, list[int], dict[int, str]]:
    """The rows of a champion of another run than the 1X2 champion's, from its own run's feature
    state, and the fixtures at ``positions`` it may answer.

    After a rollback of one market, or a run that left one champion as it was, the markets'
    champions come from different runs. Each reads the features its own run computed (its
    state's ratings, its columns), and answers no fixture that kicks off before its own data
    ends (its ratings already hold that match) or whose league or teams its state lacks: the
    1X2 answer stands, and that market is left out of the fixture's ``markets``; the third
    value says why, by position.
    """
    as_of = _utc_instant(state.as_of_utc)
    kept, rows = [], []
    skipped: dict[int, str] = {}
    for i in positions:
        if fixtures[i].kickoff <= as_of:
            skipped[i] = f"it kicks off before that run's data ends ({state.as_of_utc})"
            continue
        try:
            [row] = state.fixture_rows([raw[i]])
        except UnknownFixtureError as exc:
            skipped[i] = f"that run does not know it: {exc}"
            continue
        kept.append(i)
        rows.append(row)
    return RequestFeatures(state, rows), kept, skipped


def _first_too_early(fixtures: Sequence[FixtureIn], as_of_utc: str) -> KickoffTooEarlyError | None:
    """The error for the first fixture that kicked off before the champion's data ends, if any.

    The feature state already holds results after such a kick-off, so its forecast would see
    the future (the look-ahead the design forbids); backtests go through ``evaluate``.
    """
    as_of = _utc_instant(as_of_utc)
    for index, fixture in enumerate(fixtures):
        if fixture.kickoff <= as_of:  # the last match in the data is in the past
            return KickoffTooEarlyError(
                f"{fixture.home} v {fixture.away}: kickoff {fixture.kickoff.isoformat()} is "
                f"before the champion's data ends "
                f"({as_of.isoformat()}): its ratings already hold later results; forecast "
                "upcoming fixtures, or backtest with `marketcast evaluate`",
                index=index,
                field="kickoff",
                value=fixture.kickoff,
            )
    return None


def _fixture_dict(fixture: FixtureIn) -> dict[str, Any]:
    odds = _quotes(fixture.odds)
    if fixture.odds.bookmakers:
        odds["bookmakers"] = {b: _quotes(q) for b, q in fixture.odds.bookmakers.items()}
    return {
        "league": fixture.league,
        "home": fixture.home,
        "away": fixture.away,
        "kickoff": fixture.kickoff,
        "odds": odds,
    }


def _quotes(odds: FixtureOdds | BookmakerOdds) -> dict[str, Any]:
    """Prices as `FeatureState` takes them: tuples per market, None where not quoted."""
    x2 = odds.one_x_two
    return {
        "1x2": (x2.home, x2.draw, x2.away) if x2 else None,
        "ou25": (odds.ou25.over, odds.ou25.under) if odds.ou25 else None,
        "ah": (odds.ah.line, odds.ah.home, odds.ah.away) if odds.ah else None,
    }


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _probability_positive(roi: float | None, low: float | None, high: float | None) -> float | None:
    """P(ROI > 0) from the bootstrap interval, read as a normal interval."""
    if roi is None or low is None or high is None or high <= low:
        return None
    se = (high - low) / (2 * 1.959964)
    return float(0.5 * (1 + math.erf(roi / (se * math.sqrt(2)))))


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.1%}"
