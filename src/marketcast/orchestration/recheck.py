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

from marketcast.evaluation.football import BASELINE_MODEL
from marketcast.orchestration.crypto import DEFAULT_CHAMPION, PERIOD_NET_FILE
from marketcast.orchestration.football import LOSSES_FILE
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
    champion, challengers = (
        _football_losses(table, market, decision.champion)
        if vertical == "football"
        else _crypto_losses(table, market, decision.champion)
    )
    again = decide_among(decision.champion, champion, challengers, decision.rule)
    return {
        "market": name,
        "run_id": run_id,
        "evidence": evidence,
        "challengers": sorted(challengers),
        "saved": _figures(decision),
        "recomputed": _figures(again),
        "agrees": _agree(decision, again),
    }


def _football_losses(
    table: pd.DataFrame, market: str, champion: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The champion's per-match losses and each challenger's, on the market's scored matches:
    every model column with losses there, the yardsticks aside; a ``market`` champion the run
    did not fit is defended by the ``prematch`` yardstick, as the run defended it."""
    rows = table[table["market"] == market]
    if rows.empty:
        raise LookupError(f"the run's {LOSSES_FILE} holds no match of {market}")
    losses = {
        column.removeprefix("loss_"): rows[column].to_numpy(dtype=np.float64)
        for column in rows.columns
        if column.startswith("loss_") and rows[column].notna().any()
    }
    own = losses.get(champion)
    if own is None and champion == BASELINE_MODEL:
        own = losses["prematch"]
    if own is None:
        raise LookupError(f"the run's {LOSSES_FILE} holds no losses of {champion} in {market}")
    challengers = {
        model: values
        for model, values in losses.items()
        if model != champion and model not in YARDSTICKS
    }
    return own, challengers


def _crypto_losses(
    table: pd.DataFrame, horizon: str, champion: str
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Losses are negated net returns per period; ``flat``'s net is 0 whether run or not."""
    rows = table[table["horizon"] == horizon]
    if rows.empty:
        raise LookupError(f"the run's {PERIOD_NET_FILE} holds no period of {horizon}")
    losses = {
        column.removeprefix("net_"): -rows[column].to_numpy(dtype=np.float64)
        for column in rows.columns
        if column.startswith("net_") and rows[column].notna().any()
    }
    losses.setdefault(DEFAULT_CHAMPION, np.zeros(len(rows)))
    if champion not in losses:
        raise LookupError(f"the run's {PERIOD_NET_FILE} holds no net of {champion} in {horizon}")
    own = losses.pop(champion)
    return own, losses


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
