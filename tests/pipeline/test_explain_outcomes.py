"""A chance said of one outcome must be that outcome's, not another's of the same forecast."""

from __future__ import annotations

import pytest

from marketcast.serving.explain import LLMExplainer, template_explanation, unsupported_numbers
from tests.local_http import serving
from tests.pipeline.test_explain import _answer_handler

PROBABILITIES = {"home": 0.52, "draw": 0.26, "away": 0.22}
MARKET = {"home": 0.48, "draw": 0.28, "away": 0.24}
FEATURES = {
    "elo_home": 1513.0,
    "elo_away": 1492.0,
    "home_form_points": 2.1,
    "away_form_points": 1.4,
    "home_rest_days": 7.0,
    "away_rest_days": 3.0,
}
# "lightgbm: home win 52.0% (market 48.0%, +4.0 pts); Elo Spurs 1513 vs Brentford 1492 (+21);
# form 2.1 vs 1.4 points per game (last 6); rest 7 vs 3 days."
RATIONALE = template_explanation(
    "Spurs", "Brentford", PROBABILITIES, MARKET, FEATURES, model_name="lightgbm"
)
FACTS = {"home": "Spurs", "away": "Brentford", "probabilities": PROBABILITIES}

# Each of these passed before outcomes were bound: every number in it is one of the forecast's,
# said of the wrong outcome.
SWAPPED = [
    ("The draw is 52%.", ["52"]),
    ("Brentford win 52% of the time.", ["52"]),
    ("Spurs win 22% of the time.", ["22"]),
    ("The draw is evens.", ["evens"]),  # 50 +- 2.5: the home win's 52, not the draw's 26
    ("Spurs are 26% favourites.", ["26"]),
    ("Spurs 22%, Brentford 52%.", ["22", "52"]),
    ("Brentford are priced at 48% by the market.", ["48"]),  # the home win's market price
    ("The away win is 0.52.", ["0.52"]),
    ("Brentford are roughly a one-in-two shot.", ["one-in-two"]),
    ("The draw is a 22% shot.", ["22"]),
    ("Brentford's chances: 52%.", ["52"]),
    ("The stalemate is 52% but Spurs are 26%.", ["52", "26"]),
    ("Spurs are 4-to-1.", ["4-to-1"]),
    ("The visitors are 52%.", ["52"]),
    ("Spurs 22 vs Brentford 52.", ["22", "52"]),  # no percent sign: only another outcome's
]


@pytest.mark.parametrize(("text", "invented"), SWAPPED)
def test_a_chance_said_of_the_wrong_outcome_is_refused(text: str, invented: list[str]) -> None:
    assert unsupported_numbers(text, RATIONALE, FACTS) == invented


KEPT = [
    "Spurs are 52% favourites, the draw 26%, Brentford 22%.",
    "Spurs are priced at 48% by the market but we make it 52%.",
    "A draw is a 26% shot.",
    "Brentford's chances: 22%.",
    "Market 48.0% vs our 52.0% for the home win.",
    "Spurs are 52% to win, four points above the market's 48%.",
    "Spurs v Brentford: 52% home, 26% draw, 22% away.",
    "The home win is 52% (0.52), the stalemate 26%, the away win 22%.",
    "The hosts are 52%, the visitors 22%.",
    "Spurs are roughly evens at 52%, Brentford a 4-to-1 shot.",
    "Brentford win about one in five (22%), the draw about a quarter of the time.",
    "Spurs have a 52 per cent chance; the draw twenty-six per cent; Brentford twenty-two.",
    # numbers of no outcome (Elo, form, rest) are any clause's
    "Spurs, 21 Elo points up, are 52%; Brentford's best hope is a draw at 26%.",
    "Brentford, 21 Elo points down and with 1.4 points per game, should win only 22% of the time.",
    "Brentford have 3 days' rest, Spurs 7.",
    # a clause naming two outcomes, or none, holds any of the forecast's numbers
    "Spurs are clear favourites, taking 52% against 26% for the draw.",
    "Spurs are favourites at 52%, with the draw at 26% and Brentford at 22%.",
    "Brentford are the outsiders at 22%, while Spurs are 52% and the draw 26%.",
    "Spurs are 52% with Brentford at 22%.",
    "Brentford, at 22%, need a big performance.",
    # a defeat names the other side's chance
    "Spurs lose 22% of the time and draw 26%.",
    "Brentford's opponents are 52%.",
    # a meeting names the other side's chance too
    "Brentford face a 52% favourite.",
    "Brentford meet a side that wins 52% of the time.",
    # and a trip or a host (it was refused: "Brentford" made it the away win's clause)
    "Brentford go to a 52% favourite.",
    "Brentford travel to a side that wins 52% of the time.",
    "Spurs host a 22% outsider.",
    "Spurs welcome a side given 22%.",
    # and a fixture ("take on", "play"; "up against" ends the clause at "against")
    "Brentford take on a 52% favourite.",
    "Brentford play a side that wins 52% of the time.",
    "Brentford are up against a 52% favourite.",
    # "this tie", "a cup tie": the match, not a draw
    "Spurs should win this cup tie 52% of the time.",
]


@pytest.mark.parametrize("text", KEPT)
def test_a_chance_said_of_its_own_outcome_is_kept(text: str) -> None:
    assert unsupported_numbers(text, RATIONALE, FACTS) == []


def test_the_market_of_every_outcome_may_be_given_in_the_facts() -> None:
    """The rationale has the top outcome's market price only; ``facts["market"]`` the rest,
    and the points between each outcome's forecast and market."""
    text = "Brentford are priced at 24% by the market and 2% lower by us."
    assert unsupported_numbers(text, RATIONALE, FACTS) == ["24", "2"]
    assert unsupported_numbers(text, RATIONALE, FACTS | {"market": MARKET}) == []
    swapped = "The draw is priced at 24% by the market."
    assert unsupported_numbers(swapped, RATIONALE, FACTS | {"market": MARKET}) == ["24"]


@pytest.mark.parametrize("top", ["home", "draw", "away"])
def test_the_template_of_any_favourite_is_kept(top: str) -> None:
    """The rationale's market price and points gap are its top outcome's, whichever it is."""
    order = {"home": (0.5, 0.3, 0.2), "draw": (0.3, 0.5, 0.2), "away": (0.2, 0.3, 0.5)}[top]
    probabilities = dict(zip(("home", "draw", "away"), order, strict=True))
    market = {k: v - 0.02 if k == top else v + 0.01 for k, v in probabilities.items()}
    rationale = template_explanation(
        "Spurs", "Brentford", probabilities, market, FEATURES, model_name="elo"
    )
    facts = {"home": "Spurs", "away": "Brentford", "probabilities": probabilities}
    assert unsupported_numbers(rationale, rationale, facts) == []
    said_of = {"home": "Spurs are", "draw": "The draw is", "away": "Brentford are"}[top]
    text = f"{said_of} 50%, 2 points above the market's 48%."
    assert unsupported_numbers(text, rationale, facts) == []


def test_a_name_with_a_full_stop_ends_no_clause() -> None:
    """A name such as "1. FC Köln" is one mention of the away side; no clause ends after "1"."""
    facts = {"home": "Schalke 04", "away": "1. FC K\u00f6ln", "probabilities": PROBABILITIES}
    rationale = "elo: home win 52.0% (market 48.0%, +4.0 pts)."
    assert unsupported_numbers("1. FC K\u00f6ln are 22%.", rationale, facts) == []
    assert unsupported_numbers("1. FC K\u00f6ln are 52%.", rationale, facts) == ["52"]
    # a word of a name no other name shares stands for the club: "Schalke", "Köln"
    assert unsupported_numbers("K\u00f6ln are 52%.", rationale, facts) == ["52"]


def test_a_swapped_outcome_is_refused_through_the_llm_hook(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serving(_answer_handler("Spurs are favourites; the draw is 52%.")) as base:
        assert LLMExplainer(base_url=base, model="m").explain(RATIONALE, FACTS) == RATIONALE
    assert "numbers the forecast does not (52)" in caplog.text
