"""Champion/challenger promotion: the paired-test rule and applying it to a registry."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
import pytest
from pydantic import ValidationError

import marketcast.promotion
import marketcast.registry
import marketcast.registry.promotion
from marketcast.evaluation.football import BASELINE_MODEL, _choose_champion
from marketcast.promotion import PromotionRule, decide_among, decide_promotion, paired_test
from marketcast.registry import Registry, build_manifest, promote_if_better

N = 1000
RULE = PromotionRule()


def paired_losses(
    gain: float, n: int = N, noise: float = 0.05, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Champion log losses and challenger losses lower by ``gain`` per match plus noise."""
    rng = np.random.default_rng(seed)
    champion = rng.gamma(4.0, 0.25, n)  # (n,) per-match log loss, mean about 1.0
    challenger = champion - gain + rng.normal(0.0, noise, n)
    return champion, challenger


def test_several_challengers_with_no_edge_are_promoted_at_most_alpha_of_the_time() -> None:
    """Testing only the best of four no-better challengers at alpha promoted one in about a
    fifth of runs; Holm's step-down keeps the family-wise rate at alpha."""
    rng = np.random.default_rng(42)
    runs, k, n = 600, 4, 552
    holm = best_alone = 0
    for _ in range(runs):
        champion = rng.normal(0.0, 0.003, n)
        challengers = {f"m{i}": rng.normal(0.0, 0.003, n) for i in range(k)}
        holm += decide_among("flat", champion, challengers, PromotionRule(unit="period")).promote
        best = min(challengers, key=lambda name: float(np.mean(challengers[name])))
        best_alone += decide_promotion("flat", champion, best, challengers[best]).promote
    assert holm / runs <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / runs)
    assert best_alone / runs > 0.10  # what the rule did before


def test_holm_promotes_the_largest_gain_among_the_challengers_that_pass() -> None:
    champion, strong = paired_losses(0.03, seed=1)
    weaker = champion - 0.02 + np.random.default_rng(2).normal(0.0, 0.05, N)
    decision = decide_among(
        "market",
        champion,
        {"elo": champion + 0.1, "weak": weaker, "strong": strong},
        RULE,
        versions={"strong": "v9"},
    )
    assert (decision.promote, decision.challenger, decision.challenger_version) == (
        True,
        "strong",
        "v9",
    )
    assert decision.challengers_tested == 3
    assert decision.alpha_used in (0.05 / 3, 0.05 / 2)  # its place in the p-value order
    assert decision.reason.endswith("(Holm over 3 challengers, family alpha 0.05)")


def test_holm_stops_at_the_first_challenger_that_fails() -> None:
    """Ordered by p, the first must pass at alpha/k: when it fails, none is promoted, even one
    that would pass at its own, larger, level."""
    from scipy import stats

    champion = np.random.default_rng(3).normal(1.0, 0.3, 2000)
    noise = np.random.default_rng(4).normal(0.0, 1.0, 2000)
    unit = (noise - noise.mean()) / noise.std(ddof=1)

    def with_p(target: float, scale: float) -> np.ndarray:
        """Challenger losses whose one-sided p is ``target``; mean gain grows with ``scale``."""
        t = stats.t.ppf(1 - target, unit.size - 1)
        return champion - scale * (unit + t / np.sqrt(unit.size))

    both = decide_among("m", champion, {"a": with_p(0.020, 1), "b": with_p(0.024, 1)}, RULE)
    assert both.promote  # a passes at 0.05/2, then b at 0.05: both rejected
    # a fails at 0.025, so b (the larger gain, p = 0.03 < 0.05) is never tested at 0.05
    stopped = decide_among("m", champion, {"a": with_p(0.026, 1), "b": with_p(0.03, 3)}, RULE)
    assert (stopped.promote, stopped.challenger, stopped.alpha_used) == (False, "b", 0.05)
    assert stopped.p_value == pytest.approx(0.03)
    assert "testing stopped at a, which did not pass at 0.025" in stopped.reason
    assert stopped.matches_needed is None


def test_one_challenger_is_the_plain_test() -> None:
    champion, challenger = paired_losses(0.0012, noise=0.05)
    alone = decide_promotion("elo", champion, "dc", challenger, RULE)
    among = decide_among("elo", champion, {"dc": challenger}, RULE)
    assert among.model_dump(exclude={"challengers_tested"}) == alone.model_dump(
        exclude={"challengers_tested"}
    )
    assert among.challengers_tested == 1
    assert alone.alpha_used == 0.05
    with pytest.raises(ValueError, match="no challenger"):
        decide_among("elo", champion, {}, RULE)


def test_clearly_better_challenger_is_promoted() -> None:
    champion, challenger = paired_losses(0.02)
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    assert decision.promote is True
    assert decision.n == N
    assert decision.mean_difference == pytest.approx(np.mean(champion - challenger))
    assert decision.mean_difference == pytest.approx(0.02, abs=0.005)
    assert decision.p_value is not None
    assert decision.p_value < 1e-6
    assert decision.reason.startswith("log_loss gain 0.02")
    assert decision.reason.endswith(f"< 0.05 over {N:,} matches")
    assert (decision.champion, decision.challenger) == ("elo", "dixon_coles")


def test_direction_matches_a_one_sided_t_test_on_differences() -> None:
    champion, challenger = paired_losses(0.002, noise=0.05, seed=3)
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    difference = champion - challenger
    t = difference.mean() / (difference.std(ddof=1) / np.sqrt(N))
    from scipy import stats

    assert decision.p_value == pytest.approx(stats.t.sf(t, df=N - 1), rel=1e-9)


def test_equal_models_are_not_promoted() -> None:
    champion, _ = paired_losses(0.0)
    decision = decide_promotion("elo", champion, "elo_copy", champion.copy(), RULE)
    assert decision.promote is False
    assert decision.mean_difference == 0.0
    assert decision.p_value == 1.0
    assert "not better than the champion" in decision.reason


def test_the_same_forecast_computed_two_ways_is_not_promoted() -> None:
    """A LightGBM without trees is the market's price through log and softmax: its log losses
    differ from the market's by about 1e-16 a match, always the same way, and the t-test on
    that rounding alone gave p = 5e-5 and promoted it over the market."""
    rng = np.random.default_rng(3)
    market = np.log(1.0 / rng.dirichlet(np.ones(3) * 4.0, size=500)[:, 0])
    # the same probabilities through exp/log once more: rounding, mostly in one direction
    recomputed = -np.log(np.exp(-market) * (1.0 + 2.0**-52))
    assert np.any(recomputed != market)
    decision = decide_promotion("market", market, "lightgbm", recomputed, RULE)
    assert decision.promote is False
    assert decision.mean_difference == 0.0
    assert paired_test(market, recomputed).n == 500
    assert np.isnan(paired_test(market, recomputed).p_value)
    # a real gain of 1e-4 a match with noise is still seen by the test
    gaining = market - 1e-4 + rng.normal(0.0, 1e-5, 500)
    assert decide_promotion("market", market, "sharper", gaining, RULE).promote is True


def test_noise_only_challenger_is_not_promoted() -> None:
    champion, challenger = paired_losses(0.0, noise=0.1, seed=11)
    decision = decide_promotion("elo", champion, "noisy", challenger, RULE)
    assert decision.promote is False
    assert decision.p_value is not None
    assert decision.p_value >= 0.05 or decision.mean_difference <= 0


def test_small_gain_that_is_not_significant_says_so() -> None:
    champion, _ = paired_losses(0.0)
    noise = np.random.default_rng(5).normal(0.0, 0.3, N)
    challenger = champion - 0.001 + (noise - noise.mean())  # mean gain exactly 0.001
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    assert decision.mean_difference == pytest.approx(0.001, abs=1e-12)
    assert decision.promote is False
    assert ": not significant; the same gain and spread would reach it at about" in decision.reason
    assert decision.reason.endswith(f"{decision.matches_needed:,} matches")
    assert ">= 0.05" in decision.reason


def test_matches_needed_is_the_smallest_count_at_which_the_same_test_passes() -> None:
    champion, challenger = paired_losses(0.004, n=400, noise=0.1, seed=2)
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    assert decision.promote is False
    needed = decision.matches_needed
    assert needed is not None
    assert needed > 400
    # the same mean gain and spread over `needed` pairs (normal draws rescaled to them):
    # the paired test passes there and fails one pair earlier
    difference = champion - challenger
    mean, sd = difference.mean(), difference.std(ddof=1)

    def p_at(count: int) -> float:
        rng = np.random.default_rng(0)
        draws = rng.standard_normal(count)
        scaled = mean + sd * (draws - draws.mean()) / draws.std(ddof=1)
        return marketcast.promotion.paired_test(scaled, np.zeros(count)).p_value

    assert p_at(needed) < RULE.alpha <= p_at(needed - 1)


def test_matches_needed_only_when_better_but_not_significant() -> None:
    better, best = paired_losses(0.02)
    assert decide_promotion("elo", better, "dixon_coles", best, RULE).matches_needed is None
    worse, worst = paired_losses(-0.02)
    assert decide_promotion("elo", worse, "worse", worst, RULE).matches_needed is None
    few, fewer = paired_losses(0.05, n=150)
    assert decide_promotion("elo", few, "dixon_coles", fewer, RULE).matches_needed is None


def test_worse_challenger_is_not_promoted() -> None:
    champion, challenger = paired_losses(-0.02)
    decision = decide_promotion("elo", champion, "worse", challenger, RULE)
    assert decision.promote is False
    assert decision.mean_difference is not None
    assert decision.mean_difference < 0
    assert decision.p_value is not None
    assert decision.p_value > 0.99
    assert "not better than the champion" in decision.reason


def test_too_few_matches_not_promoted_with_reason() -> None:
    champion, challenger = paired_losses(0.05, n=150)
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    assert decision.promote is False
    assert decision.n == 150
    assert decision.p_value is None
    assert (
        decision.reason
        == "only 150 paired matches, fewer than the 200 required to compare log_loss"
    )


def test_nan_pairs_are_dropped() -> None:
    champion, challenger = paired_losses(0.02, n=400)
    champion[:150] = np.nan
    challenger[100:260] = np.nan
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    keep = slice(260, 400)
    assert decision.n == 140
    assert decision.promote is False
    assert "only 140 paired matches" in decision.reason
    assert decision.mean_difference == pytest.approx(np.mean(champion[keep] - challenger[keep]))

    full_c, full_h = paired_losses(0.02, n=600)
    full_h[::3] = np.nan
    decision = decide_promotion("elo", full_c, "dixon_coles", full_h, RULE)
    assert decision.n == 400
    assert decision.promote is True


def test_constant_positive_difference_is_promoted() -> None:
    champion = np.full(300, 1.0)
    decision = decide_promotion("elo", champion, "sharper", champion - 0.01, RULE)
    assert decision.promote is True
    assert decision.p_value == 0.0


def test_min_gain_is_enforced() -> None:
    champion, challenger = paired_losses(0.002, noise=0.01)
    strict = PromotionRule(min_gain=0.01, metric="rps")
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, strict)
    assert decision.promote is False
    assert decision.reason.startswith("rps gain 0.00")
    assert "<= required 0.01" in decision.reason


def test_no_champion_yet_promotes() -> None:
    decision = decide_promotion(None, None, "elo", [0.9, np.nan, 1.1], RULE)
    assert decision.promote is True
    assert decision.reason == "no champion yet"
    assert decision.n == 2
    assert decision.champion is None


def test_input_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="paired on the same matches"):
        decide_promotion("elo", np.ones(300), "dc", np.ones(299), RULE)
    with pytest.raises(ValueError, match="infinite value at index 2"):
        decide_promotion("elo", np.ones(300), "dc", [1.0, 1.0, np.inf], RULE)
    with pytest.raises(ValueError, match="both champion_losses and challenger_losses"):
        decide_promotion("elo", None, "dc", np.ones(300), RULE)
    with pytest.raises(ValueError, match="one-dimensional"):
        decide_promotion("elo", np.ones((2, 300)), "dc", np.ones((2, 300)), RULE)


def test_rule_is_typed_and_frozen() -> None:
    assert RULE.model_dump() == {
        "alpha": 0.05,
        "min_matches": 200,
        "metric": "log_loss",
        "min_gain": 0.0,
        "unit": "match",
        "test": "t",
        "planned_matches": 2000,
    }
    with pytest.raises(ValidationError, match="test"):
        PromotionRule(test="z")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="extra"):
        PromotionRule(alpha=0.05, typo=1)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="less than 1"):
        PromotionRule(alpha=1.5)
    with pytest.raises(ValidationError, match="frozen"):
        RULE.alpha = 0.1  # type: ignore[misc]


def test_decision_json_round_trip() -> None:
    champion, challenger = paired_losses(0.02)
    decision = decide_promotion("elo", champion, "dixon_coles", challenger, RULE)
    assert type(decision).model_validate_json(decision.model_dump_json()) == decision


def test_registry_reexports_the_evaluation_rule() -> None:
    moved = marketcast.promotion
    assert marketcast.registry.decide_promotion is moved.decide_promotion
    assert marketcast.registry.PromotionRule is moved.PromotionRule
    assert marketcast.registry.PromotionDecision is moved.PromotionDecision
    assert marketcast.registry.promotion.PromotionRule is moved.PromotionRule
    assert marketcast.registry.promotion.PromotionDecision is moved.PromotionDecision


@pytest.mark.parametrize(
    ("gain", "n", "promote", "because"),
    [
        (0.02, N, True, f"< 0.025 over {N:,} matches (Holm over 2 challengers"),
        (0.0005, N, False, ": not significant"),
        (0.05, 150, False, "only 150 paired matches"),
    ],
    ids=["promoted", "not-significant", "too-few-matches"],
)
def test_evaluation_champion_uses_the_promotion_rule(
    gain: float, n: int, promote: bool, because: str
) -> None:
    market, challenger = paired_losses(gain, n=n, noise=0.3)
    worse = market + 0.1
    losses = {BASELINE_MODEL: market, "dixon_coles": challenger, "elo": worse}
    scores = {name: {"log_loss": float(np.mean(loss))} for name, loss in losses.items()}
    champion, promotion = _choose_champion(losses, scores, RULE)
    decision = decide_among(BASELINE_MODEL, market, {"dixon_coles": challenger, "elo": worse}, RULE)
    assert decision.challenger == "dixon_coles"
    assert decision.promote is promote
    assert because in decision.reason
    assert promotion == {
        "promote": decision.promote,
        "reason": decision.reason,
        "champion": BASELINE_MODEL,
        "challenger": "dixon_coles",
        "mean_difference": decision.mean_difference,
        "p_value": decision.p_value,
        "n": decision.n,
        "matches_needed": decision.matches_needed,
        # fewer than min_matches: no challenger was tested, none took a share of alpha
        "challengers_tested": None if "only" in because else 2,
        "alpha_used": decision.alpha_used,
        "test": "t",
    }
    assert (decision.matches_needed is not None) is (because == ": not significant")
    assert champion == ("dixon_coles" if promote else BASELINE_MODEL)


def test_min_gain_is_the_null_the_test_rejects_not_only_a_bar_on_the_mean() -> None:
    """The test was of mean > 0 beside an observed mean > min_gain: a challenger whose true
    gain was exactly min_gain was promoted about half the time."""
    rule = PromotionRule(min_gain=0.001)
    promoted = 0
    for seed in range(200):
        champion, challenger = paired_losses(0.001, noise=0.05, seed=seed)
        promoted += decide_promotion("market", champion, "f", challenger, rule).promote
    assert promoted / 200 < 0.10  # about alpha; it was 0.53
    champion, challenger = paired_losses(0.02, noise=0.05)  # well above: still promoted
    assert decide_promotion("market", champion, "f", challenger, rule).promote


def test_an_infinite_loss_is_refused_by_the_paired_test() -> None:
    """Infinite pairs were dropped with the NaN ones: the test reported fewer matches."""
    champion, challenger = paired_losses(0.01, n=50)
    challenger[3] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        paired_test(champion, challenger)


def test_the_largest_gain_is_judged_on_the_matches_every_passed_challenger_shares() -> None:
    """A challenger scored on 250 of 1,000 matches (gain 0.03 there) beat one scored on all
    that gains 0.02 over all and 0.04 on the same 250."""
    champion, full = paired_losses(0.02, noise=0.01, seed=3)
    partial = np.full(N, np.nan)
    partial[:250] = champion[:250] - 0.03 + np.random.default_rng(4).normal(0.0, 0.01, 250)
    full[:250] = champion[:250] - 0.04  # on the shared matches it is the better one
    decision = decide_among("market", champion, {"partial": partial, "full": full}, RULE)
    assert (decision.promote, decision.challenger) == (True, "full")


def test_no_challenger_tested_is_recorded_as_none_tested() -> None:
    champion, challenger = paired_losses(0.05, n=1)
    decision = decide_among("market", champion, {"a": challenger, "b": challenger + 1}, RULE)
    assert (decision.challengers_tested, decision.alpha_used) == (None, None)
    assert "only 1 paired match," in decision.reason


# ---------------------------------------------------------------- applied to a registry


class TickClock:
    def __init__(self) -> None:
        self.current = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.current += timedelta(seconds=1)
        return self.current


def register(registry: Registry, model_name: str) -> str:
    files = {"params.json": f'{{"model": "{model_name}"}}'.encode()}
    manifest = build_manifest(
        model_name=model_name,
        vertical="football",
        market="e0",
        config={"model": model_name},
        files=files,
        data_sha256="c" * 64,
        features_sha256="d" * 64,
        training_window={
            "start_utc": "2020-01-01T00:00:00Z",
            "end_utc": "2025-01-01T00:00:00Z",
            "n_matches": 1500,
        },
        scores={"log_loss": 0.99},
        git_sha_value="abc1234",
        packages=[],
    )
    return registry.register("football", "e0", model_name, files, manifest)


@pytest.fixture(params=["local", "memory"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param == "local":
        yield Registry(str(tmp_path / "registry"), clock=TickClock())
        return
    root = f"memory://promotion-test-{uuid.uuid4().hex}"
    yield Registry(root, clock=TickClock())
    fs, path = fsspec.core.url_to_fs(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_promote_if_better_walks_through_champions(registry: Registry) -> None:
    v_elo = register(registry, "elo")
    first = promote_if_better(
        registry, "football", "e0", ("elo", v_elo), None, None, RULE, champion=None
    )
    assert first.promote is True
    assert first.reason == "no champion yet"
    champion = registry.champion("football", "e0")
    assert champion is not None
    assert (champion.model_name, champion.version) == ("elo", v_elo)

    v_dc = register(registry, "dixon_coles")
    champ_loss, chall_loss = paired_losses(0.02)
    second = promote_if_better(
        registry,
        "football",
        "e0",
        ("dixon_coles", v_dc),
        champ_loss,
        chall_loss,
        RULE,
        champion=("elo", v_elo),
    )
    assert second.promote is True
    assert (second.champion, second.champion_version) == ("elo", v_elo)
    assert second.challenger_version == v_dc
    champion = registry.champion("football", "e0")
    assert champion is not None
    assert (champion.model_name, champion.reason) == ("dixon_coles", second.reason)

    v_bad = register(registry, "lightgbm")
    champ_loss, chall_loss = paired_losses(-0.01)
    third = promote_if_better(
        registry,
        "football",
        "e0",
        ("lightgbm", v_bad),
        champ_loss,
        chall_loss,
        RULE,
        champion=("dixon_coles", v_dc),
    )
    assert third.promote is False
    champion = registry.champion("football", "e0")
    assert champion is not None
    assert champion.model_name == "dixon_coles"

    saved = registry.decisions("football", "e0")
    assert [(d.challenger, d.promote) for d in saved] == [
        ("elo", True),
        ("dixon_coles", True),
        ("lightgbm", False),
    ]
    assert saved[2] == third
    assert all(d.decided_utc is not None for d in saved)

    restored = registry.rollback("football", "e0")
    assert (restored.model_name, restored.version) == ("elo", v_elo)


def test_promote_if_better_requires_registered_challenger(registry: Registry) -> None:
    from marketcast.registry import ModelNotFoundError

    with pytest.raises(ModelNotFoundError):
        promote_if_better(
            registry,
            "football",
            "e0",
            ("elo", "20260101T000000Z-00000000"),
            None,
            [1.0],
            champion=None,
        )
    assert registry.decisions("football", "e0") == []


def test_promote_current_champion_again_is_a_no_op(registry: Registry) -> None:
    version = register(registry, "elo")
    promote_if_better(registry, "football", "e0", ("elo", version), None, None, champion=None)
    again = promote_if_better(
        registry,
        "football",
        "e0",
        ("elo", version),
        np.ones(300),
        np.ones(300),
        champion=("elo", version),
    )
    assert again.promote is False
    assert again.reason == f"elo {version} is already the champion"
    assert registry.champion_history("football", "e0") == []


def test_reason_names_the_unit_of_the_paired_losses() -> None:
    rng = np.random.default_rng(1)
    champion = rng.normal(0.0, 0.01, 400)
    rule = PromotionRule(metric="net_return_loss", unit="period", min_matches=30)
    decision = decide_promotion("flat", champion, "lightgbm", champion + 0.001, rule)
    assert not decision.promote
    assert decision.reason == (
        "net_return_loss gain -0.0010 per period over 400 periods: not better than the champion"
    )


def test_holm_tests_a_p_value_of_exactly_zero_first() -> None:
    """p = 0 (every difference equal) sorted as 1.0 and the step-down stopped at the other."""
    champion, _ = paired_losses(0.02, noise=0.05)
    _, noisier = paired_losses(0.001, noise=0.05, seed=3)
    decision = decide_among("market", champion, {"exact": champion - 0.05, "other": noisier}, RULE)
    assert decision.p_value == 0.0
    assert (decision.promote, decision.challenger) == (True, "exact")


def test_holm_looks_at_p_values_only_and_the_gain_rules_at_what_it_rejects() -> None:
    """A challenger below min_gain stopped the step-down for a clearly better one."""
    rng = np.random.default_rng(5)
    champion = rng.normal(1.0, 0.3, 300)
    tiny_but_sure = champion - 0.002 + rng.normal(0.0, 1e-4, 300)
    large = champion - 0.06 + rng.normal(0.0, 0.1, 300)
    rule = PromotionRule(min_gain=0.01)
    decision = decide_among("market", champion, {"c": tiny_but_sure, "d": large}, rule)
    assert (decision.promote, decision.challenger) == (True, "d")


def test_a_challenger_too_short_to_test_takes_no_share_of_alpha() -> None:
    champion, challenger = paired_losses(0.0008, noise=0.05)
    alone = decide_promotion("market", champion, "f", challenger, RULE)
    assert alone.p_value is not None
    assert 0.025 < alone.p_value < 0.05  # passes at 0.05, would fail at 0.025
    short = np.full(N, np.nan)
    short[:10] = champion[:10] - 0.1
    decision = decide_among("market", champion, {"short": short, "f": challenger}, RULE)
    assert (decision.promote, decision.challenger, decision.alpha_used) == (True, "f", 0.05)
    assert decision.challengers_tested == 1


def test_a_gain_below_a_thousandth_is_written_to_three_figures() -> None:
    """A crypto period's net return gain is about 1e-5: at four decimals a better and an equal
    challenger both read "gain 0.0000"."""
    rng = np.random.default_rng(2)
    champion = rng.normal(0.0, 0.01, 400)
    rule = PromotionRule(metric="net_return_loss", unit="period", min_matches=30)
    decision = decide_promotion("flat", champion, "momentum", champion - 1.234e-5, rule)
    assert decision.reason.startswith("net_return_loss gain 1.23e-05 per period, p=")


@pytest.mark.parametrize(
    ("p_value", "alpha", "verdict"),
    [
        (0.04996, 0.05, "p=0.04996 < 0.05"),
        (0.0500004, 0.05, "p=0.0500004 >= 0.05"),
        (0.01668, 0.05 / 3, "p=0.01668 >= 0.01667"),  # a Holm share: "0.01668 >= 0.0167"
        (0.01666, 0.05 / 3, "p=0.01666 < 0.01667"),
    ],
)
def test_a_p_value_next_to_the_level_is_not_written_as_the_level(
    monkeypatch: pytest.MonkeyPatch, p_value: float, alpha: float, verdict: str
) -> None:
    """Registry audit (low): three significant figures wrote p = 0.04996 as "p=0.05 < 0.05",
    and the review after: a level rounded to three read "p=0.01668 >= 0.0167"."""
    real = marketcast.promotion.paired_test

    def near_the_level(*args: Any, **kwargs: Any) -> Any:
        return dataclasses.replace(real(*args, **kwargs), p_value=p_value)

    monkeypatch.setattr(marketcast.promotion, "paired_test", near_the_level)
    champion = np.full(200, 1.0)
    challenger = champion - np.linspace(0.0, 0.02, 200)
    decision = decide_promotion("market", champion, "elo", challenger, PromotionRule(alpha=alpha))
    assert verdict in decision.reason
    assert decision.promote is (p_value < alpha)
