"""Any part of a report may be null (docs/reports.md): the page leaves it out or says so."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from marketcast.reports import render_html
from tests.golden.test_html_report_golden import INPUT_PATH

Path_ = tuple[str, ...]
#: Top-level sections drawn as plots (about 0.1 s each): a check renders only the branch of
#: them that it edits, so that one render per path stays fast.
PLOTTED = ("per_league", "reliability", "profit_curves")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return json.loads(INPUT_PATH.read_text(encoding="utf-8"))


def _leaf_paths(node: Any, path: Path_ = ()) -> Iterator[Path_]:
    """Every key path to a value that is not a non-empty object (numbers, text, lists...)."""
    for key, value in node.items():
        if isinstance(value, dict) and value:
            yield from _leaf_paths(value, (*path, key))
        else:
            yield (*path, key)


def _set(report: dict[str, Any], path: Path_, value: Any) -> dict[str, Any]:
    edited = copy.deepcopy(report)
    node = edited
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return edited


def _delete(report: dict[str, Any], path: Path_) -> dict[str, Any]:
    edited = copy.deepcopy(report)
    node = edited
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return edited


def _around(report: dict[str, Any], path: Path_) -> dict[str, Any]:
    """``report`` without its plotted sections, except the market (and league) ``path`` is in."""
    out = {key: value for key, value in report.items() if key not in PLOTTED}
    section = path[0]
    if section in PLOTTED and len(path) > 1:
        branch = report[section][path[1]]
        if section == "per_league" and len(path) > 2 and isinstance(branch, dict):
            branch = {path[2]: branch[path[2]]}  # one league, one market: one bar chart
        out[section] = {path[1]: branch}
    elif section in PLOTTED:
        out[section] = report[section]
    return out


@pytest.mark.parametrize(
    "path",
    [
        # AttributeError: 'NoneType' object has no attribute 'get' (plots.py, profit curves)
        ("profit_curves", "1x2", "lightgbm"),
        # TypeError: 'NoneType' object is not iterable (plots.py, reliability)
        ("reliability", "1x2", "lightgbm", "home"),
        ("reliability", "1x2", "closing"),
        ("reliability", "ou25", "dixon_coles", "over"),
    ],
)
def test_a_null_model_entry_draws_as_if_it_were_missing(report, path: Path_) -> None:
    part = _around(report, path)
    page = render_html(_set(part, path, None))
    assert page == render_html(_delete(part, path))
    assert page != render_html(part)  # the entry did draw something


@pytest.mark.parametrize("count", [None, {}, [], "many"])
def test_a_per_file_count_that_is_no_number_is_left_out_with_a_note(report, count) -> None:
    """It was "TypeError: int() argument must be ... not 'NoneType'" in the group sums."""
    data = {
        **report["data"],
        "rows_without_quote": {
            "E0/2022-2023.csv: ps 1x2 closing": 3,
            "D1/2021-2022.csv: ps 1x2 closing": count,
            "D1/2021-2022.csv: b365 1x2 prematch": 5,
        },
    }
    page = render_html({"data": data})
    assert '<tr><td>ps 1x2 closing</td><td class="num">3</td></tr>' in page
    assert '<tr><td>b365 1x2 prematch</td><td class="num">5</td></tr>' in page
    assert "1 of the 3 per-file entries have no count and are left out." in page


@pytest.mark.parametrize("value", [None, {}, []])
@pytest.mark.parametrize("key", ["rows_without_quote", "columns_present_but_empty"])
def test_a_per_file_section_that_is_null_or_empty_renders(report, key, value) -> None:
    page = render_html({"data": {**report["data"], key: value}})
    assert '<section id="data">' in page
    assert "no count and are left out" not in page


def test_every_leaf_of_the_golden_report_may_be_null(report) -> None:
    """Each leaf of tests/golden/small_report_input.json set to null in turn: a whole page."""
    paths = list(_leaf_paths(report))
    assert len(paths) > 200
    failures = {}
    for path in paths:
        try:
            page = render_html(_around(_set(report, path, None), path))
        except Exception as exc:  # collect every failing path, not only the first
            failures[".".join(path)] = f"{type(exc).__name__}: {exc}"
            continue
        assert page.endswith("</body>\n</html>\n"), path
        assert '<section id="timings">' in page, path
    assert failures == {}
