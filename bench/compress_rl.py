"""ROI fine-tuning (PPO, DPO) and compression of a football model, walk-forward on the bundle.

Run with ``PYTHONPATH=src .venv/bin/python bench/compress_rl.py`` (the neural teacher's two fits
take about 1.5 minutes on 2 quiet cores, each policy seed about 10 s per fold more).
Writes ``bench/results/compress_rl.json``; with ``--model neural`` and the default ``--out`` it
also rewrites the RL blocks of ``docs/rl-and-compression.md`` and ``README.md`` (between their
``<!-- bench:rl... -->`` markers) from that file.

Folds (time-ordered, checked with :func:`marketcast.splits.walk_forward.check_no_leakage`): for
each test season S (default the last two seasons most leagues have, 2020-2021 and 2021-2022) the
model is trained on every season before S-1, the staking policy is fitted on season S-1 (where
the model's forecasts are out of sample, as they will be when it bets) and everything is scored
on season S.

1. RL: the reference policy (behaviour-cloned fractional Kelly on the model's probabilities), PPO
   and DPO fine-tuned from it, each trained once per ``--seeds`` seed (default 5) on one teacher
   per fold (seeded with the first seed); per policy, the mean, sd, min and max over seeds of
   test ROI and of ROI minus the same seed's reference, a paired bootstrap of that difference
   (resampling test matches) with Holm-adjusted p-values, and each seed's log loss (the
   policy's belief), ROI, CLV and bets at the best pre-match price. Beside them, the repo's
   standard backtest of the model (``run_backtest``: fractional Kelly 0.25, min edge 2%, cap 5%).
   The JSON records the CPU kernels (``torch.backends.cpu.get_cpu_capability()``) and threads
   used: with others the same seed gives other figures.
2. Compression of the last fold's model, on the first seed only (its variants are deterministic
   given the teacher, and latency, not training noise, is what it measures): int8 (torch and
   onnxruntime), ONNX fp32, magnitude pruning, 2:4 masks (one-shot and recovered by
   distillation), a distilled small student; size, CPU latency at batch 1 and 256, log loss and
   ROI change against the full model.

``--model mlp`` (default) is a stand-in teacher: an MLP on the flat pre-match features whose
logits are the de-margined pre-match log-probabilities plus a learned correction. ``--model
neural`` uses :class:`marketcast.models.neural.NeuralModel` (its ``context`` output is the
embedding; its network is compressed through a dict-input wrapper, ONNX export is attempted).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from _markdown import replace_block
from torch import nn

from marketcast.datasets.football_data import FootballData, load_football, odds_matrix
from marketcast.evaluation.backtest import BacktestConfig, BacktestResult, run_backtest
from marketcast.evaluation.scoring import log_loss
from marketcast.features.football import (
    build_features,
    closing_probabilities,
    model_feature_columns,
)
from marketcast.labels.football import outcome_1x2, profit_matrix
from marketcast.splits.walk_forward import check_no_leakage
from marketcast.training.compress import (
    OnnxSession,
    Variant,
    apply_2_4_mask,
    compression_report,
    distill,
    export_football_net_onnx,
    export_onnx,
    magnitude_prune,
    make_permanent,
    model_size_bytes,
    onnx_quantize_dynamic,
    quantize_dynamic_int8,
    sparse_size_bytes,
    torch_logits_fn,
    weight_sparsity,
)
from marketcast.training.rl import (
    DPOConfig,
    PPOConfig,
    ReferenceConfig,
    StakingData,
    behaviour_clone,
    build_policy,
    evaluate_policy,
    fine_tune_dpo,
    fine_tune_ppo,
    frozen_copy,
)
from marketcast.types import EXCHANGE_COMMISSION, MarketKind, Timing

ROOT = Path(__file__).resolve().parents[1]
#: policy training seeds: the bench's historical seed and four more, fixed
DEFAULT_SEEDS = (20240817, 1, 2, 3, 4)
RESULTS = ROOT / "bench" / "results" / "compress_rl.json"
MARKET_COLUMNS = ("mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away")
BACKTEST = BacktestConfig(n_bootstrap=0)  # the evaluate-football staking, no resampling here
TARGET_THROUGHPUT = 3.0
TARGET_ROI_LOSS = 0.02  # absolute ROI points (ROI is near 0, so a relative 2% is meaningless)


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Bundle:
    """The bundled data with everything the bench reads, aligned to ``data.matches`` rows."""

    data: FootballData
    X: pd.DataFrame
    y: np.ndarray  # (n,) 1X2 outcome, -1 when unknown
    goals: np.ndarray  # (n, 2)
    odds: np.ndarray  # (n, 3) best pre-match price
    closing: np.ndarray  # (n, 3) de-margined closing probabilities (NaN when unpriced)
    profits: np.ndarray  # (n, 3) profit of a unit stake per outcome
    kickoff: pd.DatetimeIndex
    season: np.ndarray
    #: (n,) whether the file gave the kick-off time (a date alone is a drawdown step of its own)
    time_known: np.ndarray

    def backtest(self, p: np.ndarray, rows: np.ndarray) -> BacktestResult:
        """The bench's backtest (`BACKTEST`) of forecasts ``p`` for the matches at ``rows``."""
        return run_backtest(
            p,
            self.odds[rows],
            self.profits[rows],
            self.closing[rows],
            self.kickoff[rows],
            BACKTEST,
            kickoff_time_known=self.time_known[rows],
        )


def load_bundle() -> Bundle:
    data = load_football()
    X = build_features(data, demargin_method="shin")
    goals = data.matches[["home_goals", "away_goals"]].to_numpy()
    y = outcome_1x2(goals[:, 0], goals[:, 1])
    odds, _ = odds_matrix(
        data,
        MarketKind.ONE_X_TWO,
        Timing.PREMATCH,
        "best",
        exchange_commission=EXCHANGE_COMMISSION,  # none in the bundle; newer files have one
    )
    odds = odds[:, :3]
    closing, _ = closing_probabilities(data, MarketKind.ONE_X_TWO, method="shin")
    profits = profit_matrix(MarketKind.ONE_X_TWO, odds, goals[:, 0], goals[:, 1])
    kickoff = pd.DatetimeIndex(data.matches["kickoff_utc"])
    time_known = data.matches["kickoff_time_known"].to_numpy(dtype=bool)
    season = X["season"].to_numpy()
    return Bundle(data, X, y, goals, odds, closing, profits, kickoff, season, time_known)


def bettable(b: Bundle) -> np.ndarray:
    """Rows with a result and a full pre-match price (the others cannot be bet or settled)."""
    return (b.y >= 0) & np.all(np.isfinite(b.odds) & (b.odds > 1.0), axis=1)


@dataclass
class Fold:
    test_season: str
    rl_season: str
    teacher_rows: np.ndarray
    rl_rows: np.ndarray
    test_rows: np.ndarray


def make_folds(b: Bundle, test_seasons: list[str]) -> list[Fold]:
    seasons = sorted(set(b.season.tolist()))
    ok = bettable(b)
    folds = []
    for s in test_seasons:
        i = seasons.index(s)
        if i < 2:
            raise ValueError(f"test season {s} needs two earlier seasons")
        rl_season = seasons[i - 1]
        teacher = np.flatnonzero(np.isin(b.season, seasons[: i - 1]) & (b.y >= 0))
        by_time = np.argsort(b.kickoff.asi8, kind="stable")
        rl = by_time[((b.season == rl_season) & ok)[by_time]]  # time order: PPO/DPO hold out
        test = by_time[((b.season == s) & ok)[by_time]]  # the latest rows for validation
        check_no_leakage(b.kickoff, teacher, rl)
        check_no_leakage(b.kickoff, rl, test)
        folds.append(Fold(s, rl_season, teacher, rl, test))
    return folds


# --------------------------------------------------------------------------------------------
# teachers


class Teacher(Protocol):
    """What the bench needs from a model: fit, logits and embeddings, a module to compress."""

    def fit(self, rows: np.ndarray) -> None: ...

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits (n, 3), embedding (n, d)) for ``rows``."""
        ...

    def compression_target(self) -> tuple[nn.Module, Callable[[np.ndarray], Any], str | None]:
        """(module, rows -> module input, key of the logits in its output or None)."""
        ...

    def flat_inputs(self, rows: np.ndarray) -> np.ndarray:
        """Standardised flat features (n, d) a distilled student reads."""
        ...


class FlatFeatures:
    """Flat pre-match features: league one-hot, NaN to the training median, standardised."""

    def __init__(self, X: pd.DataFrame) -> None:
        cols = [c for c in model_feature_columns(X) if c != "league"]
        leagues = sorted(X["league"].astype(str).unique())
        onehot = np.column_stack([(X["league"].astype(str) == lg).to_numpy() for lg in leagues])
        self.values = np.column_stack([X[cols].to_numpy(dtype=np.float64), onehot])
        self.names = cols + [f"league_{lg}" for lg in leagues]
        self.market_idx = [self.names.index(c) for c in MARKET_COLUMNS]

    def fit(self, rows: np.ndarray) -> None:
        v = self.values[rows]
        self.median = np.nanmedian(v, axis=0)
        filled = np.where(np.isnan(v), self.median, v)
        self.mean = filled.mean(axis=0)
        self.std = np.where(filled.std(axis=0) > 1e-9, filled.std(axis=0), 1.0)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        v = self.values[rows]
        z = (np.where(np.isnan(v), self.median, v) - self.mean) / self.std
        return np.clip(z, -6.0, 6.0).astype(np.float32)


class MarketBoostedMLP(nn.Module):
    """``logits = log p_market + head(body(x))``; ``encode`` is the body's output.

    The de-margined pre-match probabilities are read back from the standardised input (their
    columns un-standardised with stored buffers), so the module maps one float tensor to logits
    and exports to ONNX as is. The head starts at zero: an untrained net is the market.
    """

    def __init__(
        self, d_in: int, hidden: tuple[int, ...], market_idx: list[int], mean: Any, std: Any
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = d_in
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(0.1)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 3)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("market_idx", torch.tensor(market_idx))
        self.register_buffer("market_mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("market_std", torch.tensor(std, dtype=torch.float32))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)  # (B, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x[:, self.market_idx] * self.market_std + self.market_mean  # (B, 3)
        log_p = torch.log(torch.clamp(p, min=1e-4))
        return log_p + self.head(self.body(x))  # (B, 3)


def train_classifier(
    module: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    max_epochs: int = 30,
    patience: int = 3,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    batch_size: int = 512,
) -> dict[str, Any]:
    """AdamW on cross-entropy; early stopping on the last 10% of rows (in time order)."""
    gen = torch.Generator().manual_seed(seed)
    n_valid = max(1, len(y) // 10)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))
    x_tr, y_tr, x_va, y_va = xt[:-n_valid], yt[:-n_valid], xt[-n_valid:], yt[-n_valid:]
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    best, best_state, bad, epochs = math.inf, copy.deepcopy(module.state_dict()), 0, 0
    t0 = time.perf_counter()
    for _ in range(max_epochs):
        module.train()
        perm = torch.randperm(len(y_tr), generator=gen)
        for start in range(0, len(perm), batch_size):
            mb = perm[start : start + batch_size]
            loss = F.cross_entropy(module(x_tr[mb]), y_tr[mb])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
        module.eval()
        with torch.no_grad():
            valid = float(F.cross_entropy(module(x_va), y_va))
        if valid < best - 1e-5:
            best, best_state, bad = valid, copy.deepcopy(module.state_dict()), 0
        else:
            bad += 1
            if bad >= patience:
                break
    module.load_state_dict(best_state)
    module.eval()
    seconds = time.perf_counter() - t0
    return {"epochs": epochs, "valid_log_loss": best, "seconds_per_epoch": seconds / epochs}


class MLPTeacher:
    """Stand-in for the neural model: :class:`MarketBoostedMLP` (256-128-64) on flat features."""

    name = "mlp"

    def __init__(self, b: Bundle, seed: int) -> None:
        self.b, self.seed = b, seed
        self.features = FlatFeatures(b.X)

    def fit(self, rows: np.ndarray) -> None:
        rows = rows[np.argsort(self.b.kickoff.asi8[rows], kind="stable")]
        self.features.fit(rows)
        idx = self.features.market_idx
        torch.manual_seed(self.seed)
        self.module = MarketBoostedMLP(
            len(self.features.names),
            (256, 128, 64),
            idx,
            self.features.mean[idx],
            self.features.std[idx],
        )
        self.train_info = train_classifier(
            self.module, self.features.transform(rows), self.b.y[rows], seed=self.seed
        )

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(self.features.transform(rows))
        with torch.no_grad():
            return self.module(x).numpy(), self.module.encode(x).numpy()

    def compression_target(self) -> tuple[nn.Module, Callable[[np.ndarray], Any], str | None]:
        return self.module, self.features.transform, None

    def flat_inputs(self, rows: np.ndarray) -> np.ndarray:
        return self.features.transform(rows)


class Logits1x2(nn.Module):
    """A batch-dict network seen as ``batch -> logits_1x2`` (what the compressors need)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.net(batch)["logits_1x2"]


def onnx_logits(session: OnnxSession) -> Callable[[dict[str, torch.Tensor]], np.ndarray]:
    """The 1X2 logits of the exported network for a batch dict (what ``prepare`` returns)."""

    def run(batch: dict[str, torch.Tensor]) -> np.ndarray:
        return session.run(batch)["logits_1x2"]

    return run


class NeuralTeacher:
    """:class:`marketcast.models.neural.NeuralModel`; histories include rows up to those asked.

    Sequences only read matches strictly before each fixture's kick-off, so giving the model
    the results up to the predicted rows' season (:meth:`NeuralModel.update_history`) is what a
    live model has at each kick-off, not a leak.
    """

    name = "neural"

    def __init__(self, b: Bundle, seed: int, threads: int) -> None:
        from marketcast.models.neural import NeuralModel

        self.b = b
        self.model = NeuralModel(random_state=seed, n_jobs=threads)
        self.features = FlatFeatures(b.X)

    def fit(self, rows: np.ndarray) -> None:
        self.features.fit(rows)
        t0 = time.perf_counter()
        self.model.fit(self.b.X.iloc[rows], self.b.goals[rows])
        self.train_info = {"seconds": time.perf_counter() - t0}

    def _history_for(self, rows: np.ndarray) -> None:
        last = self.b.kickoff[rows].max()
        known = np.flatnonzero((self.b.kickoff <= last) & (self.b.y >= 0))
        self.model.update_history(self.b.X.iloc[known], self.b.goals[known])

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._history_for(rows)
        out = self.model.predict_outputs(self.b.X.iloc[rows])
        return out["logits_1x2"], out["context"]

    def compression_target(self) -> tuple[nn.Module, Callable[[np.ndarray], Any], str | None]:
        def prepare(rows: np.ndarray) -> dict[str, torch.Tensor]:
            return self.model.make_batch(self.b.X.iloc[self._rows[rows]])

        return Logits1x2(self.model.network_), prepare, None

    def flat_inputs(self, rows: np.ndarray) -> np.ndarray:
        return self.features.transform(rows)


def make_teacher(name: str, b: Bundle, seed: int, threads: int) -> Teacher:
    """The model factory behind ``--model``: add a model here to bench it."""
    if name == "mlp":
        return MLPTeacher(b, seed)
    if name == "neural":
        return NeuralTeacher(b, seed, threads)
    raise ValueError(f"unknown --model {name!r}; expected 'mlp' or 'neural'")


# --------------------------------------------------------------------------------------------
# RL section


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def staking_data(b: Bundle, rows: np.ndarray, logits: np.ndarray, emb: np.ndarray) -> StakingData:
    return StakingData.from_arrays(emb, softmax(logits), b.odds[rows], b.y[rows], b.closing[rows])


def roi_interval(policy: Any, data: StakingData, n_boot: int = 1000, seed: int = 0) -> list[float]:
    """95% percentile bootstrap interval of the greedy policy's ROI, resampling its bets.

    The policy's bets are drawn with replacement, their number fixed (matches it does not bet
    on play no part); the trained policy is held fixed, so training noise is not in it. A
    marginal interval: compare two policies with :func:`paired_roi_difference`.
    """
    profit, stake = greedy_bets(policy, data)
    bet = stake > 0
    if not bet.any():
        return [float("nan"), float("nan")]
    profit, stakes = profit[bet], stake[bet]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(stakes), size=(n_boot, len(stakes)))
    rois = profit[draws].sum(axis=1) / stakes[draws].sum(axis=1)
    return [float(np.quantile(rois, 0.025)), float(np.quantile(rois, 0.975))]


def greedy_bets(policy: Any, data: StakingData) -> tuple[np.ndarray, np.ndarray]:
    """(profit, stake), each (N,) float64 in bankroll fractions, of the greedy policy per match.

    0 and 0 where it does not bet; settled at ``data.odds`` as :func:`evaluate_policy` does.
    """
    with torch.no_grad():
        action = policy(data.embedding, data.probs, data.odds).action_logits.argmax(dim=1)
    outcome = policy.action_outcome[action].numpy()  # (N,), -1: no bet
    stake = policy.action_stake_fraction[action].double().numpy() * (outcome >= 0)
    odds = data.odds.double().numpy()[np.arange(len(outcome)), np.maximum(outcome, 0)]
    won = data.outcome.numpy() == outcome
    profit = stake * np.where(won, odds - 1.0, -1.0)
    return profit, stake


def paired_roi_difference(
    bets_a: list[tuple[np.ndarray, np.ndarray]],
    bets_b: list[tuple[np.ndarray, np.ndarray]],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap of ROI(a) - ROI(b) on the same matches, averaged over training seeds.

    ``bets_a[s]`` and ``bets_b[s]`` are :func:`greedy_bets` of the two policies trained with
    seed s, on the same N test matches. Each draw resamples the N *matches* with replacement
    (a match brings both policies' bets, or none), computes each policy's ROI per seed on it and
    the mean over seeds of the difference. The seeds are held fixed: the interval is the outcome
    noise of the seed-averaged difference; the seed spread is reported beside it.

    Returns
    -------
    dict
        ``diff`` (observed), ``ci95`` (2.5% and 97.5% percentiles of the draws), ``p_value``
        (two-sided, ``min(1, 2 min(P(d <= 0), P(d >= 0)))``), ``n_matches``, ``n_boot``;
        ``diff`` None when a policy never bets. Draws where a policy stakes nothing are dropped.
    """
    if len(bets_a) != len(bets_b) or not bets_a:
        raise ValueError("paired_roi_difference needs the same, non-zero number of seeds")
    profit_a = np.column_stack([p for p, _ in bets_a])  # (N, S)
    stake_a = np.column_stack([s for _, s in bets_a])
    profit_b = np.column_stack([p for p, _ in bets_b])
    stake_b = np.column_stack([s for _, s in bets_b])
    n = profit_a.shape[0]
    empty = {"diff": None, "ci95": [None, None], "p_value": None, "n_matches": n, "n_boot": n_boot}
    if (stake_a.sum(axis=0) <= 0).any() or (stake_b.sum(axis=0) <= 0).any():
        return empty
    observed = float(np.mean(profit_a.sum(0) / stake_a.sum(0) - profit_b.sum(0) / stake_b.sum(0)))
    rng = np.random.default_rng(seed)
    counts = np.zeros((n_boot, n))  # (B, N): times each match is drawn
    np.add.at(counts, (np.arange(n_boot)[:, None], rng.integers(0, n, size=(n_boot, n))), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        roi_a = (counts @ profit_a) / (counts @ stake_a)  # (B, S)
        roi_b = (counts @ profit_b) / (counts @ stake_b)
    d = (roi_a - roi_b).mean(axis=1)  # (B,)
    d = d[np.isfinite(d)]
    if not len(d):
        return empty
    p = min(1.0, 2.0 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return {
        "diff": observed,
        "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
        "p_value": p,
        "n_matches": n,
        "n_boot": len(d),
    }


def holm_adjust(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order (family-wise error control).

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03])
    [0.03, 0.06, 0.06]
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = round(running, 12)
    return adjusted


def spread(values: list[float]) -> dict[str, Any]:
    """Mean, sample sd (ddof=1; 0 for one value), min, max and the values, NaN left out."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "sd": None, "min": None, "max": None, "per_seed": list(values)}
    arr = np.asarray(finite)
    return {
        "mean": float(arr.mean()),
        "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "per_seed": list(values),
    }


def thawed(policy: Any) -> Any:
    trainable = copy.deepcopy(policy).train()
    for p in trainable.parameters():
        p.requires_grad_(True)
    return trainable


POLICIES = (
    "reference",
    "ppo_return",
    "dpo_return",
    "ppo_closing",
    "dpo_closing",
    "ppo_return_tune_belief",
)
#: The policy whose fine-tuning moves the belief layer too (log loss is no longer the teacher's).
BELIEF_POLICY = "ppo_return_tune_belief"


def train_policies(
    rl_data: StakingData, embedding_dim: int, seed: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]], dict[str, float], float]:
    """The reference and every fine-tuned policy for one seed: (policies, histories, s, bc agr.)."""
    policies: dict[str, Any] = {}
    t1 = time.perf_counter()
    ref = build_policy(embedding_dim, seed=seed)
    ref, bc_hist = behaviour_clone(ref, rl_data, ReferenceConfig(), seed=seed)
    ref = frozen_copy(ref)
    policies["reference"] = ref
    timings = {"reference_bc_s": time.perf_counter() - t1}
    hists: dict[str, list[dict[str, float]]] = {}
    for reward in ("return", "closing_expected"):
        tag = "return" if reward == "return" else "closing"
        t1 = time.perf_counter()
        policies[f"ppo_{tag}"], hists[f"ppo_{tag}"] = fine_tune_ppo(
            thawed(ref), ref, rl_data, PPOConfig(reward=reward), seed=seed
        )
        timings[f"ppo_{tag}_s"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        policies[f"dpo_{tag}"], hists[f"dpo_{tag}"] = fine_tune_dpo(
            thawed(ref), ref, rl_data, DPOConfig(reward=reward), seed=seed
        )
        timings[f"dpo_{tag}_s"] = time.perf_counter() - t1
    t1 = time.perf_counter()
    policies["ppo_return_tune_belief"], hists["ppo_return_tune_belief"] = fine_tune_ppo(
        thawed(ref), ref, rl_data, PPOConfig(tune_belief=True), seed=seed
    )
    timings["ppo_return_tune_belief_s"] = time.perf_counter() - t1
    return {n: policies[n] for n in POLICIES}, hists, timings, bc_hist[-1]["agreement"]


def rl_section(
    b: Bundle, folds: list[Fold], model: str, seeds: list[int], threads: int
) -> tuple[dict[str, Any], Teacher, Fold]:
    """Per fold: one teacher (seed ``seeds[0]``), then every policy trained once per seed.

    Per policy: each seed's test metrics, the mean / sd / min / max over seeds of test ROI and
    of ROI minus that seed's reference, and a paired bootstrap of the seed-averaged difference
    from the reference on the same test matches; Holm-adjusted over every fold x policy.
    """
    out: dict[str, Any] = {
        "configs": {
            "reference": ReferenceConfig().model_dump(),
            "ppo": PPOConfig().model_dump(),
            "dpo": DPOConfig().model_dump(),
            "rewards": "*_return: realised return; *_closing: expected return at the closing line",
        },
        "seeds": list(seeds),
        "teacher_seed": seeds[0],
        "spread": "across seeds of the policies (teacher fixed): mean, sd (ddof=1), min, max",
        "paired": "ROI(policy) - ROI(reference), mean over seeds; 2000 draws resampling test "
        "matches; two-sided p; Holm over every fold x policy",
        "folds": [],
    }
    teacher: Teacher | None = None
    for fold in folds:
        t0 = time.perf_counter()
        teacher = make_teacher(model, b, seeds[0], threads)
        teacher.fit(fold.teacher_rows)
        fit_s = time.perf_counter() - t0
        logits_rl, emb_rl = teacher.predict(fold.rl_rows)
        logits_te, emb_te = teacher.predict(fold.test_rows)
        rl_data = staking_data(b, fold.rl_rows, logits_rl, emb_rl)
        test_data = staking_data(b, fold.test_rows, logits_te, emb_te)
        rows = fold.test_rows
        p_test = softmax(logits_te)
        kelly = b.backtest(p_test, rows).to_dict()
        per_seed: dict[str, list[dict[str, Any]]] = {n: [] for n in POLICIES}
        bets: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {n: [] for n in POLICIES}
        timings: dict[str, Any] = {"teacher_fit_s": fit_s, "per_seed": []}
        training: dict[str, Any] = {"bc_agreement": [], "per_seed": []}
        for seed in seeds:
            t1 = time.perf_counter()
            policies, hists, seed_timings, agreement = train_policies(
                rl_data, emb_rl.shape[1], seed
            )
            timings["per_seed"].append({"seed": seed, **seed_timings})
            training["bc_agreement"].append(agreement)
            training["per_seed"].append(
                {"seed": seed, **{n: _training_summary(h) for n, h in hists.items()}}
            )
            for name, policy in policies.items():
                ev_test = evaluate_policy(policy, test_data)
                ev_train = evaluate_policy(policy, rl_data)
                per_seed[name].append(
                    {
                        "seed": seed,
                        "test": {**ev_test, "roi_ci95": roi_interval(policy, test_data, seed=seed)},
                        "train_season": {
                            k: ev_train[k] for k in ("roi", "n_bets", "clv", "log_loss")
                        },
                    }
                )
                bets[name].append(greedy_bets(policy, test_data))
            print(
                f"fold {fold.test_season} seed {seed} ({time.perf_counter() - t1:.0f} s): "
                + ", ".join(f"{n} {v[-1]['test']['roi']:+.3f}" for n, v in per_seed.items()),
                file=sys.stderr,
            )
        fold_out: dict[str, Any] = {
            "test_season": fold.test_season,
            "rl_season": fold.rl_season,
            "n_teacher_rows": len(fold.teacher_rows),
            "n_rl_rows": len(fold.rl_rows),
            "n_test_rows": len(rows),
            "teacher": {
                "seed": seeds[0],
                "log_loss": log_loss(b.y[rows], p_test),
                "closing_log_loss": _closing_log_loss(b, rows),
                "train": getattr(teacher, "train_info", {}),
                "kelly_backtest": {k: kelly[k] for k in ("roi", "n_bets", "profit_units", "clv")},
            },
            "policies": {},
            "timings_s": timings,
            "training": training,
        }
        fold_out["teacher"]["ratio_to_closing"] = (
            fold_out["teacher"]["log_loss"] / fold_out["teacher"]["closing_log_loss"]
        )
        ref_roi = [s["test"]["roi"] for s in per_seed["reference"]]
        for name in POLICIES:
            entries = per_seed[name]
            rois = [s["test"]["roi"] for s in entries]
            summary: dict[str, Any] = {
                "test_roi": spread(rois),
                "test_n_bets": spread([s["test"]["n_bets"] for s in entries]),
                "test_clv": spread([s["test"]["clv"] for s in entries]),
                "test_log_loss": spread([s["test"]["log_loss"] for s in entries]),
            }
            if name != "reference":
                summary["roi_minus_reference"] = spread(
                    [a - r for a, r in zip(rois, ref_roi, strict=True)]
                )
                summary["paired_vs_reference"] = paired_roi_difference(
                    bets[name], bets["reference"], seed=seeds[0]
                )
            fold_out["policies"][name] = {**summary, "per_seed": entries}
        out["folds"].append(fold_out)
    _holm(out["folds"])
    out["pooled"] = _pooled(out["folds"], len(seeds))
    assert teacher is not None
    return out, teacher, folds[-1]


def _holm(folds: list[dict[str, Any]]) -> None:
    """Add ``p_holm`` to every paired comparison, one family over all folds and policies."""
    tests = [
        f["policies"][n]["paired_vs_reference"]
        for f in folds
        for n in POLICIES
        if n != "reference" and f["policies"][n]["paired_vs_reference"]["p_value"] is not None
    ]
    for test, p in zip(tests, holm_adjust([t["p_value"] for t in tests]), strict=True):
        test["p_holm"] = p
        test["n_comparisons"] = len(tests)


def _training_summary(history: list[dict[str, float]]) -> dict[str, Any]:
    """Which step the validation kept (-1: the reference) and the last step's scalars."""
    selected = [i for i, h in enumerate(history) if h.get("selected")]
    return {
        "steps": len(history),
        "selected_step": selected[0] if selected else -1,
        "val_reward_by_step": [h["val_reward"] for h in history],
        "last": history[-1],
    }


def _closing_log_loss(b: Bundle, rows: np.ndarray) -> float | None:
    closing = b.closing[rows]
    ok = ~np.isnan(closing).any(axis=1)
    return log_loss(b.y[rows][ok], closing[ok]) if ok.any() else None


def _pooled_one(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """Both folds' test metrics of one policy and seed, pooled."""
    staked = sum(t["staked_units"] for t in tests)
    profit = sum(t["profit_units"] for t in tests)
    clv_num = sum(
        t["clv"] * (t["n_bets"] - t["n_bets_without_closing"]) for t in tests if t["n_bets"]
    )
    clv_den = sum(t["n_bets"] - t["n_bets_without_closing"] for t in tests)
    return {
        "roi": profit / staked if staked else float("nan"),
        "profit_units": profit,
        "n_bets": sum(t["n_bets"] for t in tests),
        "clv": clv_num / clv_den if clv_den else float("nan"),
    }


def _pooled(folds: list[dict[str, Any]], n_seeds: int) -> dict[str, Any]:
    """Per policy: each seed's ROI / CLV / bets over both folds, then their spread over seeds."""
    pooled: dict[str, Any] = {}
    ref = [
        _pooled_one([f["policies"]["reference"]["per_seed"][s]["test"] for f in folds])
        for s in range(n_seeds)
    ]
    for name in POLICIES:
        each = [
            _pooled_one([f["policies"][name]["per_seed"][s]["test"] for f in folds])
            for s in range(n_seeds)
        ]
        pooled[name] = {
            "roi": spread([e["roi"] for e in each]),
            "clv": spread([e["clv"] for e in each]),
            "n_bets": spread([e["n_bets"] for e in each]),
        }
        if name != "reference":
            pooled[name]["roi_minus_reference"] = spread(
                [e["roi"] - r["roi"] for e, r in zip(each, ref, strict=True)]
            )
    return pooled


# --------------------------------------------------------------------------------------------
# the docs' RL table and the README's RL summary, written from the results

DOCS_RL = ROOT / "docs" / "rl-and-compression.md"
README = ROOT / "README.md"
DOCS_MARKERS = ("<!-- bench:rl:start -->", "<!-- bench:rl:end -->")
README_MARKERS = ("<!-- bench:rl:readme:start -->", "<!-- bench:rl:readme:end -->")


def _pct(v: float | None, digits: int = 1, sign: bool = True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:+.{digits}f}%" if sign else f"{100 * v:.{digits}f}%"


def _pts(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:+.1f}"


def _p(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _comparisons(results: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (f["test_season"], n, f["policies"][n]["paired_vs_reference"])
        for f in results["rl"]["folds"]
        for n in POLICIES
        if n != "reference"
    ]


def rl_conclusion(results: dict[str, Any], alpha: float = 0.05) -> str:
    """One sentence on what the paired tests say, from the numbers."""
    comps = [c for c in _comparisons(results) if c[2].get("p_holm") is not None]
    if not comps:
        return "No paired comparison could be made (a policy placed no bets)."
    nominal = [c for c in comps if c[2]["p_value"] < alpha]
    held = [c for c in comps if c[2]["p_holm"] < alpha]
    smallest = min(comps, key=lambda c: c[2]["p_value"])
    if held:
        names = "; ".join(
            f"{n} in {s} ({_pts(t['diff'])} points, Holm p {_p(t['p_holm'])})" for s, n, t in held
        )
        head = f"Against the reference, {len(held)} of {len(comps)} differences hold after Holm: "
        return head + names + "."
    return (
        f"No policy's ROI differs from the reference's after Holm's correction over the "
        f"{len(comps)} comparisons (smallest p {_p(smallest[2]['p_value'])}, {smallest[1]} in "
        f"{smallest[0]}, {_pts(smallest[2]['diff'])} points, adjusted "
        f"{_p(smallest[2]['p_holm'])}; {len(nominal)} of {len(comps)} nominally below {alpha:g})."
    )


def thin_reference_note(results: dict[str, Any], share: float = 0.05) -> str:
    """A sentence for each fold whose reference bets on under ``share`` of the test matches."""
    notes = []
    for f in results["rl"]["folds"]:
        bets = f["policies"]["reference"]["test_n_bets"]
        if bets["mean"] is not None and bets["mean"] < share * f["n_test_rows"]:
            notes.append(
                f"In {f['test_season']} the cloned reference bets on only {bets['min']:.0f} to "
                f"{bets['max']:.0f} of {f['n_test_rows']:,} test matches, so its ROI, and every "
                f"difference from it, is mostly noise there."
            )
    return " ".join(notes)


def docs_rl_block(results: dict[str, Any]) -> str:
    """docs/rl-and-compression.md's RL measurements: provenance, conclusion and table."""
    rl = results["rl"]
    seeds = ", ".join(str(s) for s in rl["seeds"])
    lines = [
        f"Run of {results['date']}: {len(rl['seeds'])} policy seeds ({seeds}); the teacher "
        f"is fitted once per fold with seed {rl['teacher_seed']}, so the spread below is the "
        f"fine-tuning's training noise, not the teacher's. CPU kernels "
        f"`{results['cpu_capability']}`, {results['threads_used']} torch thread(s), torch "
        f"{results['torch']}: the same seed gives other figures with other kernels or thread "
        f"counts (float rounding changes which PPO update the validation keeps). ROI and the "
        f"difference from that seed's reference are the mean over seeds, with the sd and the "
        f"smallest and largest seed. The paired interval resamples the test matches (2,000 "
        f"draws) for the seed-averaged difference from the reference; p is two-sided, Holm "
        f"over the {len(_comparisons(results))} comparisons. {rl_conclusion(results)} "
        f"{thin_reference_note(results)}".rstrip(),
        "",
        "| fold | policy | ROI mean (sd, pts) | ROI min, max | bets | CLV | minus reference, "
        "pts: mean (sd) | min, max | paired 95% CI | p | p Holm |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for f in rl["folds"]:
        for name in POLICIES:
            pol = f["policies"][name]
            roi, d = pol["test_roi"], pol.get("roi_minus_reference")
            pair = pol.get("paired_vs_reference")
            cells = [
                f["test_season"],
                name,
                f"{_pct(roi['mean'], 2)} ({_pts(roi['sd']).lstrip('+')})",
                f"{_pct(roi['min'])}, {_pct(roi['max'])}",
                f"{pol['test_n_bets']['mean']:.0f}",
                _pct(pol["test_clv"]["mean"], 2),
            ]
            if d is None or pair is None:
                cells += ["-", "-", "-", "-", "-"]
            else:
                lo, hi = pair["ci95"]
                cells += [
                    f"{_pts(d['mean'])} ({_pts(d['sd']).lstrip('+')})",
                    f"{_pts(d['min'])}, {_pts(d['max'])}",
                    "-" if lo is None else f"[{_pts(lo)}, {_pts(hi)}]",
                    _p(pair["p_value"]),
                    _p(pair.get("p_holm")),
                ]
            lines.append("| " + " | ".join(cells) + " |")
    pooled = rl["pooled"]
    lines += [
        "",
        "Pooled over both folds (mean over seeds, [smallest, largest seed]): "
        + "; ".join(
            f"{n} {_pct(pooled[n]['roi']['mean'])} "
            f"[{_pct(pooled[n]['roi']['min'])}, {_pct(pooled[n]['roi']['max'])}]"
            for n in POLICIES
        )
        + ". Differences in points (a point is 1% of ROI).",
    ]
    lines[0], lines[-1] = _wrap(lines[0]), _wrap(lines[-1])
    return "\n".join(lines)


def _wrap(paragraph: str) -> str:
    return textwrap.fill(paragraph, width=100, break_long_words=False, break_on_hyphens=False)


def readme_rl_summary(results: dict[str, Any]) -> str:
    """The README's RL sentence: every policy's mean ROI per fold, the spread, the tests."""
    rl = results["rl"]
    parts = []
    for f in rl["folds"]:
        pols = f["policies"]
        each = ", ".join(
            f"{n} {_pct(pols[n]['test_roi']['mean'])} "
            f"({_pct(pols[n]['test_roi']['min'])} to {_pct(pols[n]['test_roi']['max'])})"
            for n in POLICIES
        )
        parts.append(f"{f['test_season']}: {each}")
    return _wrap(
        f"ROI fine-tuning (PPO with a KL penalty to a fractional-Kelly reference; DPO), the policy "
        f"fitted on the season before each test season and the teacher on the seasons before "
        f"that; mean test ROI over {len(rl['seeds'])} training "
        f"seeds (smallest to largest seed; run of {results['date']}, CPU kernels "
        f"`{results['cpu_capability']}`, {results['threads_used']} thread(s)): "
        + "; ".join(parts)
        + f". {rl_conclusion(results)} {thin_reference_note(results)} Log loss is unchanged by "
        f"construction (the policy sits on a frozen head) except where the belief is tuned"
        f"{belief_cost(results)}. "
        "Figures, paired intervals and Holm p-values: `docs/rl-and-compression.md`."
    )


def belief_cost(results: dict[str, Any]) -> str:
    """How far the belief-tuning policy's test log loss lies above its teacher's, over every
    fold and seed (``""`` where the run has no such policy)."""
    gaps = [
        seed["test"]["log_loss"] - fold["teacher"]["log_loss"]
        for fold in results["rl"]["folds"]
        if BELIEF_POLICY in fold["policies"]
        for seed in fold["policies"][BELIEF_POLICY]["per_seed"]
    ]
    if not gaps:
        return ""
    return f" ({BELIEF_POLICY}: {min(gaps):+.4f} to {max(gaps):+.4f} over the teacher's)"


def update_docs(results: dict[str, Any], docs: Path = DOCS_RL, readme: Path = README) -> None:
    """Rewrite the RL blocks of the docs and the README from ``results``."""
    text = docs.read_text(encoding="utf-8")
    docs.write_text(replace_block(text, DOCS_MARKERS, docs_rl_block(results)), encoding="utf-8")
    text = readme.read_text(encoding="utf-8")
    readme.write_text(
        replace_block(text, README_MARKERS, readme_rl_summary(results)), encoding="utf-8"
    )


# --------------------------------------------------------------------------------------------
# compression section


def compression_section(
    b: Bundle, teacher: Teacher, fold: Fold, seed: int, repeats: int
) -> dict[str, Any]:
    module, prepare, key = teacher.compression_target()
    module = module.eval()
    rows = fold.test_rows
    train_rows = fold.teacher_rows
    x_train = torch.from_numpy(teacher.flat_inputs(train_rows))
    y_train = torch.from_numpy(b.y[train_rows].astype(np.int64))
    flat_module = isinstance(teacher, MLPTeacher)
    if flat_module:
        with torch.no_grad():
            teacher_logits_train = module(x_train)
    else:
        teacher_logits_train = torch.from_numpy(teacher.predict(train_rows)[0]).float()
        teacher._rows = rows  # prepare() maps report rows to these data rows
        teacher._history_for(rows)  # after predicting the training rows, which reset it
    x_test = teacher.flat_inputs(rows)
    y_test = b.y[rows]

    def roi_fn(p: np.ndarray) -> float:
        return b.backtest(p, rows).roi

    def model_prepare(idx: np.ndarray) -> Any:
        return prepare(rows[idx]) if flat_module else prepare(idx)

    def fn(m: nn.Module) -> Callable[[Any], np.ndarray]:
        return torch_logits_fn(m, output_key=key)

    full_size = model_size_bytes(module)
    variants = [
        Variant(
            "torch_fp32",
            fn(module),
            full_size,
            sparse_size_bytes(module),
            "full model (state-dict bytes)",
            model_prepare,
        )
    ]
    q = quantize_dynamic_int8(module)
    variants.append(
        Variant("torch_int8_dynamic", fn(q), model_size_bytes(q), None, "torch.ao", model_prepare)
    )
    notes: dict[str, str] = {}
    recover_epochs = 4

    def recovered(sparse: nn.Module) -> nn.Module:
        """Distil the full model into its masked copy (masks kept), then fold the masks."""
        if flat_module:
            distill(
                teacher_logits_train,
                sparse,
                x_train,
                y_train,
                epochs=recover_epochs,
                lr=3e-4,
                seed=seed,
            )
        sparse.eval()
        return make_permanent(sparse)

    for name, maker in (
        ("pruned_50", lambda: magnitude_prune(module, 0.5)),
        ("pruned_80_distilled", lambda: recovered(magnitude_prune(module, 0.8, permanent=False))),
        ("sparse_2_4", lambda: apply_2_4_mask(module)),
        ("sparse_2_4_distilled", lambda: recovered(apply_2_4_mask(module, permanent=False))),
    ):
        if not flat_module and name.endswith("distilled"):
            continue
        m = maker().eval()
        layout = "2:4" if "2_4" in name else "csr"
        variants.append(
            Variant(
                name,
                fn(m),
                model_size_bytes(m),
                sparse_size_bytes(m, layout=layout),
                f"sparsity {weight_sparsity(m):.2f}; sparse size = {layout} layout, fp32 values",
                model_prepare,
            )
        )

    with tempfile.TemporaryDirectory() as tmp:
        if flat_module:
            path = export_onnx(module, torch.from_numpy(x_test[:2]), Path(tmp) / "full.onnx")
            qpath = onnx_quantize_dynamic(path, Path(tmp) / "full_int8.onnx")
            for name, p in (("onnx_fp32", path), ("onnx_int8", qpath)):
                s = OnnxSession(p)
                variants.append(Variant(name, s, s.size_bytes, None, "onnxruntime CPU"))
        else:
            path = export_football_net_onnx(
                module.net, model_prepare(np.arange(2)), Path(tmp) / "full.onnx"
            )
            s = OnnxSession(path)
            variants.append(
                Variant(
                    "onnx_fp32",
                    onnx_logits(s),
                    s.size_bytes,
                    None,
                    "onnxruntime CPU",
                    model_prepare,
                )
            )
            try:
                qpath = onnx_quantize_dynamic(path, Path(tmp) / "full_int8.onnx")
                sq = OnnxSession(qpath)
                variants.append(
                    Variant(
                        "onnx_int8",
                        onnx_logits(sq),
                        sq.size_bytes,
                        None,
                        "onnxruntime CPU, int8 weights",
                        model_prepare,
                    )
                )
            except Exception as error:  # the quantiser's shape inference on this graph
                notes["onnx_int8"] = f"onnxruntime's quantiser failed: {error}"[:300]

        torch.manual_seed(seed)
        student = MarketBoostedMLP(
            x_test.shape[1],
            (32,),
            list(teacher.features.market_idx),
            teacher.features.mean[teacher.features.market_idx],
            teacher.features.std[teacher.features.market_idx],
        )
        t0 = time.perf_counter()
        student, hist = distill(
            teacher_logits_train,
            student,
            x_train,
            y_train,
            temperature=2.0,
            alpha=0.5,
            epochs=15,
            lr=1e-3,
            seed=seed,
        )
        student.eval()
        notes["student"] = (
            f"MarketBoostedMLP(32) distilled at T=2, alpha=0.5, 15 epochs in "
            f"{time.perf_counter() - t0:.1f} s; final KL to teacher {hist[-1]['kl_to_teacher']:.4f}"
        )
        variants.append(
            Variant("student_fp32", torch_logits_fn(student), model_size_bytes(student), None)
        )
        spath = export_onnx(student, torch.from_numpy(x_test[:2]), Path(tmp) / "student.onnx")
        s_student = OnnxSession(spath)
        variants.append(
            Variant("student_onnx_fp32", s_student, s_student.size_bytes, None, "onnxruntime")
        )
        sq_path = onnx_quantize_dynamic(spath, Path(tmp) / "student_int8.onnx")
        s_student_q = OnnxSession(sq_path)
        variants.append(
            Variant(
                "student_onnx_int8", s_student_q, s_student_q.size_bytes, None, "onnxruntime int8"
            )
        )
        rows_out = compression_report(
            variants, x_test, y_test, roi_fn=roi_fn, batch_sizes=(1, 256), repeats=repeats
        )
    for r in rows_out:
        r["meets_target"] = bool(
            r["throughput_ratio_b256"] >= TARGET_THROUGHPUT
            and r["delta_roi"] is not None
            and r["delta_roi"] >= -TARGET_ROI_LOSS
        )
    return {
        "fold": fold.test_season,
        "n_test_rows": len(rows),
        "torch_threads": torch.get_num_threads(),
        "target": {
            "throughput_ratio_b256_at_least": TARGET_THROUGHPUT,
            "roi_drop_at_most_abs": TARGET_ROI_LOSS,
        },
        "rows": rows_out,
        "notes": notes,
        "gpu_2_4": "CPU rows give 2:4 size and accuracy only; bench/gpu.py times the kernels "
        "on a GPU machine",
    }


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mlp", choices=["mlp", "neural"])
    parser.add_argument("--test-seasons", default="2020-2021,2021-2022")
    parser.add_argument(
        "--seeds",
        default=",".join(str(s) for s in DEFAULT_SEEDS),
        help="policy training seeds, comma-separated; the first also seeds the teacher and the "
        "compression section",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per latency")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--no-docs",
        action="store_true",
        help="do not rewrite the RL blocks of docs/rl-and-compression.md and README.md "
        "(they are rewritten only for --model neural written to the default --out)",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if not seeds or len(set(seeds)) != len(seeds):
        parser.error(f"--seeds needs distinct integers, got {args.seeds!r}")
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    b = load_bundle()
    load_s = time.perf_counter() - t0
    folds = make_folds(b, args.test_seasons.split(","))
    t1 = time.perf_counter()
    rl, teacher, last = rl_section(b, folds, args.model, seeds, args.threads)
    rl_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    compression = compression_section(b, teacher, last, seeds[0], args.repeats)
    compression_s = time.perf_counter() - t1
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "torch": torch.__version__,
        # float rounding, hence which PPO update is kept, depends on both (docs: reproducibility)
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY"),
        "threads_used": torch.get_num_threads(),
        "model": args.model,
        "seeds": seeds,
        "threads": args.threads,
        "compression_seed": seeds[0],
        "odds_taken": "best pre-match price",
        "closing": "de-margined (shin) closing probabilities, Pinnacle else average",
        "rl": rl,
        "compression": compression,
        "timings_s": {
            "load_and_features": load_s,
            "rl": rl_s,
            "compression": compression_s,
            "total": time.perf_counter() - t0,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json_dumps(results)
    out.write_text(text, encoding="utf-8")
    print_summary(json.loads(text))
    if args.model == "neural" and out.resolve() == RESULTS.resolve() and not args.no_docs:
        update_docs(json.loads(text))
    return 0


def json_dumps(obj: Any) -> str:
    def clean(o: Any) -> Any:
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, list | tuple):
            return [clean(v) for v in o]
        if isinstance(o, np.generic):
            o = o.item()
        if isinstance(o, float):
            return None if math.isnan(o) or math.isinf(o) else round(o, 6)
        return o

    return json.dumps(clean(obj), indent=2) + "\n"


def print_summary(results: dict[str, Any]) -> None:
    print(f"model {results['model']}, {results['timings_s']['total']:.0f} s")
    print(docs_rl_block(results))
    print()
    print(
        "| variant | size B | sparse B | b1 ms | b256 ms | x b1 | x b256 | dLL | ROI | dROI "
        "| target |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in results["compression"]["rows"]:
        print(
            f"| {r['variant']} | {r['size_bytes']} | {r['sparse_size_bytes'] or '-'} | "
            f"{r['latency_b1_ms']:.3f} | {r['latency_b256_ms']:.3f} | "
            f"{r['throughput_ratio_b1']:.2f} | {r['throughput_ratio_b256']:.2f} | "
            f"{r['delta_log_loss']:+.4f} | {r['roi']:+.2%} | {r['delta_roi']:+.2%} | "
            f"{'yes' if r['meets_target'] else 'no'} |"
        )


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
