"""ROI fine-tuning (PPO, DPO) and compression of a football model, walk-forward on the bundle.

Run with ``PYTHONPATH=src .venv/bin/python bench/compress_rl.py`` (about 1 minute with the MLP
stand-in, 2 with ``--model neural``, on 2 cores).
Writes ``bench/results/compress_rl.json``.

Folds (time-ordered, checked with :func:`marketcast.splits.walk_forward.check_no_leakage`): for
each test season S (default the last two seasons most leagues have, 2020-2021 and 2021-2022) the
model is trained on every season before S-1, the staking policy is fitted on season S-1 (where
the model's forecasts are out of sample, as they will be when it bets) and everything is scored
on season S.

1. RL: the reference policy (behaviour-cloned fractional Kelly on the model's probabilities), PPO
   and DPO fine-tuned from it; log loss (the policy's belief), ROI with a 95% bootstrap interval,
   CLV, bets, at the best pre-match price. Beside them, the repo's standard backtest of the model
   (``run_backtest``: fractional Kelly 0.25, min edge 2%, cap 5%).
2. Compression of the last fold's model: int8 (torch and onnxruntime), ONNX fp32, magnitude
   pruning, 2:4 masks (one-shot and recovered by distillation), a distilled small student; size,
   CPU latency at batch 1 and 256, log loss and ROI change against the full model.

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
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
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
    """95% percentile bootstrap interval of the greedy policy's ROI, resampling matches."""
    with torch.no_grad():
        action = policy(data.embedding, data.probs, data.odds).action_logits.argmax(dim=1)
    outcome = policy.action_outcome[action].numpy()
    stake = policy.action_stake_fraction[action].double().numpy()
    bet = outcome >= 0
    if not bet.any():
        return [float("nan"), float("nan")]
    odds = data.odds.double().numpy()[bet, outcome[bet]]
    won = data.outcome.numpy()[bet] == outcome[bet]
    profit = stake[bet] * np.where(won, odds - 1.0, -1.0)
    stakes = stake[bet]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(stakes), size=(n_boot, len(stakes)))
    rois = profit[draws].sum(axis=1) / stakes[draws].sum(axis=1)
    return [float(np.quantile(rois, 0.025)), float(np.quantile(rois, 0.975))]


def thawed(policy: Any) -> Any:
    trainable = copy.deepcopy(policy).train()
    for p in trainable.parameters():
        p.requires_grad_(True)
    return trainable


def rl_section(
    b: Bundle, folds: list[Fold], model: str, seed: int, threads: int
) -> tuple[dict[str, Any], Teacher, Fold]:
    out: dict[str, Any] = {
        "configs": {
            "reference": ReferenceConfig().model_dump(),
            "ppo": PPOConfig().model_dump(),
            "dpo": DPOConfig().model_dump(),
            "rewards": "*_return: realised return; *_closing: expected return at the closing line",
        },
        "folds": [],
    }
    teacher: Teacher | None = None
    for fold in folds:
        t0 = time.perf_counter()
        teacher = make_teacher(model, b, seed, threads)
        teacher.fit(fold.teacher_rows)
        fit_s = time.perf_counter() - t0
        logits_rl, emb_rl = teacher.predict(fold.rl_rows)
        logits_te, emb_te = teacher.predict(fold.test_rows)
        rl_data = staking_data(b, fold.rl_rows, logits_rl, emb_rl)
        test_data = staking_data(b, fold.test_rows, logits_te, emb_te)
        policies: dict[str, Any] = {}
        t1 = time.perf_counter()
        ref = build_policy(emb_rl.shape[1], seed=seed)
        ref, bc_hist = behaviour_clone(ref, rl_data, ReferenceConfig(), seed=seed)
        ref = frozen_copy(ref)
        policies["reference"] = ref
        timings = {"teacher_fit_s": fit_s, "reference_bc_s": time.perf_counter() - t1}
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

        rows = fold.test_rows
        p_test = softmax(logits_te)
        kelly = b.backtest(p_test, rows).to_dict()
        fold_out: dict[str, Any] = {
            "test_season": fold.test_season,
            "rl_season": fold.rl_season,
            "n_teacher_rows": len(fold.teacher_rows),
            "n_rl_rows": len(fold.rl_rows),
            "n_test_rows": len(rows),
            "teacher": {
                "log_loss": log_loss(b.y[rows], p_test),
                "closing_log_loss": _closing_log_loss(b, rows),
                "train": getattr(teacher, "train_info", {}),
                "kelly_backtest": {k: kelly[k] for k in ("roi", "n_bets", "profit_units", "clv")},
            },
            "policies": {},
            "timings_s": timings,
            "training": {
                "bc_agreement": bc_hist[-1]["agreement"],
                **{name: _training_summary(h) for name, h in hists.items()},
            },
        }
        fold_out["teacher"]["ratio_to_closing"] = (
            fold_out["teacher"]["log_loss"] / fold_out["teacher"]["closing_log_loss"]
        )
        for name, policy in policies.items():
            ev_test = evaluate_policy(policy, test_data)
            ev_train = evaluate_policy(policy, rl_data)
            fold_out["policies"][name] = {
                "test": {**ev_test, "roi_ci95": roi_interval(policy, test_data, seed=seed)},
                "train_season": {k: ev_train[k] for k in ("roi", "n_bets", "clv", "log_loss")},
            }
        out["folds"].append(fold_out)
        print(
            f"fold {fold.test_season}: "
            + ", ".join(
                f"{n} roi {v['test']['roi']:+.3f} ({int(v['test']['n_bets'])} bets)"
                for n, v in fold_out["policies"].items()
            ),
            file=sys.stderr,
        )
    out["pooled"] = _pooled(out["folds"])
    assert teacher is not None
    return out, teacher, folds[-1]


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


def _pooled(folds: list[dict[str, Any]]) -> dict[str, Any]:
    pooled: dict[str, Any] = {}
    for name in folds[0]["policies"]:
        tests = [f["policies"][name]["test"] for f in folds]
        staked = sum(t["staked_units"] for t in tests)
        profit = sum(t["profit_units"] for t in tests)
        n_bets = sum(t["n_bets"] for t in tests)
        clv_num = sum(
            t["clv"] * (t["n_bets"] - t["n_bets_without_closing"]) for t in tests if t["n_bets"]
        )
        clv_den = sum(t["n_bets"] - t["n_bets_without_closing"] for t in tests)
        n = sum(f["n_test_rows"] for f in folds)
        pooled[name] = {
            "roi": profit / staked if staked else None,
            "profit_units": profit,
            "n_bets": n_bets,
            "clv": clv_num / clv_den if clv_den else None,
            "log_loss": sum(
                t["log_loss"] * f["n_test_rows"] for t, f in zip(tests, folds, strict=True)
            )
            / n,
        }
    return pooled


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
    parser.add_argument("--seed", type=int, default=20240817)
    parser.add_argument("--threads", type=int, default=1, help="torch / onnxruntime threads")
    parser.add_argument("--repeats", type=int, default=50, help="timed calls per latency")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    b = load_bundle()
    load_s = time.perf_counter() - t0
    folds = make_folds(b, args.test_seasons.split(","))
    rl, teacher, last = rl_section(b, folds, args.model, args.seed, args.threads)
    t1 = time.perf_counter()
    compression = compression_section(b, teacher, last, args.seed, args.repeats)
    compression_s = time.perf_counter() - t1
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}",
        "torch": torch.__version__,
        "model": args.model,
        "seed": args.seed,
        "threads": args.threads,
        "odds_taken": "best pre-match price",
        "closing": "de-margined (shin) closing probabilities, Pinnacle else average",
        "rl": rl,
        "compression": compression,
        "timings_s": {
            "load_and_features": load_s,
            "compression": compression_s,
            "total": time.perf_counter() - t0,
        },
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json_dumps(results)
    out.write_text(text, encoding="utf-8")
    print_summary(json.loads(text))
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
    print("| fold | policy | log loss | ROI | 95% CI | bets | CLV |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in results["rl"]["folds"]:
        for name, p in f["policies"].items():
            t = p["test"]
            ci = t["roi_ci95"]
            roi = "-" if t["roi"] is None else f"{t['roi']:+.2%}"
            ci_s = "-" if ci[0] is None else f"[{ci[0]:+.1%}, {ci[1]:+.1%}]"
            clv = "-" if t["clv"] is None else f"{t['clv']:+.2%}"
            print(
                f"| {f['test_season']} | {name} | {t['log_loss']:.4f} | {roi} | {ci_s} | "
                f"{int(t['n_bets'])} | {clv} |"
            )
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
