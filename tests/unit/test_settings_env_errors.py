"""A bad ``MARKETCAST_*`` serving setting is one line naming the variable, the value given and
what is wanted (a secret's value left out), not pydantic's multi-line dump."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from marketcast.cli import main
from marketcast.serving.crypto import CryptoSettings
from marketcast.serving.default import service_settings_from_env
from marketcast.serving.settings import ServingSettings, SettingsEnvError

TOKEN = "short-secret"  # 12 characters: too short


def settings_error(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> str:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsEnvError) as info:
        ServingSettings.from_env()
    return str(info.value)


def assert_one_clear_line(message: str) -> None:
    assert "\n" not in message
    assert "errors.pydantic.dev" not in message
    assert "validation error for" not in message


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("MARKETCAST_PORT", "abc", "MARKETCAST_PORT='abc': must be an integer"),
        ("MARKETCAST_PORT", "70000", "MARKETCAST_PORT='70000': must be <= 65535"),
        ("MARKETCAST_CACHE_SIZE", "-1", "MARKETCAST_CACHE_SIZE='-1': must be >= 0"),
        ("MARKETCAST_CACHE_TTL_S", "soon", "MARKETCAST_CACHE_TTL_S='soon': must be a number"),
        (
            "MARKETCAST_AWAIT_CHAMPIONS",
            "perhaps",
            "MARKETCAST_AWAIT_CHAMPIONS='perhaps': must be true or false",
        ),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_what_is_wanted(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    message = settings_error(monkeypatch, variable, value)
    assert message.startswith(expected), message
    assert_one_clear_line(message)


def test_a_rejected_admin_token_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, "MARKETCAST_ADMIN_TOKEN", TOKEN)
    assert message.startswith("MARKETCAST_ADMIN_TOKEN (12 characters): "), message
    assert "at least 16 characters" in message
    assert_one_clear_line(message)
    monkeypatch.setenv("MARKETCAST_ADMIN_TOKEN", TOKEN)
    with pytest.raises(ValidationError) as info:
        ServingSettings.from_env()
    for text in (str(info.value), repr(info.value), repr(info.value.errors())):
        assert TOKEN not in text


def test_every_bad_variable_is_named_on_the_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARKETCAST_PORT", "abc")
    message = settings_error(monkeypatch, "MARKETCAST_CACHE_SIZE", "-1")
    assert "MARKETCAST_PORT='abc'" in message
    assert "MARKETCAST_CACHE_SIZE='-1'" in message
    assert_one_clear_line(message)


def test_the_error_is_still_a_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="cache_size") as info:
        ServingSettings.from_env({"MARKETCAST_CACHE_SIZE": "-1"})
    assert [e["loc"] for e in info.value.errors()] == [("cache_size",)]


def test_serve_prints_the_one_line_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MARKETCAST_PORT", "abc")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("marketcast: error: MARKETCAST_PORT='abc': must be an integer")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "MARKETCAST_CRYPTO_WINDOW_BARS",
            "abc",
            "MARKETCAST_CRYPTO_WINDOW_BARS='abc': must be an integer (field window_bars)",
        ),
        (
            "MARKETCAST_CRYPTO_STALE_AFTER_HOURS",
            "0",
            "MARKETCAST_CRYPTO_STALE_AFTER_HOURS='0': must be > 0.0 (field stale_after_hours)",
        ),
        (
            "MARKETCAST_CRYPTO_PAIR_RENAMES",
            "MATICUSDT=POLUSDT*abc",
            "MARKETCAST_CRYPTO_PAIR_RENAMES='MATICUSDT=POLUSDT*abc': must be a number "
            "(field pair_renames.MATICUSDT.new_per_old)",
        ),
    ],
)
def test_a_bad_crypto_setting_is_told_as_the_servers_own_are(
    variable: str, value: str, expected: str
) -> None:
    """The crypto settings raised a ValueError of their own wording, naming pydantic's message
    and no wanted value (``MARKETCAST_CRYPTO_WINDOW_BARS: Input should be a valid integer,
    unable to parse string as an integer (got 'abc')``)."""
    from marketcast.serving.crypto import CryptoSettings

    with pytest.raises(SettingsEnvError) as info:
        CryptoSettings.from_env({variable: value})
    assert str(info.value) == expected
    assert_one_clear_line(str(info.value))


@pytest.mark.parametrize(
    ("renames", "told"),
    [
        (
            "garbage",
            "MARKETCAST_CRYPTO_PAIR_RENAMES='garbage': 'garbage' is not OLD=NEW "
            "(or OLD=NEW*RATIO), e.g. MATICUSDT=POLUSDT (field pair_renames)",
        ),
        (
            "MATICUSDT=POLUSDT,matic/usdt=POLUSDT",
            "MARKETCAST_CRYPTO_PAIR_RENAMES='MATICUSDT=POLUSDT,matic/usdt=POLUSDT': matic/usdt "
            "is renamed twice (field pair_renames)",
        ),
    ],
)
def test_renames_that_do_not_parse_hide_no_other_bad_crypto_setting(
    renames: str, told: str
) -> None:
    """A rename list that does not parse raised before the other variables were checked: only
    it was named, and the next start failed on the next one."""
    from marketcast.serving.crypto import CryptoSettings

    env = {
        "MARKETCAST_CRYPTO_WINDOW_BARS": "5",
        "MARKETCAST_CRYPTO_PAIR_RENAMES": renames,
        "MARKETCAST_CRYPTO_STALE_AFTER_HOURS": "-1",
    }
    with pytest.raises(SettingsEnvError) as info:
        CryptoSettings.from_env(env)
    message = str(info.value)
    assert message == "; ".join(
        [
            told,
            "MARKETCAST_CRYPTO_WINDOW_BARS='5': must be >= 200 (field window_bars)",
            "MARKETCAST_CRYPTO_STALE_AFTER_HOURS='-1': must be > 0.0 (field stale_after_hours)",
        ]
    )
    assert_one_clear_line(message)
    assert [e["loc"][0] for e in info.value.errors()] == [
        "pair_renames",
        "window_bars",
        "stale_after_hours",
    ]


def test_serve_prints_a_bad_crypto_setting_on_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # the default registry, were it reached: nothing is made
    monkeypatch.setenv("MARKETCAST_CRYPTO_WINDOW_BARS", "abc")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "marketcast: error: MARKETCAST_CRYPTO_WINDOW_BARS='abc': must be an integer "
        "(field window_bars)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_blank_llm_model_or_key_is_unset_and_candle_paths_are_stripped() -> None:
    env = {
        "MARKETCAST_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "MARKETCAST_LLM_MODEL": "",  # was sent as the model's name
        "MARKETCAST_LLM_API_KEY": "  ",  # was sent as a bearer token
    }
    llm = service_settings_from_env(env).llm
    assert llm is not None
    assert (llm.model, llm.api_key) == ("default", None)
    paths = CryptoSettings.from_env({"MARKETCAST_CRYPTO_CANDLES": " a.csv : b.csv "}).candle_paths
    assert paths == ("a.csv", "b.csv")
