"""Dixon-Coles goals model: time-decayed Poisson with a low-score correction, per-league terms."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.linalg import LinAlgError, cholesky, solve_triangular
from scipy.optimize import minimize
from scipy.special import gammaln
from sklearn.base import BaseEstimator

from marketcast.labels.football import split_quarter_lines
from marketcast.models.base import (
    FeatureSource,
    check_goals,
    check_kickoffs,
    feature_matrix,
    require_fitted,
)
from marketcast.types import MarketKind

try:  # a dependency of scikit-learn; optional so the module also runs where it is absent
    from threadpoolctl import ThreadpoolController
except ImportError:  # pragma: no cover
    ThreadpoolController = None

logger = logging.getLogger(__name__)

ARTIFACT_FILE = "dixon_coles.json"
#: Matches whose time-decay weight falls below this are dropped from the fit (speed).
MIN_WEIGHT = 1e-3
#: Box bound on |rho|; tau > 0 is further kept by the barrier below.
RHO_BOUND = 0.3
#: Every tau factor of every training match (not only the low-score ones) must stay > 0: a smooth
#: barrier, zero for factors at or above this margin, rises as ``weight * margin / tau`` towards
#: tau = 0. Where the limit binds (D1 2020-21) the fit ends with the smallest tau at 0.003-0.012.
TAU_BARRIER_MARGIN = 0.05
#: Weight of that barrier per factor, in units of the objective (mean log-likelihood per match).
TAU_BARRIER_WEIGHT = 1e-7
#: Below this tau the barrier and the low-score log tau go on as straight lines (their tangents):
#: a trial step past tau = 0 gets a large, finite value and a gradient pointing back. (At 1e-2 *
#: weight * margin the values reached 1e21 and L-BFGS-B stalled.)
_TAU_FLOOR = 1e-6
_SECONDS_PER_DAY = 86_400.0
#: Largest projected (whitened) gradient of a fit reported as converged; fits at an optimum end
#: below 1e-6, fits stalled at the tau limit before the barrier at 1.5e-3 to 8e-3.
_CONVERGED_PGTOL = 1e-5
#: Standard deviation of the Gaussian prior on every league's intercept and home advantage around
#: the pooled values (log goals; its precision is counted in matches of weight 1, not per unit of
#: weight like ``l2``). Keeps them finite for a league with one match or no home goal.
LEAGUE_PRIOR_SD = 2.0


@dataclass(frozen=True)
class _FitData:
    """Training arrays laid out for the objective (index arrays into the parameter vector)."""

    n_teams: int
    n_leagues: int
    home: npt.NDArray[np.intp]
    away: npt.NDArray[np.intp]
    league: npt.NDArray[np.intp]
    attack_index: npt.NDArray[np.intp]  # concat(home, away): rows of eta_home then eta_away
    defence_index: npt.NDArray[np.intp]  # concat(away, home)
    league2: npt.NDArray[np.intp]  # concat(league, league)
    wx: npt.NDArray[np.float64]  # weight * home goals
    wy: npt.NDArray[np.float64]
    w: npt.NDArray[np.float64]
    w_total: float
    log_factorial_term: float  # sum w * (log x! + log y!), constant in theta
    low: tuple[npt.NDArray[np.intp], ...]  # rows with scores 0-0, 0-1, 1-0, 1-1
    low_league: tuple[npt.NDArray[np.intp], ...]
    low_w: tuple[npt.NDArray[np.float64], ...]
    prior_intercept: float  # centre of the league prior on the intercepts (pooled over leagues)
    prior_home: float  # centre of the league prior on the home advantages
    prior_precision: float  # 1 / (LEAGUE_PRIOR_SD^2 * w_total): per unit weight, like the ridge


def _start_rates(
    goals: npt.NDArray[np.int64], w: npt.NDArray[np.float64], league: npt.NDArray[np.intp], lg: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-league data-based intercept and home advantage: log mean away goals, log home/away."""
    w_l = np.bincount(league, w, minlength=lg) + 1e-12
    mean_home = np.clip(np.bincount(league, w * goals[:, 0], minlength=lg) / w_l, 0.2, None)
    mean_away = np.clip(np.bincount(league, w * goals[:, 1], minlength=lg) / w_l, 0.2, None)
    return np.log(mean_away), np.clip(np.log(mean_home / mean_away), -1.0, 1.0)


def _build_fit_data(
    home: npt.NDArray[np.intp],
    away: npt.NDArray[np.intp],
    league: npt.NDArray[np.intp],
    goals: npt.NDArray[np.int64],
    w: npt.NDArray[np.float64],
    n_teams: int,
    n_leagues: int,
) -> _FitData:
    x = goals[:, 0].astype(np.float64)
    y = goals[:, 1].astype(np.float64)
    # the prior's centres: the start values of one league holding every row
    prior_intercept, prior_home = _start_rates(goals, w, np.zeros(len(w), dtype=np.intp), 1)
    w_total = float(w.sum())
    low = tuple(
        np.flatnonzero((goals[:, 0] == gh) & (goals[:, 1] == ga))
        for gh, ga in ((0, 0), (0, 1), (1, 0), (1, 1))
    )
    return _FitData(
        n_teams=n_teams,
        n_leagues=n_leagues,
        home=home,
        away=away,
        league=league,
        attack_index=np.concatenate([home, away]),
        defence_index=np.concatenate([away, home]),
        league2=np.concatenate([league, league]),
        wx=w * x,
        wy=w * y,
        w=w,
        w_total=w_total,
        log_factorial_term=float(np.dot(w, gammaln(x + 1.0) + gammaln(y + 1.0))),
        low=low,
        low_league=tuple(league[i] for i in low),
        low_w=tuple(w[i] for i in low),
        prior_intercept=float(prior_intercept[0]),
        prior_home=float(prior_home[0]),
        prior_precision=1.0 / (LEAGUE_PRIOR_SD**2 * w_total),
    )


def _split_theta(
    theta: npt.NDArray[np.float64], n_teams: int, n_leagues: int
) -> tuple[npt.NDArray[np.float64], ...]:
    t, lg = n_teams, n_leagues
    return (
        theta[:t],
        theta[t : 2 * t],
        theta[2 * t : 2 * t + lg],
        theta[2 * t + lg : 2 * t + 2 * lg],
        theta[2 * t + 2 * lg :],
    )


def _log_tau(tau: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """log tau and its derivative; below ``_TAU_FLOOR`` the tangent there."""
    t = np.maximum(tau, _TAU_FLOOR)
    inv = 1.0 / t
    return np.log(t) + (tau - t) * inv, inv


def _tau_barrier(tau: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """Barrier on tau factors below the margin, and its derivative (both 0 at the margin).

    ``b = c (m - t)^3 / (t m^2)`` for ``t < m`` (``m = TAU_BARRIER_MARGIN``, ``c =
    TAU_BARRIER_WEIGHT``): twice differentiable at ``t = m``, about ``c m / t`` near 0, and below
    ``_TAU_FLOOR`` the tangent there.

    Examples
    --------
    >>> value, slope = _tau_barrier(np.array([0.05, 0.01, 1e-3, -1e-3]))  # margin 0.05
    >>> [round(float(v), 2) for v in value / TAU_BARRIER_WEIGHT]
    [0.0, 2.56, 47.06, 50099996.94]
    """
    m, c = TAU_BARRIER_MARGIN, TAU_BARRIER_WEIGHT
    t = np.clip(tau, _TAU_FLOOR, m)
    dt = tau - t  # 0 inside [floor, margin], negative below the floor
    u = m - t
    value = c * u**3 / (t * m * m)
    slope = -c * u * u * (m + 2.0 * t) / (t * t * m * m)
    return value + dt * slope, slope


def _min_tau(theta: npt.NDArray[np.float64], d: _FitData) -> float:
    """Smallest tau factor (0-0, 0-1, 1-0, 1-1) over the training rows at ``theta``."""
    attack, defence, intercept, home_adv, rho = _split_theta(theta, d.n_teams, d.n_leagues)
    base = intercept[d.league]
    lam = np.exp(base + home_adv[d.league] + attack[d.home] + defence[d.away])
    mu = np.exp(base + attack[d.away] + defence[d.home])
    return float(dixon_coles_tau_factors(lam, mu, rho[d.league]).min(initial=1.0))


def _objective(
    theta: npt.NDArray[np.float64], d: _FitData, l2: float
) -> tuple[float, npt.NDArray[np.float64]]:
    """Penalised weighted negative log-likelihood per unit weight, and its analytic gradient.

    The penalty is the ridge ``l2`` on attack and defence plus the league prior: a Gaussian on
    every intercept and home advantage around the pooled values (``LEAGUE_PRIOR_SD``), plus the
    tau barrier (:func:`_tau_barrier` on each 0-0, 0-1 and 1-0 factor of every row), which keeps
    the optimum where every training match's tau is > 0, from any start.

    log lambda = intercept[l] + home[l] + attack[h] + defence[a];
    log mu = intercept[l] + attack[a] + defence[h]; likelihood tau * Pois(x; lambda) * Pois(y; mu)
    (Dixon & Coles 1997, eq. 4.2).
    """
    attack, defence, intercept, home_adv, rho = _split_theta(theta, d.n_teams, d.n_leagues)
    base = intercept[d.league]
    eta_h = base + home_adv[d.league] + attack[d.home] + defence[d.away]
    eta_a = base + attack[d.away] + defence[d.home]
    lam = np.exp(eta_h)
    mu = np.exp(eta_a)
    r = rho[d.league]
    log_lik = (
        np.dot(d.wx, eta_h)
        + np.dot(d.wy, eta_a)
        - np.dot(d.w, lam)
        - np.dot(d.w, mu)
        - d.log_factorial_term
    )
    g_h = d.wx - d.w * lam  # d log_lik / d eta_h, shape (n,)
    g_a = d.wy - d.w * mu
    g_rho = np.zeros(d.n_leagues)
    lam_r = lam * r
    mu_r = mu * r
    # tau factors of every row, shape (n,) each: 0-0, 0-1, 1-0 (1-1 is 1 - rho, kept > 0 by the box)
    tau00 = 1.0 - lam_r * mu
    tau01 = 1.0 + lam_r
    tau10 = 1.0 + mu_r

    i00, i01, i10, i11 = d.low
    if i00.size:
        log_tau, dlog = _log_tau(tau00[i00])
        log_lik += np.dot(d.low_w[0], log_tau)
        wt = d.low_w[0] * dlog
        g = -wt * lam_r[i00] * mu[i00]
        g_h[i00] += g  # row indices are unique within a score category
        g_a[i00] += g
        g_rho += np.bincount(d.low_league[0], -wt * lam[i00] * mu[i00], minlength=d.n_leagues)
    if i01.size:
        log_tau, dlog = _log_tau(tau01[i01])
        log_lik += np.dot(d.low_w[1], log_tau)
        wt = d.low_w[1] * dlog
        g_h[i01] += wt * lam_r[i01]
        g_rho += np.bincount(d.low_league[1], wt * lam[i01], minlength=d.n_leagues)
    if i10.size:
        log_tau, dlog = _log_tau(tau10[i10])
        log_lik += np.dot(d.low_w[2], log_tau)
        wt = d.low_w[2] * dlog
        g_a[i10] += wt * mu_r[i10]
        g_rho += np.bincount(d.low_league[2], wt * mu[i10], minlength=d.n_leagues)
    if i11.size:
        tau = 1.0 - r[i11]
        log_lik += np.dot(d.low_w[3], np.log(tau))
        g_rho += np.bincount(d.low_league[3], -d.low_w[3] / tau, minlength=d.n_leagues)

    # The tau barrier over every row, in log-likelihood units (objective units times w_total).
    # d tau00 / d eta_h = d tau00 / d eta_a = tau00 - 1, d tau01 / d eta_h = tau01 - 1, ...
    for tau_all, d_rho, on_home, on_away in (
        (tau00, -lam * mu, True, True),
        (tau01, lam, True, False),
        (tau10, mu, False, True),
    ):
        near = np.flatnonzero(tau_all < TAU_BARRIER_MARGIN)
        if not near.size:
            continue
        value, slope = _tau_barrier(tau_all[near])
        log_lik -= d.w_total * float(value.sum())
        g = -d.w_total * slope
        if on_home:
            g_h[near] += g * (tau_all[near] - 1.0)
        if on_away:
            g_a[near] += g * (tau_all[near] - 1.0)
        g_rho += np.bincount(d.league[near], g * d_rho[near], minlength=d.n_leagues)

    g_cat = np.concatenate([g_h, g_a])
    grad_attack = np.bincount(d.attack_index, g_cat, minlength=d.n_teams)
    grad_defence = np.bincount(d.defence_index, g_cat, minlength=d.n_teams)
    grad_intercept = np.bincount(d.league2, g_cat, minlength=d.n_leagues)
    grad_home = np.bincount(d.league, g_h, minlength=d.n_leagues)

    scale = 1.0 / d.w_total
    off_intercept = intercept - d.prior_intercept
    off_home = home_adv - d.prior_home
    value = (
        -log_lik * scale
        + l2 * (np.dot(attack, attack) + np.dot(defence, defence))
        + 0.5
        * d.prior_precision
        * (np.dot(off_intercept, off_intercept) + np.dot(off_home, off_home))
    )
    grad = np.concatenate(
        [
            -grad_attack * scale + 2.0 * l2 * attack,
            -grad_defence * scale + 2.0 * l2 * defence,
            -grad_intercept * scale + d.prior_precision * off_intercept,
            -grad_home * scale + d.prior_precision * off_home,
            -g_rho * scale,
        ]
    )
    return float(value), grad


def _fisher_matrix(
    theta: npt.NDArray[np.float64], d: _FitData, l2: float
) -> npt.NDArray[np.float64]:
    """Expected Hessian of :func:`_objective`, shape (P, P).

    Independent-Poisson information for the log-linear terms, plus the ridge and the league
    prior; the rho block is diagonal (its coupling to the rates is small), holding the expected
    information of log tau.
    """
    t, lg = d.n_teams, d.n_leagues
    p = 2 * t + 3 * lg
    attack, defence, intercept, home_adv, _rho = _split_theta(theta, t, lg)
    base = intercept[d.league]
    lam = np.exp(base + home_adv[d.league] + attack[d.home] + defence[d.away])
    mu = np.exp(base + attack[d.away] + defence[d.home])
    # parameters entering eta_home (4 per row) and eta_away (3 per row)
    idx_h = np.stack([d.home, t + d.away, 2 * t + d.league, 2 * t + lg + d.league])
    idx_a = np.stack([d.away, t + d.home, 2 * t + d.league])
    flat_h = (idx_h[:, None, :] * p + idx_h[None, :, :]).ravel()
    flat_a = (idx_a[:, None, :] * p + idx_a[None, :, :]).ravel()
    info: npt.NDArray[np.float64] = (
        np.bincount(
            np.concatenate([flat_h, flat_a]),
            np.concatenate([np.tile(d.w * lam, 16), np.tile(d.w * mu, 9)]),
            minlength=p * p,
        ).reshape(p, p)
        / d.w_total
    )
    team = np.arange(2 * t)
    info[team, team] += 2.0 * l2
    league_terms = np.arange(2 * t, 2 * t + 2 * lg)
    info[league_terms, league_terms] += d.prior_precision
    # E[(d log tau / d rho)^2]: the four low-score cells at their Poisson probabilities
    p00 = np.exp(-lam - mu)
    tau_info = p00 * ((lam * mu) ** 2 + lam**2 * mu + mu**2 * lam + lam * mu)
    rho_idx = np.arange(2 * t + 2 * lg, p)
    info[rho_idx, rho_idx] = np.bincount(d.league, d.w * tau_info, minlength=lg) / d.w_total + 1e-6
    return np.asarray(info, dtype=np.float64)


def _whitening(theta: npt.NDArray[np.float64], d: _FitData, l2: float) -> npt.NDArray[np.float64]:
    """Inverse Cholesky factor of the Fisher matrix (diagonal scaling if it is not positive)."""
    info = _fisher_matrix(theta, d, l2)
    info[np.diag_indices_from(info)] += 1e-9
    try:
        chol = cholesky(info, lower=True)
    except LinAlgError:
        return np.diag(1.0 / np.sqrt(np.maximum(np.diag(info), 1e-8)))
    return np.asarray(solve_triangular(chol, np.eye(info.shape[0]), lower=True), dtype=np.float64)


_BLAS_CONTROLLER: list[Any] = []


def _single_threaded_blas() -> AbstractContextManager[Any]:
    """Limit BLAS to one thread: these small problems run several times slower threaded."""
    if ThreadpoolController is None:
        return nullcontext()
    if not _BLAS_CONTROLLER:  # scanning the loaded libraries costs ~2 ms: do it once
        _BLAS_CONTROLLER.append(ThreadpoolController())
    return _BLAS_CONTROLLER[0].limit(limits=1, user_api="blas")  # type: ignore[no-any-return]


def _kickoff_seconds(kickoff_utc: Any) -> npt.NDArray[np.int64]:
    """Kickoff times as integer seconds since the epoch (naive times are taken as UTC)."""
    index = pd.DatetimeIndex(kickoff_utc)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    return np.asarray(index.as_unit("s").asi8, dtype=np.int64)


def _decay_weights(
    kickoff_s: npt.NDArray[np.int64], half_life_days: float
) -> npt.NDArray[np.float64]:
    """exp(-ln2 * age / half_life), age in days before the latest kickoff."""
    age_days = (kickoff_s.max() - kickoff_s) / _SECONDS_PER_DAY
    return np.asarray(np.exp(-math.log(2.0) * age_days / half_life_days), dtype=np.float64)


def _poisson_pmf(rate: npt.NDArray[np.float64], max_goals: int) -> npt.NDArray[np.float64]:
    """Poisson probabilities of 0..max_goals, shape (n, max_goals + 1)."""
    k = np.arange(max_goals + 1, dtype=np.float64)
    log_rate = np.log(np.maximum(rate, 1e-300))[:, None]
    return np.asarray(np.exp(k * log_rate - rate[:, None] - gammaln(k + 1.0)), dtype=np.float64)


def dixon_coles_tau_factors(
    lam: npt.NDArray[np.float64], mu: npt.NDArray[np.float64], rho: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Low-score correction factors tau for scores 0-0, 0-1, 1-0, 1-1, shape (n, 4).

    Parameters
    ----------
    lam, mu
        Expected home and away goals per match.
    rho
        Dependence parameter per match.

    Returns
    -------
    numpy.ndarray
        Columns ``1 - lam*mu*rho, 1 + lam*rho, 1 + mu*rho, 1 - rho`` (Dixon & Coles 1997).

    Examples
    --------
    >>> dixon_coles_tau_factors(np.array([1.0]), np.array([2.0]), np.array([-0.1])).round(2)
    array([[1.2, 0.9, 0.8, 1.1]])
    """
    return np.stack([1.0 - lam * mu * rho, 1.0 + lam * rho, 1.0 + mu * rho, 1.0 - rho], axis=1)


def dixon_coles_score_matrix(
    lam: npt.NDArray[np.float64],
    mu: npt.NDArray[np.float64],
    rho: npt.NDArray[np.float64],
    max_goals: int = 10,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Score probabilities ``P(home = i, away = j)`` for ``i, j <= max_goals``.

    Rows where a tau factor would be <= 0 use the independent Poisson matrix instead. Each matrix
    is renormalised to sum to 1 (the truncated tail mass is spread proportionally).

    Parameters
    ----------
    lam, mu
        Expected home and away goals, shape (n,).
    rho
        Dixon-Coles dependence per row, shape (n,).
    max_goals
        Largest goal count kept per side.

    Returns
    -------
    tuple of numpy.ndarray
        The matrices, shape (n, max_goals + 1, max_goals + 1), and a bool mask (n,) of rows that
        fell back to independent Poisson.

    Examples
    --------
    >>> m, fb = dixon_coles_score_matrix(np.array([1.2]), np.array([1.0]), np.array([-0.1]), 8)
    >>> round(float(m.sum()), 12), bool(fb[0])
    (1.0, False)
    """
    lam = np.asarray(lam, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    rho = np.asarray(rho, dtype=np.float64)
    mat = _poisson_pmf(lam, max_goals)[:, :, None] * _poisson_pmf(mu, max_goals)[:, None, :]
    tau = dixon_coles_tau_factors(lam, mu, rho)
    fallback = np.any(tau <= 0.0, axis=1) | ~np.all(np.isfinite(tau), axis=1)
    tau[fallback] = 1.0
    mat[:, 0, 0] *= tau[:, 0]
    mat[:, 0, 1] *= tau[:, 1]
    mat[:, 1, 0] *= tau[:, 2]
    mat[:, 1, 1] *= tau[:, 3]
    mat /= mat.sum(axis=(1, 2), keepdims=True)
    return mat, fallback


def outcome_1x2_proba(score_matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """P(home win), P(draw), P(away win) from score matrices (n, G+1, G+1) -> (n, 3).

    Examples
    --------
    >>> m = np.array([[[0.2, 0.1], [0.3, 0.4]]])
    >>> outcome_1x2_proba(m).round(2)
    array([[0.3, 0.6, 0.1]])
    """
    g = score_matrix.shape[1]
    i, j = np.indices((g, g))
    flat = score_matrix.reshape(score_matrix.shape[0], g * g)  # -1 fails on zero rows
    home = flat[:, (i > j).ravel()].sum(axis=1)
    draw = flat[:, (i == j).ravel()].sum(axis=1)
    away = flat[:, (i < j).ravel()].sum(axis=1)
    return np.stack([home, draw, away], axis=1)


def _margin_distribution(
    score_matrix: npt.NDArray[np.float64], kind: str
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Distribution of home-minus-away goals (``kind="diff"``) or total goals (``"total"``)."""
    g = score_matrix.shape[1]
    i, j = np.indices((g, g))
    if kind == "diff":
        values = np.arange(-(g - 1), g)
        bins = (i - j + (g - 1)).ravel()
    else:
        values = np.arange(0, 2 * g - 1)
        bins = (i + j).ravel()
    onehot = np.zeros((g * g, values.size))
    onehot[np.arange(g * g), bins] = 1.0
    return score_matrix.reshape(score_matrix.shape[0], g * g) @ onehot, values.astype(np.float64)


def _two_way_given_no_push(
    dist: npt.NDArray[np.float64], adjusted: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Each side's expected share of the stake won, ``E[max(r, 0)]`` and ``E[max(-r, 0)]`` for
    a 1-unit side-one result ``r``, normalised to sum to 1; ``adjusted`` is (n, 2, K).

    That is the de-margined fair price's probability: the odds at which a side's bet breaks
    even are ``1 + E[max(-r, 0)] / E[max(r, 0)]``. On whole and half lines it is (P(side
    gains), P(side loses)) given no full push; on a quarter line a half win counts half. It
    counted whole before 2026-11-25 (P(side is up)), a quantity no price gives: the market
    model and the models that learn the closing line served the price's, so a quarter line's
    ``home`` meant another thing with each champion (-0.25 at 0.46 here, 0.53 in the price).
    ``adjusted[:, s, k]`` is the margin after applying sub-line ``s`` (two equal sub-lines for
    whole and half lines, the neighbouring half and whole lines for quarter lines).
    """
    result = 0.5 * np.sign(adjusted[:, 0, :]) + 0.5 * np.sign(adjusted[:, 1, :])  # (n, K)
    gain = (dist * np.maximum(result, 0.0)).sum(axis=1)
    lose = (dist * np.maximum(-result, 0.0)).sum(axis=1)
    total = gain + lose
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.stack([gain / total, lose / total], axis=1)
    out[total <= 0.0] = np.nan
    return out


def asian_handicap_proba(
    score_matrix: npt.NDArray[np.float64], line: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The home and away sides' fair-price probabilities for the home handicap ``line``.

    On whole and half lines, (P(home covers), P(away covers)) given no full push. Quarter lines
    split the stake over the neighbouring lines, and a half win or half loss counts half: the
    probability is each side's expected share of the stake won (`_two_way_given_no_push`),
    what a de-margined quarter-line price gives, so ``1 / p`` is the fair odds and
    ``p * odds - 1`` has the sign of the expected profit. Rows with a NaN line come back NaN.

    On a whole line ``p * odds - 1`` is the edge per unit that settles, ``(1 - P(push))`` times
    the expected profit per unit staked. The evaluation scores and bets whole and half lines
    only (docs/evaluation.md).

    Parameters
    ----------
    score_matrix
        Shape (n, G+1, G+1), ``[:, home_goals, away_goals]``.
    line
        Home team's handicap per row, shape (n,), a multiple of 0.25.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2); rows sum to 1.

    Examples
    --------
    >>> m = np.array([[[0.3, 0.2], [0.4, 0.1]]])  # P(home wins by 1) = 0.4, P(draw) = 0.4
    >>> asian_handicap_proba(m, np.array([0.0])).round(3)
    array([[0.667, 0.333]])
    >>> asian_handicap_proba(m, np.array([-0.25])).round(3)  # a draw is a half loss: 0.4 / 0.4
    array([[0.5, 0.5]])
    """
    dist, values = _margin_distribution(score_matrix, "diff")
    sub = split_quarter_lines(line)
    adjusted = values[None, None, :] + sub[:, :, None]
    return _two_way_given_no_push(dist, adjusted)


def over_under_proba(
    score_matrix: npt.NDArray[np.float64], line: float | npt.NDArray[np.float64] = 2.5
) -> npt.NDArray[np.float64]:
    """(P(over), P(under)) of total goals against ``line`` given no full push; on a quarter
    line (2.25, 2.75) each side's expected share of the stake won, the fair price's
    probability, as `asian_handicap_proba` reads one.

    Parameters
    ----------
    score_matrix
        Shape (n, G+1, G+1).
    line
        Total-goals line, scalar or per row, a multiple of 0.25.

    Returns
    -------
    numpy.ndarray
        Shape (n, 2); rows sum to 1.

    Examples
    --------
    >>> m = np.array([[[0.3, 0.2], [0.4, 0.1]]])
    >>> over_under_proba(m, 0.5).round(2)
    array([[0.7, 0.3]])
    """
    dist, values = _margin_distribution(score_matrix, "total")
    lines = np.broadcast_to(np.asarray(line, dtype=np.float64), (score_matrix.shape[0],))
    sub = split_quarter_lines(lines)
    adjusted = values[None, None, :] - sub[:, :, None]
    return _two_way_given_no_push(dist, adjusted)


def _warn_unbounded(
    teams: npt.NDArray[np.str_],
    home: npt.NDArray[np.intp],
    away: npt.NDArray[np.intp],
    goals: npt.NDArray[np.int64],
) -> None:
    """Warn, naming them, of teams that never scored or never conceded in the fitting rows:
    without the ridge (``l2=0``) their likelihood has no finite maximum, and the fit stops
    where the gradient has vanished (a defence of -22.9, a near-certain clean sheet) and calls
    itself converged."""
    n_teams = teams.size
    scored = np.bincount(home, goals[:, 0], n_teams) + np.bincount(away, goals[:, 1], n_teams)
    conceded = np.bincount(home, goals[:, 1], n_teams) + np.bincount(away, goals[:, 0], n_teams)
    for what, total in (("scored", scored), ("conceded", conceded)):
        never = teams[total == 0]
        if never.size:
            logger.warning(
                "Dixon-Coles with l2=0: %s never %s in the fitting window, so the likelihood "
                "has no finite maximum and their strengths run off to where the gradient "
                "vanishes; an l2 > 0 (default 1e-3) keeps them finite",
                ", ".join(map(str, never[:5])) + (" ..." if never.size > 5 else ""),
                what,
            )


class DixonColes(BaseEstimator):  # type: ignore[misc]
    """Poisson goals model with the Dixon-Coles low-score correction (Dixon & Coles, 1997).

    One joint fit over all rows shares team strengths across leagues (teams move between
    divisions); every league has its own intercept, home advantage and rho. Matches are weighted
    by ``exp(-ln2 * age_days / half_life_days)`` relative to the latest training kickoff.

    Parameters
    ----------
    half_life_days
        Half-life of the time-decay weights, in days.
    max_goals
        Largest goal count per side in the score matrix.
    l2
        Ridge penalty on attack and defence, in units of the per-match mean log-likelihood.
    warm_start
        Start the next ``fit`` from the current parameters (teams and leagues matched by name).
    max_iter
        L-BFGS-B iteration limit.
    """

    def __init__(
        self,
        *,
        half_life_days: float = 180.0,
        max_goals: int = 10,
        l2: float = 1e-3,
        warm_start: bool = False,
        max_iter: int = 500,
    ) -> None:
        self.half_life_days = half_life_days
        self.max_goals = max_goals
        self.l2 = l2
        self.warm_start = warm_start
        self.max_iter = max_iter

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first).

        A negative half-life weights old matches most and gave a garbage model (1X2 log loss
        1.6 times the closing line's) without a word.
        """
        if not self.half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0, got {self.half_life_days}")
        if not self.max_goals >= 1:
            raise ValueError(f"max_goals must be >= 1, got {self.max_goals}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if not self.max_iter >= 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")

    # ------------------------------------------------------------------ fit
    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.int_]) -> Self:
        """Fit attack, defence, per-league intercept, home advantage and rho by weighted MLE.

        Parameters
        ----------
        X
            Frame with ``league``, ``home_team``, ``away_team``, ``kickoff_utc``.
        y
            Goals, shape (n, 2) ``[home_goals, away_goals]``, none missing.

        Returns
        -------
        DixonColes
            The fitted estimator.

        Raises
        ------
        ValueError
            For a parameter out of range, no rows, goals of another shape, a missing or
            negative count, or a missing kick-off (naming its row).
        """
        self.check_params()
        goals = check_goals(X, y).astype(np.int64)
        if len(X) == 0:
            raise ValueError("cannot fit DixonColes on zero matches")
        check_kickoffs(X)  # NaT read as the smallest int64: its age wrapped to a weight of inf
        kickoff_s = _kickoff_seconds(X["kickoff_utc"])
        w_all = _decay_weights(kickoff_s, self.half_life_days)
        keep = w_all >= MIN_WEIGHT
        w = w_all[keep]
        goals = goals[keep]
        home_names = X["home_team"].to_numpy(dtype=str)[keep]
        away_names = X["away_team"].to_numpy(dtype=str)[keep]
        league_names = X["league"].to_numpy(dtype=str)[keep]

        teams, team_codes = np.unique(np.concatenate([home_names, away_names]), return_inverse=True)
        n = len(w)
        home = team_codes[:n].astype(np.intp)
        away = team_codes[n:].astype(np.intp)
        leagues, league = np.unique(league_names, return_inverse=True)
        league = league.astype(np.intp)
        data = _build_fit_data(home, away, league, goals, w, teams.size, leagues.size)
        if self.l2 == 0:
            _warn_unbounded(teams, home, away, goals)

        n_rates = 2 * teams.size + 2 * leagues.size  # rho follows the rate parameters
        cold0 = self._cold_theta(teams, leagues, goals, league, w)
        warm = self.warm_start and hasattr(self, "attack_")
        theta0 = self._warm_theta(teams, leagues, cold0) if warm else cold0
        if warm and _min_tau(theta0, data) <= _TAU_FLOOR:
            # A carried-over rho can put a tau past 0 on a match added since the last fit, where
            # the barrier is at its linear continuation. rho = 0 (every tau = 1) is valid.
            theta0[n_rates:] = 0.0
        theta, converged, n_iter = self._minimise(theta0, data, fit_rho=True)
        if not converged and warm:
            # the objective is the same from either start: a failed warm start is retried cold
            # before the fit is given up on
            logger.info("Dixon-Coles warm-started fit did not converge; refitting from cold start")
            theta, converged, n_iter_cold = self._minimise(cold0, data, fit_rho=True)
            n_iter += n_iter_cold
        fit_kind = "dixon_coles"
        if not converged:
            logger.warning("Dixon-Coles fit did not converge; refitting as independent Poisson")
            poisson0 = cold0.copy()
            poisson0[n_rates:] = 0.0
            theta, _, n_iter_p = self._minimise(poisson0, data, fit_rho=False)
            n_iter += n_iter_p
            fit_kind = "poisson"

        attack, defence, intercept, home_adv, rho = _split_theta(theta, teams.size, leagues.size)
        self.teams_ = teams
        self.attack_ = attack.copy()
        self.defence_ = defence.copy()
        self.leagues_ = leagues
        self.intercept_ = intercept.copy()
        self.home_advantage_ = home_adv.copy()
        self.rho_ = rho.copy()
        self.converged_ = bool(converged)
        self.fit_kind_ = fit_kind
        self.n_iter_ = int(n_iter)
        self.n_train_ = int(n)
        self.reference_kickoff_utc_ = pd.Timestamp(
            int(kickoff_s.max()), unit="s", tz="UTC"
        ).isoformat()
        self.prior_attack_, self.prior_defence_ = self._team_priors(
            team_codes, np.concatenate([league, league]), np.tile(kickoff_s[keep], 2)
        )
        self.n_poisson_fallback_ = 0
        self.classes_ = np.array(["home", "draw", "away"])
        return self

    @staticmethod
    def _cold_theta(
        teams: npt.NDArray[np.str_],
        leagues: npt.NDArray[np.str_],
        goals: npt.NDArray[np.int64],
        league: npt.NDArray[np.intp],
        w: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Cold start: attack = defence = 0, leagues at their data-based rates, rho = 0."""
        t, lg = teams.size, leagues.size
        theta = np.zeros(2 * t + 3 * lg)
        theta[2 * t : 2 * t + lg], theta[2 * t + lg : 2 * t + 2 * lg] = _start_rates(
            goals, w, league, lg
        )
        return theta

    def _warm_theta(
        self,
        teams: npt.NDArray[np.str_],
        leagues: npt.NDArray[np.str_],
        cold0: npt.NDArray[np.float64],
    ) -> npt.NDArray[np.float64]:
        """Warm start: the fitted parameters carried over by name; new names start as in
        ``cold0`` (teams at attack = defence = 0, leagues at their data-based start, rho = 0)."""
        t, lg = teams.size, leagues.size
        theta = cold0.copy()
        prev_team = {name: i for i, name in enumerate(self.teams_)}
        for i, name in enumerate(teams):
            k = prev_team.get(str(name))
            if k is not None:
                theta[i] = self.attack_[k]
                theta[t + i] = self.defence_[k]
        prev_league = {name: i for i, name in enumerate(self.leagues_)}
        for i, name in enumerate(leagues):
            k = prev_league.get(str(name))
            if k is not None:
                theta[2 * t + i] = self.intercept_[k]
                theta[2 * t + lg + i] = self.home_advantage_[k]
                theta[2 * t + 2 * lg + i] = self.rho_[k] if self.fit_kind_ == "dixon_coles" else 0.0
        return theta

    def _minimise(
        self, theta0: npt.NDArray[np.float64], data: _FitData, *, fit_rho: bool
    ) -> tuple[npt.NDArray[np.float64], bool, int]:
        """L-BFGS-B in coordinates whitened by the Fisher information at the start point.

        With ``theta = theta0 + inv(L).T @ phi`` (``L L^T`` the Fisher matrix) the objective is
        close to ``|phi|^2 / 2`` near the start, so a warm start converges in a few iterations.
        The rho block is diagonal, so the rho box bounds stay box bounds in ``phi``.
        """
        t, lg = data.n_teams, data.n_leagues
        n_rho_start = 2 * t + 2 * lg
        l2 = float(self.l2)
        rho_bound = (-RHO_BOUND, RHO_BOUND) if fit_rho else (0.0, 0.0)
        theta0 = theta0.copy()
        theta0[n_rho_start:] = np.clip(theta0[n_rho_start:], *rho_bound)
        with _single_threaded_blas():
            l_inv = _whitening(theta0, data, l2)  # (P, P), lower triangular
            rho_scale = np.diag(l_inv)[n_rho_start:]
            bounds = [(None, None)] * n_rho_start + [
                ((rho_bound[0] - r0) / s, (rho_bound[1] - r0) / s)
                for r0, s in zip(theta0[n_rho_start:], rho_scale, strict=True)
            ]

            def whitened(phi: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
                value, grad = _objective(theta0 + l_inv.T @ phi, data, l2)
                return value, l_inv @ grad

            res = minimize(
                whitened,
                np.zeros_like(theta0),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": int(self.max_iter), "ftol": 1e-13, "gtol": 1e-7, "maxcor": 20},
            )
            theta = theta0 + l_inv.T @ np.asarray(res.x, dtype=np.float64)
            # Converged means stationary, whatever scipy's stop: a relative-reduction stop
            # ("success") or a stalled line search both happen away from an optimum too.
            grad = np.asarray(res.jac, dtype=np.float64)  # at res.x
            lo = np.array([-np.inf if b[0] is None else b[0] for b in bounds])
            hi = np.array([np.inf if b[1] is None else b[1] for b in bounds])
            projected = np.clip(res.x - grad, lo, hi) - res.x
            converged = res.status in (0, 2) and float(np.max(np.abs(projected))) < _CONVERGED_PGTOL
        return theta, converged, int(res.nit)

    def _team_priors(
        self,
        team_codes: npt.NDArray[np.intp],
        league_codes: npt.NDArray[np.intp],
        kickoff_s: npt.NDArray[np.int64],
    ) -> tuple[dict[str, float], dict[str, float]]:
        """Per-league prior for unseen teams: weak attack and weak defence.

        The attack prior is the mean attack of the bottom quartile and the defence prior the mean
        defence of the top quartile (most goals conceded) of the teams whose latest training
        match was in that league; key ``""`` holds the same over all teams (unseen leagues).
        ``team_codes``, ``league_codes`` and ``kickoff_s`` hold one entry per team appearance.
        """
        order = np.lexsort((kickoff_s, team_codes))
        last = order[np.r_[team_codes[order][1:] != team_codes[order][:-1], True]]
        last_league = np.empty(self.teams_.size, dtype=np.intp)
        last_league[team_codes[last]] = league_codes[last]

        def quartile_prior(idx: npt.NDArray[np.intp]) -> tuple[float, float]:
            att = self.attack_[idx]
            dfc = self.defence_[idx]
            att_q = att[att <= np.quantile(att, 0.25)]
            dfc_q = dfc[dfc >= np.quantile(dfc, 0.75)]
            return float(att_q.mean()), float(dfc_q.mean())

        prior_attack: dict[str, float] = {}
        prior_defence: dict[str, float] = {}
        prior_attack[""], prior_defence[""] = quartile_prior(np.arange(self.teams_.size))
        for code, name in enumerate(self.leagues_):
            idx = np.flatnonzero(last_league == code)
            pair = quartile_prior(idx) if idx.size >= 4 else (prior_attack[""], prior_defence[""])
            prior_attack[str(name)], prior_defence[str(name)] = pair
        return prior_attack, prior_defence

    # -------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        require_fitted(self, "attack_")

    def _indices(self) -> tuple[dict[str, int], dict[str, int]]:
        """Position of each team and league name, built once per fit (not per request)."""
        cached = self.__dict__.get("_index_cache")
        if cached is None or cached[0] is not self.teams_ or cached[1] is not self.leagues_:
            cached = (
                self.teams_,
                self.leagues_,
                {str(name): i for i, name in enumerate(self.teams_)},
                {str(name): i for i, name in enumerate(self.leagues_)},
            )
            self._index_cache = cached
        return cached[2], cached[3]

    def _rates(
        self, X: FeatureSource
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Expected home goals, away goals and rho per row, with priors for unseen names."""
        self._check_fitted()
        team_index, league_index = self._indices()
        leagues, home, away = feature_matrix(X, ("league", "home_team", "away_team"), str).T
        li = np.array([league_index.get(name, -1) for name in leagues], dtype=np.intp)
        known_league = li >= 0
        intercept = np.where(known_league, self.intercept_[li], self.intercept_.mean())
        home_adv = np.where(known_league, self.home_advantage_[li], self.home_advantage_.mean())
        rho = np.where(known_league, self.rho_[li], self.rho_.mean())

        def strengths(names: npt.NDArray[np.str_]) -> tuple[npt.NDArray[np.float64], ...]:
            ti = np.array([team_index.get(n, -1) for n in names], dtype=np.intp)
            att = self.attack_[ti].copy()
            dfc = self.defence_[ti].copy()
            for row in np.flatnonzero(ti < 0):
                key = leagues[row] if leagues[row] in self.prior_attack_ else ""
                att[row] = self.prior_attack_[key]
                dfc[row] = self.prior_defence_[key]
            return att, dfc

        att_h, dfc_h = strengths(home)
        att_a, dfc_a = strengths(away)
        lam = np.exp(intercept + home_adv + att_h + dfc_a)
        mu = np.exp(intercept + att_a + dfc_h)
        if self.fit_kind_ != "dixon_coles":
            rho = np.zeros_like(rho)
        return lam, mu, rho

    def expected_goals(self, X: FeatureSource) -> npt.NDArray[np.float64]:
        """Poisson rates (expected home goals, expected away goals), shape (n, 2).

        ``X`` is a feature frame or a server's feature rows (``league``, ``home_team``,
        ``away_team``).
        """
        lam, mu, _ = self._rates(X)
        return np.stack([lam, mu], axis=1)

    def score_matrix(self, X: FeatureSource) -> npt.NDArray[np.float64]:
        """Score probabilities, shape (n, max_goals + 1, max_goals + 1) ``[:, home, away]``.

        Sets ``n_poisson_fallback_`` to the number of rows of this call that used the plain
        Poisson matrix (a tau factor <= 0, or the whole fit fell back to Poisson).
        """
        lam, mu, rho = self._rates(X)
        mat, fallback = dixon_coles_score_matrix(lam, mu, rho, int(self.max_goals))
        self.n_poisson_fallback_ = (
            len(X) if self.fit_kind_ != "dixon_coles" else int(np.count_nonzero(fallback))
        )
        if self.n_poisson_fallback_:
            logger.info("Dixon-Coles: %d rows used the Poisson fallback", self.n_poisson_fallback_)
        return mat

    def predict_proba(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Return shape (n_matches, 3); columns follow ``self.classes_`` (home, draw, away)."""
        return outcome_1x2_proba(self.score_matrix(X))

    def predict_market_proba(
        self, X: pd.DataFrame, market: MarketKind
    ) -> npt.NDArray[np.float64] | None:
        """Probabilities for ``market`` in ``OUTCOMES[market]`` order; AH uses ``X["ah_line"]``."""
        return self._market_proba(X, market)

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> npt.NDArray[np.float64] | None:
        """:meth:`predict_market_proba` on feature rows as mappings (the server's fast path)."""
        return self._market_proba(rows, market)

    def _market_proba(self, X: FeatureSource, market: MarketKind) -> npt.NDArray[np.float64] | None:
        market = MarketKind(market)
        if market is MarketKind.ONE_X_TWO:
            return outcome_1x2_proba(self.score_matrix(X))
        if market is MarketKind.OVER_UNDER_25:
            return over_under_proba(self.score_matrix(X), 2.5)
        if market is MarketKind.ASIAN_HANDICAP:
            if isinstance(X, pd.DataFrame):
                line = pd.to_numeric(X["ah_line"], errors="coerce").to_numpy(dtype=np.float64)
            else:
                line = feature_matrix(X, ("ah_line",))[:, 0]
            return asian_handicap_proba(self.score_matrix(X), line)
        return None

    # ------------------------------------------------------------ artifact
    def to_artifact(self) -> dict[str, bytes]:
        """Parameters and fitted state as one JSON file."""
        self._check_fitted()
        state = {
            "model": "dixon_coles",
            "params": self.get_params(),
            "teams": [str(t) for t in self.teams_],
            "attack": self.attack_.tolist(),
            "defence": self.defence_.tolist(),
            "leagues": [str(lg) for lg in self.leagues_],
            "intercept": self.intercept_.tolist(),
            "home_advantage": self.home_advantage_.tolist(),
            "rho": self.rho_.tolist(),
            "prior_attack": self.prior_attack_,
            "prior_defence": self.prior_defence_,
            "converged": self.converged_,
            "fit_kind": self.fit_kind_,
            "n_iter": self.n_iter_,
            "n_train": self.n_train_,
            "reference_kickoff_utc": self.reference_kickoff_utc_,
        }
        return {ARTIFACT_FILE: json.dumps(state, indent=1, sort_keys=True).encode()}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild a fitted model from :meth:`to_artifact` output."""
        state = json.loads(files[ARTIFACT_FILE])
        model = cls(**state["params"])
        model.teams_ = np.array(state["teams"], dtype=str)
        model.attack_ = np.array(state["attack"], dtype=np.float64)
        model.defence_ = np.array(state["defence"], dtype=np.float64)
        model.leagues_ = np.array(state["leagues"], dtype=str)
        model.intercept_ = np.array(state["intercept"], dtype=np.float64)
        model.home_advantage_ = np.array(state["home_advantage"], dtype=np.float64)
        model.rho_ = np.array(state["rho"], dtype=np.float64)
        model.prior_attack_ = {str(k): float(v) for k, v in state["prior_attack"].items()}
        model.prior_defence_ = {str(k): float(v) for k, v in state["prior_defence"].items()}
        model.converged_ = bool(state["converged"])
        model.fit_kind_ = str(state["fit_kind"])
        model.n_iter_ = int(state["n_iter"])
        model.n_train_ = int(state["n_train"])
        model.reference_kickoff_utc_ = str(state["reference_kickoff_utc"])
        model.n_poisson_fallback_ = 0
        model.classes_ = np.array(["home", "draw", "away"])
        return model
