"""The explanation says what it knows: the match's facts are labelled context (they read as
the forecast's drivers, for models that read none of them), its differences are of the numbers
as printed, and an LLM answer is served only as one line of plain prose."""

from __future__ import annotations

import pytest

from marketcast.serving.explain import MAX_ANSWER_CHARS, LLMExplainer, template_explanation
from tests.api.test_explain_audit_fixes import FACTS, RATIONALE, _choice_handler
from tests.local_http import serving

FEATURES = {"elo_home": 1590.0, "elo_away": 1446.0, "home_form_points": 1.5}


def test_the_match_facts_are_context_not_the_forecasts_drivers() -> None:
    """An away favourite beside the home side's better rating read as if the rating moved it."""
    away_favourite = {"home": 0.212, "draw": 0.246, "away": 0.542}
    text = template_explanation(
        "Arsenal", "Chelsea", away_favourite, away_favourite, FEATURES, model_name="market"
    )
    head, context = text.split("; ", 1)
    assert head == "market: away win 54.2% (market 54.2%, +0.0 pts)"
    assert context.startswith("context: Elo Arsenal 1590 vs Chelsea 1446 (+144)")
    bare = template_explanation("A", "B", away_favourite, away_favourite, {}, model_name="m")
    assert bare == "m: away win 54.2% (market 54.2%, +0.0 pts)."


def test_each_difference_is_of_the_numbers_as_printed() -> None:
    text = template_explanation(
        "A",
        "B",
        {"home": 0.5004, "draw": 0.25, "away": 0.2496},
        {"home": 0.4996, "draw": 0.26, "away": 0.2404},
        {"elo_home": 1500.6, "elo_away": 1400.4},
        model_name="m",
    )
    assert (
        text == "m: home win 50.0% (market 50.0%, +0.0 pts); context: Elo A 1501 vs B 1400 (+101)."
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("<img src=x onerror=alert(1)> Spurs are favourites.", "markup or a link ('<i')"),
        ("Spurs are favourites. [more](http://evil.example)", "markup or a link"),
        ("Spurs are favourites, see www.example.com.", "markup or a link ('www.')"),
        ("Spurs are favourites.\x1b[2J\x07", "control character ('\\x1b')"),
        ("Spurs are \u202efavourites.", "control character ('\\u202e')"),
        ("Spurs are favourites. " * 60, f"over {MAX_ANSWER_CHARS}"),
    ],
)
def test_an_answer_that_is_not_plain_prose_falls_back_to_the_template(
    content: str, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(_choice_handler({"finish_reason": "stop", "message": {"content": content}})) as b:
        text = LLMExplainer(base_url=b, model="m").explain(RATIONALE, FACTS)
    assert text == RATIONALE
    assert reason in caplog.text


def test_line_breaks_in_an_answer_become_spaces_and_a_plain_one_is_served() -> None:
    content = "Spurs are favourites.\n\n\tBrentford  trail."
    with serving(_choice_handler({"finish_reason": "stop", "message": {"content": content}})) as b:
        text = LLMExplainer(base_url=b, model="m").explain(RATIONALE, FACTS)
    assert text == "Spurs are favourites. Brentford trail."
