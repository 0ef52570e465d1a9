"""The football job end to end: load, features, walk-forward, scores, promotion, report."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import math
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec.core
import numpy as np
import pandas as pd
from fsspec import AbstractFileSystem
from fsspec.implementations.local import LocalFileSystem
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from marketcast.config import CryptoRunConfig, FootballRunConfig
from marketcast.data.feature_store import frame_sha256, save_features
from marketcast.data.files import write_atomic
from marketcast.data.validation import DataError
from marketcast.datasets.football_data import FootballData, load_football
from marketcast.evaluation.backtest import BacktestConfig
from marketcast.evaluation.football import (
    BASELINE_MODEL,
    FootballEvaluation,
    MarketEvaluation,
    evaluate_predictions,
)
from marketcast.evaluation.walk_forward import ProgressFn, walk_forward_predict
from marketcast.features.football import build_features, closing_targets
from marketcast.features.football_state import FeatureState, build_feature_state
from marketcast.models.base import ClosingTargets, fit_football_model
from marketcast.models.factory import make_model
from marketcast.orchestration.export import (
    PUBLISH_FILE,
    publish_champions,
    save_after_moves,
    save_report,
)
from marketcast.orchestration.window import utc_window
from marketcast.registry import (
    ChampionChangedError,
    ChampionRecord,
    Manifest,
    Registry,
    RegistryError,
    TrainingWindow,
    build_manifest,
    decide_among,
    decide_promotion,
)
from marketcast.registry.manifest import GroupWindow
from marketcast.registry.promotion import PromotionDecision, PromotionRule
from marketcast.registry.store import protocol_names, underlying
from marketcast.reports.writer import to_jsonable, write_report
from marketcast.types import AVERAGE_BOOKMAKER, MarketKind

log = logging.getLogger(__name__)
VERTICAL = "football"
FEATURE_STATE_FILE = "feature_state.json"
#: A football run's report files, copied into the registry (``_reports/football/<run_id>/``).
#: Every scored match's loss per model and yardstick, per market (:func:`losses_table`): the
#: evidence a decision can be checked against again without re-running.
LOSSES_FILE = "losses.parquet"
REPORT_FILES = ("report.json", "report.html", "evaluation.json", LOSSES_FILE)


@dataclass
class FootballRun:
    """What a run produced: the evaluation, where its report lives, the promotion decisions."""

    run_id: str
    run_dir: Path
    evaluation: FootballEvaluation
    report: dict[str, Any]
    champions: dict[str, str]
    #: per publish target: ``{"target", "ok", "markets" | "error"}`` (``publish.json``)
    published: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    #: registry copies of the report that failed once a pointer had moved (exit status 1)
    copy_errors: list[str] = dataclasses.field(default_factory=list)


def load_data(config: FootballRunConfig, config_path: str | None = None) -> FootballData:
    """Load the configured files (or the bundled data) and keep the configured leagues.

    A league the data lacks is a `DataError` naming ``config_path`` and ``data.leagues``, as
    ``data check --config`` reports it (it named neither under ``run``).
    """
    data = load_football(list(config.data.paths) or None)
    if data.matches.empty:
        raise ValueError(f"no matches found in {', '.join(config.data.paths) or 'the bundle'}")
    if config.data.leagues:
        try:
            data = select_leagues(data, config.data.leagues)
        except ValueError as exc:  # "unknown leagues ['XX']; the data holds ['D1', 'E0']"
            raise DataError(config_label(config_path), None, "data.leagues", str(exc)) from None
    return data


def config_label(config_path: str | None) -> str:
    """How an error names the run's config: its file, when the caller says which."""
    return config_path or "the config"


def select_leagues(data: FootballData, leagues: Sequence[str]) -> FootballData:
    """Keep only ``leagues`` (matches and their odds); an unknown league is a clear error."""
    known = set(data.matches["league"].unique())
    unknown = sorted(set(leagues) - known)
    if unknown:
        raise ValueError(f"unknown leagues {unknown}; the data holds {sorted(known)}")
    keep = data.matches["league"].isin(list(leagues)).to_numpy()
    matches = data.matches.loc[keep].reset_index(drop=True)
    odds = data.odds.loc[data.odds["match_id"].isin(matches["match_id"])].reset_index(drop=True)
    return dataclasses.replace(data, matches=matches, odds=odds)


def test_mask_last_seasons(matches: pd.DataFrame, n_seasons: int) -> np.ndarray:
    """Rows in the last ``n_seasons`` seasons present for each league."""
    mask = np.zeros(len(matches), dtype=bool)
    for _league, group in matches.groupby("league", sort=True):
        seasons = sorted(group["season"].unique())[-n_seasons:]
        mask[group.index[group["season"].isin(seasons)].to_numpy()] = True
    return mask


def test_mask_between(matches: pd.DataFrame, start: str, end: str | None) -> np.ndarray:
    """Rows with ``start <= kickoff_utc < end`` (dates are read as UTC midnight).

    Raises ``ValueError`` when ``end`` is not after ``start``.
    """
    kickoff = matches["kickoff_utc"]
    start_utc, end_utc = utc_window(start, end)
    inside = kickoff >= start_utc
    if end_utc is not None:
        inside &= kickoff < end_utc
    return inside.to_numpy(dtype=bool, copy=True)


def evaluate_football(
    config: FootballRunConfig,
    data: FootballData,
    test_mask: np.ndarray,
    *,
    console: Console | None = None,
    closing: ClosingTargets | None = None,
    config_path: str | None = None,
) -> tuple[FootballEvaluation, pd.DataFrame, dict[str, float]]:
    """Build features, walk forward every configured model, and score them against the market.

    ``closing`` are the training targets of models that learn the closing line
    (`closing_targets` of ``data`` for the configured markets), computed here when not given.
    Errors about the config's keys name ``config_path``.
    """
    timings: dict[str, float] = {}
    models = build_models(config)
    check_window(config, data, test_mask, config_path)
    t0 = time.perf_counter()
    X = build_features(data, demargin_method=config.demargin_method)
    timings["features"] = time.perf_counter() - t0
    markets = tuple(MarketKind(m) for m in config.markets)
    y_goals = data.matches[["home_goals", "away_goals"]].to_numpy()
    if closing is None:
        # only earlier rows reach a fit (walk_forward_predict slices them per step)
        closing = closing_targets(data, markets, method=config.demargin_method)
    t0 = time.perf_counter()
    with _progress(console, "walk-forward") as progress:
        predictions = walk_forward_predict(
            X,
            y_goals,
            test_mask,
            models,
            markets,
            step_days=config.walk_forward.step_days,
            retrain_every_steps=config.walk_forward.retrain_every_steps,
            progress=progress,
            closing=closing,
        )
    timings["walk_forward"] = time.perf_counter() - t0
    for name in models:
        timings[f"fit_{name}"] = round(predictions.fit_seconds[name], 3)
    t0 = time.perf_counter()
    bt = config.backtest
    evaluation = evaluate_predictions(
        data,
        X,
        predictions,
        markets,
        demargin_method=config.demargin_method,
        backtest=BacktestConfig(
            staking=bt.staking,
            kelly_fraction=bt.kelly_fraction,
            min_edge=bt.min_edge,
            max_stake_fraction=bt.max_stake_fraction,
            n_bootstrap=bt.n_bootstrap,
            seed=config.seed,
        ),
        bookmaker=bt.bookmaker,
        exchange_commission=bt.exchange_commission,
        promotion=PromotionRule(**config.promotion.model_dump()),
    )
    timings["scoring"] = time.perf_counter() - t0
    return evaluation, X, timings


def build_models(config: FootballRunConfig) -> dict[str, Any]:
    """The configured models with their ``model_params``, each checked before any data is read.

    Raises
    ------
    ValueError
        Naming ``model_params.<model>``: a parameter the model does not take (a misspelt key
        used to surface as a ``TypeError`` traceback) or one out of range (a negative half-life
        used to give a garbage Dixon-Coles without a word).
    """
    models: dict[str, Any] = {}
    # every model_params entry is checked, also one for a model this run leaves out: a mistake
    # there used to pass unnoticed until the model was switched on
    for name in (*config.models, *(m for m in config.model_params if m not in config.models)):
        try:  # make_model checks the parameters' ranges (the model's check_params)
            model = make_model(name, config.model_params.get(name), seed=config.seed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"model_params.{name}: {exc}") from None
        if name in config.models:
            models[name] = model
    return models


def check_outputs(
    config: FootballRunConfig | CryptoRunConfig, config_path: str | None = None
) -> None:
    """Fail before the walk-forward, not after it, when the results could not be kept.

    A registry URL whose filesystem cannot be opened, a registry root or ``runs_dir`` that is a
    file or cannot take a new file (read-only, a full quota): each used to surface only after
    minutes of fitting. Local folders (a path, or a ``file://`` registry URL) are created when
    missing and probed with a temporary file; a remote registry (``s3://`` ...) is probed by
    writing and deleting a temporary file under its root (:func:`_check_remote_writable`);
    ``runs_dir`` is probed again when the run creates its folder (:func:`new_run_dir`).
    Errors about a key that no run could use name ``config_path`` and the key: a ``runs_dir``
    that is a URL other than ``file://`` (:func:`local_runs_dir`), a ``memory://``
    registry, which would vanish with this process (as ``serve`` refuses one), and a
    ``publish`` target that cannot be opened or is the registry itself. Each ``publish``
    target is checked as the registry is (:func:`publish_champions` writes to it after the
    pointers move).
    """
    runs_dir = local_runs_dir(config.runs_dir, config_path)
    label = config_label(config_path)
    home = Registry(config.registry_root)  # RegistryError: unknown protocol, missing package
    local: list[tuple[str, Path]] = []
    remote: list[tuple[str, AbstractFileSystem, str, str]] = []
    urls = [("registry_root", config.registry_root)]
    urls += [(f"publish[{i}]", url) for i, url in enumerate(config.publish)]
    for key, url in urls:
        if key != "registry_root":
            try:
                target = Registry(url)
            except RegistryError as exc:
                raise DataError(label, None, key, str(exc)) from None
            if target.location == home.location:
                raise DataError(
                    label,
                    None,
                    key,
                    f"{url} is the registry itself (registry_root {config.registry_root}): a "
                    "publish target is another registry",
                )
        fs, root = underlying(*fsspec.core.url_to_fs(url))  # the registry's own reading
        if lives_in_this_process(fs):
            kept = "champions this run promotes" if key == "registry_root" else "copies it holds"
            raise DataError(
                label,
                None,
                key,
                f"{url} is a memory:// registry, which lives in this process only: the {kept} "
                "would vanish when it ends (`marketcast serve` refuses one for the same "
                "reason); use a folder or an object store URL",
            )
        if isinstance(fs, LocalFileSystem):
            # a plain path as written; a file:// URL or dir:: chain as the folder it opens
            local.append((key, Path(url if "://" not in url and "::" not in url else root)))
        else:
            remote.append((key, fs, root, url))
    local.append(("runs_dir", runs_dir))
    for key, folder in local:
        if folder.exists() and not folder.is_dir():
            raise DataError(label, None, key, f"{folder} is a file, not a folder")
    for key, folder in local:
        _check_writable(label, key, folder)
    for key, fs, root, url in remote:
        _check_remote_writable(fs, root, url, label, key)


def check_first_champions(config: FootballRunConfig, config_path: str | None = None) -> None:
    """Refuse, before the walk-forward, a run that would have to crown a first champion
    without the ``market`` model.

    A market with no champion on record takes the pre-match ``market`` model as its first
    champion, the bar every other model is then tested against. Without it in ``models`` the
    run used to crown the lowest log loss untested: a champion no paired test had compared with
    the market. A champion already on record needs no ``market`` in the run (it is defended by
    its own refit, a ``market`` champion by the ``prematch`` yardstick's losses, or it stays
    untested, :func:`_why_champion_stays`).

    Every configured market's champion pointer is read here, with ``market`` in ``models`` too:
    an unreadable ``champion.json`` then stops the run before any data is read. With ``market``
    in ``models`` it was first read after the walk-forward, and the run ended with exit 2 and
    no report.

    Raises
    ------
    DataError
        Naming ``config_path``, the key ``models`` and the markets with no champion.
    RegistryDamagedError
        Naming an unreadable ``champion.json``.
    """
    registry = Registry(config.registry_root)
    empty = [m for m in config.markets if registry.champion(VERTICAL, m) is None]
    if empty and BASELINE_MODEL not in config.models:
        raise DataError(
            config_label(config_path),
            None,
            "models",
            f"{', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no champion in "
            f"{config.registry_root} yet, and a first champion is the pre-match "
            f"{BASELINE_MODEL!r} model, the bar every other model is tested against: add "
            f"{BASELINE_MODEL!r} to models (it fits in seconds)",
        )


def local_runs_dir(runs_dir: str, config_path: str | None = None) -> Path:
    """``runs_dir`` as a local folder: a path as it is, a ``file://`` URL without its scheme.

    The run's folder, report and feature store are written with plain file calls, so any other
    URL is refused (``file:///tmp/x`` used to become a folder named ``file:`` in the working
    directory, and ``s3://b/x`` one named ``s3:``, with exit 0).

    Raises
    ------
    DataError
        For any other URL (``s3://``, ``memory://``, a chained ``simplecache::file://``),
        naming ``config_path`` and ``runs_dir``.

    Examples
    --------
    >>> local_runs_dir("runs"), local_runs_dir("file:///tmp/runs")
    (PosixPath('runs'), PosixPath('/tmp/runs'))
    """
    protocol, _ = fsspec.core.split_protocol(runs_dir)
    if protocol is None and "::" not in runs_dir:
        return Path(runs_dir)
    if protocol in ("file", "local") and "::" not in runs_dir:
        return Path(LocalFileSystem._strip_protocol(runs_dir))
    raise DataError(
        config_label(config_path),
        None,
        "runs_dir",
        f"{runs_dir} is not a local folder: the run's report and feature store are written "
        "there as plain files; give a path (or a file:// URL)",
    )


def lives_in_this_process(fs: AbstractFileSystem) -> bool:
    """Whether ``fs`` is fsspec's in-process ``memory://`` filesystem. It does not step over
    cache or ``dir::`` layers itself: pass the filesystem `underlying` returns, as
    ``Registry.filesystem`` is."""
    return "memory" in protocol_names(fs)


def _check_remote_writable(
    fs: AbstractFileSystem, root: str, url: str, label: str, key: str = "registry_root"
) -> None:
    """The remote registry root ``url`` (``root`` on ``fs``; the config's ``key``) takes a new
    file: an empty probe file is written under it and deleted again, the calls the registry
    itself makes (its folders are created as ``register`` creates them; an object store has no
    folder to leave).

    A bucket that does not exist, missing credentials or a read-only policy failed only after
    the walk-forward, when the first version was registered.
    """
    probe = f"{root.rstrip('/')}/.marketcast-write-probe.{os.getpid()}.{uuid.uuid4().hex}"
    try:
        fs.makedirs(root, exist_ok=True)
        fs.pipe_file(probe, b"")
        fs.rm_file(probe)
    except Exception as exc:  # each backend has its own errors (botocore's, gcsfs's ...)
        raise DataError(label, None, key, f"{url} cannot take a new file: {exc}") from exc


def _check_writable(label: str, key: str, folder: Path) -> None:
    """``folder`` takes a new file (probed); one that does not exist yet is created for the
    probe and removed again, with any parents made for it. Nothing is left behind.

    Creating it is the only sure test: a permission check passes as root, and ``/proc/x``
    failed only after the walk-forward, with a bare ``[Errno 2]`` naming no setting.
    """
    made: list[Path] = []
    target = folder.absolute()
    while not target.exists():
        made.append(target)
        target = target.parent
    try:
        for path in reversed(made):
            try:
                path.mkdir()
            except OSError as exc:
                raise DataError(
                    label, None, key, f"{folder} cannot be created: {exc.strerror}"
                ) from exc
        probe = folder / f".marketcast-write-probe.{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataError(
                label, None, key, f"{folder} cannot take a new file: {exc.strerror}"
            ) from exc
    finally:
        for path in made:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()


def check_bookmaker(
    config: FootballRunConfig,
    data: FootballData,
    test_mask: np.ndarray | None = None,
    config_path: str | None = None,
) -> None:
    """``backtest.bookmaker`` must price something in ``data`` (a typo used to mean 0 bets),
    and, given the evaluated matches ``test_mask``, one of them before kick-off in each market
    evaluated: a bookmaker that left the data (Pinnacle in newer seasons), or one that never
    priced a market (BW's over/under), gave an empty backtest that looked valid. The error
    names ``config_path`` (the config) and the key."""
    wanted = config.backtest.bookmaker
    label, key = config_label(config_path), "backtest.bookmaker"
    if wanted == "best":
        return
    # the market average is no bookmaker to bet with (the config refuses it): never offer it
    present = sorted(set(data.odds["bookmaker"].unique().tolist()) - {AVERAGE_BOOKMAKER})
    if wanted not in present:
        raise DataError(
            label,
            None,
            key,
            f"{wanted!r} prices nothing in the data; use 'best' or one of {', '.join(present)}",
        )
    if test_mask is None:
        return
    evaluated = data.matches["match_id"].to_numpy()[test_mask]
    quotes = data.odds.loc[
        (data.odds["timing"] == "prematch") & data.odds["match_id"].isin(evaluated)
    ]
    quoting = set(quotes["bookmaker"].unique().tolist()) - {AVERAGE_BOOKMAKER}
    if wanted not in quoting:
        raise DataError(
            label,
            None,
            key,
            f"{wanted!r} prices none of the {len(evaluated):,} matches evaluated before "
            "kick-off (only earlier ones); use 'best' or one of "
            f"{', '.join(sorted(quoting)) or 'nothing: no bookmaker quotes them'}",
        )
    by_market = quotes.groupby("market", observed=True)["bookmaker"].unique()
    unpriced = [m for m in config.markets if m not in by_market or wanted not in by_market[m]]
    if unpriced:
        raise DataError(
            label,
            None,
            key,
            f"{wanted!r} prices no {' or '.join(unpriced)} of the {len(evaluated):,} matches "
            f"evaluated before kick-off: use 'best', or leave {', '.join(unpriced)} out of the "
            "markets evaluated",
        )


def check_window(
    config: FootballRunConfig,
    data: FootballData,
    test_mask: np.ndarray,
    config_path: str | None = None,
) -> None:
    """What must hold of the evaluated matches before any model is fitted: some exist, the
    backtest's bookmaker prices them, and learning models have earlier matches to fit.

    An empty window is worded for ``evaluate``'s ``--start``/``--end``; ``run`` reads its window
    from the config, and :func:`evaluated_mask` refuses an empty one first, naming the keys.
    """
    if not test_mask.any():
        kickoffs = data.matches["kickoff_utc"]
        span = (
            f"the data's matches kick off from {kickoffs.min():%Y-%m-%d} to "
            f"{kickoffs.max():%Y-%m-%d}"
            if len(kickoffs)
            else "the data holds no match"
        )
        raise ValueError(f"no matches fall in the evaluation window ({span}): check --start/--end")
    check_bookmaker(config, data, test_mask, config_path)
    check_history(config, data, test_mask)


def check_history(
    config: FootballRunConfig,
    data: FootballData,
    test_mask: np.ndarray,
    *,
    config_path: str | None = None,
    config_key: str | None = None,
) -> None:
    """A learning model needs matches before the first evaluated one to train on.

    Without them the first walk-forward step had nothing to fit, and Elo or Dixon-Coles
    stopped the whole evaluation with an error about their fit, not about the data. A window
    read from the config (``config_key``) is a `DataError` naming ``config_path`` and the key;
    else (``evaluate``'s ``--start``) a ``ValueError``.
    """
    learners = [m for m in config.models if m != "market"]
    kickoff = data.matches["kickoff_utc"]
    first = kickoff[test_mask].min()
    if not learners or (kickoff < first).any():
        return
    verb = "trains" if len(learners) == 1 else "train"
    problem = (
        f"no match kicks off before the first evaluated one ({first:%Y-%m-%d}): "
        f"{', '.join(learners)} {verb} on earlier matches only; pass earlier seasons in the data"
    )
    if config_key is None:
        raise ValueError(f"{problem}, or start the evaluation later")
    later = (
        "evaluate fewer" if config_key.endswith("last_seasons") else "start the evaluation later"
    )
    raise DataError(config_label(config_path), None, config_key, f"{problem}, or {later}")


def run_football(
    config: FootballRunConfig, *, console: Console | None = None, config_path: str | None = None
) -> FootballRun:
    """The main job: walk-forward evaluation of every model, promotion, registry, reports.

    ``config_path``, the file ``config`` was read from, is named by the errors about its keys.
    """
    console = console or Console(stderr=True)
    build_models(config)
    check_outputs(config, config_path)
    check_first_champions(config, config_path)
    created = datetime.now(UTC)
    with run_folder(config, created) as run_dir:
        return _run_football(config, console, run_dir, created, config_path)


def evaluated_mask(
    config: FootballRunConfig, data: FootballData, config_path: str | None = None
) -> np.ndarray:
    """The evaluated matches: ``walk_forward.start`` to ``end`` when given, else the last
    ``walk_forward.last_seasons`` seasons of each league.

    Raises
    ------
    DataError
        When ``walk_forward.start`` (to ``end``) holds no match: naming ``config_path``, the
        keys and the data's span (the message said "check --start/--end", options ``run``
        does not have). The last seasons of loaded data always hold a match. When no match
        comes before the window for the learning models to train on (`check_history`), naming
        the key that set the window (it said "start the evaluation later" and named no file).
    """
    window = config.walk_forward
    if window.start is None:
        mask = test_mask_last_seasons(data.matches, window.last_seasons)
        check_history(
            config, data, mask, config_path=config_path, config_key="walk_forward.last_seasons"
        )
        return mask
    mask = test_mask_between(data.matches, window.start, window.end)
    if not mask.any():
        kickoff = data.matches["kickoff_utc"]
        until = f"walk_forward.end {window.end}" if window.end else "the end of the data"
        raise DataError(
            config_label(config_path),
            None,
            "walk_forward.start",
            f"no match kicks off from {window.start} to {until} (the data runs "
            f"{kickoff.min():%Y-%m-%d} to {kickoff.max():%Y-%m-%d}): move the window into the "
            "data, or leave walk_forward out to evaluate its last walk_forward.last_seasons "
            "seasons",
        )
    check_history(config, data, mask, config_path=config_path, config_key="walk_forward.start")
    return mask


def plan_football(config: FootballRunConfig, config_path: str | None = None) -> dict[str, Any]:
    """What ``marketcast run`` would do with ``config``, checked as the run checks it, without
    training (``--dry-run``): the data is read and every check made before the walk-forward
    runs (the models' parameters, the output folders, the leagues, the bookmaker, the history
    before the first evaluated match), then the evaluated seasons and matches per league.
    Errors about the config's keys name ``config_path``."""
    build_models(config)
    check_outputs(config, config_path)
    check_first_champions(config, config_path)
    data = load_data(config, config_path)
    evaluated = evaluated_mask(config, data, config_path)
    check_window(config, data, evaluated, config_path)
    matches = data.matches.assign(evaluated=evaluated)
    leagues = {}
    for league, group in matches.groupby("league", sort=True):
        tested = group.loc[group["evaluated"]]
        leagues[str(league)] = {
            "evaluated_seasons": sorted(tested["season"].unique().tolist()),
            "evaluated_matches": len(tested),
            "earlier_matches": int((group["kickoff_utc"] < tested["kickoff_utc"].min()).sum())
            if len(tested)
            else len(group),
        }
    return {
        "vertical": VERTICAL,
        "models": list(config.models),
        "markets": list(config.markets),
        "matches": len(data.matches),
        "evaluated_matches": int(evaluated.sum()),
        "leagues": leagues,
        "registry_root": config.registry_root,
        "runs_dir": config.runs_dir,
    }


def _run_football(
    config: FootballRunConfig,
    console: Console,
    run_dir: Path,
    created: datetime,
    config_path: str | None = None,
) -> FootballRun:
    run_id = run_dir.name
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data = load_data(config, config_path)
    timings["load"] = time.perf_counter() - t0
    console.log(
        f"loaded {len(data.matches)} matches from {data.report.files_read} files "
        f"({len(data.matches['league'].unique())} leagues)"
    )
    test_mask = evaluated_mask(config, data, config_path)
    closing = closing_targets(
        data, tuple(MarketKind(m) for m in config.markets), method=config.demargin_method
    )
    evaluation, X, eval_timings = evaluate_football(
        config, data, test_mask, console=console, closing=closing, config_path=config_path
    )
    timings.update(eval_timings)

    t0 = time.perf_counter()
    features = save_features(
        X.astype({"league": str}), local_runs_dir(config.runs_dir) / "feature_store", VERTICAL
    )
    data_sha = data_sha256(data)
    registry = Registry(config.registry_root)
    plans = _register_and_decide(
        config, registry, data, X, closing, evaluation, run_id, data_sha, features.sha256
    )
    timings["register"] = time.perf_counter() - t0
    champions = {plan.market: plan.champion for plan in plans}
    promotion = {
        plan.market: {**plan.promotion, "registry_champion": plan.champion}
        for plan in plans
        if plan.promotion is not None
    }

    published: list[dict[str, Any]] = []  # per publish target, once the pointers moved
    copy_errors: list[str] = []  # registry copies of the report that failed after a move

    def store_reports() -> None:
        """Copy the report files, evaluation.json (and publish.json, once published) into the
        registry."""
        names = (*REPORT_FILES, PUBLISH_FILE) if published else REPORT_FILES
        save_report(registry, VERTICAL, run_id, [run_dir / name for name in names])

    def write_reports(store: bool = True) -> dict[str, Any]:
        """Write the report, then (``store``) its registry copy: once a pointer has moved, a
        failure there is a warning and the run's exit status 1, not a stop (the registry keeps
        the copy saved before the moves)."""
        report = build_report(config, run_id, created, data, evaluation, promotion, timings)
        report["features"] = {"sha256": features.sha256, "path": str(features.path)}
        if published:
            report["publish"] = published
        write_report(run_dir, report)
        if not (run_dir / "evaluation.json").exists():
            write_json(run_dir / "evaluation.json", evaluation.to_contract_json())
        if not (run_dir / LOSSES_FILE).exists():
            write_atomic(run_dir / LOSSES_FILE, parquet_bytes(losses_table(data, evaluation)))
        if store:
            save_after_moves(store_reports, console, copy_errors)
        return report

    # The reports land, in the run folder and in the registry, before any champion pointer
    # moves: a run that fails while writing them leaves every champion where it was, and a
    # champion's run always has its report (the registry's copy is made in the try below, so
    # a failure there also marks the run folder's report as applying nothing).
    report = write_reports(store=False)

    by_market = {plan.market: plan for plan in plans}
    made: dict[str, int] = {}  # each market's moves made (_apply_promotions counts them)

    def mark_not_applied(not_applied: dict[str, str]) -> dict[str, Any]:
        for market, error in not_applied.items():
            moved = made.get(market, 0)
            what = "part of this run's change" if moved else "this run's change"
            console.log(f"[yellow]{market}: {what} to the champion was not applied: {error}")
            try:
                current = registry.champion(VERTICAL, market)
                champions[market] = current.model_name if current is not None else "none"
            except (RegistryError, OSError):
                champions[market] = "unknown (the registry could not be read)"
            promotion[market] = {
                **promotion.get(market, {}),
                "not_applied": error,
                "applied_moves": by_market[market].applied_moves(moved),
                "registry_champion": champions[market],
            }
        return write_reports()

    applied: list[str] = []
    saving: list[str] = []  # the market whose decisions were being saved, if any
    try:
        store_reports()
        not_applied = _apply_promotions(registry, plans, applied, made, saving)
    except BaseException as exc:
        # the report already said "registry champion after this run" for every market: a run
        # stopped here (a registry error, SIGTERM) left a page describing moves never made,
        # and one stopped between two moves of a market called both unmade
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        stopped = {
            p.market: p.not_applied(
                made.get(p.market, 0),
                f"the run stopped ({why})"
                if made.get(p.market, 0)
                else f"the run stopped before this market was applied ({why})",
            )
            for p in plans
            # a market whose moves were all made is applied, even if saving a decision failed
            if p.market not in applied and not (p.moves and made.get(p.market) == len(p.moves))
        }
        for market in saving:  # the report said nothing, and `registry recheck` found none
            promotion[market] = {
                **promotion.get(market, {}),
                "decision_not_saved": f"the run stopped while saving this market's promotion "
                f"decision ({why}): the champion pointer's reason says why it is champion",
            }
        with contextlib.suppress(Exception):
            mark_not_applied(stopped)  # writes the reports, with no market stopped too
        raise
    if not_applied:
        report = mark_not_applied(not_applied)
    published.extend(
        publish_champions(
            config.publish, registry, VERTICAL, list(config.markets), run_id, run_dir, console
        )
    )
    if published:  # the report, and the registry's copy of it, say where it was published
        report = write_reports()
    print_summary(console, evaluation, champions, run_dir, promotion)
    return FootballRun(run_id, run_dir, evaluation, report, champions, published, copy_errors)


def new_run_dir(runs_dir: str | Path, run_id: str) -> Path:
    """Create the run's folder, never one another run already holds: two runs with the same
    name started in the same second each get their own (``..._2``), instead of sharing one
    and losing a report. Creating it first also proves ``runs_dir`` is writable before hours
    of work. A ``runs_dir`` given as text is read by :func:`local_runs_dir` (``file://``
    stripped, any other URL refused).

    Examples
    --------
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> new_run_dir(root, "r").name, new_run_dir(root, "r").name
    ('r', 'r_2')
    """
    folder = runs_dir if isinstance(runs_dir, Path) else local_runs_dir(runs_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        candidate = folder / (run_id if n == 1 else f"{run_id}_{n}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OSError(f"cannot create the run folder {candidate}: {exc.strerror}") from exc
        return candidate
    raise OSError(f"cannot create a run folder for {run_id} in {runs_dir}: 999 already exist")


@contextmanager
def run_folder(config: FootballRunConfig | CryptoRunConfig, created: datetime) -> Iterator[Path]:
    """The run's own folder (:func:`new_run_dir`), removed again if the run fails before
    writing anything into it."""
    run_dir = new_run_dir(
        config.runs_dir, f"{created:%Y-%m-%dT%H-%M-%S}_{config.name}_s{config.seed}"
    )
    try:
        yield run_dir
    except BaseException:
        with contextlib.suppress(OSError):
            run_dir.rmdir()  # only when empty
        raise


@dataclass
class _MarketPlan:
    """One market's promotion: decided, its versions registered, its pointer not yet moved."""

    market: str
    #: the champion pointer read before deciding: ``(model, version)``, ``None`` for none
    expected: tuple[str, str] | None
    #: ``set_champion`` calls to make, in order: ``(model, version, reason)``; the first
    #: installs the first champion (``expected`` None) or refreshes the incumbent, a second
    #: promotes the challenger over it. A ``market`` champion this run did not fit has no refit
    #: to refresh it with: its only move, if any, is a promotion; with none, its decision is
    #: saved as it is (:func:`_apply_promotions`)
    moves: list[tuple[str, str, str]]
    #: each saved right after the move it justifies, and only once that move is made (a
    #: decision is never on file without its effect)
    decisions: list[PromotionDecision]
    champion: str
    promotion: dict[str, Any] | None
    #: for each of ``decisions``, the index in ``moves`` of the move it justifies; a decision
    #: without an entry is saved after the last move
    justifies: list[int] = dataclasses.field(default_factory=list)

    def decisions_after(self, move: int) -> list[PromotionDecision]:
        """The decisions to save once ``moves[move]`` is made."""
        last = len(self.moves) - 1
        return [
            decision
            for i, decision in enumerate(self.decisions)
            if (self.justifies[i] if i < len(self.justifies) else last) == move
        ]

    def _pointer_before(self, move: int) -> tuple[str, str] | None:
        """The champion pointer ``moves[move]`` replaces: ``expected``, or the move before."""
        if move == 0:
            return self.expected
        model_name, version, _ = self.moves[move - 1]
        return model_name, version

    def move_done(self, move: int) -> str:
        """``moves[move]`` in words, as made: ``"market <version> installed as the first
        champion"``, ``"champion elo refreshed with <version> ..."``, ``"elo <version> promoted
        over market"``."""
        model_name, version, _ = self.moves[move]
        before = self._pointer_before(move)
        if before is None:
            return f"{model_name} {version} installed as the first champion"
        if before[0] == model_name:
            return (
                f"champion {model_name} refreshed with {version} (its refit on this run's matches)"
            )
        return f"{model_name} {version} promoted over {before[0]}"

    def move_pending(self, move: int) -> str:
        """``moves[move]`` in words, as not made: ``"the promotion of elo <version> over
        market"``, ``"the refresh of champion market"``, ``"the installation of ..."``."""
        model_name, version, _ = self.moves[move]
        before = self._pointer_before(move)
        if before is None:
            return f"the installation of {model_name} {version} as the first champion"
        if before[0] == model_name:
            return f"the refresh of champion {model_name} with {version}"
        return f"the promotion of {model_name} {version} over {before[0]}"

    def not_applied(self, made: int, why: str) -> str:
        """Why the market's moves from ``moves[made]`` on were not made, after the ones before.

        With none made, ``why`` alone (as before); else what reached the registry, then what
        did not: ``"market <v> installed as the first champion; the promotion of elo <v> over
        market was not applied: <why>"``.
        """
        if made <= 0:
            return why
        done = "; ".join(self.move_done(i) for i in range(made))
        pending = " and ".join(self.move_pending(i) for i in range(made, len(self.moves)))
        return f"{done}; {pending} was not applied: {why}"

    def applied_moves(self, made: int) -> list[dict[str, str]]:
        """The first ``made`` moves, as the report's ``applied_moves`` lists them."""
        return [
            {"model_name": model_name, "version": version, "reason": reason}
            for model_name, version, reason in self.moves[:made]
        ]


def _register_and_decide(
    config: FootballRunConfig,
    registry: Registry,
    data: FootballData,
    X: pd.DataFrame,
    closing: ClosingTargets,
    evaluation: FootballEvaluation,
    run_id: str,
    data_sha: str,
    features_sha: str,
) -> list[_MarketPlan]:
    """Fit each model on all matches and register it per market, then decide each promotion.

    Per market: with no champion yet, the pre-match ``market`` model becomes champion (the bar
    every model must clear). Every other model then faces the current champion in a paired
    test on this run's per-match losses, Holm-corrected (:func:`decide_among`). A champion this
    run did not evaluate stays, untested (nothing here was compared with it), except ``market``:
    without the ``market`` model in the run, the ``prematch`` yardstick's losses (the same
    de-margined pre-match prices, so the champion's own forecast) defend it, as ``evaluate``
    defends it, and the champion on record stays in place unless a challenger is promoted
    (there is no refit of it to refresh it with). Nothing moves a champion pointer here:
    :func:`_apply_promotions` does, after the reports are written.
    """
    y_goals = data.matches[["home_goals", "away_goals"]].to_numpy()
    window = training_window(data.matches["kickoff_utc"], data.matches["league"])
    rule = PromotionRule(**config.promotion.model_dump())
    window_leagues = sorted(set(data.matches["league"].astype(str)))
    state = build_feature_state(data, demargin_method=config.demargin_method).to_json()
    artifacts: dict[str, dict[str, bytes]] = {}
    for name in config.models:
        model = make_model(name, config.model_params.get(name), seed=config.seed)
        fit_football_model(model, X, y_goals, closing)
        # The serving state travels with every model: the server rebuilds features from it.
        artifacts[name] = {**model.to_artifact(), FEATURE_STATE_FILE: state}

    # until the report is saved: a run stopped before it leaves versions `registry clean` finds
    registry.begin_run(VERTICAL, run_id)
    plans: list[_MarketPlan] = []
    for market_name, ev in evaluation.markets.items():
        versions: dict[str, str] = {}
        for name in ev.summary["engines"]:
            manifest = build_manifest(
                model_name=name,
                vertical=VERTICAL,
                market=market_name,
                config=config,
                files=artifacts[name],
                data_sha256=data_sha,
                features_sha256=features_sha,
                training_window=window,
                scores={
                    **{k: float(v) for k, v in ev.summary["engines"][name].items()},
                    "ratio_to_closing": float(ev.summary["ratio_to_closing"][name]),
                },
                backtest=ev.summary["backtest"].get(name, {}),
                run_id=run_id,
            )
            versions[name] = registry.register(
                VERTICAL, market_name, name, artifacts[name], manifest
            )

        current = registry.champion(VERTICAL, market_name)
        expected = None if current is None else (current.model_name, current.version)
        why = (
            _why_champion_stays(registry, market_name, current, config, ev, window_leagues, window)
            if current is not None
            else None
        )
        if current is not None and why is not None:
            reason = f"{current.model_name} {current.version} stays: {why}"
            promotion = {"promote": False, "champion": current.model_name, "reason": reason}
            plans.append(_MarketPlan(market_name, expected, [], [], current.model_name, promotion))
            continue
        moves: list[tuple[str, str, str]] = []
        decisions: list[PromotionDecision] = []
        justifies: list[int] = []  # per decision, the index of the move it is saved after
        if current is None:
            # check_first_champions refused a run without it (a champion is never removed)
            incumbent = BASELINE_MODEL
            bootstrap = decide_promotion(
                None,
                None,
                incumbent,
                ev.losses[incumbent],
                rule,
                challenger_version=versions[incumbent],  # the audit names what was crowned
            )
            bootstrap = bootstrap.model_copy(update={"decided_utc": registry.now()})
            decisions.append(bootstrap)
            justifies.append(0)
            moves.append((incumbent, versions[incumbent], bootstrap.reason))
        elif current.model_name in versions:
            incumbent = current.model_name
            moves.append(
                (
                    incumbent,
                    versions[incumbent],
                    f"champion {incumbent} refreshed: refit on matches up to "
                    f"{window['end_utc']:%Y-%m-%d}",
                )
            )
        else:  # market, not in this run: defended by the prematch losses, kept as it is
            incumbent = current.model_name
        # the version defended: this run's refit, else (a kept market champion) the one on record
        defended = versions.get(incumbent, current.version if current is not None else None)
        plan = _MarketPlan(market_name, expected, moves, decisions, incumbent, None, justifies)
        challengers = {n: ev.losses[n] for n in versions if n != incumbent}
        if challengers:
            decision = decide_among(
                incumbent,
                incumbent_losses(incumbent, ev.losses),
                challengers,
                rule,
                champion_version=defended,
                versions=versions,
            )
            # stamped now, so the report (written before it is saved) and the saved file agree
            decision = decision.model_copy(update={"decided_utc": registry.now()})
            decisions.append(decision)
            # tested against the incumbent's version of this run: on file once that is champion,
            # and a promotion once the challenger is (a kept market champion: the promotion is
            # the only move, and a rejection is saved without one)
            justifies.append(len(moves) if decision.promote else 0)
            if decision.promote:
                challenger = decision.challenger
                moves.append((challenger, versions[challenger], decision.reason))
                plan.champion = challenger
            plan.promotion = decision.model_dump(mode="json")
        else:  # nothing challenged: the report says what the run did to the champion
            plan.promotion = {"promote": False, "champion": incumbent, "reason": moves[0][2]}
        if current is None:
            # the first champion was crowned by this run: said, not left to "keep market"
            plan.promotion["first_champion"] = f"{incumbent} {versions[incumbent]}: {moves[0][2]}"
        plans.append(plan)
    return plans


def _apply_promotions(
    registry: Registry,
    plans: Sequence[_MarketPlan],
    applied: list[str] | None = None,
    made: dict[str, int] | None = None,
    saving: list[str] | None = None,
) -> dict[str, str]:
    """Move each market's champion pointer as planned, saving each decision right after the
    move it justifies.

    Each move is conditional on the pointer still holding what the plan read (or what the
    previous move set), so a promotion or rollback made while this run worked is not undone:
    that market's remaining moves are left alone and reported. Returns ``{market: why not
    everything was applied}`` (:meth:`_MarketPlan.not_applied`: what was, then what was not).
    ``applied`` receives each market once it is done (or left alone), and ``made`` counts each
    market's moves made so far, so a caller that sees an exception knows which moves were not
    reached, also between two moves of one market (a first champion installed, its challenger
    not yet promoted). ``saving`` holds the market whose decisions are being saved while that
    goes on, so the caller can say a move stands without its decision.
    """
    applied = [] if applied is None else applied
    made = {} if made is None else made
    saving = [] if saving is None else saving
    not_applied: dict[str, str] = {}
    for plan in plans:
        pointer = plan.expected
        made[plan.market] = 0
        try:
            for index, (model_name, version, reason) in enumerate(plan.moves):
                registry.set_champion(
                    VERTICAL, plan.market, model_name, version, reason, expected=pointer
                )
                pointer = (model_name, version)
                made[plan.market] = index + 1
                # moved: a failure saving its decisions does not undo that
                saving.append(plan.market)
                for decision in plan.decisions_after(index):
                    registry.save_decision(VERTICAL, plan.market, decision)
                saving.remove(plan.market)
            if not plan.moves:  # a kept market champion's rejection: no move to wait for
                saving.append(plan.market)
                for decision in plan.decisions:
                    registry.save_decision(VERTICAL, plan.market, decision)
                saving.remove(plan.market)
        except ChampionChangedError as exc:
            not_applied[plan.market] = plan.not_applied(made[plan.market], str(exc))
        applied.append(plan.market)
    return not_applied


def build_report(
    config: FootballRunConfig,
    run_id: str,
    created: datetime,
    data: FootballData,
    evaluation: FootballEvaluation,
    promotion: dict[str, Any],
    timings: dict[str, float],
) -> dict[str, Any]:
    """The run report: the contract JSON plus per-league tables, curves and data integrity."""
    from marketcast.registry.manifest import git_sha

    return {
        "run_id": run_id,
        "created_utc": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_sha": git_sha(),
        "config": config.model_dump(mode="json"),
        "data": {**data.report.to_dict(), "matches_in_run": len(data.matches)},
        "evaluation": evaluation.to_contract_json(),
        "per_league": _per_league(evaluation),
        "reliability": {m: ev.reliability for m, ev in evaluation.markets.items()},
        "profit_curves": {m: ev.profit_curves for m, ev in evaluation.markets.items()},
        "promotion": promotion or {m: ev.promotion for m, ev in evaluation.markets.items()},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }


def _per_league(evaluation: FootballEvaluation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for market_name, ev in evaluation.markets.items():
        for league, section in ev.per_league.items():
            out.setdefault(league, {})[market_name] = section
    return out


def print_summary(
    console: Console,
    evaluation: FootballEvaluation,
    champions: dict[str, str],
    run_dir: Path,
    promotion: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """Terminal table: per market and model, log loss ratio to the closing line, RPS, ROI, CLV;
    then each market's promotion decision (who challenged, and why it did or did not win)."""
    table = Table(title="marketcast football: walk-forward vs the de-margined closing line")
    table.add_column("market", no_wrap=True)
    table.add_column("model", no_wrap=True, min_width=13)
    for column in ("log loss", "ratio", "RPS", "ROI", "bets", "CLV"):
        table.add_column(column, justify="right", no_wrap=True)
    for market_name, ev in evaluation.markets.items():
        s = ev.summary
        for name, scores in s["engines"].items():
            bt = s["backtest"].get(name, {})
            mark = " *" if champions.get(market_name, ev.champion) == name else ""
            table.add_row(
                market_name,
                name + mark,
                _fixed(scores.get("log_loss")),
                _fixed(s["ratio_to_closing"].get(name)),
                _fixed(scores.get("rps")),
                _pct(bt.get("roi")),
                str(bt.get("n_bets", 0)),
                _pct(bt.get("clv")),
            )
        for yardstick in ("prematch", "closing"):
            m = s["market"][yardstick]
            # the closing line's own ratio is 1 only where it scored something
            ratio = s["ratio_to_closing"].get(yardstick, 1.0 if m.get("n") else None)
            table.add_row(
                market_name,
                Text(f"{yardstick} line", style="italic"),
                _fixed(m.get("log_loss")),
                _fixed(ratio),
                _fixed(m.get("rps")),
                "",
                "",
                "",
                end_section=yardstick == "closing",
            )
    # never narrower than the table: at a pipe's 80 columns, one wide ROI cut every ratio to
    # "1.00…", the number the table is for
    print_unclipped(console, table)
    priced = {str(ev.summary.get("odds_taken", "best")) for ev in evaluation.markets.values()} or {
        "best"
    }
    at = ", ".join(
        "the best pre-match price" if b == "best" else f"{b}'s pre-match price"
        for b in sorted(priced)
    )
    console.print(
        "ratio = log loss / closing line's log loss (lower is better); champion marked *; "
        f"ROI and CLV at {at}"
    )
    print_decisions(console, promotion or {})
    console.print(f"report: {run_dir / 'report.html'}")


def print_plain(console: Console, text: str) -> None:
    """Print ``text`` as it is: no rich markup read in it (a "[...]" in a file name or an error
    vanished), no highlighting, and long lines wrapped rather than cut."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_unclipped(console: Console, table: Table) -> None:
    """Print ``table`` at its natural width when the console is narrower (rich caps a print
    at the console's width and cuts cells to "…").

    The width is widened for this print only and then restored as it was, including a console
    that follows its terminal's width (rich's ``_width`` None; its setter would pin it).
    """
    needed = console.measure(table, options=console.options.update_width(10_000)).maximum
    if needed <= console.width:
        console.print(table)
        return
    saved = console._width
    console.width = needed
    try:
        console.print(table)
    finally:
        console._width = saved


def print_decisions(console: Console, decisions: Mapping[str, Mapping[str, Any]]) -> None:
    """One line per market (or horizon): challenger, verdict, champion and the rule's reason."""
    for key, decision in decisions.items():
        if decision.get("challenger") is None and decision.get("first_champion"):
            line = f"{key}: first champion {decision['first_champion']}"
        elif decision.get("challenger") is None:
            line = f"{key}: {decision.get('champion')} stays champion: {decision.get('reason')}"
        else:
            # a first run crowns a champion and tests the others against it: both are said
            first = decision.get("first_champion")
            crowned = f"first champion {first}; " if first else ""
            line = f"{key}: {crowned}{decision_verdict(decision)}"
        if decision.get("not_applied"):
            line += f" [NOT APPLIED: {decision['not_applied']}]"
        console.print(line, markup=False, highlight=False)


def decision_verdict(decision: Mapping[str, Any]) -> str:
    """A tested decision in words: ``"<challenger> promoted over <champion>: <reason>"``."""
    verdict = "promoted" if decision.get("promote") else "not promoted"
    return (
        f"{decision['challenger']} {verdict} over {decision.get('champion')}: "
        f"{decision.get('reason')}"
    )


def data_sha256(data: FootballData) -> str:
    """Content hash of the loaded matches and odds (the data hash in every manifest).

    ``source_file`` (where each CSV was read from) is left out: the same files read from
    another folder (another clone, a CI checkout) hash alike. What a file's path said about
    its rows is in them already (a file without ``Div`` takes its league from its folder, one
    without ``Season`` its season from its name, into the ``league`` and ``season`` columns),
    and ``source_row`` stays.
    """
    digest = hashlib.sha256()
    digest.update(
        frame_sha256(data.matches.drop(columns=["source_file"], errors="ignore")).encode()
    )
    digest.update(frame_sha256(data.odds).encode())
    return digest.hexdigest()


#: Seconds between the plain progress lines written where the console is no terminal.
PLAIN_PROGRESS_S = 30.0


@contextmanager
def _progress(
    console: Console | None, label: str, *, every_s: float = PLAIN_PROGRESS_S
) -> Iterator[ProgressFn]:
    """A progress bar on a terminal; elsewhere (a log file, CI, nohup) one plain line at most
    every ``every_s`` seconds and one at the end: a bar is drawn only when it finishes there,
    so a 30-minute run wrote nothing after its first line and looked hung.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with _progress(Console(file=out, width=80), "walk-forward", every_s=0) as step:
    ...     step(1, 3, "2023-08-12"); step(3, 3, "2023-08-26")
    >>> print(out.getvalue().replace(" 0:00:00", ""), end="")
    walk-forward 1/3 2023-08-12
    walk-forward 3/3 2023-08-26
    """
    if console is None:
        yield lambda done, total, desc: None
        return
    if not console.is_terminal:
        started, last = time.monotonic(), -math.inf

        def line(done: int, total: int, detail: str) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last < every_s and done != total:
                return
            last = now
            elapsed = timedelta(seconds=int(now - started))
            text = f"{label} {done}/{total} {elapsed} {detail}".rstrip()
            print_plain(console, text)

        yield line
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(label, total=None, detail="")

        def update(done: int, total: int, detail: str) -> None:
            bar.update(task, completed=done, total=total, detail=detail)

        yield update


def _fixed(value: float | None) -> str:
    """Four decimals, or a dash for a score that is missing or NaN (nothing scored)."""
    return "-" if value is None or not np.isfinite(value) else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return (
        "" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:+.2%}"
    )


def write_json(path: str | Path, obj: Any) -> None:
    """Write JSON atomically (`write_atomic`); NaN becomes null (``to_jsonable``).

    A failure (``path`` is a folder, the disk is full) names ``path`` and leaves no temporary
    file behind; the old ``path.tmp`` scheme left one.
    """
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False)
    write_atomic(path, text.encode("utf-8"))


def _why_champion_stays(
    registry: Registry,
    market: str,
    champion: ChampionRecord,
    config: FootballRunConfig,
    ev: MarketEvaluation,
    window_leagues: Sequence[str],
    window: Mapping[str, Any],
) -> str | None:
    """Why this run may neither refresh nor challenge the champion, or None when it may.

    A champion this run did not evaluate was tested against nothing here; a ``market``
    champion counts as evaluated without the ``market`` model, as in ``evaluate``: the
    ``prematch`` yardstick's losses are its forecast (:func:`incumbent_losses`). A champion
    whose manifest or files cannot be read stays: the leagues and settings below come from
    them, and reading a damaged champion as "every league, same settings" let an E0-only run
    replace a champion that served D1 too. A run that does not cover every league the champion
    serves (an E0-only experiment) would refit it on fewer leagues, and the server then
    answered 422 for the others. A run whose settings make the champion's model another model
    "refreshed" it, untested, with the new parameters and tested the challengers against
    those. A run that scored no match in this market (files without closing prices) tested
    nothing, and its refit used to replace the champion all the same. A run on less data than
    the champion was fit on (``window``, this run's training window, against the champion
    manifest's: :func:`less_data_than_champion`) would replace it with an older or thinner fit:
    a run over 2019-2021 replaced an elo fit on 6,840 matches up to 2023 with one on 1,520.
    Checked in that order; the champion's files are read once it was evaluated and scored.
    """
    if champion.model_name not in ev.losses and not defended_by_prematch(
        champion.model_name, ev.losses
    ):
        return (
            f"this run did not evaluate it (models: {', '.join(ev.summary['engines'])}), so no "
            "challenger was tested against it"
        )
    if not len(incumbent_losses(champion.model_name, ev.losses)):
        return (
            "this run scored no match in this market (a match is scored once it has its "
            "closing prices and result), so it tested neither its refit nor a challenger"
        )
    try:
        served = _champion_leagues(registry, market, champion)
        manifest = registry.manifest(VERTICAL, market, champion.model_name, champion.version)
        changed = changed_settings(manifest, config, ("demargin_method",))
    except CHAMPION_READ_ERRORS as error:
        return (
            f"{unreadable_champion(error)}, so this run cannot tell which leagues it serves or "
            "which settings made it, and neither its refit nor a challenger may replace it "
            "(this run's versions are registered: repair the champion's version, or "
            "`marketcast registry promote` one to replace it on purpose)"
        )
    uncovered = sorted(served - set(window_leagues))
    if uncovered:
        return (
            f"it serves {', '.join(uncovered)}, which this run did not cover (this run: "
            f"{', '.join(window_leagues)}), so neither its refit nor a challenger may replace it "
            "(this run's versions are registered: `marketcast registry promote` one to drop "
            "those leagues on purpose)"
        )
    if changed:
        return (
            f"this run's {' and '.join(changed)} differ from the champion's, so its refit here is "
            "another model and no challenger was tested against the champion itself (this run's "
            "versions are registered: `marketcast registry promote` one to replace it on "
            "purpose, or run with the champion's settings)"
        )
    less = less_data_than_champion(manifest.training_window, window, "matches")
    if less:
        return (
            f"{less}, so neither its refit nor a challenger may replace it (this run's versions "
            "are registered: `marketcast registry promote` one to replace it on purpose, or run "
            "on data that reaches the champion's)"
        )
    return None


def losses_table(data: FootballData, evaluation: FootballEvaluation) -> pd.DataFrame:
    """Every scored match's per-match loss in each market: ``market``, ``match_id``,
    ``kickoff_utc``, ``league``, ``home_team``, ``away_team``, then ``loss_<name>`` per model
    and yardstick (``loss_elo``, ``loss_prematch``, ``loss_closing``; NaN where one has no loss
    on that market's match).

    The paired test of a run's decision is made on these columns (a ``market`` champion the run
    did not fit on ``loss_prematch``), so a saved decision can be checked again from the run's
    report in the registry, without re-running (docs/registry.md).
    """
    frames = []
    for market, ev in evaluation.markets.items():
        rows = data.matches.iloc[ev.rows]
        frame = pd.DataFrame(
            {
                "market": market,
                "match_id": rows["match_id"].to_numpy(),
                "kickoff_utc": rows["kickoff_utc"].to_numpy(),
                "league": rows["league"].astype(str).to_numpy(),
                "home_team": rows["home_team"].astype(str).to_numpy(),
                "away_team": rows["away_team"].astype(str).to_numpy(),
            }
        )
        for name, losses in ev.losses.items():
            frame[f"loss_{name}"] = np.asarray(losses, dtype=np.float64)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as parquet file bytes (no index)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def training_window(times: pd.Series, groups: pd.Series) -> dict[str, Any]:
    """A manifest's ``training_window`` for rows at ``times`` (UTC) in ``groups`` (football:
    the league, crypto: the pair): the span and count of them all, and per group where its
    rows end and how many there are.

    Examples
    --------
    >>> times = pd.to_datetime(["2023-05-28", "2024-05-19", "2024-05-26"], utc=True)
    >>> window = training_window(pd.Series(times), pd.Series(["E0", "E0", "SP1"]))
    >>> window["n_matches"], window["groups"]["E0"]["n_matches"], window["groups"]["SP1"]["end_utc"]
    (3, 2, datetime.datetime(2024, 5, 26, 0, 0, tzinfo=datetime.timezone.utc))
    """
    per = pd.DataFrame({"time": times, "group": groups.astype(str)}).groupby("group")["time"]
    ends, counts = per.max(), per.size()
    return {
        "start_utc": times.min().to_pydatetime(),
        "end_utc": times.max().to_pydatetime(),
        "n_matches": len(times),
        "groups": {
            str(group): {"end_utc": ends[group].to_pydatetime(), "n_matches": int(counts[group])}
            for group in ends.index
        },
    }


def less_data_than_champion(
    champion: TrainingWindow, run: Mapping[str, Any], unit: str
) -> str | None:
    """Why a run's training window (``run``: ``start_utc``, ``end_utc``, ``n_matches``, and per
    league or pair ``groups``) holds less than the one the champion was fit on, or None when it
    holds at least as much: it ends no earlier and counts no fewer rows (``unit``: matches,
    bars), in every group the champion was fit on that the run has too, then in all.

    A champion's refresh is untested (the refit of the same model replaces it), so it is made
    only on data that reaches at least as far as the champion's and is at least as large. The
    groups are compared first: a run on E0 to 2021 and SP1 to 2024 reached further and held
    more than an E0 champion fit to 2023, and replaced it with an E0 fit two seasons older. A
    champion whose manifest has no groups (made before 2026-11-24) is compared in all only. A
    rolling window that drops old seasons as it adds new ones counts fewer rows: its refit is
    promoted by hand.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> champion = TrainingWindow(
    ...     start_utc=datetime(2019, 8, 1, tzinfo=UTC),
    ...     end_utc=datetime(2023, 5, 28, tzinfo=UTC),
    ...     n_matches=6840,
    ... )
    >>> run = {"start_utc": datetime(2019, 8, 1, tzinfo=UTC), "n_matches": 1520}
    >>> older = {**run, "end_utc": datetime(2021, 5, 23, tzinfo=UTC)}
    >>> print(less_data_than_champion(champion, older, "matches"))
    this run's data ends 2021-05-23, before the champion's (2023-05-28)
    >>> thinner = {**run, "end_utc": datetime(2024, 5, 19, tzinfo=UTC)}
    >>> print(less_data_than_champion(champion, thinner, "matches"))
    this run's data holds 1,520 matches, fewer than the 6,840 the champion was fit on
    >>> print(less_data_than_champion(champion, champion.model_dump(), "matches"))
    None
    >>> e0 = {"end_utc": datetime(2023, 5, 28, tzinfo=UTC), "n_matches": 6840}
    >>> champion = TrainingWindow.model_validate({**champion.model_dump(), "groups": {"E0": e0}})
    >>> mixed = {**thinner, "n_matches": 9000, "groups": {"E0": {**e0, "n_matches": 1520}}}
    >>> print(less_data_than_champion(champion, mixed, "matches"))
    this run's data holds 1,520 E0 matches, fewer than the 6,840 the champion was fit on
    """
    ours = TrainingWindow.model_validate(run)
    pairs: list[tuple[str, GroupWindow | TrainingWindow, GroupWindow | TrainingWindow]] = [
        (f"{name} ", theirs, ours.groups[name])
        for name, theirs in sorted((champion.groups or {}).items())
        if ours.groups is not None and name in ours.groups
    ]
    for name, theirs, mine in [*pairs, ("", champion, ours)]:
        if mine.end_utc < theirs.end_utc:
            return (
                f"this run's {name}data ends {_day(mine.end_utc)}, before the champion's "
                f"({_day(theirs.end_utc)})"
            )
        if mine.n_matches < theirs.n_matches:
            return (
                f"this run's data holds {mine.n_matches:,} {name}{unit}, fewer than the "
                f"{theirs.n_matches:,} the champion was fit on"
            )
    return None


def _day(moment: datetime) -> str:
    """A UTC moment as its day, with the time where it is not midnight (crypto bars).

    Examples
    --------
    >>> _day(datetime(2023, 5, 28, tzinfo=UTC)), _day(datetime(2023, 5, 28, 13, tzinfo=UTC))
    ('2023-05-28', '2023-05-28 13:00 UTC')
    """
    moment = moment.astimezone(UTC)
    midnight = moment.time() == datetime.min.time()
    return f"{moment:%Y-%m-%d}" if midnight else f"{moment:%Y-%m-%d %H:%M} UTC"


def defended_by_prematch(model_name: str, losses: Mapping[str, np.ndarray]) -> bool:
    """Whether a champion named ``model_name`` faces this run's challengers with the
    ``prematch`` yardstick's losses: it is ``market`` and the run left the ``market`` model out.

    Both forecast the same de-margined pre-match prices on the scored matches (the bundle's
    agree bit for bit, docs/evaluation.md), so ``evaluate`` already defends ``market`` so. A
    ``run`` with ``models: [elo]`` used to leave a ``market`` champion untested ("this run did
    not evaluate it"), where the docs promised the test.
    """
    return model_name == BASELINE_MODEL and model_name not in losses and "prematch" in losses


def incumbent_losses(model_name: str, losses: Mapping[str, np.ndarray]) -> np.ndarray:
    """The per-match losses a champion is tested with, of a market's ``losses`` per model and
    yardstick (a run's, or those its ``losses.parquet`` kept): its own, else the ``prematch``
    yardstick's for a ``market`` champion the run did not fit (:func:`defended_by_prematch`)."""
    return losses["prematch"] if defended_by_prematch(model_name, losses) else losses[model_name]


#: What reading a champion's manifest or files raises when they cannot be read: a missing or
#: misplaced manifest (`RegistryError`), a file that fails its size or sha256 check or holds
#: malformed JSON (`ValueError`, `ArtifactIntegrityError` among them), one the operating system
#: refuses (`OSError`). Each vertical's ``_why_champion_stays`` keeps such a champion.
CHAMPION_READ_ERRORS = (RegistryError, ValueError, OSError)


def unreadable_champion(error: BaseException) -> str:
    """The start of the reason a champion whose manifest or files cannot be read stays.

    Examples
    --------
    >>> unreadable_champion(ValueError("artifact 'elo.json' was modified"))
    "its manifest or files cannot be read (artifact 'elo.json' was modified)"
    """
    return f"its manifest or files cannot be read ({str(error) or type(error).__name__})"


def changed_settings(
    manifest: Manifest,
    config: FootballRunConfig | CryptoRunConfig,
    keys: Sequence[str],
    *,
    every_model: bool = False,
) -> list[str]:
    """The settings in which this run's config differs from the one the champion was made with
    (its ``manifest``'s): the champion model's ``model_params`` entry (every entry with
    ``every_model``, for a model that uses the others), then each of ``keys`` (a key the older
    manifest lacks counts as unchanged).

    A manifest that cannot be read is the caller's: it used to count as "no setting changed",
    and the champion was refreshed untested (`CHAMPION_READ_ERRORS`).
    """
    ours = config.model_dump(mode="json")
    theirs = manifest.config
    name = manifest.model_name
    params, their_params = ours["model_params"], theirs.get("model_params") or {}
    changed = []
    if every_model and their_params != params:
        changed.append("model_params")
    elif not every_model and their_params.get(name, {}) != params.get(name, {}):
        changed.append(f"model_params.{name}")
    changed += [key for key in keys if theirs.get(key, ours[key]) != ours[key]]
    return changed


def _champion_leagues(registry: Registry, market: str, champion: ChampionRecord) -> set[str]:
    """The leagues a champion serves (its feature state's); none when its manifest lists no
    feature state (a version registered without one cannot be served, so replacing it drops no
    league).

    Raises
    ------
    RegistryError, ValueError, OSError
        When its manifest or files cannot be read, or its feature state is malformed
        (`CHAMPION_READ_ERRORS`). It used to count as "serves no league", with a docstring
        claiming the pointer move would refuse a damaged version; that move checks the new
        version only, so an E0-only run replaced a damaged champion that served D1 too.
    """
    files = registry.load_files(VERTICAL, market, champion.model_name, champion.version)
    if FEATURE_STATE_FILE not in files:
        return set()
    try:
        return set(FeatureState.from_json(files[FEATURE_STATE_FILE]).leagues)
    except (KeyError, TypeError, AttributeError) as error:  # JSON of another shape
        raise ValueError(
            f"{champion.model_name} {champion.version}: {FEATURE_STATE_FILE} is malformed "
            f"({type(error).__name__}: {error})"
        ) from error


def parse_csv_option(
    value: str | None, allowed: Sequence[str], what: str
) -> tuple[str, ...] | None:
    """Split ``a,b`` and check each against ``allowed``; a clear error names the bad value."""
    if value is None:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    if not items:
        raise ValueError(f"no {what} given in {value!r}; choose from {', '.join(allowed)}")
    bad = [v for v in items if v not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad}; choose from {', '.join(allowed)}")
    return items
