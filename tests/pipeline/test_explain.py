"""The LLM hook against a real local OpenAI-compatible endpoint, and its clean fallback."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import ClassVar

import pytest

from marketcast.serving.default import service_settings_from_env
from marketcast.serving.explain import MAX_ANSWER_BYTES, LLMExplainer
from tests.local_http import serving


class _ChatHandler(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    content: ClassVar[str] = "Arsenal are slight favourites."

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        answer = {"choices": [{"message": {"content": type(self).content}}]}
        payload = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    _ChatHandler.received = []
    _ChatHandler.content = "Arsenal are slight favourites."
    with serving(_ChatHandler) as base:
        yield f"{base}/v1"


def test_configured_llm_is_called_with_the_rationale(endpoint: str) -> None:
    llm = LLMExplainer(base_url=endpoint, model="qwen", api_key="k" * 20)
    text = llm.explain("lightgbm: home win 52.0%", {"home": "Arsenal"})
    assert text == "Arsenal are slight favourites."
    [call] = _ChatHandler.received
    assert call["path"] == "/v1/chat/completions"
    assert call["body"]["model"] == "qwen"
    assert "home win 52.0%" in call["body"]["messages"][1]["content"]
    assert call["auth"] == "Bearer " + "k" * 20


RATIONALE = (
    "lightgbm: home win 52.0% (market 51.2%, +0.8 pts); Elo Arsenal 1513 vs Chelsea 1492 (+20); "
    "form 2.1 vs 1.4 points per game (last 6)."
)
FACTS = {"home": "Arsenal", "away": "Chelsea", "probabilities": {"home": 0.5203, "draw": 0.25}}


def test_an_answer_with_numbers_the_forecast_lacks_is_refused(
    endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A fake endpoint's "91% favourites" beside a served 52% went to the client as it came:
    the prompt's "never invent numbers" was the only guard."""
    _ChatHandler.content = "Arsenal are 91% favourites; an Elo gap of 400 points."
    llm = LLMExplainer(base_url=endpoint, model="m")
    assert llm.explain(RATIONALE, FACTS) == RATIONALE
    assert "numbers the forecast does not (91, 400)" in caplog.text


def test_an_answer_that_rounds_the_forecasts_numbers_is_kept(endpoint: str) -> None:
    _ChatHandler.content = (
        "Arsenal are 52% favourites, about 1 point above the market, 20 Elo points up, with "
        "2.1 points per game over the last 6 against 1.4; a draw is 25%."
    )
    llm = LLMExplainer(base_url=endpoint, model="m")
    assert llm.explain(RATIONALE, FACTS) == _ChatHandler.content


def test_a_failed_call_is_one_line_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    llm = LLMExplainer(base_url="http://127.0.0.1:9/v1", model="x", timeout_s=0.5)
    assert llm.explain("template text", {}) == "template text"
    [record] = caplog.records
    assert record.exc_info is None
    assert record.getMessage().startswith("LLM explanation failed (")


def test_unreachable_llm_falls_back_to_the_template() -> None:
    llm = LLMExplainer(base_url="http://127.0.0.1:9/v1", model="x", timeout_s=0.5)
    assert llm.explain("template text", {}) == "template text"


def test_llm_is_configured_only_from_the_environment(endpoint: str) -> None:
    assert service_settings_from_env({}).llm is None
    settings = service_settings_from_env(
        {
            "MARKETCAST_LLM_BASE_URL": endpoint,
            "MARKETCAST_LLM_MODEL": "m",
            "MARKETCAST_EDGE_THRESHOLD": "0.9",
        }
    )
    assert settings.llm is not None
    assert settings.llm.model == "m"
    assert settings.edge_threshold == 0.9
    with pytest.raises(ValueError, match="EDGE_THRESHOLD"):
        service_settings_from_env({"MARKETCAST_EDGE_THRESHOLD": "3"})


def test_network_runtime_is_read_from_the_environment() -> None:
    assert service_settings_from_env({}).neural_runtime == "onnx"
    env = {"MARKETCAST_NEURAL_RUNTIME": "torch"}
    assert service_settings_from_env(env).neural_runtime == "torch"
    with pytest.raises(ValueError, match=r"MARKETCAST_NEURAL_RUNTIME must be one of .*'tensorrt'"):
        service_settings_from_env({"MARKETCAST_NEURAL_RUNTIME": "tensorrt"})


def test_redirect_is_not_followed_and_the_key_goes_nowhere_else(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The probe's case: a 302 to another host got the ``Authorization`` header copied to it."""
    calls: list[str] = []
    keys_seen: list[str | None] = []

    class Target(_ChatHandler):
        def do_GET(self) -> None:  # urllib turns a redirected POST into a GET
            keys_seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            keys_seen.append(self.headers.get("Authorization"))
            super().do_POST()

    with serving(Target) as target:

        class Redirecting(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                calls.append(self.path)
                self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(302)
                self.send_header("Location", target + "/steal")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        with serving(Redirecting) as base:
            llm = LLMExplainer(base_url=base + "/v1", model="m", api_key="sk-" + "s" * 20)
            assert llm.explain("template text", {}) == "template text"
    assert calls == ["/v1/chat/completions"]
    assert keys_seen == []  # the redirect target never saw a request, so never the key
    assert "HTTP 302 Found (redirects are not followed)" in caplog.text


def _answer_handler(content: str) -> type[BaseHTTPRequestHandler]:
    return raw_handler(json.dumps({"choices": [{"message": {"content": content}}]}).encode())


def raw_handler(payload: bytes) -> type[BaseHTTPRequestHandler]:
    """An endpoint answering every POST with 200 and ``payload``."""

    class Answering(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Answering


def test_oversized_answer_falls_back(caplog: pytest.LogCaptureFixture) -> None:
    with serving(_answer_handler("x" * (MAX_ANSWER_BYTES + 1))) as base:
        assert LLMExplainer(base_url=base, model="m").explain("template text", {}) == (
            "template text"
        )
    assert "answer over the 65,536-byte limit" in caplog.text
    with serving(_answer_handler("short")) as base:
        assert LLMExplainer(base_url=base, model="m").explain("template text", {}) == "short"


def test_answer_that_is_not_an_object_falls_back() -> None:
    class Listing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Listing) as base:
        assert LLMExplainer(base_url=base, model="m").explain("template text", {}) == (
            "template text"
        )


@pytest.mark.parametrize(
    ("head", "byte"),
    [
        # headers a byte at a time: never trips a per-read timeout
        (b"HTTP/1.1 200 OK\r\n", b"X"),
        # serving audit (medium): with "Connection: close" http.client hands the socket to
        # the response and sets the connection's to None, so the timer found no socket to shut
        # and a body trickled after such headers outlived the deadline (1 s became 53 s)
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100\r\n\r\n", b" "),
    ],
    ids=["headers", "body after connection close"],
)
def test_timeout_bounds_the_whole_call_not_each_read(
    caplog: pytest.LogCaptureFixture, head: bytes, byte: bytes
) -> None:
    """A server trickling its answer a byte at a time is cut off at the call's deadline."""
    stop = threading.Event()

    class Trickling(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.wfile.write(head)
            with contextlib.suppress(OSError):
                for _ in range(100):  # 5 s of it
                    if stop.wait(0.05):
                        return
                    self.wfile.write(byte)
                    self.wfile.flush()

        def log_message(self, format: str, *args: object) -> None:
            pass

    with serving(Trickling) as base:
        started = time.monotonic()
        text = LLMExplainer(base_url=base, model="m", timeout_s=0.5).explain("template text", {})
        elapsed_s = time.monotonic() - started
        stop.set()
    assert text == "template text"
    assert elapsed_s < 1.5
    assert "no complete answer within 0.5 s" in caplog.text
