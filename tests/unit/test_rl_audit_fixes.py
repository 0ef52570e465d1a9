"""Audit fixes in RL fine-tuning: closing-price checks, empty training sets, the bench's seeds,
paired ROI tests and the docs it writes."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from marketcast.models.nn.policy import StakingPolicy
from marketcast.training.rl import (
    DPOConfig,
    PPOConfig,
    ReferenceConfig,
    StakingData,
    action_rewards,
    behaviour_clone,
    build_policy,
    evaluate_policy,
    fine_tune_dpo,
    fine_tune_ppo,
    frozen_copy,
)
from tests.bench_module import load_bench

ROOT = Path(__file__).resolve().parents[2]


def _flat(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------- 3. closing_probs is checked


def _rows(closing: np.ndarray) -> StakingData:
    n = closing.shape[0]
    odds = np.tile([1.9, 3.6, 4.2], (n, 1))
    return StakingData.from_arrays(np.zeros((n, 2)), np.full((n, 3), 1 / 3), odds, [0] * n, closing)


def test_closing_odds_instead_of_probabilities_are_rejected_by_row_and_field() -> None:
    """Closing odds gave a 'closing_expected' reward of 949% of the bankroll without a word."""
    with pytest.raises(ValueError, match=r"StakingData\.closing_probs: row 0 is invalid"):
        _rows(np.tile([1.9, 3.6, 4.2], (3, 1)))


def test_closing_probabilities_with_the_margin_left_in_are_rejected() -> None:
    raw = 1.0 / np.array([[2.0, 3.5, 4.0], [1.9, 3.6, 4.2]])  # rows sum to 1.04 and 1.04
    closing = np.vstack([[0.5, 0.3, 0.2], raw[1]])
    with pytest.raises(ValueError, match=r"StakingData\.closing_probs: row 1"):
        _rows(closing)


def test_partly_missing_closing_row_is_rejected() -> None:
    closing = np.array([[0.5, 0.3, 0.2], [0.4, 0.3, 0.3], [0.5, np.nan, 0.5]])
    with pytest.raises(ValueError, match=r"StakingData\.closing_probs: row 2"):
        _rows(closing)


def test_no_closing_price_rows_are_treated_alike_by_reward_and_evaluation() -> None:
    """An all-NaN row is allowed; the reward falls back on it and the CLV leaves it out."""
    closing = np.array([[0.5, 0.3, 0.2], [np.nan, np.nan, np.nan], [0.45, 0.3, 0.25]])
    data = _rows(closing)
    policy = StakingPolicy(2, n_outcomes=3, stake_fractions=(0.02,))
    with torch.no_grad():  # always bet 0.02 on outcome 0 (action 1)
        policy.actor[-1].weight.zero_()
        policy.actor[-1].bias.copy_(torch.tensor([0.0, 10.0, 0.0, 0.0]))
    rewards, n_fallback = action_rewards(policy, data, "closing_expected")
    assert n_fallback == 1
    assert rewards[1, 1].item() == pytest.approx(0.02 * 0.9)  # realised: won at 1.9
    assert rewards[0, 1].item() == pytest.approx(0.02 * (1.9 * 0.5 - 1.0))
    ev = evaluate_policy(policy, data)
    assert ev["n_bets"] == 3
    assert ev["n_bets_without_closing"] == n_fallback
    assert ev["clv"] == pytest.approx(((1.9 * 0.5 - 1) + (1.9 * 0.45 - 1)) / 2, abs=1e-6)


# --------------------------------------------------------------- 4. empty fine-tuning sets


def _empty() -> StakingData:
    return StakingData.from_arrays(
        np.zeros((0, 2)), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3))
    )


def _bc(data: StakingData) -> object:
    return behaviour_clone(build_policy(2, seed=0), data, ReferenceConfig(), seed=0)


def _ppo(data: StakingData) -> object:
    ref = frozen_copy(build_policy(2, seed=0))
    return fine_tune_ppo(build_policy(2, seed=0), ref, data, PPOConfig(), seed=0)


def _dpo(data: StakingData) -> object:
    ref = frozen_copy(build_policy(2, seed=0))
    return fine_tune_dpo(build_policy(2, seed=0), ref, data, DPOConfig(), seed=0)


@pytest.mark.parametrize(
    ("name", "run"),
    [("behaviour_clone", _bc), ("fine_tune_ppo", _ppo), ("fine_tune_dpo", _dpo)],
)
def test_empty_training_set_is_a_clear_error(
    name: str, run: Callable[[StakingData], object]
) -> None:
    """Was ZeroDivisionError, KeyError('approx_kl') and a silent no-op respectively."""
    with pytest.raises(ValueError, match=rf"^{name}: no training rows \(0 rows given"):
        run(_empty())


def test_dpo_with_every_pair_tied_is_a_clear_error() -> None:
    """Fair closing prices make every stake's expected return 0: no pair has a preference."""
    n = 40
    odds = np.tile([2.0, 4.0, 4.0], (n, 1))
    closing = np.tile([0.5, 0.25, 0.25], (n, 1))  # odds x closing = 1 exactly
    data = StakingData.from_arrays(np.zeros((n, 2)), closing, odds, np.zeros(n), closing)
    ref = frozen_copy(build_policy(2, seed=0))
    config = DPOConfig(reward="closing_expected")
    with pytest.raises(ValueError, match=r"^fine_tune_dpo: no preference pairs \(30 training rows"):
        fine_tune_dpo(build_policy(2, seed=0), ref, data, config, seed=0)


# --------------------------------------------------------------- 1-2. the bench's statistics


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load_bench("compress_rl")


def test_paired_difference_of_identical_policies_is_exactly_zero(bench: ModuleType) -> None:
    rng = np.random.default_rng(0)
    stake = rng.choice([0.0, 0.01, 0.02], size=50)
    profit = stake * np.where(rng.random(50) < 0.5, 1.1, -1.0)
    out = bench.paired_roi_difference([(profit, stake)] * 3, [(profit, stake)] * 3, n_boot=500)
    assert out["diff"] == 0.0
    assert out["ci95"] == [0.0, 0.0]
    assert out["p_value"] == 1.0


def test_paired_difference_resamples_matches_as_brute_force_enumeration(
    bench: ModuleType,
) -> None:
    """Four matches, every one of the 4^4 resamples enumerated: the bootstrap's distribution of
    ROI(a) - ROI(b), matches drawn with both policies' bets (or none) on them."""
    stake_a = np.array([0.02, 0.0, 0.01, 0.02])
    profit_a = np.array([0.02, 0.0, -0.01, -0.02])
    stake_b = np.array([0.01, 0.02, 0.0, 0.02])
    profit_b = np.array([-0.01, 0.03, 0.0, -0.02])
    exact = []
    for draw in itertools.product(range(4), repeat=4):
        idx = list(draw)
        if stake_a[idx].sum() == 0 or stake_b[idx].sum() == 0:
            continue
        exact.append(
            profit_a[idx].sum() / stake_a[idx].sum() - profit_b[idx].sum() / stake_b[idx].sum()
        )
    exact_arr = np.array(exact)
    out = bench.paired_roi_difference(
        [(profit_a, stake_a)], [(profit_b, stake_b)], n_boot=40_000, seed=1
    )
    assert out["diff"] == pytest.approx(0.0 / 0.05 - 0.0 / 0.05 + (-0.01 / 0.05) - 0.0)
    assert out["n_matches"] == 4
    p_exact = min(1.0, 2 * min(np.mean(exact_arr <= 0), np.mean(exact_arr >= 0)))
    assert out["p_value"] == pytest.approx(p_exact, abs=0.02)
    for q, got in zip((0.025, 0.975), out["ci95"], strict=True):
        lo, hi = np.quantile(exact_arr, [max(q - 0.01, 0), min(q + 0.01, 1)])
        assert lo - 1e-12 <= got <= hi + 1e-12


def test_holm_adjust_matches_the_step_down_by_hand(bench: ModuleType) -> None:
    p = [0.04, 0.001, 0.03, 0.5]
    # sorted 0.001, 0.03, 0.04, 0.5 -> 0.004, 0.09, max(0.09, 0.08), max(0.09, 0.5)
    assert bench.holm_adjust(p) == pytest.approx([0.09, 0.004, 0.09, 0.5])


def test_spread_is_mean_sd_min_max_over_seeds(bench: ModuleType) -> None:
    values = [0.01, -0.03, 0.05, 0.0]
    out = bench.spread(values)
    assert out["mean"] == pytest.approx(np.mean(values))
    assert out["sd"] == pytest.approx(np.std(values, ddof=1))
    assert (out["min"], out["max"]) == (-0.03, 0.05)
    assert out["per_seed"] == values


@pytest.fixture(scope="module")
def results() -> dict[str, object]:
    return json.loads((ROOT / "bench" / "results" / "compress_rl.json").read_text())


def test_committed_results_hold_every_seed_and_what_they_depend_on(
    bench: ModuleType, results: dict
) -> None:
    """One seed's figures on one machine were quoted as the result; the JSON said neither the
    CPU kernels nor the threads actually used."""
    assert isinstance(results["cpu_capability"], str)
    assert results["threads_used"] >= 1
    rl = results["rl"]
    seeds = rl["seeds"]
    assert len(seeds) >= 5
    assert len(set(seeds)) == len(seeds)
    p_values, p_holm = [], []
    for fold in rl["folds"]:
        ref = [s["test"]["roi"] for s in fold["policies"]["reference"]["per_seed"]]
        for name in bench.POLICIES:
            pol = fold["policies"][name]
            assert [s["seed"] for s in pol["per_seed"]] == seeds
            rois = [s["test"]["roi"] for s in pol["per_seed"]]
            assert pol["test_roi"]["mean"] == pytest.approx(np.mean(rois), abs=2e-6)
            assert pol["test_roi"]["sd"] == pytest.approx(np.std(rois, ddof=1), abs=2e-6)
            assert pol["test_roi"]["min"] == pytest.approx(min(rois), abs=2e-6)
            if name == "reference":
                continue
            diffs = [a - r for a, r in zip(rois, ref, strict=True)]
            assert pol["roi_minus_reference"]["mean"] == pytest.approx(np.mean(diffs), abs=2e-6)
            pair = pol["paired_vs_reference"]
            assert pair["diff"] == pytest.approx(np.mean(diffs), abs=2e-6)
            p_values.append(pair["p_value"])
            p_holm.append(pair["p_holm"])
    assert p_holm == pytest.approx(bench.holm_adjust(p_values), abs=2e-6)


def _block(text: str, markers: tuple[str, str]) -> str:
    start, end = markers
    found = re.search(re.escape(start) + r"\n(.*?)\n" + re.escape(end), text, re.S)
    assert found is not None, f"no block between {start} and {end}"
    return found.group(1)


def test_docs_rl_table_is_the_committed_results(bench: ModuleType, results: dict) -> None:
    """The docs and README quoted one seed's run that the committed JSON did not reproduce."""
    docs = (ROOT / "docs" / "rl-and-compression.md").read_text(encoding="utf-8")
    assert _flat(_block(docs, bench.DOCS_MARKERS)) == _flat(bench.docs_rl_block(results))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = _flat(_block(readme, bench.README_MARKERS))
    assert quoted == _flat(bench.readme_rl_summary(results))
    for fold in results["rl"]["folds"]:  # the README lists every policy's mean ROI
        for name in bench.POLICIES:
            mean = fold["policies"][name]["test_roi"]["mean"]
            assert f"{name} {100 * mean:+.1f}%" in quoted


def test_docs_say_which_seasons_the_teacher_is_fitted_on() -> None:
    docs = _flat((ROOT / "docs" / "rl-and-compression.md").read_text(encoding="utf-8"))
    assert "Teacher fitted on the seasons before each test season" not in docs
    assert "the teacher is fitted on every season before S-1" in docs
    neural = docs[docs.index("## Measurements on the neural model") :]
    neural = neural[: neural.index("## Measurements (`bench/compress_rl.py`, `--model mlp`)")]
    assert "every 95% interval spans about" not in neural
