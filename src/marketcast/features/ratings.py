"""Causal online team ratings (Elo and pi-ratings) over a matches frame, one shared team pool."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

_REQUIRED = ("league", "home_team", "away_team", "kickoff_utc", "home_goals", "away_goals")
_SECONDS_PER_DAY = 86_400
#: Hours after its kick-off before a match's result may move a rating another match reads
#: (``features.football.LEAGUE_RESULT_DELAY_HOURS``, which imports this module).
RESULT_DELAY_HOURS = 3.0

#: Update rule: (pre-date ratings (n_teams, k), home idx, away idx, home goals, away goals)
#: -> rating changes per match for the home team and the away team, each (n_matches, k).
UpdateRule = Callable[
    [
        npt.NDArray[np.float64],
        npt.NDArray[np.intp],
        npt.NDArray[np.intp],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
    ],
    tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]],
]


@dataclass
class _MatchArrays:
    """Matches in kickoff order, encoded as integer codes."""

    order: npt.NDArray[np.intp]  # positions in the input frame, kickoff order
    kickoff: npt.NDArray[np.int64]  # seconds since the epoch, UTC
    day: npt.NDArray[np.int64]  # UTC calendar day number
    season: npt.NDArray[np.intp]
    league: npt.NDArray[np.intp]
    home: npt.NDArray[np.intp]
    away: npt.NDArray[np.intp]
    home_goals: npt.NDArray[np.float64]  # NaN for matches not yet played
    away_goals: npt.NDArray[np.float64]
    n_teams: int
    n_leagues: int


def season_clock(season: pd.Series) -> npt.NDArray[np.object_]:
    """Season labels on the one clock the ratings keep for every league.

    A calendar-year season (``2013``, April to December) counts as the split season it ends
    (``2012-2013``), so that a Brazilian April does not turn over the European seasons half-way
    through. Labels order as strings; a rating's season turnover happens on the first date
    whose label is later than every label before it.

    Examples
    --------
    >>> season_clock(pd.Series(["2012-2013", "2013", "2013-2014"])).tolist()
    ['2012-2013', '2012-2013', '2013-2014']
    """
    labels = season.astype(str)
    clock = np.array(labels.to_numpy(dtype=object), dtype=object, copy=True)
    calendar = labels.str.fullmatch(r"\d{4}").to_numpy(dtype=bool)
    year = labels[calendar].astype(int)
    clock[calendar] = ((year - 1).astype(str) + "-" + year.astype(str)).to_numpy()
    return clock


def _encode(matches: pd.DataFrame) -> _MatchArrays:
    missing = [c for c in _REQUIRED if c not in matches.columns]
    if missing:
        raise ValueError(f"matches frame lacks required columns: {missing}")
    index = pd.DatetimeIndex(matches["kickoff_utc"])
    if index.hasnans:  # as the smallest integer it sorted first, and fed every later rating
        rows = matches.index[index.isna()]
        raise ValueError(
            f"kickoff_utc is missing in {len(rows)} row(s) (index {rows[:5].tolist()}): "
            "a match with no kick-off cannot be placed in time"
        )
    index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    seconds = np.asarray(index.as_unit("s").asi8, dtype=np.int64)
    if "season" in matches.columns:
        season_labels = season_clock(matches["season"])
    else:  # seasons start on 1 July
        season_labels = np.where(index.month >= 7, index.year, index.year - 1).astype(str)
    _, season = np.unique(season_labels, return_inverse=True)
    _, league = np.unique(matches["league"].astype(str).to_numpy(), return_inverse=True)
    names = np.concatenate(
        [matches["home_team"].astype(str).to_numpy(), matches["away_team"].astype(str).to_numpy()]
    )
    teams, codes = np.unique(names, return_inverse=True)
    n = len(matches)
    goals_h = pd.to_numeric(matches["home_goals"], errors="coerce").to_numpy(dtype=np.float64)
    goals_a = pd.to_numeric(matches["away_goals"], errors="coerce").to_numpy(dtype=np.float64)
    # kickoff order; rows of one kickoff second by their content, not their position, so the
    # ratings do not depend on the input's row order (lexsort: the last key is the primary one)
    order = np.lexsort((goals_a, goals_h, codes[n:], codes[:n], season, league, seconds))
    return _MatchArrays(
        order=order,
        kickoff=seconds[order],
        day=(seconds // _SECONDS_PER_DAY)[order],
        season=season.astype(np.intp)[order],
        league=league.astype(np.intp)[order],
        home=codes[:n].astype(np.intp)[order],
        away=codes[n:].astype(np.intp)[order],
        home_goals=goals_h[order],
        away_goals=goals_a[order],
        n_teams=teams.size,
        n_leagues=int(league.max()) + 1 if n else 0,
    )


@dataclass
class _Pool:
    """Rating state of every team plus the bookkeeping for newcomers and season turnover."""

    ratings: npt.NDArray[np.float64]  # (n_teams, k)
    initial: npt.NDArray[np.float64]  # (k,)
    seen: npt.NDArray[np.bool_]
    last_league: npt.NDArray[np.intp]
    newcomer_league: npt.NDArray[np.intp]  # league a team was new in, -1 if not a newcomer
    newcomer_season: npt.NDArray[np.intp]
    league_first_season: dict[int, int] = field(default_factory=dict)
    newcomer_offsets: dict[int, list[npt.NDArray[np.float64]]] = field(default_factory=dict)

    def league_members(self, league: int) -> npt.NDArray[np.intp]:
        return np.flatnonzero(self.seen & (self.last_league == league))

    def league_mean(self, league: int) -> npt.NDArray[np.float64]:
        members = self.league_members(league)
        return self.ratings[members].mean(axis=0) if members.size else self.initial

    def close_season(self, season: int, carry_over: float, n_leagues: int) -> None:
        """Record how this season's newcomers ended up, then regress ratings to league means."""
        means = {lg: self.league_mean(lg) for lg in range(n_leagues)}
        new_now = np.flatnonzero((self.newcomer_season == season) & (self.newcomer_league >= 0))
        for team in new_now:
            lg = int(self.newcomer_league[team])
            self.newcomer_offsets.setdefault(lg, []).append(self.ratings[team] - means[lg])
        if carry_over != 1.0:
            for lg in range(n_leagues):
                members = self.league_members(lg)
                self.ratings[members] = means[lg] + carry_over * (self.ratings[members] - means[lg])

    def start_rating(self, league: int, season: int) -> npt.NDArray[np.float64]:
        """Starting rating of a team first seen in ``league`` in ``season``.

        The default in the league's first season; later, the league's mean (teams whose latest
        match was in it) plus the average end-of-first-season offset of its earlier newcomers,
        or its lower quartile before any newcomer has finished a season (docs/models.md,
        Ratings). Reads the pool only, so every newcomer of a date starts from the pool as it
        stood before that date, whichever other newcomers the date has and in any row order.
        """
        if season == self.league_first_season[league]:
            return self.initial.copy()
        offsets = self.newcomer_offsets.get(league)
        members = self.league_members(league)
        if offsets:
            return self.league_mean(league) + np.mean(offsets, axis=0)
        if members.size:
            return np.quantile(self.ratings[members], 0.25, axis=0)
        return self.initial.copy()

    def add_teams(self, newcomers: dict[int, tuple[int, int]]) -> None:
        """Give first-seen teams (team -> (league, season)) their starts, then add them all."""
        starts: dict[tuple[int, int], npt.NDArray[np.float64]] = {}
        for league, season in newcomers.values():
            if (league, season) not in starts:
                starts[league, season] = self.start_rating(league, season)
        for team, (league, season) in newcomers.items():
            self.ratings[team] = starts[league, season]
            if season != self.league_first_season[league]:
                self.newcomer_league[team] = league
                self.newcomer_season[team] = season
            self.seen[team] = True
            self.last_league[team] = league


def _run(
    matches: pd.DataFrame,
    initial: npt.NDArray[np.float64],
    carry_over: float,
    update: UpdateRule,
) -> npt.NDArray[np.float64]:
    """Pre-match ratings (n, 2, k) [home team, away team] in the input frame's row order.

    All matches of one UTC calendar date read the same ratings: those before that date, with
    the updates of every earlier match whose result was known at the date's first kick-off
    (``RESULT_DELAY_HOURS`` after its own), applied a date's matches together. A match still
    being played then (a 23:00 kick-off the evening before a 00:30 one) is applied before a
    later date. The date's newcomers are added together too: each starts from the pool before
    the date, not counting the others.
    """
    a = _encode(matches)
    n, k = len(a.order), initial.size
    pool = _Pool(
        ratings=np.tile(initial, (a.n_teams, 1)).astype(np.float64),
        initial=initial.astype(np.float64),
        seen=np.zeros(a.n_teams, dtype=bool),
        last_league=np.full(a.n_teams, -1, dtype=np.intp),
        newcomer_league=np.full(a.n_teams, -1, dtype=np.intp),
        newcomer_season=np.full(a.n_teams, -1, dtype=np.intp),
    )
    out = np.empty((n, 2, k))
    if n == 0:
        return out
    bounds = np.flatnonzero(np.diff(a.day)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [n]])
    delay = int(RESULT_DELAY_HOURS * 3600)
    current_season = int(a.season[0])
    applied = 0  # rows before this one have updated the pool
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        # results known at the date's first kick-off (earlier dates' rows only)
        known = min(start, int(np.searchsorted(a.kickoff, a.kickoff[start] - delay, "right")))
        _apply_results(pool, a, update, applied, known)
        applied = known
        day_season = int(a.season[start:end].max())
        if day_season > current_season:
            for s in range(current_season, day_season):
                pool.close_season(s, carry_over if s == day_season - 1 else 1.0, a.n_leagues)
            current_season = day_season
        home, away = a.home[start:end], a.away[start:end]
        if len(pool.league_first_season) < a.n_leagues:  # leagues whose first date this is
            first_seasons: dict[int, int] = {}
            day_leagues, day_seasons = a.league[start:end].tolist(), a.season[start:end].tolist()
            for league, season in zip(day_leagues, day_seasons, strict=True):
                if league not in pool.league_first_season:
                    first_seasons[league] = min(first_seasons.get(league, season), season)
            pool.league_first_season.update(first_seasons)
        # the date's newcomers (each with the league and season of its first row), all started
        # from the pool before the date: they do not count each other in the league's mean
        newcomers: dict[int, tuple[int, int]] = {}
        for row in (start + np.flatnonzero(~pool.seen[home] | ~pool.seen[away])).tolist():
            for team in (int(a.home[row]), int(a.away[row])):
                if not pool.seen[team]:
                    newcomers.setdefault(team, (int(a.league[row]), int(a.season[row])))
        pool.add_teams(newcomers)
        out[start:end, 0] = pool.ratings[home]
        out[start:end, 1] = pool.ratings[away]
        pool.last_league[home] = a.league[start:end]
        pool.last_league[away] = a.league[start:end]
    result = np.empty_like(out)
    result[a.order] = out
    return result


def _apply_results(pool: _Pool, a: _MatchArrays, update: UpdateRule, lo: int, hi: int) -> None:
    """Apply the results of rows ``lo:hi`` (kick-off order) to the pool, one date's rows
    together: each date's updates are computed from the ratings before any of them."""
    if hi <= lo:
        return
    bounds = (lo + np.flatnonzero(np.diff(a.day[lo:hi])) + 1).tolist()
    for start, end in zip([lo, *bounds], [*bounds, hi], strict=True):
        played = np.isfinite(a.home_goals[start:end]) & np.isfinite(a.away_goals[start:end])
        if not played.any():
            continue
        h, w = a.home[start:end][played], a.away[start:end][played]
        d_home, d_away = update(
            pool.ratings, h, w, a.home_goals[start:end][played], a.away_goals[start:end][played]
        )
        np.add.at(pool.ratings, h, d_home)
        np.add.at(pool.ratings, w, d_away)


def elo_goal_multiplier(goal_difference: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """World Football Elo margin multiplier: 1 for 0-1 goals, 1.5 for 2, (11 + n) / 8 for n >= 3.

    Examples
    --------
    >>> elo_goal_multiplier(np.array([0.0, 1.0, 2.0, 3.0, 5.0]))
    array([1.  , 1.  , 1.5 , 1.75, 2.  ])
    """
    n = np.abs(goal_difference)
    return np.where(n <= 1, 1.0, np.where(n == 2, 1.5, (11.0 + n) / 8.0))


def elo_expected_home(
    elo_home: npt.NDArray[np.float64], elo_away: npt.NDArray[np.float64], home_advantage: float
) -> npt.NDArray[np.float64]:
    """Elo expected score of the home side, ``1 / (1 + 10 ** ((away - home - hfa) / 400))``.

    Examples
    --------
    >>> float(elo_expected_home(np.array([1500.0]), np.array([1500.0]), 0.0)[0])
    0.5
    """
    return 1.0 / (1.0 + 10.0 ** ((elo_away - elo_home - home_advantage) / 400.0))


def elo_ratings(
    matches: pd.DataFrame,
    *,
    k: float = 20.0,
    home_advantage: float = 60.0,
    goal_diff_multiplier: bool = True,
    carry_over: float = 0.8,
    initial_rating: float = 1500.0,
) -> pd.DataFrame:
    """Pre-match Elo ratings of both teams, strictly causal.

    Parameters
    ----------
    matches
        Columns ``league, home_team, away_team, kickoff_utc, home_goals, away_goals`` (optional
        ``season``; else seasons start on 1 July). Rows with missing goals get ratings but do not
        update them (fixtures still to be played).
    k
        Update size in rating points.
    home_advantage
        Rating points added to the home side in the expected score.
    goal_diff_multiplier
        Scale ``k`` by :func:`elo_goal_multiplier` of the goal difference.
    carry_over
        At each season change every rating moves to ``mean + carry_over * (rating - mean)``, the
        mean over the teams whose latest match was in the same league.
    initial_rating
        Rating of the teams in a league's first season in the data.

    Returns
    -------
    pandas.DataFrame
        ``elo_home``, ``elo_away`` on ``matches.index``: ratings before the match's calendar date.
    """

    def update(
        ratings: npt.NDArray[np.float64],
        home: npt.NDArray[np.intp],
        away: npt.NDArray[np.intp],
        goals_h: npt.NDArray[np.float64],
        goals_a: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        expected = elo_expected_home(ratings[home, 0], ratings[away, 0], home_advantage)
        score = np.where(goals_h > goals_a, 1.0, np.where(goals_h == goals_a, 0.5, 0.0))
        step = k * (elo_goal_multiplier(goals_h - goals_a) if goal_diff_multiplier else 1.0)
        delta = (step * (score - expected))[:, None]
        return delta, -delta

    pre = _run(matches, np.array([initial_rating]), carry_over, update)
    return pd.DataFrame({"elo_home": pre[:, 0, 0], "elo_away": pre[:, 1, 0]}, index=matches.index)


def pi_expected_goal_difference(
    rating: npt.NDArray[np.float64], b: float = 10.0, c: float = 3.0
) -> npt.NDArray[np.float64]:
    """Expected goal difference against an average side for a pi-rating: sign(R)(b^{|R|/c} - 1).

    Examples
    --------
    >>> pi_expected_goal_difference(np.array([-3.0, 0.0, 3.0]))
    array([-9.,  0.,  9.])
    """
    return np.sign(rating) * (b ** (np.abs(rating) / c) - 1.0)


def pi_ratings(
    matches: pd.DataFrame,
    *,
    lambda_: float = 0.035,
    gamma: float = 0.7,
    b: float = 10.0,
    c: float = 3.0,
    carry_over: float = 1.0,
) -> pd.DataFrame:
    """Pre-match pi-ratings (Constantinou & Fenton 2013), strictly causal.

    Each team has a home rating and an away rating. After a match with goal difference ``g_D``
    (home minus away) and expected difference ``ĝ_D = ĝ(R_home,H) - ĝ(R_away,A)``, the error
    ``e = |g_D - ĝ_D|`` is weighted as ``ψ = c log10(1 + e)``; the home side's home rating moves
    by ``±λψ`` (up if it beat the expectation) and its away rating by ``γ`` times that change;
    the away side mirrors this on its away rating, then its home rating.

    Parameters
    ----------
    matches
        As in :func:`elo_ratings`.
    lambda_, gamma
        Learning rates of the paper (0.035 and 0.7 fitted on the Premier League).
    b, c
        Base and scale of the rating to goal-difference map (10 and 3 in the paper).
    carry_over
        Season-change regression to league means, as in :func:`elo_ratings` (1 = none, the paper).

    Returns
    -------
    pandas.DataFrame
        ``pi_home_home, pi_home_away, pi_away_home, pi_away_away, pi_expected_gd`` on
        ``matches.index``.
    """

    def update(
        ratings: npt.NDArray[np.float64],
        home: npt.NDArray[np.intp],
        away: npt.NDArray[np.intp],
        goals_h: npt.NDArray[np.float64],
        goals_a: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        expected = pi_expected_goal_difference(
            ratings[home, 0], b, c
        ) - pi_expected_goal_difference(ratings[away, 1], b, c)
        observed = goals_h - goals_a
        psi = c * np.log10(1.0 + np.abs(observed - expected))
        psi_home = np.where(expected < observed, psi, -psi)
        psi_away = np.where(expected > observed, psi, -psi)
        d_home_home = lambda_ * psi_home
        d_away_away = lambda_ * psi_away
        d_home = np.stack([d_home_home, gamma * d_home_home], axis=1)
        d_away = np.stack([gamma * d_away_away, d_away_away], axis=1)
        return d_home, d_away

    pre = _run(matches, np.zeros(2), carry_over, update)
    home_home, home_away = pre[:, 0, 0], pre[:, 0, 1]
    away_home, away_away = pre[:, 1, 0], pre[:, 1, 1]
    expected_gd = pi_expected_goal_difference(home_home, b, c) - pi_expected_goal_difference(
        away_away, b, c
    )
    return pd.DataFrame(
        {
            "pi_home_home": home_home,
            "pi_home_away": home_away,
            "pi_away_home": away_home,
            "pi_away_away": away_away,
            "pi_expected_gd": expected_gd,
        },
        index=matches.index,
    )
