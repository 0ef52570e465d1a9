"""Step 9, export: a run's report into the registry, then its champions to the publish targets.

Both verticals call these: :func:`save_report` each time a run writes its report (before any
champion pointer moves, so a champion's run always has its report in the registry too), and
:func:`publish_champions` once the pointers have moved.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from marketcast.data.files import write_atomic
from marketcast.registry import Registry
from marketcast.registry.publish import publish
from marketcast.reports.writer import to_jsonable

#: What a run writes beside its report and publishes with it: ``publish.json``, per target.
PUBLISH_FILE = "publish.json"


def save_report(registry: Registry, vertical: str, run_id: str, files: list[Path]) -> None:
    """Copy a run's report files into ``registry`` (``_reports/<vertical>/<run_id>/``).

    A file that is missing is an error (the run wrote it a moment ago), as is any failure
    writing: raised, so a run stops before it moves a champion whose report is not stored.
    """
    registry.save_run_report(vertical, run_id, {path.name: path.read_bytes() for path in files})


def save_after_moves(save: Callable[[], None], console: Console, errors: list[str]) -> None:
    """Run ``save`` (a report's registry copy made again once a pointer has moved): a failure
    is a warning on the terminal, appended to ``errors`` (``marketcast run`` exits 1 on them),
    not a stop, since the champions have moved and the copy saved before the moves stays."""
    try:
        save()
    except Exception as exc:
        error = f"the registry's copy of the report was not updated: {exc}"
        console.log(error, style="yellow", markup=False)
        errors.append(error)


def publish_champions(
    targets: tuple[str, ...],
    registry: Registry,
    vertical: str,
    markets: list[str],
    run_id: str,
    run_dir: Path,
    console: Console,
) -> list[dict[str, Any]]:
    """Publish each market's champion (after this run) to every target; what each target got.

    A target that fails, whole (unreachable) or in some markets (a version there with other
    content, a damaged source file), is reported, on the terminal and as ``{"target", "ok":
    false, "error"}`` (with ``markets``, each failed one carrying its ``error``, when it got
    that far), and the rest are still tried: the champions already moved and stay moved, and
    ``marketcast registry publish`` repeats the copy (copying only what is missing). Markets
    with no champion (a horizon none of whose jobs ran) are left out. The outcome is written
    to ``<run_dir>/publish.json`` and returned.
    """
    if not targets:
        return []
    chosen = [m for m in markets if _maybe_champion(registry, vertical, m)]
    outcome: list[dict[str, Any]] = []
    for url in targets:
        try:
            done = publish(registry, Registry(url), vertical, chosen, extra_runs=(run_id,))
        except Exception as exc:  # each fsspec backend raises its own errors
            error = f"{type(exc).__name__}: {exc}"
            console.log(f"publish to {url} failed: {error}", style="yellow", markup=False)
            outcome.append({"target": url, "ok": False, "error": error})
            continue
        failed = [m for m in done if m.error is not None]
        for market in failed:
            console.log(
                f"publish of {vertical}/{market.market} to {url} failed: {market.error}",
                style="yellow",
                markup=False,
            )
        copied = sum(len(market.copied_versions) for market in done)
        console.log(
            f"published {len(done) - len(failed)} {vertical} champion(s) to {url} "
            f"({copied} version(s) copied)",
            markup=False,
        )
        entry: dict[str, Any] = {
            "target": url,
            "ok": not failed,
            "markets": {m.market: m.to_json() for m in done},
        }
        if failed:
            entry["error"] = "; ".join(f"{m.market}: {m.error}" for m in failed)
        outcome.append(entry)
    text = json.dumps(to_jsonable(outcome), indent=2, sort_keys=True, allow_nan=False)
    write_atomic(run_dir / PUBLISH_FILE, text.encode("utf-8"))
    return outcome


def _maybe_champion(registry: Registry, vertical: str, market: str) -> bool:
    """Whether the market has a champion, or a pointer that cannot be read (publishing names
    that market's error; raised here, it ended the run after its moves)."""
    try:
        return registry.champion(vertical, market) is not None
    except Exception:
        return True


def failed_targets(outcome: list[dict[str, Any]]) -> list[str]:
    """The targets of a :func:`publish_champions` outcome that failed."""
    return [str(entry["target"]) for entry in outcome if not entry["ok"]]
