"""What ``marketcast run`` checks of its config's window and leagues, dry or not, and what a
first crypto champion leaves in the registry: found by a docs audit (an empty crypto window was
a dry run with exit 0, the football one pointed at options ``run`` lacks, an unknown league did
not name the config, and a first crypto champion's reason was a challenger's rejection)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from marketcast.cli import main
from marketcast.config import load_config, load_crypto_config
from marketcast.orchestration import crypto as crypto_job
from marketcast.orchestration.football import check_window, load_data, plan_football
from marketcast.registry import Registry


def _crypto_config(tmp_path: Path, window: str) -> Path:
    path = tmp_path / "crypto.yaml"
    path.write_text(
        "vertical: crypto\n"
        "pairs: [BTCUSDT, ETHUSDT]\n"
        "horizons: [1d]\n"
        "models: [flat, momentum]\n"
        f"walk_forward: {window}\n"
        f"registry_root: {tmp_path / 'registry'}\n"
        f"runs_dir: {tmp_path / 'runs'}\n"
    )
    return path


def _football_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "football.yaml"
    path.write_text(
        f"{text}\nmodels: [market, elo]\n"
        f"registry_root: {tmp_path / 'registry'}\nruns_dir: {tmp_path / 'runs'}\n"
    )
    return path


def test_a_crypto_dry_run_refuses_a_window_after_the_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It printed a plan with ``walk_forward_steps: 0`` and exited 0."""
    path = _crypto_config(tmp_path, '{start: "2030-01-01"}')
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert (
        "field 'walk_forward.start': the window from 2030-01-01 to the end of the data holds no "
        "bar to decide on (the data runs 2021-04-04 to 2023-06-30" in captured.err
    )
    with pytest.raises(ValueError, match=rf"^{path}, field 'walk_forward.start': the window"):
        crypto_job.run_crypto(load_crypto_config(path), dry_run=True, config_path=str(path))


def test_a_crypto_run_refuses_an_empty_window_before_any_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run failed too, but after its jobs, with its feature store written, and said
    "between walk_forward.start 2030-01-01 and end the data end"."""
    path = _crypto_config(tmp_path, '{start: "2020-01-01", end: "2020-06-01"}')
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "the window from 2020-01-01 to walk_forward.end 2020-06-01 holds no bar" in err
    assert not (tmp_path / "runs" / "feature_store").exists()
    assert list((tmp_path / "runs").iterdir()) == []  # the run's own folder is removed
    assert not (tmp_path / "registry").exists()


def test_a_football_dry_run_names_the_configs_window_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It said "check --start/--end", options `run` does not have."""
    path = _football_config(tmp_path, 'data: {leagues: [E0]}\nwalk_forward: {start: "2030-01-01"}')
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "--start" not in err
    assert "field 'walk_forward.start': no match kicks off from 2030-01-01 to the end" in err
    with pytest.raises(ValueError, match=rf"^{path}, field 'walk_forward.start': no match"):
        plan_football(load_config(path), str(path))


def test_evaluate_keeps_its_start_and_end_wording() -> None:
    """`evaluate football` reads its window from --start/--end: the message names them."""
    config = load_config(None).model_copy(update={"models": ("market",)})
    data = load_data(config)
    with pytest.raises(ValueError, match="check --start/--end"):
        check_window(config, data, np.zeros(len(data.matches), dtype=bool))


def test_an_unknown_league_names_the_config_field_as_data_check_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _football_config(tmp_path, "data: {leagues: [XX]}\nwalk_forward: {last_seasons: 1}")
    assert main(["data", "check", "--config", str(path)]) == 1
    checked = capsys.readouterr().err
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "field 'data.leagues': unknown leagues ['XX']; the data holds" in err
    with pytest.raises(ValueError, match=r"field 'data.leagues'") as raised:
        plan_football(load_config(path), str(path))
    assert str(raised.value) in " ".join(checked.split())  # data check's line, word for word


def test_a_first_crypto_champion_is_recorded_as_the_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its reason was the challenger's rejection ("... not better than the champion"), and no
    decision was saved under decisions/ (football saves every one)."""
    path = _crypto_config(tmp_path, '{start: "2023-03-01", end: "2023-05-01"}')
    assert main(["run", "--config", str(path)]) == 0
    registry = Registry(str(tmp_path / "registry"))
    champion = registry.champion("crypto", "1d")
    assert champion is not None
    assert champion.reason == "no champion yet"
    saved = registry.decisions("crypto", "1d")
    assert [(d.challenger, d.reason) for d in saved[:1]] == [(champion.model_name, champion.reason)]
    assert saved[0].challenger_version == champion.version
    run_dir = next(p for p in (tmp_path / "runs").iterdir() if p.name != "feature_store")
    reported = json.loads((run_dir / "crypto" / "metrics.json").read_text())["1d"]["promotion"]
    # the shadow test over the challengers is on file, as the report states it; the report
    # also names the first champion the run crowned
    assert (
        reported.pop("first_champion")
        == f"{champion.model_name} {champion.version}: {champion.reason}"
    )
    assert saved[1].model_dump(mode="json") == reported
    assert capsys.readouterr().out == ""
