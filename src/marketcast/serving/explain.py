"""Explanations: a concise rationale from what moved the forecast, and an optional LLM hook."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import numpy as np

log = logging.getLogger(__name__)

_OUTCOME_WORDS = {"home": "home win", "draw": "draw", "away": "away win"}
#: Largest LLM answer read, in bytes: a two-sentence chat completion is well under 4 KB.
MAX_ANSWER_BYTES = 64 * 1024


class LLMCallError(RuntimeError):
    """The LLM endpoint did not give a usable answer (status, size or time limit)."""


def template_explanation(
    home: str,
    away: str,
    probabilities: Mapping[str, float],
    market: Mapping[str, float],
    features: Mapping[str, Any],
    *,
    model_name: str,
) -> str:
    """A one-paragraph rationale built from the features that moved the forecast.

    Examples
    --------
    >>> text = template_explanation(
    ...     "Arsenal", "Chelsea", {"home": 0.5, "draw": 0.27, "away": 0.23},
    ...     {"home": 0.48, "draw": 0.28, "away": 0.24},
    ...     {"elo_home": 1700.0, "elo_away": 1650.0, "home_form_points": 2.1,
    ...      "away_form_points": 1.4, "home_rest_days": 6.0, "away_rest_days": 3.0},
    ...     model_name="lightgbm")
    >>> text.startswith("lightgbm: home win 50.0% (market 48.0%, +2.0 pts)")
    True
    """
    top = max(probabilities, key=lambda k: probabilities[k])
    drift = 100 * (probabilities[top] - market.get(top, np.nan))
    parts = [
        f"{model_name}: {_OUTCOME_WORDS.get(top, top)} {100 * probabilities[top]:.1f}% "
        f"(market {100 * market.get(top, np.nan):.1f}%, {drift:+.1f} pts)"
    ]
    elo_home, elo_away = features.get("elo_home"), features.get("elo_away")
    if _finite(elo_home) and _finite(elo_away):
        parts.append(
            f"Elo {home} {elo_home:.0f} vs {away} {elo_away:.0f} ({elo_home - elo_away:+.0f})"
        )
    form_home, form_away = features.get("home_form_points"), features.get("away_form_points")
    if _finite(form_home) and _finite(form_away):
        parts.append(f"form {form_home:.1f} vs {form_away:.1f} points per game (last 6)")
    rest_home, rest_away = features.get("home_rest_days"), features.get("away_rest_days")
    if _finite(rest_home) and _finite(rest_away) and abs(rest_home - rest_away) >= 2:
        parts.append(f"rest {rest_home:.0f} vs {rest_away:.0f} days")
    resid = features.get("league_resid_home")
    if _finite(resid) and abs(resid) >= 0.02:
        direction = "above" if resid > 0 else "below"
        parts.append(f"home sides in this league have lately finished {direction} their prices")
    return "; ".join(parts) + "."


_NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?\d+(?:[.,]\d+)?")


def unsupported_numbers(text: str, rationale: str, facts: Mapping[str, Any]) -> list[str]:
    """The numbers of an LLM's ``text`` that the forecast does not hold, as written.

    A number is supported when it is one of the rationale's numbers (the template's: the
    forecast and market percentages, the points gap, Elo, form, rest days) or a forecast
    probability in percent, or any of these rounded to fewer decimals, its sign aside (``+2.0
    pts`` may read "2 points"), or a number in a team's name (``Schalke 04``).

    Examples
    --------
    >>> rationale = "elo: home win 52.0% (market 51.2%); Elo Spurs 1513 vs Brentford 1492 (+20)."
    >>> facts = {"home": "Spurs", "away": "Brentford", "probabilities": {"home": 0.5203}}
    >>> unsupported_numbers("Spurs are 52% favourites, 20 Elo points up.", rationale, facts)
    []
    >>> unsupported_numbers("Spurs are 91% favourites; an Elo gap of 400.", rationale, facts)
    ['91', '400']
    """
    allowed: list[str] = _NUMBER.findall(rationale)
    for key in ("home", "away"):
        allowed += _NUMBER.findall(str(facts.get(key, "")))
    probabilities = facts.get("probabilities", {})
    if isinstance(probabilities, Mapping):
        allowed += [f"{100 * float(v):.4f}" for v in probabilities.values() if _finite(v)]
    known = [abs(_as_float(a)) for a in allowed]
    out = []
    for written in _NUMBER.findall(text):
        value = abs(_as_float(written))
        digits = written.replace(",", ".").partition(".")[2]
        half_step = 0.5 * 10.0 ** -len(digits)  # what rounding to its decimals moves it by
        if not any(abs(value - k) <= half_step + 1e-9 for k in known):
            out.append(written)
    return out


def _as_float(written: str) -> float:
    return float(written.replace("\u2212", "-").replace(",", "."))


def _finite(value: Any) -> TypeGuard[float]:
    return isinstance(value, int | float) and bool(np.isfinite(value))


@dataclass(frozen=True)
class LLMExplainer:
    """Rewrites the template rationale with an OpenAI-compatible chat endpoint (vLLM, OpenRouter).

    Used only when configured (``MARKETCAST_LLM_BASE_URL``); any failure or timeout falls back
    to the template text, so the API never depends on the LLM being up. The call never follows
    a redirect (a 3xx is a failure, so the API key goes to no other host), reads at most
    `MAX_ANSWER_BYTES`, and ends within ``timeout_s`` in all: connecting, sending, waiting
    and reading. Proxy variables (``HTTPS_PROXY`` ...) are not used.
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 2.0

    def explain(self, rationale: str, facts: Mapping[str, Any]) -> str:
        """The LLM's two-sentence explanation, or ``rationale`` when the call fails."""
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": 120,
            "messages": [
                {
                    "role": "system",
                    "content": "You explain football forecasts to professional bettors in at "
                    "most two sentences. Use only the facts given; never invent numbers.",
                },
                {"role": "user", "content": json.dumps({"rationale": rationale, **facts})},
            ],
        }
        try:
            answer = json.loads(self._post(json.dumps(body, default=float).encode()))
            text = str(answer["choices"][0]["message"]["content"]).strip()
        except (
            LLMCallError,
            OSError,
            http.client.HTTPException,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
        ) as exc:
            # one line a request: a traceback on every cloud forecast while the endpoint is down
            # buried the server's log
            log.warning(
                "LLM explanation failed (%s: %s); using the template", type(exc).__name__, exc
            )
            return rationale
        if not text:
            return rationale
        invented = unsupported_numbers(text, rationale, facts)
        if invented:
            # the prompt asks for no invented numbers; nothing else made sure of it, and a
            # "91% favourites" beside a served 52% was sent to the client as it came
            log.warning(
                "LLM explanation has numbers the forecast does not (%s); using the template",
                ", ".join(invented),
            )
            return rationale
        return text

    def _post(self, payload: bytes) -> bytes:
        """POST ``payload`` to ``{base_url}/chat/completions``; the answer's body.

        http.client (not urllib) so that nothing follows a redirect, and so that a timer can
        shut the socket down when ``timeout_s`` runs out: a socket timeout alone bounds each
        read, and a server trickling its headers a byte at a time never trips it.
        """
        url = self.base_url.rstrip("/") + "/chat/completions"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LLMCallError(f"{url}: not an http or https URL")
        connection_class = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = connection_class(parts.hostname, parts.port, timeout=self.timeout_s)
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        )
        deadline = time.monotonic() + self.timeout_s
        timer = threading.Timer(self.timeout_s, _shut_down, args=(connection,))
        timer.daemon = True
        timer.start()
        try:
            connection.request(
                "POST", parts.path + (f"?{parts.query}" if parts.query else ""), payload, headers
            )
            response = connection.getresponse()
            if not 200 <= response.status < 300:
                refused = " (redirects are not followed)" if 300 <= response.status < 400 else ""
                raise LLMCallError(f"{url}: HTTP {response.status} {response.reason}{refused}")
            data = response.read(MAX_ANSWER_BYTES + 1)
            if len(data) > MAX_ANSWER_BYTES:
                raise LLMCallError(f"{url}: answer over the {MAX_ANSWER_BYTES:,}-byte limit")
            if time.monotonic() >= deadline:
                raise LLMCallError(f"{url}: no complete answer within {self.timeout_s:g} s")
            return data
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise LLMCallError(
                    f"{url}: no complete answer within {self.timeout_s:g} s"
                ) from exc
            raise
        finally:
            timer.cancel()
            connection.close()


def _shut_down(connection: http.client.HTTPConnection) -> None:
    """End every wait on ``connection``'s socket: its reads see the end of the stream."""
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            # the plain socket's method: ssl.SSLSocket.shutdown would also drop its SSL state
            # under a thread that may be reading through it
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
