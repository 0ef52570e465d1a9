"""Serving-safety, registry and form-feature rules a mutation audit found unpinned: each test
fails when its check is changed or dropped the way the audit changed it (2026-11-25; the code
was right, the tests silent)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError
from starlette.exceptions import HTTPException

from marketcast.features.football import REST_DAYS_CAP, team_form_features
from marketcast.registry import Registry
from marketcast.registry.manifest import ArtifactIntegrityError, validate_file_name, verify_files
from marketcast.registry.promotion import promote_if_better
from marketcast.registry.store import ChampionChangedError
from marketcast.serving.security import BodySizeLimitMiddleware, BodyTooLargeError, check_bearer
from marketcast.serving.settings import ServingSettings, SettingsEnvError
from tests.unit.test_registry import FILES, make_manifest

TOKEN = "0123456789abcdef"


# --------------------------------------------------------------------------- admin token


def test_a_token_that_only_begins_with_the_admin_token_is_refused() -> None:
    with pytest.raises(HTTPException) as refused:
        check_bearer(f"Bearer {TOKEN}-EXTRA", SecretStr(TOKEN))
    assert refused.value.status_code == 403
    check_bearer(f"Bearer {TOKEN}", SecretStr(TOKEN))  # the token itself passes


@pytest.mark.parametrize(
    "token", [TOKEN[:-1], TOKEN + "\x7f"], ids=["15-characters", "control-character"]
)
def test_an_admin_token_too_short_or_with_a_control_character_is_refused(token: str) -> None:
    with pytest.raises(ValidationError):
        ServingSettings(admin_token=token)
    assert ServingSettings(admin_token=TOKEN).admin_enabled


# --------------------------------------------------------------------------- settings


def test_a_blank_variable_keeps_the_default() -> None:
    assert ServingSettings.from_env({"MARKETCAST_PORT": "  "}).port == 8000


def test_a_body_cap_of_zero_is_refused() -> None:
    with pytest.raises(SettingsEnvError, match="must be >= 1"):
        ServingSettings.from_env({"MARKETCAST_MAX_BODY_BYTES": "0"})


def test_a_nan_setting_is_named_as_nan_not_as_out_of_range() -> None:
    with pytest.raises(SettingsEnvError, match="must be a number, not NaN"):
        ServingSettings.from_env({"MARKETCAST_HEADER_TIMEOUT_S": "nan"})


# --------------------------------------------------------------------------- body cap


@pytest.fixture
def capped() -> TestClient:
    app = FastAPI()

    @app.post("/x")
    async def echo(request: Request) -> dict[str, int]:
        return {"n": len(await request.body())}

    return TestClient(BodySizeLimitMiddleware(app, max_body_bytes=10))


def test_a_body_exactly_at_the_cap_is_taken(capped: TestClient) -> None:
    assert capped.post("/x", content=b"a" * 10).status_code == 200
    assert capped.post("/x", content=b"a" * 11).status_code == 413

    def chunks() -> Iterator[bytes]:
        yield b"a" * 5
        yield b"a" * 5

    assert capped.post("/x", content=chunks()).status_code == 200


def _serve(
    app: Any, headers: list[tuple[bytes, bytes]], bodies: list[bytes], sent: list[dict]
) -> None:
    """Run the capped ``app`` on one request, its body in ``bodies``; what it sends goes to
    ``sent``."""
    left = list(bodies)

    async def receive() -> dict:
        body = left.pop(0) if left else b""
        return {"type": "http.request", "body": body, "more_body": bool(left)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/x", "headers": headers}
    asyncio.run(BodySizeLimitMiddleware(app, max_body_bytes=10)(scope, receive, send))


def test_the_first_content_length_is_the_one_judged() -> None:
    async def ok(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []
    _serve(ok, [(b"content-length", b"5"), (b"content-length", b"50")], [b""], sent)
    assert sent[0]["status"] == 200


def test_a_response_already_started_is_not_started_again_when_the_body_runs_over() -> None:
    """An app that answers before it reads: a second response start breaks the ASGI contract."""

    async def answers_first(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.body", "body": b""})

    sent: list[dict] = []
    with pytest.raises(BodyTooLargeError):  # the server cuts the connection
        _serve(answers_first, [], [b"a" * 6, b"a" * 6], sent)
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200]


# --------------------------------------------------------------------------- registry


def test_an_artifact_file_may_not_be_named_as_the_manifest() -> None:
    with pytest.raises(ValueError, match="reserved for the manifest"):
        validate_file_name("manifest.json")


def test_a_file_the_manifest_does_not_list_fails_the_check() -> None:
    manifest = make_manifest(files=FILES)
    verify_files(manifest, FILES)
    with pytest.raises(ArtifactIntegrityError, match=r"unlisted \['evil.txt'\]"):
        verify_files(manifest, {**FILES, "evil.txt": b"x"})


@pytest.fixture
def memory_registry() -> Registry:
    return Registry(f"memory://pinned-{uuid.uuid4().hex}")


def _versions(registry: Registry, n: int) -> list[str]:
    return [
        registry.register("football", "e0", "m", FILES, make_manifest("m", files=FILES))
        for _ in range(n)
    ]


def test_a_rollback_expecting_another_champion_changes_nothing(memory_registry: Registry) -> None:
    v1, v2 = _versions(memory_registry, 2)
    memory_registry.set_champion("football", "e0", "m", v1, "first")
    memory_registry.set_champion("football", "e0", "m", v2, "second")
    with pytest.raises(ChampionChangedError):
        memory_registry.rollback("football", "e0", expected=("m", "v0-not-the-champion"))
    champion = memory_registry.champion("football", "e0")
    assert champion is not None
    assert champion.version == v2


def test_a_promotion_judged_against_a_champion_that_moved_is_refused(
    memory_registry: Registry,
) -> None:
    v1, v2, challenger = _versions(memory_registry, 3)
    memory_registry.set_champion("football", "e0", "m", v1, "first")
    memory_registry.set_champion("football", "e0", "m", v2, "second")
    with pytest.raises(ChampionChangedError):
        promote_if_better(
            memory_registry,
            "football",
            "e0",
            ("m", challenger),
            np.ones(40),
            np.zeros(40),
            champion=("m", v1),
        )
    champion = memory_registry.champion("football", "e0")
    assert champion is not None
    assert champion.version == v2


# --------------------------------------------------------------------------- form features


def test_form_points_and_rest_days_from_a_teams_first_matches() -> None:
    matches = pd.DataFrame(
        {
            "home_team": ["A", "B", "A"],
            "away_team": ["B", "A", "B"],
            "kickoff_utc": pd.to_datetime(["2022-08-01", "2022-08-08", "2022-08-15"], utc=True),
            "home_goals": [2, 0, 1],
            "away_goals": [0, 0, 1],
        }
    )
    form = team_form_features(matches)
    # row 1: B lost its one match (an away loss: 0 points), A won its one (3 points)
    assert form["home_form_points"].tolist()[1] == 0.0
    assert form["away_form_points"].tolist()[1] == 3.0
    # row 2: B has a loss and a draw (0.5 points a match)
    assert form["away_form_points"].tolist()[2] == 0.5
    # a team's first match: rest days at the cap, not 0
    assert form["home_rest_days"].tolist()[0] == REST_DAYS_CAP
    assert form["away_rest_days"].tolist()[0] == REST_DAYS_CAP


def test_a_manifest_listing_a_file_twice_is_refused() -> None:
    """Two entries of one name: which size and hash the check holds a file to was undefined."""
    manifest = make_manifest(files=FILES)
    doubled = manifest.model_dump(mode="json")
    doubled["files"] = doubled["files"] + doubled["files"][:1]
    with pytest.raises(ValidationError, match="duplicate artifact file names"):
        type(manifest).model_validate(doubled)
