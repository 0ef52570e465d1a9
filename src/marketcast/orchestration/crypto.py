"""The crypto job: the 9 steps over pairs x horizons x models, on local processes or Ray.

1. universe (daily liquidity and spread filters)  2. ingest and validate  3. features (stored,
hashed)  4. labels per horizon  5. train per pair group and regime on purged walk-forward
splits  6. score and backtest net of costs  7. consensus with the regime gate  8. shadow test
against the champion  9. export champions, manifests and reports.

Steps 1-4 run in this process (cross-sectional features need every pair at once); step 5-7 run
as one job per (pair group, horizon) on the chosen backend; steps 6, 8 and 9 run here again on
the jobs' decisions. See docs/crypto-pipeline.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich import box
from rich.console import Console
from rich.table import Table

from marketcast.config import CryptoRunConfig
from marketcast.costs import (
    HOURS_PER_YEAR,
    LONGEST_FUNDING_INTERVAL_NS,
    CostModel,
    carry_forward,
    fee_rate,
    period_funding_sums,
    round_trip_cost_rate,
    short_borrow_over,
)
from marketcast.data.feature_store import frame_sha256, save_features
from marketcast.data.files import write_atomic
from marketcast.data.validation import DataError
from marketcast.datasets.crypto import CandleData, load_candles, normalise_pair
from marketcast.ensemble.regime import classify_regimes
from marketcast.evaluation.crypto_backtest import buy_and_hold, run_backtest
from marketcast.features.crypto import (
    CRYPTO_FEATURE_COLUMNS,
    build_crypto_features,
    charged_spread,
)
from marketcast.features.universe import build_universe, universe_spread_method
from marketcast.labels.crypto import HORIZON_BARS, dead_zone_for, direction_label, forward_returns
from marketcast.models.crypto import CRYPTO_CHAMPION_SPEC, CRYPTO_MODEL_NAMES, make_crypto_model
from marketcast.orchestration.backends import Job, JobOutcome, ProgressFn, run_jobs
from marketcast.orchestration.crypto_jobs import (
    BASE_MODELS,
    REGIME_SPLIT_MODELS,
    GroupResult,
    GroupTask,
    RegimeModels,
    expected_move,
    has_a_step,
    model_params,
    run_group_task,
)
from marketcast.orchestration.export import (
    PUBLISH_FILE,
    publish_champions,
    save_after_moves,
    save_report,
)
from marketcast.orchestration.football import (
    CHAMPION_READ_ERRORS,
    _progress,
    changed_settings,
    check_outputs,
    config_label,
    decision_verdict,
    less_data_than_champion,
    local_runs_dir,
    parquet_bytes,
    print_decisions,
    print_plain,
    print_unclipped,
    run_folder,
    training_window,
    unreadable_champion,
    write_json,
)
from marketcast.orchestration.window import as_utc, utc_window
from marketcast.registry import (
    ChampionChangedError,
    ChampionRecord,
    Registry,
    build_manifest,
    decide_among,
    decide_promotion,
)
from marketcast.registry.promotion import PromotionDecision, PromotionRule
from marketcast.reports.writer import to_jsonable

log = logging.getLogger(__name__)
VERTICAL = "crypto"
#: The do-nothing model: the champion until a challenger beats it after costs.
DEFAULT_CHAMPION = "flat"
#: Fields of a promotion decision only the registry's decision fills: the contract JSON's
#: ``promotion`` (the evaluation's own test against ``flat``) holds them as null, never dropped
#: (a contract key stays once given).
REGISTRY_ONLY_KEYS = frozenset({"decided_utc", "champion_version", "challenger_version"})


@dataclass
class PreparedCrypto:
    """Steps 1-4: validated candles, the daily universe, features with regimes."""

    data: CandleData
    universe: pd.DataFrame
    features: pd.DataFrame
    feature_columns: tuple[str, ...]
    data_sha256: str
    features_sha256: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    #: Per ``costs.spread_method``, the trailing spread estimate its costs charge per candle
    #: row (:func:`cost_spread_estimate`), computed once for every horizon
    spread_by_method: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


@dataclass
class HorizonEvaluation:
    """Step 6-8 for one horizon: scores, backtests net of costs, the champion and its evidence."""

    horizon: str
    models: dict[str, dict[str, Any]]
    buy_and_hold: dict[str, Any]
    champion: str
    decision: dict[str, Any]
    period_net: dict[str, np.ndarray]
    period_times: pd.DatetimeIndex
    events: list[dict[str, Any]]
    regime_counts: dict[str, dict[str, int]]
    gate_fallback_share: float
    #: per pair group, the models the regime gate enabled in each regime at the last step
    gate_enabled: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    #: evaluated periods whose holding ran into a pair's delisting: closed at its last price
    delisting_exits: list[dict[str, Any]] = field(default_factory=list)
    #: this horizon's jobs that failed after every attempt (:func:`failed_job_records`): their
    #: pairs are missing from every figure above, so a run promotes nothing on them
    failed_jobs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CryptoEvaluation:
    """Every horizon of a crypto evaluation; ``to_contract_json`` is the design's JSON."""

    pairs: int
    horizons: dict[str, HorizonEvaluation]
    skipped: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    timings: dict[str, float]
    #: Per horizon, every labelled training row (:func:`export_rows`), kept from planning so
    #: the champion's export does not rebuild the horizon's labels (~2 s a horizon).
    export_rows: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    #: Each requested horizon that gave no decision, and why (:func:`not_evaluated_reason`):
    #: it is missing from ``horizons``, and a run leaves its champion as it was
    not_evaluated: dict[str, str] = field(default_factory=dict)
    #: Every job that failed after every attempt, of any horizon (:func:`failed_job_records`)
    failed_jobs: list[dict[str, Any]] = field(default_factory=list)
    #: Which pairs trade to the data's end (:func:`survivorship`)
    survivorship: dict[str, Any] = field(default_factory=dict)
    #: The walk-forward's pair groups (:func:`pair_groups` before its start): the champion's
    #: export keeps them, so a consensus's regime gate, earned per group, stays on its pairs
    groups: list[tuple[str, list[str]]] = field(default_factory=list)

    def to_contract_json(self) -> dict[str, Any]:
        """The design's ``evaluate crypto`` JSON (keys never renamed, only added).

        Each horizon's ``champion`` is the evaluation's own pick, tested against ``flat``, and
        ``promotion`` that test, the registry's fields (:data:`REGISTRY_ONLY_KEYS`) null: it
        is no registry decision. A run's decision against the registry's champion, with its
        time and versions, is in ``metrics.json``. ``failed_jobs`` lists the jobs that failed
        after every attempt, at the top and in their horizon: a horizon that lists any was
        scored, backtested and tested on its other pairs only (a run promotes nothing there).
        """
        return {
            "pairs": self.pairs,
            "horizons": {
                h: {
                    "models": ev.models,
                    "buy_and_hold": ev.buy_and_hold,
                    "champion": ev.champion,
                    "promotion": ev.decision | {k: None for k in REGISTRY_ONLY_KEYS},
                    "delisting_exits": ev.delisting_exits,
                    # its jobs that failed: their pairs are missing from every figure ([]: none)
                    "failed_jobs": ev.failed_jobs,
                }
                for h, ev in self.horizons.items()
            },
            # pairs never tradable in the window, and why (they hold no position there)
            "skipped_pairs": self.skipped,
            # requested horizons with no decision in the window, and why ({} when none)
            "not_evaluated": self.not_evaluated,
            # jobs that failed after every attempt, of every horizon ([] when none)
            "failed_jobs": self.failed_jobs,
            # pairs that stop trading before the data's end; a warning when none does
            "survivorship": self.survivorship,
        }


def prepare_crypto(
    config: CryptoRunConfig, paths: list[str] | None = None, config_path: str | None = None
) -> PreparedCrypto:
    """Steps 1-4 (labels are added per horizon): load, validate, universe, features, regimes.

    A configured pair without candles is an error; from a run (``config_path`` given) it names
    the config's file and its ``pairs`` key.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = load_candles(
        paths or list(config.data.paths) or None,
        pairs=list(config.pairs) or None,
        pair_renames=config.pair_renames,
    )
    where = ", ".join(paths or list(config.data.paths)) or "the bundle"
    if data.report.errors:
        # a file given and not read is an error, not a quiet skip: `run` trained and promoted
        # on what was left, one pair with a single decision, saying so only in a JSON file
        first, more = data.report.errors[0], len(data.report.errors) - 1
        also = f" (and {more} more file{'s' if more > 1 else ''} unreadable)" if more else ""
        raise DataError(first.file, first.row, first.field, first.reason + also, first.value)
    found = set(data.candles["pair"].unique()) if not data.candles.empty else set()
    missing = sorted({normalise_pair(p) for p in config.pairs} - found)
    if missing:  # one mistyped pair was dropped without a word; all of them gave "no candles"
        if config_path is not None:
            raise DataError(
                config_label(config_path), None, "pairs", f"{missing} have no candles in {where}"
            )
        raise ValueError(f"pairs {missing} have no candles in {where}")
    if data.candles.empty:
        raise ValueError(f"no candles found in {where}")
    if config.costs.funding:
        without = data.pairs_without_funding
        if without:
            log.warning(
                "costs.funding is on, but %d of %d pairs have no funding rates in %s (spot "
                "candles?): their held periods are charged no funding and counted in "
                "n_funding_missing, and their shorts pay borrow interest instead "
                "(costs.short_borrow_rate, %g a year)",
                len(without),
                len(found),
                where,
                config.costs.short_borrow_rate,
            )
    timings["load_validate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    u = config.universe
    universe = build_universe(
        data.candles,
        lookback_days=u.lookback_days,
        min_median_quote_volume_usd=u.min_median_quote_volume_usd,
        max_spread=u.max_spread,
        min_history_days=u.min_history_days,
        spread_method=universe_spread_method(config.costs.spread_method),
    )
    timings["universe"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    features = build_crypto_features(data.candles, data.funding)
    features["regime"] = classify_regimes(features).to_numpy()
    day = features["decision_time_utc"].dt.floor("D")
    included = universe.set_index(["date", "pair"])["included"]
    key = pd.MultiIndex.from_arrays([day, features["pair"]])
    features["in_universe"] = included.reindex(key).fillna(False).to_numpy(dtype=bool)
    for column in ("quote_volume", "close"):
        features[column] = data.candles[column].to_numpy()
    timings["features"] = time.perf_counter() - t0
    # every input table, not only the candles: funding is a feature and a cost; open interest
    # is loaded and validated but feeds no feature yet (a change to it still changes the data a
    # run read); the hash of a frame of the three tables' hashes
    tables = {"candles": data.candles, "funding": data.funding, "open_interest": data.open_interest}
    data_sha = frame_sha256(
        pd.DataFrame({"table": list(tables), "sha256": [frame_sha256(t) for t in tables.values()]})
    )
    return PreparedCrypto(
        data, universe, features, tuple(CRYPTO_FEATURE_COLUMNS), data_sha, timings=timings
    )


def horizon_rows(prepared: PreparedCrypto, horizon: str, config: CryptoRunConfig) -> pd.DataFrame:
    """Step 4 for one horizon: labels, the period grid and each row's cost inputs."""
    bars = HORIZON_BARS[horizon]
    costs = cost_model(config)
    labels = forward_returns(
        prepared.data.candles, bars, latency_bars=config.walk_forward.latency_bars
    )
    rows = prepared.features.copy()
    rows["forward_return"] = labels["forward_return"].to_numpy()
    rows["label_end_utc"] = labels["label_end_utc"].to_numpy()
    rows["entry_time_utc"] = labels["entry_time_utc"].to_numpy()
    rows["delisting_exit"] = labels["delisting_exit"].to_numpy()
    # what the backtest books: held to the first traded open at or after the exit
    rows["period_return"] = labels["period_return"].to_numpy()
    rows["period_delisting"] = labels["period_delisting"].to_numpy()
    dead_zone = dead_zone_for(bars, fee_rate(costs))  # one round trip of the fee charged
    rows["direction"] = direction_label(rows["forward_return"].to_numpy(), dead_zone)
    # Rows without a resolvable label cannot be trained on or scored; keep their time order.
    rows["label_end_utc"] = rows["label_end_utc"].fillna(
        rows["decision_time_utc"] + pd.Timedelta(hours=bars + config.walk_forward.latency_bars)
    )
    hour = rows["decision_time_utc"].dt.hour
    rows["on_grid"] = (hour % bars == 0) if bars < 24 else (hour == 0)
    stride = max(1, bars // 4)
    rows["train_row"] = hour % stride == 0
    # realised_vol_24h is per-bar (hourly) volatility; slippage uses the decision bar's volume.
    # Each cost input as last known at the decision (a repaired or no-trade bar has volume 0, a
    # 6 h hole leaves the 24 h volatility NaN): the edge gate and the backtest price a trade
    # alike. The spread too: a NaN estimate was read as the 1 bp floor while the pair's last
    # estimate was known (the floor stays where none is known yet).
    pair = rows["pair"].to_numpy()
    spread, spread_filled = carry_forward(
        cost_spread_estimate(prepared, config.costs.spread_method), pair, positive=False
    )
    rows["spread_cost_est"] = np.fmax(np.nan_to_num(spread, nan=0.0), config.costs.min_spread)
    volatility, vol_filled = carry_forward(rows["realised_vol_24h"], pair, positive=False)
    volume, volume_filled = carry_forward(rows["quote_volume"], pair, positive=True)
    rows["volatility"] = volatility
    rows["cost_quote_volume"] = volume
    rows["cost_inputs_filled"] = vol_filled | volume_filled | spread_filled
    # funding is paid while the position is held: up to its exit (the first traded open at
    # or after the exit hour; at a delisting the last bar's close), whenever the label resolves
    # (`label_end_utc`, for the purge)
    rows["funding_period"] = _funding_in_period(
        prepared.data.funding,
        rows["pair"],
        labels["period_entry_utc"],
        labels["period_exit_utc"],
        labels["period_delisting"],
    )
    rows["round_trip_cost"] = round_trip_cost_rate(
        costs, spread, volatility, volume, min_spread=config.costs.min_spread
    )
    # a short on spot borrows the asset for the hold; a perpetual's short pays funding instead:
    # a pair counts as one from its first funding event at or before the decision (its future
    # rates, and a funding file that starts later, are not known then)
    rows["short_borrow"] = short_borrow_over(
        costs, bars, _funded_by(prepared.data.funding, rows["pair"], rows["decision_time_utc"])
    )
    return rows


def _funded_by(
    funding: pd.DataFrame | None, pair: pd.Series, decision: pd.Series
) -> npt.NDArray[np.bool_]:
    """Whether each row's pair had a funding event at or before its decision (a perpetual)."""
    if funding is None or funding.empty:
        return np.zeros(len(pair), dtype=bool)
    first = funding.groupby("pair")["funding_time_utc"].min()
    since = pd.to_datetime(pair.map(first), utc=True)
    return (since.notna() & (since <= decision)).to_numpy(dtype=bool)


def cost_spread_estimate(
    prepared: PreparedCrypto, method: Literal["abdi_ranaldo", "corwin_schultz", "fixed"]
) -> np.ndarray:
    """The spread estimate the costs charge, per candle row, by ``costs.spread_method``.

    :func:`marketcast.features.crypto.charged_spread`, kept on ``prepared`` for every horizon:
    ``abdi_ranaldo`` (and ``fixed``, whose cost ignores it) reads the feature
    ``spread_estimate_168h``; ``corwin_schultz`` computes the same trailing 168 h estimate
    with its own estimator (bars up to the decision only). It used to read the Abdi-Ranaldo
    feature whatever the method, so ``corwin_schultz`` silently charged Abdi-Ranaldo's spread
    (median 0 on hourly bars, floored to ``min_spread``, where Corwin-Schultz gives 9 to 14 bp).
    """
    if method not in prepared.spread_by_method:
        prepared.spread_by_method[method] = charged_spread(
            prepared.features, prepared.data.candles, method
        )
    return prepared.spread_by_method[method]


def _funding_in_period(
    funding: pd.DataFrame | None,
    pair: pd.Series,
    entry: pd.Series,
    end: pd.Series,
    delisting: pd.Series,
) -> np.ndarray:
    """Sum of each pair's funding rates with funding time in ``(entry, end]``; a period held
    into its pair's delisting (``delisting``) is covered up to the last close when the next
    event would have come after it.

    NaN where the pair's funding data does not cover the period (``costs.period_funding_sums``:
    outside its first to last event, or overlapping a hole in it longer than 1.5 times the
    usual spacing around it), and for a pair with no funding data at all (spot
    candles): the backtest charges such a held period 0 and counts it in ``n_funding_missing``,
    so missing funding is reported, never silently read as "no funding paid".
    """
    out = np.full(len(pair), np.nan)
    if funding is None or funding.empty:
        return out
    pair_values = pair.to_numpy()
    entry_ns = pd.DatetimeIndex(entry).as_unit("ns").asi8
    end_ns = pd.DatetimeIndex(end).as_unit("ns").asi8
    delisted = delisting.to_numpy(dtype=bool)
    for name, group in funding.groupby("pair", sort=False):
        mask = pair_values == name
        if not mask.any():
            continue
        times = pd.DatetimeIndex(group["funding_time_utc"]).as_unit("ns").asi8
        out[mask] = period_funding_sums(
            times,
            group["funding_rate"].to_numpy(),
            entry_ns[mask],
            end_ns[mask],
            end_spacing=LONGEST_FUNDING_INTERVAL_NS,
            delisting=delisted[mask],
        )
    return out


def cost_model(config: CryptoRunConfig) -> CostModel:
    """The run's cost model from its config."""
    return CostModel(**config.costs.model_dump(exclude={"min_spread"}))


def promotion_rule(config: CryptoRunConfig) -> PromotionRule:
    """The run's promotion rule from its config: per-period net-return losses."""
    return PromotionRule(**config.promotion.model_dump(), metric="net_return_loss", unit="period")


def pair_groups(
    prepared: PreparedCrypto, group_size: int, before: pd.Timestamp | str | None = None
) -> list[tuple[str, list[str]]]:
    """Pairs by median quote volume, most liquid first, cut into pooled training groups.

    ``before`` (the walk-forward's start) ranks by the bars before it only: ranked over every
    bar, a pair's volume after the test window (a listing boom, a collapse) decided which
    pairs pooled their training in the window, and adding newer files changed older scores.
    A pair with no bar before it ranks last (then by name). The champion's export, fitted on
    everything for serving, keeps the walk-forward's groups (`CryptoEvaluation.groups`): it
    ranked over every bar until 2026-11-25, so a consensus's regime gate, keyed by group name,
    was served to other pairs once liquidity ranks changed.
    """
    candles = prepared.data.candles
    if before is not None:
        candles = candles.loc[candles["open_time_utc"] < as_utc(before)]
    volume = candles.groupby("pair")["quote_volume"].median()
    every = sorted(prepared.data.candles["pair"].unique().tolist())
    ranked = volume.reindex(every).sort_values(ascending=False, na_position="last", kind="stable")
    pairs = list(ranked.index)
    return [
        (f"g{i // group_size}", pairs[i : i + group_size]) for i in range(0, len(pairs), group_size)
    ]


def plan_jobs(
    prepared: PreparedCrypto,
    config: CryptoRunConfig,
    horizons: tuple[str, ...],
    start: pd.Timestamp,
    end: pd.Timestamp | None,
    export: dict[str, pd.DataFrame] | None = None,
    groups: list[tuple[str, list[str]]] | None = None,
) -> list[Job]:
    """One job per (pair group, horizon); liquid groups first, then shorter horizons.

    ``export``, when given, receives each horizon's :func:`export_rows` on the way. ``groups``
    are :func:`pair_groups` before ``start`` unless given. The priorities
    (:func:`job_priority`) do not depend on the order ``horizons`` are listed in.
    """
    if groups is None:
        groups = pair_groups(prepared, config.group_size, before=start)
    feature_columns = prepared.feature_columns
    jobs: list[Job] = []
    for horizon in horizons:
        rows = horizon_rows(prepared, horizon, config)
        if export is not None:
            export[horizon] = export_rows(prepared, rows)
        for g_index, (group, pairs) in enumerate(groups):
            group_rows = rows.loc[rows["pair"].isin(pairs)].reset_index(drop=True)
            task = GroupTask(
                group=group,
                horizon=horizon,
                horizon_bars=HORIZON_BARS[horizon],
                rows=group_rows,
                feature_columns=feature_columns,
                models=tuple(config.models),
                model_params={k: dict(v) for k, v in config.model_params.items()},
                start_utc=start,
                end_utc=end,
                step_days=config.walk_forward.step_days,
                max_train_days=config.walk_forward.max_train_days,
                latency_bars=config.walk_forward.latency_bars,
                per_regime=config.per_regime,
                min_edge=config.min_edge,
                seed=config.seed,
                pairs=tuple(pairs),
            )
            priority = job_priority(g_index, horizon, horizons)
            jobs.append(Job(f"{horizon}/{group}", run_group_task, (task,), priority))
    return jobs


def job_priority(group_index: int, horizon: str, horizons: tuple[str, ...]) -> int:
    """A job's start priority, lowest first: the most liquid groups first, then within a group
    the shorter horizons (1h, the most rows, before 4h and 1d), whatever the config's order.

    Examples
    --------
    >>> [job_priority(g, h, ("1d", "4h")) for g in (0, 1) for h in ("1d", "4h")]
    [1, 0, 3, 2]
    """
    by_length = sorted(horizons, key=lambda h: HORIZON_BARS[h])
    return group_index * len(horizons) + by_length.index(horizon)


def describe_plan(
    prepared: PreparedCrypto, config: CryptoRunConfig, horizons: tuple[str, ...], start: str
) -> dict[str, Any]:
    """What a run would do (``--dry-run``): pairs, groups, jobs and their priorities."""
    groups = pair_groups(prepared, config.group_size, before=start)
    last = prepared.features["decision_time_utc"].max()
    if config.walk_forward.end is not None:
        last = min(last, as_utc(config.walk_forward.end))
    test_days = (last - as_utc(start)).total_seconds() / 86400
    steps = max(0, int(np.ceil(test_days / config.walk_forward.step_days)))
    jobs = [
        {
            "job": f"{h}/{g}",
            "pairs": pairs,
            "priority": job_priority(gi, h, horizons),
            "walk_forward_steps": steps,
            "models": list(config.models),
        }
        for h in horizons
        for gi, (g, pairs) in enumerate(groups)
    ]
    return {
        "pairs": sorted(prepared.data.candles["pair"].unique().tolist()),
        "horizons": list(horizons),
        "groups": {g: pairs for g, pairs in groups},
        "backend": config.backend,
        "jobs": jobs,
        "data_integrity": prepared.data.report.to_dict(),
    }


def evaluate_crypto(
    config: CryptoRunConfig,
    prepared: PreparedCrypto,
    *,
    start: str,
    end: str | None = None,
    console: Console | None = None,
) -> CryptoEvaluation:
    """Steps 5-8 on every horizon: walk forward, backtest net of costs, pick champions."""
    horizons = tuple(config.horizons)
    start_utc, end_utc = utc_window(start, end or None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    export: dict[str, pd.DataFrame] = {}
    # the groups the jobs train on, and the champion's export keeps (`CryptoEvaluation.groups`)
    groups = pair_groups(prepared, config.group_size, before=start_utc)
    jobs = plan_jobs(prepared, config, horizons, start_utc, end_utc, export, groups)
    timings["plan"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    outcomes = _run_jobs_with_a_step(jobs, config, console)
    timings["train_walk_forward"] = time.perf_counter() - t0
    # A failed job used to be logged only: its horizon was scored, backtested and tested on
    # the other pairs as if they were all, the JSON did not say so, and `run` promoted on it.
    failed_jobs = failed_job_records(jobs, outcomes)
    for failure in failed_jobs:
        log.error("%s", failed_job_line(failure))

    t0 = time.perf_counter()
    costs = cost_model(config)
    rule = promotion_rule(config)
    results_by_h: dict[str, list[GroupResult]] = {h: [] for h in horizons}
    for outcome in outcomes:
        if outcome.ok:
            result: GroupResult = outcome.result
            results_by_h[result.horizon].append(result)
    evaluations: dict[str, HorizonEvaluation] = {
        h: aggregate_horizon(h, results_by_h[h], config, costs, rule, incumbent=DEFAULT_CHAMPION)
        for h in horizons
        if any(len(r.decisions) for r in results_by_h[h])  # none when --start leaves no history
    }
    for h, ev in evaluations.items():
        ev.failed_jobs = [f for f in failed_jobs if f["horizon"] == h]
    # A horizon without a decision was dropped without a word: `evaluate crypto --horizons
    # 1h,1d` listed 1h alone and exited 0, and `run` gave 1d no champion and no reason.
    not_evaluated: dict[str, str] = {}
    for h in horizons:
        if h not in evaluations:
            jobs_of_h = [o for o in outcomes if o.key.split("/", 1)[0] == h]
            not_evaluated[h] = not_evaluated_reason(
                h, jobs_of_h, export[h], config, start_utc, end_utc
            )
            log.warning("horizon %s not evaluated: %s", h, not_evaluated[h])
    timings["backtest_score"] = time.perf_counter() - t0
    return CryptoEvaluation(
        pairs=int(prepared.data.candles["pair"].nunique()),
        horizons=evaluations,
        skipped=skipped_pairs(prepared, start_utc, end_utc),
        jobs=[_job_summary(o) for o in outcomes],
        timings=timings,
        export_rows=export,
        not_evaluated=not_evaluated,
        failed_jobs=failed_jobs,
        survivorship=survivorship(prepared.data.candles),
        groups=groups,
    )


def _run_jobs_with_a_step(
    jobs: list[Job], config: CryptoRunConfig, console: Console | None
) -> list[JobOutcome]:
    """Run the jobs, in the order given; those without a walk-forward step run here.

    A job whose window has too little history before it has no step: it returns no decision
    whichever backend runs it, so it is not shipped to one (which would start processes or a
    Ray cluster for nothing), and a window where no job has a step gets its reason at once.
    """
    stepless = {job.key for job in jobs if not has_a_step(job.args[0])}
    to_run = [job for job in jobs if job.key not in stepless]
    outcomes: dict[str, JobOutcome] = {}
    if to_run:
        with _progress(console, f"crypto jobs ({config.backend})") as progress:
            ran = _on_backend(to_run, config, progress)
        outcomes.update((outcome.key, outcome) for outcome in ran)
    for job in jobs:
        if job.key in stepless:  # no step: an empty result, without fitting anything
            outcomes[job.key] = JobOutcome(job.key, ok=True, result=job.fn(*job.args), attempts=1)
    return [outcomes[job.key] for job in jobs]


def failed_job_records(jobs: list[Job], outcomes: list[JobOutcome]) -> list[dict[str, Any]]:
    """One record per job that failed after every attempt, in the jobs' order.

    ``{"job": "1h/g1", "horizon": "1h", "group": "g1", "pairs_left_out": [...],
    "attempts": 1, "error": "MemoryError: ..."}``; ``jobs`` are :func:`plan_jobs`' (their
    `GroupTask` names the pairs), ``outcomes`` what became of them.
    """
    tasks = {job.key: job.args[0] for job in jobs if job.args}
    records = []
    for outcome in outcomes:
        if outcome.ok:
            continue
        horizon, _, group = outcome.key.partition("/")
        task = tasks.get(outcome.key)
        pairs = list(getattr(task, "pairs", ()))
        records.append(
            {
                "job": outcome.key,
                "horizon": horizon,
                "group": group,
                "pairs_left_out": pairs,
                "attempts": outcome.attempts,
                "error": outcome.error,
            }
        )
    return records


def failed_job_line(failure: Mapping[str, Any]) -> str:
    """What the terminal says of a failed job (:func:`failed_job_records`).

    Examples
    --------
    >>> import textwrap
    >>> line = failed_job_line({"job": "1h/g1", "horizon": "1h", "pairs_left_out": ["ETHUSDT"],
    ...                         "attempts": 2, "error": "MemoryError: out of memory"})
    >>> print(textwrap.fill(line, 88))
    job 1h/g1 failed after 2 attempts (MemoryError: out of memory): ETHUSDT left out of 1h's
    scores, backtests and champion test, so a run keeps 1h's champion
    """
    n = failure["attempts"]
    pairs = ", ".join(failure["pairs_left_out"]) or "its pairs"
    h = failure["horizon"]
    return (
        f"job {failure['job']} failed after {n} attempt{'s' if n != 1 else ''} "
        f"({failure['error']}): {pairs} left out of {h}'s scores, backtests and champion test, "
        f"so a run keeps {h}'s champion"
    )


def not_evaluated_reason(
    horizon: str,
    outcomes: list[JobOutcome],
    train_rows: pd.DataFrame,
    config: CryptoRunConfig,
    start: pd.Timestamp,
    end: pd.Timestamp | None,
) -> str:
    """Why ``horizon``'s jobs gave no decision in the window ``[start, end)``.

    ``outcomes`` are the horizon's jobs, ``train_rows`` its labelled training rows
    (:func:`export_rows`). Failed jobs are named; else, when the data begins too late for
    the first step (a training label must resolve an embargo before the step,
    ``PurgedWalkForward``), the history that step needs; else the general rule.

    Examples
    --------
    >>> rows = pd.DataFrame({"open_time_utc": [pd.Timestamp("2022-04-25", tz="UTC")]})
    >>> start = pd.Timestamp("2022-04-27", tz="UTC")
    >>> reason = not_evaluated_reason("1d", [], rows, CryptoRunConfig(), start, None)
    >>> import textwrap
    >>> print(textwrap.fill(reason, 88))
    no walk-forward step had training rows whose labels resolved before it: a 1d label
    resolves 24 h after its decision and the embargo adds 24 h, so the first step, at
    2022-04-27 00:00 UTC, needs decisions before 2022-04-25 00:00 UTC (more than 48 h of
    history before it); the data's first training decision is at 2022-04-25 01:00 UTC
    """
    failed = [o for o in outcomes if not o.ok]
    if outcomes and len(failed) == len(outcomes):
        errors = "; ".join(f"{o.key}: {o.error}" for o in failed)
        return f"every job of the horizon failed ({errors})"
    label_h = HORIZON_BARS[horizon] + config.walk_forward.latency_bars  # decision to label end
    embargo_h = label_h  # run_group_task's embargo: the horizon plus the latency
    needs = (
        f"a {horizon} label resolves {label_h} h after its decision and the embargo adds "
        f"{embargo_h} h"
    )
    also = f" ({len(failed)} of its jobs failed)" if failed else ""
    rule = "no walk-forward step had training rows whose labels resolved before it"
    if train_rows.empty:
        return f"{rule}: the data holds no labelled {horizon} row to train on{also}"
    before = start - pd.Timedelta(hours=label_h + embargo_h)
    first = pd.Timestamp(train_rows["open_time_utc"].min()) + pd.Timedelta(hours=1)  # decided
    if first >= before:
        return (
            f"{rule}: {needs}, so the first step, at {start:%Y-%m-%d %H:%M} UTC, needs decisions "
            f"before {before:%Y-%m-%d %H:%M} UTC (more than {label_h + embargo_h} h of history "
            f"before it); the data's first training decision is at {first:%Y-%m-%d %H:%M} UTC{also}"
        )
    until = f"{end:%Y-%m-%d %H:%M} UTC" if end is not None else "the end of the data"
    return (
        f"no walk-forward step from {start:%Y-%m-%d %H:%M} UTC to {until} had both a decision "
        f"on the {horizon} grid and training rows whose labels resolved before it ({needs}){also}"
    )


def _job_summary(outcome: JobOutcome) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "job": outcome.key,
        "ok": outcome.ok,
        "attempts": outcome.attempts,
        "seconds": round(outcome.seconds, 3),
    }
    if outcome.ok:
        result: GroupResult = outcome.result
        summary.update({"steps": result.n_steps, "fits": result.n_fits})
    else:
        summary["error"] = outcome.error
    return summary


#: A pair whose last bar is within this of the data's last bar trades to the end.
SURVIVOR_SLACK = pd.Timedelta(days=1)


def survivorship(candles: pd.DataFrame) -> dict[str, Any]:
    """Which pairs stop trading before the data's last bar, and a warning when none does.

    A set of pairs chosen among those still listed at the end (the bundle's 20 all trade to
    its last hour) flatters long positions and buy-and-hold: the coins that collapsed and were
    delisted are missing. The pipeline backtests a delisting honestly (a held position closes at
    the pair's last price), so the figures are unbiased only when such pairs are in the data;
    this says whether any is. ``pairs_ending_early`` lists each pair whose last bar is more
    than `SURVIVOR_SLACK` before the data's last bar, with that bar's time.

    Examples
    --------
    >>> t = pd.to_datetime(["2023-01-01", "2023-06-30", "2023-06-30"], utc=True)
    >>> out = survivorship(pd.DataFrame({"pair": ["LUNAUSDT", "BTCUSDT", "ETHUSDT"],
    ...                                  "open_time_utc": t}))
    >>> out["pairs"], out["pairs_ending_early"], out["warning"]
    (3, [{'pair': 'LUNAUSDT', 'last_bar_utc': '2023-01-01T00:00:00Z'}], None)
    """
    last = candles.groupby("pair", sort=True)["open_time_utc"].max()
    early = last.loc[last < last.max() - SURVIVOR_SLACK] if len(last) else last
    warning = None
    if len(last) and early.empty:
        warning = (
            f"all {len(last)} pairs trade to the data's last bar: if they were chosen among "
            "the pairs still listed at the end, long positions and buy-and-hold are flattered "
            "(the coins that collapsed are missing); add delisted pairs' files to measure "
            "without that bias"
        )
    return {
        "pairs": len(last),
        "pairs_ending_early": [
            {"pair": str(p), "last_bar_utc": f"{pd.Timestamp(t):%Y-%m-%dT%H:%M:%SZ}"}
            for p, t in early.items()
        ],
        "warning": warning,
    }


def skipped_pairs(
    prepared: PreparedCrypto, start: pd.Timestamp, end: pd.Timestamp | None
) -> list[dict[str, Any]]:
    """Pairs never in the universe during the test window, with their most common reason."""
    u = prepared.universe
    date = pd.DatetimeIndex(u["date"])
    if date.tz is None:
        date = date.tz_localize("UTC")
    window = date >= start.floor("D")
    if end is not None:
        window &= date < end
    u = u.loc[window]
    out: list[dict[str, Any]] = []
    for pair, group in u.groupby("pair"):
        if not group["included"].any():
            reasons = group["reason"].value_counts()
            out.append({"pair": str(pair), "reason": str(reasons.index[0]), "days": len(group)})
    return out


def aggregate_horizon(
    horizon: str,
    results: list[GroupResult],
    config: CryptoRunConfig,
    costs: CostModel,
    rule: PromotionRule,
    *,
    incumbent: str,
) -> HorizonEvaluation:
    """Portfolio backtest of every model on the same periods, scores, and the shadow test."""
    decisions = pd.concat([r.decisions for r in results], ignore_index=True)
    decisions = decisions.sort_values(["decision_time_utc", "pair"], kind="stable")
    bars = HORIZON_BARS[horizon]
    periods_per_year = HOURS_PER_YEAR / bars

    def matrix(column: str, fill: float | None = None) -> pd.DataFrame:
        table = decisions.pivot(index="decision_time_utc", columns="pair", values=column)
        table = table.astype(float)
        return table if fill is None else table.fillna(fill)

    returns = matrix("period_return")  # held through hours without trades, see labels
    times = pd.DatetimeIndex(returns.index)
    pairs = list(returns.columns)
    universe = matrix("in_universe", 0.0).reindex(index=times, columns=pairs).fillna(0.0) > 0
    spread = matrix("spread_cost_est").reindex(index=times, columns=pairs)
    # the volume and volatility last known at each decision, as the edge gate priced it
    quote_volume = matrix("cost_quote_volume").reindex(index=times, columns=pairs)
    volatility = matrix("volatility").reindex(index=times, columns=pairs)
    carried = matrix("cost_inputs_filled", 0.0).reindex(index=times, columns=pairs).fillna(0.0)
    funding = matrix("funding_period").reindex(index=times, columns=pairs)  # NaN: not covered
    period_returns = returns.to_numpy()

    model_names = [m for m in config.models if f"position__{m}" in decisions.columns]
    market_inputs: dict[str, Any] = {
        "spread": spread.to_numpy(),
        "quote_volume": quote_volume.to_numpy(),
        "volatility": volatility.to_numpy(),
        "funding": funding.to_numpy(),
        "costs": costs,
        "periods_per_year": periods_per_year,
    }
    cells: dict[str, Any] = {
        "inputs_filled": carried.to_numpy() > 0,
        "pair_names": [str(p) for p in pairs],
        "period_labels": [f"{t:%Y-%m-%d %H:%M} UTC" for t in times],
    }
    models: dict[str, dict[str, Any]] = {}
    period_net: dict[str, np.ndarray] = {}
    for name in model_names:
        positions = matrix(f"position__{name}", 0.0).reindex(index=times, columns=pairs)
        positions = positions.fillna(0.0).to_numpy() * universe.to_numpy()
        result = run_backtest(
            positions, period_returns, **market_inputs, allowed=universe.to_numpy(), **cells
        )
        metrics = result.metrics()
        metrics.update(_direction_scores(decisions, name))
        models[name] = metrics
        period_net[name] = np.asarray(result.net, dtype=np.float64)

    # held in the day's universe only, like every model's positions
    bh_metrics = buy_and_hold(
        period_returns, **market_inputs, hold=universe.to_numpy(), **cells
    ).metrics()

    champion, decision = shadow_test(period_net, incumbent, rule)
    events = [e for r in results for e in r.events]
    fallback = [g["fallback"] for r in results for g in r.gate_log]
    gate_enabled = {
        r.group: {g["regime"]: list(g["enabled"]) for g in r.gate_log}
        for r in results
        if r.gate_log
    }
    regime_counts = {
        str(pair): {str(k): int(v) for k, v in group["regime"].value_counts().items()}
        for pair, group in decisions.groupby("pair")
    }
    return HorizonEvaluation(
        horizon=horizon,
        models=models,
        delisting_exits=_delisting_exit_summary(decisions),
        buy_and_hold=bh_metrics,
        champion=champion,
        decision=decision,
        period_net=period_net,
        period_times=times,
        events=events,
        regime_counts=regime_counts,
        gate_fallback_share=float(np.mean(fallback)) if fallback else 1.0,
        gate_enabled=gate_enabled,
    )


def _delisting_exit_summary(decisions: pd.DataFrame) -> list[dict[str, Any]]:
    """Per pair, the evaluated periods closed at a delisting's last price, and the first one
    (as the backtest holds them: a period entered after a filled hour too)."""
    flag = next((c for c in ("period_delisting", "delisting_exit") if c in decisions.columns), "")
    if not flag:
        return []
    held = decisions.loc[decisions[flag].to_numpy(dtype=bool)]
    return [
        {
            "pair": str(pair),
            "periods": len(group),
            "first_decision_utc": pd.Timestamp(group["decision_time_utc"].min()).isoformat(),
        }
        for pair, group in held.groupby("pair", sort=True)
    ]


def _direction_scores(decisions: pd.DataFrame, name: str) -> dict[str, float]:
    """Binary log loss and Brier score of P(up) on decisions outside the dead zone."""
    direction = decisions["direction"].to_numpy()
    p_up = decisions[f"p_up__{name}"].to_numpy(dtype=np.float64)
    keep = (direction != 0) & np.isfinite(p_up)
    if not keep.any():
        return {"log_loss": float("nan"), "brier": float("nan"), "n_scored": 0}
    y = (direction[keep] > 0).astype(np.float64)
    p = np.clip(p_up[keep], 1e-6, 1 - 1e-6)
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    brier = float(np.mean((p - y) ** 2))
    return {"log_loss": log_loss, "brier": brier, "n_scored": int(keep.sum())}


def with_flat(period_net: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``period_net`` with ``flat``'s, 0 every period, where the run left ``flat`` out: it holds
    no position, so its net is 0 whether or not it was run; it is always there to defend, and a
    first champion must beat doing nothing (:func:`shadow_test`)."""
    if period_net and DEFAULT_CHAMPION not in period_net:
        periods = len(next(iter(period_net.values())))
        return {DEFAULT_CHAMPION: np.zeros(periods), **period_net}
    return period_net


def shadow_test(
    period_net: dict[str, np.ndarray], incumbent: str, rule: PromotionRule
) -> tuple[str, dict[str, Any]]:
    """Step 8: every challenger faces the incumbent in a paired test, Holm-corrected.

    Losses are negated per-period net returns on the same periods, so the registry's promotion
    rule decides (:func:`decide_among`: one-sided paired t-tests, family-wise level
    ``rule.alpha``); of the challengers that pass, the best mean net return is promoted.
    """
    period_net = with_flat(period_net)
    first_champion = incumbent not in period_net  # no champion on record to defend
    if first_champion:
        incumbent = DEFAULT_CHAMPION
    challengers = {name: -net for name, net in period_net.items() if name != incumbent}
    if not challengers:
        reason = (
            "no champion yet, and no other model evaluated" if first_champion else "no challenger"
        )
        return incumbent, {"promote": False, "reason": reason, "champion": incumbent}
    decision = decide_among(incumbent, -period_net[incumbent], challengers, rule)
    champion = decision.challenger if decision.promote else incumbent
    return champion, decision.model_dump(mode="json")


# --------------------------------------------------------------------------- the main job


@dataclass
class _HorizonMove:
    """One horizon's champion pointer move, made once the reports are written."""

    model_name: str
    version: str
    reason: str
    #: the pointer read before deciding: ``(model, version)``, ``None`` for none
    expected: tuple[str, str] | None
    #: saved once the move is made (a decision is never on file without its effect)
    decisions: list[PromotionDecision] = field(default_factory=list)


@dataclass
class CryptoRun:
    """What ``marketcast run`` produced for crypto."""

    run_id: str
    run_dir: Path
    evaluation: CryptoEvaluation
    champions: dict[str, str]
    summary: dict[str, Any]
    #: per publish target: ``{"target", "ok", "markets" | "error"}`` (``publish.json``)
    published: list[dict[str, Any]] = field(default_factory=list)
    #: registry copies of the report that failed once a pointer had moved (exit status 1)
    copy_errors: list[str] = field(default_factory=list)


def check_model_params(config: CryptoRunConfig) -> None:
    """Every ``model_params`` entry, checked before any data is read.

    A parameter a model does not take, or one out of its range, used to surface inside every
    walk-forward job, after the data preparation, and the run then ended with "nothing to
    evaluate".

    Raises
    ------
    ValueError
        Naming ``model_params.<model>`` and the parameter.
    """
    for name, params in config.model_params.items():
        if name not in CRYPTO_MODEL_NAMES:
            raise ValueError(
                f"model_params.{name}: the {name} vote has no parameters to set (it weighs the "
                "other models by their out-of-sample record; docs/crypto-models.md)"
            )
        try:
            make_crypto_model(name, **params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model_params.{name}: {exc}") from None


def run_crypto(
    config: CryptoRunConfig,
    *,
    console: Console | None = None,
    dry_run: bool = False,
    config_path: str | None = None,
) -> CryptoRun | dict[str, Any]:
    """The whole crypto job; ``dry_run`` returns the plan without training anything, after the
    checks the run makes before its jobs. Errors about the config's keys name ``config_path``."""
    console = console or Console(stderr=True)
    check_model_params(config)
    created = datetime.now(UTC)
    check_outputs(config, config_path)  # a dry run too: football's checks them, as its run does
    read_champions(config)  # a dry run too, as football reads its markets' before any data
    if dry_run:
        prepared = prepare_crypto(config, config_path=config_path)
        start = config.walk_forward.start or _default_start(prepared)
        check_decision_window(prepared, config, start, config_path)
        return describe_plan(prepared, config, tuple(config.horizons), start)
    with run_folder(config, created) as run_dir:
        return _run_crypto(config, console, run_dir, created, config_path)


def read_champions(config: CryptoRunConfig) -> None:
    """Read each configured horizon's champion pointer before any data is read.

    A damaged ``champion.json`` was first read by the shadow test, after the data preparation,
    the feature store and every walk-forward job (hours on real data): the run then ended with
    exit 2, no report, and its emptied folder removed. Football reads its markets' champions
    before loading data (``check_first_champions``); this is the crypto counterpart. A
    champion's version whose files cannot be read is not an error here: the run keeps that
    champion and says why (:func:`_why_champion_stays`).

    Raises
    ------
    RegistryDamagedError
        Naming the unreadable ``champion.json``.
    """
    registry = Registry(config.registry_root)
    for horizon in config.horizons:
        registry.champion(VERTICAL, horizon)


def check_decision_window(
    prepared: PreparedCrypto, config: CryptoRunConfig, start: str, config_path: str | None
) -> None:
    """The walk-forward window must hold a bar to decide on, checked before any job runs.

    A window after the data (or before it) used to give a dry run with 0 steps and exit 0,
    and a run that failed only after its jobs had run and its feature store was written.

    Raises
    ------
    DataError
        Naming ``config_path``, ``walk_forward.start`` (and ``end``) and the data's span.
    """
    if not _holds_a_decision_bar(prepared, start, config.walk_forward.end):
        raise _window_error(prepared, config, start, config_path, "holds no bar to decide on")


def check_evaluation_window(prepared: PreparedCrypto, start: str, end: str | None) -> None:
    """``evaluate crypto``'s window (``--start``, ``--end``) must hold a bar to decide on.

    Checked before any job runs, as :func:`check_decision_window` checks a run's: a
    ``--start`` after the data ran every job, then blamed the missing history before
    ``--start``.

    Raises
    ------
    ValueError
        Naming the option that leaves the data (``--start`` after it, ``--end`` before it, or
        both around a gap), the window and the data's span.
    """
    if _holds_a_decision_bar(prepared, start, end):
        return
    start_utc, end_utc = utc_window(start, end)
    decided = prepared.features["decision_time_utc"]
    if start_utc > decided.max():
        option = f"--start {start}"
    elif end_utc is not None and end_utc <= decided.min():
        option = f"--end {end}"
    else:  # around a gap in the data
        option = f"--start {start} --end {end}"
    until = f"--end {end}" if end else "the end of the data"
    raise ValueError(
        f"{option}: the window from {start} to {until} holds no bar to decide on (the data runs "
        f"{_data_span(prepared)}, and each step needs earlier bars to train on): move the "
        "window into the data"
    )


def _holds_a_decision_bar(prepared: PreparedCrypto, start: str, end: str | None) -> bool:
    """Whether a bar's decision time falls in ``[start, end)`` (``end`` None: to the data's end)."""
    start_utc, end_utc = utc_window(start, end)
    decided = prepared.features["decision_time_utc"]
    inside = decided >= start_utc
    if end_utc is not None:
        inside &= decided < end_utc
    return bool(inside.any())


def _window_error(
    prepared: PreparedCrypto,
    config: CryptoRunConfig,
    start: str,
    config_path: str | None,
    problem: str,
) -> DataError:
    """The error of a walk-forward window with nothing to evaluate, naming file, keys, data."""
    end = config.walk_forward.end
    until = f"walk_forward.end {end}" if end else "the end of the data"
    return DataError(
        config_label(config_path),
        None,
        "walk_forward.start",
        f"the window from {start} to {until} {problem} (the data runs {_data_span(prepared)}, "
        "and each step needs earlier bars to train on): move the window into the data",
    )


def _run_crypto(
    config: CryptoRunConfig,
    console: Console,
    run_dir: Path,
    created: datetime,
    config_path: str | None = None,
) -> CryptoRun:
    run_id = run_dir.name
    t_start = time.perf_counter()
    prepared = prepare_crypto(config, config_path=config_path)
    start = config.walk_forward.start or _default_start(prepared)
    check_decision_window(prepared, config, start, config_path)  # before any job or file
    console.log(
        f"crypto: {prepared.data.candles['pair'].nunique()} pairs, "
        f"{len(prepared.data.candles):,} bars; walk-forward from {start}"
    )
    evaluation = evaluate_crypto(
        config, prepared, start=start, end=config.walk_forward.end, console=console
    )
    if not evaluation.horizons and evaluation.failed_jobs:  # the jobs, not the window
        reasons = "; ".join(f"{h}: {why}" for h, why in evaluation.not_evaluated.items())
        raise ValueError(f"no horizon was evaluated, and no champion changed ({reasons})")
    if not evaluation.horizons:  # bars in the window, but no step had earlier bars to train on
        raise _window_error(prepared, config, start, config_path, "gave no step a decision")
    # the features the registered versions were trained on (a run that evaluated nothing
    # leaves no snapshot)
    snapshot = save_features(
        prepared.features, local_runs_dir(config.runs_dir) / "feature_store", VERTICAL
    )
    prepared.features_sha256 = snapshot.sha256
    registry = Registry(config.registry_root)
    champions, decisions, moves = _shadow_and_export(config, registry, prepared, evaluation, run_id)
    evaluation.timings.update(prepared.timings)
    evaluation.timings["total"] = time.perf_counter() - t_start
    # The reports land before any champion pointer moves: a run that fails while writing them
    # leaves every champion where it was, and a champion's run always has its report.
    summary = write_crypto_reports(
        run_dir, config, run_id, created, prepared, evaluation, champions, decisions
    )
    try:
        save_report(registry, VERTICAL, run_id, _report_files(run_dir))
    except BaseException as exc:  # no pointer moved: the run folder's reports must say so
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        for horizon in moves:
            decisions[horizon]["not_applied"] = (
                f"the run stopped before this horizon was applied ({why})"
            )
            with contextlib.suppress(Exception):
                current = registry.champion(VERTICAL, horizon)
                champions[horizon] = current.model_name if current is not None else "none"
        with contextlib.suppress(Exception):
            write_crypto_reports(
                run_dir, config, run_id, created, prepared, evaluation, champions, decisions
            )
        raise
    changed = False
    for horizon, move in moves.items():
        try:
            registry.set_champion(
                VERTICAL,
                horizon,
                move.model_name,
                move.version,
                move.reason,
                expected=move.expected,
            )
        except ChampionChangedError as exc:  # promoted or rolled back while this run worked
            console.log(f"[yellow]{horizon}: this run's champion was not applied: {exc}")
            decisions[horizon]["not_applied"] = str(exc)
            current = registry.champion(VERTICAL, horizon)
            champions[horizon] = current.model_name if current is not None else "none"
            changed = True
            continue
        for decision in move.decisions:  # moved: a failure saving them does not undo that
            registry.save_decision(VERTICAL, horizon, decision)
    if changed:
        summary = write_crypto_reports(
            run_dir, config, run_id, created, prepared, evaluation, champions, decisions
        )
    published = publish_champions(
        config.publish, registry, VERTICAL, list(config.horizons), run_id, run_dir, console
    )
    copy_errors: list[str] = []
    if changed or published:  # publish.json joins the registry's copy of the report
        extra = [run_dir / PUBLISH_FILE] if published else []
        files = [*_report_files(run_dir), *extra]
        save_after_moves(
            lambda: save_report(registry, VERTICAL, run_id, files), console, copy_errors
        )
    print_crypto_summary(console, evaluation, champions, run_dir, decisions)
    return CryptoRun(run_id, run_dir, evaluation, champions, summary, published, copy_errors)


def _report_files(run_dir: Path) -> list[Path]:
    """The files :func:`write_crypto_reports` wrote (``<run_dir>/crypto/``), by name."""
    return sorted(p for p in (run_dir / "crypto").iterdir() if p.is_file() and p.name[0] != ".")


def _data_span(prepared: PreparedCrypto) -> str:
    times = prepared.data.candles["open_time_utc"]
    return f"{times.min():%Y-%m-%d} to {times.max():%Y-%m-%d}"


def _default_start(prepared: PreparedCrypto) -> str:
    last = prepared.features["decision_time_utc"].max()
    return str((last - pd.Timedelta(days=365)).floor("D").date())


def _on_backend(
    jobs: Sequence[Job], config: CryptoRunConfig, progress: ProgressFn | None = None
) -> list[JobOutcome]:
    """Run ``jobs`` on the configured backend (local processes or Ray), with its worker count,
    retries, job time limit and Ray address; the walk-forward's and the export's jobs alike."""
    return run_jobs(
        jobs,
        config.backend,
        max_workers=config.max_workers,
        retries=config.retries,
        ray_address=config.ray_address,
        progress=progress,
        time_limit_s=config.job_time_limit_s,
    )


def json_lines(rows: Iterable[Mapping[str, Any]]) -> bytes:
    """One JSON object per line, keys sorted; NaN and infinity as null, as in every other run
    file (``json.dumps`` wrote them as the ``NaN`` and ``Infinity`` tokens strict JSON lacks).

    >>> json_lines([{"b": float("nan"), "a": 1}])
    b'{"a": 1, "b": null}\\n'
    """
    return "".join(
        json.dumps(to_jsonable(row), sort_keys=True, allow_nan=False) + "\n" for row in rows
    ).encode("utf-8")


def _shadow_and_export(
    config: CryptoRunConfig,
    registry: Registry,
    prepared: PreparedCrypto,
    evaluation: CryptoEvaluation,
    run_id: str,
) -> tuple[dict[str, str], dict[str, Any], dict[str, _HorizonMove]]:
    """Step 8-9 against the registry: the champion on record faces this run's challengers.

    The chosen champion of each horizon is refit and registered; the pointer moves are returned
    for the caller to make once the reports are written, each conditional on the pointer still
    holding ``expected`` (what was read here, before the refits), with the decisions to save
    after it, as football saves them: a first champion's "no champion yet" (the pointer's
    reason too: it read as a challenger's rejection, "... not better than the champion") and
    the Holm decision over the challengers. Each decision is stamped once, when it is made here
    (the first champion's before the test's, as football orders them), so the report and the
    saved file carry the same ``decided_utc``; the champion's own record holds when the
    pointer moved. A first champion is named in the report's decision (``first_champion``,
    ``"<model> <version>: <reason>"``), as football's is.
    """
    rule = promotion_rule(config)
    champions: dict[str, str] = {}
    decisions: dict[str, Any] = {}
    export_jobs: list[Job] = []
    read: dict[str, tuple[str, str] | None] = {}
    tested: dict[str, PromotionDecision] = {}
    crowned_utc: dict[str, datetime] = {}  # when a first champion was decided
    moves: dict[str, _HorizonMove] = {}
    # the groups every refit is exported with (the walk-forward's: a consensus's gate is keyed
    # by their names, and groups ranked over every bar gave DOGE's gate to MATIC when their
    # volumes swapped places); their pairs are the pairs this run covers
    groups = evaluation.groups or pair_groups(prepared, config.group_size)
    run_pairs = [pair for _, pairs in groups for pair in pairs]
    # what every refit is fit on, in its manifest's `training_window`
    candles = prepared.data.candles
    window = training_window(candles["open_time_utc"], candles["pair"])
    for horizon, ev in evaluation.horizons.items():
        record = registry.champion(VERTICAL, horizon)
        read[horizon] = None if record is None else (record.model_name, record.version)
        failed = ev.failed_jobs
        if failed:  # evidence on part of the pairs: nothing is crowned, refreshed or promoted
            champions[horizon] = record.model_name if record is not None else "none"
            decisions[horizon] = {
                "promote": False,
                "champion": champions[horizon],
                "reason": failed_jobs_reason(record, failed),
                "failed_jobs": failed,
            }
            continue
        why = (
            _why_champion_stays(registry, horizon, record, config, ev, run_pairs, window)
            if record
            else None
        )
        if record is not None and why is not None:
            champions[horizon] = record.model_name
            decisions[horizon] = {
                "promote": False,
                "champion": record.model_name,
                "reason": f"{record.model_name} {record.version} stays: {why}",
            }
            continue
        incumbent = record.model_name if record is not None else DEFAULT_CHAMPION
        if record is None:  # decided with the test, stamped just before it (saved first)
            crowned_utc[horizon] = registry.now()
        champion, decision = shadow_test(ev.period_net, incumbent, rule)
        champions[horizon] = champion
        if "challenger" in decision:  # a test was made: stamped now, as the saved file will be
            tested[horizon] = PromotionDecision.model_validate(decision).model_copy(
                update={
                    "decided_utc": registry.now(),
                    "champion_version": record.version if record is not None else None,
                }
            )
            decision = tested[horizon].model_dump(mode="json")
        decisions[horizon] = decision
        export_jobs.append(
            Job(
                f"export/{horizon}",
                fit_final_artifacts,
                (
                    evaluation.export_rows[horizon],  # every evaluated horizon was planned
                    champion,
                    groups,
                    config,
                    horizon,
                    ev.gate_enabled if champion == "consensus" else None,
                ),
            )
        )
    outcomes = _on_backend(export_jobs, config)
    if any(outcome.ok for outcome in outcomes):  # versions to register, until the report
        registry.begin_run(VERTICAL, run_id)
    for outcome in outcomes:
        horizon = outcome.key.split("/", 1)[1]
        if not outcome.ok:  # nothing registered: the champion on record stays
            decisions[horizon]["export_error"] = outcome.error
            before = read[horizon]
            champions[horizon] = before[0] if before is not None else "none"
            continue
        files: dict[str, bytes] = outcome.result
        name = champions[horizon]
        ev = evaluation.horizons[horizon]
        manifest = build_manifest(
            model_name=name,
            vertical=VERTICAL,
            market=horizon,
            config=config,
            files=files,
            data_sha256=prepared.data_sha256,
            features_sha256=prepared.features_sha256,
            training_window=window,
            scores={
                k: float(v)
                for k, v in ev.models.get(name, {}).items()
                if isinstance(v, int | float) and np.isfinite(v)
            },
            backtest={"buy_and_hold": ev.buy_and_hold},
            run_id=run_id,
        )
        version = registry.register(VERTICAL, horizon, name, files, manifest)
        move = _HorizonMove(name, version, "", read[horizon])
        made = tested.get(horizon)
        if made is not None:
            # the version the test left champion, as registered here: the winner's, else the
            # champion's refit (as football records it; the version on record before the
            # refresh read as one the pointer had since moved away from)
            key = "challenger_version" if made.promote else "champion_version"
            made = made.model_copy(update={key: version})
            decisions[horizon] = made.model_dump(mode="json")
        if read[horizon] is None:  # the first champion, crowned as football crowns one
            net = ev.period_net.get(name)
            first = decide_promotion(
                None, None, name, None if net is None else -net, rule, challenger_version=version
            )
            first = first.model_copy(update={"decided_utc": crowned_utc[horizon]})
            move.decisions.append(first)
            move.reason = first.reason
            decisions[horizon]["first_champion"] = f"{name} {version}: {first.reason}"
        if made is not None:
            move.decisions.append(made)
            if made.promote and not move.reason:
                move.reason = made.reason
        if not move.reason:  # nothing beat the champion: the pointer names its refit
            move.reason = (
                f"champion {name} refreshed: refit on bars up to {window['end_utc']:%Y-%m-%d}"
            )
        moves[horizon] = move
    return champions, decisions, moves


def failed_jobs_reason(record: ChampionRecord | None, failed: list[dict[str, Any]]) -> str:
    """Why a run leaves a horizon's champion as it was: some of its jobs failed.

    The pairs of a failed job are missing from the horizon's backtest and shadow test, so no
    model is promoted, crowned or refit on that evidence (one was, on the pairs left).

    Examples
    --------
    >>> import textwrap
    >>> failed = [{"job": "1h/g1", "pairs_left_out": ["ETHUSDT"], "error": "MemoryError: oom"}]
    >>> print(textwrap.fill(failed_jobs_reason(None, failed), 88))
    no champion crowned: job 1h/g1 failed (MemoryError: oom), so ETHUSDT is missing from the
    evidence; nothing is promoted on part of the pairs
    """
    jobs = "; ".join(f"job {f['job']} failed ({f['error']})" for f in failed)
    pairs = [p for f in failed for p in f["pairs_left_out"]]
    missing = ", ".join(pairs) if pairs else "their pairs"
    verb = "is" if len(pairs) == 1 else "are"
    kept = (
        "no champion crowned" if record is None else f"{record.model_name} {record.version} stays"
    )
    return (
        f"{kept}: {jobs}, so {missing} {verb} missing from the evidence; nothing is promoted on "
        "part of the pairs"
    )


def prepared_rows_for_export(
    prepared: PreparedCrypto, config: CryptoRunConfig, horizon: str
) -> pd.DataFrame:
    """Every labelled training row of a horizon (the champion is refit on all of them)."""
    return export_rows(prepared, horizon_rows(prepared, horizon, config))


def export_rows(prepared: PreparedCrypto, rows: pd.DataFrame) -> pd.DataFrame:
    """The labelled training rows of :func:`horizon_rows`, with the columns a refit reads.

    Rows inside the label's dead zone (``direction == 0``) are kept: the models are fitted
    without them, but the expected move (:func:`expected_move`) counts them.
    """
    keep = rows["train_row"] & np.isfinite(rows["forward_return"])
    columns = [
        *prepared.feature_columns,
        "open_time_utc",
        "label_end_utc",
        "pair",
        "regime",
        "direction",
        "forward_return",
    ]
    return rows.loc[keep, columns].reset_index(drop=True)


def fit_final_artifacts(
    rows: pd.DataFrame,
    champion: str,
    groups: list[tuple[str, list[str]]],
    config: CryptoRunConfig,
    horizon: str | None = None,
    gate_enabled: dict[str, dict[str, list[str]]] | None = None,
) -> dict[str, bytes]:
    """Step 9: fit the champion on all rows of each pair group (the walk-forward's groups).

    Each member is fitted as the walk-forward fitted it (`RegimeModels`): with ``per_regime``,
    logistic and LightGBM also get a model of their own in each regime with enough rows
    (``<group>-<member>@<regime>-<file>``; ``regime_models`` in the spec lists them). The
    export fitted one pooled model whatever the setting, so the champion served was not the
    one the shadow test chose (P(up) apart by up to 0.42 on the same rows).

    Besides the fitted members, ``crypto_model.json`` records what serving needs to turn P(up)
    into a position the way the walk-forward did (spec version 2): the cost model, ``min_edge``,
    the label dead zone, each group's mean absolute forward return on its training rows, the
    universe filters and, for ``consensus``, the regime gate of the last walk-forward step.
    """
    feature_columns = [c for c in CRYPTO_FEATURE_COLUMNS if c in rows.columns]
    members = list(BASE_MODELS) if champion == "consensus" else [champion]
    files: dict[str, bytes] = {}
    regime_models: dict[str, dict[str, list[str]]] = {}
    mean_abs_return: dict[str, float | None] = {}
    for group, pairs in groups:
        part = rows.loc[rows["pair"].isin(pairs)]
        mean_abs_return[group] = (
            expected_move(
                part["forward_return"].to_numpy(dtype=np.float64), part["direction"].to_numpy()
            )
            if len(part)
            else None
        )
        part = part.loc[part["direction"] != 0]  # the models learn the side outside the dead zone
        y = (part["direction"].to_numpy() > 0).astype(np.int64)
        X = part[[*feature_columns, "open_time_utc", "label_end_utc"]]
        for name in members:
            params = model_params(name, config.model_params, tuple(feature_columns), config.seed)
            fitted = RegimeModels(name, params, config.per_regime).fit(
                X, y, part["regime"].to_numpy()
            )
            for file_name, data in fitted.pooled_.to_artifact().items():
                files[f"{group}-{name}-{file_name}"] = data
            for regime, model in fitted.by_regime_.items():
                for file_name, data in model.to_artifact().items():
                    files[f"{group}-{name}@{regime}-{file_name}"] = data
            if fitted.by_regime_:
                regime_models.setdefault(group, {})[name] = sorted(fitted.by_regime_)
    spec: dict[str, Any] = {
        "spec_version": 2,
        "champion": champion,
        "members": members,
        "groups": dict(groups),
        "feature_columns": feature_columns,
        "costs": config.costs.model_dump(mode="json"),
        "universe": config.universe.model_dump(mode="json"),
        "min_edge": config.min_edge,
        "latency_bars": config.walk_forward.latency_bars,
        "mean_abs_forward_return": mean_abs_return,
        "regime_models": regime_models,
    }
    if horizon is not None:
        bars = HORIZON_BARS[horizon]
        spec.update(
            horizon=horizon,
            horizon_bars=bars,
            dead_zone=dead_zone_for(bars, fee_rate(cost_model(config))),  # the fee charged
        )
    if gate_enabled:
        spec["gate_enabled"] = gate_enabled
    files[CRYPTO_CHAMPION_SPEC] = json.dumps(spec, indent=1, sort_keys=True).encode()
    return files


#: Every evaluated period's net return per horizon and model (:func:`period_net_table`).
PERIOD_NET_FILE = "period_net.parquet"


def period_net_table(evaluation: CryptoEvaluation) -> pd.DataFrame:
    """Every evaluated period's net return after costs: ``horizon``, ``period_utc``, then
    ``net_<model>`` per model (NaN where a model has none at that horizon).

    The shadow test of a run's decision is made on these columns (its losses are their
    negatives; ``flat``'s is 0, whether run or not), so a saved decision can be checked again
    from the run's report in the registry, without re-running.
    """
    frames = []
    for horizon, ev in evaluation.horizons.items():
        frame = pd.DataFrame({"horizon": horizon, "period_utc": ev.period_times})
        for name, net in ev.period_net.items():
            frame[f"net_{name}"] = np.asarray(net, dtype=np.float64)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_crypto_reports(
    run_dir: Path,
    config: CryptoRunConfig,
    run_id: str,
    created: datetime,
    prepared: PreparedCrypto,
    evaluation: CryptoEvaluation,
    champions: dict[str, str],
    decisions: dict[str, Any],
) -> dict[str, Any]:
    """Every report of step 9; the daily summary is returned too."""
    out = run_dir / "crypto"
    write_json(out / "evaluation.json", evaluation.to_contract_json())
    write_json(out / "data_integrity.json", prepared.data.report.to_dict())
    metrics: dict[str, Any] = {
        h: {
            "models": ev.models,
            "buy_and_hold": ev.buy_and_hold,
            "champion": champions.get(h, ev.champion),
            "promotion": decisions.get(h, ev.decision),
            "gate_fallback_share": ev.gate_fallback_share,
            "failed_jobs": ev.failed_jobs,  # [] when every job of the horizon ran
        }
        for h, ev in evaluation.horizons.items()
    }
    if evaluation.not_evaluated:  # beside the horizons, only when one has no decision
        metrics["not_evaluated"] = evaluation.not_evaluated
    write_json(out / "metrics.json", metrics)
    write_atomic(out / PERIOD_NET_FILE, parquet_bytes(period_net_table(evaluation)))
    processed = prepared.data.pairs
    without = prepared.data.pairs_without_funding
    write_json(
        out / "costs.json",
        {
            "cost_model": cost_model(config).model_dump(mode="json"),
            # funding on with no rates charges nothing: say for which pairs (the terminal warned)
            "funding_rates": {
                "pairs_with_rates": [p for p in processed if p not in without],
                "pairs_without_rates": without,
            },
            "by_horizon": {
                h: {
                    name: {
                        k: m.get(k)
                        for k in (
                            "gross_return",
                            "net_return",
                            "fee_cost",
                            "spread_cost",
                            "slippage_cost",
                            "funding_cost",
                            "borrow_cost",
                            "n_funding_missing",
                            "costs",
                            "turnover",
                        )
                    }
                    for name, m in ev.models.items()
                }
                for h, ev in evaluation.horizons.items()
            },
        },
    )
    write_json(
        out / "regime_map.json", {h: ev.regime_counts for h, ev in evaluation.horizons.items()}
    )
    for h, ev in evaluation.horizons.items():
        write_atomic(out / f"decisions_{h}.jsonl", json_lines(ev.events))
    skipped = evaluation.skipped
    summary = {
        "run_id": run_id,
        "date": created.strftime("%Y-%m-%d"),
        "created_utc": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "pairs_processed": len(processed),
        "pairs": processed,
        "champions_exported": sum(
            1
            for h in champions
            if not {"export_error", "failed_jobs", "not_applied"} & set(decisions.get(h, {}))
        ),
        "champions": champions,
        "pairs_skipped": len(skipped),
        "skipped": skipped,
        "jobs": evaluation.jobs,
        "jobs_failed": sum(1 for j in evaluation.jobs if not j["ok"]),
        "failed_jobs": evaluation.failed_jobs,
        "decision_events": {h: len(ev.events) for h, ev in evaluation.horizons.items()},
        "not_evaluated": evaluation.not_evaluated,
        "survivorship": evaluation.survivorship,
        "timings_s": {k: round(v, 3) for k, v in evaluation.timings.items()},
        "backend": config.backend,
    }
    write_json(out / "daily_summary.json", summary)
    return summary


def print_crypto_summary(
    console: Console,
    evaluation: CryptoEvaluation,
    champions: dict[str, str],
    run_dir: Path,
    decisions: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Terminal table per horizon and model: net Sharpe, net and gross return, drawdown,
    turnover per year, log loss and the periods the model held a position (a Sharpe over a
    handful of them is noise); then each horizon's shadow-test decision, and each horizon
    not evaluated with the reason (``1d: not evaluated: ...``)."""
    # no vertical rules: nine columns fit an 80-column terminal without clipping
    table = Table(
        title="marketcast crypto: purged walk-forward, net of costs",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for column in ("h", "model", "Sharpe", "net", "gross", "max DD", "turn/yr", "log loss", "held"):
        left = column in ("h", "model")
        table.add_column(column, justify="left" if left else "right", no_wrap=True)
    for h, ev in evaluation.horizons.items():
        rows = [*ev.models.items(), ("buy_and_hold", ev.buy_and_hold)]
        for name, m in rows:
            mark = " *" if champions.get(h) == name else ""
            table.add_row(
                h,
                name + mark,
                _fmt(m.get("sharpe"), "{:+.2f}"),
                _fmt(m.get("net_return"), "{:+.1%}"),
                _fmt(m.get("gross_return"), "{:+.1%}"),
                _fmt(m.get("max_drawdown"), "{:.1%}"),
                _fmt(m.get("turnover"), "{:.1f}"),
                _fmt(m.get("log_loss"), "{:.4f}"),
                _fmt(m.get("n_active_periods"), "{:,.0f}"),
            )
    print_unclipped(console, table)
    for line in caveat_lines(evaluation):
        print_plain(console, line)
    for horizon, decision in (decisions or {}).items():
        if decision.get("failed_jobs"):  # tested on part of the pairs: nothing changed
            line = f"{horizon}: not promotable: {decision.get('reason')}"
            print_plain(console, line)
        elif decision.get("export_error"):  # nothing was registered: no verdict took effect
            line = export_failed_line(horizon, decision, champions.get(horizon, "none"))
            console.print(line, markup=False, highlight=False)
        else:
            print_decisions(console, {horizon: decision})
    for horizon, reason in evaluation.not_evaluated.items():  # its champion was left as it was
        print_plain(console, f"{horizon}: not evaluated: {reason}")
    console.print(f"champion marked *; reports: {run_dir / 'crypto'}")


def export_failed_line(horizon: str, decision: Mapping[str, Any], champion: str) -> str:
    """The terminal line of a horizon whose champion failed to export: nothing was registered.

    ``champion`` is the registry's after the run (``"none"``: there is none). A failed first
    export read "1d: flat stays champion: ..." with no champion in the registry.

    Examples
    --------
    >>> decision = {"champion": "flat", "reason": "no other model", "export_error": "OSError"}
    >>> print(export_failed_line("1d", decision, "none"))
    1d: no champion: the export of flat failed, so nothing was registered (OSError); no other model
    """
    promoted = bool(decision.get("promote"))
    exported = decision.get("challenger") if promoted else decision.get("champion")
    kept = "no champion" if champion == "none" else f"{champion} stays champion"
    line = (
        f"{horizon}: {kept}: the export of {exported} failed, so nothing was registered "
        f"({decision['export_error']})"
    )
    if decision.get("challenger") is None:
        return f"{line}; {decision.get('reason')}"
    return f"{line}; the test: {decision_verdict(decision)}"


def caveat_lines(evaluation: CryptoEvaluation) -> list[str]:
    """Terminal lines, for `run` and `evaluate` alike: one per horizon whose evaluated holdings
    ran into a pair's delisting, then the survivorship warning (`survivorship`), if any.

    Examples
    --------
    >>> ev = HorizonEvaluation("1d", {}, {}, "flat", {}, {}, pd.DatetimeIndex([]), [], {}, 1.0,
    ...     delisting_exits=[{"pair": "LTCUSDT", "periods": 1,
    ...                       "first_decision_utc": "2024-06-15T00:00:00+00:00"}])
    >>> print(*caveat_lines(CryptoEvaluation(1, {"1d": ev}, [], [], {})))
    1d: periods closed at a delisting pair's last price: LTCUSDT 1 from 2024-06-15
    """
    out = []
    for horizon, ev in evaluation.horizons.items():
        if ev.delisting_exits:
            pairs = ", ".join(
                f"{d['pair']} {d['periods']} from {str(d['first_decision_utc'])[:10]}"
                for d in ev.delisting_exits
            )
            out.append(f"{horizon}: periods closed at a delisting pair's last price: {pairs}")
    if evaluation.survivorship.get("warning"):
        out.append(f"survivorship: {evaluation.survivorship['warning']}")
    return out


def _fmt(value: Any, pattern: str) -> str:
    """A cell of the terminal table; a missing value is a dash, as in the HTML reports."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return pattern.format(value)


def _why_champion_stays(
    registry: Registry,
    horizon: str,
    champion: ChampionRecord,
    config: CryptoRunConfig,
    ev: HorizonEvaluation,
    run_pairs: Sequence[str],
    window: Mapping[str, Any],
) -> str | None:
    """Why this run may neither refresh nor challenge the champion, or None when it may.

    A champion this run did not evaluate was tested against nothing here (it used to be
    replaced by this run's default); ``flat``'s net is 0 whether run or not. A champion whose
    manifest or files cannot be read stays: the pairs and settings below come from them. A run
    that does not cover every pair the champion serves (``run_pairs``, the pairs of this run's
    export groups, against the groups of its ``crypto_model.json``, a pair renamed since under
    its new name, as ``pair_renames`` loads it) would replace it with a
    refit or a challenger on fewer pairs, and the server then answered every other pair
    "pair not in any training group of the champion"; football keeps a champion from a run on
    fewer leagues the same way. A run whose settings make the champion's model another model
    exported its own fit as the champion, untested, and tested the challengers against it. The
    settings compared are the champion's ``model_params`` entry (every entry for ``consensus``,
    which votes with the others), ``per_regime`` for the models it splits by regime, and the
    trade filter's ``min_edge`` for every model that trades (``flat`` uses none of them). A
    run that scored no period tested nothing. A run on fewer bars than the champion was fit on,
    or on bars that end before its own (``window``, this run's training window, against the
    champion manifest's: :func:`less_data_than_champion`), would replace it with an older or
    thinner fit, untested. Checked in that order.
    """
    name = champion.model_name
    if name not in ev.period_net and name != DEFAULT_CHAMPION:
        return (
            f"this run did not evaluate it (models: {', '.join(ev.period_net)}), so no "
            "challenger was tested against it"
        )
    if not any(len(net) for net in ev.period_net.values()):
        return "this run scored no period, so it tested neither its refit nor a challenger"
    split = name in (*REGIME_SPLIT_MODELS, "consensus")
    keys = () if name == "flat" else ("per_regime", "min_edge") if split else ("min_edge",)
    try:
        served = _champion_pairs(registry, horizon, champion)
        manifest = registry.manifest(VERTICAL, horizon, name, champion.version)
        changed = changed_settings(manifest, config, keys, every_model=name == "consensus")
    except CHAMPION_READ_ERRORS as error:
        return (
            f"{unreadable_champion(error)}, so this run cannot tell which pairs it serves or "
            "which settings made it, and neither its refit nor a challenger may replace it "
            "(repair the champion's version, or `marketcast registry promote` a version to "
            "replace it on purpose)"
        )
    # a pair renamed since the champion was made (pair_renames) is covered under its new name
    renamed = {old: rename.to for old, rename in config.pair_renames.items()}
    uncovered = sorted({renamed.get(pair, pair) for pair in served} - set(run_pairs))
    if uncovered:
        return (
            f"it serves {', '.join(uncovered)}, which this run did not cover (this run: "
            f"{', '.join(sorted(run_pairs))}), so neither its refit nor a challenger may "
            "replace it (run on every pair it serves, or `marketcast registry promote` a version "
            "to drop those pairs on purpose)"
        )
    if changed:
        return (
            f"this run's {' and '.join(changed)} differ from the champion's, so no challenger was "
            "tested against the champion itself (`marketcast registry promote` a version to "
            "replace it on purpose, or run with the champion's settings)"
        )
    less = less_data_than_champion(manifest.training_window, window, "bars")
    if less:
        return (
            f"{less}, so neither its refit nor a challenger may replace it (`marketcast "
            "registry promote` a version to replace it on purpose, or run on bars that reach "
            "the champion's)"
        )
    return None


def _champion_pairs(registry: Registry, horizon: str, champion: ChampionRecord) -> set[str]:
    """The pairs a champion serves: those of the pair groups in its ``crypto_model.json``;
    none when its manifest lists no such file (a version registered without one cannot be
    served, so replacing it drops no pair).

    Raises
    ------
    RegistryError, ValueError, OSError
        When its manifest or files cannot be read, or its spec holds no pair groups
        (``CHAMPION_READ_ERRORS``).
    """
    files = registry.load_files(VERTICAL, horizon, champion.model_name, champion.version)
    if CRYPTO_CHAMPION_SPEC not in files:
        return set()
    spec = json.loads(files[CRYPTO_CHAMPION_SPEC])
    groups = spec.get("groups") if isinstance(spec, dict) else None
    if not isinstance(groups, dict) or not all(isinstance(p, list) for p in groups.values()):
        raise ValueError(
            f"{champion.model_name} {champion.version}: {CRYPTO_CHAMPION_SPEC} names no groups"
        )
    return {str(pair) for pairs in groups.values() for pair in pairs}
