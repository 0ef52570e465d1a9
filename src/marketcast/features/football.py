"""Football features known before kick-off: ratings, form, rest days and pre-match market prices."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from marketcast.datasets.football_data import FootballData, odds_matrix
from marketcast.features.ratings import elo_ratings, pi_ratings
from marketcast.margins import implied_probabilities, overround
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

FORM_WINDOW_MATCHES = 6
EWM_HALFLIFE_MATCHES = 6.0
REST_DAYS_CAP = 21.0
LEAGUE_RESIDUAL_HALFLIFE_DAYS = 60.0
TEAM_RESIDUAL_HALFLIFE_MATCHES = 8.0
HISTORY_CAP_MATCHES = 40


def build_features(data: FootballData, *, demargin_method: str = "shin") -> pd.DataFrame:
    """Return the feature frame ``X`` for every match, using only what was known before kick-off.

    Ratings and form use matches on earlier calendar dates only; market columns use pre-match
    prices only. Closing odds and results never enter.

    Parameters
    ----------
    data
        The normalised football table.
    demargin_method
        How pre-match odds become probabilities (recorded in the run manifest).

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
    X = pd.concat([X, team_form_features(matches)], axis=1)
    X = pd.concat([X, market_features(data, demargin_method=demargin_method)], axis=1)
    X = pd.concat([X, market_residual_features(matches, X)], axis=1)
    X["season_day"] = _days_into_season(matches["kickoff_utc"], matches["season"])
    X["league"] = X["league"].astype("category")
    return X


def team_form_features(matches: pd.DataFrame) -> pd.DataFrame:
    """Recent form per team from its earlier matches: points, goals, rest days.

    A team never plays twice on one date, so shifting each team's own sequence by one match
    keeps every value strictly earlier than the fixture it describes.
    """
    n = len(matches)
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
    out["form_points"] = prev_grouped["points"].transform(
        lambda s: s.rolling(FORM_WINDOW_MATCHES, min_periods=1).mean()
    )
    out["goals_for_ewm"] = prev_grouped["goals_for"].transform(
        lambda s: s.ewm(halflife=EWM_HALFLIFE_MATCHES, min_periods=1).mean()
    )
    out["goals_against_ewm"] = prev_grouped["goals_against"].transform(
        lambda s: s.ewm(halflife=EWM_HALFLIFE_MATCHES, min_periods=1).mean()
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


def market_residual_features(matches: pd.DataFrame, X: pd.DataFrame) -> pd.DataFrame:
    """How wrong the pre-match price has recently been: per league and per team.

    A price that is slow to adapt (a home advantage that vanished with empty stadiums, a
    promoted side the market under-rates) leaves a persistent residual, result minus price.
    League residuals decay with a half-life in days and use only earlier dates; team residuals
    (points won minus points the price expected) decay over the team's earlier matches.
    """
    home_goals = matches["home_goals"].to_numpy()
    away_goals = matches["away_goals"].to_numpy()
    outcome = np.column_stack(
        [home_goals > away_goals, home_goals == away_goals, home_goals < away_goals]
    ).astype(float)
    price = X[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy(dtype=float)
    over = (home_goals + away_goals > 2.5).astype(float)
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
    n = len(matches)
    long = pd.DataFrame(
        {
            "row": np.concatenate([np.arange(n), np.arange(n)]),
            "team": np.concatenate([matches["home_team"], matches["away_team"]]),
            "kickoff_utc": np.concatenate([matches["kickoff_utc"].to_numpy()] * 2),
            "resid": np.concatenate([points_home - expected_home, points_away - expected_away]),
        }
    ).sort_values(["team", "kickoff_utc", "row"], kind="stable")
    previous = long.groupby("team", sort=False)["resid"].shift(1)
    smoothed = previous.groupby(long["team"], sort=False).transform(
        lambda v: v.ewm(
            halflife=TEAM_RESIDUAL_HALFLIFE_MATCHES, min_periods=1, ignore_na=True
        ).mean()
    )
    team = np.full(2 * n, np.nan)
    team[long.index.to_numpy()] = smoothed.to_numpy()
    out["home_team_price_resid"] = team[:n]
    out["away_team_price_resid"] = team[n:]
    return pd.DataFrame(out, index=matches.index)


def _league_decayed_mean(
    league: np.ndarray, kickoff_utc: pd.Series, values: np.ndarray
) -> np.ndarray:
    """Per league, an exponentially time-decayed mean of ``values`` over strictly earlier dates.

    Rows with a NaN value (no price) are skipped. Shape (n, n_columns) like ``values``.
    """
    day = kickoff_utc.dt.tz_convert("UTC").dt.floor("D").astype("int64") // 86_400_000_000_000
    day = day.to_numpy()
    out = np.full(values.shape, np.nan)
    decay_per_day = np.log(2.0) / LEAGUE_RESIDUAL_HALFLIFE_DAYS
    for code in np.unique(league):
        rows = np.flatnonzero(league == code)
        rows = rows[np.argsort(day[rows], kind="stable")]
        weighted_sum = np.zeros(values.shape[1])
        weight = np.zeros(values.shape[1])
        last_day = None
        i = 0
        while i < len(rows):
            j = i
            while j < len(rows) and day[rows[j]] == day[rows[i]]:
                j += 1
            today = rows[i:j]
            if last_day is not None:
                factor = np.exp(-decay_per_day * (day[rows[i]] - last_day))
                weighted_sum *= factor
                weight *= factor
            with np.errstate(invalid="ignore", divide="ignore"):
                out[today] = np.where(weight > 0, weighted_sum / weight, np.nan)
            block = values[today]
            seen = ~np.isnan(block)
            weighted_sum += np.where(seen, block, 0.0).sum(axis=0)
            weight += seen.sum(axis=0)
            last_day = day[rows[i]]
            i = j
    return out


def market_features(data: FootballData, *, demargin_method: str = "shin") -> pd.DataFrame:
    """De-margined pre-match probabilities, their spread across bookmakers, and the margins.

    Only ``prematch`` quotes are read; a closing quote never reaches this function's output.
    """
    n = len(data.matches)
    feats: dict[str, np.ndarray] = {}
    for market in (MarketKind.ONE_X_TWO, MarketKind.OVER_UNDER_25, MarketKind.ASIAN_HANDICAP):
        prob, line = prematch_probabilities(data, market, method=demargin_method)
        names = _outcome_columns(market)
        for j, name in enumerate(names):
            feats[name] = prob[:, j]
        if market is MarketKind.ASIAN_HANDICAP:
            feats["ah_line"] = line
        avg_odds, _ = odds_matrix(data, market, Timing.PREMATCH, AVERAGE_BOOKMAKER)
        best_odds, _ = odds_matrix(data, market, Timing.PREMATCH, BEST_ODDS_BOOKMAKER)
        feats[f"mkt_{market.value}_overround_avg"] = overround(avg_odds)
        feats[f"mkt_{market.value}_overround_best"] = overround(best_odds)

    bookmaker_probs = _per_bookmaker_home_probs(data)
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

    sharp, _ = odds_matrix(data, MarketKind.ONE_X_TWO, Timing.PREMATCH, PINNACLE)
    soft, _ = odds_matrix(data, MarketKind.ONE_X_TWO, Timing.PREMATCH, AVERAGE_BOOKMAKER)
    sharp_p = implied_probabilities(sharp, demargin_method)
    soft_p = implied_probabilities(soft, demargin_method)
    for j, outcome in enumerate(("home", "draw", "away")):
        feats[f"mkt_1x2_{outcome}_sharp_minus_avg"] = sharp_p[:, j] - soft_p[:, j]
    return pd.DataFrame(feats, index=data.matches.index)


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
    return _first_available(data, market, Timing.PREMATCH, preference, method)


def closing_probabilities(
    data: FootballData, market: MarketKind, *, method: str = "shin"
) -> tuple[np.ndarray, np.ndarray]:
    """De-margined closing probabilities: Pinnacle where present, else the closing average.

    This is the yardstick only; it must never feed a feature.
    """
    return _first_available(data, market, Timing.CLOSING, (PINNACLE, AVERAGE_BOOKMAKER), method)


def _first_available(
    data: FootballData, market: MarketKind, timing: Timing, preference: Sequence[str], method: str
) -> tuple[np.ndarray, np.ndarray]:
    k = 3 if market is MarketKind.ONE_X_TWO else 2
    n = len(data.matches)
    prob = np.full((n, k), np.nan)
    line = np.full(n, np.nan)
    for bookmaker in preference:
        todo = np.isnan(prob[:, 0])
        if not todo.any():
            break
        odds, bk_line = odds_matrix(data, market, timing, bookmaker)
        p = implied_probabilities(odds[:, :k], method)
        fill = todo & ~np.isnan(p[:, 0])
        prob[fill] = p[fill]
        line[fill] = bk_line[fill]
    if market is MarketKind.OVER_UNDER_25:
        line = np.where(np.isnan(prob[:, 0]), np.nan, 2.5)
    return prob, line


def _per_bookmaker_home_probs(data: FootballData) -> np.ndarray:
    quoted = data.odds.loc[
        (data.odds["market"] == MarketKind.ONE_X_TWO.value)
        & (data.odds["timing"] == Timing.PREMATCH.value),
        "bookmaker",
    ].unique()
    bookmakers = sorted(b for b in quoted if b not in _PSEUDO_BOOKMAKERS)
    columns = []
    for bookmaker in bookmakers:
        odds, _ = odds_matrix(data, MarketKind.ONE_X_TWO, Timing.PREMATCH, bookmaker)
        columns.append(implied_probabilities(odds[:, :3], "multiplicative")[:, 0])
    if not columns:
        return np.empty((len(data.matches), 0))
    return np.column_stack(columns)


def _outcome_columns(market: MarketKind) -> tuple[str, ...]:
    if market is MarketKind.ONE_X_TWO:
        return ("mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away")
    if market is MarketKind.OVER_UNDER_25:
        return ("mkt_ou25_over", "mkt_ou25_under")
    return ("mkt_ah_home", "mkt_ah_away")


def _days_into_season(kickoff_utc: pd.Series, season: pd.Series) -> np.ndarray:
    start_year = season.str.slice(0, 4).astype(int)
    season_start = pd.to_datetime(start_year.astype(str) + "-07-01", utc=True)
    return ((kickoff_utc - season_start).dt.total_seconds() / 86400.0).to_numpy()


def model_feature_columns(X: pd.DataFrame) -> list[str]:
    """Columns a learned model may use: everything except identifiers and timestamps."""
    excluded = {"match_id", "season", "kickoff_utc", "home_team", "away_team"}
    return [c for c in X.columns if c not in excluded]
