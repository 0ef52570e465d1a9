"""The football network f(x) = head(MoE(fusion(histories, fixture))) and its joint loss."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from marketcast.models.nn.encoder import SequenceEncoder
from marketcast.models.nn.heads import MultiTaskHead
from marketcast.models.nn.moe import MixtureOfExperts

#: Tensors a batch carries (see :meth:`FootballNet.forward`).
BATCH_KEYS = (
    "home_seq",
    "home_valid",
    "away_seq",
    "away_valid",
    "static",
    "league",
    "market_1x2",
    "market_ou",
    "market_ah",
)


@dataclass(frozen=True)
class NetConfig:
    """Shapes and sizes of :class:`FootballNet` (saved as JSON beside the state dict)."""

    n_seq_features: int
    n_static_features: int
    n_leagues: int
    window: int = 10
    d_model: int = 32
    n_layers: int = 1
    n_heads: int = 2
    d_state: int = 4
    expand: int = 1
    d_conv: int = 4
    n_experts: int = 4
    top_k: int = 2
    min_gate_weight: float = 0.1
    n_band_heads: int = 5
    band_z: float = 1.645
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class LossWeights:
    """Weights of the multi-task loss terms (1X2 has weight 1)."""

    ou: float = 0.5
    ah: float = 0.5
    goal_diff: float = 0.05
    balance: float = 0.05
    entropy: float = 0.01


class FootballNet(nn.Module):
    """Two team histories and the fixture's own features -> context -> experts -> heads.

    Shapes (``B`` fixtures, ``W`` window, ``F`` match-state features, ``S`` fixture features)::

        home_seq, away_seq (B, W, F) --shared SequenceEncoder--> e_home, e_away (B, d)
        static (B, S) --Linear--> s (B, d);  league (B,) --Embedding--> l (B, d)
        context = LayerNorm(MLP([e_home, e_away, e_home - e_away, s, l]))      (B, d)
        h = context + MoE(context)                                             (B, d)
        heads(h, market log-probs) -> logits_1x2 (B, 3), logits_ou (B, 2), ...
    """

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        self.encoder = SequenceEncoder(
            config.n_seq_features,
            config.window,
            d,
            n_layers=config.n_layers,
            n_heads=config.n_heads,
            d_state=config.d_state,
            expand=config.expand,
            d_conv=config.d_conv,
            dropout=config.dropout,
        )
        self.static = nn.Linear(config.n_static_features, d)
        # Index n_leagues is "a league not seen in training".
        self.league = nn.Embedding(config.n_leagues + 1, d)
        self.fuse = nn.Sequential(
            nn.Linear(5 * d, 2 * d),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(2 * d, d),
            nn.LayerNorm(d),
        )
        self.moe = MixtureOfExperts(
            d,
            n_experts=config.n_experts,
            top_k=config.top_k,
            min_gate_weight=config.min_gate_weight,
            dropout=config.dropout,
        )
        self.head = MultiTaskHead(d, n_band_heads=config.n_band_heads, band_z=config.band_z)

    def encode(self, batch: dict[str, Tensor]) -> Tensor:
        """Context embedding per fixture, shape (batch, d_model)."""
        n = batch["static"].shape[0]
        seqs = torch.cat([batch["home_seq"], batch["away_seq"]], dim=0)  # (2B, W, F)
        valid = torch.cat([batch["home_valid"], batch["away_valid"]], dim=0)  # (2B, W)
        teams = self.encoder.summarise(seqs, valid)  # (2B, d)
        e_home, e_away = teams[:n], teams[n:]
        parts = [
            e_home,
            e_away,
            e_home - e_away,
            self.static(batch["static"]),
            self.league(batch["league"]),
        ]
        context: Tensor = self.fuse(torch.cat(parts, dim=-1))  # (B, d)
        return context

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """All heads for a batch (keys in :data:`BATCH_KEYS`).

        Returns
        -------
        dict
            ``logits_1x2`` (B, 3), ``logits_1x2_members`` (B, M, 3), ``logits_ou`` (B, 2),
            ``logits_ah`` (B, 2), ``goal_diff`` (B,), ``band_low`` / ``band_high`` (B, 3),
            ``context`` (B, d) and ``aux``: ``gate_probs`` (B, K), ``gate_weights`` (B, K),
            ``balance_loss`` and ``gate_entropy`` (scalars).
        """
        context = self.encode(batch)
        mixed, aux = self.moe(context)
        h = context + mixed  # (B, d)
        out: dict[str, Any] = self.head(
            h, batch["market_1x2"], batch["market_ou"], batch["market_ah"]
        )
        out["context"] = context
        out["aux"] = aux
        return out


#: What :class:`FlatFootballNet` returns, in order: every per-row output of the network (the
#: heads, the context and the router's gates: what ``NeuralModel.predict_outputs`` returns).
FLAT_OUTPUTS = (
    "logits_1x2",
    "logits_1x2_members",
    "logits_ou",
    "logits_ah",
    "goal_diff",
    "band_low",
    "band_high",
    "band_std",
    "context",
    "gate_probs",
    "gate_weights",
)
_GATE_OUTPUTS = ("gate_probs", "gate_weights")


def flat_outputs(out: dict[str, Any]) -> dict[str, Tensor]:
    """:meth:`FootballNet.forward`'s per-row outputs by name, in :data:`FLAT_OUTPUTS` order.

    The router's gates are lifted out of ``aux``; its scalar losses are left behind.
    """
    return {k: out["aux"][k] if k in _GATE_OUTPUTS else out[k] for k in FLAT_OUTPUTS}


class FlatFootballNet(nn.Module):
    """A :class:`FootballNet` with positional tensor inputs and a tuple of outputs.

    Inputs in :data:`BATCH_KEYS` order, outputs in :data:`FLAT_OUTPUTS` order: the signature
    an ONNX export needs (it takes no dicts). Shares the wrapped network's weights.
    """

    def __init__(self, net: FootballNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        if len(tensors) != len(BATCH_KEYS):
            raise ValueError(f"expected {len(BATCH_KEYS)} tensors ({', '.join(BATCH_KEYS)})")
        return tuple(flat_outputs(self.net(dict(zip(BATCH_KEYS, tensors, strict=True)))).values())


def multitask_loss(
    out: dict[str, Any], targets: dict[str, Tensor], weights: LossWeights
) -> tuple[Tensor, dict[str, float]]:
    """The joint training loss and its named parts.

    ``loss = CE_1x2 + w_ou CE_ou + w_ah CE_ah + w_gd Huber(goal diff)
    + w_bal L_balance - w_ent H(gate)``. Each ``CE`` is a cross entropy against target
    probabilities (one-hot results, or soft ones such as the de-margined closing price),
    averaged over rows with their row weights; ``CE_1x2`` averages the ensemble members' cross
    entropies, each row's weight multiplied by that member's bootstrap weight.

    Parameters
    ----------
    out
        :meth:`FootballNet.forward` output.
    targets
        Per market ``m`` in ``1x2``, ``ou``, ``ah``: target probabilities ``p_m`` (B, k) and row
        weights ``w_m`` (B,), 0 for a row the term leaves out (its targets still finite, e.g.
        zeros; `models.base.training_targets` builds both from results or closing prices). Also
        ``goal_diff`` (B,) float and ``boot`` (B, M) bootstrap weights.
    weights
        Term weights.
    """
    members = out["logits_1x2_members"]  # (B, M, 3)
    n_members = members.shape[1]
    p_1x2, w_1x2 = _market_targets(targets, "1x2", members)
    member_weights = targets["boot"] * w_1x2.unsqueeze(1)  # (B, M)
    ce_1x2 = _weighted_ce(
        members.reshape(-1, 3),
        p_1x2.repeat_interleave(n_members, dim=0),
        member_weights.reshape(-1),
    )
    ce_ou = _weighted_ce(out["logits_ou"], *_market_targets(targets, "ou", out["logits_ou"]))
    ce_ah = _weighted_ce(out["logits_ah"], *_market_targets(targets, "ah", out["logits_ah"]))
    huber = F.smooth_l1_loss(out["goal_diff"], targets["goal_diff"])
    aux = out["aux"]
    loss = (
        ce_1x2
        + weights.ou * ce_ou
        + weights.ah * ce_ah
        + weights.goal_diff * huber
        + weights.balance * aux["balance_loss"]
        - weights.entropy * aux["gate_entropy"]
    )
    parts = {
        "ce_1x2": float(ce_1x2.detach()),
        "ce_ou": float(ce_ou.detach()),
        "ce_ah": float(ce_ah.detach()),
        "huber_goal_diff": float(huber.detach()),
        "balance": float(aux["balance_loss"].detach()),
        "gate_entropy": float(aux["gate_entropy"].detach()),
    }
    return loss, parts


def _market_targets(
    targets: dict[str, Tensor], market: str, logits: Tensor
) -> tuple[Tensor, Tensor]:
    """Target probabilities (B, k) and row weights (B,) of ``market``, in ``logits``' dtype."""
    return targets[f"p_{market}"].to(logits.dtype), targets[f"w_{market}"].to(logits.dtype)


def _weighted_ce(logits: Tensor, target_p: Tensor, row_weights: Tensor) -> Tensor:
    """Row-weighted mean cross entropy against target probabilities; zero when no weight."""
    ce = F.cross_entropy(logits, target_p, reduction="none")
    return (row_weights * ce).sum() / row_weights.sum().clamp(min=1e-12)
