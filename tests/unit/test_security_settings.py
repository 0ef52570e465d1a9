"""Serving settings never echo a rejected secret back in their errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from marketcast.serving.settings import ServingSettings


@pytest.mark.parametrize(
    "token", ["short-secret-1", "zq7long enough token with spaces", "tab\tseparated-secret-token"]
)
def test_rejected_admin_token_is_not_in_the_error(token: str) -> None:
    with pytest.raises(ValidationError) as info:
        ServingSettings.from_env({"MARKETCAST_ADMIN_TOKEN": token})
    assert "admin_token" in str(info.value)
    for text in (str(info.value), repr(info.value)):
        assert token.split()[0] not in text


def test_connection_limits_are_read_from_the_environment() -> None:
    settings = ServingSettings.from_env({})
    assert (settings.limit_concurrency, settings.keep_alive_timeout_s) == (1024, 5)
    env = {"MARKETCAST_LIMIT_CONCURRENCY": "50", "MARKETCAST_KEEP_ALIVE_TIMEOUT_S": "3"}
    settings = ServingSettings.from_env(env)
    assert (settings.limit_concurrency, settings.keep_alive_timeout_s) == (50, 3)
    with pytest.raises(ValidationError, match="limit_concurrency"):
        ServingSettings.from_env({"MARKETCAST_LIMIT_CONCURRENCY": "0"})
