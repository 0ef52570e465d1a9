"""Multi-task head: market logits plus learned corrections, goal difference and a 1X2 band."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class MultiTaskHead(nn.Module):
    """1X2, over/under 2.5 and Asian-handicap logits, expected goal difference and a 1X2 band.

    Every market's logits are the de-margined pre-match log-probabilities times a learned scale
    (initially 1) plus a learned correction from the context (initially near 0), so an
    untrained head forecasts the market itself and training learns only what the price lacks.
    The learned part (scale - 1) * market + correction is multiplied by the buffer ``shrink``
    (one factor per market, 1 in training), which the estimator fits afterwards.

    The 1X2 correction has ``n_band_heads`` members trained on different bootstrap weights of
    the data (a bootstrapped ensemble, as in Osband et al. 2016); the forecast averages their
    logits and the band is ``p -+ band_z * std`` of their probabilities, clipped to [0, 1].

    Parameters
    ----------
    d_model
        Context width.
    n_band_heads
        Members of the 1X2 correction ensemble (>= 2 for a band).
    band_z
        Band half-width in ensemble standard deviations. Kept in the buffer ``band_z_value``,
        so it travels with the state dict and the ONNX export; ``head.band_z`` reads and sets
        it as a float.
    """

    shrink: Tensor  # buffer (3,)
    band_z_value: Tensor  # buffer (), the band half-width in ensemble standard deviations

    def __init__(self, d_model: int, *, n_band_heads: int = 5, band_z: float = 1.645) -> None:
        super().__init__()
        if n_band_heads < 2:
            raise ValueError(f"n_band_heads={n_band_heads}: a band needs at least 2 members")
        self.n_band_heads = n_band_heads
        self.correction_1x2 = nn.Linear(d_model, 3 * n_band_heads)
        self.correction_ou = nn.Linear(d_model, 2)
        self.correction_ah = nn.Linear(d_model, 2)
        self.goal_diff = nn.Linear(d_model, 1)
        for layer in (self.correction_1x2, self.correction_ou, self.correction_ah):
            nn.init.normal_(layer.weight, std=0.01)  # near 0: start at the market, heads differ
            nn.init.zeros_(layer.bias)
        self.scale_1x2 = nn.Parameter(torch.ones(()))
        self.scale_ou = nn.Parameter(torch.ones(()))
        self.scale_ah = nn.Parameter(torch.ones(()))
        # Post-hoc shrinkage of each market's learned part towards the market (1X2, O/U, AH):
        # 1 while training; the estimator fits it on the validation slice (0 = the market).
        self.register_buffer("shrink", torch.ones(3))
        self.register_buffer("band_z_value", torch.tensor(float(band_z)))

    @property
    def band_z(self) -> float:
        """Band half-width in ensemble standard deviations (the ``band_z_value`` buffer)."""
        return float(self.band_z_value)

    @band_z.setter
    def band_z(self, value: float) -> None:
        with torch.no_grad():
            self.band_z_value.fill_(float(value))  # in place: bumps the buffer's version

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A head pickled before band_z was a buffer holds it as a plain attribute.
        band_z = state.pop("band_z", 1.645)
        super().__setstate__(state)
        if "band_z_value" not in self._buffers:
            self.register_buffer("band_z_value", torch.tensor(float(band_z)))

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # State dicts saved before band_z was a buffer lack it: keep the constructor's value
        # (the saved NetConfig's band_z) instead of failing a strict load.
        key = prefix + "band_z_value"
        if key not in state_dict:
            state_dict[key] = self.band_z_value.detach().clone()
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def forward(
        self, h: Tensor, market_1x2: Tensor, market_ou: Tensor, market_ah: Tensor
    ) -> dict[str, Tensor]:
        """Heads on the context ``h`` (batch, d_model).

        Parameters
        ----------
        market_1x2, market_ou, market_ah
            De-margined pre-match log-probabilities, shapes (batch, 3), (batch, 2), (batch, 2).

        Returns
        -------
        dict
            ``logits_1x2`` (batch, 3), ``logits_1x2_members`` (batch, M, 3), ``logits_ou``
            (batch, 2), ``logits_ah`` (batch, 2), ``goal_diff`` (batch,), ``band_low`` and
            ``band_high`` (batch, 3), and ``band_std`` (batch, 3), the members' spread.
        """
        batch = h.shape[0]
        correction = self.correction_1x2(h).view(batch, self.n_band_heads, 3)  # (batch, M, 3)
        market = market_1x2.unsqueeze(1)  # (batch, 1, 3)
        learned = (self.scale_1x2 - 1.0) * market + correction  # (batch, M, 3)
        members = market + self.shrink[0] * learned  # (batch, M, 3)
        logits_1x2 = members.mean(dim=1)  # (batch, 3)
        learned_ou = (self.scale_ou - 1.0) * market_ou + self.correction_ou(h)
        learned_ah = (self.scale_ah - 1.0) * market_ah + self.correction_ah(h)
        p = F.softmax(logits_1x2, dim=-1)
        probs = F.softmax(members, dim=-1)  # (batch, M, 3)
        deviation = probs - probs.mean(dim=1, keepdim=True)
        spread = (deviation.pow(2).sum(dim=1) / (self.n_band_heads - 1)).clamp_min(1e-12).sqrt()
        return {
            "logits_1x2": logits_1x2,
            "logits_1x2_members": members,
            "logits_ou": market_ou + self.shrink[1] * learned_ou,
            "logits_ah": market_ah + self.shrink[2] * learned_ah,
            "goal_diff": self.goal_diff(h).squeeze(-1),
            "band_low": (p - self.band_z_value * spread).clamp(0.0, 1.0),
            "band_high": (p + self.band_z_value * spread).clamp(0.0, 1.0),
            "band_std": spread,
        }
