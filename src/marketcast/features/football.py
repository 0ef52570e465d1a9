"""Football features known before kick-off: ratings, form, rest days and pre-match market prices."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from marketcast.data.validation import IntegrityReport
from marketcast.datasets.football_data import FootballData, OddsLookup, market_rows
from marketcast.features.ratings import RESULT_DELAY_HOURS, elo_ratings, pi_ratings
from marketcast.margins import METHODS, implied_probabilities, overround
from marketcast.types import AVERAGE_BOOKMAKER, BEST_ODDS_BOOKMAKER, PINNACLE, MarketKind, Timing

log = logging.getLogger(__name__)

#: Columns of ``matches`` that describe the fixture and may enter ``X`` (never goals or result).
FIXTURE_COLUMNS = ("match_id", "league", "season", "kickoff_utc", "home_team", "away_team")
#: Columns that only exist after the final whistle; they must never reach a model's ``X``.
OUTCOME_COLUMNS = ("home_goals", "away_goals", "result")
#: Sharpest first: the pre-match price a feature (and the ``market`` model) reads.
PREMATCH_PREFERENCE = (PINNACLE, AVERAGE_BOOKMAKER, "b365", "bw", "wh", "vc", "iw")
#: Market-average pseudo-bookmakers, left out of the across-bookmaker spread.
_PSEUDO_BOOKMAKERS = (AVERAGE_BOOKMAKER, BEST_ODDS_BOOKMAKER)

#: The de-margined pre-match price columns of each market, in outcome order.
MARKET_COLUMNS: dict[MarketKind, tuple[str, ...]] = {
    MarketKind.ONE_X_TWO: ("mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"),
    MarketKind.OVER_UNDER_25: ("mkt_ou25_over", "mkt_ou25_under"),
    MarketKind.ASIAN_HANDICAP: ("mkt_ah_home", "mkt_ah_away"),
}
FORM_WINDOW_MATCHES = 6
EWM_HALFLIFE_MATCHES = 6.0
REST_DAYS_CAP = 21.0
LEAGUE_RESIDUAL_HALFLIFE_DAYS = 60.0
#: A match's result reaches the league residuals of matches kicking off at least this long after
#: it (and on a later UTC date): 90 minutes, half-time and stoppage time, with a margin.
LEAGUE_RESULT_DELAY_HOURS = RESULT_DELAY_HOURS  # the ratings wait as long
_SECONDS_PER_DAY = 86_400
TEAM_RESIDUAL_HALFLIFE_MATCHES = 8.0
HISTORY_CAP_MATCHES = 40
#: Goals per shot on target and per other shot: least squares without intercept on every bundled
#: match before 2017-18 (the earliest development season), 0.239 and 0.013.
XG_PER_SHOT_ON_TARGET = 0.24
XG_PER_SHOT_OFF_TARGET = 0.013
SHOTS_HALFLIFE_MATCHES = 6.0
#: Half-life of the line-move averages, in a team's matches: the 1X2 move's correlation with the
#: team's earlier moves peaks at 3-4 over the seasons before every research window (0.112).
LINE_MOVE_HALFLIFE_MATCHES = 4.0
#: Goals 0..POISSON_MAX_GOALS per side in the cross-market fit (tail beyond: < 1e-9 for rate 4).
POISSON_MAX_GOALS = 20
#: Feature groups `build_features` can add to the core set, and the ones it adds by default.
#: Judged on the development window (the two seasons before the bench's last two, per league;
#: ``scripts/research_football_features.py``): "shots" raised LightGBM's pooled 1X2 log loss
#: (ratio to closing 1.00346 -> 1.00351), "cross_market" lowered it by a margin a paired test
#: cannot tell from noise (1.00331, p = 0.17) and did nothing on the test window: both are off.
#: See docs/models.md.
OPTIONAL_FEATURE_GROUPS = ("shots", "cross_market", "line_moves")
DEFAULT_FEATURE_GROUPS: tuple[str, ...] = ()


def build_features(
    data: FootballData,
    *,
    demargin_method: str = "shin",
    groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
) -> pd.DataFrame:
    """Return the feature frame ``X`` for every match, using only what was known before kick-off.

    Ratings and form use matches on earlier calendar dates only; market columns use pre-match
    prices only. A match's own closing odds and result never enter; those of a team's earlier
    matches may (form, ratings, and the optional ``"line_moves"`` group).

    Parameters
    ----------
    data
        The normalised football table.
    demargin_method
        How pre-match odds become probabilities (recorded in the run manifest).
    groups
        Optional feature groups (`OPTIONAL_FEATURE_GROUPS`) on top of the core set:
        ``"shots"`` (`shot_features`), ``"cross_market"`` (`cross_market_features`),
        ``"line_moves"`` (`line_move_features`).

    Returns
    -------
    pandas.DataFrame
        One row per ``data.matches`` row (same order), fixture columns plus features.
    """
    matches = data.matches
    X = matches.loc[:, list(FIXTURE_COLUMNS)].copy()
    ratings = pd.concat([elo_ratings(matches), pi_ratings(matches)], axis=1)
    X[ratings.columns] = ratings.to_numpy()
    X["elo_diff"] = X["elo_home"] - X["elo_away"]
    unknown = sorted(set(groups) - set(OPTIONAL_FEATURE_GROUPS))
    if unknown:
        raise ValueError(f"unknown feature groups {unknown}; known: {OPTIONAL_FEATURE_GROUPS}")
    X = pd.concat([X, team_form_features(matches)], axis=1)
    if "shots" in groups:
        X = pd.concat([X, shot_features(matches)], axis=1)
    X = pd.concat([X, market_features(data, demargin_method=demargin_method)], axis=1)
    if "cross_market" in groups:
        X = pd.concat([X, cross_market_features(X)], axis=1)
    if "line_moves" in groups:
        X = pd.concat([X, line_move_features(data, X, demargin_method=demargin_method)], axis=1)
    X = pd.concat([X, market_residual_features(matches, X)], axis=1)
    X["season_day"] = _days_into_season(matches["kickoff_utc"], matches["season"])
    X["league"] = X["league"].astype("category")
    return X


def team_form_features(matches: pd.DataFrame) -> pd.DataFrame:
    """Recent form per team from its earlier matches: points, goals, rest days.

    A team never plays twice on one date, so shifting each team's own sequence by one match
    keeps every value strictly earlier than the fixture it describes. A match without a result
    (NaN goals: a fixture not played yet) adds nothing to form: its points are NaN, not a
    0-point loss, and ``form_points`` is the mean of the team's last ``FORM_WINDOW_MATCHES``
    played matches (the goal averages skip it too, weighing the played ones as if it were not
    there). Rest days and the match count read it as a fixture of the team's.
    """
    n = len(matches)
    unplayed = (matches["home_goals"].isna() | matches["away_goals"].isna()).to_numpy()
    home_pts = np.select(
        [
            matches["home_goals"] > matches["away_goals"],
            matches["home_goals"] == matches["away_goals"],
        ],
        [3.0, 1.0],
        0.0,
    )
    away_pts = np.select(
        [
            matches["away_goals"] > matches["home_goals"],
            matches["home_goals"] == matches["away_goals"],
        ],
        [3.0, 1.0],
        0.0,
    )
    home_pts[unplayed] = np.nan
    away_pts[unplayed] = np.nan
    long = pd.DataFrame(
        {
            "row": np.concatenate([np.arange(n), np.arange(n)]),
            "side": np.repeat(["home", "away"], n),
            "team": np.concatenate(
                [matches["home_team"].to_numpy(), matches["away_team"].to_numpy()]
            ),
            "kickoff_utc": np.concatenate([matches["kickoff_utc"].to_numpy()] * 2),
            "goals_for": np.concatenate([matches["home_goals"], matches["away_goals"]]).astype(
                float
            ),
            "goals_against": np.concatenate([matches["away_goals"], matches["home_goals"]]).astype(
                float
            ),
            "points": np.concatenate([home_pts, away_pts]),
        }
    )
    long = long.sort_values(["team", "kickoff_utc", "row"], kind="stable")
    by_team = long.groupby("team", sort=False)
    previous = by_team[["goals_for", "goals_against", "points"]].shift(1)
    prev_grouped = previous.groupby(long["team"], sort=False)
    out = pd.DataFrame(index=long.index)
    # over played matches only, then carried past an unplayed one to the team's next match
    previous_points = previous["points"]
    played = previous_points.notna()
    played_form = (
        previous_points[played]
        .groupby(long["team"][played], sort=False)
        .transform(lambda s: s.rolling(FORM_WINDOW_MATCHES, min_periods=1).mean())
    )
    out["form_points"] = played_form.reindex(long.index).groupby(long["team"], sort=False).ffill()
    # ignore_na: an unplayed match is no step of decay (it aged every earlier match by one)
    out["goals_for_ewm"] = prev_grouped["goals_for"].transform(
        lambda s: s.ewm(halflife=EWM_HALFLIFE_MATCHES, min_periods=1, ignore_na=True).mean()
    )
    out["goals_against_ewm"] = prev_grouped["goals_against"].transform(
        lambda s: s.ewm(halflife=EWM_HALFLIFE_MATCHES, min_periods=1, ignore_na=True).mean()
    )
    rest = by_team["kickoff_utc"].diff().dt.total_seconds() / 86400.0
    out["rest_days"] = rest.clip(upper=REST_DAYS_CAP).fillna(REST_DAYS_CAP)
    # Capped: "how much history does this team have", not a clock that grows with the data.
    out["n_previous_matches"] = by_team.cumcount().clip(upper=HISTORY_CAP_MATCHES).astype(float)
    out["row"] = long["row"]
    out["side"] = long["side"]

    frames = []
    for side in ("home", "away"):
        part = out[out["side"] == side].set_index("row").drop(columns="side").sort_index()
        frames.append(part.add_prefix(f"{side}_"))
    form = pd.concat(frames, axis=1)
    form.index = matches.index
    form["form_points_diff"] = form["home_form_points"] - form["away_form_points"]
    form["rest_days_diff"] = form["home_rest_days"] - form["away_rest_days"]
    return form


def shot_features(matches: pd.DataFrame) -> pd.DataFrame:
    """Shots, shots on target and a shots-based expected-goals proxy from a team's earlier matches.

    Per team and side (``home_``/``away_`` prefix): exponentially weighted shots and shots on
    target for and against, the share of shots on target in its matches, the proxy
    ``XG_PER_SHOT_ON_TARGET * on_target + XG_PER_SHOT_OFF_TARGET * other_shots`` for and
    against, and goals minus that proxy for and against (finishing and goalkeeping luck, which
    tends to regress). Statistics of a match reach only the team's *later* matches (the same
    one-match shift as `team_form_features`); matches without statistics are skipped by the
    averages, and a ``matches`` table without the columns gives NaN features.
    """
    n = len(matches)

    def column(name: str) -> np.ndarray:
        if name in matches.columns:
            return matches[name].to_numpy(dtype=float)
        return np.full(n, np.nan)

    shots = (column("home_shots"), column("away_shots"))
    on_target = (column("home_shots_on_target"), column("away_shots_on_target"))
    goals = (column("home_goals"), column("away_goals"))
    xg = tuple(
        XG_PER_SHOT_ON_TARGET * t + XG_PER_SHOT_OFF_TARGET * (s - t)
        for s, t in zip(shots, on_target, strict=True)
    )
    per_side = {  # (for, against) of the home side; the away side mirrors it
        "shots_for": (shots[0], shots[1]),
        "shots_against": (shots[1], shots[0]),
        "sot_for": (on_target[0], on_target[1]),
        "sot_against": (on_target[1], on_target[0]),
        "xg_for": (xg[0], xg[1]),
        "xg_against": (xg[1], xg[0]),
        "finishing_resid": (goals[0] - xg[0], goals[1] - xg[1]),
        "conceding_resid": (goals[1] - xg[1], goals[0] - xg[0]),
    }
    smoothed = _team_history_ewm(matches, per_side, SHOTS_HALFLIFE_MATCHES)
    out: dict[str, np.ndarray] = {}
    for k, side in enumerate(("home", "away")):
        for name, values in smoothed.items():
            out[f"{side}_{name}_ewm"] = values[k]
        sot_for, sot_against = smoothed["sot_for"][k], smoothed["sot_against"][k]
        with np.errstate(invalid="ignore", divide="ignore"):
            total = sot_for + sot_against
            out[f"{side}_sot_share"] = np.where(total > 0, sot_for / total, np.nan)
    out["sot_share_diff"] = out["home_sot_share"] - out["away_sot_share"]
    out["xg_diff_ewm"] = (out["home_xg_for_ewm"] - out["home_xg_against_ewm"]) - (
        out["away_xg_for_ewm"] - out["away_xg_against_ewm"]
    )
    return pd.DataFrame(out, index=matches.index)


def poisson_outcome_probabilities(
    rate_home: np.ndarray, rate_away: np.ndarray, *, max_goals: int = POISSON_MAX_GOALS
) -> np.ndarray:
    """1X2 and over-2.5 probabilities of independent Poisson goals, shape (n, 4).

    Columns: home win, draw, away win, over 2.5 goals.

    Examples
    --------
    >>> p = poisson_outcome_probabilities(np.array([1.5]), np.array([1.1]))
    >>> [round(float(v), 4) for v in p[0]]
    [0.4642, 0.2577, 0.2781, 0.4816]
    """
    return _poisson_and_jacobian(np.log(rate_home), np.log(rate_away), max_goals)[0]


def fit_poisson_rates(
    prob_home: np.ndarray,
    prob_away: np.ndarray,
    prob_over: np.ndarray,
    *,
    max_goals: int = POISSON_MAX_GOALS,
    max_iter: int = 50,
    tol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray]:
    """Goal rates (home, away) whose independent Poisson scores best match three market prices.

    Least squares on ``P(home win)``, ``P(away win)`` and ``P(over 2.5)``, by damped
    Gauss-Newton on the log-rates, all matches at once (a 2x2 solve per match per iteration),
    each until its own step is below ``tol``: a row's rates do not depend on the other rows.
    The draw price is left out on purpose: what the fitted rates say about the draw is then a
    check on it. Rows with a NaN input give NaN rates.

    Returns
    -------
    (rate_home, rate_away)
        Each shape (n,).
    """
    target = np.column_stack([prob_home, prob_away, prob_over])  # (n, 3)
    ok = ~np.isnan(target).any(axis=1)
    n = len(target)
    # start from the total implied by the over price alone and an even split
    theta = np.full((n, 2), np.log(1.3))
    target_ok = target[ok]
    th = theta[ok]
    damping = 1e-9
    # each row stops once its own step is below tol: stopping when every row's was gave a row
    # as many iterations as the slowest other row needed, so its rates moved (by ~1e-15) with
    # the other rows, future matches' prices among them
    active = np.arange(len(th))
    for _ in range(max_iter):
        if not active.size:
            break
        p, jac = _poisson_and_jacobian(th[active, 0], th[active, 1], max_goals)
        residual = p[:, [0, 2, 3]] - target_ok[active]  # (m, 3)
        J = jac[:, [0, 2, 3], :]  # (m, 3, 2)
        a = np.einsum("mki,mkj->mij", J, J)  # (m, 2, 2)
        a[:, 0, 0] += damping
        a[:, 1, 1] += damping
        g = np.einsum("mki,mk->mi", J, residual)  # (m, 2)
        det = a[:, 0, 0] * a[:, 1, 1] - a[:, 0, 1] * a[:, 1, 0]
        step = np.column_stack(
            [
                (a[:, 1, 1] * g[:, 0] - a[:, 0, 1] * g[:, 1]) / det,
                (a[:, 0, 0] * g[:, 1] - a[:, 1, 0] * g[:, 0]) / det,
            ]
        )
        step = np.clip(step, -1.0, 1.0)  # at most a factor e per iteration
        th[active] -= step
        active = active[np.max(np.abs(step), axis=1) >= tol]
    theta[ok] = th
    theta[~ok] = np.nan
    rates = np.exp(theta)
    return rates[:, 0], rates[:, 1]


def _poisson_and_jacobian(
    log_rate_home: np.ndarray, log_rate_away: np.ndarray, max_goals: int
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (n, 4) as in `poisson_outcome_probabilities` and d/d(log rates) (n, 4, 2)."""
    lam_h = np.exp(log_rate_home)[:, None]
    lam_a = np.exp(log_rate_away)[:, None]
    k = np.arange(max_goals + 1)
    log_fact = np.cumsum(np.log(np.maximum(k, 1)))
    p = np.exp(k * np.log(lam_h) - lam_h - log_fact)  # (n, G) home goals pmf
    q = np.exp(k * np.log(lam_a) - lam_a - log_fact)  # (n, G) away goals pmf
    sp = 1.0 - np.cumsum(p, axis=1)  # P(home goals > j)
    sq = 1.0 - np.cumsum(q, axis=1)
    # d pmf_k / d rate = pmf_{k-1} - pmf_k, so d P(X > j) / d rate = pmf_j
    dq = np.concatenate([np.zeros((len(q), 1)), q[:, :-1]], axis=1) - q
    dp = np.concatenate([np.zeros((len(p), 1)), p[:, :-1]], axis=1) - p
    home = np.sum(q * sp, axis=1)
    draw = np.sum(p * q, axis=1)
    away = np.sum(p * sq, axis=1)
    total = (lam_h + lam_a)[:, 0]
    over = 1.0 - np.exp(-total) * (1.0 + total + total**2 / 2.0)
    d_over = np.exp(-total) * total**2 / 2.0
    jac = np.empty((len(p), 4, 2))
    jac[:, 0, 0] = draw  # d P(home) / d rate_home = sum_j q_j p_j
    jac[:, 0, 1] = np.sum(dq * sp, axis=1)
    jac[:, 1, 0] = np.sum(dp * q, axis=1)
    jac[:, 1, 1] = np.sum(p * dq, axis=1)
    jac[:, 2, 0] = np.sum(dp * sq, axis=1)
    jac[:, 2, 1] = draw
    jac[:, 3, 0] = d_over
    jac[:, 3, 1] = d_over
    jac *= np.stack([lam_h[:, 0], lam_a[:, 0]], axis=1)[:, None, :]  # chain rule: log rates
    return np.column_stack([home, draw, away, over]), jac


def cross_market_features(X: pd.DataFrame) -> pd.DataFrame:
    """What the 1X2 and over/under 2.5 prices imply jointly, under independent Poisson goals.

    The goal rates are fitted to the de-margined home, away and over-2.5 probabilities
    (`fit_poisson_rates`); the features are the implied total goals and supremacy, the fitted
    draw probability minus the market's draw price, and the fit's miss on the over price.
    Pre-match prices only; NaN where either market is unpriced.
    """
    values = cross_market_values(
        X["mkt_1x2_home"].to_numpy(dtype=float),
        X["mkt_1x2_draw"].to_numpy(dtype=float),
        X["mkt_1x2_away"].to_numpy(dtype=float),
        X["mkt_ou25_over"].to_numpy(dtype=float),
    )
    return pd.DataFrame(values, index=X.index)


def cross_market_values(
    home: np.ndarray, draw: np.ndarray, away: np.ndarray, over: np.ndarray
) -> dict[str, np.ndarray]:
    """The columns of `cross_market_features` from price arrays (serving calls this per fixture)."""
    rate_home, rate_away = fit_poisson_rates(home, away, over)
    ok = ~np.isnan(rate_home)
    fitted = np.full((len(home), 4), np.nan)
    if ok.any():
        fitted[ok] = poisson_outcome_probabilities(rate_home[ok], rate_away[ok])
    return {
        "xm_total_goals": rate_home + rate_away,
        "xm_supremacy": rate_home - rate_away,
        "xm_draw_gap": fitted[:, 1] - draw,
        "xm_over_gap": fitted[:, 3] - over,
    }


def market_residual_features(matches: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """How wrong the pre-match price has recently been: per league and per team.

    A price that is slow to adapt (a home advantage that vanished with empty stadiums, a
    promoted side the market under-rates) leaves a persistent residual, result minus price.
    League residuals decay with a half-life in days and use only earlier dates; team residuals
    (points won minus points the price expected) decay over the team's earlier matches. A match
    without a result has no residual (NaN, skipped by both averages): it read as ``-price``,
    a 0-point loss against the price.
    """
    home_goals = matches["home_goals"].to_numpy(dtype=float)
    away_goals = matches["away_goals"].to_numpy(dtype=float)
    unplayed = np.isnan(home_goals) | np.isnan(away_goals)  # no result: no residual (NaN)
    outcome = np.column_stack(
        [home_goals > away_goals, home_goals == away_goals, home_goals < away_goals]
    ).astype(float)
    outcome[unplayed] = np.nan
    price = X[list(MARKET_COLUMNS[MarketKind.ONE_X_TWO])].to_numpy(dtype=float)
    over = np.where(unplayed, np.nan, (home_goals + away_goals > 2.5).astype(float))
    price_over = X["mkt_ou25_over"].to_numpy(dtype=float)
    residual = np.column_stack([outcome - price, over - price_over])
    names = ["home", "draw", "away", "over"]
    league_resid = _league_decayed_mean(
        matches["league"].to_numpy(), matches["kickoff_utc"], residual
    )
    out = {f"league_resid_{name}": league_resid[:, j] for j, name in enumerate(names)}

    expected_home = 3 * price[:, 0] + price[:, 1]
    expected_away = 3 * price[:, 2] + price[:, 1]
    points_home = 3 * outcome[:, 0] + outcome[:, 1]
    points_away = 3 * outcome[:, 2] + outcome[:, 1]
    team = _team_history_ewm(
        matches,
        {"resid": (points_home - expected_home, points_away - expected_away)},
        TEAM_RESIDUAL_HALFLIFE_MATCHES,
    )["resid"]
    out["home_team_price_resid"], out["away_team_price_resid"] = team
    return pd.DataFrame(out, index=matches.index)


def line_move_features(
    data: FootballData, X: pd.DataFrame, *, demargin_method: str = "shin"
) -> pd.DataFrame:
    """How far the price of each team's *earlier* matches moved between the snapshot and kick-off.

    A match's closing line is public once it kicks off, so like its result it may inform the
    teams' later matches, never its own (the one-match shift of `_team_history_ewm`). Per match
    the 1X2 move is the change in log(p_home / p_away) from the de-margined pre-match price
    (``X``'s market columns, from `market_features`) to the de-margined closing line
    (`closing_probabilities`, same ``demargin_method``), and the over/under move the change in
    log(p_over / p_under). Per team, from its own side (a move
    towards the away side counts against the home team and for the away team), exponentially
    weighted over its earlier matches (half-life `LINE_MOVE_HALFLIFE_MATCHES`):
    ``home_line_move_ewm``, ``away_line_move_ewm``, their difference ``line_move_diff``;
    ``home_total_move_ewm``, ``away_total_move_ewm`` and their sum ``total_move_sum``. Why: money
    that arrives after the snapshot keeps arriving for the same team (news the snapshot price
    takes weeks to absorb), so a team's recent moves predict its next one (correlation 0.11 to
    0.13 on the bundled seasons; `docs/models.md`). Matches without both prices are skipped.
    """
    moves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for market, name, (up, down) in (
        (MarketKind.ONE_X_TWO, "line_move", (0, 2)),
        (MarketKind.OVER_UNDER_25, "total_move", (0, 1)),
    ):
        before = X[list(MARKET_COLUMNS[market])].to_numpy(dtype=float)
        after, _ = closing_probabilities(data, market, method=demargin_method)
        with np.errstate(divide="ignore", invalid="ignore"):
            move = np.log(after[:, up] / after[:, down]) - np.log(before[:, up] / before[:, down])
        move = np.where(np.isfinite(move), move, np.nan)
        moves[name] = (move, -move) if market is MarketKind.ONE_X_TWO else (move, move)
    smoothed = _team_history_ewm(data.matches, moves, LINE_MOVE_HALFLIFE_MATCHES)
    home_line, away_line = smoothed["line_move"]
    home_total, away_total = smoothed["total_move"]
    return pd.DataFrame(
        {
            "home_line_move_ewm": home_line,
            "away_line_move_ewm": away_line,
            "line_move_diff": home_line - away_line,
            "home_total_move_ewm": home_total,
            "away_total_move_ewm": away_total,
            "total_move_sum": home_total + away_total,
        },
        index=data.matches.index,
    )


def _team_history_ewm(
    matches: pd.DataFrame,
    per_side: Mapping[str, tuple[np.ndarray, np.ndarray]],
    halflife: float,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per team, an exponentially weighted mean over its *earlier* matches.

    ``per_side`` maps a name to (the value a match holds for its home team, for its away team).
    Each team's own sequence of values is shifted by one match (a team never plays twice on one
    date, so every value used is strictly earlier than the fixture it describes), then smoothed
    with ``halflife`` matches; NaN values (a match without the statistic) are skipped. Returns
    name -> (the home team's smoothed value for each match, the away team's).
    """
    n = len(matches)
    names = list(per_side)
    long = pd.DataFrame(
        {
            "row": np.concatenate([np.arange(n), np.arange(n)]),
            "team": np.concatenate(
                [matches["home_team"].to_numpy(), matches["away_team"].to_numpy()]
            ),
            "kickoff_utc": np.concatenate([matches["kickoff_utc"].to_numpy()] * 2),
            **{name: np.concatenate(pair) for name, pair in per_side.items()},
        }
    ).sort_values(["team", "kickoff_utc", "row"], kind="stable")
    previous = long.groupby("team", sort=False)[names].shift(1)
    smoothed = previous.groupby(long["team"], sort=False)[names].transform(
        lambda s: s.ewm(halflife=halflife, min_periods=1, ignore_na=True).mean()
    )
    values = np.full((2 * n, len(names)), np.nan)
    values[long.index.to_numpy()] = smoothed.to_numpy(dtype=float)  # rows: home block, away
    return {name: (values[:n, j], values[n:, j]) for j, name in enumerate(names)}


def _league_decayed_mean(
    league: np.ndarray, kickoff_utc: pd.Series, values: np.ndarray
) -> np.ndarray:
    """Per league, an exponentially time-decayed mean of ``values`` over earlier matches.

    A match's values reach a later match of its league only when that match kicks off on a
    later UTC date *and* at least `LEAGUE_RESULT_DELAY_HOURS` after it (its result is known
    then): matches of one date never see each other, and a match kicking off at 00:30 UTC does
    not see one that kicked off at 23:00 the day before and is still being played. Weights
    decay by whole UTC dates (half-life `LEAGUE_RESIDUAL_HALFLIFE_DAYS`). Rows with a NaN value
    (no price) are skipped. Shape (n, n_columns) like ``values``.
    """
    index = pd.DatetimeIndex(kickoff_utc)
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    seconds = np.asarray(index.as_unit("s").asi8, dtype=np.int64)  # whatever the stored unit
    day = seconds // _SECONDS_PER_DAY
    delay = int(LEAGUE_RESULT_DELAY_HOURS * 3600)
    out = np.full(values.shape, np.nan)
    decay_per_day = np.log(2.0) / LEAGUE_RESIDUAL_HALFLIFE_DAYS
    for code in np.unique(league):
        rows = np.flatnonzero(league == code)
        rows = rows[np.argsort(day[rows], kind="stable")]
        weighted_sum = np.zeros(values.shape[1])
        weight = np.zeros(values.shape[1])
        last_day = None
        # the previous date's rows and the sums before they were added (for the rows of this
        # date that kick off less than the delay after some of them)
        previous = np.empty(0, dtype=np.intp)
        sum_before, weight_before = np.zeros_like(weighted_sum), np.zeros_like(weight)
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) and day[rows[j]] == day[rows[i]]:
                j += 1
            today = rows[i:j]
            factor = 1.0
            if last_day is not None:
                factor = np.exp(-decay_per_day * (day[rows[i]] - last_day))
                weighted_sum *= factor
                weight *= factor
            with np.errstate(invalid="ignore", divide="ignore"):
                out[today] = np.where(weight > 0, weighted_sum / weight, np.nan)
            # a delay under one day can only hide matches of the league's previous date
            hidden = seconds[previous][None, :] + delay > seconds[today][:, None]  # (today, prev)
            for k in np.flatnonzero(hidden.any(axis=1)):
                block = values[previous[~hidden[k]]]
                seen = ~np.isnan(block)
                early_sum = (sum_before + np.where(seen, block, 0.0).sum(axis=0)) * factor
                early_weight = (weight_before + seen.sum(axis=0)) * factor
                with np.errstate(invalid="ignore", divide="ignore"):
                    out[today[k]] = np.where(early_weight > 0, early_sum / early_weight, np.nan)
            sum_before, weight_before = weighted_sum.copy(), weight.copy()
            block = values[today]
            seen = ~np.isnan(block)
            weighted_sum += np.where(seen, block, 0.0).sum(axis=0)
            weight += seen.sum(axis=0)
            last_day = day[rows[i]]
            previous = today
            i = j
    return out


def market_features(data: FootballData, *, demargin_method: str = "shin") -> pd.DataFrame:
    """De-margined pre-match probabilities, their spread across bookmakers, and the margins.

    Only ``prematch`` quotes are read; a closing quote never reaches this function's output.
    """
    n = len(data.matches)
    # one pass over the long table; each bookmaker's quotes below are then an array slice
    quotes = OddsLookup.of(data.matches, data.odds)
    feats: dict[str, np.ndarray] = {}
    for market in (MarketKind.ONE_X_TWO, MarketKind.OVER_UNDER_25, MarketKind.ASIAN_HANDICAP):
        prob, line, _ = _first_available(
            quotes, market, Timing.PREMATCH, PREMATCH_PREFERENCE, demargin_method
        )
        names = MARKET_COLUMNS[market]
        for j, name in enumerate(names):
            feats[name] = prob[:, j]
        if market is MarketKind.ASIAN_HANDICAP:
            feats["ah_line"] = line
        avg_odds, _ = quotes.odds(market, Timing.PREMATCH, AVERAGE_BOOKMAKER)
        best_odds, _ = quotes.odds(market, Timing.PREMATCH, BEST_ODDS_BOOKMAKER)
        feats[f"mkt_{market.value}_overround_avg"] = overround(avg_odds)
        feats[f"mkt_{market.value}_overround_best"] = overround(best_odds)

    bookmaker_probs = _per_bookmaker_home_probs(quotes)
    if bookmaker_probs.shape[1] > 0:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            counts = np.sum(~np.isnan(bookmaker_probs), axis=1)
            spread = np.nanmax(bookmaker_probs, axis=1) - np.nanmin(bookmaker_probs, axis=1)
            std = np.nanstd(bookmaker_probs, axis=1)
        feats["mkt_1x2_home_spread"] = np.where(counts >= 2, spread, np.nan)
        feats["mkt_1x2_home_std"] = np.where(counts >= 2, std, np.nan)
        feats["mkt_n_bookmakers"] = counts.astype(float)
    else:
        feats["mkt_1x2_home_spread"] = np.full(n, np.nan)
        feats["mkt_1x2_home_std"] = np.full(n, np.nan)
        feats["mkt_n_bookmakers"] = np.zeros(n)

    sharp, _ = quotes.odds(MarketKind.ONE_X_TWO, Timing.PREMATCH, PINNACLE)
    soft, _ = quotes.odds(MarketKind.ONE_X_TWO, Timing.PREMATCH, AVERAGE_BOOKMAKER)
    sharp_p = implied_probabilities(sharp, demargin_method)
    soft_p = implied_probabilities(soft, demargin_method)
    for j, outcome in enumerate(("home", "draw", "away")):
        feats[f"mkt_1x2_{outcome}_sharp_minus_avg"] = sharp_p[:, j] - soft_p[:, j]
    return pd.DataFrame(feats, index=data.matches.index)


#: A request's pre-match quote of one market: ``(home, draw, away)`` for 1X2, ``(over, under)``
#: for over/under 2.5, ``(line, home, away)`` for the Asian handicap (the home team's line).
Quotes = Mapping[str, Sequence[float] | None]


def quoted_market_features(
    fixtures: Sequence[Mapping[str, Quotes]], *, demargin_method: str = "shin"
) -> pd.DataFrame:
    """`market_features` of fixtures nobody has played, from their pre-match quotes by bookmaker.

    Each fixture maps a canonical bookmaker code (``"pinnacle"``, ``"b365"``, ``"avg"``,
    ``"max"``, ...) to its quotes, keyed ``"1x2"``, ``"ou25"``, ``"ah"`` (see `Quotes`; a
    market left out or ``None`` is not quoted). They become the long odds table the loader
    makes of a file row, and `market_features` itself reads it, so a fixture quoted as a
    football-data row was gets the columns that row got in training.

    A market without the ``avg`` or ``max`` pseudo-bookmaker gets it from the quotes given:
    ``avg`` the mean of each outcome's price over the bookmakers (``max``'s prices when
    ``max`` is the only quote), ``max`` the maximum over the bookmakers and ``avg``.
    football-data's own are over more bookmakers than a request names, so those columns then
    differ from what the file would have said; left blank they would be further still
    (training saw them filled), and a market quoted by ``max`` alone would have no price.

    Returns
    -------
    pandas.DataFrame
        One row per fixture, in order, with `market_features`' columns.

    Raises
    ------
    ValueError
        When one fixture's Asian handicap quotes are on different lines: football-data gives
        one line a match, and an average over two lines prices neither.
    """
    columns = ("match_id", "market", "timing", "bookmaker", "line", "odds_0", "odds_1", "odds_2")
    records: list[tuple[Any, ...]] = []
    for i, by_bookmaker in enumerate(fixtures):
        match_id = f"quoted:{i}"
        for market in MarketKind:
            quoted = {b: quote for b, q in by_bookmaker.items() if (quote := q.get(market.value))}
            prices, lines = {}, set()
            for bookmaker, quote in quoted.items():
                values = [float(v) for v in quote]
                if market is MarketKind.ASIAN_HANDICAP:
                    lines.add(values[0])
                    values = values[1:]
                prices[bookmaker] = values
            if len(lines) > 1:
                raise ValueError(
                    f"fixture {i}: the Asian handicap quotes are on different lines "
                    f"({', '.join(f'{x:+g}' for x in sorted(lines))}); quote one line"
                )
            real = [p for b, p in prices.items() if b not in _PSEUDO_BOOKMAKERS]
            given_avg, given_max = prices.get(AVERAGE_BOOKMAKER), prices.get(BEST_ODDS_BOOKMAKER)
            # the average from the bookmakers, else the best prices (the only quote there is:
            # left blank, the market's price would be NaN, as no preference reads `max`)
            if given_avg is None and real:
                prices[AVERAGE_BOOKMAKER] = list(np.mean(real, axis=0))
            elif given_avg is None and given_max is not None:
                prices[AVERAGE_BOOKMAKER] = given_max
            # the best prices over every quote given, the average's among them
            if given_max is None and (real or given_avg is not None):
                pool = real + ([given_avg] if given_avg is not None else [])
                prices[BEST_ODDS_BOOKMAKER] = list(np.max(pool, axis=0))
            line = {
                MarketKind.ONE_X_TWO: np.nan,
                MarketKind.OVER_UNDER_25: 2.5,
                MarketKind.ASIAN_HANDICAP: next(iter(lines), np.nan),
            }[market]
            for bookmaker, values in prices.items():
                padded = [*values, np.nan, np.nan][:3]
                records.append(
                    (match_id, market.value, Timing.PREMATCH.value, bookmaker, line, *padded)
                )
    odds = pd.DataFrame.from_records(records, columns=columns)
    matches = pd.DataFrame({"match_id": [f"quoted:{i}" for i in range(len(fixtures))]})
    data = FootballData(matches=matches, odds=odds, report=IntegrityReport())
    return market_features(data, demargin_method=demargin_method)


def prematch_probabilities(
    data: FootballData,
    market: MarketKind,
    *,
    method: str = "shin",
    preference: Sequence[str] = PREMATCH_PREFERENCE,
) -> tuple[np.ndarray, np.ndarray]:
    """De-margined pre-match probabilities from the sharpest bookmaker quoting each match.

    Returns
    -------
    (probabilities, line)
        ``probabilities`` has shape (n_matches, n_outcomes), NaN rows where no bookmaker in
        ``preference`` quoted; ``line`` is the handicap or total the prices refer to.
    """
    prob, line, _ = prematch_yardstick(data, market, method=method, preference=preference)
    return prob, line


def prematch_yardstick(
    data: FootballData,
    market: MarketKind,
    *,
    method: str = "shin",
    preference: Sequence[str] = PREMATCH_PREFERENCE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`prematch_probabilities` and, per match, the bookmaker whose pre-match price it
    used (``""`` where none in ``preference`` quoted), from one de-margining pass."""
    quotes = _market_quotes(data, market, Timing.PREMATCH)
    return _first_available(quotes, market, Timing.PREMATCH, preference, method)


#: Where the closing yardstick comes from, sharpest first.
CLOSING_PREFERENCE = (PINNACLE, AVERAGE_BOOKMAKER)


def closing_probabilities(
    data: FootballData, market: MarketKind, *, method: str = "shin"
) -> tuple[np.ndarray, np.ndarray]:
    """De-margined closing probabilities: Pinnacle where present, else the closing average.

    The yardstick. It never feeds a feature of its own match; `line_move_features` reads it for
    the teams' later matches only. :func:`closing_yardstick` also says which source each match
    used.
    """
    prob, line, _ = closing_yardstick(data, market, method=method)
    return prob, line


def closing_yardstick(
    data: FootballData, market: MarketKind, *, method: str = "shin"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`closing_probabilities` and, per match, the bookmaker whose closing price it used
    (``"pinnacle"`` or ``"avg"``, ``""`` where none closed), from one de-margining pass.

    Pinnacle's quotes thin out in newer seasons, so an evaluation can mix the two yardsticks;
    the evaluation reports how many matches used each.
    """
    quotes = _market_quotes(data, market, Timing.CLOSING)
    return _first_available(quotes, market, Timing.CLOSING, CLOSING_PREFERENCE, method)


def closing_targets(
    data: FootballData,
    markets: Sequence[MarketKind] = tuple(MarketKind),
    *,
    method: str = "shin",
) -> dict[str, np.ndarray]:
    """Closing probabilities as training *targets* per market (``ClosingTargets``).

    The de-margined closing line of each match, for models that learn the closing price of
    earlier matches (``LightGBMModel(target="closing")``). An Asian handicap row is kept only
    where the closing line is the pre-match line the model prices; elsewhere, and where nothing
    closed, the row is NaN. It never feeds a feature.
    """
    out: dict[str, np.ndarray] = {}
    for market in markets:
        closing, closing_line = closing_probabilities(data, market, method=method)
        if market is MarketKind.ASIAN_HANDICAP:
            _, prematch_line = prematch_probabilities(data, market, method=method)
            closing = np.where((closing_line == prematch_line)[:, None], closing, np.nan)
        out[market.value] = closing
    return out


def _market_quotes(data: FootballData, market: MarketKind, timing: Timing) -> OddsLookup:
    """One market's quotes at one timing, indexed: a slice of the long table to index, not all."""
    return OddsLookup.of(data.matches, market_rows(data.odds, market, timing))


def _first_available(
    quotes: OddsLookup,
    market: MarketKind,
    timing: Timing,
    preference: Sequence[str],
    method: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """De-margined probabilities, line and source bookmaker ("" where none) per match."""
    if method not in METHODS:  # checked here too: a bookmaker without prices is skipped below
        raise ValueError(f"unknown de-margining method {method!r}; expected one of {METHODS}")
    k = 3 if market is MarketKind.ONE_X_TWO else 2
    n = quotes.n_matches
    prob = np.full((n, k), np.nan)
    line = np.full(n, np.nan)
    source = np.full(n, "", dtype=object)
    for bookmaker in preference:
        todo = np.isnan(prob[:, 0])
        if not todo.any():
            break
        odds, bk_line = quotes.odds(market, timing, bookmaker)
        if not (todo & ~np.isnan(odds[:, 0])).any():
            continue  # no price for a match still to fill: its probabilities would fill none
        p = implied_probabilities(odds[:, :k], method)
        fill = todo & ~np.isnan(p[:, 0])
        prob[fill] = p[fill]
        line[fill] = bk_line[fill]
        source[fill] = bookmaker
    if market is MarketKind.OVER_UNDER_25:
        line = np.where(np.isnan(prob[:, 0]), np.nan, 2.5)
    return prob, line, source


def _per_bookmaker_home_probs(quotes: OddsLookup) -> np.ndarray:
    quoted = quotes.bookmakers(MarketKind.ONE_X_TWO, Timing.PREMATCH)
    bookmakers = sorted(b for b in quoted if b not in _PSEUDO_BOOKMAKERS)
    columns = []
    for bookmaker in bookmakers:
        odds, _ = quotes.odds(MarketKind.ONE_X_TWO, Timing.PREMATCH, bookmaker)
        columns.append(implied_probabilities(odds[:, :3], "multiplicative")[:, 0])
    if not columns:
        return np.empty((quotes.n_matches, 0))
    return np.column_stack(columns)


def _days_into_season(kickoff_utc: pd.Series, season: pd.Series) -> np.ndarray:
    """Days since 1 July of the season's first year (``2022-2023``: 1 July 2022).

    A calendar-year season (``2022``, from football-data's extra-league files) counts from the
    1 July on or before the kick-off instead, as the server counts every fixture
    (`FeatureState` keeps no season per league): from 1 January would be truer, but training
    and serving would then disagree.
    """
    split = season.str.fullmatch(r"\d{4}-\d{4}")
    by_date = kickoff_utc.dt.year - (kickoff_utc.dt.month < 7).astype(int)
    start_year = season.str.slice(0, 4).astype(int).where(split, by_date)
    season_start = pd.to_datetime(start_year.astype(str) + "-07-01", utc=True)
    return ((kickoff_utc - season_start).dt.total_seconds() / 86400.0).to_numpy()


def model_feature_columns(X: pd.DataFrame) -> list[str]:
    """Columns a learned model may use: everything except identifiers and timestamps."""
    excluded = {"match_id", "season", "kickoff_utc", "home_team", "away_team"}
    return [c for c in X.columns if c not in excluded]
