"""Golden test: the HTML report of a small fixed report dict is stable byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

from marketcast.reports import render_html

GOLDEN_DIR = Path(__file__).parent
INPUT_PATH = GOLDEN_DIR / "small_report_input.json"
EXPECTED_PATH = GOLDEN_DIR / "small_report.html"


def _first_difference(expected: str, actual: str) -> str:
    for line_no, (want, got) in enumerate(
        zip(expected.splitlines(), actual.splitlines(), strict=False), start=1
    ):
        if want != got:
            return f"line {line_no}:\n  expected: {want[:200]!r}\n  actual:   {got[:200]!r}"
    return f"line counts differ: {len(expected.splitlines())} vs {len(actual.splitlines())}"


def test_small_report_html_matches_golden(regen_golden: bool) -> None:
    report = json.loads(INPUT_PATH.read_text(encoding="utf-8"))
    actual = render_html(report).encode("utf-8")
    if regen_golden:
        EXPECTED_PATH.write_bytes(actual)
    expected = EXPECTED_PATH.read_bytes()
    assert actual == expected, (
        "report.html differs from tests/golden/small_report.html (rerun pytest with "
        "--regen-golden and review the diff if the change is intended); first difference at "
        + _first_difference(expected.decode("utf-8"), actual.decode("utf-8"))
    )
