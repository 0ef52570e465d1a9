"""One function per CLI command: parse nothing, do one job, return the exit status."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from marketcast.config import (
    CRYPTO_HORIZONS,
    CRYPTO_MODELS,
    FOOTBALL_MARKETS,
    FOOTBALL_MODELS,
    CryptoRunConfig,
    FootballRunConfig,
    config_vertical,
    load_config,
    load_crypto_config,
)
from marketcast.data.validation import DataError, Issue, split_group_key, sum_per_group
from marketcast.datasets.football_data import (
    FootballData,
    is_archive,
    is_csv_name,
    iter_csv_files,
    load_football,
    not_regular_reason,
)
from marketcast.datasets.pull import DEFAULT_MAX_BYTES, pull_football
from marketcast.evaluation.football import check_markets_priced
from marketcast.orchestration.backends import end_with_parent
from marketcast.orchestration.export import failed_targets
from marketcast.orchestration.first_training import (
    FirstTraining,
    TrainingElsewhereError,
    lock_for_training,
)
from marketcast.orchestration.first_training import command as first_training_command
from marketcast.orchestration.football import (
    build_models,
    config_label,
    lives_in_this_process,
    parse_csv_option,
    plan_football,
    print_plain,
    print_unclipped,
    run_football,
    select_leagues,
    test_mask_between,
    write_json,
)
from marketcast.orchestration.football import (
    evaluate_football as _evaluate,
)
from marketcast.orchestration.recheck import recheck
from marketcast.orchestration.window import as_utc, utc_window
from marketcast.promotion import superseded_note
from marketcast.registry import Registry, RegistryError, validate_file_name
from marketcast.registry.manifest import Manifest
from marketcast.registry.publish import publish
from marketcast.registry.store import ChampionRecord, RegistryDamagedError, manifest_summary
from marketcast.reports.writer import to_jsonable


def _console() -> Console:
    return Console(stderr=True)


def run(
    config_path: str | None,
    vertical: str | None = None,
    backend: str | None = None,
    ray_address: str | None = None,
    dry_run: bool = False,
) -> int:
    """``marketcast run``: the main job on the bundled data (or the config's files).

    Without ``--config`` both verticals run (football, then crypto); a config file runs the
    vertical it names (``vertical: crypto``; football when absent). Exit 1, once everything
    is written, when a crypto job failed after every attempt, a ``publish`` target failed, or
    the registry's copy of a report could not be updated after a pointer moved.
    """
    if vertical is None:
        vertical = config_vertical(config_path) if config_path else "all"
    elif config_path and vertical != (configured := config_vertical(config_path)):
        # with "all", the file's settings applied to neither job: both ran on the defaults,
        # into the default registry, and could promote champions there
        runs = "runs both jobs" if vertical == "all" else f"runs {vertical}"
        raise ValueError(
            f"--vertical {vertical} {runs}, but {config_path} configures {configured}: give "
            f"--vertical {configured}, or leave out --config to run on the bundled data"
        )
    if vertical == "football" and (backend or ray_address):
        raise ValueError("--backend and --ray-address set the crypto jobs; this run is football")
    plans: dict[str, Any] = {}
    unpublished: list[str] = []  # publish targets that failed (the run's results stand)
    copy_errors: list[str] = []  # registry copies of a report that failed after a move
    status = 0
    crypto_config: CryptoRunConfig | None = None
    if vertical in ("all", "crypto"):  # checked before football trains for minutes
        crypto_path = config_path if vertical == "crypto" else None
        crypto_config = load_crypto_config(crypto_path)
        _check_model_params(crypto_config, crypto_path)
        crypto_config = _with_backend(crypto_config, backend, ray_address)
    if vertical in ("all", "football"):
        football_path = config_path if vertical == "football" else None
        football_config = load_config(football_path)
        _check_model_params(football_config, football_path)
        if dry_run:  # checked as the run checks it, data read, nothing trained
            plans["football"] = plan_football(football_config, football_path)
        else:
            football = run_football(football_config, console=_console(), config_path=football_path)
            unpublished += failed_targets(football.published)
            copy_errors += football.copy_errors
    if crypto_config is not None:
        from marketcast.orchestration.crypto import CryptoRun, run_crypto

        outcome = run_crypto(
            crypto_config,
            console=_console(),
            dry_run=dry_run,
            config_path=config_path if vertical == "crypto" else None,
        )
        if dry_run:
            plans["crypto"] = outcome
        elif isinstance(outcome, CryptoRun):
            unpublished += failed_targets(outcome.published)
            copy_errors += outcome.copy_errors
            if outcome.evaluation.failed_jobs:
                status = _failed_jobs_status(
                    outcome.evaluation.failed_jobs, "its reports are written"
                )
    if dry_run:  # one vertical: its plan as before; both: {"football": ..., "crypto": ...}
        shown = plans if len(plans) > 1 else next(iter(plans.values()))
        sys.stdout.write(json.dumps(shown, indent=2, sort_keys=True, default=str) + "\n")
    if unpublished:  # the champions moved and the reports are written; a copy is missing
        print_plain(
            _console(),
            f"exit 1: publishing to {', '.join(sorted(set(unpublished)))} failed (publish.json "
            "in the run folder says why); the champions moved as reported, and "
            "`marketcast registry publish --to TARGET` copies what is missing",
        )
        return 1
    if copy_errors:  # the champions moved; the registry holds the copy saved before that
        print_plain(_console(), "exit 1: " + "; ".join(copy_errors))
        return 1
    return status


def _failed_jobs_status(failed_jobs: list[dict[str, Any]], written: str) -> int:
    """Exit status 1, with one line on the terminal, for a crypto command some of whose jobs
    failed after every attempt: what it computed is written (and no champion moved on their
    horizons), but a script must not read its exit as a complete result (it was 0)."""
    jobs = ", ".join(str(f["job"]) for f in failed_jobs)
    print_plain(
        _console(),
        f"exit 1: {len(failed_jobs)} job(s) failed after every attempt ({jobs}); {written}, "
        "and `failed_jobs` names the pairs each left out",
    )
    return 1


def _with_backend(
    config: CryptoRunConfig, backend: str | None, ray_address: str | None
) -> CryptoRunConfig:
    """``config`` with the command line's ``--backend`` and ``--ray-address``; an address for a
    local backend is an error (it was ignored: the jobs ran locally without a word)."""
    updates: dict[str, Any] = {}
    if backend:
        updates["backend"] = backend
    if ray_address:
        updates["ray_address"] = ray_address
    config = config.model_copy(update=updates)
    if ray_address and config.backend != "ray":
        raise ValueError(
            f"--ray-address {ray_address} needs --backend ray (the {config.backend} backend "
            "would ignore it)"
        )
    return config


def evaluate_crypto(
    data_paths: list[str],
    start: str,
    end: str | None,
    horizons: str | None,
    models: str | None,
    config_path: str | None,
    backend: str | None,
    ray_address: str | None,
    json_out: str,
) -> int:
    """``marketcast evaluate crypto``: purged walk-forward from ``start``; contract JSON out.

    The files may hold history and the test period together: every step trains only on bars
    whose labels resolved before it. A window that holds no bar of the files (``--start``
    after them, ``--end`` before them) is refused before any job runs, naming the option and
    the data's span.
    """
    from marketcast.orchestration.crypto import (
        caveat_lines,
        check_evaluation_window,
        prepare_crypto,
    )
    from marketcast.orchestration.crypto import evaluate_crypto as _evaluate_crypto

    utc_window(start, end)  # an --end before --start is refused before the files are read

    config = load_crypto_config(config_path)
    end = _window(config, config_path, start, end)
    updates: dict[str, Any] = {}
    chosen_horizons = parse_csv_option(horizons, CRYPTO_HORIZONS, "horizons")
    chosen_models = parse_csv_option(models, CRYPTO_MODELS, "models")
    if chosen_horizons:
        updates["horizons"] = chosen_horizons
    if chosen_models:
        updates["models"] = chosen_models
    config = _with_backend(config.model_copy(update=updates), backend, ray_address)
    _check_model_params(config, config_path)
    _check_json_target(json_out, data_paths)
    prepared = prepare_crypto(config, data_paths, config_path)
    report = prepared.data.report
    # (an unreadable file was already refused by prepare_crypto, as `run` refuses it)
    print_plain(_console(), report.summary("rows"))
    check_evaluation_window(prepared, start, end)  # before any job
    evaluation = _evaluate_crypto(config, prepared, start=start, end=end, console=_console())
    if not evaluation.horizons:
        raise ValueError(
            f"nothing to evaluate from {start}: no decisions in the test window (a step needs "
            "bars before it to train on, so --start must leave some history in the files)"
        )
    write_json(json_out, {**evaluation.to_contract_json(), "data": report.to_dict()})
    for line in caveat_lines(evaluation):
        print_plain(_console(), line)
    print_plain(
        _console(),
        f"wrote {json_out}: {evaluation.pairs} pairs{_skipped_note(evaluation.skipped)}, horizons "
        f"{', '.join(evaluation.horizons)}",
    )
    if evaluation.failed_jobs:
        return _failed_jobs_status(evaluation.failed_jobs, f"{json_out} is written")
    return 0


def evaluate_football(
    data_paths: list[str],
    start: str,
    end: str | None,
    markets: str | None,
    models: str | None,
    config_path: str | None,
    json_out: str,
) -> int:
    """``marketcast evaluate football``: walk forward from ``start`` and write the contract JSON.

    A config (``config_path``) applies as it does to ``marketcast run``, but for the files
    (``data_paths``, required, stand in for ``data.paths``) and the window: its
    ``data.leagues`` are kept (`select_leagues`; the JSON's ``data.leagues`` says which), and
    its ``walk_forward.start`` and ``end`` must agree with ``start`` and ``end``: a different
    date is an error naming the file and the key, and an ``end`` left out is the config's
    (`_window`).
    """
    config = load_config(config_path)
    end = _window(config, config_path, start, end)
    updates: dict[str, Any] = {}
    chosen_markets = parse_csv_option(markets, FOOTBALL_MARKETS, "markets")
    chosen_models = parse_csv_option(models, FOOTBALL_MODELS, "models")
    if chosen_markets:
        updates["markets"] = chosen_markets
    if chosen_models:
        updates["models"] = chosen_models
    config = config.model_copy(update=updates)
    _check_model_params(config, config_path, markets_option="--markets")  # before reading data
    _check_json_target(json_out, data_paths)
    try:
        data = load_football(data_paths)
    except DataError as error:
        raise _what_the_file_is(error) from None
    if data.matches.empty:
        raise ValueError(
            f"no matches found in {', '.join(data_paths)} ({data.report.summary('matches')})"
        )
    if config.data.leagues:  # kept as a run keeps them; the report counts the others
        try:
            data = _select_counted(data, config.data.leagues)
        except ValueError as exc:  # "unknown leagues ['XX']; the data holds ['D1', 'E0']"
            raise DataError(config_label(config_path), None, "data.leagues", str(exc)) from None
    mask = test_mask_between(data.matches, start, end)
    print_plain(_console(), data.report.summary("matches"))
    evaluation, _, _ = _evaluate(config, data, mask, console=_console(), config_path=config_path)
    # the contract's keys, plus each market's promotion decision (why `champion` is what it
    # is) and what the data check found (adding keys is allowed)
    contract = evaluation.to_contract_json()
    for name, ev in evaluation.markets.items():
        contract["markets"][name]["promotion"] = ev.promotion
    report = data.report.to_dict()
    if config.data.leagues:
        report["leagues"] = list(config.data.leagues)
    write_json(json_out, {**contract, "data": report})
    scored = ", ".join(f"{name} {len(ev.rows)}" for name, ev in evaluation.markets.items())
    _console().print(
        f"wrote {json_out}: {evaluation.n_matches} matches evaluated; scored per market: {scored}"
        " (the rest and why: `not_scored`)"
    )
    for name, ev in evaluation.markets.items():
        reason = ev.promotion.get("reason", "")
        challenger, incumbent = ev.promotion.get("challenger"), ev.promotion.get("champion")
        if ev.promotion.get("promote"):
            tested = f" (promoted over {incumbent})"
        else:
            tested = f" (best challenger {challenger})" if challenger else ""
        line = f"{name}: champion {ev.champion}{tested}: {reason}"
        _console().print(line, markup=False, highlight=False)
    return 0


def _window(
    config: FootballRunConfig | CryptoRunConfig,
    config_path: str | None,
    start: str,
    end: str | None,
) -> str | None:
    """The ``--end`` of ``evaluate``: ``end``, else the config's ``walk_forward.end``.

    ``--start`` is required, so a config's ``walk_forward.start`` can only agree with it; a
    different start, or an ``end`` other than the config's, is an error naming the file and
    the key (both were ignored without a word). A crypto config's dates count only when the
    file given sets them (its ``start`` has a default, which ``--start`` replaces).
    """
    configured = config.walk_forward
    if isinstance(config, CryptoRunConfig):
        if config_path is None:
            return end  # the default config's window is `run`'s, not evaluate's
        given = configured.model_fields_set
        configured = configured.model_copy(
            update={key: None for key in ("start", "end") if key not in given}
        )
    if configured.start is not None and as_utc(configured.start) != as_utc(start):
        raise ValueError(
            f"{config_path}, field 'walk_forward.start': {configured.start} is not --start "
            f"{start}: give --start {configured.start}, or remove walk_forward from the config "
            "(evaluate's window is --start and --end)"
        )
    if configured.end is None:
        return end
    if end is not None and as_utc(configured.end) != as_utc(end):
        raise ValueError(
            f"{config_path}, field 'walk_forward.end': {configured.end} is not --end {end}: "
            f"give --end {configured.end} or leave it out, or remove walk_forward.end from the "
            "config"
        )
    return configured.end


def _check_model_params(
    config: FootballRunConfig | CryptoRunConfig,
    config_path: str | None,
    *,
    markets_option: str = "markets",
) -> None:
    """Every ``model_params`` entry, checked before any work; errors name the config file.

    Football also needs, for every market, a model that prices it (`check_markets_priced`;
    the error names the market as ``markets_option``): with none, the walk-forward ran to the
    end and then failed to choose a champion.
    """
    from marketcast.orchestration.crypto import check_model_params

    try:
        if isinstance(config, CryptoRunConfig):
            check_model_params(config)
        else:
            every = build_models(config.model_copy(update={"models": FOOTBALL_MODELS}))
            models = {name: every[name] for name in config.models}
            check_markets_priced(models, config.markets, candidates=every, option=markets_option)
    except ValueError as exc:
        raise ValueError(f"{config_path}: {exc}" if config_path else str(exc)) from None


def _check_json_target(json_out: str, inputs: Sequence[str] = ()) -> None:
    """Fail before the evaluation, not after it, when ``--json`` cannot be written.

    ``json_out`` must not be a folder nor one of the data files read (``inputs``: files, and
    folders whose CSV files and tar archives are read), which the report would replace, and
    its folder must take a new file: a temporary file is created in it, or in its nearest
    existing parent when it is missing (the final write makes it), and removed again.
    """
    target = Path(json_out)
    if target.is_dir():
        raise ValueError(f"--json {json_out} is a folder: name the file to write")
    if (given := _input_holding(target, inputs)) is not None:
        raise ValueError(
            f"--json {json_out} is a data file read from {given}: the report would replace "
            "it; name another file"
        )
    folder = target.parent
    # probed where it exists: the folders still missing are made by the final write, so a run
    # that fails leaves none behind (it used to make them here)
    existing = next((p for p in (folder, *folder.parents) if p.exists()), Path("."))
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "Not a directory")
        handle, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as exc:
        raise ValueError(
            f"--json {json_out}: cannot write in {folder}: {exc.strerror or exc}"
        ) from exc


def _input_holding(target: Path, inputs: Sequence[str]) -> str | None:
    """The input (a file, or a folder a loader reads it from) that ``target`` is, else None."""
    if not target.is_file():
        return None  # a new file replaces nothing
    real = target.resolve()
    read_from_folder = is_csv_name(real.name) or is_archive(real)
    for given in inputs:
        path = Path(given).resolve()
        if real == path:
            return given
        if path.is_dir() and read_from_folder and real.is_relative_to(path):
            return given
    return None


def data_check(paths: list[str], json_out: str | None, config_path: str | None = None) -> int:
    """``marketcast data check``: print the integrity report; exit 1 when a file has errors.

    Exchange candle, funding and open-interest files are recognised by their header and checked
    by the crypto rules; everything else is read as football-data.co.uk. A file neither reader
    can read for a reason its first bytes show (a zip archive, UTF-16 text, JSON, another
    delimiter than the comma, no header row: `refusal`) is an error saying so, in the section
    of the vertical it looks like; so is a path that does not exist (exit 1, not 2: the others
    are still checked). A tar archive goes to the checker of its members
    (`archive_vertical`), and issues name a member with its archive
    (``candles.tar:crypto/BTCUSDT_1h.csv``). With no paths, both bundles are checked. With both
    kinds, the JSON holds ``football`` and ``crypto`` sections.

    With ``config_path``, the files are read as a run with that config reads them: its
    ``data.paths`` when no path is given (else that vertical's bundle alone), a crypto
    config's ``pairs`` and ``pair_renames`` (without them MATICUSDT and POLUSDT were checked as
    two pairs, each with the other's gap), a football config's ``data.leagues`` (kept as the run
    keeps them, `select_leagues`; the report's ``leagues`` says which).
    """
    if json_out:  # before the check, as `evaluate` does: not after it with "[Errno 20] ..."
        _check_json_target(json_out, paths)
    renames: dict[str, Any] = {}
    pairs: tuple[str, ...] | None = None
    leagues: tuple[str, ...] | None = None  # None: no football config, every league
    only: str | None = None
    if config_path:
        only = config_vertical(config_path)
        config = (load_crypto_config if only == "crypto" else load_config)(config_path)
        renames = dict(getattr(config, "pair_renames", {}))
        pairs = tuple(getattr(config, "pairs", ())) or None
        if isinstance(config, FootballRunConfig):
            leagues = config.data.leagues
        paths = paths or list(config.data.paths)
    routed = _split_by_vertical(paths)
    reports: dict[str, dict[str, Any]] = {}
    if routed.football or routed.refused["football"] or (not paths and only != "crypto"):
        reports["football"] = _football_check(routed, paths, leagues, config_path)
    if routed.crypto or routed.refused["crypto"] or (not paths and only != "football"):
        from marketcast.datasets.crypto import load_candles

        # files given, none of them readable candles: an empty report (None is the bundle)
        candles = load_candles(
            routed.crypto if paths else None, pairs=pairs, pair_renames=renames or None
        )
        candles.report.errors.extend(routed.refused["crypto"])
        reports["crypto"] = candles.report.to_dict()
        where = ", ".join(paths) if paths else "the bundle"
        _refuse_nothing_kept(reports["crypto"], where, "candle")
    if len(reports) == 1:
        report = next(iter(reports.values()))
    else:
        report = {
            **reports,
            "ok": all(r.get("ok", True) for r in reports.values()),
            "errors": [e for r in reports.values() for e in r.get("errors", [])],
        }
    if routed.not_read:
        report["files_not_read"] = routed.not_read
    if json_out:
        write_json(json_out, report)
    for name, section in reports.items():
        _print_report(section, f"data integrity: {name}")
    if routed.not_read:
        shown = ", ".join(_printable(p) for p in routed.not_read[:_ISSUES_SHOWN])
        more = len(routed.not_read) - _ISSUES_SHOWN
        sys.stderr.write(
            f"warning: {len(routed.not_read):,} files in the folders given are not CSV files and "
            f"were not read (nor would a run read them): {shown}"
            + (f", and {more:,} more (--json lists them)" if more > 0 else "")
            + "; a tar archive is read when named itself, a zip archive once unzipped\n"
        )
    for issue in report.get("errors", []):
        sys.stderr.write(f"error: {_issue_text(issue)}\n")
    return 1 if report.get("errors") else 0


#: How many of the report's sampled issues ``data check`` prints under its table.
_ISSUES_SHOWN = 10


@dataclass
class _Routed:
    """The files ``data check`` gives each checker, and those it refuses itself.

    ``refused`` holds, per vertical (``"football"``, ``"crypto"``), an error for each file no
    checker can read, in the section of the vertical the file looks like; ``not_read`` the
    files in the folders given that are not CSV files, which no run reads either.
    """

    football: list[str] = field(default_factory=list)
    crypto: list[str] = field(default_factory=list)
    refused: dict[str, list[Issue]] = field(default_factory=lambda: {"football": [], "crypto": []})
    not_read: list[str] = field(default_factory=list)


def _skipped_note(skipped: Sequence[Mapping[str, Any]]) -> str:
    """The pairs never in the universe in the window, for the terminal line that counts the
    data's pairs (they were in the JSON only).

    Examples
    --------
    >>> _skipped_note([{"pair": "BTCUSDT", "reason": "short_history", "days": 2}])
    ' (1 never in the universe in the window: BTCUSDT short_history)'
    >>> _skipped_note([])
    ''
    """
    if not skipped:
        return ""
    listed = ", ".join(f"{s['pair']} {s['reason']}" for s in skipped)
    return f" ({len(skipped)} never in the universe in the window: {listed})"


def _what_the_file_is(error: DataError) -> DataError:
    """A football reader's "missing required column" for a file that is no football-data file,
    said as ``data check`` says it: a candle file for ``evaluate crypto``, a zip archive, binary
    data (`refusal`); any other error as it is."""
    from marketcast.datasets.crypto import detect_source
    from marketcast.datasets.sniff import read_head, refusal

    path = Path(error.file)
    if error.reason != "missing required column" or not path.is_file():
        return error
    if (head := read_head(path)) is None:
        return error
    if detect_source(str(path), head) is not None:
        return DataError(
            error.file, None, None, "an exchange candle file: `marketcast evaluate crypto` reads it"
        )
    if (why := refusal(path, head)) is not None:
        _, row, reason, value = why
        return DataError(error.file, row, None, reason, value)
    return error


def _split_by_vertical(paths: list[str]) -> _Routed:
    """Crypto files (every file the crypto loader recognises, `detect_source`) apart from the
    rest; folders are searched as `iter_csv_files` searches them (`scan_folder`, in the same
    walk that lists the other files), so ``data check`` reads the files ``evaluate`` reads.
    Each file's first bytes are read once, here (`read_head`); a file they show to be
    unreadable (`refusal`) goes to neither checker."""
    from marketcast.datasets.crypto import detect_source
    from marketcast.datasets.sniff import (
        archive_vertical,
        is_candle_name,
        read_head,
        refusal,
        scan_folder,
        zips_instead_of_csvs,
    )

    routed = _Routed()
    for given in paths:
        root = Path(given)
        if not root.exists():  # a file that cannot be read: an error of the report (exit 1)
            vertical = "crypto" if is_candle_name(root.name) else "football"
            routed.refused[vertical].append(Issue(given, None, None, "no such file or folder"))
            continue
        if root.is_dir():
            scan = scan_folder(root)  # one walk: the CSV files, and the files beside them
            files = scan.csv_files
            if not files:
                if zips := scan.zips():
                    vertical = "crypto" if any(is_candle_name(z.name) for z in zips) else "football"
                    routed.refused[vertical].append(zips_instead_of_csvs(given, zips))
                else:
                    routed.football.append(given)  # reported as "no CSV files found"
                continue
            # a workbook or zip beside the CSVs was passed over without a word
            routed.not_read.extend(str(p) for p in scan.not_read)
        else:
            files = list(iter_csv_files([root]))
        for path in files:
            if (unreadable := not_regular_reason(path)) is not None:  # a pipe would block
                vertical = "crypto" if is_candle_name(path.name) else "football"
                routed.refused[vertical].append(Issue(str(path), None, None, unreadable))
                continue
            if is_archive(path):  # a tar archive: read whole by the checker of its members
                vertical = archive_vertical(path)
                (routed.crypto if vertical == "crypto" else routed.football).append(str(path))
                continue
            head = read_head(path)
            if head is None:  # the football reader then names what is wrong
                routed.football.append(str(path))
            elif detect_source(str(path), head) is not None:
                routed.crypto.append(str(path))
            elif (why := refusal(path, head)) is not None:
                vertical, row, reason, value = why
                routed.refused[vertical].append(Issue(str(path), row, None, reason, value))
            else:
                # anything else goes to the football reader, which names what is wrong with it
                routed.football.append(str(path))
    return routed


def _football_check(
    routed: _Routed, given: list[str], leagues: tuple[str, ...] | None, config_path: str | None
) -> dict[str, Any]:
    """The football section: the files ``routed`` gives the football reader, read as a run
    reads them, then a football config's ``leagues`` (None: no such config) kept as
    `_keep_leagues` keeps them."""
    # files given, none of them for the football reader: an empty report (None is the bundle)
    data = load_football(routed.football if given else None, on_error="collect")
    data.report.errors.extend(routed.refused["football"])
    if leagues and not data.matches.empty:  # no match: the problem below says so
        data = _keep_leagues(data, leagues, config_path or "--config")
    report = data.report.to_dict()
    if leagues is not None:
        report["leagues"] = list(leagues)  # [] when the config leaves them all
    where = ", ".join(given) if given else "the bundle"
    if report.get("files_read", 0) == 0 and not report.get("errors"):
        _add_error(report, where, "no CSV files found")
    else:
        _refuse_nothing_kept(report, where, "match")
    return report


def _refuse_nothing_kept(report: dict[str, Any], where: str, noun: str) -> None:
    """An error in ``report`` (``ok`` false, exit 1) when its files were read and no row was
    kept: every row dropped, or files holding a header alone. Either passed as ``ok`` (exit
    0) where ``evaluate`` refused the same data (a candle file of zero-volume bars, a header-only
    football file); football's all-dropped case alone was caught."""
    if report.get("files_read", 0) == 0 or report.get("rows_kept", 0) > 0:
        return
    if report.get("rows_read", 0) > 0:
        # every row dropped is not a clean bill of health
        _add_error(
            report, where, f"no {noun} kept of the {report['rows_read']:,} rows read (see dropped)"
        )
    elif not report.get("errors"):
        files = report["files_read"]
        _add_error(
            report,
            where,
            f"no {noun} in the {files:,} file{'s' * (files != 1)} read (a header alone)",
        )


def _add_error(report: dict[str, Any], where: str, reason: str) -> None:
    """A report-wide error (no row or field): ``ok`` false, so ``data check`` exits 1."""
    report.setdefault("errors", []).append(
        {"file": where, "row": None, "field": None, "reason": reason}
    )
    report["ok"] = False


def _keep_leagues(data: FootballData, leagues: tuple[str, ...], config: str) -> FootballData:
    """The matches of ``leagues`` kept by `select_leagues`, as a run keeps them; the others'
    are counted in ``dropped["outside_config_leagues"]`` (their odds in ``quotes_dropped``). A
    league the data lacks stops a run: here it is an error naming the config's key."""
    try:
        return _select_counted(data, leagues)
    except ValueError as exc:  # "unknown leagues ['XX']; the data holds ['D1', 'E0']"
        data.report.errors.append(Issue(config, None, "data.leagues", str(exc)))
        return data


def _select_counted(data: FootballData, leagues: tuple[str, ...]) -> FootballData:
    """`select_leagues`, with the other leagues' matches and quotes counted in the report as
    ``outside_config_leagues`` (``ValueError`` for a league the data lacks)."""
    kept = select_leagues(data, leagues)
    report = data.report
    report.drop("outside_config_leagues", report.rows_kept - len(kept.matches))
    report.drop_quotes("outside_config_leagues", report.quotes_kept - len(kept.odds))
    report.rows_kept, report.quotes_kept = len(kept.matches), len(kept.odds)
    return kept


def _check_servable(
    store: Registry, vertical: str, market: str, model_name: str, version: str
) -> None:
    """Load the version as a server would before its pointer moves (as the admin promote does):
    a version without its feature state was promoted, and the next server start failed.

    A loader's own error (a damaged booster, a torch error) came out as a traceback with exit
    status 1 instead of ``marketcast: error: ...``; it is a `RegistryError` naming the version
    and the cause, as the server's promote says it
    (`marketcast.serving.service.unservable_as_registry_error`).
    """
    from marketcast.serving.service import load_servable, unservable_as_registry_error

    with unservable_as_registry_error(vertical, market, model_name, version):
        if vertical == "football":
            load_servable(store, market, model_name, version)
        elif vertical == "crypto":
            from marketcast.models.crypto import load_crypto_champion

            load_crypto_champion(store.load_files(vertical, market, model_name, version))


def _print_report(report: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key in ("files_read", "rows_read", "rows_kept", "blank_rows", "gaps_left"):
        if key in report:
            table.add_row(key, str(report[key]))
    for section in ("repaired", "dropped", "quotes_dropped", "columns_ignored"):
        for reason, count in sorted(report.get(section, {}).items()):
            # a column name comes from the file: print it inert (no control character, no
            # rich markup: a column "[/x]" ended the command in a MarkupError traceback)
            table.add_row(escape(_printable(f"{section}: {reason}")), str(count))
    # odds column groups read but blank (football): matches per group here (as on the report
    # page), the files below, each file's count in --json
    empty = report.get("columns_present_but_empty", {})
    for section in ("columns_present_but_empty", "rows_without_quote"):
        for group, count in sorted(sum_per_group(report.get(section, {})).items()):
            table.add_row(escape(_printable(f"{section} (matches): {group}")), str(count))
    console = Console()
    console.print(table)
    if "leagues" in report:  # a football config was given
        leagues = ", ".join(report["leagues"]) or "every league in the files"
        console.print(f"  leagues: {leagues} (the config's data.leagues)", markup=False)
    for line in _empty_group_lines(empty):
        print_plain(console, f"  {line}")
    # by file and row: the sample is kept rule by rule, which printed rows 41, 11, 31, 21
    issues = sorted(
        report.get("issues", []),
        key=lambda i: (str(i.get("file") or ""), i.get("row") is None, i.get("row") or 0),
    )
    for issue in issues[:_ISSUES_SHOWN]:
        print_plain(console, f"  {_issue_text(issue)}")
    if len(issues) > _ISSUES_SHOWN:
        console.print(
            f"  ... {len(issues) - _ISSUES_SHOWN} more issues in the sample (--json keeps them)"
        )


def _empty_group_lines(counts: dict[str, int]) -> list[str]:
    """One line per file naming its odds column groups present but empty (escaped).

    The first `_ISSUES_SHOWN` files are listed; ``--json`` keeps them all.

    Examples
    --------
    >>> counts = {"E0.csv: pinnacle 1x2 closing": 380, "E0.csv: avg ah closing": 380,
    ...           "D1.csv: pinnacle 1x2 closing": 306}
    >>> for line in _empty_group_lines(counts):  # doctest: +ELLIPSIS
    ...     print(line)
    D1.csv: columns_present_but_empty (blank in all 306 matches): pinnacle 1x2 closing
    E0.csv: columns_present_but_empty (blank in all 380 matches): avg ah closing, ...
    """
    by_file: dict[str, tuple[int, list[str]]] = {}
    for key, n in sorted(counts.items()):
        file, group = split_group_key(key)
        by_file.setdefault(file, (int(n), []))[1].append(group)
    lines = [
        _printable(
            f"{file}: columns_present_but_empty (blank in all {n:,} matches): {', '.join(groups)}"
        )
        for file, (n, groups) in list(by_file.items())[:_ISSUES_SHOWN]
    ]
    if len(by_file) > _ISSUES_SHOWN:
        lines.append(f"... {len(by_file) - _ISSUES_SHOWN} more files (--json keeps them)")
    return lines


def data_pull_football(
    leagues: str,
    seasons: str,
    dest: str,
    base_url: str | None,
    timeout_s: float = 120.0,
    replace_smaller: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> int:
    """``marketcast data pull football``: download season files, validating each.

    Each file is listed as soon as it is written, with what the loader kept and dropped
    (``pulled data/E0/2021-2022.csv (380 of 380 matches kept)``), so a later failure still
    shows what landed before it. ``max_bytes`` caps each answer and its gunzipped size.
    """
    from marketcast.data.validation import IntegrityReport
    from marketcast.datasets.pull import DEFAULT_BASE_URL

    # each once: a season named twice was downloaded twice
    league_list = list(dict.fromkeys(v.strip() for v in leagues.split(",") if v.strip()))
    season_list = list(dict.fromkeys(v.strip() for v in seasons.split(",") if v.strip()))
    if not league_list:
        raise ValueError(f"--leagues {leagues!r} names no league (a comma list, e.g. E0,D1)")
    if not season_list:
        raise ValueError(f"--seasons {seasons!r} names no season (a comma list, e.g. 2024-2025)")
    console = _console()

    def show(path: Path, report: IntegrityReport) -> None:
        kept = report.summary("matches").removeprefix("data: ").replace(" from 1 file", "")
        print_plain(console, f"pulled {path} ({kept})")

    pull_football(
        league_list,
        season_list,
        Path(dest),
        base_url or DEFAULT_BASE_URL,
        timeout_s=timeout_s,
        replace_smaller=replace_smaller,
        max_bytes=max_bytes,
        on_written=show,
    )
    return 0


def registry_clean(root: str, older_than_hours: float, dry_run: bool) -> int:
    """``marketcast registry clean``: remove (or list) what killed runs left in the registry."""
    if not 0 <= older_than_hours <= 1e6:  # NaN and inf too (timedelta overflows)
        raise ValueError(
            f"--older-than-hours must be a number of hours from 0 to 1e6, got {older_than_hours}"
        )
    store = Registry(root)
    store.require_root()
    age = timedelta(hours=older_than_hours)
    found = store.leftovers(age) if dry_run else store.remove_leftovers(age)
    verb = "would remove" if dry_run else "removed"
    for path in found:
        sys.stdout.write(f"{verb} {path}\n")
    sys.stdout.write(f"{verb} {len(found)} leftover(s) older than {older_than_hours:g} h\n")
    return 0


def registry_recheck(root: str, name: str) -> int:
    """``marketcast registry recheck vertical/market``: the latest decision as saved and as
    made again from its run's stored evidence, as JSON on stdout (:func:`recheck`); exit 1
    when they disagree."""
    vertical, market = _split(name.split("/"), 2, name)
    store = Registry(root)
    store.require_root()
    result = recheck(store, vertical, market)
    Console().print_json(_strict_json(result))
    return 0 if result["agrees"] else 1


def registry_publish(root: str, target: str, name: str | None) -> int:
    """``marketcast registry publish --to TARGET [vertical[/market]]``: what each market got,
    as JSON on stdout (``registry.publish``); publishing again copies only what is missing.

    A vertical named with no champion is an error, as is a market without one; with no name,
    every market with a champion, in every vertical, is published.
    """
    source = Registry(root)
    source.require_root()
    destination = Registry(target)
    if lives_in_this_process(destination.filesystem):
        raise ValueError(
            f"{target} is a memory:// registry, which lives in this process only: what is "
            "published there vanishes when this command ends; use a folder or an object store URL"
        )
    parts = name.split("/") if name else []
    if len(parts) > 2 or any(not part for part in parts):
        raise ValueError(f"{name!r}: give a vertical (football) or vertical/market (football/1x2)")
    verticals = parts[:1] or source.verticals()
    markets = parts[1:] or None
    shown: dict[str, Any] = {}
    failed = []
    for vertical in verticals:
        done = publish(source, destination, vertical, markets)
        if done:
            shown[vertical] = {m.market: m.to_json() for m in done}
        failed += [f"{vertical}/{m.market}: {m.error}" for m in done if m.error is not None]
    if not shown:
        raise LookupError(f"no champion in {root}{f' under {name}' if name else ''} to publish")
    sys.stdout.write(json.dumps(shown, indent=2, sort_keys=True) + "\n")
    if failed:  # the others are published; each failed market carries its error above
        # none published is "nothing could be published", as the docs say: exit 2 (it was 1)
        code = 2 if len(failed) == sum(len(markets) for markets in shown.values()) else 1
        print_plain(
            _console(),
            f"exit {code}: {len(failed)} market(s) not published: " + "; ".join(failed),
        )
        return code
    return 0


def _unlisted_champions(
    champions: Mapping[tuple[str, str], ChampionRecord], listed: Iterable[Manifest]
) -> int:
    """Exit 1, with a line per market, where a champion pointer names a version the listing
    does not hold (its folder or manifest gone or unreadable): ``list`` showed no ``*`` and
    said nothing, while ``serve`` refuses such a registry."""
    shown = {(m.vertical, m.market, m.model_name, m.version) for m in listed}
    missing = [
        (vertical, market, champion)
        for (vertical, market), champion in champions.items()
        if (vertical, market, champion.model_name, champion.version) not in shown
    ]
    for vertical, market, champion in missing:
        sys.stderr.write(
            f"marketcast: warning: {vertical}/{market}'s champion is {champion.model_name} "
            f"{champion.version}, which is not among the versions listed (its folder or "
            f"manifest is missing or unreadable): `marketcast registry rollback "
            f"{vertical}/{market}` or `promote` a listed version\n"
        )
    return 1 if missing else 0


def _stopped_runs_note(store: Registry, listed: Sequence[Manifest]) -> None:
    """A note per run that stopped between registering versions and saving its report (over
    an hour ago): no pointer was moved to its versions, listed above like any other."""
    for vertical, run_id in store.stopped_runs():
        count = sum(m.vertical == vertical and m.run_id == run_id for m in listed)
        if count:
            sys.stderr.write(
                f"marketcast: note: {count} {vertical} version(s) above are of run {run_id}, "
                "which stopped before its report (no champion was moved to them): `marketcast "
                "registry clean` removes them, except in a market where one was promoted by hand\n"
            )


def registry(root: str, command: str, name: str | None, version: str | None) -> int:
    """``marketcast registry list | show | promote | rollback``.

    A local ``root`` that does not exist is an error (a ``RegistryError``), not an empty
    registry: these commands read or move pointers, they never create a registry.
    """
    store = Registry(root)
    store.require_root()
    out = Console()
    if command == "list":
        table = Table(title=f"registry {escape(root)}")  # a "[/x]" in a path is no markup
        for column in ("vertical", "market", "model", "version", "log loss", "champion"):
            # a name or version cut short ("20261123T120912Z-65…") cannot be promoted
            table.add_column(column, no_wrap=True)  # min_width below: the longest cell
        # each market's pointer read once (it was read again for every version listed); one
        # that cannot be read is reported below, and the rest still listed (one damaged
        # champion.json ended the listing of every market with it)
        champions: dict[tuple[str, str], ChampionRecord] = {}
        damaged: dict[tuple[str, str], RegistryDamagedError] = {}
        for vertical in store.verticals():
            for market in store.markets(vertical):
                try:
                    champion = store.champion(vertical, market)
                except RegistryDamagedError as error:
                    damaged[vertical, market] = error
                    continue
                if champion is not None:
                    champions[vertical, market] = champion
        listed = store.list_models()
        for manifest in listed:
            champion = champions.get((manifest.vertical, manifest.market))
            is_champion = (
                champion is not None
                and champion.model_name == manifest.model_name
                and champion.version == manifest.version
            )
            log_loss = manifest.scores.get("log_loss")
            mark = "*" if is_champion else ""
            table.add_row(
                manifest.vertical,
                manifest.market,
                manifest.model_name,
                str(manifest.version),
                "" if log_loss is None else f"{log_loss:.4f}",
                "?" if (manifest.vertical, manifest.market) in damaged else mark,
            )
        # every cell whole on one line, however narrow the console (80 columns when not a
        # terminal): a wider table is printed whole, for the terminal to wrap (under about 37
        # columns rich dropped whole columns, model and market first, when only cropping was off)
        for col in table.columns:
            col.min_width = max(len(str(cell)) for cell in [col.header, *col.cells])
        print_unclipped(out, table)
        _stopped_runs_note(store, listed)
        for unreadable in damaged.values():
            sys.stderr.write(
                f"marketcast: error: {unreadable} (its market's champion is marked '?' above)\n"
            )
        return max(_unlisted_champions(champions, listed), 1 if damaged else 0)
    assert name is not None
    parts = name.split("/")
    if command == "show" and len(parts) == 2:
        if version is not None:  # it was ignored: the champion was shown as if it were that one
            raise ValueError(
                f"--version names a version of a model: show {name}/MODEL --version {version}"
            )
        vertical, market = parts
        champion = store.champion(vertical, market)
        decision = store.latest_decision(vertical, market)
        if champion is None and decision is None:
            raise LookupError(f"no champion and no promotion decision for {name}")
        shown = {
            "champion": None if champion is None else champion.model_dump(mode="json"),
            "history": [
                h.model_dump(mode="json") for h in store.champion_history(vertical, market)
            ],
            "last_decision": None if decision is None else decision.model_dump(mode="json"),
            # a pointer moved since (by hand, a refresh): the decision is not the champion's
            "last_decision_superseded": (
                None
                if decision is None or champion is None
                else superseded_note(
                    decision.model_dump(), champion.model_name, champion.version, champion.reason
                )
            ),
            "report": None if champion is None else _champion_report(store, vertical, market),
        }
        out.print_json(_strict_json(shown))
        return 0
    if command == "show":
        if len(parts) != 3:  # either shape is shown (the champion's with two parts, above)
            raise ValueError(f"expected vertical/market or vertical/market/model, got {name!r}")
        vertical, market, model_name = parts
        chosen = version or store.latest_version(vertical, market, model_name)
        if chosen is None:
            raise LookupError(f"no registered versions of {name}")
        manifest = store.manifest(vertical, market, model_name, chosen)
        out.print_json(_strict_json(manifest_summary(manifest) | manifest.model_dump(mode="json")))
        return 0
    if command == "promote":
        vertical, market, model_name = _split(parts, 3, name)
        assert version is not None
        store.manifest(vertical, market, model_name, version)  # must exist
        _check_servable(store, vertical, market, model_name, version)
        store.set_champion(vertical, market, model_name, version, "manual promotion")
        out.print(f"champion of {vertical}/{market}: {model_name} {version}")
        return 0
    if command == "rollback":
        vertical, market = _split(parts, 2, name)
        history = store.champion_history(vertical, market)
        expected = None
        if history:  # loaded as a server would first, as promote and the admin rollback do
            expected = (history[-1].model_name, history[-1].version)
            _check_servable(store, vertical, market, *expected)
        # restores only the version checked above: another rollback or promotion meanwhile is
        # a ChampionChangedError (three at once restored versions never loaded)
        record = store.rollback(vertical, market, expected=expected)
        out.print(
            f"champion of {vertical}/{market} rolled back to {record.model_name} {record.version}"
        )
        return 0
    raise ValueError(f"unknown registry command {command!r}")


def _champion_report(store: Registry, vertical: str, market: str) -> dict[str, Any] | None:
    """Where the champion's run report is in the registry: ``{run_id, folder, files}``, or
    ``None`` when the registry holds none (a run before reports were stored, a manual
    registration)."""
    champion = store.champion(vertical, market)
    assert champion is not None
    try:
        run_id = store.manifest(vertical, market, champion.model_name, champion.version).run_id
    except (RegistryError, ValueError, OSError) as exc:
        return {"error": f"the champion's manifest cannot be read: {type(exc).__name__}: {exc}"}
    try:
        validate_file_name(run_id)
    except ValueError:  # a run id no report folder can take (a hand-made manifest's)
        return None
    try:
        index = store.run_report_index(vertical, run_id)
    except (RegistryError, ValueError, OSError) as exc:  # the pointer and history still show
        return {"run_id": run_id, "error": f"{type(exc).__name__}: {exc}"}
    if index is None:
        return None
    return {
        "run_id": run_id,
        "folder": store.run_report_folder(vertical, run_id),
        "files": [entry.name for entry in index.files],
    }


def serve(host: str | None, port: int | None, workers: int = 1) -> int:
    """``marketcast serve``: the registry's champions over HTTP.

    On a registry without a football champion the bundled champions are trained in a child
    process (:mod:`marketcast.orchestration.first_training`) while the port is already open with
    ``await_champions``. A training that fails before a football champion is registered stops
    the server (``ChildProcessError``): without one it could never become ready. One that fails
    later (the crypto part) is said as an error and the server goes on serving football, crypto
    signals answering 503 until crypto champions are registered. A server that stops
    stops the training. ``MARKETCAST_AWAIT_CHAMPIONS=1`` trains nothing and waits for a
    champion registered by another process, as does a server that finds the registry's training
    lock held by another (:func:`_start_first_training`). The workers of ``--workers N`` end with
    this process, however it ends (:func:`serve_worker_app`).

    uvicorn gets the settings' ``limit_concurrency`` (``MARKETCAST_LIMIT_CONCURRENCY``) and
    ``keep_alive_timeout_s``, and runs ``serving.http_server.HeaderTimeoutProtocol``
    (``header_timeout_s``: uvicorn itself has no timeout on reading request headers). A server
    bound beyond localhost still belongs behind a reverse proxy (docs/serving.md, "Exposure").
    """
    from marketcast.serving.crypto import CryptoSettings
    from marketcast.serving.default import (
        build_default_app,
        registry_poll_seconds,
        service_settings_from_env,
        unknown_env_variables,
    )
    from marketcast.serving.http_server import http_protocol, run_until_signal
    from marketcast.serving.settings import ServingSettings

    settings = ServingSettings.from_env()
    # Every setting a worker reads is checked here, before any training and before forking:
    # with --workers N a bad one crash-looped the workers while the supervisor lived on.
    registry_poll_seconds(os.environ)
    service_settings_from_env(os.environ)
    if os.environ.get("MARKETCAST_CRYPTO", "1") != "0":
        CryptoSettings.from_env(os.environ)
    for unknown in unknown_env_variables(os.environ, also=(SUPERVISOR_PID_VARIABLE,)):
        # a misspelt setting was ignored without a word, and its default served
        print_plain(
            _console(),
            f"warning: {unknown} is no marketcast setting: ignored",
        )
    settings = settings.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    _check_can_listen(settings.host, settings.port)
    registry = Registry(settings.registry)
    default_registry = ServingSettings.model_fields["registry"].default
    if os.path.normpath(settings.registry) != os.path.normpath(default_registry):
        try:  # a mistyped path was taken as an empty registry and trained into for minutes
            registry.require_root()
        except RegistryError as exc:
            raise RegistryError(
                f"{exc} (MARKETCAST_REGISTRY): fix the path, create the folder to have the "
                "bundled champions trained into it, or unset it to use ./registry"
            ) from exc
    training: FirstTraining | None = None
    if registry.champion("football", "1x2") is None:
        if settings.await_champions:
            _console().print(
                f"registry {settings.registry} has no champion yet: serving 503 until one is "
                "registered (MARKETCAST_AWAIT_CHAMPIONS)"
            )
        elif lives_in_this_process(registry.filesystem):  # simplecache::, dir:: included
            raise RegistryError(
                f"registry {settings.registry} is empty, and a memory:// registry lives in one "
                "process: the bundled champions are trained in another, so they would never "
                "reach it; serve a folder, or register champions in it first"
            )
        else:
            training = _start_first_training(settings.registry, registry)
            # The port opens now and the champions are trained beside it (by this server, or
            # by another that holds the registry's training lock): a liveness probe sees the
            # server up, /readyz says 503 until the registry watcher loads them.
            if training is not None or registry.champion("football", "1x2") is None:
                settings = settings.model_copy(update={"await_champions": True})
    try:
        if workers > 1:
            # Each worker process builds its own service and follows the registry's champions.
            os.environ["MARKETCAST_REGISTRY"] = settings.registry
            if settings.await_champions:
                os.environ["MARKETCAST_AWAIT_CHAMPIONS"] = "1"
            # each worker ends with this process: killed outright (SIGKILL), it left them
            # holding the port, and a restart failed with "Address already in use"
            os.environ[SUPERVISOR_PID_VARIABLE] = str(os.getpid())
            app: Any = SERVE_WORKER_APP
        else:
            app = build_default_app(settings)
        # Ctrl-C and SIGTERM end it after a graceful shutdown, with 130 and 143 as for any
        # command
        run_until_signal(
            app,
            factory=workers > 1,
            workers=workers,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            limit_concurrency=settings.limit_concurrency,
            timeout_keep_alive=settings.keep_alive_timeout_s,
            http=http_protocol(settings.header_timeout_s),
        )
    except BaseException:
        if training is not None and training.failure is not None:  # its SIGTERM stopped us
            raise ChildProcessError(
                f"training the bundled champions into {settings.registry} failed (exit status "
                f"{training.failure}; its output is above) before a football champion was "
                "registered, so the server, which could never become ready, stopped"
            ) from None
        raise
    finally:
        os.environ.pop(SUPERVISOR_PID_VARIABLE, None)
        if training is not None:
            training.stop()
    return 0


def _start_first_training(root: str, registry: Registry) -> FirstTraining | None:
    """Train the bundled champions into the empty local ``registry`` in a child process, unless
    another process holds its training lock (another server training it: ``None``, and this
    one waits for the champions). Without the lock two servers started together on one empty
    registry both trained it. A registry with no local folder (``s3://`` ...) has no lock, and
    every server started on it empty trains it.
    """
    try:
        lock_fd = lock_for_training(root)
    except TrainingElsewhereError:
        _console().print(
            f"registry {root} is empty and another server is training the bundled champions "
            "into it: serving 503 until they are registered"
        )
        return None
    try:
        if registry.champion("football", "1x2") is not None:  # trained while this one started
            return None
        _console().print(
            f"registry {root} is empty: training from the bundled data in the "
            "background; /readyz answers 503 until the champions are in"
        )
        return FirstTraining(
            first_training_command(root),
            lambda: os.kill(os.getpid(), signal.SIGTERM),  # it could never become ready
            _console(),
            # /readyz waits for this champion alone: with it, a failed crypto part leaves
            # football served
            has_football=lambda: registry.champion("football", "1x2") is not None,
            registry=root,
            lock_fd=lock_fd,
        )
    finally:
        if lock_fd is not None:  # the training child's copy holds the lock from here on
            os.close(lock_fd)


#: The variable through which ``serve --workers N`` tells its workers its pid.
SUPERVISOR_PID_VARIABLE = "MARKETCAST_SERVE_SUPERVISOR_PID"
#: The app factory each worker of ``serve --workers N`` runs (uvicorn imports it by name).
SERVE_WORKER_APP = "marketcast.orchestration.commands:serve_worker_app"


def _check_can_listen(host: str, port: int) -> None:
    """Refuse, naming them, a host that does not resolve and a port already taken, before
    any training starts: uvicorn said "[Errno -2] Name or service not known" or "address
    already in use" (exit 3), naming neither."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ValueError(f"--host {host}: cannot listen there: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ValueError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server on "
                "the port? give --port or MARKETCAST_PORT)"
            ) from None


def serve_worker_app() -> Any:
    """The app of one worker of ``marketcast serve --workers N``, ending with its supervisor.

    uvicorn's workers outlived a supervisor killed outright (SIGKILL, or an OOM kill), adopted
    by init: they held the port, ``/readyz`` answered from them (``loading`` for good on an
    empty registry, whose training had ended with the supervisor), and a restarted server
    failed with "Address already in use". Each worker now gets SIGTERM, uvicorn's graceful
    stop, when the supervisor dies (:func:`end_with_parent`, the training child's mechanism);
    the supervisor's pid comes from the supervisor (`SUPERVISOR_PID_VARIABLE`), not read here,
    so one that died while the worker started is not mistaken for the adopter.
    """
    from marketcast.serving.default import create_default_app

    supervisor = os.environ.pop(SUPERVISOR_PID_VARIABLE, "")  # not for the worker's children
    if supervisor.isdigit():
        end_with_parent(int(supervisor), signal.SIGTERM)
    return create_default_app()


def _strict_json(value: Any) -> str:
    """``value`` as standard JSON: NaN and infinities (allowed in manifest scores) become null.

    Examples
    --------
    >>> _strict_json({"scores": {"rps": float("nan"), "roi": [0.5, float("-inf")]}})
    '{"scores": {"rps": null, "roi": [0.5, null]}}'
    """
    return json.dumps(to_jsonable(value), allow_nan=False)


def _split(parts: list[str], n: int, name: str) -> list[str]:
    if len(parts) != n:
        shape = "vertical/market/model" if n == 3 else "vertical/market"
        raise ValueError(f"expected {shape}, got {name!r}")
    return parts


#: C0 controls, DEL and C1 controls: a terminal acts on them (ESC starts colour, title and
#: hyperlink sequences), so text read from a data file never reaches it raw.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    r"""``text`` with every control character written as an escape (``\x1b``, ``\n`` ...).

    Examples
    --------
    >>> print(_printable("Arsenal\x1b]0;owned\x07 FC\n"))
    Arsenal\x1b]0;owned\x07 FC\n
    """
    return _CONTROL_CHARS.sub(lambda m: repr(m.group(0))[1:-1], text)


def _issue_text(issue: dict[str, Any]) -> str:
    """One issue of an integrity report as a line for the terminal (control characters
    escaped: the file, field and value come from the data)."""
    where = ", ".join(
        str(part)
        for part in (
            issue.get("file"),
            f"row {issue['row']}" if issue.get("row") is not None else None,
            f"field {issue['field']!r}" if issue.get("field") else None,
        )
        if part
    )
    value = issue.get("value")
    text = f"{where}: {issue.get('reason')}" + (f" ({value})" if value not in (None, "") else "")
    return _printable(text)
