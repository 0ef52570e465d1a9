"""Write a run's report.json and report.html atomically, and read report.json back."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from marketcast.data.files import write_atomic
from marketcast.reports.html import render_html

__all__ = ["REPORT_HTML", "REPORT_JSON", "load_report", "to_jsonable", "write_report"]

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def to_jsonable(value: Any) -> Any:
    """Convert a report value to plain JSON types; NaN and infinities become None.

    numpy scalars and arrays become Python numbers and lists, datetimes ISO-8601 text, paths
    text, tuples lists, and objects with a ``to_dict()`` method (such as the integrity report)
    their dict. Mapping keys become text.

    Parameters
    ----------
    value
        Any report value.

    Returns
    -------
    Any
        The same content built only from dict, list, str, int, float, bool and None.

    Raises
    ------
    TypeError
        For a value with no JSON form.

    Examples
    --------
    >>> to_jsonable({"roi": float("nan"), "n": np.int64(3), "ci": (0.5, float("inf"))})
    {'roi': None, 'n': 3, 'ci': [0.5, None]}
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        item = value.item()
        if isinstance(item, np.generic):  # np.longdouble: ``item`` keeps the numpy type
            if isinstance(value, np.floating):
                return to_jsonable(float(value))
            raise TypeError(f"report value of type {type(value).__name__} has no JSON form")
        return to_jsonable(item)
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_jsonable(to_dict())
    raise TypeError(f"report value of type {type(value).__name__} has no JSON form: {value!r}")


def write_report(run_dir: Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``run_dir``, each atomically.

    The JSON has sorted keys, two-space indent and NaN/inf as ``null``; the HTML is rendered
    from that same cleaned content (so re-rendering the JSON gives the identical page). Both
    texts are built and encoded before anything is written, and each file goes through a temp
    file and ``os.replace``, so a crash part-way leaves every file either old or new, never
    truncated.

    Parameters
    ----------
    run_dir
        The run's folder; created when missing.
    report
        The run report (see ``docs/reports.md``).

    Returns
    -------
    tuple[Path, Path]
        Paths of ``report.json`` and ``report.html``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    clean = to_jsonable(report)
    # ASCII: a lone surrogate (a name read with ``surrogateescape``) is escaped as ``\\udcff``
    json_bytes = (json.dumps(clean, sort_keys=True, indent=2, allow_nan=False) + "\n").encode()
    # encoded before either file is written, the surrogate as "?" (as plot labels have it): it
    # raised UnicodeEncodeError once report.json was in place, leaving a half-written pair
    html_bytes = render_html(clean).encode("utf-8", errors="replace")
    json_path, html_path = run_dir / REPORT_JSON, run_dir / REPORT_HTML
    write_atomic(json_path, json_bytes)
    write_atomic(html_path, html_bytes)
    return json_path, html_path


def load_report(path: Path | str) -> dict[str, Any]:
    """Read a report written by :func:`write_report`.

    Parameters
    ----------
    path
        ``report.json`` itself or the run folder holding it.

    Returns
    -------
    dict[str, Any]
        The report.

    Raises
    ------
    ValueError
        When the file does not hold a JSON object.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    report = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(report, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(report).__name__}")
    return report
