"""Consensus vote: reliability-weighted, correlation-penalised model votes into one score S."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

_STD_FLOOR = 1e-9  # below this a signal is treated as constant (correlation undefined -> 0)
_TIE = 1e-12  # a consensus score this near 0 is a tie (votes and weights are at most 1)
#: Decisions of votes the rolling correlation penalty looks back over (``corr_window``).
CORR_WINDOW = 168


@dataclass(frozen=True)
class ConsensusResult:
    """Per-decision output of :func:`consensus`; arrays have one row per decision.

    Attributes
    ----------
    score
        S in [-1, 1], shape (n,).
    level
        Weighted share of votes agreeing with sign(S), in [0, 1], shape (n,).
    threshold
        Adaptive threshold |S| must exceed to take a position, shape (n,).
    position
        Target position in [-1, 1], shape (n,).
    weights
        Normalised weights, shape (n, n_models), columns in ``model_names`` order; a row sums
        to 1, or to 0 when no model has positive reliability.
    model_names
        Column order of ``weights``, ``votes`` and ``mean_abs_corr``.
    votes
        v = 2 P(up) - 1, shape (n, n_models).
    mean_abs_corr
        Mean |correlation| of each model's recent signals with the other voting models,
        shape (n, n_models).
    """

    score: np.ndarray
    level: np.ndarray
    threshold: np.ndarray
    position: np.ndarray
    weights: np.ndarray
    model_names: tuple[str, ...]
    votes: np.ndarray
    mean_abs_corr: np.ndarray


def _p_up(name: str, values: npt.ArrayLike) -> np.ndarray:
    """P(up) of one model as (n,); an (n, 2) [P(down), P(up)] array is accepted too."""
    p = np.asarray(values, dtype=float)
    if p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]
    if p.ndim != 1:
        raise ValueError(f"probas[{name!r}] must be (n,) P(up) or (n, 2), got shape {p.shape}")
    bad = ~np.isfinite(p) | (p < 0.0) | (p > 1.0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"probas[{name!r}] row {row}: P(up) must be in [0, 1], got {p[row]}")
    return p


def _per_row(name: str, field: str, value: Any, n: int) -> np.ndarray:
    """A scalar or (n,) array broadcast to (n,) floats; NaN is an error naming the row."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(f"{field}[{name!r}] must be a scalar or shape ({n},), got {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{field}[{name!r}] row {row} is {array[row]}")
    return array


def _static_abs_corr(signals: list[np.ndarray], min_periods: int) -> np.ndarray:
    """|Pearson correlation| (M, M) of the tails the signals share; undefined -> 0."""
    length = min(len(s) for s in signals)
    n_models = len(signals)
    if length < max(min_periods, 2):
        return np.zeros((n_models, n_models))
    matrix = np.column_stack([s[len(s) - length :] for s in signals])  # (length, M)
    centred = matrix - matrix.mean(axis=0)
    std = np.sqrt((centred**2).mean(axis=0))  # (M,)
    ok = std > _STD_FLOOR
    corr = np.zeros((n_models, n_models))
    cov = centred.T @ centred / length
    outer = np.outer(std, std)
    both = np.outer(ok, ok)
    corr[both] = cov[both] / outer[both]
    return np.clip(np.abs(corr), 0.0, 1.0)


def _rolling_abs_corr(votes: np.ndarray, window: int, min_periods: int) -> np.ndarray:
    """|Pearson correlation| (n, M, M) of votes over the last ``window`` decisions up to t."""
    n, n_models = votes.shape
    corr = np.zeros((n, n_models, n_models))
    frame = pd.DataFrame(votes)
    rolling = frame.rolling(window, min_periods=max(min_periods, 2))
    std = rolling.std(ddof=0).to_numpy()  # (n, M)
    for i in range(n_models):
        for j in range(i + 1, n_models):
            pair = rolling[i].corr(frame[j]).to_numpy()
            ok = (std[:, i] > _STD_FLOOR) & (std[:, j] > _STD_FLOOR) & np.isfinite(pair)
            value = np.where(ok, np.clip(np.abs(pair), 0.0, 1.0), 0.0)
            corr[:, i, j] = value
            corr[:, j, i] = value
    return corr


def _vote_history(
    history: Mapping[str, npt.ArrayLike] | None, names: tuple[str, ...], window: int
) -> np.ndarray:
    """The last ``window - 1`` earlier votes (h, M) in ``names`` order; (0, M) without any."""
    if history is None:
        return np.empty((0, len(names)))
    lacking = [name for name in names if name not in history]
    if lacking:
        raise ValueError(f"vote_history is missing for models {lacking}")
    columns = [np.asarray(history[m], dtype=float).ravel() for m in names]
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise ValueError(
            f"vote_history must have one length for every model, got {sorted(lengths)}"
        )
    for name, column in zip(names, columns, strict=True):
        bad = ~np.isfinite(column) | (np.abs(column) > 1.0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"vote_history[{name!r}] row {row}: a vote must be in [-1, 1]")
    earlier = np.column_stack(columns)  # consensus refuses an empty ``probas``: names is not empty
    return earlier[max(0, len(earlier) - (window - 1)) :]


def _adaptive_threshold(
    score: np.ndarray,
    history: np.ndarray,
    base_threshold: float,
    window: int,
    min_periods: int,
    ratio_bounds: tuple[float, float],
) -> np.ndarray:
    """base x clip(std of the last ``window`` earlier scores / std of all earlier scores)."""
    full = pd.Series(np.concatenate([history, score]))
    earlier = full.shift(1)  # the current score never sets its own threshold
    recent_std = earlier.rolling(window, min_periods=min_periods).std(ddof=0)
    long_std = earlier.expanding(min_periods=min_periods).std(ddof=0)
    ratio = (recent_std / long_std).to_numpy()[len(history) :]
    usable = np.isfinite(ratio) & (long_std.to_numpy()[len(history) :] > _STD_FLOOR)
    ratio = np.where(usable, ratio, 1.0)
    low, high = ratio_bounds
    threshold: np.ndarray = base_threshold * np.clip(ratio, low, high)
    return threshold


def consensus(
    probas: Mapping[str, npt.ArrayLike],
    reliability: Mapping[str, float | npt.ArrayLike],
    recent_signals: Mapping[str, npt.ArrayLike] | None = None,
    *,
    corr_penalty: float = 0.5,
    corr_window: int = CORR_WINDOW,
    corr_min_periods: int = 24,
    base_threshold: float = 0.1,
    dispersion_window: int = 168,
    dispersion_min_periods: int = 24,
    threshold_ratio_bounds: tuple[float, float] = (0.5, 2.0),
    score_history: npt.ArrayLike | None = None,
    position_cap: float = 0.5,
    active: Mapping[str, npt.ArrayLike] | None = None,
    vote_history: Mapping[str, npt.ArrayLike] | None = None,
) -> ConsensusResult:
    """Combine model forecasts for consecutive decisions of one (pair, horizon) into positions.

    For decision t and model m:

    - vote ``v_m = 2 P_m(up) - 1`` in [-1, 1];
    - raw weight ``w_m = max(r_m, 0) * a_m / (1 + corr_penalty * c_m)``, where ``r_m`` is the
      reliability, ``a_m`` is 1 when the model is active (e.g. enabled by the regime gate) and 0
      otherwise, and ``c_m`` is the mean |Pearson correlation| of m's recent signals with those of
      the *other* models that have a positive raw reliability (0 when there are none, and for a
      constant signal, whose correlation is undefined);
    - weights normalised to sum to 1 (all zero when no model has positive reliability);
    - score ``S = sum_m w_m v_m`` in [-1, 1];
    - level = sum of the weights of the models whose vote has the sign of S (0 when S = 0);
    - threshold ``= base_threshold * clip(sd_recent / sd_long, *threshold_ratio_bounds)``, with
      ``sd_recent`` the standard deviation of the previous ``dispersion_window`` scores and
      ``sd_long`` that of all previous scores (``score_history`` then earlier rows); the ratio is
      1 until ``dispersion_min_periods`` scores exist. A noisier S than usual raises the bar;
    - position ``= sign(S) * min(1, |S| / position_cap)`` when ``|S| > threshold``, else 0.

    Correlations come from ``recent_signals`` (one static matrix over the tails the series
    share) when given, otherwise from the models' own votes over the last ``corr_window``
    decisions up to and including t (0 before ``corr_min_periods`` of them); ``vote_history``
    carries the votes of earlier calls, so a backtest run in several calls (one per walk-forward
    step) penalises as one call over all its rows would. Nothing uses a later row, so the
    function can run over a whole backtest.

    Parameters
    ----------
    probas
        Per model, P(up) per decision, shape (n,) (an (n, 2) predict_proba output also works).
    reliability
        Per model, a scalar or a per-decision (n,) array, e.g. from
        :func:`reliability_from_history` on earlier, resolved periods.
    recent_signals
        Per model, its recent signals (votes or positions), for the correlation penalty.
    active
        Per model, a boolean (n,) mask (missing models are active).
    vote_history
        Per model, its votes ``2 P(up) - 1`` at the decisions before these, oldest first and of
        one length for every model (only the last ``corr_window - 1`` matter); for the rolling
        correlation only, not with ``recent_signals``.

    Returns
    -------
    ConsensusResult

    Examples
    --------
    >>> r = consensus({"a": [0.7, 0.4], "b": [0.6, 0.4]}, {"a": 1.0, "b": 1.0}, base_threshold=0.05)
    >>> r.score.round(2).tolist(), r.level.tolist(), r.position.round(2).tolist()
    ([0.3, -0.2], [1.0, 1.0], [0.6, -0.4])
    """
    names = tuple(probas)
    if not names:
        raise ValueError("consensus needs at least one model in probas")
    p_up = [_p_up(name, probas[name]) for name in names]
    n = len(p_up[0])
    for name, p in zip(names, p_up, strict=True):
        if len(p) != n:
            raise ValueError(f"probas[{name!r}] has {len(p)} rows, {names[0]!r} has {n}")
    missing = [name for name in names if name not in reliability]
    if missing:
        raise ValueError(f"reliability is missing for models {missing}")
    if corr_penalty < 0 or base_threshold < 0 or position_cap <= 0:
        raise ValueError("corr_penalty and base_threshold must be >= 0, position_cap > 0")

    votes = 2.0 * np.column_stack(p_up) - 1.0  # (n, M)
    n_models = len(names)
    raw = np.column_stack(
        [np.maximum(_per_row(m, "reliability", reliability[m], n), 0.0) for m in names]
    )  # (n, M)
    if active is not None:
        unknown = sorted(set(active) - set(names))
        if unknown:
            raise ValueError(f"active names models not in probas: {unknown}")
        for k, name in enumerate(names):
            if name in active:
                mask = np.asarray(active[name], dtype=bool)
                if mask.shape != (n,):
                    raise ValueError(f"active[{name!r}] must have shape ({n},), got {mask.shape}")
                raw[:, k] = np.where(mask, raw[:, k], 0.0)

    if recent_signals is not None:
        lacking = [name for name in names if name not in recent_signals]
        if lacking:
            raise ValueError(f"recent_signals is missing for models {lacking}")
        signals = [np.asarray(recent_signals[m], dtype=float).ravel() for m in names]
        abs_corr = np.broadcast_to(
            _static_abs_corr(signals, corr_min_periods), (n, n_models, n_models)
        )
    else:
        earlier = _vote_history(vote_history, names, corr_window)  # (h, M)
        abs_corr = _rolling_abs_corr(np.vstack([earlier, votes]), corr_window, corr_min_periods)[
            len(earlier) :
        ]  # (n, M, M)

    voting = raw > 0  # (n, M)
    off_diagonal = ~np.eye(n_models, dtype=bool)
    others = voting[:, None, :] & off_diagonal[None, :, :]  # (n, M, M): o votes and o != m
    n_others = others.sum(axis=2)
    corr_sum = np.where(others, abs_corr, 0.0).sum(axis=2)
    mean_abs_corr = np.divide(
        corr_sum, n_others, out=np.zeros((n, n_models)), where=n_others > 0
    )  # (n, M)
    penalised = raw / (1.0 + corr_penalty * mean_abs_corr)
    total = penalised.sum(axis=1, keepdims=True)
    weights = np.divide(penalised, total, out=np.zeros_like(penalised), where=total > 0)

    score = np.clip((weights * votes).sum(axis=1), -1.0, 1.0)
    # a tie is 0: opposite votes of 0.7 and 0.3 summed to -5.6e-17, a short side of level 0.5
    score[np.abs(score) <= _TIE] = 0.0
    agrees = (np.sign(votes) == np.sign(score)[:, None]) & (score != 0)[:, None]
    level = np.clip((weights * agrees).sum(axis=1), 0.0, 1.0)

    history = (
        np.asarray(score_history, dtype=float).ravel() if score_history is not None else np.empty(0)
    )
    threshold = _adaptive_threshold(
        score,
        history,
        base_threshold,
        dispersion_window,
        dispersion_min_periods,
        threshold_ratio_bounds,
    )
    magnitude = np.minimum(1.0, np.abs(score) / position_cap)
    position = np.where(np.abs(score) > threshold, np.sign(score) * magnitude, 0.0)
    return ConsensusResult(
        score=score,
        level=level,
        threshold=threshold,
        position=position,
        weights=weights,
        model_names=names,
        votes=votes,
        mean_abs_corr=mean_abs_corr,
    )


class DecisionEvent(BaseModel):
    """One simulated action (a change of position) for the decision log."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time_utc: datetime
    pair: str
    horizon: str
    regime: str
    score: float
    level: float
    threshold: float
    position: float
    previous_position: float
    model_votes: dict[str, float]
    weights: dict[str, float]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``time_utc`` as ISO 8601)."""
        return self.model_dump(mode="json")


def _action(previous: float, position: float) -> str:
    side = "long" if position > 0 else "short"
    if position == 0:
        return f"close {'long' if previous > 0 else 'short'}"
    if previous == 0:
        return f"open {side}"
    if np.sign(previous) != np.sign(position):
        return f"flip to {side}"
    return f"{'increase' if abs(position) > abs(previous) else 'reduce'} {side}"


def decision_events(
    result: ConsensusResult,
    time_utc: Sequence[datetime | pd.Timestamp | str] | pd.DatetimeIndex,
    *,
    pair: str,
    horizon: str,
    regimes: Sequence[str] | str,
    initial_position: float = 0.0,
    min_change: float = 1e-9,
) -> list[DecisionEvent]:
    """One :class:`DecisionEvent` per decision whose position differs from the previous one.

    The first decision is compared with ``initial_position``; a change smaller than
    ``min_change`` is not an action.
    """
    n = len(result.score)
    times = [pd.Timestamp(t) for t in time_utc]
    times = [t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC") for t in times]
    if len(times) != n:
        raise ValueError(f"time_utc has {len(times)} entries for {n} decisions")
    regime_list = [regimes] * n if isinstance(regimes, str) else list(regimes)
    if len(regime_list) != n:
        raise ValueError(f"regimes has {len(regime_list)} entries for {n} decisions")
    previous = np.concatenate([[float(initial_position)], result.position[:-1]])
    changed = np.flatnonzero(np.abs(result.position - previous) > min_change)
    events = []
    for t in changed.tolist():
        score, threshold = float(result.score[t]), float(result.threshold[t])
        position, before = float(result.position[t]), float(previous[t])
        comparison = ">" if abs(score) > threshold else "<="
        reason = (
            f"{_action(before, position)}: |S|={abs(score):.3f} {comparison} threshold "
            f"{threshold:.3f}, consensus level {float(result.level[t]):.2f}"
        )
        events.append(
            DecisionEvent(
                time_utc=times[t].to_pydatetime(),
                pair=pair,
                horizon=horizon,
                regime=str(regime_list[t]),
                score=score,
                level=float(result.level[t]),
                threshold=threshold,
                position=position,
                previous_position=before,
                model_votes={
                    m: float(result.votes[t, k]) for k, m in enumerate(result.model_names)
                },
                weights={m: float(result.weights[t, k]) for k, m in enumerate(result.model_names)},
                reason=reason,
            )
        )
    return events


def reliability_from_history(
    per_model_net_returns: Mapping[str, npt.ArrayLike],
    *,
    method: Literal["shrunk_sharpe", "hit_rate"] = "shrunk_sharpe",
    prior_periods: float = 100.0,
) -> dict[str, float]:
    """Reliability >= 0 per model from its resolved out-of-sample per-period net returns.

    ``shrunk_sharpe``: ``max(0, mean / sd) * n / (n + prior_periods)`` (per-period Sharpe, sd with
    ddof=1, shrunk toward 0 for short records). ``hit_rate``: ``max(0, 2 * hit - 1) * n /
    (n + prior_periods)`` with ``hit`` the share of positive returns among the ``n`` non-zero
    ones. NaN entries (unresolved periods) are skipped; fewer than two usable periods or a zero
    spread give 0.

    Examples
    --------
    >>> rel = reliability_from_history({"a": [0.01, 0.03, -0.01, 0.01], "b": [-0.02, 0.0, -0.01]})
    >>> round(rel["a"], 4), rel["b"]
    (0.0236, 0.0)
    """
    out: dict[str, float] = {}
    for name, values in per_model_net_returns.items():
        returns = np.asarray(values, dtype=float).ravel()
        returns = returns[np.isfinite(returns)]
        if method == "hit_rate":
            returns = returns[returns != 0]
        n = len(returns)
        if n < 2:
            out[name] = 0.0
            continue
        if method == "shrunk_sharpe":
            sd = float(np.std(returns, ddof=1))
            # a spread of rounding is none: returns one float step apart had a Sharpe of 1e14
            edge = float(np.mean(returns)) / sd if sd > _STD_FLOOR else 0.0
        elif method == "hit_rate":
            edge = 2.0 * float(np.mean(returns > 0)) - 1.0
        else:
            raise ValueError(f"unknown reliability method {method!r}")
        value = max(0.0, edge) * n / (n + prior_periods)
        out[name] = value if math.isfinite(value) else 0.0
    return out
