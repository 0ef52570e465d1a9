"""Sequence encoder over a team's recent matches: selective SSM fused with causal attention."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from marketcast.models.nn.attention import CausalSelfAttention
from marketcast.models.nn.ssm import SelectiveSSM


class HybridBlock(nn.Module):
    """Pre-norm residual block: selective SSM, then causal self-attention, then an MLP.

    The SSM carries a decaying summary of the whole history in order; attention lets each
    match look back directly at any earlier one (a cup upset three games ago).
    """

    def __init__(
        self,
        d_model: int,
        *,
        n_heads: int = 2,
        d_state: int = 8,
        expand: int = 2,
        d_conv: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm_ssm = nn.LayerNorm(d_model)
        self.ssm = SelectiveSSM(d_model, d_state=d_state, expand=expand, d_conv=d_conv)
        self.norm_att = nn.LayerNorm(d_model)
        self.attention = CausalSelfAttention(d_model, n_heads, dropout)
        self.norm_mlp = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, 2 * d_model),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(2 * d_model, d_model),
        )

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """``x`` (batch, length, d_model), ``valid`` (batch, length) -> same shape as ``x``."""
        mask = valid.unsqueeze(-1).to(x.dtype)
        x = x + self.ssm(self.norm_ssm(x), valid)
        x = x + self.attention(self.norm_att(x), valid)
        x = x + self.mlp(self.norm_mlp(x))
        return x * mask  # padded positions stay exactly zero


class SequenceEncoder(nn.Module):
    """Embed a left-padded sequence of match states and summarise it as one vector.

    Parameters
    ----------
    n_features
        Features per match state.
    window
        Sequence length ``W`` (the last ``W`` matches, oldest first, padding on the left).
    d_model
        Embedding width.
    n_layers
        Hybrid blocks.
    """

    def __init__(
        self,
        n_features: int,
        window: int,
        d_model: int,
        *,
        n_layers: int = 1,
        n_heads: int = 2,
        d_state: int = 8,
        expand: int = 2,
        d_conv: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.input = nn.Linear(n_features, d_model)
        # Position t in the window is always "the (W - t)-th most recent match".
        self.position = nn.Parameter(torch.zeros(window, d_model))
        self.blocks = nn.ModuleList(
            HybridBlock(
                d_model,
                n_heads=n_heads,
                d_state=d_state,
                expand=expand,
                d_conv=d_conv,
                dropout=dropout,
            )
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.pool = nn.Linear(2 * d_model, d_model)
        self.no_history = nn.Parameter(torch.zeros(d_model))

    def forward(self, seq: Tensor, valid: Tensor) -> Tensor:
        """Per-position states, shape (batch, length, d_model), zero on padding."""
        mask = valid.unsqueeze(-1).to(seq.dtype)
        x = (self.input(seq) + self.position) * mask  # (batch, W, d_model)
        for block in self.blocks:
            x = block(x, valid)
        return x

    def summarise(self, seq: Tensor, valid: Tensor) -> Tensor:
        """One vector per sequence, shape (batch, d_model).

        The most recent position (which has seen the whole history through the scan and
        attention) joined with the mean over real positions; a team with no history gets a
        learned vector.
        """
        x = self.forward(seq, valid)  # (batch, W, d_model)
        mask = valid.unsqueeze(-1).to(x.dtype)
        n_real = mask.sum(dim=1)  # (batch, 1)
        mean = x.sum(dim=1) / n_real.clamp(min=1.0)
        pooled = self.pool(torch.cat([x[:, -1], mean], dim=-1))  # (batch, d_model)
        pooled = self.norm(pooled)
        has_history = (n_real > 0).to(x.dtype)
        return has_history * pooled + (1.0 - has_history) * self.no_history
