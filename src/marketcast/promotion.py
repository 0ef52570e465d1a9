"""Champion/challenger promotion rule: a one-sided paired t-test on per-match losses.

`paired_test` is the one paired t-test of the project: the rule applies it, and evaluation and
research scripts report it (``marketcast.evaluation.significance`` re-exports it).

The rule is pure (losses in, decision out), so evaluation can apply it without a registry; the
registry applies the same rule and records its decisions (``marketcast.registry.promotion``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from scipy import stats

__all__ = [
    "ALTERNATIVES",
    "ROUNDING",
    "PairedTestResult",
    "PromotionDecision",
    "PromotionRule",
    "decide_among",
    "decide_promotion",
    "paired_test",
    "sequential_p_value",
    "shown_gain",
    "shown_level",
    "shown_p_value",
    "superseded_note",
]

#: Alternatives of :func:`paired_test`, on the mean of ``champion - challenger``.
ALTERNATIVES: Final[tuple[str, ...]] = ("greater", "less", "two-sided")

#: A paired difference this small next to its losses (relative, floor 1) is float rounding:
#: the same forecast computed two ways (a LightGBM without trees is the market's price through
#: log and softmax) differs by about 1e-16 a match, always the same way, and a t-test on that
#: alone gave p = 5e-5 and promoted it. A real gain is ten orders of magnitude larger.
ROUNDING: Final[float] = 1e-12


def _differences(
    champion: npt.NDArray[np.float64], challenger: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """``champion - challenger``, with the differences within float rounding of their losses
    (`ROUNDING`) counted as 0."""
    diff = champion - challenger
    scale = np.maximum(1.0, np.maximum(np.abs(champion), np.abs(challenger)))
    return np.where(np.abs(diff) <= ROUNDING * scale, 0.0, diff)


@dataclass(frozen=True)
class PairedTestResult:
    """Paired t-test on per-match loss differences ``champion - challenger``."""

    mean_difference: float
    std_error: float
    t_stat: float
    p_value: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form; NaN and infinities become ``None`` (identical differences give
        ``t = inf``, which standard JSON cannot write)."""
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


def paired_test(
    loss_champion: npt.ArrayLike,
    loss_challenger: npt.ArrayLike,
    alternative: str = "greater",
) -> PairedTestResult:
    """Paired t-test on per-match losses (lower is better).

    The differences are ``d = loss_champion - loss_challenger``: a positive mean says the
    challenger is better. With ``alternative="greater"`` the p-value is for H1: ``mean(d) > 0``.
    Pairs with a NaN on either side are dropped; an infinite loss is a ``ValueError``. Same
    statistic and p-value as
    ``scipy.stats.ttest_rel(loss_champion, loss_challenger, alternative=alternative)``, except
    that a difference within float rounding of its losses (``|d| <= 1e-12 * max(1, |loss|)``,
    `ROUNDING`) counts as 0: two computations of one forecast are not told apart by their
    rounding errors.

    Returns
    -------
    PairedTestResult
        ``std_error = std(d, ddof=1) / sqrt(n)``. With ``n < 2`` the t statistic and p-value are
        NaN; when every difference is equal, ``t = sign(mean) * inf`` (NaN if the mean is 0).

    Examples
    --------
    >>> r = paired_test([1.0, 1.2, 0.9, 1.1], [0.9, 1.0, 0.9, 1.0])
    >>> round(r.mean_difference, 3), round(r.t_stat, 3), round(r.p_value, 4)
    (0.1, 2.449, 0.0459)
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of {ALTERNATIVES}")
    champion = np.asarray(loss_champion, dtype=np.float64).ravel()
    challenger = np.asarray(loss_challenger, dtype=np.float64).ravel()
    if champion.shape != challenger.shape:
        raise ValueError(f"loss arrays differ in length: {champion.shape} vs {challenger.shape}")
    if np.isinf(champion).any() or np.isinf(challenger).any():
        # dropped before with the NaN pairs, so the test ran on fewer matches than it said
        raise ValueError("losses contain an infinite value; NaN marks a pair to drop")
    diff = _differences(champion, challenger)
    diff = diff[~np.isnan(diff)]
    n = int(diff.size)
    if n == 0:
        return PairedTestResult(float("nan"), float("nan"), float("nan"), float("nan"), 0)
    mean = float(np.mean(diff))
    if n < 2:
        return PairedTestResult(mean, float("nan"), float("nan"), float("nan"), n)
    std_error = float(np.std(diff, ddof=1) / math.sqrt(n))
    if std_error == 0.0:
        t_stat = math.copysign(math.inf, mean) if mean != 0.0 else float("nan")
    else:
        t_stat = mean / std_error
    dof = n - 1
    if math.isnan(t_stat):
        p_value = float("nan")
    elif alternative == "greater":
        p_value = float(stats.t.sf(t_stat, dof))
    elif alternative == "less":
        p_value = float(stats.t.cdf(t_stat, dof))
    else:
        p_value = float(2.0 * stats.t.sf(abs(t_stat), dof))
    return PairedTestResult(mean, std_error, t_stat, p_value, n)


def sequential_p_value(
    difference: npt.ArrayLike, *, planned: int = 2000, alpha: float = 0.05
) -> float:
    """Always-valid one-sided p-value for ``H1: mean(difference) > 0``, per-match differences.

    ``1 / L`` for the mixture likelihood ratio ``L`` of a Gaussian model of the differences,
    mixed over the positive means (a half-normal mixing density): under ``mean <= 0``, ``L`` is
    a nonnegative supermartingale in the number of matches, so by Ville's inequality the chance
    that ``1 / L`` ever falls below ``alpha``, at any of as many looks as one likes, is at most
    ``alpha``. A challenger tested in every weekly run on evidence that grows (the same window
    start, new matches added) is thus promoted wrongly with chance ``alpha`` over all the runs,
    where the t-test's ``alpha`` holds per run. ``L`` depends on the differences only through
    their sum and count, so their order does not matter:

        L = 2 sqrt(rho / (v + rho)) exp(S^2 / (2 (v + rho))) Phi(S / sqrt(v + rho)),

    with ``S`` the sum, ``v = n s^2`` (``s^2`` the sample variance, plugged in: the guarantee is
    then asymptotic, as the t-test's normal approximation is) and ``rho = planned s^2 / c``,
    ``c = 2 log(1/alpha) + log(1 + 2 log(1/alpha))``, the mixing scale that makes the boundary
    tightest near ``planned`` matches (Howard, Ramdas, McAuliffe and Sekhon, "Time-uniform,
    nonparametric, nonasymptotic confidence sequences", Ann. Statist. 2021, the normal mixture).
    The price is power: with the bundle's 1X2 gain and spread, a gain needs about 2.4 times the
    t-test's matches to pass Holm's 0.0125 (29,400 against 12,000, planned at 2,000).

    Returns 1 for fewer than two differences or a sum not above 0, NaN for a NaN difference;
    when every difference is the same positive number (no spread), 0.

    Examples
    --------
    >>> d = np.random.default_rng(0).normal(0.05, 1.0, 5000)
    >>> round(sequential_p_value(d, planned=2000), 4), round(paired_test(d, 0 * d).p_value, 4)
    (0.0159, 0.0006)
    >>> sequential_p_value(-d)
    1.0
    """
    d = np.asarray(difference, dtype=np.float64).ravel()
    if np.isnan(d).any():
        return float("nan")
    n = d.size
    total = float(d.sum())
    if n < 2 or not total > 0.0:
        return 1.0
    variance = float(d.var(ddof=1))
    if variance == 0.0:
        return 0.0
    return float(min(1.0, math.exp(-_log_mixture_ratio(total, n, variance, planned, alpha))))


def _log_mixture_ratio(
    total: float, count: int, variance: float, planned: int, alpha: float
) -> float:
    """``log L`` of :func:`sequential_p_value` from the differences' sum, count and variance."""
    c = 2.0 * math.log(1.0 / alpha) + math.log(1.0 + 2.0 * math.log(1.0 / alpha))
    rho = planned * variance / c
    spread = count * variance + rho
    return (
        math.log(2.0)
        + 0.5 * math.log(rho / spread)
        + total**2 / (2.0 * spread)
        + float(stats.norm.logcdf(total / math.sqrt(spread)))
    )


class PromotionRule(BaseModel):
    """When a challenger replaces the champion.

    The challenger must be scored on at least ``min_matches`` of the same matches as the champion,
    have a lower mean ``metric`` loss by more than ``min_gain`` per match, and a one-sided paired
    test of ``H1: mean(champion loss - challenger loss) > min_gain`` must give ``p < alpha``
    (a test of ``> 0`` beside an observed mean above ``min_gain`` promoted a challenger whose
    true gain was exactly ``min_gain`` half the time).

    ``test="t"`` is the paired t-test: its level holds per decision, so a no-better challenger
    tested in every weekly run is promoted at some run far more often than ``alpha``.
    ``test="sequential"`` is :func:`sequential_p_value`, valid however often the growing
    evidence is looked at, tightest near ``planned_matches`` paired matches.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    min_matches: int = Field(default=200, ge=2)
    metric: str = Field(default="log_loss", min_length=1)
    min_gain: float = Field(default=0.0, ge=0.0)
    #: what one paired loss is scored on, for the reason text ("match", "period")
    unit: str = Field(default="match", min_length=1)
    #: "t": the paired t-test; "sequential": :func:`sequential_p_value` (always valid)
    test: Literal["t", "sequential"] = "t"
    #: the paired count at which the sequential test's boundary is tightest (fixed in advance:
    #: choosing it from the data would spend the level again)
    planned_matches: int = Field(default=2000, ge=2)


class PromotionDecision(BaseModel):
    """What the promotion rule decided for one challenger, with the evidence behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    promote: bool
    reason: str
    champion: str | None
    challenger: str
    mean_difference: float | None
    p_value: float | None
    n: int = Field(ge=0)
    rule: PromotionRule
    champion_version: str | None = None
    challenger_version: str | None = None
    decided_utc: AwareDatetime | None = None
    #: when the challenger is better but not significantly so: the paired count at which the
    #: same mean gain and spread would give ``p < alpha`` (a planning figure, not a forecast:
    #: at that count the test passes about half the time)
    matches_needed: int | None = Field(default=None, ge=0)
    #: how many challengers faced the champion in the same decision (:func:`decide_among`)
    challengers_tested: int | None = Field(default=None, ge=1)
    #: the level this challenger's p was held to: ``rule.alpha``, or Holm's share of it when
    #: several challengers were tested
    alpha_used: float | None = Field(default=None, gt=0.0, lt=1.0)


def _as_losses(values: npt.ArrayLike, label: str) -> npt.NDArray[np.float64]:
    losses = np.asarray(values, dtype=np.float64)
    if losses.ndim != 1:
        raise ValueError(f"{label} losses must be one-dimensional, got shape {losses.shape}")
    if np.isinf(losses).any():
        index = int(np.flatnonzero(np.isinf(losses))[0])
        raise ValueError(
            f"{label} losses contain an infinite value at index {index}; clip probabilities "
            "before scoring (NaN marks a match to skip)"
        )
    return losses


def shown_gain(mean_difference: float) -> str:
    """A mean gain as a decision's reason writes it (and the report beside it).

    Four decimals, or three significant figures below 0.001: a crypto period's net return gain
    is about 1e-5, and "0.0000" read as no gain at all, better and equal alike.

    >>> shown_gain(0.01234), shown_gain(0.000241), shown_gain(0.0)
    ('0.0123', '0.000241', '0.0000')
    """
    small = 0.0 < abs(mean_difference) < 1e-3
    return f"{mean_difference:.3g}" if small else f"{mean_difference:.4f}"


def shown_p_value(p_value: float, level: float | None = None) -> str:
    """A p-value as a decision's reason writes it (and the report beside it): three significant
    figures, more where three would not keep it on its side of the ``level`` it is compared
    with (:func:`shown_level` writes that level with as many): p = 0.04996 against 0.05 read
    "p=0.05 < 0.05".

    >>> shown_p_value(0.086174), shown_p_value(1.0)
    ('0.0862', '1')
    >>> shown_p_value(0.04996, 0.05), shown_p_value(0.0500004, 0.05), shown_p_value(0.05, 0.05)
    ('0.04996', '0.0500004', '0.05')
    """
    digits = 3 if level is None else _digits_apart(p_value, level)
    return f"{p_value:.{digits}g}"


def shown_level(level: float, p_value: float) -> str:
    """The level a p-value is compared with, written with as many figures as
    :func:`shown_p_value` gives the p-value: Holm's share 0.05 / 3 against p = 0.01668 read
    "p=0.01668 >= 0.0167", false as written.

    >>> shown_p_value(0.01668, 0.05 / 3), shown_level(0.05 / 3, 0.01668)
    ('0.01668', '0.01667')
    >>> shown_level(0.0125, 0.0862)
    '0.0125'
    """
    return f"{level:.{_digits_apart(p_value, level)}g}"


def _digits_apart(p_value: float, level: float) -> int:
    """The fewest significant figures, three or more, at which ``p_value`` and ``level``,
    each rounded, compare as they do unrounded (equal ones: three)."""
    for digits in range(3, 18):
        shown_p, shown_level = float(f"{p_value:.{digits}g}"), float(f"{level:.{digits}g}")
        if (shown_p < shown_level) == (p_value < level) and (shown_p == shown_level) == (
            p_value == level
        ):
            return digits
    return 17


def superseded_note(
    decision: Mapping[str, Any], model_name: str, version: str, reason: str | None
) -> str | None:
    """Why a market's latest decision no longer describes its champion, or None when it does.

    A decision names the version it left champion: the challenger's when it promoted, else the
    champion's. When the champion pointer (``model_name`` ``version``, moved with ``reason``)
    holds another, the pointer moved after the decision (a promotion or rollback by hand, a
    refresh with no challenger to test) and the decision, shown beside it, read as the
    champion's evidence. A decision from before versions were recorded (none named) is taken
    as it is.

    Examples
    --------
    >>> kept = {"promote": False, "champion": "market", "champion_version": "v1"}
    >>> superseded_note(kept, "market", "v1", "no champion yet") is None
    True
    >>> print(superseded_note(kept, "elo", "v3", "by hand"))
    the champion pointer moved after this decision (to elo v3: by hand); it left market v1 champion
    """
    promoted = bool(decision.get("promote"))
    left = decision.get("challenger" if promoted else "champion")
    left_version = decision.get("challenger_version" if promoted else "champion_version")
    if left_version is None or (left, left_version) == (model_name, version):
        return None
    moved = f"{model_name} {version}" + (f": {reason}" if reason else "")
    return (
        f"the champion pointer moved after this decision (to {moved}); it left {left} "
        f"{left_version} champion"
    )


def decide_promotion(
    champion_name: str | None,
    champion_losses: npt.ArrayLike | None,
    challenger_name: str,
    challenger_losses: npt.ArrayLike | None,
    rule: PromotionRule | None = None,
    *,
    champion_version: str | None = None,
    challenger_version: str | None = None,
    alpha: float | None = None,
) -> PromotionDecision:
    """Decide whether a challenger beats the champion on the same matches.

    Pairs where either loss is NaN are dropped. With ``d = champion_loss - challenger_loss``
    (positive when the challenger is better), the challenger is promoted only when
    ``n >= rule.min_matches``, ``mean(d) > rule.min_gain`` and a one-sided paired t-test of
    ``H1: mean(d) > rule.min_gain`` gives ``p < rule.alpha``.

    Parameters
    ----------
    champion_name, champion_losses
        The current champion and its per-match losses; both ``None`` when there is no champion,
        in which case the challenger is promoted ("no champion yet").
    challenger_name, challenger_losses
        The challenger and its per-match losses, aligned with ``champion_losses``.
    rule
        Thresholds; defaults to ``PromotionRule()``.
    champion_version, challenger_version
        Recorded on the decision only.
    alpha
        The level the p-value is held to, when not ``rule.alpha`` (:func:`decide_among` passes
        Holm's share of it); recorded as ``alpha_used``.

    Returns
    -------
    PromotionDecision

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> champ = rng.normal(1.00, 0.3, 500)
    >>> chall = champ - 0.02 + rng.normal(0.0, 0.05, 500)
    >>> decision = decide_promotion("elo", champ, "dixon_coles", chall)
    >>> decision.promote, decision.n
    (True, 500)
    >>> decide_promotion("elo", champ, "elo_v2", champ).reason
    'log_loss gain 0.0000 per match over 500 matches: not better than the champion'
    >>> decide_promotion(None, None, "elo", None).reason
    'no champion yet'
    """
    rule = rule if rule is not None else PromotionRule()
    level = rule.alpha if alpha is None else alpha
    if not 0.0 < level < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {level}")
    metric = rule.metric
    common = {
        "champion": champion_name,
        "challenger": challenger_name,
        "rule": rule,
        "champion_version": champion_version,
        "challenger_version": challenger_version,
        "alpha_used": level,
    }
    if champion_name is None:
        if champion_losses is not None:
            raise ValueError("champion_losses given without a champion_name")
        n = 0
        if challenger_losses is not None:
            n = int(np.isfinite(_as_losses(challenger_losses, "challenger")).sum())
        return PromotionDecision(
            promote=True,
            reason="no champion yet",
            mean_difference=None,
            p_value=None,
            n=n,
            **common,
        )
    if champion_losses is None or challenger_losses is None:
        raise ValueError(
            f"champion {champion_name!r} exists: both champion_losses and challenger_losses are "
            "required to compare it with the challenger"
        )
    units = "matches" if rule.unit == "match" else f"{rule.unit}s"
    champion = _as_losses(champion_losses, "champion")
    challenger = _as_losses(challenger_losses, "challenger")
    if champion.shape != challenger.shape:
        raise ValueError(
            f"losses must be paired on the same matches: champion has {champion.size}, "
            f"challenger has {challenger.size}"
        )
    keep = ~(np.isnan(champion) | np.isnan(challenger))
    # (n,) positive: challenger better; rounding-level differences are 0
    difference = _differences(champion[keep], challenger[keep])
    n = int(difference.size)
    mean_difference = float(difference.mean()) if n else None

    if n < rule.min_matches:
        return PromotionDecision(
            promote=False,
            reason=(
                f"only {n:,} paired {units if n != 1 else rule.unit}, fewer than the "
                f"{rule.min_matches:,} required to compare {metric}"
            ),
            mean_difference=mean_difference,
            p_value=None,
            n=n,
            **common,
        )
    assert mean_difference is not None
    # H1: mean(d) > min_gain, the gain the rule asks for (the test of 0 when it is 0); a gain
    # within rounding of min_gain is min_gain, for both tests (the sequential test took a
    # constant 1e-17 excess for evidence without spread: p = 0, promoted)
    excess = _differences(difference, np.full(n, rule.min_gain))
    beyond = float(excess.mean()) > 0.0
    if rule.test == "sequential":
        p_value = sequential_p_value(excess, planned=rule.planned_matches, alpha=rule.alpha)
    else:
        p_value = paired_test(excess, np.zeros(n)).p_value
    if math.isnan(p_value):
        # every match differs by exactly 0: no evidence either way
        p_value = 1.0

    gain = f"{metric} gain {shown_gain(mean_difference)} per {rule.unit}"
    needed: int | None = None
    if mean_difference <= 0.0:
        promote = False
        reason = f"{gain} over {n:,} {units}: not better than the champion"
    elif not beyond:
        promote = False
        reason = f"{gain} <= required {rule.min_gain:g} over {n:,} {units}"
    elif p_value < level:
        promote = True
        p, bar = shown_p_value(p_value, level), shown_level(level, p_value)
        reason = f"{gain}, p={p} < {bar} over {n:,} {units}"
    else:
        promote = False
        needed = _count_for_significance(excess, level, rule)
        p, bar = shown_p_value(p_value, level), shown_level(level, p_value)
        reason = f"{gain}, p={p} >= {bar} over {n:,} {units}: not significant"
        if needed is not None:
            reason += f"; the same gain and spread would reach it at about {needed:,} {units}"
    if rule.test == "sequential" and beyond:
        reason += f" (sequential test, planned at {rule.planned_matches:,} {units})"
    return PromotionDecision(
        promote=promote,
        reason=reason,
        mean_difference=mean_difference,
        p_value=p_value,
        n=n,
        matches_needed=needed,
        **common,
    )


def decide_among(
    champion_name: str,
    champion_losses: npt.ArrayLike,
    challengers: Mapping[str, npt.ArrayLike],
    rule: PromotionRule | None = None,
    *,
    champion_version: str | None = None,
    versions: Mapping[str, str] | None = None,
) -> PromotionDecision:
    """Test every challenger against the champion, Holm-corrected; return the decision to apply.

    Picking the best of ``k`` challengers and testing it alone at ``rule.alpha`` promotes a
    no-better model far more often than ``alpha`` (0.18 for four challengers with no edge over
    552 periods, against 0.05). So every challenger is tested (:func:`decide_promotion`) and
    Holm's step-down keeps the family-wise rate at ``rule.alpha`` (as far as each test's own
    level holds: a normal approximation, exceeded by strongly skewed differences on few
    matches, docs/registry.md "How exact the level is"): ordered by p-value, the
    ``i``-th (from 0) must pass at ``alpha / (k - i)``, and testing stops at the first that does
    not. ``k`` counts the challengers with a p-value (one with fewer than ``rule.min_matches``
    paired matches is not tested and takes no share of alpha). Holm looks at p-values only;
    of the challengers it rejects, those that also meet the gain rules (``mean > min_gain``)
    may be promoted, and the one with the largest mean gain is. When none is, the decision
    reported is that of the tested challenger with the largest mean gain, at the level Holm
    held it to. ``k == 1`` is the plain test at ``rule.alpha``.

    Parameters
    ----------
    champion_name, champion_losses
        The incumbent and its per-match (per-period) losses.
    challengers
        Each challenger's losses, aligned with ``champion_losses``; at least one.
    rule
        Thresholds; ``rule.alpha`` is the family-wise level. Defaults to ``PromotionRule()``.
    champion_version, versions
        Recorded on the decision only (``versions`` by challenger name).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> champ = rng.normal(1.0, 0.3, 400)
    >>> better = champ - 0.02 + rng.normal(0.0, 0.05, 400)
    >>> d = decide_among("market", champ, {"elo": champ + 0.01, "lightgbm": better})
    >>> d.challenger, d.promote, d.challengers_tested, d.alpha_used
    ('lightgbm', True, 2, 0.025)
    """
    rule = rule if rule is not None else PromotionRule()
    if not challengers:
        raise ValueError(f"no challenger to test against {champion_name!r}")
    versions = versions or {}

    def decide(name: str, alpha: float, k: int) -> PromotionDecision:
        decision = decide_promotion(
            champion_name,
            champion_losses,
            name,
            challengers[name],
            rule,
            champion_version=champion_version,
            challenger_version=versions.get(name),
            alpha=alpha,
        )
        return decision.model_copy(update={"challengers_tested": k})

    def gain(decision: PromotionDecision) -> float:
        return -math.inf if decision.mean_difference is None else decision.mean_difference

    first = {name: decide(name, rule.alpha, len(challengers)) for name in challengers}
    # Only challengers with a p-value take part (too few paired matches: no test, no share of
    # alpha). Holm orders them by p alone; the gain rules apply to those it rejects.
    testable = [name for name in challengers if first[name].p_value is not None]
    k = len(testable)
    if k == 0:  # none was tested: no test took a share of alpha
        untested = max(first.values(), key=gain)
        return untested.model_copy(update={"challengers_tested": None, "alpha_used": None})
    by_p = sorted(testable, key=lambda n: (float(first[n].p_value or 0.0), n))
    level = {name: rule.alpha / (k - rank) for rank, name in enumerate(by_p)}
    rejected: list[str] = []
    stopped_at: str | None = None
    for name in by_p:
        if not float(first[name].p_value or 0.0) < level[name]:
            stopped_at = name
            break
        rejected.append(name)
    passed = [d for d in (decide(n, level[n], k) for n in rejected) if d.promote]
    note = f"Holm over {k} challengers, family alpha {rule.alpha:g}"
    if passed:
        chosen = _largest_common_gain(champion_losses, challengers, passed)
        return (
            chosen if k == 1 else chosen.model_copy(update={"reason": f"{chosen.reason} ({note})"})
        )
    best = max(testable, key=lambda n: gain(first[n]))
    chosen = decide(best, level[best], k)
    if k == 1:
        return chosen
    if chosen.promote:  # it would pass at its own level, but the step-down stopped before it
        assert stopped_at is not None
        chosen = chosen.model_copy(update={"promote": False, "matches_needed": None})
        note += f"; testing stopped at {stopped_at}, which did not pass at {level[stopped_at]:.3g}"
    return chosen.model_copy(update={"reason": f"{chosen.reason} ({note})"})


def _largest_common_gain(
    champion_losses: npt.ArrayLike,
    challengers: Mapping[str, npt.ArrayLike],
    passed: list[PromotionDecision],
) -> PromotionDecision:
    """The passed challenger with the largest mean gain on the matches all of them were scored
    on: compared over each one's own matches, one scored on 250 matches where it gained 0.0086
    beat one scored on all 2,000 that gained 0.006. Ties keep the first."""
    if len(passed) == 1:
        return passed[0]
    champion = np.asarray(champion_losses, dtype=np.float64)
    losses = [np.asarray(challengers[d.challenger], dtype=np.float64) for d in passed]
    common = ~np.isnan(champion) & ~np.logical_or.reduce([np.isnan(v) for v in losses])
    gains = [
        float(np.mean(champion[common] - v[common])) if common.any() else -math.inf for v in losses
    ]
    return passed[int(np.argmax(gains))]


def _count_for_significance(
    difference: npt.NDArray[np.float64], alpha: float, rule: PromotionRule | None = None
) -> int | None:
    """Smallest paired count whose one-sided test at ``alpha`` passes at this mean and spread.

    For the t-test, the smallest ``m`` with ``mean / (sd / sqrt(m)) >= t_{1-alpha, m-1}``: a few
    fixed-point steps from the normal quantile, then a walk to the exact boundary. For the
    sequential test (``rule.test``), the smallest ``m`` whose :func:`sequential_p_value` of
    ``m`` differences of this mean and spread is below ``alpha`` (a search: the p-value falls
    with ``m`` once the gain dominates). ``None`` when the mean gain is not positive or the
    differences have no spread.

    Examples
    --------
    >>> d = np.array([0.3, -0.1, 0.2, 0.0, 0.1, -0.2, 0.25, 0.05])
    >>> _count_for_significance(d, 0.05)
    17
    >>> _count_for_significance(d, 0.05, PromotionRule(test="sequential", planned_matches=20))
    43
    """
    mean = float(difference.mean())
    sd = float(difference.std(ddof=1))
    if mean <= 0.0 or not sd > 0.0:
        return None
    if rule is not None and rule.test == "sequential":
        return _count_for_sequential(mean, sd, alpha, rule)

    def passes(count: int) -> bool:
        return bool(mean * math.sqrt(count) / sd >= stats.t.ppf(1.0 - alpha, count - 1))

    needed = 2
    quantile = float(stats.norm.ppf(1.0 - alpha))
    for _ in range(5):
        needed = max(2, math.ceil((quantile * sd / mean) ** 2))
        quantile = float(stats.t.ppf(1.0 - alpha, needed - 1))
    while needed > 2 and passes(needed - 1):
        needed -= 1
    while not passes(needed):
        needed += 1
    return needed


def _count_for_sequential(mean: float, sd: float, alpha: float, rule: PromotionRule) -> int:
    """:func:`_count_for_significance` for the sequential test: ``m`` differences with this
    mean and spread (sum ``m * mean``, variance ``sd^2``) first below ``alpha``."""

    def passes(count: int) -> bool:
        log_l = _log_mixture_ratio(count * mean, count, sd * sd, rule.planned_matches, rule.alpha)
        return log_l >= math.log(1.0 / alpha)

    high = 2
    while not passes(high):
        high *= 2
    low = high // 2  # passes(high), and not passes(low) unless low < 2
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle):
            high = middle
        else:
            low = middle
    return max(2, high)
