"""The always-valid promotion test (`promotion.sequential_p_value`, ``PromotionRule(test=
"sequential")``): its level holds over every look at growing evidence, where the t-test's holds
per look, so a no-better challenger tested in every weekly run is rarely promoted at any run."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from marketcast.evaluation.football import _choose_champion
from marketcast.promotion import (
    PromotionRule,
    _count_for_significance,
    decide_among,
    decide_promotion,
    paired_test,
    sequential_p_value,
)
from marketcast.reports.html import _promotion

SEQUENTIAL = PromotionRule(test="sequential", planned_matches=2000)


def _mixture_by_quadrature(d: np.ndarray, planned: int, alpha: float) -> float:
    """The mixture likelihood ratio integrated numerically: over positive means ``m``, the
    Gaussian likelihood ratio of ``m`` to 0 weighted by the half-normal mixing density."""
    n, total, variance = d.size, float(d.sum()), float(d.var(ddof=1))
    c = 2 * math.log(1 / alpha) + math.log(1 + 2 * math.log(1 / alpha))
    rho = planned * variance / c  # in the natural parameter lam = m / variance
    density = stats.halfnorm(scale=1 / math.sqrt(rho)).pdf
    value, _ = integrate.quad(
        lambda lam: density(lam) * math.exp(lam * total - lam**2 * n * variance / 2), 0, np.inf
    )
    return float(value)


@pytest.mark.parametrize(("mean", "n"), [(0.02, 400), (0.004, 3000), (0.0, 1000), (-0.01, 500)])
def test_the_closed_form_is_the_mixture_integral(mean: float, n: int) -> None:
    d = np.random.default_rng(n).normal(mean, 0.3, n)
    ratio = _mixture_by_quadrature(d, 2000, 0.05)
    expected = 1.0 if d.sum() <= 0 else min(1.0, 1 / ratio)
    assert sequential_p_value(d, planned=2000, alpha=0.05) == pytest.approx(expected, rel=1e-6)


def test_no_better_challenger_looked_at_every_run_is_rarely_promoted() -> None:
    """400 challengers with no gain, each tested at 39 runs on growing evidence (200 to 4,000
    matches): the t-test promotes at some run far more often than alpha, the sequential test
    within it."""
    rng = np.random.default_rng(7)
    looks = range(200, 4001, 100)
    paths = rng.normal(0.0, 0.012, size=(400, 4000))
    ever_t = ever_sequential = 0
    for d in paths:
        ever_t += any(paired_test(d[:n], np.zeros(n)).p_value < 0.05 for n in looks)
        ever_sequential += any(sequential_p_value(d[:n], planned=2000) < 0.05 for n in looks)
    se = math.sqrt(0.05 * 0.95 / 400)
    assert ever_t / 400 > 0.15  # the per-run level, spent 39 times
    assert ever_sequential / 400 <= 0.05 + 2 * se


def test_a_real_gain_passes_with_more_matches_than_the_t_test_needs() -> None:
    rng = np.random.default_rng(3)
    champion = rng.normal(1.0, 0.3, 6000)
    challenger = champion - 0.004 - rng.normal(0.0, 0.02, 6000) + rng.normal(0.0, 0.02, 6000)
    t_rule = PromotionRule(min_matches=50)
    seq_rule = PromotionRule(min_matches=50, test="sequential", planned_matches=2000)
    assert decide_promotion("market", champion, "lightgbm", challenger, seq_rule).promote
    few = slice(0, 100)  # the t-test's p is 0.078 here, the sequential one's 0.57
    t_few = decide_promotion("market", champion[few], "lgb", challenger[few], t_rule)
    seq_few = decide_promotion("market", champion[few], "lgb", challenger[few], seq_rule)
    assert t_few.p_value is not None
    assert seq_few.p_value is not None
    assert seq_few.p_value > t_few.p_value
    assert not seq_few.promote
    assert not t_few.promote
    assert "sequential test, planned at 2,000 matches" in seq_few.reason
    assert seq_few.matches_needed is not None
    assert t_few.matches_needed is not None
    assert seq_few.matches_needed > t_few.matches_needed


def test_order_does_not_matter_and_degenerate_inputs() -> None:
    d = np.random.default_rng(5).normal(0.01, 0.1, 800)
    p = sequential_p_value(d)
    assert sequential_p_value(d[::-1]) == pytest.approx(p, rel=1e-12)
    assert sequential_p_value(np.random.default_rng(6).permutation(d)) == pytest.approx(
        p, rel=1e-12
    )
    assert sequential_p_value([0.1]) == 1.0
    assert sequential_p_value(np.full(10, 0.01)) == 0.0  # a gain with no spread at all
    assert sequential_p_value(np.zeros(10)) == 1.0
    assert math.isnan(sequential_p_value([0.1, float("nan")]))
    # the boundary tightens where it was planned: a gain read at 2,000 matches passes sooner
    # with the plan there than with the plan at 50,000
    d = np.random.default_rng(8).normal(0.02, 0.3, 2000)
    assert sequential_p_value(d, planned=2000) < sequential_p_value(d, planned=50_000)


def test_matches_needed_is_the_first_count_that_passes() -> None:
    rng = np.random.default_rng(11)
    d = rng.normal(0.01, 0.2, 500)
    d = (d - d.mean()) / d.std(ddof=1) * 0.2 + 0.01  # mean 0.01, sd 0.2 exactly
    needed = _count_for_significance(d, 0.05, SEQUENTIAL)
    assert needed is not None

    def p_at(count: int) -> float:  # count differences with that mean and spread
        z = rng.standard_normal(count)
        z = (z - z.mean()) / z.std(ddof=1)
        return sequential_p_value(z * 0.2 + 0.01, planned=2000, alpha=0.05)

    assert p_at(needed) < 0.05 <= p_at(needed - 1)
    assert needed > _count_for_significance(d, 0.05) * 2  # the price of every look being valid


def test_holm_and_the_football_evaluation_use_the_rule_s_test() -> None:
    rng = np.random.default_rng(2)
    market = rng.normal(1.0, 0.3, 3000)
    better = market - 0.01 + rng.normal(0.0, 0.05, 3000)
    worse = market + 0.01
    losses = {"market": market, "lightgbm": better, "elo": worse}
    decision = decide_among("market", market, {"lightgbm": better, "elo": worse}, SEQUENTIAL)
    assert decision.p_value == pytest.approx(
        sequential_p_value(market - better, planned=2000, alpha=0.05)
    )
    assert decision.alpha_used == 0.025  # Holm's share: its p is always valid, so Holm applies
    scores = {name: {"log_loss": float(np.mean(v))} for name, v in losses.items()}
    champion, promotion = _choose_champion(losses, scores, SEQUENTIAL)
    assert promotion["test"] == "sequential"
    assert promotion["p_value"] == decision.p_value
    assert champion == ("lightgbm" if decision.promote else "market")
    _, plain = _choose_champion(losses, scores, PromotionRule())
    assert plain["test"] == "t"
    assert plain["p_value"] < promotion["p_value"]


def test_the_report_names_the_sequential_p_value() -> None:
    market = np.random.default_rng(4).normal(1.0, 0.3, 500)
    decision = decide_promotion("market", market, "elo", market - 0.001, SEQUENTIAL)
    shown = _promotion(decision.model_dump(mode="json"))
    assert "always-valid p-value (sequential test)" in shown
    plain = decide_promotion("market", market, "elo", market - 0.001, PromotionRule())
    assert "always-valid" not in _promotion(plain.model_dump(mode="json"))
    assert "p-value" in _promotion(plain.model_dump(mode="json"))


@pytest.mark.parametrize("test", ["t", "sequential"])
def test_a_gain_of_min_gain_up_to_rounding_is_not_promoted(test: str) -> None:
    """Losses of 1.0 and 0.99: the gain is min_gain, 1e-17 over it in floats. The sequential
    test took that excess, the same at every match, for evidence without spread (p = 0) and
    promoted; the t-test counted it as 0."""
    rule = PromotionRule(min_gain=0.01, test=test)
    decision = decide_promotion("a", np.full(300, 1.0), "b", np.full(300, 0.99), rule)
    assert not decision.promote
    assert decision.p_value == 1.0
    assert "<= required 0.01" in decision.reason
