"""Training maths a mutation audit found unpinned (2026-11-25): the reference-KL term of the PPO
loss and its direction, the distillation loss's terms, the multitask loss's row weights and
market weights, the sparse gate's rules, and bounds of the RL and compression settings. Each
test fails when its term is dropped or changed the way the audit changed it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from marketcast.models.nn.moe import MixtureOfExperts, sparse_gate_weights
from marketcast.models.nn.network import LossWeights, multitask_loss
from marketcast.models.nn.policy import StakingPolicy
from marketcast.training.compress import distill, magnitude_prune
from marketcast.training.rl import PPOConfig, kelly_actions, ppo_loss

LOGITS = torch.tensor([[1.0, 0.0, -1.0]])
REF = torch.tensor([[0.0, 0.0, 2.0]])


def _ppo(config: PPOConfig, old_logp: float = -0.2) -> tuple[float, dict[str, float]]:
    loss, stats = ppo_loss(
        LOGITS,
        torch.zeros(1),
        torch.tensor([0]),
        torch.tensor([old_logp]),
        torch.tensor([1.0]),
        torch.zeros(1),
        REF,
        config,
    )
    return float(loss), stats


def test_the_ppo_loss_holds_beta_times_kl_from_the_policy_to_the_reference() -> None:
    p, q = F.softmax(LOGITS, dim=1), F.softmax(REF, dim=1)
    kl = float((p * (p.log() - q.log())).sum())  # KL(pi || pi_ref), not KL(pi_ref || pi)
    with_kl, stats = _ppo(PPOConfig(kl_coef=0.5))
    without, _ = _ppo(PPOConfig(kl_coef=0.0))
    assert stats["kl_ref"] == pytest.approx(kl, rel=1e-6)
    assert with_kl - without == pytest.approx(0.5 * kl, rel=1e-6)


def test_the_ppo_defaults_clip_at_0_2_and_approx_kl_is_the_k3_estimator() -> None:
    config = PPOConfig()
    assert config.clip_eps == 0.2
    logp = float(F.log_softmax(LOGITS, dim=1)[0, 0])
    _, stats = _ppo(PPOConfig(kl_coef=0.0, ent_coef=0.0, vf_coef=0.0), old_logp=-1.0)
    logratio = logp + 1.0
    assert stats["approx_kl"] == pytest.approx(np.expm1(logratio) - logratio, rel=1e-5)
    loss, _ = _ppo(PPOConfig(kl_coef=0.0, ent_coef=0.0, vf_coef=0.0), old_logp=-1.0)
    assert loss == pytest.approx(-min(np.exp(logratio), 1.2), rel=1e-6)  # the clipped ratio


def test_a_kelly_edge_equal_to_the_minimum_is_bet() -> None:
    action = kelly_actions(
        StakingPolicy(0),
        torch.tensor([[0.75, 0.125, 0.125]]),
        torch.tensor([[2.0, 4.0, 4.0]]),
        min_edge=0.5,
    )
    assert action.tolist() != [0]  # the home edge 0.75 x 2 - 1 = 0.5 clears a minimum of 0.5


# --------------------------------------------------------------------------- distillation


def test_the_distillation_loss_is_alpha_t_squared_kl_plus_one_minus_alpha_ce() -> None:
    torch.manual_seed(0)
    x, y, teacher = torch.randn(64, 4), torch.randint(0, 3, (64,)), torch.randn(64, 3)
    student = torch.nn.Linear(4, 3)
    before = copy.deepcopy(student)
    t, alpha = 3.0, 0.3
    _, history = distill(
        teacher, student, x, y, temperature=t, alpha=alpha, epochs=1, batch_size=64
    )
    with torch.no_grad():
        logits = before(x)
        kl = F.kl_div(
            F.log_softmax(logits / t, dim=1),
            F.log_softmax(teacher / t, dim=1),
            log_target=True,
            reduction="sum",
        ) / len(x)
        expected = alpha * t**2 * kl + (1 - alpha) * F.cross_entropy(logits, y)
    assert history[0]["loss"] == pytest.approx(float(expected), rel=1e-5)


def test_a_temperature_of_zero_and_pruning_everything_are_refused() -> None:
    x, y = torch.randn(8, 4), torch.randint(0, 3, (8,))
    with pytest.raises(ValueError, match="temperature"):
        distill(torch.randn(8, 3), torch.nn.Linear(4, 3), x, y, temperature=0.0, epochs=1)
    with pytest.raises(ValueError, match=r"amount must be in \[0, 1\)"):
        magnitude_prune(torch.nn.Linear(4, 4), 1.0)


# --------------------------------------------------------------------------- multitask loss


def _outputs() -> dict:
    return {
        "logits_1x2_members": torch.tensor(
            [[[2.0, 0, 0], [2.0, 0, 0]], [[0, 0, 2.0], [0, 0, 2.0]]]
        ),
        "logits_ou": torch.tensor([[1.0, 0], [0, 1.0]]),
        "logits_ah": torch.tensor([[3.0, 0], [0, 0.0]]),
        "goal_diff": torch.zeros(2),
        "aux": {"balance_loss": torch.tensor(0.0), "gate_entropy": torch.tensor(0.0)},
    }


def _targets(w_1x2: list[float]) -> dict:
    return {
        "p_1x2": torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]),
        "w_1x2": torch.tensor(w_1x2),
        "p_ou": torch.tensor([[1.0, 0], [1.0, 0]]),
        "w_ou": torch.ones(2),
        "p_ah": torch.tensor([[0.0, 1], [0.0, 1]]),
        "w_ah": torch.ones(2),
        "goal_diff": torch.zeros(2),
        "boot": torch.ones(2, 2),
    }


def test_a_row_of_weight_zero_adds_nothing_to_the_1x2_term() -> None:
    _, parts = multitask_loss(_outputs(), _targets([1.0, 0.0]), LossWeights())
    first_row_ce = float(F.cross_entropy(torch.tensor([[2.0, 0, 0]]), torch.tensor([0])))
    assert parts["ce_1x2"] == pytest.approx(first_row_ce, rel=1e-5)


def test_each_market_term_has_its_own_weight() -> None:
    base, _ = multitask_loss(_outputs(), _targets([1.0, 1.0]), LossWeights(ah=0.0))
    with_ah, parts = multitask_loss(_outputs(), _targets([1.0, 1.0]), LossWeights(ah=1.0))
    assert float(with_ah - base) == pytest.approx(parts["ce_ah"], rel=1e-5)
    with_ou, parts = multitask_loss(_outputs(), _targets([1.0, 1.0]), LossWeights(ou=1.0, ah=0.0))
    no_ou, _ = multitask_loss(_outputs(), _targets([1.0, 1.0]), LossWeights(ou=0.0, ah=0.0))
    assert float(with_ou - no_ou) == pytest.approx(parts["ce_ou"], rel=1e-5)


# --------------------------------------------------------------------------- sparse gate


@pytest.mark.parametrize(
    ("probs", "top_k", "floor", "expected"),
    [
        ([[0.75, 0.25, 0.0, 0.0]], 2, 0.25, [[0.75, 0.25, 0.0, 0.0]]),  # at the floor: kept
        ([[0.25, 0.25, 0.25, 0.25]], 4, 0.3, None),  # all under it: the largest is kept
        ([[0.5, 0.3, 0.1, 0.1]], 2, 0.35, [[0.625, 0.375, 0.0, 0.0]]),  # renormalised first
    ],
    ids=["at-the-floor", "largest-kept", "renormalised-first"],
)
def test_the_sparse_gate_rules(
    probs: list[list[float]], top_k: int, floor: float, expected: list[list[float]] | None
) -> None:
    weights = sparse_gate_weights(torch.tensor(probs), top_k, floor)
    assert torch.isfinite(weights).all()
    assert float(weights.sum()) == pytest.approx(1.0)
    if expected is None:
        assert int((weights > 0).sum()) == 1
    else:
        np.testing.assert_allclose(weights.numpy(), expected, atol=1e-6)


def test_top_k_may_not_exceed_the_experts() -> None:
    with pytest.raises(ValueError, match="top_k"):
        MixtureOfExperts(4, n_experts=2, top_k=3)
    MixtureOfExperts(4, n_experts=2, top_k=2)


# --------------------------------------------------------------------------- compression report


def test_a_2_4_layout_counts_its_two_bit_indices_rounded_up_to_a_byte() -> None:
    from marketcast.training.compress import sparse_size_bytes

    # 4 weights in one group: 2 kept values of 4 bytes, 2 x 2 bits = 4 bits -> 1 byte
    assert sparse_size_bytes(torch.nn.Linear(4, 1, bias=False), layout="2:4") == 9


def test_the_reports_log_loss_clips_only_at_1e_15() -> None:
    from marketcast.training.compress import _log_loss

    got = _log_loss(np.array([0]), np.array([[1e-6, 1 - 1e-6]]))
    assert got == pytest.approx(-np.log(1e-6), rel=1e-9)


def test_the_largest_probability_difference_is_the_maximum_not_the_mean() -> None:
    from marketcast.training.compress import Variant, compression_report

    x, y = np.zeros((2, 2), np.float32), np.array([0, 0])
    reference = Variant("a", lambda z: np.zeros((len(z), 2), np.float32), 1)
    other = Variant(
        "b", lambda z: np.array([[2.0, 0.0], [0.0, 0.0]] * (len(z) // 2), np.float32), 1
    )
    rows = compression_report([reference, other], x, y, batch_sizes=(2, 2), repeats=1)
    p = 1 / (1 + np.exp(-2.0))  # softmax([2, 0])[0]
    assert rows[1]["max_abs_prob_diff"] == pytest.approx(p - 0.5, rel=1e-5)
    assert rows[1]["mean_abs_prob_diff"] == pytest.approx((p - 0.5) / 2, rel=1e-5)
