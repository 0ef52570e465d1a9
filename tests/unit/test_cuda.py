"""The CUDA paths of the neural engine and of 2:4 compression (``-m gpu``, needs a GPU).

CI has no GPU, so these are deselected there (``-m 'not gpu'`` in pytest's options) and skip
where CUDA is absent; run them on a GPU machine with ``pytest -m gpu tests/unit/test_cuda.py``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from torch.sparse import SparseSemiStructuredTensor

from marketcast.models.factory import load_model
from marketcast.models.neural import ONNX_MAX_ROWS_GPU, NeuralModel
from marketcast.models.nn.ssm import selective_scan
from marketcast.training.compress import (
    OnnxSession,
    apply_2_4_mask,
    export_football_net_onnx,
    linear_layers,
    to_semi_structured,
)
from marketcast.types import MarketKind
from tests.unit.test_neural_model import TINY, _torch_ran

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

CUDA_TINY = {**TINY, "device": "cuda"}


@pytest.fixture(scope="module")
def fitted_cuda(split) -> NeuralModel:
    X_train, y_train, _ = split
    return NeuralModel(random_state=3, **CUDA_TINY).fit(X_train, y_train)


def test_neural_model_trains_on_the_gpu(fitted_cuda, split) -> None:
    _, _, X_test = split
    assert all(p.is_cuda for p in fitted_cuda.network_.parameters())
    assert len(fitted_cuda.training_log_) >= 1
    assert all(np.isfinite(r["ce_1x2"]) for r in fitted_cuda.training_log_)
    for market in MarketKind:
        p = fitted_cuda.predict_market_proba(X_test, market)
        assert p is not None
        assert np.all(p > 0)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)


def test_gpu_and_cpu_give_the_same_forecast_from_the_same_weights(fitted_cuda, split) -> None:
    _, _, X_test = split
    on_cpu = copy.deepcopy(fitted_cuda)
    on_cpu.device = "cpu"
    on_cpu.network_ = on_cpu.network_.to("cpu")
    gpu, cpu = fitted_cuda.predict_outputs(X_test), on_cpu.predict_outputs(X_test)
    for key in ("logits_1x2", "logits_ou", "logits_ah", "band_low", "band_high", "gate_weights"):
        np.testing.assert_allclose(gpu[key], cpu[key], atol=1e-4, err_msg=key)


def test_gpu_artifact_serves_from_a_machine_without_a_gpu(fitted_cuda, split, monkeypatch) -> None:
    _, _, X_test = split
    files = fitted_cuda.to_artifact()
    expected = fitted_cuda.predict_proba(X_test)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rebuilt = load_model("neural", files)
    assert next(rebuilt.network_.parameters()).device.type == "cpu"
    np.testing.assert_allclose(rebuilt.predict_proba(X_test), expected, atol=1e-5)


def test_gpu_network_exports_to_onnx(fitted_cuda, split, tmp_path) -> None:
    _, _, X_test = split
    path = export_football_net_onnx(
        fitted_cuda.network_, fitted_cuda.make_batch(X_test.iloc[:2]), tmp_path / "n.onnx"
    )
    got = OnnxSession(path).run(fitted_cuda.make_batch(X_test))  # onnxruntime on the CPU
    expected = fitted_cuda.predict_outputs(X_test)
    for key in ("logits_1x2", "logits_ou", "logits_ah", "band_low", "band_high"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-4, err_msg=key)


def test_gpu_model_serves_small_batches_through_onnxruntime_on_the_cpu(fitted_cuda, split) -> None:
    _, _, X_test = split
    n = ONNX_MAX_ROWS_GPU  # a GPU model's default cut-off
    expected = fitted_cuda.predict_outputs(X_test)
    served = copy.deepcopy(fitted_cuda).use_onnx()
    assert all(p.is_cuda for p in served.network_.parameters())  # the GPU keeps large batches
    got = served.predict_outputs(X_test.iloc[:n])
    for key in ("logits_1x2", "logits_ou", "logits_ah", "band_low", "band_high", "gate_weights"):
        np.testing.assert_allclose(got[key], expected[key][:n], atol=1e-4, err_msg=key)
    np.testing.assert_allclose(served.predict_outputs(X_test)["logits_1x2"], expected["logits_1x2"])
    served.network_.forward = _torch_ran  # up to the cut-off torch never runs (the network
    # itself stays: a new one would make the session export it again)
    served.predict_market_rows(X_test.iloc[:n].to_dict("records"), MarketKind.ONE_X_TWO)
    with pytest.raises(RuntimeError, match="torch ran"):
        served.predict_outputs(X_test.iloc[: n + 1])


def test_deterministic_gpu_fits_repeat_exactly(split) -> None:
    X_train, y_train, X_test = split
    try:
        first, second = (
            NeuralModel(random_state=7, deterministic=True, **CUDA_TINY)
            .fit(X_train, y_train)
            .predict_proba(X_test)
            for _ in range(2)
        )
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    np.testing.assert_array_equal(first, second)


def test_selective_scan_matches_the_cpu_forward_and_backward() -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = {"delta": (4, 16, 8), "A": (8, 4), "B": (4, 16, 4), "C": (4, 16, 4), "x": (4, 16, 8)}
    inputs = {k: torch.randn(*s, generator=gen) for k, s in shapes.items()}
    inputs["delta"] = inputs["delta"].abs() * 0.1
    inputs["A"] = -inputs["A"].abs()
    results = {}
    for device in ("cpu", "cuda"):
        leaves = {k: v.to(device).detach().requires_grad_() for k, v in inputs.items()}
        y = selective_scan(**leaves)
        y.square().sum().backward()
        results[device] = (y.detach().cpu(), {k: v.grad.cpu() for k, v in leaves.items()})
    torch.testing.assert_close(results["cuda"][0], results["cpu"][0], atol=1e-5, rtol=1e-4)
    for key, grad in results["cpu"][1].items():
        torch.testing.assert_close(results["cuda"][1][key], grad, atol=1e-4, rtol=1e-4)


def test_2_4_kernels_multiply_like_the_masked_dense_weights() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 128), nn.Linear(128, 3))
    masked = apply_2_4_mask(net.eval())
    result = to_semi_structured(masked)
    # The 3-output head is below the kernels' smallest block: it stays dense, with the reason.
    assert result.converted == ["0", "2"]
    assert list(result.dense) == ["3"]
    for name, layer in linear_layers(result.module):
        assert isinstance(layer.weight, SparseSemiStructuredTensor) == (name in result.converted)
    x = torch.randn(64, 128, device="cuda", dtype=torch.float16)
    reference = masked.to("cuda", torch.float16)
    with torch.inference_mode():
        torch.testing.assert_close(result.module(x), reference(x), atol=2e-2, rtol=1e-2)
