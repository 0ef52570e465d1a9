"""The ``marketcast`` command line: each command parses its options and calls one function."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType

from marketcast import __version__

log = logging.getLogger("marketcast")

#: Exit statuses of a command stopped by a signal, as a shell reports them (128 + signal).
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: raised in the main thread so that ``finally`` blocks clean up.

    A ``BaseException``, like ``KeyboardInterrupt``, so that ``except Exception`` lets it pass.
    """


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into `Terminated` while a command runs (the main thread only can)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in ``[low, high]`` (``--port 70000`` used to wrap)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside [{low}, {high}]")
        return value

    return parse


def _not_empty(text: str) -> str:
    """An argument that names something: blank text meant the current folder (``--to ''``
    published into it, ``--data ''`` read it, ``--dest ''`` pulled into it), the latest
    version (``show --version ''``), no file (``data check --json ''`` wrote none), or crashed
    (``promote``); an unset shell variable (``--data "$DIR"``) gives one."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """All commands and options (the stable CLI contract of DESIGN.md)."""
    parser = argparse.ArgumentParser(
        prog="marketcast",
        description="Train, evaluate, promote and serve probabilistic market forecasts.",
    )
    parser.add_argument("--version", action="version", version=f"marketcast {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="the main job on the bundled data: evaluate, promote, report")
    run.add_argument(
        "--config", type=_not_empty, help="YAML run config (configs/experiments/*.yaml)"
    )
    run.add_argument(
        "--vertical",
        choices=("all", "football", "crypto"),
        help="which job (default: all, or the config's `vertical`)",
    )
    run.add_argument("--backend", choices=("local", "ray"), help="crypto job backend")
    run.add_argument(
        "--ray-address", type=_not_empty, help="a running Ray cluster (default: start a local one)"
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check the config, read the data, print the plan as JSON; train nothing",
    )

    evaluate = sub.add_parser("evaluate", help="walk-forward evaluation against the market")
    evaluate_sub = evaluate.add_subparsers(dest="vertical", required=True)
    football = evaluate_sub.add_parser("football", help="football-data.co.uk files")
    football.add_argument(
        "--data", nargs="+", required=True, type=_not_empty, help="CSV files or folders"
    )
    football.add_argument("--start", required=True, help="first kick-off date to predict")
    football.add_argument("--end", help="predict kick-offs before this date")
    football.add_argument(
        "--markets", help="comma list: 1x2,ou25,ah (default: the config's, else all three)"
    )
    football.add_argument(
        "--models",
        help="comma list: market,elo,dixon_coles,lightgbm,neural (default: the config's)",
    )
    football.add_argument(
        "--config", type=_not_empty, help="YAML run config for model and backtest settings"
    )
    football.add_argument(
        "--json", required=True, dest="json_out", type=_not_empty, help="where to write JSON"
    )

    crypto = evaluate_sub.add_parser("crypto", help="exchange candle CSVs")
    crypto.add_argument(
        "--data", nargs="+", required=True, type=_not_empty, help="CSV files or folders"
    )
    crypto.add_argument("--start", required=True, help="first decision date to predict")
    crypto.add_argument("--end", help="predict decisions before this date")
    crypto.add_argument(
        "--horizons", help="comma list: 1h,4h,1d (default: the config's, else all three)"
    )
    crypto.add_argument(
        "--models",
        help="comma list: flat,momentum,logistic,lightgbm,consensus (default: the config's)",
    )
    crypto.add_argument(
        "--config", type=_not_empty, help="YAML crypto config for model, cost and split settings"
    )
    crypto.add_argument("--backend", choices=("local", "ray"), help="job backend (default local)")
    crypto.add_argument(
        "--ray-address", type=_not_empty, help="a running Ray cluster (default: start a local one)"
    )
    crypto.add_argument(
        "--json", required=True, dest="json_out", type=_not_empty, help="where to write JSON"
    )

    serve = sub.add_parser("serve", help="serve the registry's champions over HTTP")
    serve.add_argument("--host", help="interface (default 127.0.0.1 or MARKETCAST_HOST)")
    serve.add_argument(
        "--port", type=_bounded(1, 65535), help="port (default 8000 or MARKETCAST_PORT)"
    )
    serve.add_argument(
        "--workers", type=_bounded(1, 64), default=1, help="worker processes (default 1)"
    )

    data = sub.add_parser("data", help="check or pull data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="integrity report; exit 1 on errors")
    check.add_argument(
        "paths", nargs="*", type=_not_empty, help="CSV files or folders (default: the bundle)"
    )
    check.add_argument("--json", dest="json_out", type=_not_empty, help="write the report as JSON")
    check.add_argument(
        "--config",
        type=_not_empty,
        help="read the files as a run with this config does: its data.paths when no PATH is "
        "given, its pair_renames",
    )
    pull = data_sub.add_parser("pull", help="download newer files from the original source")
    pull_sub = pull.add_subparsers(dest="source", required=True)
    pull_football = pull_sub.add_parser("football", help="football-data.co.uk season files")
    pull_football.add_argument("--leagues", required=True, help="comma list, e.g. E0,D1")
    pull_football.add_argument("--seasons", required=True, help="comma list, e.g. 2024-2025")
    pull_football.add_argument(
        "--dest", default="data/football", type=_not_empty, help="output folder"
    )
    pull_football.add_argument(
        "--base-url",
        type=_not_empty,
        help="mirror base URL, up to the season folders (default: "
        "https://www.football-data.co.uk/mmz4281; a mirror of the site's tree ends in /mmz4281)",
    )
    pull_football.add_argument(
        "--timeout",
        type=_bounded(1, 86_400),
        default=120,
        metavar="SECONDS",
        help="time limit per file, retries and their waits included (default 120)",
    )
    pull_football.add_argument(
        "--replace-smaller",
        action="store_true",
        help="replace an existing file even when the download has fewer matches",
    )

    registry = sub.add_parser("registry", help="list, inspect, promote and roll back models")
    registry.add_argument(
        "--root", default="registry", type=_not_empty, help="registry folder or fsspec URL"
    )
    reg_sub = registry.add_subparsers(dest="registry_command", required=True)
    reg_sub.add_parser("list", help="every registered model version")
    show = reg_sub.add_parser(
        "show",
        help="manifest of a model (latest version by default), or a market's champion, "
        "its history and the latest promotion decision",
    )
    show.add_argument(
        "name",
        type=_not_empty,
        help="vertical/market/model (e.g. football/1x2/lightgbm) or vertical/market",
    )
    show.add_argument("--version", dest="model_version", type=_not_empty)
    promote = reg_sub.add_parser("promote", help="make a registered version the champion")
    promote.add_argument("name", type=_not_empty, help="vertical/market/model")
    promote.add_argument("version", type=_not_empty)
    rollback = reg_sub.add_parser("rollback", help="restore the previous champion")
    rollback.add_argument("name", type=_not_empty, help="vertical/market, e.g. football/1x2")
    publish = reg_sub.add_parser(
        "publish",
        help="copy each champion, the other versions of its run, its latest decision and its "
        "run's report to another registry, and point that registry's champion at it",
    )
    publish.add_argument(
        "--to", required=True, dest="target", type=_not_empty, help="registry folder or URL"
    )
    publish.add_argument(
        "name",
        nargs="?",
        type=_not_empty,  # '' (an unset "$NAME") published every vertical
        help="vertical or vertical/market (default: every champion)",
    )
    recheck = reg_sub.add_parser(
        "recheck",
        help="make a market's latest promotion decision again from the per-match evidence its "
        "run kept in the registry, and say whether it agrees (exit 1 when not)",
    )
    recheck.add_argument("name", type=_not_empty, help="vertical/market, e.g. football/1x2")
    clean = reg_sub.add_parser(
        "clean",
        help="remove what killed runs left: version folders without a manifest, temporary files",
    )
    clean.add_argument(
        "--older-than-hours",
        type=float,
        default=1.0,
        help="leave anything younger alone, e.g. a registration in progress (default: 1)",
    )
    clean.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    return parser


#: Libraries whose DEBUG lines ``-v`` leaves out: matplotlib's font manager alone wrote
#: hundreds of lines before the first of marketcast's.
QUIET_LIBRARIES = (
    "matplotlib", "PIL", "urllib3", "asyncio", "fsspec", "numba", "h5py", "ray", "botocore",
    "s3fs", "gcsfs", "httpcore", "httpx", "filelock", "multipart", "python_multipart",
)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``marketcast`` script; returns the exit status.

    Ctrl-C and SIGTERM stop the command with a one-line message instead of a traceback, after
    the cleanup on the way out (temporary files removed, worker processes stopped): exit status
    130 and 143, as a shell reports a process ended by SIGINT or SIGTERM.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.verbose:  # marketcast's debug lines, not thousands of the libraries' (font lookups)
        for library in QUIET_LIBRARIES:
            logging.getLogger(library).setLevel(logging.INFO)
    try:
        with _sigterm_raises():
            return _run_command(args)
    except KeyboardInterrupt:
        sys.stderr.write("marketcast: interrupted\n")
        return EXIT_INTERRUPTED
    except Terminated:
        sys.stderr.write("marketcast: terminated\n")
        return EXIT_TERMINATED


def _run_command(args: argparse.Namespace) -> int:
    from marketcast.datasets.pull import PullError
    from marketcast.orchestration import commands
    from marketcast.registry.store import RegistryError

    try:
        if args.command == "run":
            return commands.run(
                args.config, args.vertical, args.backend, args.ray_address, args.dry_run
            )
        if args.command == "evaluate" and args.vertical == "crypto":
            return commands.evaluate_crypto(
                args.data,
                args.start,
                args.end,
                args.horizons,
                args.models,
                args.config,
                args.backend,
                args.ray_address,
                args.json_out,
            )
        if args.command == "evaluate":
            return commands.evaluate_football(
                args.data,
                args.start,
                args.end,
                args.markets,
                args.models,
                args.config,
                args.json_out,
            )
        if args.command == "serve":
            return commands.serve(args.host, args.port, args.workers)
        if args.command == "data" and args.data_command == "check":
            return commands.data_check(args.paths, args.json_out, args.config)
        if args.command == "data" and args.data_command == "pull":
            return commands.data_pull_football(
                args.leagues,
                args.seasons,
                args.dest,
                args.base_url,
                args.timeout,
                args.replace_smaller,
            )
        if args.command == "registry" and args.registry_command == "publish":
            return commands.registry_publish(args.root, args.target, args.name)
        if args.command == "registry" and args.registry_command == "recheck":
            return commands.registry_recheck(args.root, args.name)
        if args.command == "registry" and args.registry_command == "clean":
            return commands.registry_clean(args.root, args.older_than_hours, args.dry_run)
        if args.command == "registry":
            return commands.registry(
                args.root,
                args.registry_command,
                getattr(args, "name", None),
                getattr(args, "version", None) or getattr(args, "model_version", None),
            )
    except (ValueError, OSError, LookupError, PullError, RegistryError) as exc:
        sys.stderr.write(f"marketcast: error: {exc}\n")
        return 2
    raise AssertionError(f"unhandled command {args!r}")  # argparse makes this unreachable


def _dump(obj: object) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, default=str)


if __name__ == "__main__":
    sys.exit(main())
