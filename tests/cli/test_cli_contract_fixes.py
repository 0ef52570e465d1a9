"""Documented CLI behaviour the docs audit found broken: config leagues and window in
``evaluate football``, untruncated ``registry list``, ``data check`` exit codes and its
``--json`` target."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.orchestration import commands
from marketcast.registry import Registry
from tests.unit.test_registry import make_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football"
N_E0, N_D1 = 24, 10  # matches in the fixture files (E0 2021-22 and 2022-23, D1 2021-22)


def _evaluate(config: Path, out: Path, *window: str) -> int:
    args = ["evaluate", "football", "--data", str(FIXTURES), "--markets", "1x2"]
    return main([*args, "--config", str(config), *window, "--json", str(out)])


def test_evaluate_keeps_only_the_configs_leagues(tmp_path: Path, capsys) -> None:
    """A config's ``data.leagues`` was ignored: E0 and D1 were both evaluated."""
    config = tmp_path / "e0.yaml"
    config.write_text("data: {leagues: [E0]}\nmodels: [market]\n")
    out = tmp_path / "e0.json"
    assert _evaluate(config, out, "--start", "2021-01-01") == 0
    result = json.loads(out.read_text())
    assert result["n_matches"] == N_E0
    # what the report says was kept is what was evaluated, as `data check --config` says it
    assert result["data"]["rows_kept"] == N_E0
    assert result["data"]["dropped"]["outside_config_leagues"] == N_D1
    assert result["data"]["leagues"] == ["E0"]


def test_evaluate_refuses_a_config_league_the_data_lacks(tmp_path: Path, capsys) -> None:
    config = tmp_path / "sp1.yaml"
    config.write_text("data: {leagues: [SP1]}\nmodels: [market]\n")
    assert _evaluate(config, tmp_path / "x.json", "--start", "2021-01-01") == 2
    err = capsys.readouterr().err
    assert f"{config}, field 'data.leagues': unknown leagues ['SP1']" in err
    assert not (tmp_path / "x.json").exists()


def test_evaluate_refuses_a_config_start_other_than_start(tmp_path: Path, capsys) -> None:
    """The config's ``walk_forward.start`` was ignored without a word."""
    config = tmp_path / "window.yaml"
    config.write_text("models: [market]\nwalk_forward: {start: 2022-01-01}\n")
    assert _evaluate(config, tmp_path / "x.json", "--start", "2021-08-14") == 2
    err = capsys.readouterr().err
    assert f"{config}, field 'walk_forward.start': 2022-01-01" in err
    assert "--start 2021-08-14" in err
    assert not (tmp_path / "x.json").exists()


def test_evaluate_refuses_a_config_end_other_than_end(tmp_path: Path, capsys) -> None:
    config = tmp_path / "window.yaml"
    config.write_text("models: [market]\nwalk_forward: {start: 2021-08-14, end: 2022-01-01}\n")
    window = ("--start", "2021-08-14", "--end", "2023-01-01")
    assert _evaluate(config, tmp_path / "x.json", *window) == 2
    assert f"{config}, field 'walk_forward.end': 2022-01-01" in capsys.readouterr().err


def test_evaluate_takes_the_configs_end_without_end(tmp_path: Path) -> None:
    """With the same start, the config's ``walk_forward.end`` closes the window."""
    config = tmp_path / "window.yaml"
    config.write_text("models: [market]\nwalk_forward: {start: 2021-08-14, end: 2022-01-01}\n")
    out = tmp_path / "window.json"
    assert _evaluate(config, out, "--start", "2021-08-14") == 0
    closed = json.loads(out.read_text())["n_matches"]
    assert _evaluate(config, out, "--start", "2021-08-14", "--end", "2022-01-01") == 0
    assert json.loads(out.read_text())["n_matches"] == closed
    open_config = tmp_path / "open.yaml"
    open_config.write_text("models: [market]\n")
    assert _evaluate(open_config, out, "--start", "2021-08-14") == 0
    # the 2022-23 season is outside the config's window
    assert json.loads(out.read_text())["n_matches"] == closed + 12


def _register(registry: Registry, market: str, model_name: str) -> str:
    """A football version of ``model_name`` in ``market``, with the registry tests' manifest."""
    files = {"params.json": b'{"model": "dixon_coles"}'}
    manifest = make_manifest(model_name, files, "football", market)
    return registry.register("football", market, model_name, files, manifest)


def test_registry_list_never_truncates_versions_when_piped(tmp_path: Path, capsys) -> None:
    """Piped (not a terminal, 80 columns), versions were cut: ``20261123T120912Z-65…``."""
    root = tmp_path / "a-registry-folder-with-a-rather-long-name-to-widen-the-title"
    registry = Registry(str(root))
    versions = [_register(registry, "1x2", model_name) for model_name in ("market", "dixon_coles")]
    assert main(["registry", "--root", str(root), "list"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    for version in versions:
        assert version in out  # whole, on one line
    assert "dixon_coles" in out
    # one damaged champion.json: the other markets are still listed, that one marked '?'
    registry.set_champion("football", "1x2", "market", versions[0], "no champion yet")
    registry.set_champion(
        "football", "ou25", "elo", _register(registry, "ou25", "elo"), "no champion yet"
    )
    (root / "football" / "1x2" / "champion.json").write_text("{")
    assert main(["registry", "--root", str(root), "list"]) == 1
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if "football" in line]
    assert len(rows) == 3
    assert all(row.rstrip(" │|").endswith("?") for row in rows if "1x2" in row)
    assert [row.rstrip(" │|").endswith("*") for row in rows if "ou25" in row] == [True]
    assert "football/1x2/champion.json is unreadable" in captured.err
    assert "(its market's champion is marked '?' above)" in captured.err


def test_data_check_of_a_missing_path_exits_1_naming_it(tmp_path: Path, capsys) -> None:
    """A path that does not exist is a file that cannot be read: exit 1, as documented (2)."""
    missing = tmp_path / "nonexistent.csv"
    out = tmp_path / "report.json"
    assert main(["data", "check", str(missing), "--json", str(out)]) == 1
    assert f"{missing}: no such file or folder" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert report["ok"] is False
    assert [e["file"] for e in report["errors"]] == [str(missing)]


def test_data_check_missing_path_beside_good_files_still_checks_them(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "report.json"
    missing = tmp_path / "typo"
    assert main(["data", "check", str(FIXTURES), str(missing), "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["rows_kept"] == N_E0 + N_D1
    assert [e["file"] for e in report["errors"]] == [str(missing)]


def test_data_check_usage_errors_still_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["data", "check", "--no-such-option"])
    assert stopped.value.code == 2


def test_data_check_checks_its_json_target_first(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unwritable ``--json`` failed only after the whole check, with an ``[Errno 20]``."""

    def must_not_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data was read before --json was checked")

    monkeypatch.setattr(commands, "load_football", must_not_read)
    (tmp_path / "report.txt").write_text("a file, not a folder")
    target = tmp_path / "report.txt" / "out" / "check.json"
    assert main(["data", "check", str(FIXTURES), "--json", str(target)]) == 2
    err = capsys.readouterr().err
    assert f"--json {target}: cannot write in {target.parent}" in err
    assert "Errno" not in err


def test_registry_list_keeps_every_column_on_a_narrow_terminal(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """At 37 columns or fewer the model and market columns shrank to nothing."""
    monkeypatch.setenv("COLUMNS", "30")
    registry = Registry(str(tmp_path / "reg"))
    version = _register(registry, "1x2", "dixon_coles")
    assert main(["registry", "--root", str(tmp_path / "reg"), "list"]) == 0
    header, row = (
        line for line in capsys.readouterr().out.splitlines() if "┃" in line or version in line
    )
    for column in ("vertical", "market", "model", "version", "log loss", "champion"):
        assert column in header
    for cell in ("football", "1x2", "dixon_coles", version):
        assert cell in row
