"""Score walk-forward football forecasts against the market: scores, yardsticks, backtests."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from marketcast.config import check_bet_bookmaker
from marketcast.datasets.football_data import FootballData, odds_matrix
from marketcast.evaluation.backtest import BacktestConfig, run_backtest
from marketcast.evaluation.scoring import (
    check_probabilities,
    log_loss_per_sample,
    reliability_curve,
    score_all,
)
from marketcast.evaluation.walk_forward import WalkForwardPredictions
from marketcast.features.football import closing_yardstick, prematch_yardstick
from marketcast.labels.football import profit_matrix
from marketcast.models.base import market_labels
from marketcast.promotion import PromotionRule, decide_among
from marketcast.types import EXCHANGE_COMMISSION, OUTCOMES, MarketKind, Timing

log = logging.getLogger(__name__)

#: The incumbent every challenger is first tested against: the pre-match price itself.
BASELINE_MODEL = "market"


def priced_markets(model: Any) -> frozenset[MarketKind]:
    """The markets ``model`` forecasts, read from its ``markets`` attribute; all when it has none.

    LightGBM's ``markets`` parameter names the markets it fits; a model that prices only some
    markets by design says so in a class attribute (``markets = ("1x2",)``). A model without
    the attribute is taken to price every market.

    Examples
    --------
    >>> class OnlyResults:
    ...     markets = ("1x2",)
    >>> sorted(m.value for m in priced_markets(OnlyResults()))
    ['1x2']
    >>> len(priced_markets(object())) == len(MarketKind)
    True
    """
    declared = getattr(model, "markets", None)
    if declared is None:
        return frozenset(MarketKind)
    return frozenset(MarketKind(market) for market in declared)


def check_markets_priced(
    models: Mapping[str, Any],
    markets: Iterable[MarketKind | str],
    *,
    candidates: Mapping[str, Any] | None = None,
    option: str = "markets",
) -> None:
    """Refuse, before any fitting, a market that none of ``models`` prices (see `priced_markets`).

    A model without a forecast on a market is left out of it; when that leaves nobody, there
    is nothing to score or promote, and the walk-forward would have run for nothing.

    Parameters
    ----------
    models
        The models to evaluate, by name.
    markets
        The markets to evaluate them on.
    candidates
        Models that could be added, by name (those in ``models`` are not suggested); the
        error names the ones that price the market.
    option
        How the error names the markets' setting (``"--markets"`` on the command line).

    Raises
    ------
    ValueError
        Naming the market and the models, e.g. ``--markets ou25: none of the models elo prices
        it; add one that does (market, dixon_coles) or leave ou25 out``.

    Examples
    --------
    >>> class OnlyResults:
    ...     markets = ("1x2",)
    >>> check_markets_priced({"elo": OnlyResults()}, ["1x2"])
    >>> check_markets_priced({"elo": OnlyResults()}, ["1x2", "ou25"], candidates={"market": 0})
    Traceback (most recent call last):
    ...
    ValueError: markets ou25: none of the models elo prices it; add one that does (market) or \
leave ou25 out
    """
    for market in (MarketKind(m) for m in markets):
        if any(market in priced_markets(model) for model in models.values()):
            continue
        others = [
            name
            for name, model in (candidates or {}).items()
            if name not in models and market in priced_markets(model)
        ]
        add = f"add one that does ({', '.join(others)}) or " if others else ""
        raise ValueError(
            f"{option} {market.value}: none of the models {', '.join(models)} prices it; "
            f"{add}leave {market.value} out"
        )


@dataclass
class MarketEvaluation:
    """Everything scored for one market on one common set of matches."""

    market: MarketKind
    rows: np.ndarray  # positions in data.matches that were scored
    labels: np.ndarray  # (n_rows,)
    losses: dict[str, np.ndarray]  # model or yardstick -> per-match log loss on `rows`
    summary: dict[str, Any]
    per_league: dict[str, dict[str, Any]]
    reliability: dict[str, Any]
    profit_curves: dict[str, Any]
    champion: str
    promotion: dict[str, Any]
    #: model or yardstick -> out-of-sample probabilities on ``rows`` (n_rows, n_outcomes)
    forecasts: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class FootballEvaluation:
    """The ``evaluate football`` result: the design's JSON plus report sections."""

    n_matches: int
    markets: dict[str, MarketEvaluation] = field(default_factory=dict)
    #: the walk-forward's test window over every league: see :func:`kickoff_window`
    test_window: dict[str, Any] = field(default_factory=dict)
    #: league -> its own test window (each market's ``per_league`` sections carry it too)
    test_windows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_contract_json(self) -> dict[str, Any]:
        """The stable ``marketcast evaluate football`` JSON (keys never renamed, only added)."""
        return {
            "n_matches": self.n_matches,
            "test_window": self.test_window,
            "markets": {name: ev.summary for name, ev in self.markets.items()},
        }


def kickoff_window(kickoff_utc: pd.Series, mask: np.ndarray) -> dict[str, Any]:
    """The first and last kick-off (UTC dates, ISO) and the number of the matches in ``mask``.

    Parameters
    ----------
    kickoff_utc
        Kick-off times of every match (tz-aware UTC), aligned with ``mask``.
    mask
        Boolean, True for the matches of the window (the walk-forward's test matches).

    Returns
    -------
    dict[str, Any]
        ``{"first_kickoff": "YYYY-MM-DD", "last_kickoff": "YYYY-MM-DD", "n_matches": n}``;
        both dates are None when no match is in ``mask``.

    Examples
    --------
    >>> kickoff = pd.Series(pd.to_datetime(
    ...     ["2023-05-28 15:30", "2022-08-05 19:00", "2021-05-23 15:00"], utc=True))
    >>> kickoff_window(kickoff, np.array([True, True, False]))
    {'first_kickoff': '2022-08-05', 'last_kickoff': '2023-05-28', 'n_matches': 2}
    """
    chosen = kickoff_utc[np.asarray(mask, dtype=bool)]
    if chosen.empty:
        return {"first_kickoff": None, "last_kickoff": None, "n_matches": 0}
    return {
        "first_kickoff": chosen.min().strftime("%Y-%m-%d"),
        "last_kickoff": chosen.max().strftime("%Y-%m-%d"),
        "n_matches": len(chosen),
    }


def evaluate_predictions(
    data: FootballData,
    X: pd.DataFrame,
    predictions: WalkForwardPredictions,
    markets: tuple[MarketKind, ...],
    *,
    demargin_method: str,
    backtest: BacktestConfig,
    bookmaker: str = "best",
    exchange_commission: float = EXCHANGE_COMMISSION,
    promotion: PromotionRule | None = None,
) -> FootballEvaluation:
    """Score every model and the market yardsticks on the same test matches, per market.

    A match is scored for a market when its label settles (no full AH push), and both the
    de-margined closing and pre-match prices exist; for Asian handicap the closing line must
    equal the pre-match line the models forecast (otherwise the two answer different questions)
    and be a whole or half line. Backtests run on the same matches, at ``bookmaker``'s pre-match
    odds ("best": the best price across bookmakers), exchange prices net of
    ``exchange_commission`` on winnings.

    The market average (``"avg"``) is refused, as in a run's config: no bookmaker offers it,
    so no bet can be placed at it.

    The result records the test window (first and last kick-off, number of test matches) over
    every league (``test_window``) and per league (``test_windows``, also in each market's
    ``per_league`` sections, so a per-league table says which dates its scores cover).
    ``promotion`` is the rule each market's champion is chosen by (default ``PromotionRule()``).
    """
    check_bet_bookmaker(bookmaker)
    rule = promotion if promotion is not None else PromotionRule()
    y_goals = data.matches[["home_goals", "away_goals"]].to_numpy()
    kickoff = data.matches["kickoff_utc"].reset_index(drop=True)
    league_of = data.matches["league"].astype(str).to_numpy()
    test_mask = np.asarray(predictions.test_mask, dtype=bool)
    for market in markets:  # before any scoring: a market nobody forecast has no champion
        if not _forecasting(predictions, market):
            models = ", ".join(predictions.probabilities) or "none"
            raise ValueError(
                f"{market.value}: no model has a forecast on any of the {int(test_mask.sum())} "
                f"test matches (models: {models}); evaluate a model that prices "
                f"{market.value}, or leave it out"
            )
    result = FootballEvaluation(
        n_matches=int(test_mask.sum()),
        test_window=kickoff_window(kickoff, test_mask),
        test_windows={
            league: kickoff_window(kickoff, test_mask & (league_of == league))
            for league in sorted(set(league_of[test_mask].tolist()))
        },
    )
    for market in markets:
        result.markets[market.value] = _evaluate_market(
            data,
            X,
            y_goals,
            predictions,
            market,
            demargin_method=demargin_method,
            backtest=backtest,
            bookmaker=bookmaker,
            exchange_commission=exchange_commission,
            rule=rule,
            league_windows=result.test_windows,
        )
    return result


def _forecasting(predictions: WalkForwardPredictions, market: MarketKind) -> dict[str, np.ndarray]:
    """The models with a forecast on at least one test match of ``market``: name -> (n, k)."""
    return {
        name: probs[market.value]
        for name, probs in predictions.probabilities.items()
        if not np.isnan(probs[market.value][predictions.test_mask]).all()
    }


def _check_forecasts(
    name: str, market: MarketKind, p: np.ndarray, positions: np.ndarray, match_ids: np.ndarray
) -> None:
    """Refuse a forecast row that is not a distribution, naming the model, market and match.

    ``check_probabilities`` names only the row of the array it was given ("p row 12"), which
    says nothing about which model or match was wrong.
    """
    try:
        check_probabilities(p[positions])
    except ValueError:
        for pos in positions:  # the error path only: find the first bad match
            try:
                check_probabilities(p[pos : pos + 1])
            except ValueError as exc:
                why = str(exc).removeprefix("p row 0: ")
                raise ValueError(
                    f"model {name!r}, market {market.value}, match_id {match_ids[pos]}: {why}"
                ) from None
        raise


def _source_counts(source: np.ndarray) -> dict[str, int]:
    """How many matches each bookmaker's price came from (a blank source is no price).

    >>> _source_counts(np.array(["pinnacle", "avg", "pinnacle", ""]))
    {'avg': 1, 'pinnacle': 2}
    """
    names, counts = np.unique(source.astype(str), return_counts=True)
    return {str(name): int(n) for name, n in zip(names, counts, strict=True) if name}


def _closing_source_counts(market: MarketKind, source: np.ndarray) -> dict[str, int]:
    """How many scored matches each closing yardstick came from, with a warning when mixed.

    Pinnacle's prices thin out in newer seasons: where it has none the yardstick is the closing
    average, a different (softer) line, so ratios over a mix move with the mix.
    """
    found = _source_counts(source)
    if len(found) > 1:
        log.warning(
            "%s: the closing yardstick mixes sources (%s): Pinnacle is missing for part of the "
            "matches, so the ratios to closing mix two lines",
            market.value,
            ", ".join(f"{name} {n}" for name, n in found.items()),
        )
    return found


def _first_failed_check(
    mask: np.ndarray, checks: list[tuple[str, np.ndarray]]
) -> tuple[np.ndarray, dict[str, int]]:
    """Rows of ``mask`` passing every check, and per check the rows it was the first to fail."""
    valid = mask.copy()
    counts: dict[str, int] = {}
    for reason, ok in checks:
        counts[reason] = int((valid & ~ok).sum())
        valid &= ok
    return valid, counts


#: The scoring checks a backtest applies too: those that read nothing learnt after kick-off.
_KNOWN_BEFORE_KICKOFF = frozenset(
    {"no_handicap_line", "no_prematch_price", "quarter_line", "no_forecast"}
)


def _evaluate_market(
    data: FootballData,
    X: pd.DataFrame,
    y_goals: np.ndarray,
    predictions: WalkForwardPredictions,
    market: MarketKind,
    *,
    demargin_method: str,
    backtest: BacktestConfig,
    bookmaker: str,
    exchange_commission: float,
    rule: PromotionRule,
    league_windows: dict[str, dict[str, Any]],
) -> MarketEvaluation:
    labels_all = market_labels(market, X, y_goals)
    closing_p, closing_line, closing_from = closing_yardstick(data, market, method=demargin_method)
    prematch_p, prematch_line, prematch_from = prematch_yardstick(
        data, market, method=demargin_method
    )
    engines = _forecasting(predictions, market)
    test_rows = np.flatnonzero(predictions.test_mask)
    match_ids = data.matches["match_id"].to_numpy()
    for name, p in engines.items():
        _check_forecasts(name, market, p, test_rows, match_ids)
    # a handicap match without a line cannot be settled either, but "unsettled" read as pushes
    line_given = (
        [("no_handicap_line", np.isfinite(X["ah_line"].to_numpy(dtype=float)))]
        if market is MarketKind.ASIAN_HANDICAP
        else []
    )
    checks = [
        *line_given,
        ("unsettled", labels_all >= 0),
        ("no_closing_price", ~np.isnan(closing_p).any(axis=1)),
        ("no_prematch_price", ~np.isnan(prematch_p).any(axis=1)),
    ]
    if market is MarketKind.ASIAN_HANDICAP:
        model_line = X["ah_line"].to_numpy(dtype=float)
        checks += [
            (
                "handicap_line_moved",
                np.isclose(closing_line, model_line) & np.isclose(prematch_line, model_line),
            ),
            # On a quarter line a price prices a split stake (half win / half loss), not the
            # probability of "home covers"; only whole and half lines are scored as probabilities.
            ("quarter_line", np.isclose(model_line * 2, np.round(model_line * 2))),
        ]
    checks.append(
        ("no_forecast", np.logical_and.reduce([~np.isnan(p).any(axis=1) for p in engines.values()]))
    )
    valid, not_scored = _first_failed_check(predictions.test_mask, checks)
    if not valid.any():
        log.warning(
            "%s: none of the %d test matches can be scored (%s)",
            market.value,
            int(predictions.test_mask.sum()),
            ", ".join(f"{reason} {n}" for reason, n in not_scored.items() if n),
        )
    rows = np.flatnonzero(valid)
    labels = labels_all[rows]
    leagues = data.matches["league"].to_numpy()[rows]
    # Bets are chosen before kick-off, so the backtest must not drop a match for anything
    # learnt later: a handicap push is a bet placed and refunded (profit 0), left out of the
    # scores only (a probability of "home covers" is conditional on no push), and a match
    # without a closing price, or whose handicap line moved by the close, is bet too (its CLV
    # is then unknown and counted). Dropping the moved lines kept exactly the bets the market
    # later went against least: on the bundle's 2021-23 handicaps, 40% of the lines moved and
    # the market model's flat ROI was +14.0% on the rest against +0.4% on all.
    bet_checks = [c for c in checks if c[0] in _KNOWN_BEFORE_KICKOFF]
    bet_rows = np.flatnonzero(_first_failed_check(predictions.test_mask, bet_checks)[0])
    bet_kickoff = data.matches["kickoff_utc"].iloc[bet_rows]
    bet_time_known = data.matches["kickoff_time_known"].to_numpy(dtype=bool)[bet_rows]
    bet_leagues = data.matches["league"].to_numpy()[bet_rows]

    yardsticks = {"closing": closing_p[rows], "prematch": prematch_p[rows]}
    forecasts = {name: p[rows] for name, p in engines.items()}
    losses = {
        name: log_loss_per_sample(labels, p) for name, p in {**forecasts, **yardsticks}.items()
    }
    engine_scores = {name: _scores(labels, p) for name, p in forecasts.items()}
    market_scores = {name: _scores(labels, p, short=True) for name, p in yardsticks.items()}
    market_scores["closing"]["sources"] = _closing_source_counts(market, closing_from[rows])
    # the pre-match line falls back through PREMATCH_PREFERENCE, as the models' inputs do
    market_scores["prematch"]["sources"] = _source_counts(prematch_from[rows])
    closing_ll = market_scores["closing"]["log_loss"]
    ratio = {name: s["log_loss"] / closing_ll for name, s in engine_scores.items()}
    ratio["prematch"] = market_scores["prematch"]["log_loss"] / closing_ll

    odds_taken, line_taken = odds_matrix(
        data, market, Timing.PREMATCH, bookmaker, exchange_commission=exchange_commission
    )
    k = len(OUTCOMES[market])
    odds_taken = odds_taken[bet_rows, :k]
    bet_closing = closing_p[bet_rows]
    line = None
    if market is MarketKind.ASIAN_HANDICAP:
        line = X["ah_line"].to_numpy(dtype=float)[bet_rows]
        # the bookmaker's prices are for its own line: on another line than the forecast's
        # (a file with one AHh per match never has one) they price another bet, so no price
        other = ~np.isclose(line_taken[bet_rows], line)
        odds_taken = np.where(other[:, None], np.nan, odds_taken)
        # a close on another line prices another bet: no closing value for this one
        moved = ~np.isclose(closing_line[bet_rows], line)
        bet_closing = np.where(moved[:, None], np.nan, bet_closing)
    profits = profit_matrix(market, odds_taken, y_goals[bet_rows, 0], y_goals[bet_rows, 1], line)
    bet_forecasts = {name: p[bet_rows] for name, p in engines.items()}
    backtests: dict[str, Any] = {}
    profit_curves: dict[str, Any] = {}
    for name, p in bet_forecasts.items():
        bt = run_backtest(
            p,
            odds_taken,
            profits,
            bet_closing,
            bet_kickoff,
            backtest,
            kickoff_time_known=bet_time_known,
        )
        backtests[name] = bt.to_dict()
        curve = bt.bets
        profit_curves[name] = {
            "kickoff_utc": [
                ts.strftime("%Y-%m-%dT%H:%M:%SZ")
                for ts in bet_kickoff.iloc[curve["row"].to_numpy()]
            ]
            if len(curve)
            else [],
            "cumulative_profit": curve["cumulative_profit"].round(4).tolist() if len(curve) else [],
        }

    champion, promotion = _choose_champion(losses, engine_scores, rule, market=market)
    summary = {
        "engines": engine_scores,
        "market": market_scores,
        "backtest": backtests,
        "champion": champion,
        "ratio_to_closing": ratio,
        "n": len(rows),
        "not_scored": not_scored,
        # a model with no forecast on any test match (one that does not price the market)
        "engines_without_forecasts": sorted(set(predictions.probabilities) - set(engines)),
        "backtest_rows": len(bet_rows),
        # of those, the matches with no price to bet at (the named bookmaker did not quote
        # them, or quoted another handicap line): no model can bet them
        "backtest_rows_unpriced": int((~np.isfinite(odds_taken)).all(axis=1).sum()),
        "demargin_method": demargin_method,
        "odds_taken": bookmaker,
        "exchange_commission": exchange_commission,
    }
    # Per league only ROI, bets and CLV are reported: skip the bootstrap interval there.
    league_backtest = dataclasses.replace(backtest, n_bootstrap=0)
    per_league = {}
    # every league scored or bet: a league can be bet and not scored (no closing price, as in
    # over/under before 2019-20); its scores are then n 0 and NaN (null in the JSON)
    for league in sorted(set(leagues.tolist()) | set(bet_leagues.tolist())):
        m = leagues == league
        lg_engines = {name: _scores(labels[m], p[m], short=True) for name, p in forecasts.items()}
        lg_market = {name: _scores(labels[m], p[m], short=True) for name, p in yardsticks.items()}
        lg_close = lg_market["closing"]["log_loss"]
        lg_ratio = {name: s["log_loss"] / lg_close for name, s in lg_engines.items()}
        lg_ratio["prematch"] = lg_market["prematch"]["log_loss"] / lg_close
        lg_bt = {}
        b = bet_leagues == league
        for name, p in bet_forecasts.items():
            bt = run_backtest(
                p[b],
                odds_taken[b],
                profits[b],
                bet_closing[b],
                bet_kickoff[b],
                league_backtest,
                kickoff_time_known=bet_time_known[b],
            )
            summary_bt = bt.to_dict()
            lg_bt[name] = {key: summary_bt[key] for key in ("roi", "n_bets", "clv")}
        per_league[league] = {
            "engines": lg_engines,
            "market": lg_market,
            "ratio_to_closing": lg_ratio,
            "backtest": lg_bt,
            # the league's whole test window (market-independent); "n" above is what was scored
            "test_window": league_windows[str(league)],
        }
    reliability = {
        name: _reliability(labels, p, OUTCOMES[market])
        for name, p in {**forecasts, "closing": yardsticks["closing"]}.items()
    }
    return MarketEvaluation(
        market=market,
        rows=rows,
        labels=labels,
        losses=losses,
        summary=summary,
        per_league=per_league,
        reliability=reliability,
        profit_curves=profit_curves,
        champion=champion,
        promotion=promotion,
        forecasts={**forecasts, **yardsticks},
    )


def _scores(labels: np.ndarray, p: np.ndarray, *, short: bool = False) -> dict[str, Any]:
    """Every score of ``p`` (NaN with ``n`` 0 for no rows: an engine's entry kept its brier
    and ece keys only when a match was scored); ``short``: log loss, RPS and n only."""
    scores = score_all(labels, p)
    if short:
        return {"log_loss": scores["log_loss"], "rps": scores["rps"], "n": scores["n"]}
    return scores


def _reliability(labels: np.ndarray, p: np.ndarray, outcomes: tuple[str, ...]) -> dict[str, Any]:
    curves = reliability_curve(labels, p, n_bins=10)
    out: dict[str, Any] = {}
    for index, outcome in enumerate(outcomes):
        curve = curves[index]
        out[outcome] = [
            {"p_mean": float(pm), "freq": float(fr), "n": int(nn)}
            for pm, fr, nn in zip(curve["p_mean"], curve["freq"], curve["n"], strict=True)
            if nn > 0
        ]
    return out


#: The fields of a promotion decision the evaluation JSON reports (no rule, versions or time;
#: `_choose_champion` adds the rule's `test`).
_PROMOTION_KEYS = frozenset(
    {
        "promote",
        "reason",
        "champion",
        "challenger",
        "mean_difference",
        "p_value",
        "n",
        "matches_needed",
        "challengers_tested",
        "alpha_used",
    }
)


def _choose_champion(
    losses: dict[str, np.ndarray],
    engine_scores: dict[str, dict[str, Any]],
    rule: PromotionRule,
    *,
    market: MarketKind | None = None,
) -> tuple[str, dict[str, Any]]:
    """The pre-match market is champion unless a challenger beats it significantly.

    Every challenger faces the market under :func:`decide_among` (paired tests, Holm-corrected)
    with ``rule``, the rule the registry applies; ``test`` says which test gave ``p_value``
    (``t`` or ``sequential``). ``mean_difference`` is ``None`` when no match is paired and
    ``p_value`` is ``None`` when fewer than ``min_matches`` are. Without the ``market`` model
    the incumbent is still the market: the ``prematch`` yardstick's losses are the ``market``
    model's forecast on the scored matches (both de-margin the same pre-match prices), so it is
    tested under that name.
    """
    if not engine_scores:
        where = f"{market.value}: " if market is not None else ""
        raise ValueError(f"{where}no model was scored, so there is no champion to choose")
    candidates = [name for name in engine_scores if name != BASELINE_MODEL]
    if not candidates:
        reason = "no challenger: only the market was evaluated"
        return BASELINE_MODEL, {"promote": False, "reason": reason, "champion": BASELINE_MODEL}
    incumbent = losses[BASELINE_MODEL] if BASELINE_MODEL in losses else losses["prematch"]
    decision = decide_among(
        BASELINE_MODEL,
        incumbent,
        {name: losses[name] for name in candidates},
        rule,
    )
    promotion = decision.model_dump(include=set(_PROMOTION_KEYS)) | {"test": rule.test}
    return (decision.challenger if decision.promote else BASELINE_MODEL), promotion
