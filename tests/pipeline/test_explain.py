"""The LLM hook against a real local OpenAI-compatible endpoint, and its clean fallback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from marketcast.serving.default import service_settings_from_env
from marketcast.serving.explain import LLMExplainer


class _ChatHandler(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        answer = {"choices": [{"message": {"content": "Arsenal are slight favourites."}}]}
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
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ChatHandler)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_configured_llm_is_called_with_the_rationale(endpoint: str) -> None:
    llm = LLMExplainer(base_url=endpoint, model="qwen", api_key="k" * 20)
    text = llm.explain("lightgbm: home win 52.0%", {"home": "Arsenal"})
    assert text == "Arsenal are slight favourites."
    [call] = _ChatHandler.received
    assert call["path"] == "/v1/chat/completions"
    assert call["body"]["model"] == "qwen"
    assert "home win 52.0%" in call["body"]["messages"][1]["content"]
    assert call["auth"] == "Bearer " + "k" * 20


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
