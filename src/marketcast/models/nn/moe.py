"""Mixture of experts: a softmax gate, top-k routing with a minimum weight, balance and entropy."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def load_balance_loss(gate_probs: Tensor, gate_weights: Tensor) -> Tensor:
    """``L_balance = sum_k f_k P_k``: each expert's routed load ``f_k = mean_i w_ik`` (the
    weights after top-k and the minimum weight, held constant) times its mean softmax weight
    ``P_k = mean_i alpha_ik`` (Switch Transformer's loss, Fedus et al. 2021, divided by K).

    It is ``1 / K`` when the load and the gate are even and 1 when one expert takes every
    example. The gradient, ``f_k`` on ``P_k``, lowers the gate of the experts that do the most
    work. The loss used to be ``sum_k P_k^2``, the full softmax alone: a gate that was near
    uniform but always in the same order scored its minimum while top-2 sent every example to
    the same two experts (the neural audit of 2026-11-25).

    Parameters
    ----------
    gate_probs
        Softmax gate weights ``alpha``, shape (batch, n_experts).
    gate_weights
        Routed weights ``w`` (:func:`sparse_gate_weights`), shape (batch, n_experts).

    Examples
    --------
    >>> alpha = torch.tensor([[0.6, 0.4], [0.4, 0.6]])
    >>> float(load_balance_loss(alpha, sparse_gate_weights(alpha, 1, 0.0)))
    0.5
    >>> near_uniform = torch.tensor([[0.26, 0.255, 0.245, 0.24]])
    >>> round(float(load_balance_loss(near_uniform, sparse_gate_weights(near_uniform, 2, 0.1))), 4)
    0.2575
    """
    load = gate_weights.detach().mean(dim=0)
    return (load * gate_probs.mean(dim=0)).sum()


def gate_entropy(gate_probs: Tensor, eps: float = 1e-9) -> Tensor:
    """Mean over the batch of each example's gate entropy ``-sum_k alpha_ik log alpha_ik`` (nats).

    Examples
    --------
    >>> round(float(gate_entropy(torch.full((3, 4), 0.25))), 6)  # log 4
    1.386294
    """
    return -(gate_probs * torch.log(gate_probs + eps)).sum(dim=-1).mean()


def sparse_gate_weights(gate_probs: Tensor, top_k: int, min_weight: float) -> Tensor:
    """Keep the ``top_k`` largest gate weights, renormalise, drop those under ``min_weight``.

    The largest weight is always kept; the survivors are renormalised to sum to 1.

    Parameters
    ----------
    gate_probs
        Shape (batch, n_experts), rows summing to 1.
    top_k
        How many experts an example may use.
    min_weight
        A routed expert whose renormalised weight falls below this is dropped.

    Returns
    -------
    torch.Tensor
        Shape (batch, n_experts), at most ``top_k`` non-zero entries per row, rows sum to 1.

    Examples
    --------
    >>> sparse_gate_weights(torch.tensor([[0.5, 0.3, 0.15, 0.05]]), 2, 0.1).tolist()
    [[0.625, 0.375, 0.0, 0.0]]
    >>> sparse_gate_weights(torch.tensor([[0.9, 0.05, 0.03, 0.02]]), 2, 0.1).tolist()
    [[1.0, 0.0, 0.0, 0.0]]
    """
    top_vals, top_idx = gate_probs.topk(top_k, dim=-1)  # (batch, top_k), sorted descending
    top_vals = top_vals / top_vals.sum(dim=-1, keepdim=True)
    keep = top_vals >= min_weight
    keep[:, 0] = True
    top_vals = top_vals * keep.to(top_vals.dtype)
    top_vals = top_vals / top_vals.sum(dim=-1, keepdim=True)
    return torch.zeros_like(gate_probs).scatter(-1, top_idx, top_vals)


class MixtureOfExperts(nn.Module):
    """``K`` two-layer MLP experts mixed by a sparse softmax gate; the experts run densely.

    With ``K = 4`` tiny experts, computing all of them as one batched matrix product is cheaper
    on a CPU than gathering the routed examples per expert; the unrouted experts get weight 0,
    so the result equals sparse routing.

    Parameters
    ----------
    d_model
        Input and output width.
    n_experts
        ``K``.
    top_k
        Experts used per example.
    min_gate_weight
        Smallest renormalised weight a routed expert keeps (see :func:`sparse_gate_weights`).
    hidden_mult
        Expert hidden width is ``hidden_mult * d_model``.
    dropout
        Dropout inside each expert.
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_experts: int = 4,
        top_k: int = 2,
        min_gate_weight: float = 0.1,
        hidden_mult: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 1 <= top_k <= n_experts:
            raise ValueError(f"top_k={top_k} must be in [1, n_experts={n_experts}]")
        self.n_experts = n_experts
        self.top_k = top_k
        self.min_gate_weight = min_gate_weight
        hidden = hidden_mult * d_model
        self.gate = nn.Linear(d_model, n_experts)
        self.w1 = nn.Parameter(torch.empty(n_experts, d_model, hidden))
        self.b1 = nn.Parameter(torch.zeros(n_experts, hidden))
        self.w2 = nn.Parameter(torch.empty(n_experts, hidden, d_model))
        self.b2 = nn.Parameter(torch.zeros(n_experts, d_model))
        for k in range(n_experts):
            nn.init.kaiming_uniform_(self.w1.data[k].T, a=math.sqrt(5))
            nn.init.kaiming_uniform_(self.w2.data[k].T, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Mix the experts for ``x`` (batch, d_model).

        Returns
        -------
        (output, aux)
            ``output`` (batch, d_model); ``aux`` holds ``gate_probs`` (batch, K) (the full
            softmax), ``gate_weights`` (batch, K) (after top-k and the minimum weight),
            ``balance_loss`` and ``gate_entropy`` (scalars).
        """
        gate_probs = F.softmax(self.gate(x), dim=-1)  # (batch, K)
        weights = sparse_gate_weights(gate_probs, self.top_k, self.min_gate_weight)
        hidden = F.gelu(torch.einsum("bd,kdh->bkh", x, self.w1) + self.b1)  # (batch, K, hidden)
        experts = torch.einsum("bkh,khd->bkd", self.dropout(hidden), self.w2) + self.b2
        output = torch.einsum("bk,bkd->bd", weights, experts)  # (batch, d_model)
        aux = {
            "gate_probs": gate_probs,
            "gate_weights": weights,
            "balance_loss": load_balance_loss(gate_probs, weights),
            "gate_entropy": gate_entropy(gate_probs),
        }
        return output, aux
