"""Runtime settings of the forecast server, read from ``MARKETCAST_*`` environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ENV_PREFIX = "MARKETCAST_"


class ServingSettings(BaseModel):
    """Settings of the HTTP server; secrets come only from the environment.

    Each field ``name`` is read from the variable ``MARKETCAST_<NAME>`` by :meth:`from_env`
    (``admin_token`` from ``MARKETCAST_ADMIN_TOKEN``, ``max_body_bytes`` from
    ``MARKETCAST_MAX_BODY_BYTES`` ...). An unset or empty variable keeps the default.
    """

    # hide_input_in_errors: a rejected admin token must not be echoed in the start-up error
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    host: str = Field(default="127.0.0.1", description="interface to bind")
    port: int = Field(default=8000, ge=1, le=65535)
    registry: str = Field(default="registry", description="registry folder or fsspec URL")
    admin_token: SecretStr | None = Field(
        default=None,
        description="bearer token of the admin endpoints; unset disables them",
    )
    max_body_bytes: int = Field(default=256 * 1024, ge=1, description="request body cap, bytes")
    cache_ttl_s: float = Field(default=30.0, ge=0.0, description="forecast cache time to live")
    cache_size: int = Field(default=10_000, ge=0, description="forecast cache entries; 0 disables")
    limit_concurrency: int = Field(
        default=1024,
        ge=1,
        description="open connections (per worker) past which uvicorn answers 503",
    )
    keep_alive_timeout_s: int = Field(
        default=5, ge=1, le=3600, description="seconds an idle keep-alive connection stays open"
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0.0,
        le=3600.0,
        description="seconds a connection may take to send a request's headers",
    )
    await_champions: bool = Field(
        default=False,
        description="start with no champion registered: /readyz and the forecast routes answer "
        "503 until another process registers one, which the server then loads",
    )

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if secret == "":
            return None
        if len(secret) < 16 or any(ch.isspace() for ch in secret):
            raise ValueError("the admin token needs at least 16 characters and no whitespace")
        return value

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServingSettings:
        """Build settings from ``MARKETCAST_*`` variables (``os.environ`` by default).

        Parameters
        ----------
        environ
            Variables to read; ``None`` reads the process environment.

        Returns
        -------
        ServingSettings
            Validated settings; a bad value raises ``pydantic.ValidationError`` naming the field.

        Examples
        --------
        >>> s = ServingSettings.from_env({"MARKETCAST_PORT": "9000", "MARKETCAST_CACHE_SIZE": "0"})
        >>> (s.port, s.cache_size, s.admin_token)
        (9000, 0, None)
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
        return cls.model_validate(values)

    @property
    def admin_enabled(self) -> bool:
        """True when an admin token is configured."""
        return self.admin_token is not None
