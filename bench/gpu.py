"""GPU benchmark: the neural engine on CUDA against the CPU, and 2:4 sparse kernels.

Run on a machine with an NVIDIA GPU: ``PYTHONPATH=src python bench/gpu.py``. Writes
``bench/results/gpu.json``. Not part of ``make bench`` (the project's machines have no GPU).

1. Epoch time of ``NeuralModel`` on the whole bundle (as ``bench/neural.py`` times it): CPU on
   one thread and on every core, CUDA at the default batch of 512 and at 4,096.
2. One fit with early stopping on every match before the evaluation window (the last two
   bundled seasons per league), on CUDA and on the CPU: fit time, and the held-back 1X2 log
   loss divided by the de-margined closing line's, so a faster device is seen to forecast as
   well.
3. 2:4 semi-structured sparsity (``marketcast.training.compress.to_semi_structured``): which
   layers of the default neural network the kernels take, and, for square Linear layers of
   growing width, float16 latency of the 2:4 product against the dense one (ratio > 1: 2:4
   is faster).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from neural import epoch_timing  # bench/neural.py: a script's own folder is on sys.path
from torch import nn

from marketcast.config import FootballRunConfig
from marketcast.evaluation.scoring import log_loss
from marketcast.features.football import build_features, closing_probabilities
from marketcast.models.base import market_labels
from marketcast.models.neural import NeuralModel
from marketcast.orchestration.football import load_data, test_mask_last_seasons, write_json
from marketcast.training.compress import apply_2_4_mask, to_semi_structured
from marketcast.types import MarketKind

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gpu.json"
SEED = 20240817


def held_back_fit(
    X: Any, y: np.ndarray, closing: np.ndarray, mask: np.ndarray, start: Any, params: dict[str, Any]
) -> dict[str, Any]:
    """Fit on every match before ``start``; score 1X2 on ``mask`` against the closing line."""
    train = (X["kickoff_utc"] < start).to_numpy()
    t0 = time.perf_counter()
    model = NeuralModel(**params).fit(X[train], y[train])
    if params.get("device") == "cuda":
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - t0
    p = model.predict_proba(X[mask])
    outcome = market_labels(MarketKind.ONE_X_TWO, X[mask], y[mask])
    priced = np.isfinite(closing[mask]).all(axis=1)
    model_ll = log_loss(outcome[priced], p[priced])
    closing_ll = log_loss(outcome[priced], closing[mask][priced])
    return {
        "fit_s": round(fit_s, 1),
        "train_matches": int(train.sum()),
        "epochs_run": len(model.training_log_),
        "best_epoch": model.best_epoch_,
        "mean_epoch_s": round(float(np.mean([r["seconds"] for r in model.training_log_])), 3),
        "held_back_matches": int(priced.sum()),
        "log_loss_1x2": model_ll,
        "ratio_to_closing_1x2": model_ll / closing_ll,
    }


def _cuda_ms(fn: Any, x: torch.Tensor, repeats: int = 50) -> float:
    """Median milliseconds of ``fn(x)`` on the GPU, timed with CUDA events after a warm-up."""
    with torch.inference_mode():
        for _ in range(10):
            fn(x)
        times = []
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(x)
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    return statistics.median(times)


def sparse_section(
    X: Any, y: np.ndarray, batch_rows: tuple[int, ...], widths: tuple[int, ...]
) -> dict[str, Any]:
    torch.manual_seed(SEED)
    out: dict[str, Any] = {}
    # The default network (its layout fitted on a few thousand rows): which of its layers the
    # 2:4 kernels take.
    model = NeuralModel(random_state=SEED, max_epochs=1).fit(X.iloc[:3000], y[:3000])
    result = to_semi_structured(apply_2_4_mask(model.network_.cpu()))
    out["default_network"] = {"converted": result.converted, "dense": result.dense}
    rows = []
    for width in widths:
        dense = nn.Linear(width, width).eval()
        masked = apply_2_4_mask(dense)
        sparse = to_semi_structured(masked).module
        reference = masked.to("cuda", torch.float16)
        for n in batch_rows:
            x = torch.randn(n, width, device="cuda", dtype=torch.float16)
            dense_ms, sparse_ms = _cuda_ms(reference, x), _cuda_ms(sparse, x)
            with torch.inference_mode():
                error = float((sparse(x) - reference(x)).abs().max())
            rows.append(
                {
                    "width": width,
                    "batch": n,
                    "dense_fp16_ms": round(dense_ms, 4),
                    "sparse_2_4_fp16_ms": round(sparse_ms, 4),
                    "speedup": round(dense_ms / sparse_ms, 3),
                    "max_abs_difference": error,
                }
            )
            print(f"2:4 {rows[-1]}", file=sys.stderr)
    out["linear_sweep"] = rows
    return out


def _median_ms(model: NeuralModel, arrays: dict[str, np.ndarray], repeats: int = 200) -> float:
    for _ in range(10):
        model._outputs(arrays)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        model._outputs(arrays)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def serving_section(X: Any, y: np.ndarray, batch_rows: tuple[int, ...]) -> list[dict[str, Any]]:
    """Milliseconds per network call (inputs built, outputs back as numpy) by runtime."""
    model = NeuralModel(random_state=SEED, device="cuda", max_epochs=2).fit(X, y)
    on_cpu = copy.deepcopy(model)
    on_cpu.device, on_cpu.n_jobs = "cpu", 1
    on_cpu.network_ = on_cpu.network_.to("cpu")
    onnx = copy.deepcopy(model).use_onnx(max_rows=max(batch_rows))
    assert next(onnx.network_.parameters()).is_cuda  # large batches would still run on the GPU
    rows = []
    with torch.inference_mode():
        for n in batch_rows:
            arrays = model._batch_arrays(model._inputs(X.iloc[-n:]))
            gpu = model._outputs(arrays)
            row: dict[str, Any] = {"rows": n}
            runtimes = {"cuda_torch": model, "cpu_torch_1_thread": on_cpu, "cpu_onnxruntime": onnx}
            for name, m in runtimes.items():
                row[f"{name}_ms"] = round(_median_ms(m, arrays), 4)
            got = onnx._outputs(arrays)
            row["onnx_vs_cuda_max_abs_difference"] = float(
                max(np.abs(got[k] - gpu[k]).max() for k in ("logits_1x2", "logits_ou"))
            )
            rows.append(row)
            print(f"serving {row}", file=sys.stderr)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cpu-threads", type=int, default=0, help="0: every core")
    parser.add_argument("--skip-fits", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA device", file=sys.stderr)
        return 2
    cores = args.cpu_threads or torch.get_num_threads()
    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{torch.cuda.get_device_name()}, {cores} CPU threads, Python "
        f"{platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}",
    }
    config = FootballRunConfig()
    data = load_data(config)
    X = build_features(data, demargin_method=config.demargin_method)
    y = data.matches[["home_goals", "away_goals"]].to_numpy()
    runs = {
        "cpu_1_thread": {"device": "cpu", "n_jobs": 1},
        f"cpu_{cores}_threads": {"device": "cpu", "n_jobs": cores},
        "cuda_batch_512": {"device": "cuda"},
        "cuda_batch_4096": {"device": "cuda", "batch_size": 4096},
    }
    results["epoch_timing"] = {}
    for name, params in runs.items():
        timing = epoch_timing(X, y, {"random_state": SEED, **params}, args.epochs)
        results["epoch_timing"][name] = timing
        print(f"epoch {name}: {timing['mean_seconds_per_epoch']:.2f} s", file=sys.stderr)
    if not args.skip_fits:
        mask = test_mask_last_seasons(data.matches, config.walk_forward.last_seasons)
        start = data.matches["kickoff_utc"][mask].min()
        closing, _ = closing_probabilities(
            data, MarketKind.ONE_X_TWO, method=config.demargin_method
        )
        results["held_back_fit"] = {}
        for name, params in {
            "cuda": {"device": "cuda"},
            f"cpu_{cores}_threads": {"device": "cpu", "n_jobs": cores},
        }.items():
            fit = held_back_fit(X, y, closing, mask, start, {"random_state": SEED, **params})
            results["held_back_fit"][name] = fit
            print(f"fit {name}: {fit}", file=sys.stderr)
    results["sparse_2_4"] = sparse_section(X, y, (256, 4096, 32768), (256, 1024, 4096, 8192))
    results["serving_network_ms"] = serving_section(X, y, (1, 8, 32, 64, 128, 256))
    results["total_wall_s"] = round(time.perf_counter() - t_start, 1)
    write_json(RESULTS, results)
    print(f"wrote {RESULTS} in {results['total_wall_s']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
