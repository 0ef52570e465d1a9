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

from marketcast.registry.manifest import ArtifactIntegrityError, validate_file_name, validate_name
from marketcast.registry.store import (
    ChampionRecord,
    ModelNotFoundError,
    Registry,
    RegistryError,
    is_rollback_reason,
)

logger = logging.getLogger(__name__)

#: Times a market is published again when the source's pointer moved while it was copied.
MAX_SOURCE_MOVES = 3


@dataclass
class PublishedMarket:
    """What publishing one market did on one target (``error`` set: it failed there)."""

    market: str
    champion: str = ""  # "<model> <version>"
    copied_versions: list[str] = field(default_factory=list)  # "<model> <version>" copied now
    pointer_moved: bool = False
    decision_copied: bool = False
    report: str = "absent"  # "copied", "present" (already there) or "absent" (source has none)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "champion": self.champion,
            "copied_versions": self.copied_versions,
            "pointer_moved": self.pointer_moved,
            "decision_copied": self.decision_copied,
            "report": self.report,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


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
    without one is reported as failed), in this order, so a reader of the target never finds a
    pointer before what it names:

    1. the champion's version, then every other version registered by the champion's run in
       that market (:meth:`Registry.version_of_run`) and the versions the latest decision
       tested, each copied with its manifest unless the
       target holds it already (then its manifest must list the same files and hashes, and
       those files must read back whole);
    2. the champion run's report (and each run of ``extra_runs``, e.g. the run publishing),
       when ``source`` holds it and the target does not hold the same files;
    3. the target's champion pointer, moved to the same version unless it names it already:
       by a rollback when the source rolled back to the version the target's history holds
       last (so the target's history matches, and a rollback there does not restore the
       withdrawn version), else with the reason ``published from <source>: <source's reason>``;
    4. the source's latest promotion decision, unless the target holds it: after the pointer,
       so a pointer write that fails leaves no "promote X" decision beside the old champion.

    When the source's pointer moved meanwhile, the market is published again (at most
    `MAX_SOURCE_MOVES` times), and the result counts every pass's copies and moves. A market
    that fails (a version of the same name with other or damaged files on the target, a file
    that fails its sha256 check in the source, an unreadable pointer, the target's storage) is
    returned with ``error`` set and the others are still published; what it copied before
    failing stays, its pointer does not move.
    Publishing what is already there copies nothing. The source is read, never written.

    Raises
    ------
    RegistryError
        ``target`` is ``source`` (however spelt).
    """
    validate_name(vertical, "vertical")
    if source.location == target.location:
        raise RegistryError(f"cannot publish registry {source.root} to itself")
    chosen = sorted(set(markets)) if markets is not None else source.markets(vertical)
    reports: dict[str, str] = {}  # run id -> its report's state on this target
    done: list[PublishedMarket] = []
    for market in chosen:
        out = PublishedMarket(market=market)
        try:
            record = source.champion(vertical, market)
            if record is None:
                if markets is None:
                    continue  # a market folder with no champion yet
                raise RegistryError(f"{vertical}/{market} has no champion in {source.root}")
            for _ in range(MAX_SOURCE_MOVES):  # ``out`` adds up every pass's copies and moves
                _publish_market(source, target, vertical, market, record, extra_runs, reports, out)
                now = source.champion(vertical, market)
                if now is None or (now.model_name, now.version) == (
                    record.model_name,
                    record.version,
                ):
                    break
                record = now  # moved while copying: the target must not keep the old one
            else:
                raise RegistryError(
                    f"the source's {vertical}/{market} champion moved {MAX_SOURCE_MOVES} times "
                    "while it was published; publish again"
                )
        except (RegistryError, ArtifactIntegrityError, OSError, ValueError) as exc:
            out.error = f"{type(exc).__name__}: {exc}"
            logger.warning("publishing %s/%s to %s failed: %s", vertical, market, target.root, exc)
        done.append(out)
    return done


def _publish_market(
    source: Registry,
    target: Registry,
    vertical: str,
    market: str,
    record: ChampionRecord,
    extra_runs: Iterable[str],
    reports: dict[str, str],
    out: PublishedMarket,
) -> None:
    out.champion = f"{record.model_name} {record.version}"
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
    # and the versions the decision copied beside the pointer names (a champion kept from an
    # earlier run faced this run's challenger): a recheck on the target finds what it tested
    decision = source.latest_decision(vertical, market)
    if decision is not None:
        for named, tested in (
            (decision.champion, decision.champion_version),
            (decision.challenger, decision.challenger_version),
        ):
            if (
                named
                and tested
                and (named, tested) not in versions
                and tested in source.versions(vertical, market, named)
            ):
                versions.append((named, tested))
    for model_name, version in versions:
        if copy_version(source, target, vertical, market, model_name, version):
            out.copied_versions.append(f"{model_name} {version}")

    for run_id in dict.fromkeys((manifest.run_id, *extra_runs)):
        if run_id not in reports:
            reports[run_id] = copy_run_report(source, target, vertical, run_id)
    out.report = reports[manifest.run_id]

    current = target.champion(vertical, market)
    wanted = (record.model_name, record.version)
    if current is None or (current.model_name, current.version) != wanted:
        history = target.champion_history(vertical, market)
        if (
            current is not None
            and is_rollback_reason(record.reason)
            and history
            and (history[-1].model_name, history[-1].version) == wanted
        ):
            target.rollback(vertical, market, expected=wanted)
        else:
            target.set_champion(
                vertical, market, *wanted, f"published from {source.root}: {record.reason}"
            )
        out.pointer_moved = True
        logger.info("published %s/%s %s to %s", vertical, market, out.champion, target.root)

    # after the pointer, as a run saves its decisions: a pointer write that failed left the
    # target holding a "promote X" decision beside another champion
    if decision is not None and not target.has_decision(vertical, market, decision):
        target.save_decision(vertical, market, decision)
        out.decision_copied = True


def copy_version(
    source: Registry, target: Registry, vertical: str, market: str, model_name: str, version: str
) -> bool:
    """Copy one version (files checked against their sha256, then its manifest) unless the
    target holds it; True when copied.

    Raises
    ------
    RegistryError
        When the target's version of that name lists other files or hashes, or its files do
        not read back as listed (damaged there: it is not repaired over).
    """
    manifest = source.manifest(vertical, market, model_name, version)
    try:
        held = target.manifest(vertical, market, model_name, version)
    except ModelNotFoundError:
        held = None
    if held is None:
        files = source.load_files(vertical, market, model_name, version)
        target.register(vertical, market, model_name, files, manifest)
        return True
    if held.files != manifest.files:
        raise RegistryError(
            f"{target.root} holds {vertical}/{market}/{model_name} {version} with other files "
            "than the source's: a version name must never change its content; remove it there "
            "or publish to another target"
        )
    try:
        target.load_files(vertical, market, model_name, version)
    except ArtifactIntegrityError as exc:
        raise RegistryError(
            f"{target.root} holds a damaged copy of {vertical}/{market}/{model_name} {version} "
            f"({exc}); remove that version folder there and publish again"
        ) from exc
    return False


def copy_run_report(source: Registry, target: Registry, vertical: str, run_id: str) -> str:
    """Copy a run's report unless the target holds the same files: ``"copied"``,
    ``"present"`` or ``"absent"`` (the source holds none, or ``run_id`` is no name a report
    folder can take: a manifest made by hand)."""
    try:
        validate_file_name(run_id)
    except ValueError:
        return "absent"
    index = source.run_report_index(vertical, run_id)
    if index is None:
        return "absent"
    try:
        held = target.run_report_index(vertical, run_id)
    except ArtifactIntegrityError:
        held = None  # a damaged copy there is replaced
    if held is not None and held.files == index.files:
        try:
            target.run_report_files(vertical, run_id)
            return "present"
        except ArtifactIntegrityError:
            pass  # a damaged copy there is replaced
    target.save_run_report(vertical, run_id, source.run_report_files(vertical, run_id))
    return "copied"


__all__ = [
    "MAX_SOURCE_MOVES",
    "PublishedMarket",
    "copy_run_report",
    "copy_version",
    "publish",
]
