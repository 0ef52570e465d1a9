"""Causal multi-head self-attention with a key padding mask for short match histories."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_padding_mask(valid: Tensor) -> Tensor:
    """Boolean attention mask: query ``t`` may see key ``s`` when ``s <= t`` and ``s`` is real.

    Each position may always see itself, so a padded query never has an empty row (its output
    is zeroed by the caller); a real query never sees a padded key.

    Parameters
    ----------
    valid
        Shape (batch, length), True on real positions.

    Returns
    -------
    torch.Tensor
        Shape (batch, 1, length, length), True where attention is allowed.

    Examples
    --------
    >>> causal_padding_mask(torch.tensor([[False, True, True]]))[0, 0].int().tolist()
    [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    """
    length = valid.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=valid.device).tril()
    allowed = causal.unsqueeze(0) & valid.unsqueeze(1)  # (batch, length, length)
    # A float identity compared to 0, not a boolean one: ONNX Runtime has no boolean EyeLike.
    eye = (torch.eye(length, device=valid.device) > 0).unsqueeze(0)
    return (allowed | eye).unsqueeze(1)


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where position ``t`` attends to real positions ``<= t`` only.

    Parameters
    ----------
    d_model
        Width of the residual stream; must divide by ``n_heads``.
    n_heads
        Number of attention heads.
    dropout
        Dropout on the output projection.
    """

    def __init__(self, d_model: int, n_heads: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not a multiple of n_heads={n_heads}")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, valid: Tensor) -> Tensor:
        """Attend causally; ``x`` (batch, length, d_model) -> same shape, zero on padding."""
        batch, length, d_model = x.shape
        head_dim = d_model // self.n_heads
        qkv = self.qkv(x).view(batch, length, 3, self.n_heads, head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, length, head_dim)
        mask = causal_padding_mask(valid)  # (batch, 1, length, length)
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        att = att.transpose(1, 2).reshape(batch, length, d_model)
        out: Tensor = self.dropout(self.out(att))
        return out * valid.unsqueeze(-1).to(x.dtype)
