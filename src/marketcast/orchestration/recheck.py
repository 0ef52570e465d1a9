"""``marketcast registry recheck``: a market's latest promotion decision, made again from the
per-match evidence its run kept in the registry.

A football run keeps every scored match's loss per market, model and yardstick
(``losses.parquet``), a crypto run every evaluated period's net return per horizon and model
(``crypto/period_net.parquet``); both are copied into the registry with the run's report. The
decision names the version it left champion (the challenger's, else the champion's), whose
manifest names the run. The paired test, Holm's correction over every challenger the run
tested and the gain rules are then applied again with the decision's own rule.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pandas as pd

from marketcast.orchestration.crypto import PERIOD_NET_FILE, shadow_test, with_flat
from marketcast.orchestration.football import (
    LOSSES_FILE,
    defended_by_prematch,
    incumbent_losses,
)
from marketcast.promotion import PromotionDecision, decide_among
from marketcast.registry import Registry

#: Columns of ``losses.parquet`` that are yardsticks, not models: never a challenger.
YARDSTICKS = ("prematch", "closing")


def recheck(registry: Registry, vertical: str, market: str) -> dict[str, Any]:
    """The market's latest decision as saved, as made again from its run's stored evidence,
    and whether they agree (same challenger, verdict and paired count; p-value and mean
    difference equal to 1e-9 of their size).

    Raises
    ------
    LookupError
        When the market has no decision, or its latest one tested nothing (a first champion's
        "no champion yet"), names no version (saved before versions were recorded), or its run's
        report in the registry holds no evidence file (runs before 2026-11-24 kept none).
    """
    decision = registry.latest_decision(vertical, market)
    name = f"{vertical}/{market}"
    if decision is None:
        raise LookupError(f"no promotion decision for {name}")
    if decision.champion is None:
        raise LookupError(
            f"{name}'s latest decision crowned a first champion ({decision.challenger}): "
            "there is no test to check"
        )
    model, version = (
        (decision.challenger, decision.challenger_version)
        if decision.challenger_version is not None
        else (decision.champion, decision.champion_version)
    )
    if version is None:
        raise LookupError(
            f"{name}'s latest decision names no version (saved before versions were "
            "recorded), so its run cannot be found"
        )
    run_id = registry.manifest(vertical, market, model, version).run_id
    files = registry.run_report_files(vertical, run_id)
    evidence = LOSSES_FILE if vertical == "football" else PERIOD_NET_FILE
    if evidence not in files:
        raise LookupError(
            f"run {run_id}'s report in the registry holds no {evidence} (runs before "
            "2026-11-24 did not keep their per-match evidence): re-run to check it"
        )
    table = pd.read_parquet(io.BytesIO(files[evidence]))
    try:
        challengers, again = (
            _football_again(table, market, decision)
            if vertical == "football"
            else _crypto_again(table, market, decision)
        )
    except KeyError as exc:  # the CLI said only "'market'"
        raise LookupError(
            f"run {run_id}'s {evidence} has no column {exc}: no run wrote it so"
        ) from None
    return {
        "market": name,
        "run_id": run_id,
        "evidence": evidence,
        "challengers": challengers,
        "saved": _figures(decision),
        "recomputed": _figures(again),
        "agrees": _agree(decision, again),
    }


def _football_again(
    table: pd.DataFrame, market: str, decision: PromotionDecision
) -> tuple[list[str], PromotionDecision]:
    """The decision made again as the run made it (``decide_among``) on the market's scored
    matches: the champion's losses (:func:`incumbent_losses`: a ``market`` champion the run did
    not fit on the ``prematch`` yardstick's) against every model column with losses there."""
    rows = table[table["market"] == market]
    if rows.empty:
        raise LookupError(f"the run's {LOSSES_FILE} holds no match of {market}")
    losses = {
        column.removeprefix("loss_"): rows[column].to_numpy(dtype=np.float64)
        for column in rows.columns
        if column.startswith("loss_") and rows[column].notna().any()
    }
    champion = decision.champion
    assert champion is not None  # recheck refuses a first champion's decision
    if champion not in losses and not defended_by_prematch(champion, losses):
        raise LookupError(f"the run's {LOSSES_FILE} holds no losses of {champion} in {market}")
    challengers = {
        model: values
        for model, values in losses.items()
        if model != champion and model not in YARDSTICKS
    }
    again = decide_among(champion, incumbent_losses(champion, losses), challengers, decision.rule)
    return sorted(challengers), again


def _crypto_again(
    table: pd.DataFrame, horizon: str, decision: PromotionDecision
) -> tuple[list[str], PromotionDecision]:
    """The decision made again by the run's own shadow test (:func:`shadow_test`) on the
    horizon's evaluated periods."""
    rows = table[table["horizon"] == horizon]
    if rows.empty:
        raise LookupError(f"the run's {PERIOD_NET_FILE} holds no period of {horizon}")
    nets = with_flat(
        {
            column.removeprefix("net_"): rows[column].to_numpy(dtype=np.float64)
            for column in rows.columns
            if column.startswith("net_") and rows[column].notna().any()
        }
    )
    champion = decision.champion
    assert champion is not None  # recheck refuses a first champion's decision
    if champion not in nets:
        raise LookupError(f"the run's {PERIOD_NET_FILE} holds no net of {champion} in {horizon}")
    _, made = shadow_test(nets, champion, decision.rule)
    if "challenger" not in made:
        raise LookupError(f"the run's {PERIOD_NET_FILE} holds no challenger of {champion}")
    challengers = sorted(name for name in nets if name != champion)
    return challengers, PromotionDecision.model_validate(made)


def _figures(decision: PromotionDecision) -> dict[str, Any]:
    return {
        "challenger": decision.challenger,
        "promote": decision.promote,
        "p_value": decision.p_value,
        "mean_difference": decision.mean_difference,
        "n": decision.n,
        "challengers_tested": decision.challengers_tested,
    }


def _agree(saved: PromotionDecision, again: PromotionDecision) -> bool:
    def same(a: float | None, b: float | None) -> bool:
        if a is None or b is None:
            return a is b
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)

    return (
        (saved.challenger, saved.promote, saved.n) == (again.challenger, again.promote, again.n)
        and same(saved.p_value, again.p_value)
        and same(saved.mean_difference, again.mean_difference)
    )
