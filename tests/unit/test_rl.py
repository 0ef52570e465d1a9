"""ROI fine-tuning: the PPO and DPO objectives by hand, the KL penalty, learning and determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from marketcast.evaluation.staking import stake_fractions
from marketcast.models.nn.policy import StakingPolicy
from marketcast.training.rl import (
    DPOConfig,
    PPOConfig,
    ReferenceConfig,
    StakingData,
    action_rewards,
    behaviour_clone,
    build_policy,
    build_preference_pairs,
    dpo_loss,
    evaluate_policy,
    fine_tune_dpo,
    fine_tune_ppo,
    frozen_copy,
    kelly_actions,
    ppo_loss,
    realised_returns,
)


def synthetic_market(
    n: int, seed: int, *, share: float = 0.3, bias: float = 1.5, margin: float = 0.05
) -> tuple[StakingData, np.ndarray]:
    """Known outcome probabilities; on a flagged share of fixtures the home price is too long.

    The market (and the supervised model, which follows it with noise) divides the home
    probability by ``bias`` on flagged fixtures: the home bet's true edge there is
    ``(1.5 - 0.5 p_home) / 1.05 - 1 > 0``; elsewhere every bet loses the 5% margin. Only the
    embedding's first column carries the flag, so a Kelly reference on the supervised
    probabilities cannot see the mispricing.
    """
    rng = np.random.default_rng(seed)
    true_p = rng.dirichlet([4.0, 3.0, 3.0], size=n)
    flag = rng.random(n) < share
    market_p = true_p.copy()
    market_p[flag, 0] /= bias
    market_p /= market_p.sum(axis=1, keepdims=True)
    odds = 1.0 / (market_p * (1.0 + margin))
    logits = np.log(market_p) + rng.normal(0.0, 0.1, size=(n, 3))
    supervised = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    embedding = np.column_stack([flag.astype(float), rng.normal(size=(n, 3))])
    outcome = (rng.random(n)[:, None] > np.cumsum(true_p, axis=1)).sum(axis=1)
    return StakingData.from_arrays(embedding, supervised, odds, outcome, true_p), flag


def thawed(policy: StakingPolicy) -> StakingPolicy:
    """A trainable copy of a frozen reference (the policy starts at the reference)."""
    copy = frozen_copy(policy).train()
    for p in copy.parameters():
        p.requires_grad_(True)
    return copy


@pytest.fixture(scope="module")
def market() -> dict[str, object]:
    torch.set_num_threads(1)
    train, _ = synthetic_market(4000, 1)
    test, flag = synthetic_market(6000, 2)
    ref = build_policy(4, seed=0)
    ref, history = behaviour_clone(ref, train, ReferenceConfig(epochs=20), seed=0)
    return {
        "train": train,
        "test": test,
        "flag": torch.as_tensor(flag),
        "ref": frozen_copy(ref),
        "bc": history,
    }


def greedy_outcomes(policy: StakingPolicy, data: StakingData) -> torch.Tensor:
    with torch.no_grad():
        action = policy(data.embedding, data.probs, data.odds).action_logits.argmax(dim=1)
    return policy.action_outcome[action]


# --------------------------------------------------------------------------------------------
# objectives by hand


def test_clipped_objective_equals_hand_computation() -> None:
    logits = torch.tensor([[0.2, -0.1, 0.4], [1.0, 0.0, -1.0], [0.0, 0.3, 0.1]])
    actions = torch.tensor([0, 1, 2])
    ratios = torch.tensor([1.5, 0.5, 1.1])
    logp = F.log_softmax(logits, dim=1).gather(1, actions[:, None]).squeeze(1)
    old_logp = logp - ratios.log()  # so that pi / pi_old equals ``ratios``
    adv = torch.tensor([1.0, -1.0, 2.0])
    values = torch.tensor([0.1, 0.2, 0.3])
    returns = torch.tensor([0.5, -0.2, 0.3])
    cfg = PPOConfig(clip_eps=0.2, vf_coef=0.0, ent_coef=0.0, kl_coef=0.0)
    loss, stats = ppo_loss(logits, values, actions, old_logp, adv, returns, logits, cfg)
    # max(-A r, -A clip(r)): (-1.2) for r=1.5, A=1; (0.8) for r=0.5, A=-1; (-2.2) for r=1.1, A=2
    expected_pg = (-1.2 + 0.8 - 2.2) / 3
    assert float(loss) == pytest.approx(expected_pg, abs=1e-6)
    assert stats["clipfrac"] == pytest.approx(2 / 3)

    cfg_all = PPOConfig(clip_eps=0.2, vf_coef=0.5, ent_coef=0.01, kl_coef=0.0)
    loss_all, stats_all = ppo_loss(logits, values, actions, old_logp, adv, returns, logits, cfg_all)
    v_loss = 0.5 * ((0.1 - 0.5) ** 2 + (0.2 + 0.2) ** 2 + 0.0) / 3
    p = torch.softmax(logits, dim=1)
    entropy = float(-(p * p.log()).sum(dim=1).mean())
    assert stats_all["v_loss"] == pytest.approx(v_loss, abs=1e-7)
    assert float(loss_all) == pytest.approx(expected_pg + 0.5 * v_loss - 0.01 * entropy, abs=1e-6)


def test_kl_penalty_is_zero_when_policy_equals_reference(market: dict) -> None:
    data = market["train"]
    ref = market["ref"]
    policy = thawed(ref)
    out = policy(data.embedding[:64], data.probs[:64], data.odds[:64])
    ref_logits = ref(data.embedding[:64], data.probs[:64], data.odds[:64]).action_logits
    actions = torch.zeros(64, dtype=torch.long)
    zeros = torch.zeros(64)
    old = F.log_softmax(out.action_logits.detach(), dim=1)[:, 0]
    cfg = PPOConfig(kl_coef=1.0)
    _, stats = ppo_loss(out.action_logits, zeros, actions, old, zeros, zeros, ref_logits, cfg)
    assert stats["kl_ref"] == pytest.approx(0.0, abs=1e-7)
    assert stats["approx_kl"] == pytest.approx(0.0, abs=1e-7)
    shifted = ref_logits + torch.linspace(0.0, 1.0, policy.n_actions)
    _, moved = ppo_loss(out.action_logits, zeros, actions, old, zeros, zeros, shifted, cfg)
    assert moved["kl_ref"] > 1e-3


def test_dpo_loss_by_hand() -> None:
    lp_c, lp_r = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -0.5])
    ref_c, ref_r = torch.tensor([-1.2, -1.0]), torch.tensor([-1.2, -1.0])
    beta = 0.5
    h = [(-1.0 + 1.2) - (-1.5 + 1.2), (-2.0 + 1.0) - (-0.5 + 1.0)]  # [0.5, -1.5]
    expected = -np.mean([math.log(1 / (1 + math.exp(-beta * v))) for v in h])
    assert float(dpo_loss(lp_c, lp_r, ref_c, ref_r, beta)) == pytest.approx(expected, abs=1e-6)
    same = dpo_loss(ref_c, ref_r, ref_c, ref_r, beta)
    assert float(same) == pytest.approx(math.log(2.0), abs=1e-7)


# --------------------------------------------------------------------------------------------
# reference and data


def test_kelly_actions_follow_the_backtest_staking_rule() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet([3.0, 2.0, 2.0], size=500)
    odds = 1.0 / (rng.dirichlet([3.0, 2.0, 2.0], size=500) * 1.04)
    policy = StakingPolicy(0)
    action = kelly_actions(
        policy, torch.tensor(probs), torch.tensor(odds), kelly_fraction=0.25, min_edge=0.02
    )
    outcome, fraction, _ = stake_fractions(
        probs, odds, rule="fractional_kelly", kelly_fraction=0.25, max_stake_fraction=1.0
    )
    grid = np.array([0.0, *policy.stake_fractions])
    snapped = grid[np.abs(fraction[:, None] - grid[None, :]).argmin(axis=1)]
    expected_outcome = np.where(snapped > 0, outcome, -1)
    assert policy.action_outcome[action].numpy().tolist() == expected_outcome.tolist()
    assert np.allclose(policy.action_stake_fraction[action].numpy(), snapped)
    assert (expected_outcome >= 0).sum() > 50  # the comparison covers real bets


def test_behaviour_cloned_reference_mostly_agrees_with_kelly(market: dict) -> None:
    assert market["bc"][-1]["agreement"] > 0.65
    assert market["bc"][-1]["loss"] < market["bc"][0]["loss"]


def test_staking_data_rejects_bad_rows_by_name() -> None:
    good = np.full((3, 3), 1 / 3)
    odds = np.full((3, 3), 2.9)
    odds[1, 2] = 0.9
    with pytest.raises(ValueError, match=r"StakingData\.odds: row 1"):
        StakingData.from_arrays(np.zeros((3, 2)), good, odds, [0, 1, 2])
    with pytest.raises(ValueError, match=r"StakingData\.outcome: row 2"):
        StakingData.from_arrays(np.zeros((3, 2)), good, np.full((3, 3), 2.9), [0, 1, 3])


def test_evaluate_policy_settles_by_hand() -> None:
    policy = StakingPolicy(0, n_outcomes=2, stake_fractions=(0.01, 0.02))
    with torch.no_grad():  # always choose action 4 = (outcome 1, stake 0.02)
        policy.actor[-1].weight.zero_()
        policy.actor[-1].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 10.0]))
    odds = np.array([[1.5, 2.5], [1.8, 2.0], [2.2, 1.7]])
    closing = np.array([[0.6, 0.4], [0.5, 0.5], [np.nan, np.nan]])
    data = StakingData.from_arrays(np.zeros((3, 0)), np.full((3, 2), 0.5), odds, [1, 0, 1], closing)
    ev = evaluate_policy(policy, data, bankroll_units=100.0)
    profit = 2.0 * 1.5 - 2.0 + 2.0 * 0.7
    assert ev["n_bets"] == 3
    assert ev["profit_units"] == pytest.approx(profit, abs=1e-5)
    assert ev["roi"] == pytest.approx(profit / 6.0, abs=1e-6)
    assert ev["clv"] == pytest.approx(((2.5 * 0.4 - 1) + (2.0 * 0.5 - 1)) / 2, abs=1e-6)
    assert ev["n_bets_without_closing"] == 1
    # edges under the supervised 0.5: 0.25, 0.0 and -0.15 (a bet no Kelly rule would place)
    assert ev["n_bets_negative_edge"] == 1
    assert ev["mean_stake"] == pytest.approx(0.02)
    returns = realised_returns(policy, data.odds, data.outcome)
    assert returns[0].tolist() == pytest.approx([0.0, -0.01, -0.02, 0.015, 0.03], abs=1e-6)


# --------------------------------------------------------------------------------------------
# learning


PPO_FAST = PPOConfig(n_updates=30, lr=3e-3, kl_coef=0.01, validation_fraction=0.0)


def test_ppo_learns_to_bet_the_mispriced_subset(market: dict) -> None:
    ref, test, flag = market["ref"], market["test"], market["flag"]
    policy, history = fine_tune_ppo(thawed(ref), ref, market["train"], PPO_FAST, seed=0)
    before, after = evaluate_policy(ref, test), evaluate_policy(policy, test)
    assert before["roi"] < 0.0  # the reference bets on noise and pays the margin
    assert after["roi"] > before["roi"] + 0.05
    assert after["clv"] > before["clv"] + 0.05
    chosen, chosen_ref = greedy_outcomes(policy, test), greedy_outcomes(ref, test)
    home_on_flagged = float((chosen[flag] == 0).float().mean())
    bets_elsewhere = float((chosen[~flag] >= 0).float().mean())
    assert home_on_flagged > 2.0 * bets_elsewhere
    assert home_on_flagged > 2.0 * float((chosen_ref[flag] == 0).float().mean())
    assert history[-1]["kl_ref"] > 0.0
    assert all(h["epochs_run"] >= 1 for h in history)


def test_closing_expected_reward_separates_the_subset_cleanly(market: dict) -> None:
    ref, test, flag = market["ref"], market["test"], market["flag"]
    cfg = PPOConfig(n_updates=30, lr=3e-3, kl_coef=0.01, reward="closing_expected")
    policy, history = fine_tune_ppo(thawed(ref), ref, market["train"], cfg, seed=0)
    chosen = greedy_outcomes(policy, test)
    assert float((chosen[flag] == 0).float().mean()) > 0.9
    assert float((chosen[~flag] >= 0).float().mean()) < 0.05
    assert evaluate_policy(policy, test)["roi"] > 0.1
    assert history[0]["n_reward_fallback"] == 0.0


def test_closing_expected_reward_by_hand() -> None:
    policy = StakingPolicy(0, n_outcomes=2, stake_fractions=(0.01,))
    data = StakingData.from_arrays(
        np.zeros((2, 0)),
        np.full((2, 2), 0.5),
        [[2.0, 2.0], [3.0, 1.4]],
        [1, 0],
        [[0.55, 0.45], [np.nan, np.nan]],
    )
    rewards, n_fallback = action_rewards(policy, data, "closing_expected")
    assert rewards[0].tolist() == pytest.approx([0.0, 0.01 * 0.1, 0.01 * -0.1], abs=1e-7)
    assert rewards[1].tolist() == pytest.approx([0.0, 0.02, -0.01], abs=1e-7)  # realised
    assert n_fallback == 1


def test_validation_keeps_the_best_update(market: dict) -> None:
    ref, train = market["ref"], market["train"].subset(np.arange(2000))
    cfg = PPOConfig(n_updates=6, rollout_size=1024, lr=3e-3, validation_fraction=0.25)
    policy, history = fine_tune_ppo(thawed(ref), ref, train, cfg, seed=3)
    valid = train.subset(np.arange(1500, 2000))
    rewards, _ = action_rewards(policy, valid, "return")
    with torch.no_grad():

        def score(p: StakingPolicy) -> float:
            action = p(valid.embedding, valid.probs, valid.odds).action_logits.argmax(dim=1)
            return float(rewards.gather(1, action[:, None]).mean())

        kept, start = score(policy), score(ref)
    best = max([start] + [h["val_reward"] for h in history])
    assert kept == pytest.approx(best, abs=1e-9)
    assert sum(h["selected"] for h in history) == (0 if best == start else 1)


def test_belief_stays_fixed_unless_tuned(market: dict) -> None:
    ref, train = market["ref"], market["train"].subset(np.arange(1000))
    cfg = PPOConfig(n_updates=2, rollout_size=512, validation_fraction=0.0)
    frozen, _ = fine_tune_ppo(thawed(ref), ref, train, cfg, seed=0)
    tuned, _ = fine_tune_ppo(
        thawed(ref), ref, train, cfg.model_copy(update={"tune_belief": True}), seed=0
    )
    assert torch.equal(frozen.belief.weight, ref.belief.weight)
    assert not torch.equal(tuned.belief.weight, ref.belief.weight)
    ev = evaluate_policy(frozen, train)
    assert ev["log_loss"] == pytest.approx(ev["supervised_log_loss"], abs=1e-5)


def test_ppo_is_deterministic_for_a_seed(market: dict) -> None:
    ref, train = market["ref"], market["train"].subset(np.arange(1000))
    cfg = PPOConfig(n_updates=3, rollout_size=512, minibatch_size=128)
    runs = [fine_tune_ppo(thawed(ref), ref, train, cfg, seed=s) for s in (7, 7, 8)]
    (p1, h1), (p2, h2), (p3, _) = runs
    assert h1 == h2
    for key, value in p1.state_dict().items():
        assert torch.equal(value, p2.state_dict()[key]), key
    assert any(not torch.equal(v, p3.state_dict()[k]) for k, v in p1.state_dict().items())


def test_preference_pairs_prefer_the_higher_realised_return(market: dict) -> None:
    ref, train = market["ref"], market["train"]
    state, chosen, rejected, gap = build_preference_pairs(
        ref, train, pairs_per_state=4, pair_source="uniform", seed=0
    )
    rewards = realised_returns(ref, train.odds, train.outcome)
    assert len(state) > 4000
    assert bool((rewards[state, chosen] > rewards[state, rejected]).all())
    assert torch.allclose(
        gap * max(ref.stake_fractions), rewards[state, chosen] - rewards[state, rejected]
    )


def test_dpo_improves_roi_over_the_reference(market: dict) -> None:
    ref, test = market["ref"], market["test"]
    policy, history = fine_tune_dpo(thawed(ref), ref, market["train"], DPOConfig(), seed=0)
    before, after = evaluate_policy(ref, test), evaluate_policy(policy, test)
    assert after["roi"] > before["roi"] + 0.03
    assert history[-1]["pair_accuracy"] > 0.5
    again, history_again = fine_tune_dpo(
        thawed(ref), ref, market["train"], DPOConfig(epochs=2), seed=1
    )
    again2, history_again2 = fine_tune_dpo(
        thawed(ref), ref, market["train"], DPOConfig(epochs=2), seed=1
    )
    assert history_again == history_again2
    assert all(torch.equal(v, again2.state_dict()[k]) for k, v in again.state_dict().items())
