"""One crypto job: purged walk-forward of every model on one pair group and one horizon.

A job gets the rows of its pairs (features, regime, label, cost inputs) and returns, for each
decision on the horizon's period grid in the test window, every model's P(up) and position,
the consensus score and position, and the decision events. It is a top-level function of
picklable arguments, so local processes and Ray run it unchanged.

Positions come from the edge after costs: a model's expected return for a row is
``(2 p_up - 1) * mean |forward return|`` (the mean measured on its training rows), and it takes
a position of ``sign(2 p_up - 1)`` only when that edge exceeds the round-trip cost of the row
(taker fee both ways, the estimated spread, modelled slippage both ways), and for a short that
pays no funding also the borrow interest over the hold, by ``min_edge``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from marketcast.ensemble.consensus import (
    CORR_WINDOW,
    DecisionEvent,
    consensus,
    reliability_from_history,
)
from marketcast.ensemble.regime import REGIMES, RegimeGate
from marketcast.models.crypto import make_crypto_model
from marketcast.splits.purged import PurgedWalkForward
from marketcast.splits.walk_forward import Step

logger = logging.getLogger(__name__)

#: Models that learn from training rows (the others are fixed rules).
BASE_MODELS = ("flat", "momentum", "logistic", "lightgbm")
MIN_REGIME_ROWS = 2_000


#: The models fitted per regime when ``per_regime`` is on (the others ignore the setting).
REGIME_SPLIT_MODELS = ("logistic", "lightgbm")


@dataclass(frozen=True)
class GroupTask:
    """Everything one (pair group, horizon) job needs; pickled to the worker."""

    group: str
    horizon: str
    horizon_bars: int
    rows: pd.DataFrame
    feature_columns: tuple[str, ...]
    models: tuple[str, ...]
    model_params: dict[str, dict[str, Any]]
    start_utc: pd.Timestamp
    end_utc: pd.Timestamp | None
    step_days: int
    max_train_days: int | None
    latency_bars: int
    per_regime: bool
    min_edge: float
    seed: int
    #: the group's pairs, most liquid first: a job that fails names them as left out of its
    #: horizon (``failed_jobs`` in the reports)
    pairs: tuple[str, ...] = ()


@dataclass
class GroupResult:
    """A job's output: one row per decision on the period grid of the test window."""

    group: str
    horizon: str
    decisions: pd.DataFrame
    events: list[dict[str, Any]] = field(default_factory=list)
    n_steps: int = 0
    n_fits: int = 0
    gate_log: list[dict[str, Any]] = field(default_factory=list)


class RegimeModels:
    """One model per regime where the regime has enough training rows, else the pooled model."""

    def __init__(self, name: str, params: dict[str, Any], per_regime: bool) -> None:
        self.name = name
        self.params = params
        self.per_regime = per_regime

    def fit(self, X: pd.DataFrame, y: np.ndarray, regime: np.ndarray) -> RegimeModels:
        self.pooled_ = make_crypto_model(self.name, **self.params).fit(X, y)
        self.by_regime_: dict[str, Any] = {}
        self.n_fits_ = 1
        if self.per_regime and self.name in REGIME_SPLIT_MODELS:
            for name in REGIMES:
                mask = regime == name
                if mask.sum() >= MIN_REGIME_ROWS and len(np.unique(y[mask])) == 2:
                    model = make_crypto_model(self.name, **self.params)
                    self.by_regime_[name] = model.fit(X.loc[mask], y[mask])
                    self.n_fits_ += 1
        return self

    def predict_up(self, X: pd.DataFrame, regime: np.ndarray) -> np.ndarray:
        p_up = self.pooled_.predict_proba(X)[:, 1]
        for name, model in self.by_regime_.items():
            mask = regime == name
            if mask.any():
                p_up[mask] = model.predict_proba(X.loc[mask])[:, 1]
        return np.asarray(p_up, dtype=np.float64)


def model_params(
    name: str, configured: dict[str, dict[str, Any]], feature_columns: tuple[str, ...], seed: int
) -> dict[str, Any]:
    """A model's parameters: the config's, plus the feature list, one thread and the seed."""
    params = dict(configured.get(name, {}))
    if name in ("logistic", "lightgbm"):
        params.setdefault("feature_columns", list(feature_columns))
    if name == "lightgbm":
        params.setdefault("random_state", seed)
        params.setdefault("n_jobs", 1)  # one job per core already
    return params


def expected_move(forward_return: np.ndarray, direction: np.ndarray) -> float:
    """The scale that turns a tilt ``2 P(up) - 1`` into an expected return: mean of
    ``|forward return|`` over rows outside the label's dead zone, counted over ALL rows.

    The models learn P(up) only on rows outside the dead zone, so a row's expected return is
    ``P(outside) * (2p - 1) * E[|r| | outside] = (2p - 1) * mean(|r| * outside)``; rows inside
    carry no view. (The mean of |r| over the outside rows alone left out ``P(outside)`` and
    overstated the edge by 1.41x at 1h on BTC and ETH, so trades were taken that lost after
    costs.) ``0.0`` when there are no rows.

    Examples
    --------
    >>> expected_move(np.array([0.02, -0.001, -0.01, 0.0005]), np.array([1, 0, -1, 0]))
    0.0075
    """
    if len(forward_return) == 0:
        return 0.0
    outside = np.asarray(direction) != 0
    return float(np.mean(np.abs(forward_return) * outside))


def edge_positions(
    p_up: np.ndarray,
    mean_abs_return: float,
    round_trip_cost: np.ndarray,
    min_edge: float,
    short_borrow: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Position in {-1, 0, 1}: the side of ``p_up``, when the edge after costs clears
    ``min_edge``; a short's costs include ``short_borrow``, the interest it pays over the hold
    where it pays no funding (``costs.short_borrow_over``).

    Examples
    --------
    >>> edge_positions(np.array([0.9, 0.55, 0.1]), 0.01, np.array([0.002] * 3), 0.0)
    array([ 1.,  0., -1.])
    >>> edge_positions(np.array([0.9, 0.1]), 0.01, np.array([0.002] * 2), 0.0, 0.007)
    array([1., 0.])
    """
    tilt = 2.0 * p_up - 1.0
    cost = round_trip_cost + np.where(tilt < 0, short_borrow, 0.0)
    edge = np.abs(tilt) * mean_abs_return - cost
    return np.where(edge > min_edge, np.sign(tilt), 0.0)


def walk_forward_steps(task: GroupTask) -> Iterator[tuple[Step, np.ndarray]]:
    """The job's walk-forward steps that hold a decision on the period grid, with those rows.

    A step is a test window with rows whose labels resolved (embargo included) before it;
    its test rows are those on the horizon's period grid.
    """
    rows = task.rows
    # decision to resolution: the latency to entry, then the holding
    label_span = pd.Timedelta(hours=task.horizon_bars + task.latency_bars)
    splitter = PurgedWalkForward(
        test_bars_step=pd.Timedelta(days=task.step_days),
        embargo=label_span,
        horizon=label_span,
        max_train=None if task.max_train_days is None else pd.Timedelta(days=task.max_train_days),
    )
    on_grid = rows["on_grid"].to_numpy(dtype=bool)
    steps = splitter.split(
        rows["decision_time_utc"], rows["label_end_utc"], task.start_utc, task.end_utc
    )
    for step in steps:
        test = step.test_index[on_grid[step.test_index]]
        if len(test):
            yield step, test


def has_a_step(task: GroupTask) -> bool:
    """Whether the job has a walk-forward step to decide on (cheap: no model is fitted)."""
    return next(walk_forward_steps(task), None) is not None


def run_group_task(task: GroupTask) -> GroupResult:
    """Walk forward over the test window; see the module docstring."""
    rows = task.rows
    label_end = rows["label_end_utc"]
    # The time columns travel with the features: LightGBM's early stopping holds out the latest
    # rows by time, not the last pair in row order, and purges the labels that overlap them.
    X_all = rows.loc[:, [*task.feature_columns, "open_time_utc", "label_end_utc"]]
    ret = rows["forward_return"].to_numpy(dtype=np.float64)
    in_universe = rows["in_universe"].to_numpy(dtype=bool)
    direction = rows["direction"].to_numpy()
    regime = rows["regime"].to_numpy(dtype=object)
    stride_ok = rows["train_row"].to_numpy(dtype=bool)
    cost = rows["round_trip_cost"].to_numpy(dtype=np.float64)
    borrow = rows["short_borrow"].to_numpy(dtype=np.float64)

    base = [m for m in task.models if m in BASE_MODELS]
    gate = RegimeGate()
    frames: list[pd.DataFrame] = []
    events: list[dict[str, Any]] = []
    gate_log: list[dict[str, Any]] = []
    n_steps = n_fits = 0
    last_position: dict[str, float] = {}
    score_history: dict[str, np.ndarray] = {}
    vote_history: dict[str, dict[str, np.ndarray]] = {}

    for step, test in walk_forward_steps(task):
        train = step.train_index
        train = train[stride_ok[train] & np.isfinite(ret[train])]
        mean_abs = expected_move(ret[train], direction[train])  # before the dead zone is left out
        train = train[direction[train] != 0]
        n_steps += 1
        y_train = (direction[train] > 0).astype(np.int64)
        X_test = X_all.iloc[test]
        out = pd.DataFrame({"row": rows.index[test]})
        p_by_model: dict[str, np.ndarray] = {}
        for name in base:
            params = model_params(name, task.model_params, task.feature_columns, task.seed)
            if len(train) < 200 or len(np.unique(y_train)) < 2:
                p_up = np.full(len(test), 0.5)
            else:
                fitted = RegimeModels(name, params, task.per_regime).fit(
                    X_all.iloc[train], y_train, regime[train]
                )
                n_fits += fitted.n_fits_
                p_up = fitted.predict_up(X_test, regime[test])
            p_by_model[name] = p_up
            out[f"p_up__{name}"] = p_up
            out[f"position__{name}"] = edge_positions(
                p_up, mean_abs, cost[test], task.min_edge, borrow[test]
            )

        if "consensus" in task.models:
            as_of = step.start_utc
            _consensus_step(
                task,
                out,
                test,
                rows,
                regime,
                p_by_model,
                gate,
                as_of,
                mean_abs,
                cost,
                borrow,
                in_universe,
                events,
                gate_log,
                last_position,
                score_history,
                vote_history,
            )
        frames.append(out)
        # Record each model's out-of-sample net per decision it traded; the gate and the
        # reliabilities of later steps only see the records whose labels have resolved by then.
        # A decision it sat out is no evidence: counted as a zero it let one lucky trade and 29
        # idle periods pass the gate's 30-period minimum. Nor is one outside the day's universe,
        # which the backtest never trades (known at the decision, as the universe is built).
        ends = label_end.to_numpy()[test]
        tradable = in_universe[test]
        for name in base:
            held = out[f"position__{name}"].to_numpy()
            with np.errstate(invalid="ignore"):  # 0 * inf (untradable bar) where not held
                net = (
                    held * ret[test]
                    - np.abs(held) * cost[test]
                    + np.minimum(held, 0) * borrow[test]
                )
            traded = (held != 0) & np.isfinite(net) & tradable
            for reg, end, value in zip(
                regime[test][traded], ends[traded], net[traded], strict=True
            ):
                gate.record(name, str(reg), pd.Timestamp(end), float(value))

    decisions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"row": []})
    if len(decisions):
        keep = rows.loc[decisions["row"].to_numpy()]
        for column in (
            "pair",
            "decision_time_utc",
            "regime",
            "in_universe",
            "forward_return",
            "period_return",
            "period_delisting",
            "delisting_exit",
            "direction",
            "spread_cost_est",
            "quote_volume",
            "cost_quote_volume",
            "volatility",
            "cost_inputs_filled",
            "funding_period",
        ):
            decisions[column] = keep[column].to_numpy()
    return GroupResult(task.group, task.horizon, decisions, events, n_steps, n_fits, gate_log)


def _consensus_step(
    task: GroupTask,
    out: pd.DataFrame,
    test: np.ndarray,
    rows: pd.DataFrame,
    regime: np.ndarray,
    p_by_model: dict[str, np.ndarray],
    gate: RegimeGate,
    as_of: pd.Timestamp,
    mean_abs: float,
    cost: np.ndarray,
    borrow: np.ndarray,
    in_universe: np.ndarray,
    events: list[dict[str, Any]],
    gate_log: list[dict[str, Any]],
    last_position: dict[str, float],
    score_history: dict[str, np.ndarray],
    vote_history: dict[str, dict[str, np.ndarray]],
) -> None:
    """Gate each model per regime, vote with reliability weights, size from S and the costs.

    Runs per pair over the step's decisions in time order, so the correlation penalty (earlier
    votes in ``vote_history``) and the adaptive threshold (every earlier score in
    ``score_history``) follow each pair's own sequence across steps. A pair outside the day's
    universe (``in_universe``, per row of ``rows``) holds no position, as the backtest has it:
    its enters and exits there were logged as events the backtest never made.
    """
    # Each model's resolved out-of-sample record, all regimes together, from the gate's records.
    resolved: dict[str, np.ndarray] = {}
    for name in p_by_model:
        records = pd.concat([gate.records(name, reg) for reg in REGIMES], ignore_index=True)
        # strictly before: a period ending at as_of exits at the open this step's decisions
        # enter at (the gate's rule, RegimeGate)
        resolved[name] = records["net_return"].to_numpy()[records["period_end_utc"] < as_of]
    reliability = reliability_from_history(resolved)
    voters = [m for m in p_by_model if m != "flat"]
    regime_test = regime[test].astype(str)
    enabled = {reg: [m for m in voters if gate.enabled(m, reg, as_of)] for reg in REGIMES}
    for reg in REGIMES:
        gate_log.append(
            {
                "as_of_utc": as_of.isoformat(),
                "regime": reg,
                "enabled": enabled[reg],
                "fallback": not enabled[reg],
            }
        )
    n = len(test)
    score = np.zeros(n)
    level = np.zeros(n)
    threshold = np.zeros(n)
    position = np.zeros(n)
    pairs = rows["pair"].to_numpy()[test]
    times = rows["decision_time_utc"].to_numpy()[test]
    for pair in np.unique(pairs):
        idx = np.flatnonzero(pairs == pair)
        idx = idx[np.argsort(times[idx], kind="stable")]
        active = {m: np.array([m in enabled[r] for r in regime_test[idx]]) for m in voters}
        earlier_votes = vote_history.get(str(pair))
        result = consensus(
            {m: p_by_model[m][idx] for m in voters},
            {m: reliability.get(m, 0.0) for m in voters},
            None,
            score_history=score_history.get(str(pair)),
            active=active,
            vote_history=earlier_votes,
        )
        score_history[str(pair)] = np.concatenate(
            [score_history.get(str(pair), np.empty(0)), result.score]
        )
        vote_history[str(pair)] = {
            m: np.concatenate(
                [earlier_votes[m] if earlier_votes else np.empty(0), result.votes[:, k]]
            )[-CORR_WINDOW:]
            for k, m in enumerate(result.model_names)
        }
        any_enabled = np.array([bool(enabled[r]) for r in regime_test[idx]])
        sized = np.where(any_enabled, np.asarray(result.position, dtype=np.float64), 0.0)
        p_equivalent = (1.0 + np.asarray(result.score)) / 2.0
        passes = (
            edge_positions(
                p_equivalent, mean_abs, cost[test][idx], task.min_edge, borrow[test][idx]
            )
            != 0
        )
        score[idx] = result.score
        level[idx] = result.level
        threshold[idx] = result.threshold
        position[idx] = np.where(passes & in_universe[test][idx], sized, 0.0)
        previous = last_position.get(str(pair), 0.0)
        for j, i in enumerate(idx):
            if abs(position[i] - previous) <= 1e-9:
                continue
            events.append(
                DecisionEvent(
                    time_utc=pd.Timestamp(times[i]).to_pydatetime(),
                    pair=str(pair),
                    horizon=task.horizon,
                    regime=str(regime_test[i]),
                    score=float(score[i]),
                    level=float(level[i]),
                    threshold=float(threshold[i]),
                    position=float(position[i]),
                    previous_position=previous,
                    model_votes={m: float(2 * p_by_model[m][i] - 1) for m in voters},
                    weights={
                        m: float(w)
                        for m, w in zip(result.model_names, result.weights[j], strict=True)
                    },
                    reason=_reason(previous, float(position[i])),
                ).to_dict()
            )
            previous = float(position[i])
        last_position[str(pair)] = previous
    out["p_up__consensus"] = (1.0 + score) / 2.0
    out["score__consensus"] = score
    out["level__consensus"] = level
    out["threshold__consensus"] = threshold
    out["position__consensus"] = position


def _reason(previous: float, position: float) -> str:
    if previous == 0.0:
        return "enter"
    if position == 0.0:
        return "exit"
    return "flip" if np.sign(previous) != np.sign(position) else "resize"
