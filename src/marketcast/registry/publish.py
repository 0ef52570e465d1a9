"""Publish: copy champions, what serves with them, and their run reports to another registry.

DESIGN's step 9 exports "champion artifacts, manifest and reports to the registry and any
publish target". A publish target is a registry of its own (a folder or any fsspec URL) that a
server elsewhere reads, or an archive: after :func:`publish` it holds, per market, the
champion's version with its manifest, the other versions of the champion's run (the server
blends them, ``serving.service``), the market's latest promotion decision, the reports of the
champion's run, and a champion pointer naming the same version. Versions keep their names, so
the manifest a target serves is the one the source promoted, byte for byte.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from marketcast.registry.manifest import ArtifactIntegrityError, validate_name
from marketcast.registry.store import (
    ChampionRecord,
    ModelNotFoundError,
    Registry,
    RegistryError,
)

logger = logging.getLogger(__name__)


@dataclass
class PublishedMarket:
    """What publishing one market did on one target."""

    market: str
    champion: str  # "<model> <version>"
    copied_versions: list[str] = field(default_factory=list)  # "<model> <version>" copied now
    pointer_moved: bool = False
    decision_copied: bool = False
    report: str = "absent"  # "copied", "present" (already there) or "absent" (source has none)

    def to_json(self) -> dict[str, Any]:
        return {
            "champion": self.champion,
            "copied_versions": self.copied_versions,
            "pointer_moved": self.pointer_moved,
            "decision_copied": self.decision_copied,
            "report": self.report,
        }


def publish(
    source: Registry,
    target: Registry,
    vertical: str,
    markets: Iterable[str] | None = None,
    *,
    extra_runs: Iterable[str] = (),
) -> list[PublishedMarket]:
    """Make ``target`` serve what ``source`` serves in ``vertical``; return what was done.

    For each market with a champion in ``source`` (``markets`` picks some; a named market
    without one is an error), in this order, so a reader of the target never finds a pointer
    before what it names:

    1. the champion's version, then every other version registered by the champion's run in
       that market (:meth:`Registry.version_of_run`), each copied with its manifest unless the
       target holds it already (then its manifest must list the same files and hashes);
    2. the source's latest promotion decision, unless the target's latest is the same;
    3. the champion run's report (and each run of ``extra_runs``, e.g. the run publishing),
       when ``source`` holds it and the target does not hold the same files;
    4. the target's champion pointer, moved to the same version unless it names it already,
       with the reason ``published from <source>: <source's reason>``.

    Publishing twice copies nothing the second time. The source is read, never written.

    Raises
    ------
    RegistryError
        A market named in ``markets`` with no champion in ``source``; the target holding a
        version of the same name with other files; any failure to read or write (the message
        names the market; markets published before it stay published).
    ArtifactIntegrityError
        A source file that fails its sha256 check (nothing of that version is copied).
    """
    validate_name(vertical, "vertical")
    if _same_root(source, target):
        raise RegistryError(f"cannot publish registry {source.root} to itself")
    named = markets is not None
    chosen = sorted(set(markets)) if markets is not None else _markets(source, vertical)
    done: list[PublishedMarket] = []
    reports_done: set[str] = set()
    for market in chosen:
        record = source.champion(vertical, market)
        if record is None:
            if named:
                raise RegistryError(f"{vertical}/{market} has no champion in {source.root}")
            continue
        try:
            done.append(
                _publish_market(source, target, vertical, market, record, extra_runs, reports_done)
            )
        except (RegistryError, ArtifactIntegrityError) as exc:
            raise type(exc)(f"publishing {vertical}/{market} to {target.root}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise RegistryError(f"publishing {vertical}/{market} to {target.root}: {exc}") from exc
    return done


def _publish_market(
    source: Registry,
    target: Registry,
    vertical: str,
    market: str,
    record: ChampionRecord,
    extra_runs: Iterable[str],
    reports_done: set[str],
) -> PublishedMarket:
    out = PublishedMarket(market=market, champion=f"{record.model_name} {record.version}")
    manifest = source.manifest(vertical, market, record.model_name, record.version)
    versions = [(record.model_name, record.version)]
    for model_name in source.model_names(vertical, market):
        if model_name == record.model_name:
            continue
        found = source.version_of_run(
            vertical, market, model_name, manifest.run_id, near=record.version
        )
        if found is not None:
            versions.append((model_name, found))
    for model_name, version in versions:
        if copy_version(source, target, vertical, market, model_name, version):
            out.copied_versions.append(f"{model_name} {version}")

    decision = source.latest_decision(vertical, market)
    if decision is not None and target.latest_decision(vertical, market) != decision:
        target.save_decision(vertical, market, decision)
        out.decision_copied = True

    for run_id in (manifest.run_id, *extra_runs):
        state = copy_run_report(source, target, vertical, run_id, reports_done)
        if run_id == manifest.run_id:
            out.report = state

    current = target.champion(vertical, market)
    if current is None or (current.model_name, current.version) != (
        record.model_name,
        record.version,
    ):
        target.set_champion(
            vertical,
            market,
            record.model_name,
            record.version,
            f"published from {source.root}: {record.reason}",
        )
        out.pointer_moved = True
    logger.info("published %s/%s %s to %s", vertical, market, out.champion, target.root)
    return out


def copy_version(
    source: Registry, target: Registry, vertical: str, market: str, model_name: str, version: str
) -> bool:
    """Copy one version (files checked against their sha256, then its manifest) unless the
    target holds it; True when copied.

    Raises
    ------
    RegistryError
        When the target's version of that name lists other files or hashes.
    """
    manifest = source.manifest(vertical, market, model_name, version)
    try:
        held = target.manifest(vertical, market, model_name, version)
    except ModelNotFoundError:
        held = None
    if held is not None:
        if held.files != manifest.files:
            raise RegistryError(
                f"{target.root} holds {vertical}/{market}/{model_name} {version} with other "
                "files than the source's: a version name must never change its content; "
                "remove it there or publish to another target"
            )
        return False
    files = source.load_files(vertical, market, model_name, version)
    target.register(vertical, market, model_name, files, manifest)
    return True


def copy_run_report(
    source: Registry, target: Registry, vertical: str, run_id: str, done: set[str] | None = None
) -> str:
    """Copy a run's report unless the target holds the same files: ``"copied"``,
    ``"present"`` or ``"absent"`` (the source holds no report of that run)."""
    if done is not None and run_id in done:
        return "present"
    index = source.run_report_index(vertical, run_id)
    if index is None:
        return "absent"
    if done is not None:
        done.add(run_id)
    held = target.run_report_index(vertical, run_id)
    if held is not None and held.files == index.files:
        return "present"
    target.save_run_report(vertical, run_id, source.run_report_files(vertical, run_id))
    return "copied"


def _markets(registry: Registry, vertical: str) -> list[str]:
    """Markets of ``vertical`` with a champion."""
    return [m for m in registry.markets(vertical) if registry.champion(vertical, m) is not None]


def _same_root(a: Registry, b: Registry) -> bool:
    return a.location == b.location


__all__ = [
    "PublishedMarket",
    "copy_run_report",
    "copy_version",
    "publish",
]
