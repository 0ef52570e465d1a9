"""Run configs: every mistake a user made in a YAML file is an error naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from marketcast.cli import main
from marketcast.config import (
    CryptoRunConfig,
    FootballRunConfig,
    load_config,
    load_crypto_config,
)
from marketcast.orchestration.football import build_models
from marketcast.registry import Registry


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [market, elo\nseed: 1\n", "not valid YAML"),  # was a yaml traceback
        ("walk_forward:\n\tstep_days: 7\n", "not valid YAML"),
        (  # the first block was silently dropped
            "walk_forward:\n  step_days: 7\nwalk_forward:\n  last_seasons: 1\n",
            "key 'walk_forward' given twice",
        ),
        ("walk_forward:\n  retrain_every_steps: {elo: 0}\n", "at least 1 step"),  # was taken as 1
        ("walk_forward:\n  retrain_every_steps: {elon: 2}\n", "unknown models ['elon']"),
        ("model_params:\n  elon: {k: 1}\n", "model_params: unknown models ['elon']"),
        ("walk_forward:\n  end: 2022-09-01\n", "end without start"),  # end was ignored
        ("walk_forward:\n  start: 01/10/2021\n", "not an ISO 8601 date"),
        ("walk_forward:\n  start: 2023-02-30\n", "not a valid date or time"),  # no file named
        # min() of an empty list; an empty report
        ("models: []\n", "field 'models': Tuple should have at least 1 item"),
        ("markets: []\n", "field 'markets': Tuple should have at least 1 item"),
        ("seed: -1\n", "field 'seed': Input should be greater than or equal to 0"),
        ("name: x/../../../escaped\n", "a run name becomes a folder name"),  # wrote outside runs
        (f"name: {'n' * 300}\n", "a run name becomes a folder name"),  # failed after registering
        ('name: "run\\n"\n', "a run name becomes a folder name"),  # "$" let a newline in
    ],
)
def test_a_mistake_in_the_yaml_names_the_file_and_the_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.")) as caught:
        load_config(path)
    assert message in str(caught.value)


def test_latin1_bytes_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes("name: Málaga\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"run\.yaml: not UTF-8 text"):
        load_config(path)


def test_an_unquoted_yaml_date_is_read_as_the_date(tmp_path: Path) -> None:
    """YAML makes ``2021-08-01`` a date object, which was refused as 'not a valid string'."""
    config = load_config(write(tmp_path, "walk_forward:\n  start: 2021-08-01\n  end: 2022-01-01\n"))
    assert (config.walk_forward.start, config.walk_forward.end) == ("2021-08-01", "2022-01-01")
    crypto = load_crypto_config(write(tmp_path, "walk_forward:\n  start: 2023-01-01\n", "c.yaml"))
    assert crypto.walk_forward.start == "2023-01-01"


def test_yaml_merge_keys_still_work(tmp_path: Path) -> None:
    """Refusing keys given twice broke ``<<:`` merges ("could not determine a constructor")."""
    text = "walk_forward:\n  <<: {step_days: 14, last_seasons: 1}\n  step_days: 7\n"
    walk = load_config(write(tmp_path, text)).walk_forward
    assert (walk.step_days, walk.last_seasons) == (7, 1)  # the explicit key wins, as YAML says


def test_the_shipped_configs_still_load() -> None:
    assert load_config("configs/experiments/football.yaml").name
    assert load_crypto_config("configs/experiments/crypto.yaml").name


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("elo: {k_factor_typo: 20}", "model_params.elo: EloModel.__init__() got an unexpected"),
        ("dixon_coles: {half_life_days: -5}", "model_params.dixon_coles: half_life_days must be"),
    ],
)
def test_model_params_are_checked_before_any_data_is_read(
    tmp_path: Path, params: str, message: str
) -> None:
    """A misspelt key was a TypeError traceback; a negative half-life a garbage model."""
    config = load_config(
        write(tmp_path, f"models: [elo, dixon_coles]\nmodel_params:\n  {params}\n")
    )
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_models(config)


def test_run_fails_before_the_walk_forward_when_results_could_not_be_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """These used to fail after minutes of fitting (and after the registry had changed)."""
    a_file = tmp_path / "afile"
    a_file.write_text("")
    for setting, message in (
        (f"registry_root: {a_file}", "registry_root"),
        ("registry_root: nosuchproto://x/reg", "Protocol not known"),
        (f"runs_dir: {a_file}", "runs_dir"),
        (f"registry_root: {a_file}/below", "cannot be created"),  # failed after registering
        # passes a permission check as root; failed after fitting with a bare "[Errno 2]"
        (
            "runs_dir: /proc/marketcast-probe",
            "field 'runs_dir': /proc/marketcast-probe cannot be created",
        ),
        (
            "backtest: {bookmaker: nosuchbook}",
            "field 'backtest.bookmaker': 'nosuchbook' prices nothing",
        ),
    ):
        path = write(tmp_path, f"data: {{leagues: [E0]}}\nmodels: [market]\n{setting}\n")
        assert main(["run", "--config", str(path)]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "registry").exists()


@pytest.mark.parametrize(
    ("vertical", "text"),
    [
        ("all", "vertical: crypto\n"),
        ("football", "vertical: crypto\n"),
        ("all", "models: [market]\n"),
    ],
)
def test_run_refuses_a_vertical_the_config_does_not_configure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], vertical: str, text: str
) -> None:
    """``--config FILE --vertical all`` ran both jobs on the defaults, FILE ignored, into the
    default registry (where they could promote champions)."""
    path = write(tmp_path, text)
    assert main(["run", "--config", str(path), "--vertical", vertical, "--dry-run"]) == 2
    configured = "crypto" if "crypto" in text else "football"
    assert (
        f"{path} configures {configured}: give --vertical {configured}" in capsys.readouterr().err
    )


def test_an_empty_models_option_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    """``--models ,`` silently ran all five models."""
    args = ["evaluate", "football", "--data", ".", "--start", "2022-01-01", "--models", ","]
    assert main([*args, "--json", "x.json"]) == 2
    assert "no models given in ','" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [market\n", "not valid YAML"),  # a yaml traceback, exit 1
        ("vertical: crypto\nhorizons: [1h\n", "not valid YAML"),
        ("walk_forward: {start: 2023-02-30}\n", "not a valid date or time"),  # no file named
        ("vertical: cricket\n", "vertical must be football or crypto, got 'cricket'"),
    ],
)
def test_run_without_vertical_names_the_file_of_a_broken_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    """``run --config`` reads the file once to learn its vertical: that read had none of the
    loader's checks, so a broken file was a traceback or an error that named no file."""
    path = write(tmp_path, text)
    assert main(["run", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {message}" in err
    assert "Traceback" not in err


def test_model_params_of_a_model_left_out_are_checked_and_errors_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad entry for a model not in ``models`` ran to the end with exit 0; a bad entry for a
    listed one named the key but not the file the key is in."""
    text = "models: [market]\nmodel_params:\n  dixon_coles: {half_life_days: -5}\n"
    config = load_config(write(tmp_path, text))
    with pytest.raises(ValueError, match=r"model_params\.dixon_coles: half_life_days must be"):
        build_models(config)
    path = write(tmp_path, text, "left_out.yaml")
    assert main(["run", "--config", str(path)]) == 2
    assert f"{path}: model_params.dixon_coles: half_life_days must be" in capsys.readouterr().err
    args = ["evaluate", "football", "--start", "2022-01-01", "--json", str(tmp_path / "x.json")]
    assert main([*args, "--data", str(tmp_path), "--config", str(path)]) == 2
    assert f"{path}: model_params.dixon_coles" in capsys.readouterr().err


def test_yaml_exponents_without_a_dot_are_floats(tmp_path: Path) -> None:
    """YAML 1.1 reads ``5e-2`` as the string '5e-2', which the parameter checks then refused."""
    text = "models: [lightgbm]\nmodel_params:\n  lightgbm: {learning_rate: 5e-2, reg_lambda: 1e1}\n"
    config = load_config(write(tmp_path, text))
    assert config.model_params["lightgbm"] == {"learning_rate": 0.05, "reg_lambda": 10.0}
    assert build_models(config)["lightgbm"].learning_rate == 0.05


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("momentum: {clip_z: 0}", "model_params.momentum: crypto model 'momentum': clip_z must be"),
        ("consensus: {weight: 1}", "model_params.consensus: the consensus vote has no parameters"),
    ],
)
def test_crypto_model_params_are_checked_before_any_data_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], params: str, message: str
) -> None:
    """A bad crypto parameter failed inside every walk-forward job, after the data preparation,
    and the run then said "nothing to evaluate"; a consensus entry was silently ignored."""
    path = write(tmp_path, f"vertical: crypto\npairs: [NOSUCHUSDT]\nmodel_params:\n  {params}\n")
    assert main(["run", "--config", str(path)]) == 2
    assert f"{path}: {message}" in capsys.readouterr().err


def test_a_home_folder_path_is_expanded_as_the_registry_root_is(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Registry audit (low): ``registry_root: ~/reg`` opened the home folder's (fsspec expands
    it) while ``runs_dir: ~/runs`` and ``data.paths`` made or read a folder named ``~``."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for model in (FootballRunConfig, CryptoRunConfig):
        config = model.model_validate({"runs_dir": "~/runs", "data": {"paths": ["~/data", "x"]}})
        assert config.runs_dir == str(tmp_path / "runs")
        assert config.data.paths == (str(tmp_path / "data"), "x")
        assert Registry("~/reg").location[1] == str(tmp_path / "reg")  # the same rule


def test_config_errors_name_the_field_suggest_a_key_and_skip_follow_on_errors(
    tmp_path: Path,
) -> None:
    """The fresh-user walkthrough: "modles: Extra inputs are not permitted", a "Value error, "
    prefix, and `horizons: [2h]` also said the list held no item."""
    football = write(tmp_path, "modles: [elo]\nwalk_forward:\n  step_dayz: 7\n")
    with pytest.raises(ValueError, match="unknown key") as caught:
        load_config(football)
    assert str(caught.value) == (
        f"{football}, field 'walk_forward.step_dayz': unknown key (did you mean 'step_days'?); "
        "field 'modles': unknown key (did you mean 'models'?)"
    )
    crypto = write(tmp_path, "vertical: crypto\nhorizons: [2h]\nname: a/b\n", "c.yaml")
    with pytest.raises(ValueError, match="horizons") as caught:
        load_crypto_config(crypto)
    message = str(caught.value)
    assert message.startswith(f"{crypto}, field 'name': a run name becomes a folder name")
    assert message.endswith("; field 'horizons.0': Input should be '1h', '4h' or '1d'")
    assert "field 'horizons':" not in message  # the list's own "at least 1 item" is left out
    assert "Value error" not in message
    # inside a mapping of sections too (the review: no suggestion past a dict)
    renames = write(tmp_path, "vertical: crypto\npair_renames: {MATICUSDT: {too: POLUSDT}}\n")
    with pytest.raises(ValueError, match="unknown key") as caught:
        load_crypto_config(renames)
    assert "field 'pair_renames.MATICUSDT.too': unknown key (did you mean 'to'?)" in str(
        caught.value
    )


def test_a_missing_config_file_names_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was "[Errno 2] No such file or directory: 'nofile.yaml'", naming no option."""
    missing = tmp_path / "nofile.yaml"
    assert main(["run", "--config", str(missing), "--dry-run"]) == 2
    assert (
        f"--config {missing}: cannot read it (No such file or directory)" in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("backtest: {min_edge: .inf}\n", "backtest.min_edge"),  # ran, then failed unnamed
        ("backtest: {min_edge: .nan}\n", "backtest.min_edge"),
        ("vertical: crypto\nmin_edge: .inf\n", "min_edge"),  # no trade ever, silently
        ("vertical: crypto\ncosts: {notional_usd: .inf}\n", "costs.notional_usd"),
        ("vertical: crypto\nuniverse: {max_spread: .inf}\n", "universe.max_spread"),
    ],
)
def test_an_infinite_number_is_refused_naming_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    loader = load_crypto_config if "crypto" in text else load_config
    with pytest.raises(ValueError, match=rf"run\.yaml, field '{field}': Input should be a finite"):
        loader(write(tmp_path, text))


def test_an_infinite_model_parameter_is_refused_not_recorded_as_null(tmp_path: Path) -> None:
    text = "model_params: {dixon_coles: {half_life_days: .inf}}\n"
    with pytest.raises(ValueError, match=r"model_params\.dixon_coles\.half_life_days: inf is not"):
        load_config(write(tmp_path, text))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("backtest: {max_stake_fraction: yes}\n", "backtest.max_stake_fraction"),  # a 100% cap
        ("seed: yes\n", "seed"),
        ("walk_forward: {step_days: on}\n", "walk_forward.step_days"),
        ("backtest: {n_bootstrap: no}\n", "backtest.n_bootstrap"),
        ("walk_forward: {retrain_every_steps: {elo: yes}}\n", "walk_forward.retrain_every_steps"),
        ("vertical: crypto\nwalk_forward: {max_train_days: true}\n", "walk_forward.max_train_days"),
    ],
)
def test_a_yaml_yes_or_no_is_not_read_as_a_number(tmp_path: Path, text: str, field: str) -> None:
    loader = load_crypto_config if "crypto" in text else load_config
    with pytest.raises(ValueError, match=rf"field '{field}': (True|False) is a yes/no"):
        loader(write(tmp_path, text))


def test_a_yes_or_no_still_sets_a_yes_no_setting(tmp_path: Path) -> None:
    config = load_crypto_config(write(tmp_path, "vertical: crypto\nper_regime: no\n"))
    assert config.per_regime is False


def test_a_list_as_a_yaml_key_names_the_file_and_line(tmp_path: Path) -> None:
    text = "model_params:\n  elo: {[1]: 2}\n"  # was a raw TypeError traceback
    with pytest.raises(ValueError, match=r"run\.yaml: not valid YAML: a key must be text or a "):
        load_config(write(tmp_path, text))


def test_a_partial_crypto_promotion_keeps_the_crypto_defaults(tmp_path: Path) -> None:
    config = load_crypto_config(write(tmp_path, "vertical: crypto\npromotion: {test: t}\n"))
    assert (config.promotion.min_matches, config.promotion.planned_matches) == (30, 500)
    assert config.promotion == CryptoRunConfig().promotion
    given = load_crypto_config(write(tmp_path, "vertical: crypto\npromotion: {min_matches: 40}\n"))
    assert (given.promotion.min_matches, given.promotion.planned_matches) == (40, 500)


def test_one_refit_cadence_leaves_the_others_at_their_defaults(tmp_path: Path) -> None:
    text = "walk_forward: {retrain_every_steps: {elo: 2}}\n"
    cadences = load_config(write(tmp_path, text)).walk_forward.retrain_every_steps
    assert cadences == {**FootballRunConfig().walk_forward.retrain_every_steps, "elo": 2}
    assert cadences["lightgbm"] == 4  # was 1: refit weekly, about four times slower


@pytest.mark.parametrize(
    ("one", "same"),
    [
        ("walk_forward: {start: 2021-08-01}\n", "walk_forward: {start: ' 2021-08-01T00:00:00 '}\n"),
        ("walk_forward: {start: 2021-08-01}\n", "walk_forward: {start: 2021-08-01 00:00:00}\n"),
        ("data: {leagues: [E0]}\n", "data: {leagues: [E0, E0]}\n"),
        ("markets: [1x2]\n", "markets: [1x2, 1x2]\n"),
        ("model_params: {}\n", "model_params: {elo: {}}\n"),
        ("vertical: crypto\nhorizons: [1h]\n", "vertical: crypto\nhorizons: [1h, 1h]\n"),
        ("vertical: crypto\npairs: [BTCUSDT]\n", "vertical: crypto\npairs: [btc/usdt, BTCUSDT]\n"),
    ],
)
def test_configs_that_mean_the_same_dump_and_hash_the_same(
    tmp_path: Path, one: str, same: str
) -> None:
    loader = load_crypto_config if "crypto" in one else load_config
    first = loader(write(tmp_path, one, "one.yaml"))
    second = loader(write(tmp_path, same, "same.yaml"))
    assert first.model_dump(mode="json") == second.model_dump(mode="json")


@pytest.mark.parametrize("key", ["registry_root", "runs_dir"])
@pytest.mark.parametrize("vertical", ["", "vertical: crypto\n"])
def test_an_empty_output_place_is_refused(tmp_path: Path, key: str, vertical: str) -> None:
    """``registry_root: ""`` wrote the registry and the run folder into the current folder."""
    loader = load_crypto_config if vertical else load_config
    with pytest.raises(ValueError, match=rf"field '{key}': must name a folder or URL"):
        loader(write(tmp_path, f'{vertical}{key}: " "\n'))
    assert getattr(loader(write(tmp_path, f"{vertical}{key}: .\n")), key) == "."
