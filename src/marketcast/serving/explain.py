"""Explanations: a rationale from what moved the forecast; an LLM hook, its numbers checked."""

from __future__ import annotations

import bisect
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
from collections.abc import Callable, Iterable, Mapping
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
    """A one-paragraph rationale: the forecast's favourite against its market price, then the
    match's pre-match context (Elo ratings, form, rest, the league's recent residual).

    The context is facts about the match, not a claim that they moved this model's forecast:
    the market model reads none of them and Elo only its ratings, so it is labelled
    ``context:`` (it read as the forecast's drivers, and could point the other way: an away
    favourite beside the home side's better rating and form). Each difference is of the
    numbers as printed (50.04% against 49.96% is ``+0.0 pts``, not ``+0.1``).

    Examples
    --------
    >>> text = template_explanation(
    ...     "Arsenal", "Chelsea", {"home": 0.5, "draw": 0.27, "away": 0.23},
    ...     {"home": 0.48, "draw": 0.28, "away": 0.24},
    ...     {"elo_home": 1700.0, "elo_away": 1650.0, "home_form_points": 2.1,
    ...      "away_form_points": 1.4, "home_rest_days": 6.0, "away_rest_days": 3.0},
    ...     model_name="lightgbm")
    >>> for part in text.split("; "):
    ...     print(part)
    lightgbm: home win 50.0% (market 48.0%, +2.0 pts)
    context: Elo Arsenal 1700 vs Chelsea 1650 (+50)
    form 2.1 vs 1.4 points per game (last 6)
    rest 6 vs 3 days.
    """
    top = max(probabilities, key=lambda k: probabilities[k])
    shown_p, shown_m = _shown(100 * probabilities[top], 1), _shown(100 * market.get(top, np.nan), 1)
    head = (
        f"{model_name}: {_OUTCOME_WORDS.get(top, top)} {shown_p:.1f}% "
        f"(market {shown_m:.1f}%, {shown_p - shown_m:+.1f} pts)"
    )
    parts = []
    elo_home, elo_away = features.get("elo_home"), features.get("elo_away")
    if _finite(elo_home) and _finite(elo_away):
        shown_home, shown_away = _shown(elo_home, 0), _shown(elo_away, 0)
        parts.append(
            f"Elo {home} {shown_home:.0f} vs {away} {shown_away:.0f} "
            f"({shown_home - shown_away:+.0f})"
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
    return "; ".join([head, "context: " + parts[0], *parts[1:]] if parts else [head]) + "."


def _shown(value: float, digits: int) -> float:
    """``value`` as it reads printed with ``digits`` decimals (so differences of printed numbers
    are the printed difference)."""
    return float(f"{value:.{digits}f}")


_NUMBER = re.compile(r"(?<![\w.])[-+\u2212]?(?:\d+(?:[.,]\d+)?|\.\d+)")
# "52%", "52 %", "52 percent" and "52-percent": a hyphen read as a space ("a 21-percent chance"
# was read as a bare 21, which an Elo gap of +21 then bore out)
_PERCENT_SIGN = re.compile(r"(?:\s*|-)(?:%|(?:percent|per[\s-]?cent|pct|pc)\b)", re.IGNORECASE)
# a unit saying that a decimal from 0 to 1 is no probability: "0.8 pts", "0.5 points per game"
_OTHER_UNIT = re.compile(
    r"[\s-]*(?:points?|pts|goals?|days?|elo|xg|(?:per|a)\s+(?:game|match))\b", re.IGNORECASE
)

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
    compared: "20 days" is supported by an Elo gap of 20. A chance said of one outcome must be
    that outcome's: "the draw is 52%" is refused beside a 52% home win (see Notes).

    Parameters
    ----------
    text
        The LLM's explanation.
    rationale
        The template explanation the LLM was given; its numbers are read as digits.
    facts
        ``home`` and ``away`` (team names), ``probabilities`` (outcome to probability) and,
        optionally, ``market`` (outcome to market probability); outcomes are ``"home"``,
        ``"draw"`` and ``"away"``.

    Returns
    -------
    list[str]
        Each unsupported number as ``text`` writes it, in order; empty when all are supported.

    Notes
    -----
    Read in ``text``, each as one number:

    - Digits: ``52``, ``-0.8``, ``52,0``, ``.91``, with any unit after them (``91 %``,
      ``91pc``, "91-percent"). ``1,513`` may also be a thousands separator. A decimal from 0 to
      1 with no percent sign after it, nor "points", "pts", "goals", "days", "Elo" or "per
      game", may also be a probability: ``0.52`` reads as 52%, and ``0.5`` as 50% give or take
      5 points (its rounding, in percent); in a clause stating one outcome's chance (below) it
      reads only so.
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

    Each number is bound to the outcome its clause names, if it names exactly one. A clause
    ends at a full stop, ``;``, ``,``, a dash, "but", "while", "whilst", "whereas", "although",
    "though", "yet", "against", "vs", "v", "versus" or "compared with"; not at a colon,
    brackets, "and" or "with", nor at a full stop inside a team's name ("1. FC Köln"). It names
    the home win by "home" ("home win", "home side", "52% home"), "hosts" or the home team's
    name (or a word of four letters or more of it that the other name lacks and is no generic
    "United" or "City"), the away win by "away" (not "away from"), "visitors", "visiting" or
    the away team's name, the draw by "draw", "drawn", "stalemate", "tie" (not "cup tie" or
    "this tie") or "share of the points". The outcome's numbers are its forecast probability,
    its market probability and the points between them: the rationale's part naming a
    template outcome ("home win 52.0% (market 48.0%, +4.0 pts)") is that outcome's, and
    ``facts["market"]`` gives each outcome's. A chance (a percentage, a chance or odds phrase,
    a decimal from 0 to 1 read as a probability) in such a clause must be one of that outcome's
    numbers; any other number one of that outcome's or of none (Elo, form, rest, a name's), so
    "the draw at 52" is refused where 52 is only the home win's, "Spurs, 21 Elo points up" kept.
    Such a clause states the outcome's chance when it says "chance", "probability", "likely",
    "odds" and the like, or speaks of no form, Elo, rest, goals or points: a decimal from 0 to 1
    in it is then only a probability, so "the draw has a 0.5 probability" (or "the draw is
    0.5") is 50%, not a side's form of 0.5; "Brentford's form reads 0.5" keeps both readings.

    A clause naming two outcomes or none, a defeat ("lose", "beaten", "avoid", "not",
    "opponents": "Spurs lose 22% of the time" is the away win's 22%) or a meeting ("face",
    "meet", "take on", "play", a trip or a host: "Brentford face a 52% favourite", "Brentford
    go to a 52% favourite", "Spurs host a 22% side"), keeps the rule above: any of the forecast's
    numbers, so that no good explanation is refused for a guess at whose number it gives
    ("Spurs are clear favourites, taking 52% against 26% for the draw"). Left unchecked so,
    either way round: "Spurs are 52% with Brentford at 22%", "Brentford, at 52%, ..." (the
    name is a clause of its own), and a side called by a name the facts lack ("Spurs" for
    "Tottenham"). Refused though true: one outcome's chance in a clause naming only another,
    with none of the words above ("Brentford are underdogs to a 52% favourite"), and an outcome's
    market price or points gap that only ``facts["market"]`` holds, when it is not given.

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
    >>> facts["probabilities"] = {"home": 0.5203, "draw": 0.26, "away": 0.2197}
    >>> unsupported_numbers("Spurs are 52%, the draw 26%; Brentford 22%.", rationale, facts)
    []
    >>> unsupported_numbers("Spurs are 26% to win, but the draw is 52%.", rationale, facts)
    ['26', '52']
    >>> unsupported_numbers("Brentford have a 20-percent chance.", rationale, facts)
    ['20']
    """
    known = _known_numbers(rationale, facts)
    clause_of = _outcome_of_clause(text, str(facts.get("home", "")), str(facts.get("away", "")))

    def supported(value: float, step: float, is_chance: bool, outcome: str | None) -> bool:
        return any(
            abs(value - k) <= step + 1e-9
            for k, owner in known
            # a chance said of one outcome must be that outcome's; another number may also be
            # one of no outcome's (Elo, form), but not only another outcome's
            if outcome is None or owner == outcome or (owner is None and not is_chance)
        )

    refused = []
    for start, written, options in _read(text):
        outcome, of_chance = clause_of(start)
        if of_chance:
            # "the draw has a 0.5 probability" is 50%, not the 0.5 of a side's form
            options = [option for option in options if option[2]] or options
        if not any(supported(*option, outcome) for option in options):
            refused.append(written)
    return refused


def _known_numbers(rationale: str, facts: Mapping[str, Any]) -> list[tuple[float, str | None]]:
    """The forecast's numbers, each with the outcome it is of (None: Elo, form, a name's)."""
    known: list[tuple[float, str | None]] = []
    for part in rationale.split(";"):
        # the template's first part, "home win 52.0% (market 51.2%, +0.8 pts)", is all the top
        # outcome's: its probability, market probability and the points between them
        named = {_TEMPLATE_OUTCOMES[w.lower()] for w in _TEMPLATE_OUTCOME.findall(part)}
        owner = named.pop() if len(named) == 1 else None
        known += [(abs(_as_float(a)), owner) for a in _NUMBER.findall(part)]
    for key in ("home", "away"):
        name = str(facts.get(key, ""))
        known += [(v, None) for _, _, options in _read(name) for v, _, _ in options]
    probabilities, market = facts.get("probabilities", {}), facts.get("market", {})
    if not isinstance(probabilities, Mapping):
        probabilities = {}
    if not isinstance(market, Mapping):
        market = {}
    for key, p in probabilities.items():
        if _finite(p):
            known.append((round(100 * float(p), 4), _outcome_key(key)))
    for key, m in market.items():
        if _finite(m):
            known.append((round(100 * float(m), 4), _outcome_key(key)))
            p = probabilities.get(key)
            if _finite(p):
                known.append((round(abs(100 * (float(p) - float(m))), 4), _outcome_key(key)))
    return known


def _outcome_key(key: Any) -> str | None:
    return str(key) if key in _OUTCOME_WORDS else None


_TEMPLATE_OUTCOMES = {word: key for key, word in _OUTCOME_WORDS.items()}
_TEMPLATE_OUTCOME = re.compile(rf"\b(?:{_either(_TEMPLATE_OUTCOMES)})\b", re.IGNORECASE)
# Where a clause ends: a sentence, a semicolon, a comma (not "1,513" or "52,0"), a dash, or a
# turn to another side ("but", "while", "against", "vs"). Not a colon ("Brentford's chances:
# 22%"), brackets ("52% (a 0.52 probability)") or "and", "with" ("the draw and Brentford at
# 26% and 22%", "favourites with a 52% chance"): these go on speaking of the same outcome.
_CLAUSE_BREAK = re.compile(
    r"[;!?\n\u2013\u2014]|\s-\s|\.(?!\d)|,(?!\d)"
    r"|\b(?:but|while|whilst|whereas|although|though|yet|against|versus|vs|v"
    r"|compared\s+(?:with|to))\b",
    re.IGNORECASE,
)
# "home win", "home side", "52% home", "at home"; "away" likewise, but not "away from"
_HOME = re.compile(r"\bhome\b|\bhosts\b", re.IGNORECASE)
_AWAY = re.compile(r"\baway\b(?![\s-]+from\b)|\bvisitors\b|\bvisiting\b", re.IGNORECASE)
_DRAW = re.compile(
    r"\b(?:draws?|drawn|stalemate|share\s+of\s+the\s+(?:points|spoils))\b"
    r"|(?<!\bcup\s)(?<!\bthis\s)\bties?\b",  # "a cup tie", "this tie": the match
    re.IGNORECASE,
)
# A clause with one of these may say a number of another outcome than the one it names: "Spurs
# lose 22% of the time" is the away win's 22%, "Spurs' opponents 22%" too, and "Brentford
# face a 52% favourite" the home win's 52%.
_OTHER_SIDE = re.compile(
    r"\b(?:lose|loses|losing|lost|loss|losses|beaten|defeats?|defeated|avoids?|unbeaten|not"
    r"|fails?|opponents?|opposition|face|faces|facing|meet|meets|meeting"
    # a trip or a host names the other side's chance too: "Brentford go to a 52% favourite"
    r"|go(?:es)?\s+to|travel(?:s|ling)?\s+to|visit(?:s|ing)?|host(?:s|ing)?|welcom(?:e|es|ing)"
    # and so does a fixture: "Brentford take on a 52% favourite", "Brentford play a 52% side"
    r"|tak(?:e|es|ing)\s+on|play(?:s|ing)?)\b"
    r"|n't\b",
    re.IGNORECASE,
)
# A clause naming one outcome with one of these states its chance ("a 0.5 probability"); one
# without, that speaks of one of the template's other numbers, may give a side's form as 0.5.
_CHANCE_WORD = re.compile(
    r"\b(?:chances?|probabilit(?:y|ies)|likelihood|likely|odds|implied)\b", re.IGNORECASE
)
_OTHER_QUANTITY = re.compile(
    r"\b(?:form|elo|ratings?|rest(?:ed|ing)?|days?|goals?|points?|pts|xg|per\s+(?:game|match))\b",
    re.IGNORECASE,
)
# words of a club's name too common in football prose to stand for the club alone
_GENERIC_NAME_WORDS = {
    "united", "city", "town", "county", "athletic", "athletico", "real", "sporting", "club",
    "football", "rovers", "wanderers", "albion", "park", "north", "south", "east", "west",
}  # fmt: skip


def _outcome_of_clause(text: str, home: str, away: str) -> Callable[[int], tuple[str | None, bool]]:
    """The outcome that the clause of ``text`` holding a position names, if it names one, and
    whether the clause states that outcome's chance.

    A clause names the home win by "home" ("home win", "home side"), "hosts" or the home
    team's name (or a word of it no other name shares, "Schalke" for "Schalke 04"), the away
    win likewise, the draw by "draw", "stalemate", "tie"; one naming two outcomes, none, or a
    defeat ("Spurs lose") names none. A clause naming one outcome states its chance when it
    says "chance", "probability", "likely", "odds" and the like, or speaks of no form, Elo,
    rest, goals or points ("the draw is 0.5").
    """
    names: list[tuple[re.Pattern[str], str]] = []
    for key, name, other in (("home", home, away), ("away", away, home)):
        if not name.strip():
            continue
        names.append((re.compile(rf"(?<!\w){re.escape(name.strip())}(?!\w)", re.IGNORECASE), key))
        other_words = {w.lower() for w in re.findall(r"[^\W\d_]+", other)}
        for word in re.findall(r"[^\W\d_]{4,}", name):
            if word.lower() not in other_words | _GENERIC_NAME_WORDS:
                names.append((re.compile(rf"(?<!\w){re.escape(word)}(?!\w)"), key))
    mentions: list[tuple[int, str]] = []
    in_name = bytearray(len(text))
    for pattern, key in names:
        for m in pattern.finditer(text):
            mentions.append((m.start(), key))
            in_name[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
    for pattern, key in ((_HOME, "home"), (_DRAW, "draw"), (_AWAY, "away"), (_OTHER_SIDE, "")):
        mentions += [(m.start(), key) for m in pattern.finditer(text)]

    # a full stop inside a name ("1. FC Köln", "St. Pauli") ends no clause
    starts = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(text) if not in_name[m.start()])]
    named: list[set[str]] = [set() for _ in starts]
    for start, key in mentions:
        named[bisect.bisect_right(starts, start) - 1].add(key)
    said_of = [next(iter(keys)) if len(keys) == 1 and "" not in keys else None for keys in named]
    ends = [*starts[1:], len(text)]
    of_chance = [
        outcome is not None
        and (
            _CHANCE_WORD.search(text, start, end) is not None
            or _OTHER_QUANTITY.search(text, start, end) is None
        )
        for outcome, start, end in zip(said_of, starts, ends, strict=True)
    ]

    def clause_of(position: int) -> tuple[str | None, bool]:
        k = bisect.bisect_right(starts, position) - 1
        return said_of[k], of_chance[k]

    return clause_of


# (value, how far rounding may have moved it, whether it is read as a chance in percent)
_Options = list[tuple[float, float, bool]]


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
            take(start, end, [(percent, step, True)])

    for m in list(_IDIOMS.finditer(text)):
        blank(m.start(), m.end())
    # phrasings first, so that "nine in ten" is one number, not nine and ten
    for m in list(_EVENS.finditer(text)):
        chance(m.start(), m.end(), 50.0, _chance_step(2), m.start())
    for m in list(_ONE_IN.finditer(text)):
        a, b = _whole(m["a"]), _whole(m["b"])
        if 0 <= a <= b > 0 and b <= _LARGEST_PART:
            chance(m.start(), m.end(), 100 * a / b, _chance_step(b), m.start())
    for m in list(_ODDS.finditer(text)):
        a, b = _whole(m["a"]), _whole(m["b"] or m["b1"])
        if 0 < a + b <= _LARGEST_PART:
            percent = 100 * b / (a + b)
            chance(m.start(), m.end(), percent, _odds_step(percent, a, b), m.start())
    for m in list(_SLASH.finditer(text)):
        a, b = _whole(m["a"]), _whole(m["b"])
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
        if a > _LARGEST_PART:
            continue  # its digits are read as a number below
        denominator = _DENOMINATORS[(m["d"] or m["d1"] or m["d2"]).lower().removesuffix("s")]
        chance(m.start(), m.end(), 100 * a / denominator, _chance_step(denominator), m.start())
    for m in list(_HALF.finditer(text)):
        if (m["before"] or m["after"]) and not _MATCH_HALF.search(text[: m.start()]):
            chance(m.start("half"), m.end("half"), 50.0, _chance_step(2), m.start("half"))
    for m in list(_CARDINAL.finditer(text)):
        if m.group().lower() != "one":
            percent_sign = bool(_PERCENT_SIGN.match(text[m.end() :]))
            take(m.start(), m.end(), [(*_cardinal(m.group()), percent_sign)])
    for m in _NUMBER.finditer(text):
        found.append((m.start(), m.group(), _digits(m.group(), text[m.end() :])))
    return sorted(found, key=lambda item: item[0])


def _digits(written: str, after: str) -> _Options:
    """Readings of a number in digits; ``after`` is the text that follows it."""
    decimals = written.replace(",", ".").partition(".")[2]
    value, step = abs(_as_float(written)), 0.5 * 10.0 ** -len(decimals)
    percent_sign = bool(_PERCENT_SIGN.match(after))
    options = [(value, step, percent_sign)]
    if re.fullmatch(r"[-+\u2212]?\d{1,3},\d{3}", written):
        options.append((abs(_as_float(written.replace(",", ""))), 0.5, False))  # "1,513"
    if decimals and value <= 1 and not percent_sign and not _OTHER_UNIT.match(after):
        options.append((100 * value, 100 * step, True))  # "0.52": a probability
    return options


#: The largest part of a chance phrase ("one in N", "N to 1", "N thirds") read as a chance; a
#: larger one is read as a plain number (unsupported unless the forecast holds it): a 309-digit
#: "one in 99...9" overflowed the float division and answered 500.
_LARGEST_PART = 10**6


def _whole(written: str) -> int:
    """A whole number in digits or words: "20", "twenty", "a hundred"; digits past the 15th
    read as just over `_LARGEST_PART` (``int()`` refuses more than 4,300 digits, a 500)."""
    if written.isdigit():
        return int(written) if len(written) <= 15 else _LARGEST_PART + 1
    return int(_cardinal(written)[0])


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

    def explain(
        self, rationale: str, facts: Mapping[str, Any], *, timeout_s: float | None = None
    ) -> str:
        """The LLM's two-sentence explanation, or ``rationale`` when the call fails.

        ``timeout_s`` shortens this call's time limit (the rest of a batch's, see
        ``ChampionService.forecast``); the explainer's own ``timeout_s`` is never exceeded.
        """
        limit_s = self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)
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
            answer = json.loads(self._post(json.dumps(body, default=float).encode(), limit_s))
            text = _answer_text(answer)
        except (
            LLMCallError,
            OSError,
            http.client.HTTPException,
            KeyError,
            IndexError,
            TypeError,
            ValueError,
            RecursionError,  # an answer nested 3,000 deep (6 KB) answered 500
        ) as exc:
            # one line a request: a traceback on every cloud forecast while the endpoint is down
            # buried the server's log
            log.warning(
                "LLM explanation failed (%s: %s); using the template", type(exc).__name__, exc
            )
            return rationale
        try:
            invented = unsupported_numbers(text, rationale, facts)
        except (ValueError, ArithmeticError, RecursionError) as exc:  # any text gets an answer
            log.warning(
                "LLM explanation could not be checked (%s: %s); using the template",
                type(exc).__name__,
                exc,
            )
            return rationale
        if invented:
            # the prompt asks for no invented numbers; nothing else made sure of it, and a
            # "91% favourites" beside a served 52% was sent to the client as it came
            log.warning(
                "LLM explanation has numbers the forecast does not (%s); using the template",
                ", ".join(invented),
            )
            return rationale
        return text

    def _post(self, payload: bytes, timeout_s: float) -> bytes:
        """POST ``payload`` to ``{base_url}/chat/completions``; the answer's body, within
        ``timeout_s`` in all.

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
        connection = connection_class(parts.hostname, parts.port, timeout=timeout_s)
        headers = {"Content-Type": "application/json"} | (
            {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        )
        deadline = time.monotonic() + timeout_s
        watchdog = _Watchdog(timeout_s)
        try:
            connection.connect()
            # held here: http.client hands the socket to the response and forgets it when the
            # answer says "Connection: close", and a body trickled after such headers then
            # outlived the deadline (a 1 s limit became 53 s)
            watchdog.watch(connection.sock)
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
                raise LLMCallError(f"{url}: no complete answer within {timeout_s:g} s")
            return data
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise LLMCallError(f"{url}: no complete answer within {timeout_s:g} s") from exc
            raise
        finally:
            watchdog.cancel()
            connection.close()


def _answer_text(answer: Any) -> str:
    """The text of a chat completion's first choice, or `LLMCallError` when it has none to serve.

    A ``null`` content (a reasoning model that spent ``max_tokens`` thinking, a refusal) was
    served as the text "None", a list of content parts as its Python repr, and an answer cut off
    at ``max_tokens`` (``finish_reason`` ``"length"``) as its half sentence.
    """
    choice = answer["choices"][0]
    if not isinstance(choice, Mapping):
        raise LLMCallError(f"the answer's first choice is a {type(choice).__name__}, not an object")
    if choice.get("finish_reason") == "length":
        raise LLMCallError("the answer was cut off at max_tokens (finish_reason 'length')")
    content = choice["message"]["content"]
    if not isinstance(content, str) or not content.strip():
        kind = "empty" if isinstance(content, str) else type(content).__name__
        raise LLMCallError(f"the answer has no text to serve (content: {kind})")
    return _plain_text(content)


#: Longest LLM answer served, in characters: two sentences (``max_tokens`` 120) are well under.
MAX_ANSWER_CHARS = 800
# an HTML tag, a markdown link or image, a URL: the text is served as it is, and a client that
# renders it (a dashboard, a chat) would run or link what an endpoint answered
_MARKUP = re.compile(r"</?[A-Za-z!]|\]\s*\(|\b[a-z][a-z0-9+.-]*://|\bwww\.", re.IGNORECASE)


def _plain_text(content: str) -> str:
    """An answer's text as one plain line, or `LLMCallError` when it is not plain prose.

    Line breaks and tabs become spaces; any other control or format character (an ANSI escape,
    a bell, a right-to-left override), markup or a link, or more than `MAX_ANSWER_CHARS`
    characters refuse the answer: the template is served instead.
    """
    text = " ".join(content.split())
    odd = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf")), None)
    if odd is not None:
        raise LLMCallError(f"the answer holds a control character ({odd!r})")
    if (markup := _MARKUP.search(text)) is not None:
        raise LLMCallError(f"the answer holds markup or a link ({markup.group()!r})")
    if len(text) > MAX_ANSWER_CHARS:
        raise LLMCallError(f"the answer has {len(text):,} characters, over {MAX_ANSWER_CHARS}")
    return text


class _Watchdog:
    """Shuts a socket down once ``timeout_s`` has run out, ending every wait on it: its reads
    see the end of the stream.

    The socket is the one ``watch`` was given, held here rather than read from the connection
    when time runs out: http.client sets ``connection.sock`` to None once a response takes the
    socket over. A socket watched after the time ran out (a slow connect) is shut at once.
    """

    def __init__(self, timeout_s: float) -> None:
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._expired = False
        self._timer = threading.Timer(timeout_s, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._sock = sock
            expired = self._expired
        if expired:
            _shut_down(sock)

    def cancel(self) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            sock = self._sock
        _shut_down(sock)


def _shut_down(sock: socket.socket | None) -> None:
    """End every wait on ``sock``: its reads see the end of the stream."""
    if sock is not None:
        with contextlib.suppress(OSError):
            # the plain socket's method: ssl.SSLSocket.shutdown would also drop its SSL state
            # under a thread that may be reading through it
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
