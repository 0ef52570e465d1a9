"""Champion/challenger promotion applied to a registry: decide, save the decision, promote."""

from __future__ import annotations

import logging

import numpy.typing as npt

from marketcast.promotion import PromotionDecision, PromotionRule, decide_among, decide_promotion
from marketcast.registry.store import ChampionChangedError, Registry

__all__ = [
    "PromotionDecision",
    "PromotionRule",
    "decide_among",
    "decide_promotion",
    "promote_if_better",
]

logger = logging.getLogger(__name__)


def promote_if_better(
    registry: Registry,
    vertical: str,
    market: str,
    challenger: tuple[str, str],
    champion_losses: npt.ArrayLike | None,
    challenger_losses: npt.ArrayLike | None,
    rule: PromotionRule | None = None,
    *,
    champion: tuple[str, str] | None,
) -> PromotionDecision:
    """Compare a registered challenger with the market's champion, save the decision, apply it.

    Parameters
    ----------
    registry
        Where the challenger is registered and the decision is saved.
    vertical, market
        The market whose champion is challenged.
    challenger
        ``(model_name, version)`` of a registered version.
    champion_losses, challenger_losses
        Per-match losses on the same matches (``champion_losses`` may be ``None`` when the
        market has no champion yet).
    rule
        Thresholds; defaults to ``PromotionRule()``.
    champion
        ``(model_name, version)`` of the champion ``champion_losses`` belong to, as the caller
        read it; ``None`` when the market had none.

    Returns
    -------
    PromotionDecision
        As saved, with ``decided_utc`` set. When ``promote`` is true the challenger is now the
        champion and the previous one is on the rollback history.

    Raises
    ------
    ModelNotFoundError
        When the challenger is not registered.
    ArtifactIntegrityError
        When a file of the challenger is missing or differs from its manifest: checked before
        anything is decided, so nothing is saved.
    ChampionChangedError
        When the champion is not ``champion`` (it changed after the caller computed its
        losses), or changed between this call's read and its move (an operator's promotion
        or a rollback meanwhile): the pointer stays as that change left it and no decision
        is saved.

    Notes
    -----
    The decision is saved only once it has taken effect: a "not promoted" one at once, a
    promotion after its move. The move is a compare-and-set against the champion read here
    (``set_champion(..., expected=...)``), as ``marketcast run`` moves its pointers.
    """
    rule = rule if rule is not None else PromotionRule()
    name, version = challenger
    # every file checked first: a damaged challenger was refused by the move after a
    # "promote" decision had been saved, and the audit trail named a promotion never made
    registry.load_files(vertical, market, name, version)
    current = registry.champion(vertical, market)
    read = None if current is None else (current.model_name, current.version)
    if read != champion:
        # the losses belong to another champion: deciding on them recorded a test the
        # current champion never took, and promoted over a model never compared with
        raise ChampionChangedError(
            f"{vertical}/{market}: champion_losses are those of "
            f"{_named(champion)}, but the champion is now {_named(read)}; "
            "score the challenger against the current champion again"
        )
    if current is None:
        decision = decide_promotion(
            None, None, name, challenger_losses, rule, challenger_version=version
        )
    elif (current.model_name, current.version) == (name, version):
        decision = PromotionDecision(
            promote=False,
            reason=f"{name} {version} is already the champion",
            champion=current.model_name,
            challenger=name,
            mean_difference=None,
            p_value=None,
            n=0,
            rule=rule,
            champion_version=current.version,
            challenger_version=version,
        )
    else:
        decision = decide_promotion(
            current.model_name,
            champion_losses,
            name,
            challenger_losses,
            rule,
            champion_version=current.version,
            challenger_version=version,
        )
    decision = decision.model_copy(update={"decided_utc": registry.now()})
    if decision.promote:
        # compare-and-set: an operator's promotion between the read above and this move was
        # silently replaced by a challenger that was never compared with it
        registry.set_champion(vertical, market, name, version, decision.reason, expected=read)
    registry.save_decision(vertical, market, decision)
    logger.info(
        "%s/%s: %s %s %s (%s)",
        vertical,
        market,
        name,
        version,
        "promoted" if decision.promote else "not promoted",
        decision.reason,
    )
    return decision


def _named(champion: tuple[str, str] | None) -> str:
    return "no champion" if champion is None else " ".join(champion)
