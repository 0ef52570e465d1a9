"""The neural engine's torch modules: selective scan, masking, causality, experts and heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from marketcast.models.base import training_targets
from marketcast.models.nn.attention import CausalSelfAttention, causal_padding_mask
from marketcast.models.nn.encoder import SequenceEncoder
from marketcast.models.nn.moe import (
    MixtureOfExperts,
    gate_entropy,
    load_balance_loss,
    sparse_gate_weights,
)
from marketcast.models.nn.network import FootballNet, LossWeights, NetConfig, multitask_loss
from marketcast.models.nn.seed import seed_everything
from marketcast.models.nn.ssm import SelectiveSSM, selective_scan


def _naive_scan(delta, A, B, C, x):
    """The recurrence written out as a double sum: y_t = sum_{s<=t} C_t (prod A_bar) B_s x_s."""
    batch, length, d_inner = x.shape
    y = torch.zeros(batch, length, d_inner, dtype=x.dtype)
    for t in range(length):
        for s in range(t + 1):
            decay = torch.exp(delta[:, s + 1 : t + 1].sum(dim=1).unsqueeze(-1) * A)  # (b, d, n)
            contrib = decay * (delta[:, s] * x[:, s]).unsqueeze(-1) * B[:, s].unsqueeze(1)
            y[:, t] += (contrib * C[:, t].unsqueeze(1)).sum(-1)
    return y


def _scan_inputs(dtype=torch.float64, batch=2, length=5, d_inner=3, d_state=2):
    g = torch.Generator().manual_seed(0)
    delta = torch.rand(batch, length, d_inner, generator=g, dtype=dtype) * 0.5 + 0.05
    A = -torch.rand(d_inner, d_state, generator=g, dtype=dtype) - 0.1
    B = torch.randn(batch, length, d_state, generator=g, dtype=dtype)
    C = torch.randn(batch, length, d_state, generator=g, dtype=dtype)
    x = torch.randn(batch, length, d_inner, generator=g, dtype=dtype)
    return delta, A, B, C, x


def test_selective_scan_equals_the_recurrence_written_out() -> None:
    inputs = _scan_inputs()
    torch.testing.assert_close(selective_scan(*inputs), _naive_scan(*inputs))


def test_selective_scan_gradcheck_float64() -> None:
    inputs = tuple(t.clone().requires_grad_(True) for t in _scan_inputs())
    assert torch.autograd.gradcheck(selective_scan, inputs, eps=1e-6, atol=1e-5)


def test_selective_ssm_layer_gradcheck_float64() -> None:
    seed_everything(1)
    layer = SelectiveSSM(3, d_state=2, expand=1, d_conv=2).double()
    u = torch.randn(1, 3, 3, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(1, 3, dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda v: layer(v, valid), (u,), eps=1e-6, atol=1e-5)


def test_ssm_output_ignores_left_padding() -> None:
    seed_everything(2)
    layer = SelectiveSSM(8, d_state=4)
    real = torch.randn(3, 4, 8)
    padded = torch.cat([torch.randn(3, 3, 8), real], dim=1)  # garbage in the 3 padded slots
    valid = torch.cat([torch.zeros(3, 3, dtype=torch.bool), torch.ones(3, 4, dtype=torch.bool)], 1)
    out_padded = layer(padded, valid)
    out_real = layer(real, torch.ones(3, 4, dtype=torch.bool))
    torch.testing.assert_close(out_padded[:, 3:], out_real, atol=1e-6, rtol=1e-5)
    assert torch.count_nonzero(out_padded[:, :3]) == 0


def test_causal_padding_mask_allows_only_earlier_real_positions() -> None:
    mask = causal_padding_mask(torch.tensor([[False, False, True, True]]))[0, 0]
    expected = torch.tensor(
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]], dtype=torch.bool
    )
    assert torch.equal(mask, expected)


def test_attention_real_positions_ignore_padded_keys() -> None:
    seed_everything(3)
    attention = CausalSelfAttention(8, n_heads=2)
    valid = torch.tensor([[False, False, True, True, True]])
    x = torch.randn(1, 5, 8)
    y = x.clone()
    y[:, :2] = torch.randn(1, 2, 8) * 10
    torch.testing.assert_close(attention(x, valid)[:, 2:], attention(y, valid)[:, 2:])


@pytest.mark.parametrize("t", [2, 5])
def test_encoder_is_causal_position_t_never_changes_earlier_outputs(t: int) -> None:
    seed_everything(4)
    encoder = SequenceEncoder(6, window=8, d_model=8, n_layers=2, n_heads=2, d_state=4)
    encoder.eval()
    seq = torch.randn(2, 8, 6)
    valid = torch.ones(2, 8, dtype=torch.bool)
    changed = seq.clone()
    changed[:, t] += 3.0
    before, after = encoder(seq, valid), encoder(changed, valid)
    torch.testing.assert_close(before[:, :t], after[:, :t])
    assert not torch.allclose(before[:, t:], after[:, t:])


def test_encoder_summary_ignores_padding_and_empty_history_gets_learned_vector() -> None:
    seed_everything(5)
    encoder = SequenceEncoder(6, window=6, d_model=8, n_heads=2, d_state=4).eval()
    valid = torch.tensor([[False, False, True, True, True, True], [False] * 6])
    seq = torch.randn(2, 6, 6)
    noisy = seq.clone()
    noisy[0, :2] = 100.0
    noisy[1] = -50.0
    torch.testing.assert_close(encoder.summarise(seq, valid), encoder.summarise(noisy, valid))
    torch.testing.assert_close(encoder.summarise(seq, valid)[1], encoder.no_history)


def test_load_balance_loss_matches_hand_computed_value() -> None:
    alpha = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.1, 0.7, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    routed = torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0.5, 0.5, 0, 0]])
    # load f = (0.5, 0.5, 0, 0), mean gate P = (0.35, 0.35, 0.15, 0.15): 2 * 0.5 * 0.35 = 0.35
    assert float(load_balance_loss(alpha, routed)) == pytest.approx(0.35, abs=1e-7)
    even = torch.full((5, 4), 0.25)
    assert float(load_balance_loss(even, even)) == pytest.approx(0.25)
    collapsed = torch.tensor([[1.0, 0, 0, 0]] * 3)
    assert float(load_balance_loss(collapsed, collapsed)) == pytest.approx(1.0)


def test_load_balance_loss_sees_the_routed_load_not_only_the_gate() -> None:
    """The neural audit of 2026-11-25: a near-uniform gate always in the same order scored the
    old loss's minimum (0.25025 against 0.25) while top-2 sent every row to experts 0 and 1.
    The loss now weighs each expert's gate by the load it gets, and its gradient on the mean
    gate is that load: it lowers the two busy experts and leaves the idle ones to rise."""
    alpha = torch.tensor([[0.26, 0.255, 0.245, 0.24]]).repeat(100, 1).requires_grad_()
    routed = sparse_gate_weights(alpha, 2, 0.1)
    load = [0.26 / 0.515, 0.255 / 0.515, 0.0, 0.0]  # top-2, renormalised
    assert routed.mean(0).tolist() == pytest.approx(load, abs=1e-6)
    loss = load_balance_loss(alpha, routed)
    assert float(loss.detach()) == pytest.approx(load[0] * 0.26 + load[1] * 0.255, abs=1e-6)
    (grad,) = torch.autograd.grad(loss, alpha)
    torch.testing.assert_close(grad.sum(0), routed.mean(0).detach())


def test_gate_entropy_hand_value() -> None:
    alpha = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert float(gate_entropy(alpha)) == pytest.approx(0.5 * torch.log(torch.tensor(2.0)).item())


def test_sparse_gate_keeps_top_k_above_minimum_weight() -> None:
    probs = torch.softmax(torch.randn(64, 4, generator=torch.Generator().manual_seed(0)), -1)
    weights = sparse_gate_weights(probs, top_k=2, min_weight=0.3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(64))
    assert int((weights > 0).sum(-1).max()) <= 2
    positive = weights[weights > 0]
    assert float(positive.min()) >= 0.3
    assert torch.equal(weights.argmax(-1), probs.argmax(-1))


def test_mixture_of_experts_aux_and_gradients_reach_gate_and_experts() -> None:
    seed_everything(6)
    moe = MixtureOfExperts(8, n_experts=4, top_k=2, min_gate_weight=0.1)
    x = torch.randn(16, 8)
    out, aux = moe(x)
    assert out.shape == (16, 8)
    assert aux["gate_probs"].shape == aux["gate_weights"].shape == (16, 4)
    torch.testing.assert_close(
        aux["balance_loss"], load_balance_loss(aux["gate_probs"], aux["gate_weights"])
    )
    (out.sum() + aux["balance_loss"] - aux["gate_entropy"]).backward()
    assert moe.gate.weight.grad is not None
    assert float(moe.gate.weight.grad.abs().sum()) > 0
    assert moe.w1.grad is not None
    assert float(moe.w1.grad.abs().sum()) > 0


def _batch(n: int = 6, window: int = 5, n_seq: int = 7, n_static: int = 4) -> dict:
    g = torch.Generator().manual_seed(1)
    valid = torch.ones(n, window, dtype=torch.bool)
    valid[0, :3] = False
    valid[1] = False
    return {
        "home_seq": torch.randn(n, window, n_seq, generator=g),
        "home_valid": valid,
        "away_seq": torch.randn(n, window, n_seq, generator=g),
        "away_valid": valid.flip(0),
        "static": torch.randn(n, n_static, generator=g),
        "league": torch.tensor([0, 1, 2, 0, 1, 2])[:n],
        "market_1x2": torch.log(torch.tensor([[0.5, 0.3, 0.2]]).repeat(n, 1)),
        "market_ou": torch.log(torch.tensor([[0.55, 0.45]]).repeat(n, 1)),
        "market_ah": torch.log(torch.tensor([[0.5, 0.5]]).repeat(n, 1)),
    }


def test_network_forward_shapes_and_band_brackets_forecast() -> None:
    seed_everything(7)
    config = NetConfig(n_seq_features=7, n_static_features=4, n_leagues=2, window=5, d_model=8)
    net = FootballNet(config).eval()
    batch = _batch()
    with torch.no_grad():
        out = net(batch)
        assert net.encode(batch).shape == (6, 8)
    assert out["logits_1x2"].shape == (6, 3)
    assert out["logits_1x2_members"].shape == (6, config.n_band_heads, 3)
    assert out["logits_ou"].shape == out["logits_ah"].shape == (6, 2)
    assert out["goal_diff"].shape == (6,)
    assert out["aux"]["gate_weights"].shape == (6, config.n_experts)
    assert out["aux"]["balance_loss"].ndim == 0
    p = torch.softmax(out["logits_1x2"], -1)
    assert torch.all(out["band_low"] <= p + 1e-7)
    assert torch.all(out["band_high"] >= p - 1e-7)
    # An untrained head is the market: corrections start near 0.
    market = torch.tensor([0.5, 0.3, 0.2])
    assert float((p - market).abs().max()) < 0.05


def test_multitask_loss_ignores_unsettled_labels_and_uses_bootstrap_weights() -> None:
    seed_everything(8)
    config = NetConfig(n_seq_features=7, n_static_features=4, n_leagues=2, window=5, d_model=8)
    net = FootballNet(config)
    out = net(_batch())
    labels = {
        "1x2": np.array([0, 1, 2, 0, 1, 2]),
        "ou": np.array([0, 1, -1, 0, 1, 0]),
        "ah": np.full(6, -1),
    }
    targets = {
        "goal_diff": torch.tensor([1.0, 0.0, -2.0, 3.0, 0.0, -1.0]),
        "boot": torch.ones(6, config.n_band_heads),
    }
    for market, market_labels in labels.items():
        # results as targets: one-hot rows, unsettled (-1) rows weighted 0
        p, keep, _ = training_targets(market_labels, None, 3 if market == "1x2" else 2)
        targets[f"p_{market}"] = torch.as_tensor(p, dtype=torch.float32)
        targets[f"w_{market}"] = torch.as_tensor(keep, dtype=torch.float32)
    y_1x2 = torch.as_tensor(labels["1x2"])
    loss, parts = multitask_loss(out, targets, LossWeights())
    assert parts["ce_ah"] == 0.0
    assert torch.isfinite(loss)
    members = out["logits_1x2_members"]
    expected = torch.nn.functional.cross_entropy(
        members.reshape(-1, 3), y_1x2.repeat_interleave(config.n_band_heads)
    ).detach()
    assert parts["ce_1x2"] == pytest.approx(float(expected), rel=1e-6)
    targets["boot"] = torch.zeros(6, config.n_band_heads)
    targets["boot"][0] = 1.0
    _, only_first = multitask_loss(out, targets, LossWeights())
    first = torch.nn.functional.cross_entropy(members[0], y_1x2[:1].repeat(5)).detach()
    assert only_first["ce_1x2"] == pytest.approx(float(first), rel=1e-6)
