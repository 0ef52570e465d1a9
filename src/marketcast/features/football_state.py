"""Feature state for serving: what every team and league carries into its next match.

``build_features`` computes features over a whole history at once. A server answers one new
fixture at a time, so at export time we ask ``build_features`` itself what each team would carry
into one more match (a probe fixture after the last date, once as the home side, once as the
away side), store those values as JSON, and assemble a fixture's row from them plus the odds in
the request. The same code computes both, so serving and training features cannot drift apart
(``tests/pipeline/test_feature_state.py`` checks a real match row for row).

A fixture of a later season than the history's last one meets the ratings' season turnover
first (every Elo rating moves towards its league mean), so the probes run twice: once in the
history's last season, once in the season after it. A fixture's season is the one training
would give it: its date split at 1 July, or its calendar year in a league whose seasons are
calendar years (football-data's extra-league files).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from marketcast.datasets.football_data import FootballData
from marketcast.features.football import (
    DEFAULT_FEATURE_GROUPS,
    HISTORY_CAP_MATCHES,
    REST_DAYS_CAP,
    build_features,
    cross_market_values,
    quoted_market_features,
)
from marketcast.features.ratings import pi_expected_goal_difference, season_clock
from marketcast.margins import implied_probabilities, quote_overround

log = logging.getLogger(__name__)

#: Per-team columns of the optional "shots" group, without the side prefix.
_SHOT_TEAM_COLUMNS = (
    "shots_for_ewm",
    "shots_against_ewm",
    "sot_for_ewm",
    "sot_against_ewm",
    "xg_for_ewm",
    "xg_against_ewm",
    "finishing_resid_ewm",
    "conceding_resid_ewm",
    "sot_share",
)
#: Per-team columns of the optional "line_moves" group, without the side prefix.
_LINE_MOVE_TEAM_COLUMNS = ("line_move_ewm", "total_move_ewm")
#: Columns a team carries as the home side / away side (names as in ``build_features``); those
#: of an optional group the state was not built with are left out.
HOME_SIDE = (
    "elo_home",
    "pi_home_home",
    "pi_home_away",
    "home_form_points",
    "home_goals_for_ewm",
    "home_goals_against_ewm",
    "home_n_previous_matches",
    "home_team_price_resid",
    *(f"home_{c}" for c in _SHOT_TEAM_COLUMNS),
    *(f"home_{c}" for c in _LINE_MOVE_TEAM_COLUMNS),
)
AWAY_SIDE = (
    "elo_away",
    "pi_away_home",
    "pi_away_away",
    "away_form_points",
    "away_goals_for_ewm",
    "away_goals_against_ewm",
    "away_n_previous_matches",
    "away_team_price_resid",
    *(f"away_{c}" for c in _SHOT_TEAM_COLUMNS),
    *(f"away_{c}" for c in _LINE_MOVE_TEAM_COLUMNS),
)
LEAGUE_SIDE = ("league_resid_home", "league_resid_draw", "league_resid_away", "league_resid_over")
#: 2: the season the history ends in, each league's last season and how a team's values change
#: into a later season (version 1 states, still read, serve next-season fixtures un-shrunk Elo).
#: 3: each league's values for a fixture on the history's last UTC date (version 2 states,
#: still read, give such a fixture the values after that date's results, as they did).
STATE_VERSION = 3
_TURNOVER_KEYS = ("turnover_home_side", "turnover_away_side", "turnover_league_side")
_CALENDAR_SEASON = re.compile(r"\d{4}")
_IDENTITY = frozenset({"match_id", "league", "season", "kickoff_utc", "home_team", "away_team"})
_NS_PER_DAY = 86_400 * 10**9


@functools.lru_cache(maxsize=65_536)
def _implied(price: tuple[float, ...], method: str) -> np.ndarray:
    """De-margined probabilities of one quote; cached, since desks resend the same prices."""
    return implied_probabilities(np.array([price], dtype=float), method)[0]


class UnknownFixtureError(ValueError):
    """A team or league the state knows nothing about.

    ``index`` (the fixture's position in the request), ``field`` (``"league"``, ``"home"`` or
    ``"away"``) and ``value`` say exactly where, so an API can point at it.
    """

    def __init__(self, message: str, *, field: str | None = None, value: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.index: int | None = None


@dataclass(frozen=True)
class FeatureState:
    """Per-team and per-league feature values as of the last match in the history."""

    as_of_utc: str
    demargin_method: str
    columns: tuple[str, ...]
    home_side: dict[str, dict[str, float]]
    away_side: dict[str, dict[str, float]]
    league_side: dict[str, dict[str, float]]
    last_kickoff_utc: dict[str, str]
    #: the league each team last played in (of its latest match, home or away): the probe
    #: row's league, and the serving check of a fixture's league reads its country
    team_league: dict[str, str]
    #: the season the history ends in, on the ratings' one clock for every league
    #: (`season_clock`: ``2013`` counts as ``2012-2013``)
    season: str
    #: each league's last season label in the history (``2022-2023``, or ``2022`` where the
    #: league's seasons are calendar years): how a fixture's date gives its season
    league_season: dict[str, str]
    #: how a fixture of a later season than `season` reads the values above: the change (new
    #: minus old, only where nonzero) the season turnover makes to each team's and league's
    #: values (Elo moved towards its league mean), asked of ``build_features`` with the probes
    #: in the next season. A change, not the new value: the team's level stays in one place
    turnover_home_side: dict[str, dict[str, float]]
    turnover_away_side: dict[str, dict[str, float]]
    turnover_league_side: dict[str, dict[str, float]]
    #: a league's values for a fixture on the history's last UTC date, where they differ from
    #: `league_side`: training's league residuals read no result of a match's own date, so a
    #: 15:00 fixture after a 12:30 result (the state's last) reads the values before that date
    league_side_last_day: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def leagues(self) -> frozenset[str]:
        """Leagues with a state."""
        return frozenset(self.league_side)

    def to_json(self) -> bytes:
        """Canonical JSON (NaN as null) for the registry."""
        payload = {"version": STATE_VERSION, **dataclasses.asdict(self)}
        return json.dumps(nan_to_none(payload), sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes) -> FeatureState:
        """Rebuild from :meth:`to_json` output.

        A version 1 state (written before the season turnover was stored) still loads, and
        serves as it did: a fixture of a later season gets the ratings without the turnover,
        which training would apply (a warning says so; `marketcast run` writes a version 3). A
        version 2 state loads without `league_side_last_day`: a fixture on its last date gets
        the values after that date's results, as it did.
        """
        payload = json.loads(raw)
        version = payload.pop("version", None)
        if version in (1, 2):
            payload.setdefault("league_side_last_day", {})
        if version == 1:
            log.warning(
                "feature state version 1: a fixture of a later season than its data gets Elo "
                "ratings without the season turnover training applies; rerun `marketcast run`"
            )
            payload |= {"season": "", "league_season": {}}
            payload |= {key: {} for key in _TURNOVER_KEYS}
        elif version not in (2, STATE_VERSION):
            raise ValueError("feature state was written by an incompatible marketcast version")
        payload["columns"] = tuple(payload["columns"])
        for key in (
            "home_side",
            "away_side",
            "league_side",
            "league_side_last_day",
            *_TURNOVER_KEYS,
        ):
            payload[key] = {
                name: {k: (np.nan if v is None else float(v)) for k, v in values.items()}
                for name, values in payload[key].items()
            }
        return cls(**payload)

    def fixture_frame(self, fixtures: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Feature rows for new fixtures, with the columns the models were trained on.

        Each fixture is a mapping with ``league``, ``home``, ``away``, ``kickoff`` (aware
        datetime or ISO string) and ``odds``: ``{"1x2": (h, d, a), "ou25": (o, u) | None,
        "ah": (line, h, a) | None}``, one bookmaker's prices. With ``"bookmakers"``, a mapping
        of canonical bookmaker code to quotes of the same shape, the market columns are the
        training code's over those quotes (`quoted_market_features`: the across-bookmaker
        spread, the average's and the best prices' margins, the sharpest bookmaker first);
        without it they are the one bookmaker's, with no spread.
        """
        return self.frame(self.fixture_rows(fixtures))

    def fixture_rows(self, fixtures: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The feature values of each fixture as plain dicts (what explanations read)."""
        quoted = [i for i, f in enumerate(fixtures) if f["odds"].get("bookmakers")]
        markets: dict[int, dict[str, float]] = {}
        if quoted:  # all of them at once: the training code costs ~2 ms a call, ~0.07 ms a row
            frame = quoted_market_features(
                [fixtures[i]["odds"]["bookmakers"] for i in quoted],
                demargin_method=self.demargin_method,
            )
            for i, values in zip(quoted, frame.to_dict("records"), strict=True):
                markets[i] = {str(k): float(v) for k, v in values.items()}
        rows = []
        for index, fixture in enumerate(fixtures):
            try:
                rows.append(self._row(fixture, markets.get(index)))
            except UnknownFixtureError as exc:
                exc.index = index
                raise
        return rows

    def frame(self, rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Rows from :meth:`fixture_rows` as a feature frame with the training columns."""
        # One float block plus a few identity columns: far cheaper than a frame from dicts,
        # which matters on the server's per-request path.
        # Built in one constructor call from a dict of columns: inserting the identity columns one
        # by one rebuilt the column index each time (~0.4 ms of a ~3 ms request).
        numeric = [c for c in self.columns if c not in _IDENTITY]
        values = np.array([[r[c] for c in numeric] for r in rows], dtype=float)
        data: dict[str, Any] = {c: values[:, i] for i, c in enumerate(numeric)}
        for column in ("match_id", "season", "home_team", "away_team"):
            data[column] = [r[column] for r in rows]
        data["kickoff_utc"] = pd.to_datetime([r["kickoff_utc"] for r in rows], utc=True)
        data["league"] = pd.Categorical([r["league"] for r in rows])
        return pd.DataFrame(data)  # models select columns by name; the numeric block comes first

    def _row(
        self, fixture: Mapping[str, Any], market: Mapping[str, float] | None = None
    ) -> dict[str, Any]:
        # Scalar arithmetic throughout: a fixture's row is the server's per-request work, and
        # pandas/numpy calls on one value (timestamps parsed from text, `np.clip`, a 1-row
        # `overround`) were most of its ~100 us. The rows came out the same to the bit on 3,000
        # random fixtures when this was written; `quote_overround` has its own test.
        league, home, away = fixture["league"], fixture["home"], fixture["away"]
        if league not in self.league_side:
            raise UnknownFixtureError(
                unknown_league_message(league, self.leagues), field="league", value=league
            )
        for side, team in (("home", home), ("away", away)):
            if team not in self.home_side:
                raise UnknownFixtureError(
                    _unknown_team_message(team, self.home_side), field=side, value=team
                )
        kickoff = pd.Timestamp(fixture["kickoff"]).tz_convert("UTC")
        kickoff_ns = kickoff.value
        row: dict[str, Any] = dict.fromkeys(self.columns, np.nan)
        season_start = kickoff.year if kickoff.month >= 7 else kickoff.year - 1
        season = self.fixture_season(league, kickoff)
        row.update(
            match_id=f"{league}:{kickoff.date().isoformat()}:{home}:{away}",
            league=league,
            season=season,
            kickoff_utc=kickoff,
            home_team=home,
            away_team=away,
        )
        row.update(self.home_side[home])
        row.update(self.away_side[away])
        row.update(self.league_side[league])
        if kickoff_ns // _NS_PER_DAY == self._last_day:
            row.update(self.league_side_last_day.get(league, {}))
        if _clock_label(season) > self.season:  # training turns the season over first
            for turnover in (
                self.turnover_home_side.get(home, {}),
                self.turnover_away_side.get(away, {}),
                self.turnover_league_side.get(league, {}),
            ):
                for column, change in turnover.items():
                    row[column] += change
        row["elo_diff"] = row["elo_home"] - row["elo_away"]
        # numpy's power, as training's (Python's ** differs in the last bit): both sides in one call
        home_gd, away_gd = pi_expected_goal_difference(
            np.array([row["pi_home_home"], row["pi_away_away"]])
        ).tolist()
        row["pi_expected_gd"] = home_gd - away_gd
        last_ns = self._last_kickoff_ns
        for side, team in (("home", home), ("away", away)):
            rest = _days_between(last_ns[team], kickoff_ns)
            row[f"{side}_rest_days"] = min(max(rest, 0.0), REST_DAYS_CAP)
            row[f"{side}_n_previous_matches"] = min(
                row[f"{side}_n_previous_matches"], HISTORY_CAP_MATCHES
            )
        row["form_points_diff"] = row["home_form_points"] - row["away_form_points"]
        row["rest_days_diff"] = row["home_rest_days"] - row["away_rest_days"]
        if "sot_share_diff" in row:
            row["sot_share_diff"] = row["home_sot_share"] - row["away_sot_share"]
            row["xg_diff_ewm"] = (row["home_xg_for_ewm"] - row["home_xg_against_ewm"]) - (
                row["away_xg_for_ewm"] - row["away_xg_against_ewm"]
            )
        if "line_move_diff" in row:
            row["line_move_diff"] = row["home_line_move_ewm"] - row["away_line_move_ewm"]
            row["total_move_sum"] = row["home_total_move_ewm"] + row["away_total_move_ewm"]
        row.update(self._market(fixture["odds"]) if market is None else market)
        if "xm_draw_gap" in row:
            row.update(
                _cross_market(
                    row["mkt_1x2_home"], row["mkt_1x2_draw"], row["mkt_1x2_away"],
                    row["mkt_ou25_over"],
                )
            )  # fmt: skip
        row["season_day"] = _days_between(_season_start_ns(season_start), kickoff_ns)
        return row

    @functools.cached_property
    def _last_day(self) -> int:
        """The history's last UTC date, as days since the epoch."""
        return int(pd.Timestamp(self.as_of_utc).value // _NS_PER_DAY)

    @functools.cached_property
    def _last_kickoff_ns(self) -> dict[str, int]:
        """Each team's last kick-off as nanoseconds since the epoch (parsed once, not per row)."""
        return {team: pd.Timestamp(text).value for team, text in self.last_kickoff_utc.items()}

    def fixture_season(self, league: str, kickoff: pd.Timestamp) -> str:
        """The season label training gives a fixture of ``league`` kicking off at ``kickoff``.

        Its date split at 1 July (``2022-08-05`` is in ``2022-2023``), as football-data's
        league files are read; its calendar year where the league's seasons are calendar years
        (the extra-league files' ``Season`` cell). A fixture of a later season than the
        history's (`season`, two or more seasons later too) reads the values past the season
        turnover, as training computes them: one turnover, however many seasons were skipped.
        """
        if _CALENDAR_SEASON.fullmatch(self.league_season.get(league, "")):
            return str(kickoff.year)
        start = kickoff.year if kickoff.month >= 7 else kickoff.year - 1
        return f"{start}-{start + 1}"

    def _market(self, odds: Mapping[str, Any]) -> dict[str, float]:
        """Market columns from one bookmaker's quotes (no spread across bookmakers: NaN)."""
        out: dict[str, float] = {}
        ah = odds.get("ah")
        for market, outcomes, quote in (
            ("1x2", ("home", "draw", "away"), odds["1x2"]),
            ("ou25", ("over", "under"), odds.get("ou25")),
            ("ah", ("home", "away"), ah[1:] if ah else None),
        ):
            price = tuple(map(float, quote)) if quote else (math.nan,) * len(outcomes)
            # an unquoted market stays NaN without de-margining (NaN keys never hit the cache)
            if all(map(math.isfinite, price)):
                p = tuple(map(float, _implied(price, self.demargin_method)))
            else:
                p = (math.nan,) * len(outcomes)
            for outcome, value in zip(outcomes, p, strict=True):
                out[f"mkt_{market}_{outcome}"] = value
            margin = quote_overround(price)
            out[f"mkt_{market}_overround_avg"] = margin
            out[f"mkt_{market}_overround_best"] = margin
        out["ah_line"] = float(ah[0]) if ah else math.nan
        out["mkt_n_bookmakers"] = 1.0
        return out


def build_feature_state(
    data: FootballData,
    *,
    demargin_method: str = "shin",
    groups: Sequence[str] = DEFAULT_FEATURE_GROUPS,
) -> FeatureState:
    """Ask ``build_features`` what each team carries into one more match after the history."""
    matches = data.matches
    last = matches["kickoff_utc"].max()
    probe_day = last.normalize() + pd.Timedelta(days=1, hours=15)
    # each team's league is that of its latest match, home or away: a promoted team's first
    # away match in its new division moves it there (its latest home match was a division lower)
    played = pd.concat(
        [
            matches[["kickoff_utc", "league"]].assign(team=matches[side].to_numpy())
            for side in ("home_team", "away_team")
        ],
        ignore_index=True,
    )
    latest = played.sort_values("kickoff_utc", kind="stable").groupby("team").last()
    team_league: dict[str, str] = {str(k): str(v) for k, v in latest["league"].items()}
    teams = sorted(team_league)
    league_season: dict[str, str] = {
        str(k): str(v)
        for k, v in matches.sort_values("kickoff_utc").groupby("league")["season"].last().items()
    }
    season = str(season_clock(matches["season"]).max())
    next_season = _season_after(season)

    def probe(
        as_home: bool,
        *,
        new_season: bool = False,
        kickoff: pd.Timestamp = probe_day,
        only: Sequence[str] = teams,
    ) -> pd.DataFrame:
        ghosts = [f"__probe_{i}__" for i in range(len(only))]
        fixtures = pd.DataFrame(
            {
                "match_id": [f"probe:{i}" for i in range(len(only))],
                "league": [team_league[t] for t in only],
                "season": [
                    next_season if new_season else league_season[team_league[t]] for t in only
                ],
                "kickoff_utc": kickoff,
                "kickoff_time_known": False,
                "home_team": list(only) if as_home else ghosts,
                "away_team": ghosts if as_home else list(only),
                "home_goals": np.nan,
                "away_goals": np.nan,
                "result": "",
                "source_file": "probe",
                "source_row": 0,
            }
        )
        extended = pd.concat(
            [matches.astype({"home_goals": float, "away_goals": float}), fixtures],
            ignore_index=True,
        )
        X = build_features(
            dataclasses.replace(data, matches=extended),
            demargin_method=demargin_method,
            groups=groups,
        )
        return X.iloc[len(matches) :].reset_index(drop=True)

    as_home, as_away = probe(True), probe(False)
    home_columns = [c for c in HOME_SIDE if c in as_home.columns]
    away_columns = [c for c in AWAY_SIDE if c in as_away.columns]
    home_side = {t: {c: _cell(as_home, i, c) for c in home_columns} for i, t in enumerate(teams)}
    away_side = {t: {c: _cell(as_away, i, c) for c in away_columns} for i, t in enumerate(teams)}
    league_row: dict[str, int] = {}  # a league's values: its first team's probe row
    for i, team in enumerate(teams):
        league_row.setdefault(team_league[team], i)
    league_side = {
        lg: {c: _cell(as_home, i, c) for c in LEAGUE_SIDE} for lg, i in league_row.items()
    }
    # a fixture on the last date reads none of that date's results (nor one under the result
    # delay before it): the leagues that played that date, probed at its end
    played_last_day = set(
        matches.loc[matches["kickoff_utc"].dt.normalize() == last.normalize(), "league"]
    )
    firsts = [teams[i] for lg, i in league_row.items() if lg in played_last_day]
    league_side_last_day: dict[str, dict[str, float]] = {}
    if firsts:
        same_day = probe(
            True, kickoff=last.normalize() + pd.Timedelta(hours=23, minutes=59), only=firsts
        )
        for k, team in enumerate(firsts):
            values = {c: _cell(same_day, k, c) for c in LEAGUE_SIDE}
            if values != league_side[team_league[team]]:
                league_side_last_day[team_league[team]] = values
    # the same probes in the season after the history's: what training computes for a fixture
    # of a later season (the ratings' season turnover), kept where it differs
    new_home, new_away = probe(True, new_season=True), probe(False, new_season=True)
    turnover_home_side = _turnover(home_side, new_home, teams)
    turnover_away_side = _turnover(away_side, new_away, teams)
    turnover_league_side = _turnover(
        league_side, new_home, list(league_row), rows=list(league_row.values())
    )
    last_kickoff = {str(team): ts for team, ts in latest["kickoff_utc"].items()}
    columns = tuple(build_features_columns(data, demargin_method, groups))
    return FeatureState(
        as_of_utc=last.strftime("%Y-%m-%dT%H:%M:%SZ"),
        demargin_method=demargin_method,
        columns=columns,
        home_side=home_side,
        away_side=away_side,
        league_side=league_side,
        last_kickoff_utc={t: ts.strftime("%Y-%m-%dT%H:%M:%SZ") for t, ts in last_kickoff.items()},
        team_league=team_league,
        season=season,
        league_season=league_season,
        turnover_home_side=turnover_home_side,
        turnover_away_side=turnover_away_side,
        turnover_league_side=turnover_league_side,
        league_side_last_day=league_side_last_day,
    )


def build_features_columns(
    data: FootballData, demargin_method: str, groups: Sequence[str] = DEFAULT_FEATURE_GROUPS
) -> list[str]:
    """The feature frame's columns, in order (from a tiny slice of the history)."""
    head = data.matches.iloc[:50]
    small = dataclasses.replace(
        data, matches=head, odds=data.odds[data.odds["match_id"].isin(head["match_id"])]
    )
    return list(build_features(small, demargin_method=demargin_method, groups=groups).columns)


@functools.lru_cache(maxsize=65_536)
def _cross_market(home: float, draw: float, away: float, over: float) -> dict[str, float]:
    """The cross-market columns of one fixture, by the training code; cached like `_implied`."""
    values = cross_market_values(
        np.array([home]), np.array([draw]), np.array([away]), np.array([over])
    )
    return {k: float(v[0]) for k, v in values.items()}


def _cell(frame: pd.DataFrame, row: int, column: str) -> float:
    return float(frame[column].iloc[row])


def _turnover(
    side: Mapping[str, Mapping[str, float]],
    probed: pd.DataFrame,
    names: Sequence[str],
    rows: Sequence[int] | None = None,
) -> dict[str, dict[str, float]]:
    """Per name, ``probed`` (row ``rows[k]``, else ``k``) minus ``side`` where they differ.

    For Elo both values are within a factor 2 of each other, so the difference is exact and
    adding it back gives the probed value bit for bit.

    Raises
    ------
    ValueError
        When a value turns NaN, or stops being NaN, at the turnover: no change carries that.
    """
    out: dict[str, dict[str, float]] = {}
    for k, name in enumerate(names):
        row = k if rows is None else rows[k]
        change: dict[str, float] = {}
        for column, old in side[name].items():
            new = _cell(probed, row, column)
            if np.isnan(new) != np.isnan(old):
                raise ValueError(f"{column} of {name!r} turns NaN or back at the season turnover")
            if not np.isnan(new) and new != old:
                change[column] = new - old
        if change:
            out[name] = change
    return out


def _season_after(season: str) -> str:
    """The split season after a season-clock label.

    >>> _season_after("2022-2023")
    '2023-2024'
    """
    start = int(season[:4]) + 1
    return f"{start}-{start + 1}"


def _days_between(start_ns: int, end_ns: int) -> float:
    """Days from one epoch-nanosecond instant to another, as ``Timedelta.total_seconds() /
    86400`` computes them."""
    return ((end_ns - start_ns) / 1e9) / 86400.0


@functools.lru_cache(maxsize=256)
def _season_start_ns(year: int) -> int:
    """1 July of ``year`` (UTC), where a split season's day count starts, in epoch ns."""
    return pd.Timestamp(f"{year}-07-01", tz="UTC").value


@functools.lru_cache(maxsize=1024)
def _clock_label(season: str) -> str:
    """`season_clock` of one label (cached: the server asks it for every fixture)."""
    return str(season_clock(pd.Series([season]))[0])


def unknown_league_message(league: str, known: Iterable[str]) -> str:
    """The error text for a league without a state: the known leagues, and the right spelling
    when only the case (or surrounding spaces) differs, since league codes are case-sensitive.

    Examples
    --------
    >>> unknown_league_message("SC9", {"E0", "D1"})
    "unknown league 'SC9'; the champions know D1, E0"
    >>> unknown_league_message("e0", {"E0", "D1"})
    "unknown league 'e0'; the champions know D1, E0; did you mean 'E0'? (codes are case-sensitive)"
    """
    names = sorted(known)
    wanted = league.strip().casefold()
    same = [name for name in names if name.casefold() == wanted]
    hint = f"; did you mean {same[0]!r}? (codes are case-sensitive)" if same else ""
    return f"unknown league {league!r}; the champions know {', '.join(names)}{hint}"


#: League codes whose country is not their letters: the National League (Conference) is English.
_COUNTRY_OF_CODE = {"EC": "E"}


@functools.lru_cache(maxsize=256)
def league_country(league: str) -> str:
    """The country of a football-data.co.uk league code: the code without its division digits.

    Teams move only between the divisions of one country (promotion and relegation), so two
    codes of one country are the leagues a team may go between. A code with one league per
    country (``ARG``, ``USA``) is its own country.

    Examples
    --------
    >>> [league_country(code) for code in ("E0", "E1", "EC", "SP2", "SC0", "D1", "N1", "USA")]
    ['E', 'E', 'E', 'SP', 'SC', 'D', 'N', 'USA']
    """
    letters = league.rstrip("0123456789") or league
    return _COUNTRY_OF_CODE.get(letters, letters)


def _unknown_team_message(team: str, known: Mapping[str, Any]) -> str:
    import difflib

    close = difflib.get_close_matches(team, list(known), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"unknown team {team!r} (names follow football-data.co.uk){hint}"


def nan_to_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (in dicts, lists and tuples) as ``None``: strict JSON.

    >>> nan_to_none({"a": float("nan"), "b": [1.5, float("inf")]})
    {'a': None, 'b': [1.5, None]}
    """
    if isinstance(obj, dict):
        return {k: nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [nan_to_none(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
