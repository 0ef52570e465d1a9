"""ROI fine-tuning of a staking policy: PPO with a KL penalty to a Kelly reference, and DPO."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor

from marketcast.models.nn.policy import StakingPolicy

__all__ = [
    "DPOConfig",
    "PPOConfig",
    "ReferenceConfig",
    "StakingData",
    "action_rewards",
    "behaviour_clone",
    "build_policy",
    "build_preference_pairs",
    "dpo_loss",
    "evaluate_policy",
    "fine_tune_dpo",
    "fine_tune_ppo",
    "frozen_copy",
    "kelly_actions",
    "ppo_loss",
    "realised_returns",
]

RewardKind = Literal["return", "log_wealth", "closing_expected"]
History = list[dict[str, float]]


# --------------------------------------------------------------------------------------------
# data


def _first_bad_row(bad: Tensor) -> int:
    """Index of the first True entry of a (N,) or (N, K) mask."""
    rows = bad.reshape(bad.shape[0], -1).any(dim=1)
    return int(torch.nonzero(rows)[0, 0])


def _bad_probability_rows(p: Tensor) -> Tensor:
    """(N,) rows of ``p`` (N, K) that are not a distribution: non-finite, < 0, > 1 or sum != 1."""
    bad = ~torch.isfinite(p) | (p < 0) | (p > 1.0 + 1e-6)  # (N, K)
    return bad.any(dim=1) | ((p.sum(dim=1) - 1.0).abs() > 1e-3)


def _has_closing(data: StakingData) -> Tensor:
    """(N,) bool: rows with a closing price (validated rows are all NaN or all finite).

    The one rule :func:`action_rewards` and :func:`evaluate_policy` share.
    """
    if data.closing_probs is None:
        return torch.zeros(len(data), dtype=torch.bool)
    return torch.isfinite(data.closing_probs).all(dim=1)


@dataclass(frozen=True)
class StakingData:
    """Fixtures the policy acts on: states, prices and what happened.

    Attributes
    ----------
    embedding
        Context embeddings, float32 (N, d); d may be 0.
    probs
        Supervised outcome probabilities, float32 (N, K), rows summing to 1.
    odds
        Pre-match decimal odds the bets are placed at, float32 (N, K), finite and > 1.
    outcome
        Realised outcome index, int64 (N,), in [0, K).
    closing_probs
        De-margined closing probabilities, (N, K), or ``None``. Each row is either all NaN (no
        closing price: that bet is left out of the CLV mean, as in
        :mod:`marketcast.evaluation.backtest`, and its ``closing_expected`` reward is the
        realised return) or finite, in [0, 1] and summing to 1 within 1e-3. Closing *odds*,
        raw ``1 / odds`` (margin left in) and partly-NaN rows are rejected.
    """

    embedding: Tensor
    probs: Tensor
    odds: Tensor
    outcome: Tensor
    closing_probs: Tensor | None = None

    def __post_init__(self) -> None:
        n, k = self.probs.shape if self.probs.ndim == 2 else (-1, -1)
        if n < 0:
            raise ValueError(f"StakingData.probs must be (N, K), got {tuple(self.probs.shape)}")
        shapes = {"odds": self.odds.shape, "outcome": self.outcome.shape}
        if self.embedding.ndim != 2 or self.embedding.shape[0] != n:
            raise ValueError(
                f"StakingData.embedding must be ({n}, d), got {tuple(self.embedding.shape)}"
            )
        if shapes["odds"] != (n, k) or shapes["outcome"] != (n,):
            raise ValueError(
                f"StakingData: odds must be ({n}, {k}) and outcome ({n},); got "
                f"{tuple(shapes['odds'])} and {tuple(shapes['outcome'])}"
            )
        if self.closing_probs is not None and self.closing_probs.shape != (n, k):
            raise ValueError(
                f"StakingData.closing_probs must be ({n}, {k}), "
                f"got {tuple(self.closing_probs.shape)}"
            )
        checks = {
            "embedding": ~torch.isfinite(self.embedding),
            "probs": ~torch.isfinite(self.probs)
            | (self.probs < 0)
            | ((self.probs.sum(dim=1, keepdim=True) - 1.0).abs() > 1e-3),
            "odds": ~torch.isfinite(self.odds) | (self.odds <= 1.0),
            "outcome": (self.outcome < 0) | (self.outcome >= k),
        }
        if self.closing_probs is not None:
            no_price = torch.isnan(self.closing_probs).all(dim=1)  # (N,)
            checks["closing_probs"] = ~no_price & _bad_probability_rows(self.closing_probs)
        for name, bad in checks.items():
            if n and bool(bad.any()):
                row = _first_bad_row(bad)
                value = getattr(self, name)[row].tolist()
                raise ValueError(f"StakingData.{name}: row {row} is invalid: {value}")

    @classmethod
    def from_arrays(
        cls,
        embedding: npt.ArrayLike,
        probs: npt.ArrayLike,
        odds: npt.ArrayLike,
        outcome: npt.ArrayLike,
        closing_probs: npt.ArrayLike | None = None,
    ) -> StakingData:
        """Build from numpy arrays (or anything ``np.asarray`` takes); floats become float32."""

        def f32(a: npt.ArrayLike) -> Tensor:
            return torch.as_tensor(np.asarray(a, dtype=np.float32))

        closing = None if closing_probs is None else f32(closing_probs)
        y = torch.as_tensor(np.asarray(outcome, dtype=np.int64))
        return cls(f32(embedding), f32(probs), f32(odds), y, closing)

    def __len__(self) -> int:
        return int(self.outcome.shape[0])

    def subset(self, index: Tensor | npt.NDArray[np.int64]) -> StakingData:
        """Rows ``index`` of every field."""
        idx = torch.as_tensor(index, dtype=torch.long)
        closing = None if self.closing_probs is None else self.closing_probs[idx]
        return StakingData(
            self.embedding[idx], self.probs[idx], self.odds[idx], self.outcome[idx], closing
        )


def realised_returns(
    policy: StakingPolicy, odds: Tensor, outcome: Tensor, reward: RewardKind = "return"
) -> Tensor:
    """Realised reward of every action on every fixture, shape (N, A), in bankroll fractions.

    ``"return"``: ``f * (odds_o - 1)`` when outcome o won, ``-f`` when it lost, 0 for no bet.
    ``"log_wealth"``: ``log(1 + that)``, the growth of a bankroll that stakes f (Kelly's criterion).

    Examples
    --------
    >>> policy = StakingPolicy(0, n_outcomes=2, stake_fractions=(0.5,))
    >>> realised_returns(policy, torch.tensor([[3.0, 1.5]]), torch.tensor([0])).tolist()
    [[0.0, 1.0, -0.5]]
    """
    outcome_of_action = policy.action_outcome  # (A,)
    stake = policy.action_stake_fraction  # (A,)
    is_bet = outcome_of_action >= 0  # (A,)
    safe_outcome = outcome_of_action.clamp_min(0)  # (A,)
    odds_of_action = odds[:, safe_outcome]  # (N, A)
    won = outcome[:, None] == outcome_of_action[None, :]  # (N, A)
    ret = torch.where(won, stake * (odds_of_action - 1.0), -stake)  # (N, A)
    ret = torch.where(is_bet[None, :], ret, torch.zeros_like(ret))  # (N, A)
    if reward == "log_wealth":
        ret = torch.log1p(ret)
    elif reward != "return":
        raise ValueError(f"reward must be 'return' or 'log_wealth' here, got {reward!r}")
    return ret


def action_rewards(
    policy: StakingPolicy, data: StakingData, reward: RewardKind = "return"
) -> tuple[Tensor, int]:
    """Reward of every action on every fixture, (N, A) in bankroll fractions, and a fallback count.

    ``"return"`` and ``"log_wealth"``: :func:`realised_returns`. ``"closing_expected"``: the
    expected return under the de-margined closing probabilities, ``f * (odds_o * p_close_o - 1)``,
    i.e. stake times the bet's CLV: the closing line is the sharpest public forecast, so this
    reward has far less variance than one realised result (closing prices are a training target
    here, never an input). Fixtures without a closing price fall back to the realised return;
    their number is the second value (0 for the other rewards).
    """
    if reward != "closing_expected":
        return realised_returns(policy, data.odds, data.outcome, reward), 0
    if data.closing_probs is None:
        raise ValueError("reward 'closing_expected' needs StakingData.closing_probs")
    realised = realised_returns(policy, data.odds, data.outcome, "return")  # (N, A)
    outcome_of_action = policy.action_outcome.clamp_min(0)  # (A,)
    clv = data.odds[:, outcome_of_action] * data.closing_probs[:, outcome_of_action] - 1.0
    expected = policy.action_stake_fraction * clv  # (N, A); no bet: 0 * clv = 0
    priced = _has_closing(data)  # (N,)
    rewards = torch.where(priced[:, None], expected, realised)
    return rewards, int((~priced).sum())


# --------------------------------------------------------------------------------------------
# reference policy: fractional Kelly on the supervised probabilities, behaviour-cloned


class ReferenceConfig(BaseModel):
    """How the reference policy is built (behaviour cloning of fractional Kelly)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kelly_fraction: float = Field(0.25, gt=0, le=1)
    min_edge: float = Field(0.02, ge=0)
    smoothing: float = Field(0.05, ge=0, lt=1, description="target mass spread over all actions")
    epochs: int = Field(40, ge=1)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(3e-3, gt=0)


def kelly_actions(
    policy: StakingPolicy,
    probs: Tensor,
    odds: Tensor,
    *,
    kelly_fraction: float = 0.25,
    min_edge: float = 0.02,
) -> Tensor:
    """Fractional-Kelly action per fixture, shape (N,), snapped to the policy's stake grid.

    The rule of :func:`marketcast.evaluation.staking.stake_fractions` (one bet, on the largest
    edge ``p * odds - 1 >= min_edge``, stake ``kelly_fraction * edge / (odds - 1)``), restated here
    because training may not import evaluation. The stake is then rounded to the nearest point
    of ``{0} ∪ stake grid``; rounding to 0 means no bet, and stakes above the grid take its top.

    Examples
    --------
    >>> policy = StakingPolicy(0)  # stake grid 0.005, 0.01, 0.02
    >>> a = kelly_actions(policy, torch.tensor([[0.5, 0.3, 0.2]]), torch.tensor([[2.2, 3.0, 5.0]]))
    >>> int(policy.action_outcome[a]), float(policy.action_stake_fraction[a])  # 0.25 * 0.0833
    (0, 0.019999999552965164)
    """
    edge = probs * odds - 1.0  # (N, K)
    best_edge, best = edge.max(dim=1)  # (N,), (N,)
    best_odds = odds.gather(1, best[:, None]).squeeze(1)  # (N,)
    stake = kelly_fraction * best_edge / (best_odds - 1.0)  # (N,)
    grid = torch.cat([torch.zeros(1), torch.tensor(policy.stake_fractions)])  # (F + 1,)
    nearest = (stake[:, None] - grid[None, :]).abs().argmin(dim=1)  # (N,)
    bet = (best_edge >= min_edge) & (stake > 0) & (nearest > 0)  # (N,)
    n_stakes = len(policy.stake_fractions)
    action = 1 + best * n_stakes + (nearest - 1).clamp_min(0)  # (N,)
    return torch.where(bet, action, torch.zeros_like(action))


def frozen_copy(policy: StakingPolicy) -> StakingPolicy:
    """A deep copy in eval mode with gradients off: the reference of a fine-tuning run."""
    ref = copy.deepcopy(policy).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def build_policy(embedding_dim: int, *, seed: int, **kwargs: Any) -> StakingPolicy:
    """A fresh :class:`StakingPolicy` whose initial weights depend only on ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return StakingPolicy(embedding_dim, **kwargs)


def behaviour_clone(
    policy: StakingPolicy, data: StakingData, config: ReferenceConfig, seed: int
) -> tuple[StakingPolicy, History]:
    """Fit the actor to fractional Kelly on the supervised probabilities (in place).

    Cross-entropy against the smoothed target ``(1 - s) onehot(kelly) + s / A``: the smoothing
    keeps every action's probability positive, so the reference has full support (KL and DPO
    log-ratios stay finite) and fine-tuning can explore. Only the actor is trained; the belief
    layer stays at zero (the reference's belief is the supervised forecast). The embedding
    standardisation is set from ``data``. Raises ``ValueError`` when ``data`` has no rows.
    """
    _require_rows("behaviour_clone", len(data), len(data), 0.0)
    gen = torch.Generator().manual_seed(seed)
    policy.set_embedding_scaling(data.embedding)
    target_action = kelly_actions(
        policy,
        data.probs,
        data.odds,
        kelly_fraction=config.kelly_fraction,
        min_edge=config.min_edge,
    )  # (N,)
    n_actions = policy.n_actions
    target = F.one_hot(target_action, n_actions).float() * (1.0 - config.smoothing)  # (N, A)
    target += config.smoothing / n_actions
    optimizer = torch.optim.Adam(policy.actor.parameters(), lr=config.lr)
    history: History = []
    n = len(data)
    for epoch in range(config.epochs):
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for start in range(0, n, config.batch_size):
            mb = perm[start : start + config.batch_size]
            out = policy(data.embedding[mb], data.probs[mb], data.odds[mb])
            logp = F.log_softmax(out.action_logits, dim=1)  # (b, A)
            loss = -(target[mb] * logp).sum(dim=1).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(mb)
        with torch.no_grad():
            greedy = policy(data.embedding, data.probs, data.odds).action_logits.argmax(dim=1)
        agreement = float((greedy == target_action).float().mean())
        history.append({"epoch": epoch, "loss": total / n, "agreement": agreement})
    return policy, history


# --------------------------------------------------------------------------------------------
# PPO


class PPOConfig(BaseModel):
    """PPO settings; defaults follow CleanRL's ``ppo.py`` where the problem allows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_updates: int = Field(40, ge=1, description="rollout batches")
    rollout_size: int = Field(2048, ge=1, description="fixtures sampled per rollout")
    update_epochs: int = Field(4, ge=1)
    minibatch_size: int = Field(256, ge=1)
    clip_eps: float = Field(0.2, gt=0)
    vf_coef: float = Field(0.5, ge=0)
    ent_coef: float = Field(0.001, ge=0)
    kl_coef: float = Field(0.05, ge=0, description="beta of the KL(pi || pi_ref) penalty")
    tune_belief: bool = Field(False, description="also train the belief layer (then with CE)")
    ce_coef: float = Field(1.0, ge=0, description="weight of the belief's outcome cross-entropy")
    target_kl: float | None = Field(0.02, gt=0, description="approx-KL early stop per rollout")
    lr: float = Field(3e-4, gt=0)
    max_grad_norm: float = Field(0.5, gt=0)
    normalize_advantages: bool = True
    reward: RewardKind = "return"
    validation_fraction: float = Field(
        0.25, ge=0, lt=1, description="last rows held out to select the best update; 0: none"
    )


def ppo_loss(
    action_logits: Tensor,
    values: Tensor,
    actions: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    returns: Tensor,
    ref_logits: Tensor,
    config: PPOConfig,
) -> tuple[Tensor, dict[str, float]]:
    """Clipped surrogate + value loss - entropy bonus + beta KL(pi || pi_ref), for one minibatch.

    ``L = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps))) + c_v mean((V - R)^2) / 2 - c_e H(pi)
    + beta KL(pi || pi_ref)`` with ``r = pi(a|s) / pi_old(a|s)``. The KL is exact (a sum over the
    A actions), not a sampled estimate. ``advantages`` are used as given (normalise before).

    Parameters
    ----------
    action_logits, ref_logits
        Current and reference policy logits, (B, A).
    values
        Current critic values, (B,).
    actions, old_logp
        Sampled actions and their log-probabilities under the rollout policy, (B,).
    advantages, returns
        Advantage and value target per sample, (B,).
    config
        Supplies ``clip_eps``, ``vf_coef``, ``ent_coef`` and ``kl_coef``.
    """
    logp_all = F.log_softmax(action_logits, dim=1)  # (B, A)
    logp = logp_all.gather(1, actions[:, None]).squeeze(1)  # (B,)
    logratio = logp - old_logp  # (B,)
    ratio = logratio.exp()  # (B,)
    pg_loss1 = -advantages * ratio
    pg_loss2 = -advantages * ratio.clamp(1.0 - config.clip_eps, 1.0 + config.clip_eps)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    v_loss = 0.5 * ((values - returns) ** 2).mean()
    probs_all = logp_all.exp()  # (B, A)
    entropy = -(probs_all * logp_all).sum(dim=1).mean()
    kl_ref = (probs_all * (logp_all - F.log_softmax(ref_logits, dim=1))).sum(dim=1).mean()
    loss = pg_loss + config.vf_coef * v_loss - config.ent_coef * entropy + config.kl_coef * kl_ref
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - logratio).mean()  # Schulman's k3 estimator of KL(old || new)
        clipfrac = ((ratio - 1.0).abs() > config.clip_eps).float().mean()
    stats = {
        "pg_loss": float(pg_loss.detach()),
        "v_loss": float(v_loss.detach()),
        "entropy": float(entropy.detach()),
        "kl_ref": float(kl_ref.detach()),
        "approx_kl": float(approx_kl),
        "clipfrac": float(clipfrac),
    }
    return loss, stats


def _reward_scale(policy: StakingPolicy) -> float:
    """Rewards are divided by the largest stake so that they are O(1) for the critic."""
    return 1.0 / max(policy.stake_fractions)


def _require_rows(function: str, n_train: int, n_rows: int, fraction: float) -> None:
    """Raise a ValueError naming ``function`` when it has no rows to train on."""
    if n_train == 0:
        raise ValueError(
            f"{function}: no training rows ({n_rows} rows given, validation_fraction "
            f"{fraction:g} holds out {n_rows - n_train}); check the season filter"
        )


def _split_validation(data: StakingData, fraction: float) -> tuple[StakingData, StakingData | None]:
    """The first rows to train on, the last ``fraction`` (the latest, in time order) to select."""
    n_valid = int(len(data) * fraction)
    if n_valid == 0:
        return data, None
    n_train = len(data) - n_valid
    return data.subset(torch.arange(n_train)), data.subset(torch.arange(n_train, len(data)))


def _greedy_reward(policy: StakingPolicy, data: StakingData, rewards: Tensor) -> float:
    """Mean reward per fixture (bankroll fractions) of the policy's most likely action."""
    with torch.no_grad():
        action = policy(data.embedding, data.probs, data.odds).action_logits.argmax(dim=1)
    return float(rewards.gather(1, action[:, None]).mean())


def _trainable(policy: StakingPolicy, tune_belief: bool) -> list[torch.nn.Parameter]:
    """The parameters a fine-tuning run updates: all, or all but the belief layer."""
    return [
        p for name, p in policy.named_parameters() if tune_belief or not name.startswith("belief.")
    ]


class _BestOnValidation:
    """Keeps the weights with the best validation reward; the starting weights are a candidate."""

    def __init__(self, policy: StakingPolicy, valid: StakingData | None, reward: RewardKind):
        self.valid = valid
        self.rewards = None if valid is None else action_rewards(policy, valid, reward)[0]
        self.best_step = -1
        self.best_score = self.score(policy)
        self.best_state = copy.deepcopy(policy.state_dict())

    def score(self, policy: StakingPolicy) -> float:
        if self.valid is None or self.rewards is None:
            return float("nan")
        return _greedy_reward(policy, self.valid, self.rewards)

    def update(self, policy: StakingPolicy, step: int) -> float:
        score = self.score(policy)
        if self.valid is None or score > self.best_score:
            self.best_step, self.best_score = step, score
            self.best_state = copy.deepcopy(policy.state_dict())
        return score

    def restore(self, policy: StakingPolicy, history: History, key: str) -> None:
        policy.load_state_dict(self.best_state)
        for entry in history:
            entry["selected"] = float(entry[key] == self.best_step)


def fine_tune_ppo(
    policy: StakingPolicy,
    ref_policy: StakingPolicy,
    data: StakingData,
    config: PPOConfig,
    seed: int,
) -> tuple[StakingPolicy, History]:
    """Fine-tune ``policy`` (in place) on realised returns with PPO; ``ref_policy`` stays frozen.

    Single-step episodes: each fixture is one state, one action, one reward, so the return is the
    reward and the advantage is ``reward - V(s)`` (normalised per minibatch). Each update samples
    ``rollout_size`` fixtures, acts with the current policy, then takes ``update_epochs`` passes
    of minibatch steps on :func:`ppo_loss`; it stops an update early once the approximate KL to
    the rollout policy exceeds ``target_kl``. The belief layer stays fixed (the policy's outcome
    log loss is the supervised one) unless ``tune_belief``, which adds ``ce_coef`` times its
    cross-entropy on the outcome.

    With ``validation_fraction > 0`` the last rows of ``data`` (pass them in time order) are held
    out: after each update the greedy policy's mean reward there is measured, and the weights
    with the best one are returned, the starting weights (the reference) included, so a
    fine-tuning that does not help out of sample gives the reference back.

    Returns
    -------
    (policy, history)
        ``history`` has one dict of named scalars per update (``val_reward``, and ``selected``
        = 1 on the update whose weights were kept; none when the start was kept).

    Raises
    ------
    ValueError
        When no training rows are left after the validation split (for example an empty
        season filter).
    """
    gen = torch.Generator().manual_seed(seed)
    ref_policy.eval()
    policy.train()
    n_given = len(data)
    data, valid = _split_validation(data, config.validation_fraction)
    _require_rows("fine_tune_ppo", len(data), n_given, config.validation_fraction)
    keeper = _BestOnValidation(policy, valid, config.reward)
    params = _trainable(policy, config.tune_belief)
    optimizer = torch.optim.Adam(params, lr=config.lr, eps=1e-5)
    scale = _reward_scale(policy)
    all_rewards, n_fallback = action_rewards(policy, data, config.reward)
    all_rewards = all_rewards * scale  # (N, A)
    n = len(data)
    rollout_size = min(config.rollout_size, n)
    history: History = []
    for update in range(config.n_updates):
        # 1. rollout: sample fixtures, act with the current policy, collect rewards
        idx = torch.randperm(n, generator=gen)[:rollout_size]  # (R,)
        emb, probs, odds = data.embedding[idx], data.probs[idx], data.odds[idx]
        outcome = data.outcome[idx]  # (R,)
        with torch.no_grad():
            out = policy(emb, probs, odds)
            old_logp_all = F.log_softmax(out.action_logits, dim=1)  # (R, A)
            actions = torch.multinomial(old_logp_all.exp(), 1, generator=gen).squeeze(1)  # (R,)
            old_logp = old_logp_all.gather(1, actions[:, None]).squeeze(1)  # (R,)
            rewards = all_rewards[idx, actions]  # (R,)
            advantages = rewards - out.value  # (R,): single step, so return = reward
            ref_logits = ref_policy(emb, probs, odds).action_logits  # (R, A)

        # 2. optimise the clipped surrogate for several epochs over minibatches
        stats: dict[str, float] = {}
        epochs_run = 0
        for _epoch in range(config.update_epochs):
            perm = torch.randperm(rollout_size, generator=gen)
            for start in range(0, rollout_size, config.minibatch_size):
                mb = perm[start : start + config.minibatch_size]  # (b,)
                adv = advantages[mb]
                if config.normalize_advantages and len(mb) > 1:
                    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                new = policy(emb[mb], probs[mb], odds[mb])
                loss, stats = ppo_loss(
                    new.action_logits,
                    new.value,
                    actions[mb],
                    old_logp[mb],
                    adv,
                    rewards[mb],
                    ref_logits[mb],
                    config,
                )
                ce = F.cross_entropy(new.outcome_logits, outcome[mb])
                if config.tune_belief:
                    loss = loss + config.ce_coef * ce
                policy.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                stats["ce"] = float(ce.detach())
            epochs_run += 1
            if config.target_kl is not None and stats["approx_kl"] > config.target_kl:
                break
        history.append(
            {
                "update": float(update),
                "mean_reward": float(rewards.mean()) / scale,
                "bet_rate": float((policy.action_outcome[actions] >= 0).float().mean()),
                "epochs_run": float(epochs_run),
                **stats,
                "val_reward": keeper.update(policy, update),
                "n_reward_fallback": float(n_fallback),
            }
        )
    keeper.restore(policy, history, "update")
    policy.eval()
    return policy, history


# --------------------------------------------------------------------------------------------
# DPO


class DPOConfig(BaseModel):
    """DPO settings: pairs of stakes from the reference, ranked by realised return."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    beta: float = Field(0.01, gt=0)
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(512, ge=1)
    lr: float = Field(3e-3, gt=0)
    pairs_per_state: int = Field(8, ge=1)
    pair_source: Literal["reference", "uniform"] = "uniform"
    label_temperature: float | None = Field(
        4.0, gt=0, description="soft label sigma((r+ - r-)/tau) in scaled reward units; None: hard"
    )
    tune_belief: bool = Field(False, description="also train the belief layer (then with CE)")
    ce_coef: float = Field(1.0, ge=0, description="weight of the belief's outcome cross-entropy")
    max_grad_norm: float = Field(0.5, gt=0)
    reward: RewardKind = "return"
    validation_fraction: float = Field(
        0.25, ge=0, lt=1, description="last rows held out to select the best epoch; 0: none"
    )


def build_preference_pairs(
    ref_policy: StakingPolicy,
    data: StakingData,
    *,
    pairs_per_state: int,
    pair_source: Literal["reference", "uniform"] = "reference",
    reward: RewardKind = "return",
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Sample two actions per pair and rank them by realised return; ties are dropped.

    Returns
    -------
    (state_index, chosen, rejected, reward_gap)
        Each (P,): the fixture, the preferred and the rejected action, and
        ``r(chosen) - r(rejected) > 0`` in scaled reward units (rewards / largest stake).
    """
    gen = torch.Generator().manual_seed(seed)
    n = len(data)
    with torch.no_grad():
        if pair_source == "reference":
            logits = ref_policy(data.embedding, data.probs, data.odds).action_logits
            sampling = torch.softmax(logits, dim=1)  # (N, A)
        else:
            sampling = torch.full((n, ref_policy.n_actions), 1.0 / ref_policy.n_actions)
    draws = torch.multinomial(sampling, 2 * pairs_per_state, replacement=True, generator=gen)
    a, b = draws[:, :pairs_per_state].reshape(-1), draws[:, pairs_per_state:].reshape(-1)  # (NP,)
    state = torch.arange(n).repeat_interleave(pairs_per_state)  # (NP,)
    rewards = action_rewards(ref_policy, data, reward)[0] * _reward_scale(ref_policy)  # (N, A)
    ra, rb = rewards[state, a], rewards[state, b]  # (NP,)
    keep = ra != rb
    a_wins = ra > rb
    chosen = torch.where(a_wins, a, b)[keep]
    rejected = torch.where(a_wins, b, a)[keep]
    gap = (ra - rb).abs()[keep]
    return state[keep], chosen, rejected, gap


def dpo_loss(
    logp_chosen: Tensor,
    logp_rejected: Tensor,
    ref_logp_chosen: Tensor,
    ref_logp_rejected: Tensor,
    beta: float,
    label: Tensor | float = 1.0,
) -> Tensor:
    """``-mean(q log s(b h) + (1 - q) log s(-b h))``, ``h = (lp(a+) - lr(a+)) - (lp(a-) - lr(a-))``.

    With ``label`` q = 1 this is the DPO loss of Rafailov et al. (2023),
    ``-log sigma(beta [(log pi(a+) - log pi_ref(a+)) - (log pi(a-) - log pi_ref(a-))])``;
    q < 1 is a soft (noisy-label, "conservative") preference.

    Examples
    --------
    >>> zero = torch.zeros(3)
    >>> round(float(dpo_loss(zero, zero, zero, zero, beta=0.1)), 6)  # log 2 when pi = pi_ref
    0.693147
    """
    h = (logp_chosen - ref_logp_chosen) - (logp_rejected - ref_logp_rejected)  # (P,)
    q = torch.as_tensor(label, dtype=h.dtype)
    return -(q * F.logsigmoid(beta * h) + (1.0 - q) * F.logsigmoid(-beta * h)).mean()


def fine_tune_dpo(
    policy: StakingPolicy,
    ref_policy: StakingPolicy,
    data: StakingData,
    config: DPOConfig,
    seed: int,
) -> tuple[StakingPolicy, History]:
    """Fine-tune ``policy`` (in place) with DPO on preference pairs from realised returns.

    Hard labels rank stakes by one realised outcome only, so a bet on a 40% favourite at a
    generous price loses most of its comparisons with "no bet" whatever its expected return. The
    default soft label ``q = sigma((r+ - r-) / tau)`` has ``E[q] ≈ 1/2 + E[r+ - r-] / (4 tau)``
    for small gaps, so the preference the loss sees grows with the expected return difference.
    Pairs come from the training rows only; ``validation_fraction`` selects the best epoch as in
    :func:`fine_tune_ppo`.

    Raises
    ------
    ValueError
        When no training rows are left, or when every sampled pair ties (no preference to learn:
        returning the reference unchanged would look like a fine-tuning that chose not to move).
    """
    gen = torch.Generator().manual_seed(seed)
    n_given = len(data)
    data, valid = _split_validation(data, config.validation_fraction)
    _require_rows("fine_tune_dpo", len(data), n_given, config.validation_fraction)
    keeper = _BestOnValidation(policy, valid, config.reward)
    state, chosen, rejected, gap = build_preference_pairs(
        ref_policy,
        data,
        pairs_per_state=config.pairs_per_state,
        pair_source=config.pair_source,
        reward=config.reward,
        seed=seed,
    )
    if state.shape[0] == 0:  # every sampled pair tied: nothing to learn from
        raise ValueError(
            f"fine_tune_dpo: no preference pairs ({len(data)} training rows, "
            f"{len(data) * config.pairs_per_state} pairs sampled, all tied on reward "
            f"{config.reward!r})"
        )
    if config.label_temperature is None:
        labels = torch.ones_like(gap)
    else:
        labels = torch.sigmoid(gap / config.label_temperature)  # (P,)
    with torch.no_grad():
        ref_logp = F.log_softmax(
            ref_policy(data.embedding, data.probs, data.odds).action_logits, dim=1
        )  # (N, A)
    ref_chosen = ref_logp[state, chosen]  # (P,)
    ref_rejected = ref_logp[state, rejected]  # (P,)
    params = _trainable(policy, config.tune_belief)
    optimizer = torch.optim.Adam(params, lr=config.lr)
    policy.train()
    history: History = []
    n_pairs = int(state.shape[0])
    for epoch in range(config.epochs):
        perm = torch.randperm(n_pairs, generator=gen)
        total, total_ce, correct = 0.0, 0.0, 0.0
        for start in range(0, n_pairs, config.batch_size):
            mb = perm[start : start + config.batch_size]  # (b,)
            s = state[mb]
            out = policy(data.embedding[s], data.probs[s], data.odds[s])
            logp = F.log_softmax(out.action_logits, dim=1)  # (b, A)
            lp_c = logp.gather(1, chosen[mb, None]).squeeze(1)  # (b,)
            lp_r = logp.gather(1, rejected[mb, None]).squeeze(1)  # (b,)
            loss = dpo_loss(lp_c, lp_r, ref_chosen[mb], ref_rejected[mb], config.beta, labels[mb])
            ce = F.cross_entropy(out.outcome_logits, data.outcome[s])
            policy.zero_grad(set_to_none=True)
            (loss + config.ce_coef * ce if config.tune_belief else loss).backward()
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            total += float(loss.detach()) * len(mb)
            total_ce += float(ce.detach()) * len(mb)
            with torch.no_grad():
                margin = (lp_c - ref_chosen[mb]) - (lp_r - ref_rejected[mb])
                correct += float((margin > 0).float().sum())
        history.append(
            {
                "epoch": float(epoch),
                "dpo_loss": total / max(n_pairs, 1),
                "ce": total_ce / max(n_pairs, 1),
                "pair_accuracy": correct / max(n_pairs, 1),
                "n_pairs": float(n_pairs),
                "val_reward": keeper.update(policy, epoch),
            }
        )
    keeper.restore(policy, history, "epoch")
    policy.eval()
    return policy, history


# --------------------------------------------------------------------------------------------
# evaluation


def evaluate_policy(
    policy: StakingPolicy,
    data: StakingData,
    *,
    bankroll_units: float = 100.0,
    greedy: bool = True,
    seed: int = 0,
) -> dict[str, float]:
    """Bet with the policy at the pre-match odds and settle; money in units of the bankroll.

    Same conventions as :func:`marketcast.evaluation.backtest.run_backtest`: a stake fraction f
    is ``f * bankroll_units`` units of a notional, non-compounding bankroll;
    ``roi = profit_units / staked_units``; CLV of a bet is ``odds_taken * p_closing - 1`` with the
    de-margined closing probability, averaged over bets that have a closing price.

    Parameters
    ----------
    greedy
        Take the most likely action (deployment); otherwise sample one (seeded by ``seed``).

    Returns
    -------
    dict
        ``roi, n_bets, profit_units, staked_units, clv, n_bets_without_closing, mean_stake``
        (mean stake fraction per bet), ``n_bets_negative_edge`` (bets the supervised model
        prices below the odds: ``p * odds - 1 < 0``; nothing stops a policy from them, so they
        are counted), ``bet_rate``, ``log_loss`` (the policy's belief) and
        ``supervised_log_loss``. ROI, CLV and mean stake are NaN without bets.
    """
    policy.eval()
    with torch.no_grad():
        out = policy(data.embedding, data.probs, data.odds)
        if greedy:
            action = out.action_logits.argmax(dim=1)  # (N,)
        else:
            gen = torch.Generator().manual_seed(seed)
            probs_a = torch.softmax(out.action_logits, dim=1)
            action = torch.multinomial(probs_a, 1, generator=gen).squeeze(1)
        log_loss = float(F.cross_entropy(out.outcome_logits, data.outcome))
    supervised = data.probs.gather(1, data.outcome[:, None]).squeeze(1).clamp_min(1e-15)
    chosen = policy.action_outcome[action]  # (N,)
    bet = chosen >= 0
    rows = torch.nonzero(bet).squeeze(1)
    o = chosen[rows]
    odds_taken = data.odds[rows, o].double()  # (n_bets,)
    won = data.outcome[rows] == o
    unit_profit = torch.where(won, odds_taken - 1.0, torch.full_like(odds_taken, -1.0))
    stake_units = policy.action_stake_fraction[action[rows]].double() * bankroll_units
    staked = float(stake_units.sum())
    profit = float((stake_units * unit_profit).sum())
    n_bets = len(rows)
    supervised_edge = data.probs[rows, o].double() * odds_taken - 1.0  # (n_bets,)
    clv = float("nan")
    without_closing = n_bets
    if data.closing_probs is not None and n_bets:
        clv_each = odds_taken * data.closing_probs[rows, o].double() - 1.0
        priced = _has_closing(data)[rows]  # (n_bets,): the same rows action_rewards prices
        without_closing = int((~priced).sum())
        if bool(priced.any()):
            clv = float(clv_each[priced].mean())
    return {
        "roi": profit / staked if staked > 0 else float("nan"),
        "n_bets": float(n_bets),
        "profit_units": profit,
        "staked_units": staked,
        "clv": clv,
        "n_bets_without_closing": float(without_closing),
        "n_bets_negative_edge": float((supervised_edge < 0).sum()),
        "mean_stake": staked / bankroll_units / n_bets if n_bets else float("nan"),
        "bet_rate": n_bets / max(len(data), 1),
        "log_loss": log_loss,
        "supervised_log_loss": float(-supervised.log().mean()),
    }
