"""Options that did nothing without a word: ``run --dry-run`` with a football config (no check,
no output, exit 0), ``--ray-address`` with the local backend, ``registry show V/M --version``,
and a football config given to ``evaluate crypto`` (eight pydantic errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marketcast.cli import main


def _football_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(
        "data: {leagues: [E0]}\n"
        "walk_forward: {last_seasons: 1}\n"
        "models: [market, elo]\n"
        f"registry_root: {tmp_path / 'registry'}\n"
        f"runs_dir: {tmp_path / 'runs'}\n" + extra
    )
    return path


def test_a_football_dry_run_checks_the_config_and_prints_its_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _football_config(tmp_path)
    assert main(["run", "--config", str(config), "--dry-run"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["vertical"] == "football"
    assert plan["models"] == ["market", "elo"]
    e0 = plan["leagues"]["E0"]
    assert list(plan["leagues"]) == ["E0"]
    assert e0["evaluated_seasons"] == ["2022-2023"]  # the bundle's last E0 season
    assert e0["evaluated_matches"] == plan["evaluated_matches"] == 380
    assert e0["earlier_matches"] > 0
    assert not (tmp_path / "registry").exists()  # nothing trained, nothing registered
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("bogus: 1\n", "bogus"),
        ("seed: -1\n", "seed"),
        ("backtest: {bookmaker: nobody}\n", "field 'backtest.bookmaker': 'nobody' prices nothing"),
    ],
)
def test_a_football_dry_run_fails_as_the_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, message: str
) -> None:
    config = _football_config(tmp_path, extra)
    assert main(["run", "--config", str(config), "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_a_ray_address_needs_the_ray_backend(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--vertical", "crypto", "--ray-address", "ray://head:10001", "--dry-run"]
    assert main(argv) == 2
    assert "--ray-address ray://head:10001 needs --backend ray" in capsys.readouterr().err
    config = _football_config(tmp_path)
    assert main(["run", "--config", str(config), "--backend", "ray"]) == 2
    assert "set the crypto jobs; this run is football" in capsys.readouterr().err


def test_evaluate_crypto_names_a_football_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _football_config(tmp_path)
    argv = ["evaluate", "crypto", "--data", str(tmp_path), "--start", "2023-01-01"]
    assert main([*argv, "--config", str(config), "--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "not a crypto config" in err
    assert "reads as a football config" in err
    assert "Extra inputs" not in err


def test_registry_show_of_a_market_refuses_a_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["registry", "--root", str(tmp_path), "show", "football/1x2", "--version", "v1"]
    assert main(argv) == 2
    assert "--version names a version of a model" in capsys.readouterr().err


def test_the_terminal_says_a_first_champion_that_was_also_challenged() -> None:
    """A first run printed "first champion" for over/under and handicap but not for 1X2, where
    the other models were tested against the new champion: only the test was said."""
    import io

    from rich.console import Console

    from marketcast.orchestration.football import print_decisions

    out = io.StringIO()
    decision = {
        "challenger": "elo",
        "champion": "market",
        "promote": False,
        "reason": "p = 0.41 >= 0.05",
        "first_champion": "market v1: no champion yet",
    }
    print_decisions(Console(file=out, width=200), {"1x2": decision})
    assert out.getvalue() == (
        "1x2: first champion market v1: no champion yet; elo not promoted over market: "
        "p = 0.41 >= 0.05\n"
    )


def test_a_ray_address_is_checked_before_the_football_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With both verticals, football trained for minutes before the address was refused."""
    from marketcast.orchestration import commands

    def football_ran(*args: object, **kwargs: object) -> None:
        raise AssertionError("football ran before the crypto options were checked")

    monkeypatch.setattr(commands, "run_football", football_ran)
    assert main(["run", "--ray-address", "ray://head:10001"]) == 2
    assert "needs --backend ray" in capsys.readouterr().err
