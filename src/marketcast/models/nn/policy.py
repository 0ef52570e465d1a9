"""Staking policy: a categorical choice between no bet and a stake fraction on one outcome."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_STAKE_FRACTIONS", "PolicyOutput", "StakingPolicy"]

#: Stake grid (fractions of the bankroll) of the default action space.
DEFAULT_STAKE_FRACTIONS: tuple[float, ...] = (0.005, 0.01, 0.02)


class PolicyOutput(NamedTuple):
    """What :meth:`StakingPolicy.forward` returns for a batch of B fixtures."""

    action_logits: Tensor  # (B, A): A = 1 + n_outcomes * n_stakes, action 0 = no bet
    value: Tensor  # (B,): the critic's estimate of the (scaled) reward
    outcome_logits: Tensor  # (B, K): the policy's own belief about the outcome


def _init_linear(layer: nn.Linear, gain: float) -> nn.Linear:
    """Orthogonal weights and zero bias (the PPO implementation details of Huang et al., 2022)."""
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class StakingPolicy(nn.Module):
    """Actor-critic over the action set {no bet} ∪ {(outcome o, stake fraction f)}.

    The state of a fixture is its context embedding ``(B, d)`` (any encoder's, standardised with
    :meth:`set_embedding_scaling`), the supervised probabilities ``(B, K)`` and the pre-match
    decimal odds ``(B, K)``. From the odds the module derives the bookmaker's normalised implied
    probabilities, the overround and the edges ``p * odds - 1``.

    A *belief* layer adds a correction, initialised to zero, to the supervised log-probabilities:
    ``outcome_logits = log p + W [z, log p, implied]``; at initialisation the belief is the
    supervised forecast. The actor reads the edges under that belief, so when fine-tuning is
    allowed to move it (``tune_belief``) the policy gradient reaches it, and its outcome log loss
    is reported beside ROI.

    Parameters
    ----------
    embedding_dim
        Width d of the context embedding (0 for none).
    n_outcomes
        K, the number of outcomes of the market (3 for 1X2).
    stake_fractions
        The stake grid, fractions of the bankroll, all in (0, 1).
    hidden_dim
        Width of the actor's and the critic's hidden layers.

    Examples
    --------
    >>> policy = StakingPolicy(embedding_dim=4)
    >>> policy.n_actions, policy.action_outcome.tolist()
    (10, [-1, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    >>> out = policy(torch.zeros(2, 4), torch.full((2, 3), 1 / 3), torch.full((2, 3), 2.8))
    >>> tuple(out.action_logits.shape), tuple(out.value.shape), tuple(out.outcome_logits.shape)
    ((2, 10), (2,), (2, 3))
    """

    action_outcome: Tensor
    action_stake_fraction: Tensor
    embedding_mean: Tensor
    embedding_std: Tensor

    def __init__(
        self,
        embedding_dim: int,
        *,
        n_outcomes: int = 3,
        stake_fractions: Sequence[float] = DEFAULT_STAKE_FRACTIONS,
        hidden_dim: int = 64,
    ) -> None:
        super().__init__()
        if embedding_dim < 0 or n_outcomes < 2 or hidden_dim < 1:
            raise ValueError("need embedding_dim >= 0, n_outcomes >= 2 and hidden_dim >= 1")
        fractions = [float(f) for f in stake_fractions]
        if not fractions or any(not 0.0 < f < 1.0 for f in fractions):
            raise ValueError(f"stake_fractions must be a non-empty grid in (0, 1), got {fractions}")
        self.embedding_dim = embedding_dim
        self.n_outcomes = n_outcomes
        self.stake_fractions = tuple(fractions)
        outcome = [-1] + [o for o in range(n_outcomes) for _ in fractions]
        stake = [0.0] + [f for _ in range(n_outcomes) for f in fractions]
        self.register_buffer("action_outcome", torch.tensor(outcome, dtype=torch.long))  # (A,)
        self.register_buffer("action_stake_fraction", torch.tensor(stake))  # (A,)
        self.register_buffer("embedding_mean", torch.zeros(embedding_dim))  # (d,)
        self.register_buffer("embedding_std", torch.ones(embedding_dim))  # (d,)

        k = n_outcomes
        self.belief = nn.Linear(embedding_dim + 2 * k, k)
        nn.init.zeros_(self.belief.weight)
        nn.init.zeros_(self.belief.bias)
        state_dim = embedding_dim + 3 * k + 1  # z, belief, implied, edge, overround
        self.actor = nn.Sequential(
            _init_linear(nn.Linear(state_dim, hidden_dim), 2**0.5),
            nn.Tanh(),
            _init_linear(nn.Linear(hidden_dim, hidden_dim), 2**0.5),
            nn.Tanh(),
            _init_linear(nn.Linear(hidden_dim, self.n_actions), 0.01),
        )
        self.critic = nn.Sequential(
            _init_linear(nn.Linear(state_dim, hidden_dim), 2**0.5),
            nn.Tanh(),
            _init_linear(nn.Linear(hidden_dim, 1), 1.0),
        )

    @property
    def n_actions(self) -> int:
        """A = 1 + n_outcomes * len(stake_fractions)."""
        return 1 + self.n_outcomes * len(self.stake_fractions)

    @torch.no_grad()
    def set_embedding_scaling(self, embedding: Tensor) -> None:
        """Standardise embeddings with the mean and standard deviation of ``embedding (N, d)``."""
        if embedding.ndim != 2 or embedding.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embedding must have shape (N, {self.embedding_dim}), got {tuple(embedding.shape)}"
            )
        self.embedding_mean.copy_(embedding.mean(dim=0))
        self.embedding_std.copy_(embedding.std(dim=0, unbiased=False).clamp_min(1e-6))

    def forward(self, embedding: Tensor, probs: Tensor, odds: Tensor) -> PolicyOutput:
        """Action logits, value and belief for a batch.

        Parameters
        ----------
        embedding
            Context embeddings, shape (B, d).
        probs
            Supervised outcome probabilities, shape (B, K), rows summing to 1.
        odds
            Pre-match decimal odds the stake would be placed at, shape (B, K), all > 1.
        """
        z = (embedding - self.embedding_mean) / self.embedding_std  # (B, d)
        log_p = torch.log(probs.clamp_min(1e-6))  # (B, K)
        inverse_odds = 1.0 / odds  # (B, K)
        booksum = inverse_odds.sum(dim=1, keepdim=True)  # (B, 1)
        implied = inverse_odds / booksum  # (B, K), multiplicative de-margining
        outcome_logits = log_p + self.belief(torch.cat([z, log_p, implied], dim=1))  # (B, K)
        belief = torch.softmax(outcome_logits, dim=1)  # (B, K)
        edge = belief * odds - 1.0  # (B, K), expected profit of a unit stake under the belief
        state = torch.cat([z, belief, implied, edge, booksum - 1.0], dim=1)  # (B, d + 3K + 1)
        action_logits = self.actor(state)  # (B, A)
        value = self.critic(state).squeeze(1)  # (B,)
        return PolicyOutput(action_logits, value, outcome_logits)
