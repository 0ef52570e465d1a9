"""`marketcast run` stopped between two pointer moves of one market, and the URLs it takes for
``registry_root`` and ``runs_dir``: found by an audit of the run orchestration (a first champion
installed was reported "not applied" with no decision on file; ``file:///proc/x`` passed the dry
run; ``runs_dir: file:///tmp/x`` wrote to ``./file:/tmp/x``; a ``memory://`` registry was
promoted into and vanished with exit 0)."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from marketcast.cli import Terminated, main
from marketcast.config import load_config
from marketcast.orchestration import football
from marketcast.registry import ChampionChangedError, PromotionRule, Registry, decide_promotion
from marketcast.reports.html import render_html
from tests.unit.test_registry import PlainMemory, make_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"


def _football_yaml(tmp_path: Path, registry_root: str, runs_dir: str) -> Path:
    """A run of seconds: E0 from the test fixtures, market and elo, 1X2 only."""
    path = tmp_path / "football.yaml"
    path.write_text(
        f"data: {{paths: [{FIXTURES}], leagues: [E0]}}\n"
        "models: [market, elo]\n"
        "markets: [1x2]\n"
        "walk_forward: {last_seasons: 1, step_days: 28}\n"
        "backtest: {n_bootstrap: 20}\n"
        f"registry_root: {registry_root}\n"
        f"runs_dir: {runs_dir}\n"
    )
    return path


def _decision_text(page: str) -> str:
    block = re.search(r'<div class="decision[^"]*">(.*?)</div>', page, flags=re.S)
    assert block is not None
    return html.unescape(re.sub(r"<[^>]+>", "", block.group(1))).strip()


# ------------------------------------------------------- 1. stopped between two moves of a market


@pytest.mark.parametrize("stop", ["terminated", "pointer_changed"])
def test_a_run_stopped_between_two_moves_reports_and_files_the_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    """A first run whose challenger wins installs market, then promotes elo. Stopped between
    the two, market stayed champion while the report said the whole market was "not applied"
    and neither decision was on file."""
    path = _football_yaml(tmp_path, str(tmp_path / "registry"), str(tmp_path / "runs"))
    real_among = football.decide_among

    def elo_wins(*args: Any, **kwargs: Any) -> Any:
        decision = real_among(*args, **kwargs)
        return decision.model_copy(update={"promote": True, "reason": "elo wins (forced)"})

    monkeypatch.setattr(football, "decide_among", elo_wins)
    real_set = Registry.set_champion
    calls: list[str] = []

    def second_move_fails(self: Registry, *args: Any, **kwargs: Any) -> Any:
        calls.append(args[2])  # the model moved to
        if len(calls) == 2:
            if stop == "terminated":
                raise Terminated
            raise ChampionChangedError("simulated: another writer moved the pointer")
        return real_set(self, *args, **kwargs)

    monkeypatch.setattr(Registry, "set_champion", second_move_fails)
    console = Console(file=open(tmp_path / "console.txt", "w"), width=200)  # noqa: SIM115
    if stop == "terminated":
        with pytest.raises(Terminated):
            football.run_football(load_config(path), console=console, config_path=str(path))
        why = "the run stopped (Terminated)"
    else:
        football.run_football(load_config(path), console=console, config_path=str(path))
        why = "simulated: another writer moved the pointer"
    assert calls == ["market", "elo"]

    registry = Registry(str(tmp_path / "registry"))
    champion = registry.champion("football", "1x2")
    assert champion is not None
    assert (champion.model_name, champion.reason) == ("market", "no champion yet")
    # the first move's decision is on file (it was made), the promotion's is not
    [saved] = registry.decisions("football", "1x2")
    assert (saved.challenger, saved.challenger_version) == ("market", champion.version)
    assert saved.reason == "no champion yet"

    [report_file] = (tmp_path / "runs").glob("*/report.json")
    promotion = json.loads(report_file.read_text())["promotion"]["1x2"]
    elo = registry.latest_version("football", "1x2", "elo")
    assert promotion["registry_champion"] == "market"
    assert promotion["applied_moves"] == [
        {"model_name": "market", "version": champion.version, "reason": "no champion yet"}
    ]
    assert promotion["not_applied"] == (
        f"market {champion.version} installed as the first champion; the promotion of elo "
        f"{elo} over market was not applied: {why}"
    )
    page = (report_file.parent / "report.html").read_text()
    lines = _decision_text(page).splitlines()
    assert (
        lines[0] == "market installed as the first champion; promotion of elo over it not applied."
    )
    assert f"Not applied: {promotion['not_applied']}" in lines
    assert "Registry champion after this run: market" in lines


def test_a_refresh_made_before_the_pointer_changed_is_reported_as_made(tmp_path: Path) -> None:
    """Refresh, then promote, on an existing champion: another writer moves the pointer between
    the two. The refresh stays and is said to be made; the promotion's decision is not saved."""
    registry = Registry(str(tmp_path / "registry"))

    def register(name: str, payload: bytes) -> str:
        files = {"m.json": payload}
        manifest = make_manifest(name, files, market="1x2")
        return registry.register("football", "1x2", name, files, manifest)

    old, refit, elo, by_hand = (
        register("market", b"{}"),
        register("market", b'{"refit": 1}'),
        register("elo", b"{}"),
        register("dixon_coles", b"{}"),
    )
    registry.set_champion("football", "1x2", "market", old, "first")
    decision = decide_promotion("market", [1.0] * 300, "elo", [0.9] * 300, PromotionRule())
    assert decision.promote
    plan = football._MarketPlan(
        "1x2",
        ("market", old),
        [("market", refit, "champion market refreshed"), ("elo", elo, decision.reason)],
        [decision],
        "elo",
        None,
        [1],  # the promotion decision justifies the second move
    )
    real_set = registry.set_champion

    def then_someone_promotes(*args: Any, **kwargs: Any) -> Any:
        record = real_set(*args, **kwargs)
        if args[2] == "market":  # after the refresh, an operator promotes dixon_coles
            Registry(registry.root).set_champion("football", "1x2", "dixon_coles", by_hand, "hand")
        return record

    registry.set_champion = then_someone_promotes  # type: ignore[method-assign]
    made: dict[str, int] = {}
    not_applied = football._apply_promotions(registry, [plan], None, made)

    assert made == {"1x2": 1}
    assert not_applied["1x2"].startswith(
        f"champion market refreshed with {refit} (its refit on this run's matches); the "
        f"promotion of elo {elo} over market was not applied: "
    )
    assert "changed after it was read" in not_applied["1x2"]
    champion = registry.champion("football", "1x2")
    assert champion is not None
    assert champion.model_name == "dixon_coles"
    assert [h.version for h in registry.champion_history("football", "1x2")] == [old, refit]
    assert registry.decisions("football", "1x2") == []  # the promotion never happened

    entry = {
        **decision.model_dump(mode="json"),
        "not_applied": not_applied["1x2"],
        "applied_moves": plan.applied_moves(made["1x2"]),
    }
    text = _decision_text(render_html({"promotion": {"1x2": entry}}))
    assert text.splitlines()[0] == (
        "Champion market refreshed (its refit on this run\u2019s matches); promotion of elo over "
        "it not applied."
    )


# ------------------------------------------------------------------ 2. registry_root and runs_dir


def test_a_file_url_registry_root_is_probed_like_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``registry_root: /proc/x`` was refused by the dry run; ``file:///proc/x`` passed it and
    failed only after the whole walk-forward."""
    path = _football_yaml(tmp_path, "file:///proc/marketcast-probe-reg", str(tmp_path / "runs"))
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    said = f"{path}, field 'registry_root': /proc/marketcast-probe-reg cannot be created"
    assert said in captured.err


def _refuse(*args: Any, **kwargs: Any) -> None:
    raise PermissionError("AccessDenied")


def test_a_remote_registry_root_is_probed_with_a_file_written_and_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A URL that is not a plain path (here fsspec's ``simplecache::file://``) was not checked
    at all; it is now checked as the folder it opens, and nothing is left behind."""
    config = load_config(_football_yaml(tmp_path, "x", str(tmp_path / "runs")))
    bad = config.model_copy(update={"registry_root": "simplecache::file:///proc/marketcast-x/reg"})
    with pytest.raises(ValueError, match=r"^the config, field 'registry_root': /proc/marketcast"):
        football.check_outputs(bad)
    remote = config.model_copy(update={"registry_root": f"{PlainMemory.protocol}://probe-x/reg"})
    football.check_outputs(remote)  # written to once, and the probe deleted
    assert PlainMemory().find("/probe-x") == []
    monkeypatch.setattr(PlainMemory, "pipe_file", _refuse)  # a read-only bucket policy
    with pytest.raises(ValueError, match=r"'registry_root': plain-memory://probe-x/reg cannot"):
        football.check_outputs(remote)
    good = config.model_copy(update={"registry_root": f"simplecache::file://{tmp_path}/reg"})
    football.check_outputs(good)
    assert not (tmp_path / "reg").exists()  # the folder made for the probe was removed
    # dir:: over a folder is that folder, checked as one (it was probed at the root doubled,
    # leaving reg2/<tmp_path>/reg2 behind)
    football.check_outputs(config.model_copy(update={"registry_root": f"dir::{tmp_path}/reg2"}))
    assert not (tmp_path / "reg2").exists()


def test_a_file_url_runs_dir_is_its_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``runs_dir: file:///tmp/x`` made a folder ``./file:/tmp/x`` in the working directory."""
    monkeypatch.chdir(tmp_path)
    run_dir = football.new_run_dir(f"file://{tmp_path}/runs", "r")
    assert run_dir == tmp_path / "runs" / "r"
    assert run_dir.is_dir()
    assert not (tmp_path / "file:").exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("runs_dir", "s3://bucket/runs", "s3://bucket/runs is not a local folder"),
        ("registry_root", "memory://reg", "memory://reg is a memory:// registry"),
    ],
    ids=["s3_runs_dir", "memory_registry"],
)
def test_a_run_refuses_outputs_it_could_not_keep_naming_the_file_and_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    value: str,
    message: str,
) -> None:
    """An ``s3://`` runs_dir was written to ``./s3:/bucket/runs``, and a run into a
    ``memory://`` registry reported a first champion that vanished with the process; both
    exited 0. Now both are refused before any data is read."""
    monkeypatch.chdir(tmp_path)
    outputs = {"registry_root": str(tmp_path / "registry"), "runs_dir": str(tmp_path / "runs")}
    path = _football_yaml(tmp_path, **{**outputs, key: value})
    assert main(["run", "--config", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{path}, field '{key}': {message}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["football.yaml"]  # nothing written


def test_a_crypto_dry_run_refuses_a_memory_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Crypto shares the output checks: its dry run made none of them (football's made them)."""
    path = tmp_path / "crypto.yaml"
    path.write_text(
        "vertical: crypto\npairs: [BTCUSDT, ETHUSDT]\nhorizons: [1d]\nmodels: [flat, momentum]\n"
        f"registry_root: memory://crypto-reg\nruns_dir: {tmp_path / 'runs'}\n"
    )
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}, field 'registry_root': memory://crypto-reg is a memory://" in captured.err
