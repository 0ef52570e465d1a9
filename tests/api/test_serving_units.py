"""Settings from the environment, the TTL/LRU cache and the bearer check, without HTTP."""

from __future__ import annotations

import threading

import pytest
from pydantic import SecretStr, ValidationError
from starlette.exceptions import HTTPException

from marketcast.serving.cache import TTLCache
from marketcast.serving.security import ADMIN_DISABLED, check_bearer, unsafe_identifier
from marketcast.serving.settings import ServingSettings


def test_settings_defaults() -> None:
    settings = ServingSettings.from_env({})
    assert settings.max_body_bytes == 1024 * 1024
    assert (settings.cache_ttl_s, settings.cache_size) == (30.0, 10_000)
    assert settings.admin_token is None
    assert settings.admin_enabled is False


def test_settings_read_marketcast_variables() -> None:
    settings = ServingSettings.from_env(
        {
            "MARKETCAST_ADMIN_TOKEN": "a-long-enough-admin-token",
            "MARKETCAST_MAX_BODY_BYTES": "1024",
            "MARKETCAST_CACHE_TTL_S": "2.5",
            "MARKETCAST_PORT": "8123",
            "MARKETCAST_REGISTRY": "memory://reg",
            "OTHER_PORT": "1",
        }
    )
    assert settings.admin_token is not None
    assert settings.admin_token.get_secret_value() == "a-long-enough-admin-token"
    assert "a-long-enough" not in repr(settings)
    assert (settings.max_body_bytes, settings.cache_ttl_s, settings.port) == (1024, 2.5, 8123)
    assert settings.registry == "memory://reg"


def test_settings_empty_token_disables_admin() -> None:
    assert ServingSettings.from_env({"MARKETCAST_ADMIN_TOKEN": ""}).admin_token is None


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"MARKETCAST_ADMIN_TOKEN": "short"}, "admin_token"),
        ({"MARKETCAST_MAX_BODY_BYTES": "lots"}, "max_body_bytes"),
        ({"MARKETCAST_CACHE_SIZE": "-1"}, "cache_size"),
    ],
)
def test_settings_bad_values_name_the_field(env: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        ServingSettings.from_env(env)


def test_settings_are_frozen() -> None:
    settings = ServingSettings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


def test_cache_lru_eviction_and_ttl() -> None:
    now = [100.0]
    cache: TTLCache[int] = TTLCache(max_entries=3, ttl_s=5.0, clock=lambda: now[0])
    for key in "abc":
        cache.put(key, ord(key))
    assert cache.get("a") == 97  # "a" is now the most recently used
    cache.put("d", 100)
    assert cache.get("b") is None
    assert [cache.get(k) for k in "acd"] == [97, 99, 100]
    now[0] = 104.9
    assert cache.get("a") == 97
    now[0] = 105.0
    assert cache.get("a") is None
    assert len(cache) == 2
    assert (cache.hits, cache.misses) == (5, 2)


def test_cache_disabled_stores_nothing() -> None:
    for cache in (TTLCache[int](0, 30.0), TTLCache[int](10, 0.0)):
        cache.put("a", 1)
        assert cache.get("a") is None
        assert cache.enabled is False


def test_cache_rejects_negative_sizes() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        TTLCache[int](-1, 1.0)


def test_cache_is_thread_safe_and_bounded() -> None:
    cache: TTLCache[int] = TTLCache(max_entries=50, ttl_s=60.0)

    def hammer(offset: int) -> None:
        for i in range(2_000):
            key = (offset * 7 + i) % 120
            cache.put(key, key)
            value = cache.get(key)
            assert value is None or value == key

    threads = [threading.Thread(target=hammer, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(cache) <= 50
    assert cache.hits + cache.misses == 16_000


def test_check_bearer() -> None:
    token = SecretStr("0123456789abcdef")
    assert check_bearer("Bearer 0123456789abcdef", token) is None
    assert check_bearer("bearer   0123456789abcdef ", token) is None
    with pytest.raises(HTTPException) as wrong:
        check_bearer("Bearer 0123456789abcdeX", token)
    assert wrong.value.status_code == 403
    with pytest.raises(HTTPException) as missing:
        check_bearer(None, token)
    assert missing.value.status_code == 401
    assert missing.value.headers == {"WWW-Authenticate": "Bearer"}
    with pytest.raises(HTTPException) as disabled:
        check_bearer("Bearer 0123456789abcdef", None)
    assert (disabled.value.status_code, disabled.value.detail) == (403, ADMIN_DISABLED)


@pytest.mark.parametrize(
    ("value", "unsafe"),
    [
        ("dixon_coles", False),
        ("20250101T000000Z-0a1b2c3d", False),
        ("1x2", False),
        ("..", True),
        ("../x", True),
        ("a/b", True),
        ("a\\b", True),
        ("", True),
        (".hidden", True),
        ("x" * 65, True),
    ],
)
def test_unsafe_identifier(value: str, unsafe: bool) -> None:
    assert unsafe_identifier(value) is unsafe
