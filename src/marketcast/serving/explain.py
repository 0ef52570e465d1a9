"""Explanations: a rationale from what moved the forecast; an LLM hook, its numbers checked."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import re
import socket
import threading
import time
import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping
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


_NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:\d+(?:[.,]\d+)?|\.\d+)")
_PERCENT_SIGN = re.compile(r"\s*(?:%|(?:percent|per[\s-]?cent|pct|pc)\b)", re.IGNORECASE)

_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_WORD_VALUES = {w: i for i, w in enumerate(_UNITS)} | {w: 20 + 10 * i for i, w in enumerate(_TENS)}
_DENOMINATORS = {
    "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10,
}  # fmt: skip


def _either(words: Iterable[str]) -> str:
    # longest first, so that "seventeen" is not read as "seven"
    return "|".join(sorted(words, key=len, reverse=True))


_SEP = r"[\s-]+"  # words of one number are parted by spaces or hyphens: "ninety-one"
_BELOW_100 = rf"(?:(?:{_either(_TENS)})(?:{_SEP}(?:{_either(_UNITS[1:10])}))?|{_either(_UNITS)})"
_WHOLE = (
    rf"(?:(?:a|{_BELOW_100}){_SEP}hundred(?:{_SEP}(?:and{_SEP})?{_BELOW_100})?"
    rf"|hundred|{_BELOW_100})"
)
# a cardinal, with decimals in words: "one point four"
_CARDINAL = re.compile(
    rf"\b{_WHOLE}(?:{_SEP}point(?:{_SEP}(?:{_either(_UNITS[:10])}))+)?\b", re.IGNORECASE
)
# a whole number, in digits or words, as the part of a fraction or odds
_PART = rf"(?<![\w.,])(?:\d+|{_WHOLE})(?![\w]|[.,]\d)"
# Phrasings read as one probability, not as the numbers in them.
_ONE_IN = re.compile(
    rf"(?P<a>{_PART})(?:{_SEP}times)?{_SEP}(?:in|out{_SEP}of){_SEP}(?:every{_SEP})?(?P<b>{_PART})",
    re.IGNORECASE,
)
_ODDS = re.compile(
    rf"(?P<a>{_PART})(?:-to-(?P<b>{_PART})|\s+to\s+(?P<b1>one|1)\b(?!\.\d))", re.IGNORECASE
)
_EVENS = re.compile(r"\b(?:evens|even[\s-]+money|fifty[\s-]+fifty)\b|(?<![\w.])50[-/]50\b")
_SLASH = re.compile(r"(?<![\w.,/])(?P<a>\d+)\s*/\s*(?P<b>\d+)(?![\w/]|[.,]\d)")
_VULGAR = re.compile(r"[\u00bc-\u00be\u2150-\u215e]")
_FRACTION = re.compile(
    rf"(?P<a>{_PART}){_SEP}(?P<d>{_either(w + 's' for w in _DENOMINATORS)})\b"
    rf"|\bone-(?P<d1>{_either(_DENOMINATORS)})\b"
    rf"|\b(?:a|one)\s+(?P<d2>{_either(_DENOMINATORS)})(?=\s+(?:of|chance)\b)",
    re.IGNORECASE,
)
_HALF = re.compile(
    r"(?P<before>\b(?:about|around|roughly|nearly|almost|just|exactly|than|a|one)"
    r"[\s-]+)?(?P<half>\bhalf\b)(?![\s-]*(?:time|a\s+goal|chance|way|back)\b)"
    r"(?P<after>\s+(?:the\s+time|of)\b)?",
    re.IGNORECASE,
)
_MATCH_HALF = re.compile(r"\b(?:first|second|each|either|other|the)[\s-]+$", re.IGNORECASE)
# Fixed phrases whose number words are not numbers of a forecast.
_IDIOMS = re.compile(
    r"\bthe\s+three\s+points\b|\b(?:two|three)[\s-]+way\b"
    r"|\b(?:starting|first|strongest|best)\s+eleven\b"
    r"|\b(?:top|big)[\s-]+(?:two|three|four|five|six|seven|ten)\b",
    re.IGNORECASE,
)
# A chance phrase after one of these is a bound, not a value: "better than even money", "just
# over half the time" say the forecast is above it, which any value above it bears out.
_COMPARATIVE = re.compile(
    r"\b(?:over|above|under|below|(?:better|worse|more|less|fewer|greater|higher|lower)\s+than)"
    r"[\s-]+(?:(?:a|an)\s+)?$",
    re.IGNORECASE,
)


def _chance_step(parts: int) -> float:
    """How far a chance written as a fraction of ``parts`` (a denominator, or the two numbers of
    odds added) may be from the value, in points: half a part, as "52" may be half a point from
    the value. "One in five" is a fifth to the nearest fifth, so 21.2% bears it out; at least
    half a point, as a whole percent; at most 2.5 points, so "evens" is no claim about 45%."""
    return min(max(0.5, 50.0 / parts), 2.5)


def _odds_step(percent: float, a: int, b: int) -> float:
    """How far odds of ``a`` to ``b`` may be from the value, in points: the larger number to
    the nearest half, so "four-to-one" (20%) is 18-22% but "20-to-1" (4.8%) 4.5-5.0%, as at
    least half a point."""
    return min(max(0.5, percent * 0.5 / max(a, b)), 2.5)


def unsupported_numbers(text: str, rationale: str, facts: Mapping[str, Any]) -> list[str]:
    """The numbers of an LLM's ``text`` that the forecast does not hold, as written.

    A number is supported when it is one of the rationale's numbers (the template's: the
    forecast and market percentages, the points gap, Elo, form, rest days) or a forecast
    probability in percent, or any of these rounded to fewer decimals, its sign aside (``+2.0
    pts`` may read "2 points"), or a number in a team's name (``Schalke 04``). Units are not
    compared: "20 days" is supported by an Elo gap of 20.

    Parameters
    ----------
    text
        The LLM's explanation.
    rationale
        The template explanation the LLM was given; its numbers are read as digits.
    facts
        ``home`` and ``away`` (team names) and ``probabilities`` (outcome to probability).

    Returns
    -------
    list[str]
        Each unsupported number as ``text`` writes it, in order; empty when all are supported.

    Notes
    -----
    Read in ``text``, each as one number:

    - Digits: ``52``, ``-0.8``, ``52,0``, ``.91``, with any unit after them (``91 %``,
      ``91pc``). ``1,513`` may also be a thousands separator. A decimal from 0 to 1 with no
      percent sign after it may also be a probability: ``0.52`` reads as 52%, and ``0.5`` as
      50% give or take 5 points (its rounding, in percent).
    - English cardinals from zero to ninety-nine, spaced or hyphenated ("ninety-one", "ninety
      one"), hundreds ("a hundred", "four hundred and twenty", "fifteen hundred") and
      decimals ("one point four"), rounded as their digits would be: "ninety-one" must be
      within 0.5 of a supported number, as "91" must, and "one point four" within 0.05.
    - Probabilities, read as a percentage that must be as near a supported number as the
      phrase is precise: half a part of its denominator, between 0.5 and 2.5 points
      (`_chance_step`: "one in five" 20 +- 2.5, "nine in ten" 90 +- 2.5, "one in a hundred"
      1 +- 0.5), odds the larger number to the nearest half (`_odds_step`: "four-to-one" 20 +-
      2.5, ``20-to-1`` 4.8 +- 0.5): "nine in ten", "1 in 3", "nine times out of ten"; "two-thirds",
      "three quarters", "one-third", and "a third" or "a quarter" before "of" or "chance";
      "half" after "about", "than", "a" and the like or before "the time" or "of";
      digit fractions ``9/10`` and ``⅔``; odds, as their implied probability: "nine to one",
      ``20-to-1``, ``7-to-4``, ``5/2`` (a digit fraction above 1, both parts at most 100),
      "evens", "even money", "fifty-fifty", ``50-50``. Such a phrase after a comparison
      ("better than even money", "just over half", "above fifty-fifty") is a bound, not a
      value, and is not read.

    Not read, because in football prose they are seldom a number of the forecast and reading
    them would refuse good explanations: "one" on its own ("no one", "one of the sides"; "a
    one-in-four chance" and "twenty-one" are read); "half" elsewhere ("second half",
    "half-time", "half a goal", "a half-chance"); ordinals other than fractions ("a third
    straight win", "quarter-final"); "the three points", "two-way" and "three-way" (markets),
    "starting eleven", "top four", "big six"; "nil", "dozen", "thousand", "odds-on" and other
    words with no single number. An "X to Y" in words or spaced digits is odds only when Y is
    one ("from 10 to 20" stays two numbers), and a digit fraction with a part above 100
    (``1513/1492``) stays two.

    Examples
    --------
    >>> rationale = "elo: home win 52.0% (market 51.2%); Elo Spurs 1513 vs Brentford 1492 (+20)."
    >>> facts = {"home": "Spurs", "away": "Brentford", "probabilities": {"home": 0.5203}}
    >>> unsupported_numbers("Spurs are 52% favourites, 20 Elo points up.", rationale, facts)
    []
    >>> unsupported_numbers("Spurs are 91% favourites; an Elo gap of 400.", rationale, facts)
    ['91', '400']
    >>> unsupported_numbers("Fifty-two percent; Spurs win nine in ten.", rationale, facts)
    ['nine in ten']
    """
    known = [abs(_as_float(a)) for a in _NUMBER.findall(rationale)]
    for key in ("home", "away"):
        known += [v for _, _, options in _read(str(facts.get(key, ""))) for v, _ in options]
    probabilities = facts.get("probabilities", {})
    if isinstance(probabilities, Mapping):
        known += [round(100 * float(v), 4) for v in probabilities.values() if _finite(v)]
    return [
        written
        for _, written, options in _read(text)
        if not any(abs(v - k) <= step + 1e-9 for v, step in options for k in known)
    ]


_Options = list[tuple[float, float]]  # (value, how far rounding may have moved it)


def _read(text: str) -> list[tuple[int, str, _Options]]:
    """Every number of ``text`` (see `unsupported_numbers`): (start, as written, readings)."""
    found: list[tuple[int, str, _Options]] = []

    def blank(start: int, end: int) -> None:
        nonlocal text
        text = text[:start] + " " * (end - start) + text[end:]  # not read again, same places

    def take(start: int, end: int, options: _Options) -> None:
        found.append((start, text[start:end], options))
        blank(start, end)

    def chance(start: int, end: int, percent: float, step: float, read_from: int) -> None:
        """A chance phrase: read to ``step`` points, or passed over after a comparative."""
        if _COMPARATIVE.search(text[max(0, read_from - 40) : read_from]):
            blank(start, end)
        else:
            take(start, end, [(percent, step)])

    for m in list(_IDIOMS.finditer(text)):
        blank(m.start(), m.end())
    # phrasings first, so that "nine in ten" is one number, not nine and ten
    for m in list(_EVENS.finditer(text)):
        chance(m.start(), m.end(), 50.0, _chance_step(2), m.start())
    for m in list(_ONE_IN.finditer(text)):
        a, b = _whole(m["a"]), _whole(m["b"])
        if 0 <= a <= b > 0:
            chance(m.start(), m.end(), 100 * a / b, _chance_step(b), m.start())
    for m in list(_ODDS.finditer(text)):
        a, b = _whole(m["a"]), _whole(m["b"] or m["b1"])
        if a + b > 0:
            percent = 100 * b / (a + b)
            chance(m.start(), m.end(), percent, _odds_step(percent, a, b), m.start())
    for m in list(_SLASH.finditer(text)):
        a, b = int(m["a"]), int(m["b"])
        if 0 < b <= 100 and a <= 100:
            # "9/10" is a probability, "5/2" (above 1) fractional odds
            if a <= b:
                chance(m.start(), m.end(), 100 * a / b, _chance_step(b), m.start())
            else:
                percent = 100 * b / (a + b)
                chance(m.start(), m.end(), percent, _odds_step(percent, a, b), m.start())
    for m in list(_VULGAR.finditer(text)):
        value = unicodedata.numeric(m.group())
        parts = round(1 / (value - int(value))) if value % 1 else 1  # ⅔: thirds
        chance(m.start(), m.end(), 100 * value, _chance_step(parts), m.start())
    for m in list(_FRACTION.finditer(text)):
        a = _whole(m["a"]) if m["a"] else 1
        denominator = _DENOMINATORS[(m["d"] or m["d1"] or m["d2"]).lower().removesuffix("s")]
        chance(m.start(), m.end(), 100 * a / denominator, _chance_step(denominator), m.start())
    for m in list(_HALF.finditer(text)):
        if (m["before"] or m["after"]) and not _MATCH_HALF.search(text[: m.start()]):
            chance(m.start("half"), m.end("half"), 50.0, _chance_step(2), m.start("half"))
    for m in list(_CARDINAL.finditer(text)):
        if m.group().lower() != "one":
            take(m.start(), m.end(), [_cardinal(m.group())])
    for m in _NUMBER.finditer(text):
        found.append((m.start(), m.group(), _digits(m.group(), text[m.end() :])))
    return sorted(found, key=lambda item: item[0])


def _digits(written: str, after: str) -> _Options:
    """Readings of a number in digits; ``after`` is the text that follows it."""
    decimals = written.replace(",", ".").partition(".")[2]
    value, step = abs(_as_float(written)), 0.5 * 10.0 ** -len(decimals)
    options = [(value, step)]
    if re.fullmatch(r"[-+\u2212]?\d{1,3},\d{3}", written):
        options.append((abs(_as_float(written.replace(",", ""))), 0.5))  # "1,513"
    if decimals and value <= 1 and not _PERCENT_SIGN.match(after):
        options.append((100 * value, 100 * step))  # "0.52": a probability
    return options


def _whole(written: str) -> int:
    """A whole number in digits or words: "20", "twenty", "a hundred"."""
    return int(written) if written.isdigit() else int(_cardinal(written)[0])


def _cardinal(written: str) -> tuple[float, float]:
    """The value of an English cardinal and how far rounding may have moved it."""
    words = [w for w in re.split(_SEP, written.lower()) if w not in ("a", "and")]
    whole, fraction = 0, ""
    for i, word in enumerate(words):
        if word == "point":
            fraction = "".join(str(_WORD_VALUES[w]) for w in words[i + 1 :])
            break
        whole = max(whole, 1) * 100 if word == "hundred" else whole + _WORD_VALUES[word]
    return float(f"{whole}.{fraction or 0}"), 0.5 * 10.0 ** -len(fraction)


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
