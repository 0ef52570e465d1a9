"""A cloud-path forecast in process on a GPU machine: the network in torch on CUDA or onnxruntime.

Run where torch sees a GPU, after ``make run`` (or with a copy of its ``registry/``):
``PYTHONPATH=src python bench/gpu_cloud_path.py``. Writes ``bench/results/gpu_cloud_path.json``.
Not part of ``make bench`` (the project's machines have no GPU).

The service loads the registry's 1X2 ensemble as ``marketcast serve`` does; the network lands on
the GPU. With ``neural_runtime="torch"`` it answers on the GPU; with ``"onnx"`` (the default) a
fixture's rows go through onnxruntime on a CPU copy of it (``NeuralModel.use_onnx``). Every
forecast is forced onto the cloud path (``edge_threshold=1.01``): all five members, the band and
the Dixon-Coles goal difference. Each runtime is loaded twice, alternately, and timed over 1,000
forecasts of one fixture after 100 warm-up ones.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from marketcast.orchestration.football import write_json
from marketcast.registry import Registry
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService, ServiceSettings

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "gpu_cloud_path.json"
FIXTURE = {
    "league": "E0",
    "home": "Arsenal",
    "away": "Chelsea",
    "kickoff": "2023-08-12T14:00:00Z",
    "odds": {"1x2": {"home": 1.8, "draw": 3.9, "away": 4.5}},
}


def time_runtime(
    registry: Registry, runtime: str, fixture: FixtureIn, repeats: int = 1000
) -> dict[str, Any]:
    """Load the registry's champions with the network in ``runtime``; time ``repeats`` forecasts."""
    service = ChampionService(
        registry, ServiceSettings(edge_threshold=1.01, neural_runtime=runtime)
    )
    service.reload()
    [neural] = [m for m in service.snapshot().members["1x2"] if m.name == "neural"]
    for _ in range(100):
        service.forecast([fixture])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        [out] = service.forecast([fixture])
        times.append((time.perf_counter() - t0) * 1e3)
    return {
        "network_device": str(next(neural.model.network_.parameters()).device),
        "onnxruntime_session": getattr(neural.model, "onnx_session_", None) is not None,
        "path": out.path,
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        "p_home": out.probabilities["home"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registry", default=str(ROOT / "registry"))
    args = parser.parse_args()
    fixture = FixtureIn.model_validate(FIXTURE)
    registry = Registry(args.registry)
    runs = [time_runtime(registry, rt, fixture) | {"runtime": rt} for rt in ("torch", "onnx") * 2]
    for run in runs:
        print(run)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}, "
        f"Python {platform.python_version()}, torch {torch.__version__}",
        "runs": runs,
    }
    write_json(RESULTS, results)
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
