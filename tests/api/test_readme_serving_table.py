"""The README's serving table, copied by hand, says what the committed bench results say.

No bench script writes that block (four separate `bench/serving.py` runs feed it), and hand
copies drifted from the files in other docs; this test reads every row back from its JSON.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"

# README row label -> the results file its phases come from
RUNS = {
    "2 workers, 500/s": "serving.json",
    "1 worker, 300/s": "serving_1worker_300rps.json",
    "2 workers, cloud path only": "serving_cloud_path.json",
    "same, network in torch (`MARKETCAST_NEURAL_RUNTIME=torch`)": "serving_cloud_path_torch.json",
}


def _table_rows() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(
        r"<!-- bench:serving:start -->(.*?)<!-- bench:serving:end -->", readme, re.DOTALL
    )
    assert block is not None, "README has no serving block"
    lines = [line for line in block.group(1).splitlines() if line.startswith("| ")]
    header, _rule, *rows = lines
    assert header.startswith("| run | phase | rate/s | requests | errors |")
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def _expected(phase: dict[str, Any]) -> list[str]:
    latency = phase["latency"]
    paths = ", ".join(f"{path} {100 * share:.0f}%" for path, share in phase["path_share"].items())
    return [
        f"{phase['target_rate_per_s']:.0f}",
        str(phase["requests"]),
        str(phase["errors"]),
        f"{phase['throughput_per_s']:.0f}",
        f"{latency['p50_ms']:.1f}",
        f"{latency['p99_ms']:.1f}",
        f"{latency['max_ms']:.0f}",
        f"{100 * phase['cache_hit_share']:.0f}%",
        paths,
        "all" if phase["all_name_a_version"] else "not all",
    ]


def test_every_committed_serving_phase_has_a_row() -> None:
    shown = {(row[0], row[1]) for row in _table_rows()}
    for label, name in RUNS.items():
        phases = json.loads((RESULTS / name).read_text(encoding="utf-8"))["phases"]
        for phase in phases:
            assert (label, phase) in shown, f"{name} phase {phase!r} missing from the README"


@pytest.mark.parametrize("row", _table_rows(), ids=lambda row: f"{row[0]}-{row[1]}")
def test_readme_serving_row_is_its_json(row: list[str]) -> None:
    label, phase_name, *cells = row
    results = json.loads((RESULTS / RUNS[label]).read_text(encoding="utf-8"))
    assert cells == _expected(results["phases"][phase_name])
