"""Runtime settings of the forecast server, read from ``MARKETCAST_*`` environment variables."""

from __future__ import annotations

import math
import os
import typing
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretBytes,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails, InitErrorDetails

ENV_PREFIX = "MARKETCAST_"

#: pydantic error type -> what a variable's text must be, for the errors whose wording is fixed
_WANTED = {
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "finite_number": "must be a finite number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
}
#: pydantic bound error type -> (its context key, the comparison a value must pass)
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}


def env_variable(field: str) -> str:
    """The environment variable that sets a settings field: ``port`` -> ``MARKETCAST_PORT``."""
    return ENV_PREFIX + field.upper()


class SettingsEnvError(ValidationError):
    """Settings read from ``MARKETCAST_*`` variables that fail validation, told in one line.

    ``str()`` names each rejected variable, the text it held and what is wanted
    (``MARKETCAST_PORT='abc': must be an integer (field port)``); a secret's text is never
    shown, only its length. ``errors()`` keeps pydantic's details, a secret's input masked as a
    ``SecretStr``. A ``ValidationError`` (so a ``ValueError``), as before.
    """

    #: field -> the variable that sets it, where that is not :func:`env_variable`'s name
    _variables: Mapping[str, str] = MappingProxyType({})

    @classmethod
    def from_error(
        cls,
        error: ValidationError | Sequence[ValidationError],
        secrets: frozenset[str],
        *,
        variables: Mapping[str, str] | None = None,
        texts: Mapping[str, str] | None = None,
        field_order: Sequence[str] = (),
    ) -> SettingsEnvError:
        """Rebuild ``error``, masking the input of the fields named in ``secrets``.

        Several errors (of one settings model, found in steps) become one, their lines sorted
        by ``field_order`` where given. ``variables`` names the variable of a field not read
        from :func:`env_variable`'s (``window_bars`` from ``MARKETCAST_CRYPTO_WINDOW_BARS``);
        ``texts`` holds, per field, the variable's text to show instead of the value parsed
        from it (a list, a mapping).
        """
        errors = [error] if isinstance(error, ValidationError) else list(error)
        order = {name: i for i, name in enumerate(field_order)}
        details = sorted(
            (detail for e in errors for detail in e.errors(include_url=False)),
            key=lambda detail: order.get(str(detail["loc"][0]) if detail["loc"] else "", -1),
        )
        texts = texts or {}
        line_errors: list[InitErrorDetails] = []
        for detail in details:
            field = str(detail["loc"][0]) if detail["loc"] else ""
            raw = texts.get(field, detail["input"])
            masked = SecretStr(raw) if field in secrets and isinstance(raw, str) else raw
            line = InitErrorDetails(type=detail["type"], loc=detail["loc"], input=masked)
            if "ctx" in detail:
                line["ctx"] = detail["ctx"]
            line_errors.append(line)
        made = cls.from_exception_data(errors[0].title, line_errors, hide_input=True)
        made._variables = MappingProxyType(dict(variables or {}))
        return made

    def __str__(self) -> str:
        return "; ".join(
            _describe(detail, self._variables) for detail in self.errors(include_url=False)
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


def _describe(detail: ErrorDetails, variables: Mapping[str, str]) -> str:
    """One rejected value: ``MARKETCAST_CACHE_SIZE='-1': must be >= 0 (field cache_size)``.

    The field is the error's whole path (``pair_renames.MATICUSDT.new_per_old``), the variable
    that of its first part (``variables``' name, else :func:`env_variable`'s).
    """
    if not detail["loc"]:
        return str(detail["msg"])
    field = str(detail["loc"][0])
    variable = variables.get(field, env_variable(field))
    raw = detail["input"]
    if isinstance(raw, SecretStr):
        given = f"{variable} ({len(raw.get_secret_value())} characters)"
    else:
        given = f"{variable}={raw!r}"
    ctx = detail.get("ctx", {})
    if detail["type"] in _BOUNDS and _is_nan(raw):
        # NaN fails every comparison: "'nan': must be <= 3600.0" told of the wrong bound
        wanted = "must be a number, not NaN"
    elif detail["type"] in _WANTED:
        wanted = _WANTED[detail["type"]]
    elif detail["type"] in _BOUNDS:
        key, comparison = _BOUNDS[detail["type"]]
        wanted = f"must be {comparison} {ctx[key]}"
    elif detail["type"] == "value_error" and "error" in ctx:
        wanted = str(ctx["error"])
    else:
        wanted = detail["msg"][:1].lower() + detail["msg"][1:]
    return f"{given}: {wanted} (field {'.'.join(str(part) for part in detail['loc'])})"


def _is_nan(raw: Any) -> bool:
    """True for a NaN, or text that parses as one ("nan", "NaN", "-nan")."""
    try:
        return math.isnan(float(raw))
    except (TypeError, ValueError):
        return False


def _secret_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of ``model`` typed ``SecretStr`` or ``SecretBytes`` (optional or not)."""
    secret_types = (SecretStr, SecretBytes)
    return frozenset(
        name
        for name, info in model.model_fields.items()
        if info.annotation in secret_types
        or any(arg in secret_types for arg in typing.get_args(info.annotation))
    )


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
    # 1 MiB (nginx's default client_max_body_size): a full batch (MAX_BATCH fixtures) quoting
    # every bookmaker code in every market is ~0.97 MiB as json.dumps writes it; at 256 KiB, a
    # full batch quoting the bookmakers of a football-data.co.uk row (~272 KiB) was a 413
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="request body cap, bytes")
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
        if not (secret.isascii() and secret.isprintable()):
            # HTTP carries header bytes, which Starlette decodes as latin-1 and check_bearer
            # compares as UTF-8: a token such as "pässwörd-..." was accepted here and could
            # then never authenticate
            raise ValueError(
                "the admin token must be printable ASCII (letters, digits, punctuation): a "
                "request could never send another character as the server compares it"
            )
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
            Validated settings.

        Raises
        ------
        SettingsEnvError
            A ``pydantic.ValidationError`` whose text is one line naming each bad variable,
            its value (a secret's length only) and what is wanted.

        Examples
        --------
        >>> s = ServingSettings.from_env({"MARKETCAST_PORT": "9000", "MARKETCAST_CACHE_SIZE": "0"})
        >>> (s.port, s.cache_size, s.admin_token)
        (9000, 0, None)
        >>> ServingSettings.from_env({"MARKETCAST_PORT": "abc"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        marketcast.serving.settings.SettingsEnvError: MARKETCAST_PORT='abc': must be an integer ...
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            raw = env.get(env_variable(name))
            if raw is not None and raw.strip() != "":
                values[name] = raw.strip()
        try:
            return cls.model_validate(values)
        except ValidationError as error:
            # from None: the original holds a rejected secret in its errors()
            raise SettingsEnvError.from_error(error, _secret_fields(cls)) from None

    @property
    def admin_enabled(self) -> bool:
        """True when an admin token is configured."""
        return self.admin_token is not None
