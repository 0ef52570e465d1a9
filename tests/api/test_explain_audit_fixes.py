"""An audit of the serving layer: probabilities the explanation check let through, LLM answers
with no text served as "None", LLM calls that added up over a batch, admin tokens that could
never authenticate, and a NaN setting said to be out of range."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from marketcast.orchestration.football import run_football
from marketcast.registry import Registry
from marketcast.serving.default import service_settings_from_env
from marketcast.serving.explain import LLMExplainer, template_explanation, unsupported_numbers
from marketcast.serving.schemas import FixtureIn
from marketcast.serving.service import ChampionService, ServiceSettings
from marketcast.serving.settings import ServingSettings, SettingsEnvError
from tests.local_http import serving
from tests.pipeline.test_explain import _answer_handler, raw_handler
from tests.pipeline.test_run import _quiet, _small

# The audit's forecast: home 52.0 / draw 26 / away 22, an Elo gap of +21, away form 0.5.
PROBABILITIES = {"home": 0.5203, "draw": 0.26, "away": 0.2197}
MARKET = {"home": 0.512, "draw": 0.27, "away": 0.218}
FEATURES = {
    "elo_home": 1513.0,
    "elo_away": 1492.0,
    "home_form_points": 2.0,
    "away_form_points": 0.5,
    "home_rest_days": 6.0,
    "away_rest_days": 3.0,
}
# "ensemble: home win 52.0% (market 51.2%, +0.8 pts); Elo Spurs 1513 vs Brentford 1492 (+21);
# form 2.0 vs 0.5 points per game (last 6); rest 6 vs 3 days."
RATIONALE = template_explanation(
    "Spurs", "Brentford", PROBABILITIES, MARKET, FEATURES, model_name="ensemble"
)
FACTS = {"home": "Spurs", "away": "Brentford", "probabilities": PROBABILITIES, "market": MARKET}


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        (
            "Spurs have only a 21-percent chance of winning here.",
            "Spurs have a 52-percent chance of winning here.",
        ),
        ("The draw is a 21-percent chance.", "The draw is a 26-percent chance."),
        ("Brentford are a twenty-one-percent shot.", "Brentford are a twenty-two-percent shot."),
        ("Brentford have a 21-per-cent chance.", "Brentford have a 22-per-cent chance."),
    ],
)
def test_a_hyphenated_percentage_is_a_chance_of_its_outcome(wrong: str, right: str) -> None:
    """A bare 21 was read in "21-percent", which the Elo gap of +21 bore out."""
    assert unsupported_numbers(wrong, RATIONALE, FACTS) != []
    assert unsupported_numbers(right, RATIONALE, FACTS) == []


@pytest.mark.parametrize(
    ("wrong", "right"),
    [
        ("The draw has a 0.5 probability.", "The draw has a 0.26 probability."),
        ("The draw is 0.5.", "The draw is 0.26."),
        ("Brentford have a 0.5 chance of winning.", "Spurs have a 0.52 probability of winning."),
        ("The away win is likely at 0.5.", "The away win is likely at 0.22."),
    ],
)
def test_a_decimal_in_a_chance_of_an_outcome_is_only_a_probability(wrong: str, right: str) -> None:
    """A decimal "0.5" was read as 0.5 (Brentford's form) and as 50%, and the first passed."""
    assert unsupported_numbers(wrong, RATIONALE, FACTS) == ["0.5"]
    assert unsupported_numbers(right, RATIONALE, FACTS) == []
    # a decimal with a unit of another number, or in a clause on form, stays that number too
    for kept in (
        "Brentford's form reads 0.5.",
        "Brentford, on 0.5 points a game, are 22%.",
        "Spurs' 0.52 probability is 0.8 pts above the market.",
    ):
        assert unsupported_numbers(kept, RATIONALE, FACTS) == []


def test_a_hyphenated_wrong_chance_is_refused_through_the_llm_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answer = "Spurs have only a 21-percent chance of winning here."
    with serving(_answer_handler(answer)) as base:
        assert LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS) == RATIONALE
    assert "numbers the forecast does not (21)" in caplog.text


def _choice_handler(choice: dict[str, Any]) -> type[BaseHTTPRequestHandler]:
    return raw_handler(json.dumps({"choices": [choice]}).encode())


@pytest.mark.parametrize(
    ("choice", "reason"),
    [
        # a reasoning model that spent max_tokens thinking
        (
            {"finish_reason": "length", "message": {"content": None, "reasoning_content": "Hm"}},
            "cut off at max_tokens",
        ),
        ({"finish_reason": "stop", "message": {"content": None, "refusal": "No."}}, "NoneType"),
        ({"message": {"content": [{"type": "text", "text": "Spurs lead."}]}}, "content: list"),
        ({"finish_reason": "length", "message": {"content": "Spurs are clear fav"}}, "cut off"),
        ({"finish_reason": "stop", "message": {"content": "  \n"}}, "content: empty"),
    ],
)
def test_an_answer_without_whole_text_falls_back_to_the_template(
    choice: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A null content was served as the text "None", a list of parts as its Python repr."""
    with serving(_choice_handler(choice)) as base:
        text = LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS)
    assert text == RATIONALE
    [record] = [r for r in caplog.records if r.name == "marketcast.serving.explain"]
    assert record.getMessage().startswith("LLM explanation failed (LLMCallError: ")
    assert reason in record.getMessage()
    # the same text, finished, is served
    finished = {"finish_reason": "stop", "message": {"content": "Spurs are clear favourites."}}
    with serving(_choice_handler(finished)) as base:
        text = LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS)
    assert text == "Spurs are clear favourites."


@pytest.fixture(scope="module")
def cloud_batch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, list[FixtureIn]]:
    """A registry with the market model as E0 champion, and six upcoming E0 fixtures."""
    root = tmp_path_factory.mktemp("llm_deadline")
    config = _small(root, ["market"])
    run_football(config, console=_quiet(root))
    registry = Registry(config.registry_root)
    service = ChampionService(registry)
    service.reload()
    teams = sorted(t for t, league in service.team_leagues.items() if league == "E0")[:12]
    fixtures = [
        FixtureIn.model_validate(
            {
                "league": "E0",
                "home": teams[2 * k],
                "away": teams[2 * k + 1],
                "kickoff": "2030-01-05T15:00:00Z",
                "odds": {"1x2": {"home": 2.1, "draw": 3.4, "away": 3.6}},
            }
        )
        for k in range(6)
    ]
    return registry, fixtures


@pytest.fixture
def hanging_endpoint() -> Iterator[str]:
    """An endpoint that takes connections (in its backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    finally:
        listener.close()


def test_a_batch_waits_on_a_hanging_llm_timeout_s_in_all_not_per_fixture(
    cloud_batch: tuple[Registry, list[FixtureIn]],
    hanging_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Six cloud fixtures took 6 x timeout_s, one call after another (256 x 2 s: 8.5 minutes)."""
    registry, fixtures = cloud_batch
    llm = LLMExplainer(base_url=hanging_endpoint, model="m", timeout_s=0.5)
    service = ChampionService(registry, ServiceSettings(edge_threshold=1.01, llm=llm))
    service.reload()
    started = time.monotonic()
    out = service.forecast(fixtures)
    elapsed_s = time.monotonic() - started
    assert [o.path for o in out] == ["cloud"] * 6
    assert elapsed_s < 1.25  # about 0.5 s; it was 3 s
    for fixture, answer in zip(fixtures, out, strict=True):
        assert answer.explanation.startswith("ensemble: ")
        assert fixture.home in answer.explanation
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no complete answer within 0.5 s" in m for m in messages) == 1
    assert any(
        "5 of its cloud fixtures were given the template without a call" in m for m in messages
    )


def test_later_llm_calls_get_only_what_is_left_of_the_timeout(
    cloud_batch: tuple[Registry, list[FixtureIn]], caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint answering each call in 0.3 s of a 0.5 s limit: the first answer is used, the
    second call is cut at 0.5 s in all, and the other four are not made."""

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(0.3)
            payload = json.dumps({"choices": [{"message": {"content": "A close one."}}]}).encode()
            with contextlib.suppress(OSError):  # the second call is cut before this answer
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    registry, fixtures = cloud_batch
    with serving(Slow) as base:
        llm = LLMExplainer(base_url=base + "/v1", model="m", timeout_s=0.5)
        service = ChampionService(registry, ServiceSettings(edge_threshold=1.01, llm=llm))
        service.reload()
        started = time.monotonic()
        out = service.forecast(fixtures)
        elapsed_s = time.monotonic() - started
    assert elapsed_s < 0.9  # six calls of 0.3 s took 1.8 s
    assert out[0].explanation == "A close one."
    assert all(o.explanation.startswith("ensemble: ") for o in out[1:])
    assert "4 of its cloud fixtures were given the template without a call" in caplog.text


@pytest.mark.parametrize(
    "token", ["pässwörd-0123456789", "token-\U0001f511-0123456789ab", "bell\x07in-the-token-0123"]
)
def test_an_admin_token_a_header_cannot_carry_is_refused_at_start(token: str) -> None:
    """Starlette decodes header bytes as latin-1 and the check compares UTF-8: such a token was
    accepted and could then never authenticate."""
    with pytest.raises(SettingsEnvError) as info:
        ServingSettings.from_env({"MARKETCAST_ADMIN_TOKEN": token})
    message = str(info.value)
    assert message.startswith("MARKETCAST_ADMIN_TOKEN (")
    assert "printable ASCII" in message
    for shown in (message, repr(info.value)):
        assert token not in shown
        assert token[-6:] not in shown


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("MARKETCAST_HEADER_TIMEOUT_S", "header_timeout_s"),
        ("MARKETCAST_CACHE_TTL_S", "cache_ttl_s"),
    ],
)
@pytest.mark.parametrize("text", ["nan", "NaN", "-nan"])
def test_a_nan_setting_is_said_to_be_no_number(variable: str, field: str, text: str) -> None:
    """A NaN fails every bound, and was said to be above 3600 or below 0."""
    with pytest.raises(SettingsEnvError) as info:
        ServingSettings.from_env({variable: text})
    assert str(info.value) == f"{variable}={text!r}: must be a number, not NaN (field {field})"


def test_an_answer_nested_thousands_deep_falls_back_to_the_template(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """6 KB of brackets, under the read cap, raised RecursionError in json.loads: a 500."""
    with serving(raw_handler(b"[" * 3000 + b"]" * 3000)) as base:
        assert LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS) == RATIONALE
    assert "LLM explanation failed (RecursionError" in caplog.text


@pytest.mark.parametrize("digits", [309, 4301])
def test_a_chance_phrase_with_a_huge_number_is_an_unsupported_number(digits: int) -> None:
    """ "one in" 309 nines overflowed the float division (OverflowError), and past 4,300 digits
    int() refused the number (ValueError): each a 500."""
    huge = "9" * digits
    for text in (f"Spurs win one in {huge} matches.", f"Brentford are {huge} to 1.",
                 f"Spurs win {huge} thirds of the time.", f"Spurs are {huge}/1."):  # fmt: skip
        assert unsupported_numbers(text, RATIONALE, FACTS) == [huge]
    with serving(_answer_handler(f"Spurs win one in {huge} matches.")) as base:
        assert LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS) == RATIONALE


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://user:secret@127.0.0.1:9/v1", "must not carry a user or password"),
        ("https://secret@llm.example/v1", "must not carry a user or password"),
        ("ftp://llm.example/v1", "must be an http or https URL with a host"),
        ("http:///v1", "must be an http or https URL with a host"),
    ],
)
def test_an_llm_url_with_credentials_or_no_host_is_refused_at_start(url: str, said: str) -> None:
    """A user:password in the URL was never sent (the call takes the host alone) and every
    failure's warning logged it; a URL that is no http(s) URL failed every call."""
    with pytest.raises(ValueError, match="MARKETCAST_LLM_BASE_URL") as caught:
        service_settings_from_env({"MARKETCAST_LLM_BASE_URL": url})
    assert said in str(caught.value)
    assert "secret" not in str(caught.value)
    settings = service_settings_from_env({"MARKETCAST_LLM_BASE_URL": "http://127.0.0.1:9/v1"})
    assert settings.llm is not None
    assert settings.llm.base_url == "http://127.0.0.1:9/v1"
