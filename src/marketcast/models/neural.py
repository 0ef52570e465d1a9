"""Neural football model: team histories through a selective SSM + attention, experts, heads."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy.optimize import minimize_scalar
from scipy.special import softmax
from sklearn.base import BaseEstimator

from marketcast.features.football import MARKET_COLUMNS
from marketcast.features.football_state import nan_to_none
from marketcast.models.base import (
    CLASSES_1X2,
    SMALL_BATCH_ROWS,
    TARGETS,
    ClosingTargets,
    FeatureSource,
    base_rates,
    check_goals,
    check_no_outcome_columns,
    check_param_ranges,
    closing_in_training_order,
    feature_matrix,
    fill_unpriced,
    json_bytes,
    market_label_weights,
    market_labels,
    n_outcomes,
    require_fitted,
    soft_log_loss,
    soft_log_loss_per_row,
    training_targets,
)
from marketcast.models.nn.network import (
    BATCH_KEYS,
    FootballNet,
    LossWeights,
    NetConfig,
    flat_outputs,
    multitask_loss,
)
from marketcast.models.nn.onnx import OnnxSession, football_net_onnx_bytes
from marketcast.models.nn.seed import (
    restored_determinism,
    restored_random_state,
    seed_everything,
)
from marketcast.types import MarketKind

log = logging.getLogger(__name__)

_LOGIT_KEYS = {
    MarketKind.ONE_X_TWO: "logits_1x2",
    MarketKind.OVER_UNDER_25: "logits_ou",
    MarketKind.ASIAN_HANDICAP: "logits_ah",
}
#: Per market, the keys of its target probabilities and row weights (see `multitask_loss`).
_TARGET_KEYS = {
    MarketKind.ONE_X_TWO: ("p_1x2", "w_1x2"),
    MarketKind.OVER_UNDER_25: ("p_ou", "w_ou"),
    MarketKind.ASIAN_HANDICAP: ("p_ah", "w_ah"),
}
_MARKET_KEYS = {
    MarketKind.ONE_X_TWO: "market_1x2",
    MarketKind.OVER_UNDER_25: "market_ou",
    MarketKind.ASIAN_HANDICAP: "market_ah",
}
_IDENTITY = ("match_id", "season", "kickoff_utc", "home_team", "away_team", "league")
#: Largest batch :meth:`NeuralModel.use_onnx` sends to onnxruntime; bigger ones stay in torch.
#: The crossover measured on the 2-core machine (one thread) is between 64 and 128 rows.
ONNX_MAX_ROWS = 64
#: The same for a model on a GPU: onnxruntime on one CPU thread against torch on an H100 (with
#: its kernel launches and copies) crosses between 32 and 64 rows (``bench/gpu.py``).
ONNX_MAX_ROWS_GPU = 32
#: Columns of the feature frame the match histories are built from.
HISTORY_COLUMNS = (
    "kickoff_utc",
    "home_team",
    "away_team",
    "elo_home",
    "elo_away",
    "home_rest_days",
    "away_rest_days",
    "mkt_1x2_home",
    "mkt_1x2_draw",
    "mkt_1x2_away",
    "mkt_ou25_over",
    "ah_line",
)
#: One match as a team saw it; all known before the fixture it feeds (an earlier match).
#: Shots are not in the feature frame (the loader keeps goals and odds only), so none here.
SEQUENCE_FEATURES = (
    "goals_for",  # / 2
    "goals_against",  # / 2
    "points_minus_expected",  # (points - 3 p_win - p_draw) / 3
    "p_win",  # that match's de-margined pre-match price, from the team's side
    "p_draw",
    "p_lose",
    "p_over25",
    "opponent_elo_minus_own",  # / 200, pre-match Elo of that match
    "own_elo",  # (Elo - 1500) / 200
    "is_home",
    "rest_days",  # / 21
    "own_handicap",  # pre-match Asian handicap line from the team's side / 2
    "price_missing",
    "age_years",  # fixture kick-off minus that match's kick-off, capped at 3 years
)
_N_STORED = len(SEQUENCE_FEATURES) - 1  # age is computed per query
_KEY_STRIDE = 10**9  # team code * stride + kick-off minute: one sortable int64 key
_MIN_VALIDATION_ROWS = 30
_PREDICT_BATCH = 4096
#: What :meth:`NeuralModel.use_onnx` adds: dropped by a refit and left out of a copy.
_ONNX_STATE = ("onnx_session_", "onnx_max_rows_", "onnx_threads_", "_onnx_source_")
#: Range of each numeric parameter of :class:`NeuralModel` (`check_param_ranges`).
#: Parameters the fitted network holds in its ``NetConfig`` (``band_z`` is applied to it at
#: each fit and load): once fitted, the network's values are the model's.
_NETWORK_PARAMS = (
    "window",
    "d_model",
    "n_layers",
    "n_heads",
    "d_state",
    "expand",
    "n_experts",
    "top_k",
    "min_gate_weight",
    "n_band_heads",
    "dropout",
)
_PARAM_RANGES = {
    "window": "[1, inf)",
    "d_model": "[1, inf)",
    "n_layers": "[1, inf)",
    "n_heads": "[1, inf)",
    "d_state": "[1, inf)",
    "expand": "[1, inf)",
    "n_experts": "[1, inf)",
    "top_k": "[1, inf)",
    "min_gate_weight": "[0, 1]",
    "n_band_heads": "[2, inf)",  # a band needs two members
    "band_z": "[0, inf)",
    "dropout": "[0, 1)",
    "learning_rate": "(0, inf)",
    "weight_decay": "[0, inf)",
    "batch_size": "[1, inf)",
    "max_epochs": "[0, inf)",
    "patience": "[1, inf)",
    "validation_fraction": "[0, 1)",
    "warm_epochs": "[0, inf)",
    "warm_rows": "[1, inf) or None",
    "warm_learning_rate": "(0, inf)",
    "shrink_min_gain": "[0, inf)",
    "shrink_min_rows": "[1, inf)",
    "shrink_z": "[0, inf)",
    "loss_ou": "[0, inf)",
    "loss_ah": "[0, inf)",
    "loss_goal_diff": "[0, inf)",
    "balance_weight": "[0, inf)",
    "entropy_weight": "[0, inf)",
}


@dataclass(frozen=True)
class _BatchInputs:
    """What one batch is built from, whichever way the rows came (a frame or mappings)."""

    values: dict[str, np.ndarray]  # float feature column by name, each (n,)
    home: np.ndarray  # (n,) team names
    away: np.ndarray
    league: np.ndarray  # (n,) league names
    minute: np.ndarray  # (n,) int64 kick-off minutes since the epoch, UTC


@dataclass
class TeamHistory:
    """Every stored match twice (once per team), sorted by team then kick-off.

    ``window`` gathers, for each query (team, kick-off), the team's last ``W`` matches that
    kicked off strictly earlier: the fixture's own result and anything later never enter.
    """

    team_names: list[str]
    team: np.ndarray  # (m,) int64 team code
    kickoff_min: np.ndarray  # (m,) int64 minutes since the epoch, UTC
    state: np.ndarray  # (m, _N_STORED) float32
    # Derived once: a server's one-fixture query should not rebuild them (~0.2 ms each time).
    _codes: dict[str, int] = field(init=False, repr=False)
    _keys: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._codes = {name: i for i, name in enumerate(self.team_names)}
        self._keys = self.team * _KEY_STRIDE + self.kickoff_min

    @classmethod
    def build(cls, X: pd.DataFrame, y_goals: np.ndarray) -> TeamHistory:
        """Team-perspective match states from feature rows ``X`` and their goals (n, 2).

        Raises
        ------
        ValueError
            For a column of :data:`HISTORY_COLUMNS` missing, bad goals (`check_goals`) or a
            ``match_id`` that repeats (`_check_unique_matches`).
        """
        missing = [c for c in HISTORY_COLUMNS if c not in X.columns]
        if missing:
            raise ValueError(f"feature frame lacks columns {missing} needed for match histories")
        n = len(X)
        goals = check_goals(X, y_goals)
        _check_unique_matches(X)
        home = X["home_team"].astype(str).to_numpy()
        away = X["away_team"].astype(str).to_numpy()
        names = sorted(set(home) | set(away))
        codes = {name: i for i, name in enumerate(names)}
        minute = _kickoff_minutes(X)
        # A price outside [0, 1] (or not finite) is no price: the match counts as unpriced.
        p = _probability_or_nan(
            np.column_stack(
                [X[c].to_numpy(dtype=float) for c in MARKET_COLUMNS[MarketKind.ONE_X_TWO]]
            )
        )
        over = _probability_or_nan(X["mkt_ou25_over"].to_numpy(dtype=float))
        unpriced_1x2 = np.isnan(p).any(axis=1)  # (n,)
        price_missing = unpriced_1x2 | np.isnan(over)
        # One bad entry unprices the row's whole 1X2 market (as `fill_unpriced` does for the
        # heads): a 1/3 beside two real prices summed to 1.18 and skewed points_minus_expected.
        p = np.where(unpriced_1x2[:, None], 1.0 / 3.0, p)
        over = np.where(np.isnan(over), 0.5, over)
        # An infinite feature is a missing one (NaN), as below: nan_to_num alone would keep it
        # as +-1.8e308 (inf in float32), and one such match turns a team's forecasts NaN.
        line = np.nan_to_num(_finite_or_nan(X["ah_line"].to_numpy(dtype=float)), nan=0.0)
        elo = _finite_or_nan(
            np.column_stack([X["elo_home"].to_numpy(float), X["elo_away"].to_numpy(float)])
        )
        rest = _finite_or_nan(
            np.column_stack(
                [X["home_rest_days"].to_numpy(float), X["away_rest_days"].to_numpy(float)]
            )
        )
        rest = np.nan_to_num(rest, nan=21.0)
        blocks = []
        for side in (0, 1):  # 0: the home team's view, 1: the away team's
            other = 1 - side
            gf, ga = goals[:, side], goals[:, other]
            p_win, p_lose = (p[:, 0], p[:, 2]) if side == 0 else (p[:, 2], p[:, 0])
            points = np.where(gf > ga, 3.0, np.where(gf == ga, 1.0, 0.0))
            blocks.append(
                np.column_stack(
                    [
                        np.minimum(gf, 6.0) / 2.0,
                        np.minimum(ga, 6.0) / 2.0,
                        (points - 3.0 * p_win - p[:, 1]) / 3.0,
                        p_win,
                        p[:, 1],
                        p_lose,
                        over,
                        (elo[:, other] - elo[:, side]) / 200.0,
                        (elo[:, side] - 1500.0) / 200.0,
                        np.full(n, 1.0 if side == 0 else 0.0),
                        np.minimum(rest[:, side], 21.0) / 21.0,
                        (line if side == 0 else -line) / 2.0,
                        price_missing.astype(float),
                    ]
                )
            )
        team = np.concatenate([[codes[t] for t in home], [codes[t] for t in away]]).astype(np.int64)
        kickoff = np.concatenate([minute, minute])
        state = np.nan_to_num(np.concatenate(blocks), nan=0.0).astype(np.float32)
        order = np.lexsort((kickoff, team))
        return cls(names, team[order], kickoff[order], state[order])

    def window(
        self, teams: np.ndarray, kickoff_min: np.ndarray, length: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Histories for queries, left-padded: (seq (q, W, F) float32, valid (q, W) bool).

        Parameters
        ----------
        teams
            Team names, shape (q,); a team never seen gets an all-padding history.
        kickoff_min
            Query kick-off minutes, shape (q,); only matches strictly earlier are used.
        length
            ``W``.
        """
        code = np.array([self._codes.get(str(t), -1) for t in teams], dtype=np.int64)
        known = code >= 0
        keys = self._keys
        safe = np.where(known, code, 0)
        end = np.searchsorted(keys, safe * _KEY_STRIDE + kickoff_min, side="left")  # (q,)
        start = np.searchsorted(keys, safe * _KEY_STRIDE, side="left")  # (q,)
        idx = end[:, None] - length + np.arange(length)[None, :]  # (q, W), oldest first
        valid = (idx >= start[:, None]) & known[:, None]
        idx = np.clip(idx, 0, max(len(keys) - 1, 0))
        q = len(code)
        seq = np.zeros((q, length, len(SEQUENCE_FEATURES)), dtype=np.float32)
        if len(keys):
            seq[..., :_N_STORED] = self.state[idx]
            age_days = (kickoff_min[:, None] - self.kickoff_min[idx]) / 1440.0
            seq[..., _N_STORED] = np.clip(age_days / 365.25, 0.0, 3.0)
        seq *= valid[..., None]
        return seq, valid


class NeuralModel(BaseEstimator):  # type: ignore[misc]
    """Selective state-space + attention over both teams' recent matches, experts, multi-task heads.

    For each fixture the network reads the home and the away team's last ``window`` matches
    (each a vector of :data:`SEQUENCE_FEATURES`, all known before the fixture's kick-off) and
    the fixture's own pre-match features; a mixture of experts refines the context, and every
    market's logits are the de-margined pre-match log-probabilities plus a learned correction
    (boosted from the market, like :class:`~marketcast.models.gbm.LightGBMModel`'s init score).

    Training: AdamW on the joint loss (:func:`~marketcast.models.nn.network.multitask_loss`),
    early stopping on the latest ``validation_fraction`` of rows by kick-off (the weights of the
    best epoch are kept; an untrained, market-equal network is a candidate too). Then, per
    market, the learned part of the logits is shrunk towards the market by the factor in [0, 1]
    that minimises the validation log loss (``shrink_to_market``; 0 means the market itself).
    A market with fewer than ``shrink_min_rows`` validation rows (200, as many as LightGBM's
    early stopping needs) cannot vouch for the learned part and gets 0: on a short history
    the forecast is the market.
    With ``warm_start=True`` a refit continues from the previous weights for ``warm_epochs`` at
    ``warm_learning_rate`` over the latest ``warm_rows`` training rows (all when None), keeping
    the first fit's feature layout.
    The match history used to build sequences is the training data of the last fit.

    ``target="closing"`` trains each market's cross-entropy on the closing line instead of the
    results: an earlier match's de-margined closing probabilities are its soft label, so the
    network learns where the price moved between the pre-match snapshot and kick-off, a far
    less noisy target than one drawn result. Early stopping and the shrink towards the market
    measure the same cross-entropy on the validation rows. It stays a target: the inputs are
    the same pre-match ones, and a forecast never sees its own match's closing price. Rows
    without a closing price drop out of that market's term only (they still feed the team
    histories and the goal-difference term), and a market whose training rows hold fewer than
    ``MIN_CLOSING_ROWS`` closing prices falls back to the results (``target_used_``).
    """

    def __init__(
        self,
        *,
        window: int = 10,
        d_model: int = 32,
        n_layers: int = 1,
        n_heads: int = 2,
        d_state: int = 4,
        expand: int = 1,
        n_experts: int = 4,
        top_k: int = 2,
        min_gate_weight: float = 0.1,
        n_band_heads: int = 5,
        band_z: float = 1.645,
        dropout: float = 0.1,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-2,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 3,
        validation_fraction: float = 0.1,
        warm_start: bool = False,
        warm_epochs: int = 2,
        warm_rows: int | None = 10_000,
        warm_learning_rate: float = 5e-4,
        shrink_to_market: bool = True,
        shrink_min_gain: float = 1e-4,
        shrink_min_rows: int = 200,
        shrink_z: float = 0.0,
        target: str = "result",
        loss_ou: float = 0.5,
        loss_ah: float = 0.5,
        loss_goal_diff: float = 0.05,
        balance_weight: float = 0.05,
        entropy_weight: float = 0.01,
        random_state: int = 0,
        n_jobs: int = 2,
        device: str | None = None,
        deterministic: bool = False,
    ) -> None:
        self.window = window
        self.d_model = d_model
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.d_state = d_state
        self.expand = expand
        self.n_experts = n_experts
        self.top_k = top_k
        self.min_gate_weight = min_gate_weight
        self.n_band_heads = n_band_heads
        self.band_z = band_z
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.warm_start = warm_start
        self.warm_epochs = warm_epochs
        self.warm_rows = warm_rows
        self.warm_learning_rate = warm_learning_rate
        self.shrink_to_market = shrink_to_market
        self.shrink_min_gain = shrink_min_gain
        self.shrink_min_rows = shrink_min_rows
        self.shrink_z = shrink_z
        self.target = target
        self.loss_ou = loss_ou
        self.loss_ah = loss_ah
        self.loss_goal_diff = loss_goal_diff
        self.balance_weight = balance_weight
        self.entropy_weight = entropy_weight
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.device = device
        self.deterministic = deterministic

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        self._check_param_values()
        if not device_available(self.device):  # it failed mid-fit inside torch
            raise ValueError(
                f"device {self.device!r} is not available here (CUDA: "
                f"{torch.cuda.is_available()}); use None (the best one present) or 'cpu'"
            )

    def _check_param_values(self) -> None:
        """:meth:`check_params` without the device, which an artifact need not find on the
        machine that loads it (:meth:`from_artifact` falls back to that machine's default)."""
        check_param_ranges(self, _PARAM_RANGES)
        if self.top_k > self.n_experts:
            raise ValueError(f"top_k must be <= n_experts={self.n_experts}, got {self.top_k}")
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model must be a multiple of n_heads={self.n_heads}, got {self.d_model}"
            )
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: np.ndarray, closing: ClosingTargets | None = None) -> Self:
        """Fit on rows in time order; ``y`` is (n, 2) home and away goals.

        ``closing`` (per market, (n, k) de-margined closing probabilities aligned with ``X``) is
        required with ``target="closing"`` and ignored otherwise.
        """
        self.check_params()
        if len(X) == 0:  # it "fitted" base rates of 1/3 and forecast the market
            raise ValueError("no training rows: fit needs at least one match with a result")
        check_no_outcome_columns(X)
        check_goals(X, y)  # rows named in the caller's order, before sorting
        _check_unique_matches(X)  # before any state changes, as TeamHistory.build would refuse
        y = np.asarray(y)
        order = _training_order(X)
        X, y = X.iloc[order], y[order]
        soft = closing_in_training_order(self.target, closing, order)
        self._drop_onnx()  # the session holds the old weights; use_onnx again
        warm = self.warm_start and hasattr(self, "network_")
        if warm:
            self._check_network_params()  # a warm refit trains the network it has
        else:
            self._freeze_layout(X)
        self.base_rates_ = {
            m.value: base_rates(market_labels(m, X, y), n_outcomes(m)).tolist() for m in MarketKind
        }
        self.history_ = TeamHistory.build(X, y)
        self.n_fits_ = getattr(self, "n_fits_", 0) + 1 if warm else 1
        n_valid = int(len(X) * self.validation_fraction)
        if n_valid < _MIN_VALIDATION_ROWS:
            n_valid = 0  # too few rows to judge: train the full budget, keep the last weights
        n_train = len(X) - n_valid
        first = 0
        if warm and self.warm_rows is not None:
            # A warm refit fine-tunes on the latest training rows (the validation slice stays
            # the latest ``validation_fraction`` of all rows); histories still use every row.
            first = max(0, n_train - self.warm_rows)
        X, y = X.iloc[first:], y[first:]
        soft = {market: p[first:] for market, p in soft.items()}
        device = self._device()
        # Deterministic kernels and the seeds for this fit only: the caller's torch setting and
        # random streams come back after.
        with _torch_threads(self.n_jobs), restored_determinism(), restored_random_state():
            seed_everything(self.random_state + self.n_fits_ - 1, self.deterministic)
            batch = self.make_batch(X)  # (rows used, ...) on ``device``
            targets = self._targets(X, y, soft, device)
            if not warm:
                self.network_ = FootballNet(self._net_config()).to(device)
            self._apply_band_z(self.band_z)  # a warm refit takes the current parameter too
            self.network_.head.shrink.fill_(1.0)
            epochs = self.warm_epochs if warm else self.max_epochs
            learning_rate = self.warm_learning_rate if warm else self.learning_rate
            self._train(batch, targets, n_train - first, epochs, learning_rate)
            if not warm:
                _unseen_league_as_the_average(self.network_)
            self._fit_shrink(batch, targets, n_train - first)
        self.classes_ = CLASSES_1X2
        return self

    def _train(
        self,
        batch: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
        n_train: int,
        epochs: int,
        learning_rate: float,
    ) -> None:
        """AdamW on rows ``[0, n_train)``, early stopping on the rest; keeps the best weights."""
        net = self.network_
        n = len(targets["w_1x2"])
        n_valid = n - n_train
        valid_idx = torch.arange(n_train, n, device=targets["w_1x2"].device)
        if n_valid and not bool((targets["w_1x2"][valid_idx] > 0).any()):
            # its log loss is NaN, which never improves: early stopping restored the untrained
            # starting weights after ``patience`` epochs
            log.warning(
                "neural fit: none of the %d validation rows has a 1X2 target (closing prices "
                "missing?): training the full %d epochs without early stopping",
                n_valid,
                epochs,
            )
            n_valid = 0
        weights = LossWeights(
            ou=self.loss_ou,
            ah=self.loss_ah,
            goal_diff=self.loss_goal_diff,
            balance=self.balance_weight,
            entropy=self.entropy_weight,
        )
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=learning_rate, weight_decay=self.weight_decay, fused=True
        )
        generator = torch.Generator().manual_seed(self.random_state + self.n_fits_)
        best_loss = self._log_loss(batch, targets, valid_idx) if n_valid else float("inf")
        best_state = copy.deepcopy(net.state_dict())
        best_epoch, bad_epochs = 0, 0
        self.training_log_: list[dict[str, float]] = []
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            net.train()
            perm = torch.randperm(n_train, generator=generator).to(valid_idx.device)
            sums: dict[str, float] = {}
            n_batches = 0
            for start in range(0, n_train, self.batch_size):
                idx = perm[start : start + self.batch_size]
                out = net(_take(batch, idx))
                loss, parts = multitask_loss(out, _take(targets, idx), weights)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optimiser.step()
                for key, value in parts.items():
                    sums[key] = sums.get(key, 0.0) + value
                n_batches += 1
            seconds = time.perf_counter() - t0
            val_loss = self._log_loss(batch, targets, valid_idx) if n_valid else float("nan")
            record = {"epoch": float(epoch), "seconds": seconds, "val_log_loss_1x2": val_loss}
            record.update({k: v / max(n_batches, 1) for k, v in sums.items()})
            self.training_log_.append(record)
            log.info(
                "neural fit %d epoch %d: %.1f s, train CE 1x2 %.4f, val log loss %.4f",
                self.n_fits_,
                epoch,
                seconds,
                record.get("ce_1x2", float("nan")),
                val_loss,
            )
            if not n_valid:
                best_state, best_epoch = copy.deepcopy(net.state_dict()), epoch
                continue
            if val_loss < best_loss - 1e-5:
                best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                bad_epochs += 1
                if bad_epochs >= self.patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        self.best_epoch_ = best_epoch
        self.best_val_log_loss_ = best_loss if n_valid else float("nan")

    def _fit_shrink(
        self, batch: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], n_train: int
    ) -> None:
        """Per market, the factor in [0, 1] on the learned part minimising validation log loss.

        Like LightGBM's early stopping at zero trees, a network that does not beat the market
        on the validation slice is shrunk back to it. The log loss is against the targets the
        market trained on (results or closing prices), over the rows its term weights. A market
        with fewer than ``shrink_min_rows`` validation rows (no slice at all on a short
        history) cannot vouch for the learned part: it gets 0, the market, like LightGBM on too
        few rows. With ``shrink_to_market=False`` every factor stays 1.
        """
        head = self.network_.head
        n = len(targets["w_1x2"])
        self.shrink_: dict[str, float] = {m.value: 1.0 for m in _LOGIT_KEYS}
        if not self.shrink_to_market:
            return
        idx = torch.arange(n_train, n, device=targets["w_1x2"].device)
        out = None  # no market can pass the bar on a shorter slice: skip the forward pass
        if len(idx) >= self.shrink_min_rows:
            with torch.no_grad():
                out = self.network_(_take(batch, idx))
        for j, (market, key) in enumerate(_LOGIT_KEYS.items()):
            p_key, w_key = _TARGET_KEYS[market]
            keep = targets[w_key][idx].cpu().numpy() > 0
            if out is None or keep.sum() < self.shrink_min_rows:
                log.info(
                    "neural %s: %d validation rows are too few to judge the network; "
                    "the forecast stays the market price",
                    market.value,
                    int(keep.sum()),
                )
                self.shrink_[market.value] = 0.0
                head.shrink[j] = 0.0
                continue
            target_p = targets[p_key][idx].cpu().double().numpy()[keep]
            prior = batch[_MARKET_KEYS[market]][idx].cpu().double().numpy()[keep]
            learned = out[key].cpu().double().numpy()[keep] - prior
            self.shrink_[market.value] = _best_shrink(
                prior, learned, target_p, min_gain=self.shrink_min_gain, z=self.shrink_z
            )
            head.shrink[j] = self.shrink_[market.value]

    def _log_loss(
        self, batch: dict[str, torch.Tensor], targets: dict[str, torch.Tensor], idx: torch.Tensor
    ) -> float:
        """1X2 log loss of the averaged logits on rows ``idx`` (eval mode, no gradients).

        Cross-entropy against the 1X2 training targets (results or closing prices), weighted
        like the training term; NaN when no row of ``idx`` has weight.
        """
        net = self.network_
        net.eval()
        total, weight = 0.0, 0.0
        with torch.no_grad():
            for start in range(0, len(idx), _PREDICT_BATCH):
                part = idx[start : start + _PREDICT_BATCH]
                logits = net(_take(batch, part))["logits_1x2"]
                ce = F.cross_entropy(logits, targets["p_1x2"][part], reduction="none")
                row_weights = targets["w_1x2"][part]
                total += float((row_weights * ce).sum())
                weight += float(row_weights.sum())
        return total / weight if weight > 0 else float("nan")

    # -- inputs ----------------------------------------------------------------------------
    def _freeze_layout(self, X: pd.DataFrame) -> None:
        """Choose and scale the fixture features once; warm refits keep this layout."""
        names = [c for c in X.columns if c not in _IDENTITY and pd.api.types.is_numeric_dtype(X[c])]
        # Infinite values are missing ones: one inf would make a column's mean inf; so are
        # market probabilities outside [0, 1] (as in every batch, see ``_inputs``).
        values = _finite_or_nan(np.column_stack([X[c].to_numpy(dtype=float) for c in names]))
        _unprice_out_of_range(values, names)
        with np.errstate(all="ignore"):
            mean = np.nanmean(values, axis=0)
            std = np.nanstd(values, axis=0)
        mean = np.nan_to_num(mean, nan=0.0)
        std = np.where(np.isfinite(std) & (std > 1e-9), std, 1.0)
        self.static_features_ = names
        self.static_mean_ = mean.tolist()
        self.static_std_ = std.tolist()
        self.missing_indicators_ = [c for j, c in enumerate(names) if np.isnan(values[:, j]).any()]
        self.leagues_ = sorted(X["league"].astype(str).unique().tolist())

    def _check_network_params(self) -> None:
        """Raise ``ValueError`` when a parameter the network holds was changed after the fit.

        ``set_params(window=8)`` on a model fitted with 4 built 8-bar histories for a 4-row
        position table: every forecast crashed with a tensor-size error, and the artifact
        saved and loaded first.
        """
        changed = [
            name
            for name in _NETWORK_PARAMS
            if getattr(self, name) != getattr(self.network_.config, name)
        ]
        if changed:
            name = changed[0]
            raise ValueError(
                f"{name} is {getattr(self, name)!r} but the network was fitted with "
                f"{getattr(self.network_.config, name)!r}: fit again (warm_start=False) or set "
                f"{name} back"
            )

    def _net_config(self) -> NetConfig:
        return NetConfig(
            n_seq_features=len(SEQUENCE_FEATURES),
            n_static_features=len(self.static_features_) + len(self.missing_indicators_),
            n_leagues=len(self.leagues_),
            window=self.window,
            d_model=self.d_model,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            d_state=self.d_state,
            expand=self.expand,
            n_experts=self.n_experts,
            top_k=self.top_k,
            min_gate_weight=self.min_gate_weight,
            n_band_heads=self.n_band_heads,
            band_z=self.band_z,
            dropout=self.dropout,
        )

    def make_batch(self, X: pd.DataFrame) -> dict[str, torch.Tensor]:
        """The network's input tensors for feature rows ``X`` (on the model's device).

        Histories come from the stored match history (the last fit's training rows, or
        :meth:`update_history`), strictly before each row's kick-off.

        Returns
        -------
        dict
            ``home_seq`` / ``away_seq`` (n, W, F) float32, ``home_valid`` / ``away_valid``
            (n, W) bool, ``static`` (n, S) float32, ``league`` (n,) int64 and the de-margined
            pre-match log-probabilities ``market_1x2`` (n, 3), ``market_ou`` / ``market_ah``
            (n, 2).
        """
        require_fitted(self, "history_")
        return _on_device(self._batch_arrays(self._inputs(X)), self._device())

    def _input_columns(self) -> list[str]:
        """The float feature columns a batch reads, each once."""
        markets = [c for m in MarketKind for c in MARKET_COLUMNS[m]]
        return list(dict.fromkeys([*self.static_features_, *self.missing_indicators_, *markets]))

    def _inputs(self, X: FeatureSource) -> _BatchInputs:
        """What a batch is built from, read from a feature frame or a server's feature rows."""
        columns = self._input_columns()
        # One block read: column by column cost ~25 us each, most of a one-fixture forecast.
        # An infinite value is a missing one (NaN): the missing-value handling takes it; so is
        # a market probability outside [0, 1], which leaves its market unpriced.
        matrix = _finite_or_nan(feature_matrix(X, columns))
        _unprice_out_of_range(matrix, columns)
        home, away, league = feature_matrix(X, ("home_team", "away_team", "league"), str).T
        if isinstance(X, pd.DataFrame):
            minute = _kickoff_minutes(X)
        else:
            kickoff = feature_matrix(X, ("kickoff_utc",), object)[:, 0]
            minute = np.array([_minute(k, row=i) for i, k in enumerate(kickoff)], dtype=np.int64)
        return _BatchInputs(
            values={c: matrix[:, i] for i, c in enumerate(columns)},
            home=home,
            away=away,
            league=league,
            minute=minute,
        )

    def _batch_arrays(self, inputs: _BatchInputs) -> dict[str, np.ndarray]:
        """The :meth:`make_batch` arrays (NumPy, in :data:`BATCH_KEYS` order) for ``inputs``."""
        home_seq, home_valid = self.history_.window(inputs.home, inputs.minute, self.window)
        away_seq, away_valid = self.history_.window(inputs.away, inputs.minute, self.window)
        n = len(inputs.minute)
        values = np.column_stack([inputs.values[c] for c in self.static_features_]).reshape(
            n, len(self.static_features_)
        )
        z = np.clip((values - np.asarray(self.static_mean_)) / np.asarray(self.static_std_), -5, 5)
        flags = [np.isnan(inputs.values[c]) for c in self.missing_indicators_]
        static = np.column_stack([np.nan_to_num(z, nan=0.0), *flags]) if flags else np.nan_to_num(z)
        codes = {name: i for i, name in enumerate(self.leagues_)}
        unknown = len(self.leagues_)  # the league embedding's spare row
        league = np.array([codes.get(name, unknown) for name in inputs.league], dtype=np.int64)
        return {
            "home_seq": home_seq,
            "home_valid": home_valid,
            "away_seq": away_seq,
            "away_valid": away_valid,
            "static": static.astype(np.float32),
            "league": league,
            "market_1x2": self._market_logp(inputs, MarketKind.ONE_X_TWO),
            "market_ou": self._market_logp(inputs, MarketKind.OVER_UNDER_25),
            "market_ah": self._market_logp(inputs, MarketKind.ASIAN_HANDICAP),
        }

    def _market_logp(self, inputs: _BatchInputs, market: MarketKind) -> np.ndarray:
        """De-margined pre-match log-probabilities (n, k); unpriced rows get the base rates.

        A row with a probability outside [0, 1] (or not finite) is unpriced too.
        """
        columns = MARKET_COLUMNS[market]
        p = np.column_stack([inputs.values[c] for c in columns]).reshape(-1, len(columns))
        p = fill_unpriced(_probability_or_nan(p), self.base_rates_[market.value])
        return np.log(np.clip(p, 1e-6, 1.0)).astype(np.float32)

    def _targets(
        self, X: pd.DataFrame, y: np.ndarray, closing: dict[str, np.ndarray], device: torch.device
    ) -> dict[str, torch.Tensor]:
        """The :func:`multitask_loss` targets of rows ``X``; records ``target_used_``.

        ``closing`` holds, per market value, closing probabilities aligned with ``X`` (empty
        unless ``target="closing"``).
        """
        goal_diff = np.clip(y[:, 0].astype(float) - y[:, 1].astype(float), -6, 6)
        arrays = {
            "goal_diff": goal_diff.astype(np.float32),
            "boot": bootstrap_weights(
                X["match_id"].astype(str).to_numpy(), self.n_band_heads, self.random_state
            ),
        }
        self.target_used_: dict[str, str] = {}
        self.n_training_rows_: dict[str, int] = {}
        for market, (p_key, w_key) in _TARGET_KEYS.items():
            target_p, keep, used = training_targets(
                market_labels(market, X, y),
                closing.get(market.value),
                n_outcomes(market),
                name=f"neural {market.value}",
            )
            weight = keep.astype(np.float32)
            if used == "result":  # a quarter line's half win counts half (the fair price's)
                weight *= market_label_weights(market, X, y).astype(np.float32)
            arrays[p_key], arrays[w_key] = target_p.astype(np.float32), weight
            self.target_used_[market.value] = used
            self.n_training_rows_[market.value] = int(keep.sum())
        return _on_device(arrays, device)

    def update_history(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Replace the match history sequences are built from, without retraining.

        Use it to give a fitted model results that arrived after its last fit: pass every
        match to keep once. A repeated ``match_id`` (training rows concatenated with an
        overlapping newer pull) raises ``ValueError`` and leaves the history as it was.
        """
        self.history_ = TeamHistory.build(X, np.asarray(y))
        return self

    # -- prediction ------------------------------------------------------------------------
    def predict_outputs(self, X: FeatureSource) -> dict[str, np.ndarray]:
        """Every head's output for ``X`` as NumPy arrays (eval mode, batched).

        Keys: :data:`~marketcast.models.nn.network.FLAT_OUTPUTS` (``logits_1x2``,
        ``logits_1x2_members``, ``logits_ou``, ``logits_ah``, ``goal_diff``, ``band_low``,
        ``band_high``, ``band_std``, ``context``, ``gate_probs`` and ``gate_weights``).
        """
        require_fitted(self, "network_")
        self._check_network_params()
        return self._outputs(self._batch_arrays(self._inputs(X)))

    def _outputs(self, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """:meth:`predict_outputs` for :meth:`_batch_arrays`; small batches via onnxruntime."""
        n = len(arrays["league"])
        session: OnnxSession | None = getattr(self, "onnx_session_", None)
        if session is not None and 0 < n <= self.onnx_max_rows_:
            if not self._onnx_source_.matches(self.network_):
                # The network was edited since the export (a band_z, the shrink factors,
                # load_state_dict): export again, or small batches would answer with old weights.
                log.info("neural network changed since its ONNX export: exporting it again")
                self.use_onnx(max_rows=self.onnx_max_rows_, threads=self.onnx_threads_)
                session = self.onnx_session_
            return {k: np.asarray(v, dtype=np.float64) for k, v in session.run(arrays).items()}
        net = self.network_
        net.eval()
        device = self._device()
        batch = _on_device(arrays, device)
        chunks: dict[str, list[np.ndarray]] = {}
        # A handful of rows (a server's request) runs faster on one thread: OpenMP workers
        # waiting on a busy core turned a 5 ms forecast into 130 ms under load.
        threads = self.n_jobs if n >= SMALL_BATCH_ROWS else 1
        with _torch_threads(threads), torch.no_grad():
            for start in range(0, max(n, 1), _PREDICT_BATCH):  # one pass even when empty
                idx = torch.arange(start, min(start + _PREDICT_BATCH, n), device=device)
                for key, value in flat_outputs(net(_take(batch, idx))).items():
                    chunks.setdefault(key, []).append(value.detach().cpu().double().numpy())
        return {k: np.concatenate(v) for k, v in chunks.items()}

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n_matches, 3) in ``classes_`` order."""
        p = self.predict_market_proba(X, MarketKind.ONE_X_TWO)
        assert p is not None
        return p

    def predict_market_proba(self, X: FeatureSource, market: MarketKind) -> np.ndarray | None:
        """Probabilities per outcome of ``market`` (1X2, over/under 2.5, Asian handicap)."""
        logits = self.predict_outputs(X)[_LOGIT_KEYS[MarketKind(market)]]
        return np.asarray(softmax(logits, axis=1), dtype=float)

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> np.ndarray | None:
        """:meth:`predict_market_proba` on feature rows as mappings (the server's fast path)."""
        return self.predict_market_proba(rows, market)

    def use_onnx(self, *, max_rows: int | None = None, threads: int = 1) -> Self:
        """Run batches of 1 to ``max_rows`` rows through onnxruntime instead of torch.

        The fitted network is exported to ONNX in memory (about a second) and every later
        prediction of at most ``max_rows`` rows (default :data:`ONNX_MAX_ROWS`) runs in an
        onnxruntime session on ``threads`` CPU threads; larger batches stay in torch, which is
        faster there. A model on a GPU exports a CPU copy of its network: one row takes 0.3 ms
        there against 3.5 ms of GPU kernel launches and copies (``bench/gpu.py``), so its
        batches of up to :data:`ONNX_MAX_ROWS_GPU` rows run on the CPU and larger ones on the
        GPU. Forecasts agree with torch's to float32 rounding. A server's choice
        (``marketcast serve`` makes it), not part of the model: the artifact is unchanged, and
        a refit or a copy (pickle, deepcopy) drops the session.

        The session remembers the version of every parameter and buffer it was exported from;
        when the network changes in place afterwards (:meth:`set_band_z`, ``head.band_z``, the
        ``shrink`` buffer, ``load_state_dict``, an optimiser step) the next small batch exports
        it again first, so the answer never depends on the batch size. (Writes through
        ``tensor.data`` bypass the version counter and are not seen: use :meth:`set_band_z` or
        in-place ops under ``torch.no_grad()``.)
        """
        require_fitted(self, "network_")
        network, on_cpu = self.network_.eval(), self._device().type == "cpu"
        if not on_cpu:
            network = copy.deepcopy(network).to("cpu")
        self.onnx_session_ = OnnxSession(
            football_net_onnx_bytes(network, self._example_batch()), intra_op_threads=threads
        )
        if max_rows is None:
            max_rows = ONNX_MAX_ROWS if on_cpu else ONNX_MAX_ROWS_GPU
        self.onnx_max_rows_ = max_rows
        self.onnx_threads_ = threads
        self._onnx_source_ = _WeightsStamp.of(self.network_)
        return self

    def set_band_z(self, band_z: float) -> Self:
        """Set the 1X2 band half-width (in ensemble standard deviations) of a fitted model.

        The calibrated route (:func:`calibrate_band_z`): it sets the ``band_z`` parameter, the
        head's ``band_z`` buffer and the network's config together, so the value survives a
        warm refit, :meth:`to_artifact` / :meth:`from_artifact` and a pickle; an active ONNX
        session is exported again at once.

        Raises
        ------
        ValueError
            For a ``band_z`` that is negative or not finite (the message :meth:`check_params`
            gives), with the model left as it was: a negative one inverted the band and a NaN
            one made its edges NaN, and either was saved in an artifact.
        """
        require_fitted(self, "network_")
        value = float(band_z)
        check_param_ranges(NeuralModel(band_z=value), {"band_z": _PARAM_RANGES["band_z"]})
        self.band_z = value
        self._apply_band_z(self.band_z)
        if getattr(self, "onnx_session_", None) is not None:
            self.use_onnx(max_rows=self.onnx_max_rows_, threads=self.onnx_threads_)
        return self

    def _apply_band_z(self, band_z: float) -> None:
        """Put ``band_z`` into the head's buffer and the network's config."""
        net = self.network_
        net.head.band_z = band_z
        net.config = dataclasses.replace(net.config, band_z=float(band_z))

    def _drop_onnx(self) -> None:
        for key in _ONNX_STATE:
            self.__dict__.pop(key, None)

    def __getstate__(self) -> dict[str, Any]:
        # An onnxruntime session does not pickle: a copy (pickle, deepcopy) runs in torch
        # until it calls use_onnx itself. ``object.__getstate__`` returns the live __dict__:
        # copy it, or pickling would drop the original's session too.
        state: dict[str, Any] = dict(super().__getstate__())
        for key in _ONNX_STATE:
            state.pop(key, None)
        return state

    def _example_batch(self) -> dict[str, torch.Tensor]:
        """Two rows of the network's inputs to trace it on: one full history, one empty."""
        cfg = self.network_.config
        n, w = 2, self.window
        valid = torch.zeros(n, w, dtype=torch.bool)
        valid[0] = True
        valid[1, -1] = True
        batch = {
            "home_seq": torch.zeros(n, w, cfg.n_seq_features),
            "home_valid": valid,
            "away_seq": torch.zeros(n, w, cfg.n_seq_features),
            "away_valid": valid.clone(),
            "static": torch.zeros(n, cfg.n_static_features),
            "league": torch.tensor([0, len(self.leagues_)], dtype=torch.int64),
            "market_1x2": torch.full((n, 3), float(np.log(1 / 3))),
            "market_ou": torch.full((n, 2), float(np.log(1 / 2))),
            "market_ah": torch.full((n, 2), float(np.log(1 / 2))),
        }
        return {k: batch[k] for k in BATCH_KEYS}

    def predict_band(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The 1X2 confidence band ``(p_low, p_high)``, each (n, 3); see :class:`MultiTaskHead`."""
        out = self.predict_outputs(X)
        return out["band_low"], out["band_high"]

    def predict_goal_diff(self, X: pd.DataFrame) -> np.ndarray:
        """Expected goal difference (home minus away), shape (n,)."""
        return self.predict_outputs(X)["goal_diff"]

    def routing_by_league(self, X: pd.DataFrame) -> pd.DataFrame:
        """Mean routed gate weight per expert for each league (rows sum to 1), and ``n_matches``.

        Leagues are the domains the experts may specialise on; a row concentrated on one or
        two experts means that league has its own route.
        """
        out = self.predict_outputs(X)
        weights = pd.DataFrame(
            out["gate_weights"], columns=[f"expert_{k}" for k in range(self.n_experts)]
        )
        weights["league"] = X["league"].astype(str).to_numpy()
        table = weights.groupby("league", sort=True).mean()
        table["n_matches"] = weights.groupby("league", sort=True).size()
        return table

    # -- helpers ---------------------------------------------------------------------------
    def _device(self) -> torch.device:
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")

    # -- artifacts -------------------------------------------------------------------------
    def to_artifact(self) -> dict[str, bytes]:
        """State dict (plain tensors, ``torch.save``) plus JSON config; nothing else is pickled.

        Raises
        ------
        ValueError
            For parameters :meth:`check_params` refuses (set after the fit, e.g. through
            ``set_params``) or a head ``band_z`` outside [0, inf): :meth:`from_artifact`
            would refuse the artifact, so it is not written.
        """
        require_fitted(self, "network_")
        try:
            self._check_param_values()
            self._check_network_params()
            # The head's buffer is saved as the config's band_z (set on the head directly too).
            check_param_ranges(
                NeuralModel(band_z=self.network_.head.band_z), {"band_z": _PARAM_RANGES["band_z"]}
            )
        except ValueError as exc:
            raise ValueError(f"neural artifact not written: {exc}") from None
        state = _pruning_folded(self.network_.state_dict())
        packed = [k for k, v in state.items() if not isinstance(v, torch.Tensor) or v.is_quantized]
        if packed:  # a dynamic-int8 network's packed weights are not plain tensors
            raise ValueError(
                f"the network holds quantized weights ({packed[0]}, ...): an artifact stores the "
                "fp32 network; save the model before quantize_dynamic_int8 and quantize after "
                "loading, or serve it through ONNX (use_onnx)"
            )
        tensors = {f"net.{k}": v.detach().cpu() for k, v in state.items()}
        tensors["history.team"] = torch.from_numpy(self.history_.team)
        tensors["history.kickoff_min"] = torch.from_numpy(self.history_.kickoff_min)
        tensors["history.state"] = torch.from_numpy(self.history_.state)
        buffer = io.BytesIO()
        torch.save(tensors, buffer)
        # The head's buffer is what the network uses (a band_z set on the head directly too).
        net_config = {**self.network_.config.to_dict(), "band_z": self.network_.head.band_z}
        meta = {
            "params": self.get_params(),
            "net_config": net_config,
            "static_features": self.static_features_,
            "static_mean": self.static_mean_,
            "static_std": self.static_std_,
            "missing_indicators": self.missing_indicators_,
            "leagues": self.leagues_,
            "base_rates": self.base_rates_,
            "team_names": self.history_.team_names,
            "sequence_features": list(SEQUENCE_FEATURES),
            "n_fits": self.n_fits_,
            "best_epoch": self.best_epoch_,
            "best_val_log_loss": self.best_val_log_loss_,
            "shrink": self.shrink_,
            "target_used": self.target_used_,
            "n_training_rows": self.n_training_rows_,
        }
        # Strict JSON: a NaN (no validation slice) is written as null.
        return {"neural.json": json_bytes(nan_to_none(meta)), "neural_state.pt": buffer.getvalue()}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output (``torch.load(weights_only=True)``).

        Raises
        ------
        ValueError
            Naming the file and what is wrong: a file missing or unreadable, a key missing
            from ``neural.json``, a tensor of another shape than the network's, or files that
            disagree (team names that do not cover the stored history, leagues or feature
            scalings of another length than the network's inputs), a weight or history state
            that is not finite, a head ``band_z`` outside [0, inf) or shrink factors outside
            [0, 1]. Such an artifact failed deep inside torch or NumPy, or loaded and forecast
            other numbers (or NaN) silently.
        """
        missing = [name for name in _ARTIFACT_FILES if name not in files]
        if missing:
            raise ValueError(
                f"neural artifact: {', '.join(missing)} missing (files given: {sorted(files)})"
            )
        meta = _artifact_meta(files["neural.json"])
        tensors = _artifact_tensors(files["neural_state.pt"])
        params = meta["params"]
        try:
            available = device_available(params.get("device"))
        except (RuntimeError, TypeError):  # torch.device("gpu0"): not a device name at all
            raise _artifact_error(
                "neural.json", f"params.device {params.get('device')!r} is not a torch device"
            ) from None
        if not available:
            # Trained on a GPU, served on a machine without one: the weights are plain
            # tensors, so the network loads on this machine's default device instead.
            log.warning(
                "neural artifact asks for device %r, which this machine lacks: loading it on %s",
                params["device"],
                "cuda" if torch.cuda.is_available() else "cpu",
            )
            params = {**params, "device": None}
        try:
            model = cls(**params)
            # Older artifacts hold no band_z buffer: the head keeps the config's band_z then.
            net = FootballNet(NetConfig(**meta["net_config"]))
        except (TypeError, ValueError, RuntimeError) as exc:  # an unknown or missing name
            raise _artifact_error("neural.json", f"params or net_config: {exc}") from None
        try:  # a window of 0 or an unknown target loaded, and forecast, without a word
            model.check_params()
        except ValueError as exc:
            raise _artifact_error("neural.json", f"params: {exc}") from None
        _check_artifact_layout(meta, net.config)
        model.network_ = net
        try:
            model._check_network_params()
        except ValueError as exc:
            raise _artifact_error("neural.json", f"params and net_config: {exc}") from None
        model.static_features_ = meta["static_features"]
        model.static_mean_ = meta["static_mean"]
        model.static_std_ = meta["static_std"]
        model.missing_indicators_ = meta["missing_indicators"]
        model.leagues_ = meta["leagues"]
        model.base_rates_ = meta["base_rates"]
        model.n_fits_ = meta["n_fits"]
        model.best_epoch_ = meta["best_epoch"]
        # null in strict JSON (and a bare NaN in older artifacts): no validation slice.
        best = meta["best_val_log_loss"]
        model.best_val_log_loss_ = float("nan") if best is None else float(best)
        model.shrink_ = meta["shrink"]
        # Artifacts written before closing-line targets existed trained on the results.
        model.target_used_ = meta.get("target_used", {m.value: "result" for m in MarketKind})
        model.n_training_rows_ = meta.get("n_training_rows", {})
        model.history_ = _artifact_history(meta["team_names"], tensors)
        _load_network_state(net, tensors)
        _check_loaded_values(net, model.history_, band_z_stored="net.head.band_z_value" in tensors)
        model.network_ = net.to(model._device()).eval()
        model.classes_ = CLASSES_1X2
        return model


#: The files of a neural artifact (:meth:`NeuralModel.to_artifact`).
_ARTIFACT_FILES = ("neural.json", "neural_state.pt")
#: Keys every ``neural.json`` holds and the JSON types each may have; ``target_used`` and
#: ``n_training_rows`` are optional (artifacts written before them lack them).
_META_TYPES: dict[str, tuple[type, ...]] = {
    "params": (dict,),
    "net_config": (dict,),
    "static_features": (list,),
    "static_mean": (list,),
    "static_std": (list,),
    "missing_indicators": (list,),
    "leagues": (list,),
    "base_rates": (dict,),
    "team_names": (list,),
    "sequence_features": (list,),
    "n_fits": (int,),
    "best_epoch": (int,),
    "best_val_log_loss": (int, float, type(None)),  # null: no validation slice
    "shrink": (dict,),
}
#: ``neural.json`` lists of names.
_META_NAME_LISTS = (
    "static_features",
    "missing_indicators",
    "leagues",
    "team_names",
    "sequence_features",
)
_JSON_KINDS: dict[type, str] = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}
#: The stored history in ``neural_state.pt``: tensor name -> (dtype, number of dimensions).
_HISTORY_TENSORS = {
    "history.team": (torch.int64, 1),
    "history.kickoff_min": (torch.int64, 1),
    "history.state": (torch.float32, 2),
}


def _artifact_error(file: str, what: str) -> ValueError:
    return ValueError(f"neural artifact: {file}: {what}")


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _is_finite_number(value: Any) -> bool:
    """A JSON number that is finite (no NaN, no inf: older files wrote bare ``NaN``)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and np.isfinite(value))


def _artifact_meta(data: bytes) -> dict[str, Any]:
    """``neural.json`` parsed, each required key present with its JSON type (else ValueError)."""
    try:
        meta = json.loads(data)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise _artifact_error("neural.json", f"not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _artifact_error("neural.json", f"{_json_kind(meta)}, not a JSON object")
    for key, types in _META_TYPES.items():
        if key not in meta:
            raise _artifact_error("neural.json", f"missing key {key!r}")
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(_JSON_KINDS[t] for t in types)
            raise _artifact_error("neural.json", f"{key!r} is {_json_kind(value)}, not {wanted}")
    for key in _META_NAME_LISTS:
        if not all(isinstance(name, str) for name in meta[key]):
            raise _artifact_error("neural.json", f"{key!r} holds a value that is not a string")
    if meta["sequence_features"] != list(SEQUENCE_FEATURES):
        raise _artifact_error(
            "neural.json",
            f"built with sequence features {meta['sequence_features']}, this version reads "
            f"{list(SEQUENCE_FEATURES)}",
        )
    return meta


def _artifact_tensors(data: bytes) -> dict[str, torch.Tensor]:
    """``neural_state.pt`` as a dict of plain tensors (``weights_only=True``), else ValueError."""
    not_a_state = "not a torch state dict of tensors"
    try:
        tensors = torch.load(io.BytesIO(data), weights_only=True)
    except Exception as exc:  # foreign bytes raise pickle, zip archive or runtime errors
        # Only the error's type, and no chained cause: torch's text advises loading with
        # weights_only=False, which would run any code the file holds.
        raise _artifact_error("neural_state.pt", f"{not_a_state} ({type(exc).__name__})") from None
    if not isinstance(tensors, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
    ):
        raise _artifact_error("neural_state.pt", not_a_state)
    return tensors


def _check_artifact_layout(meta: Mapping[str, Any], config: NetConfig) -> None:
    """Raise ``ValueError`` when ``neural.json``'s inputs do not fit the network's ``config``.

    Each check is one a fit always passes: the scalings have one value per fixture feature, the
    fixture features and their missing flags are the network's static inputs, the leagues are
    its embedding rows (sorted and distinct, as ``_freeze_layout`` writes them: a league list
    of the right length in another order would give every league another's row) and the base
    rates have one value per outcome.
    """
    names, flags = meta["static_features"], meta["missing_indicators"]
    for key in ("static_mean", "static_std"):
        if len(meta[key]) != len(names):
            raise _artifact_error(
                "neural.json",
                f"{key} has {len(meta[key])} values for {len(names)} static_features",
            )
        if not all(_is_finite_number(v) for v in meta[key]):
            raise _artifact_error("neural.json", f"{key} holds a value that is not a number")
    if not all(v > 0 for v in meta["static_std"]):
        raise _artifact_error("neural.json", "static_std holds a value <= 0")
    if len(set(names)) != len(names):
        raise _artifact_error("neural.json", "static_features name a column twice")
    unknown = sorted(set(flags) - set(names))
    twice = sorted({flag for flag in flags if flags.count(flag) > 1})
    if unknown or twice:
        raise _artifact_error(
            "neural.json",
            f"missing_indicators must be distinct static_features (not {unknown or twice})",
        )
    if config.n_static_features != len(names) + len(flags):
        raise _artifact_error(
            "neural.json",
            f"{len(names)} static_features and {len(flags)} missing_indicators for a network "
            f"that takes {config.n_static_features} (net_config.n_static_features)",
        )
    if config.n_seq_features != len(SEQUENCE_FEATURES):
        raise _artifact_error(
            "neural.json",
            f"net_config.n_seq_features is {config.n_seq_features}, the sequence features are "
            f"{len(SEQUENCE_FEATURES)}",
        )
    leagues = meta["leagues"]
    if leagues != sorted(set(leagues)):
        raise _artifact_error(
            "neural.json", "leagues are not distinct and sorted, as a fit writes them"
        )
    if len(leagues) != config.n_leagues:
        raise _artifact_error(
            "neural.json",
            f"{len(leagues)} leagues for a network trained on {config.n_leagues} "
            "(net_config.n_leagues): the leagues would not match its embedding rows",
        )
    for market in MarketKind:
        rates = meta["base_rates"].get(market.value)
        k = n_outcomes(market)
        if not (isinstance(rates, list) and len(rates) == k and all(map(_is_finite_number, rates))):
            raise _artifact_error(
                "neural.json", f"base_rates[{market.value!r}] is not a list of {k} numbers"
            )


def _artifact_history(team_names: list[str], tensors: Mapping[str, torch.Tensor]) -> TeamHistory:
    """The stored match history, checked against ``team_names`` (else ValueError).

    A fit names the teams sorted and distinct, and every name has matches: names that are not
    exactly the history's team codes 0..n-1 (one dropped, shifting the rest) would give each
    team another's matches and forecast other numbers without an error.
    """
    for key, (dtype, ndim) in _HISTORY_TENSORS.items():
        if key not in tensors:
            raise _artifact_error("neural_state.pt", f"lacks tensor {key}")
        tensor = tensors[key]
        if tensor.dtype != dtype or tensor.dim() != ndim:
            raise _artifact_error(
                "neural_state.pt",
                f"tensor {key} is {tensor.dtype} with {tensor.dim()} dimensions, the history "
                f"needs {dtype} with {ndim}",
            )
    team, kickoff, state = (tensors[key].numpy() for key in _HISTORY_TENSORS)
    if not len(team) == len(kickoff) == len(state) or state.shape[1] != _N_STORED:
        raise _artifact_error(
            "neural_state.pt",
            f"history tensors of shapes {team.shape}, {kickoff.shape} and {state.shape}; the "
            f"history needs (m,), (m,) and (m, {_N_STORED})",
        )
    if team_names != sorted(set(team_names)):
        raise _artifact_error(
            "neural.json", "team_names are not distinct and sorted, as a fit writes them"
        )
    codes = np.unique(team)
    if not np.array_equal(codes, np.arange(len(team_names))):
        held = f"codes {codes.min()} to {codes.max()}" if len(codes) else "no matches"
        raise _artifact_error(
            "neural.json",
            f"{len(team_names)} team_names for a stored history of {len(codes)} teams ({held} "
            "in neural_state.pt): each team would get another's matches",
        )
    if np.any(np.diff(team * _KEY_STRIDE + kickoff) < 0):
        raise _artifact_error("neural_state.pt", "the history is not sorted by team and kick-off")
    return TeamHistory(team_names, team, kickoff, state)


def _load_network_state(net: FootballNet, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load the ``net.*`` tensors into ``net``; a missing, extra or reshaped one is a ValueError."""
    state = {key.removeprefix("net."): v for key, v in tensors.items() if key.startswith("net.")}
    wanted = net.state_dict()
    for key, tensor in wanted.items():
        if key not in state:
            if key == "head.band_z_value":  # older artifacts: the head keeps the config's band_z
                continue
            raise _artifact_error("neural_state.pt", f"lacks tensor net.{key}")
        if state[key].shape != tensor.shape:
            raise _artifact_error(
                "neural_state.pt",
                f"tensor net.{key} has shape {tuple(state[key].shape)}, the network wants "
                f"{tuple(tensor.shape)}",
            )
    extra = sorted(set(state) - set(wanted))
    if extra:
        raise _artifact_error(
            "neural_state.pt",
            f"tensor net.{extra[0]} is not part of the network ({len(extra)} such tensors)",
        )
    net.load_state_dict(state)


def _check_loaded_values(net: FootballNet, history: TeamHistory, *, band_z_stored: bool) -> None:
    """Refuse values no fit writes (else ValueError naming the file and tensor): a non-finite
    weight or history state, a head ``band_z`` outside [0, inf), shrink factors outside [0, 1].

    Only the tensors' kinds and shapes were checked: one NaN weight loaded and forecast NaN for
    every fixture, a band_z of -1 inverted every band, and ``to_artifact`` then refused to save
    what ``from_artifact`` had accepted.
    """
    for key, tensor in net.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise _artifact_error(
                "neural_state.pt", f"tensor net.{key} holds {bad} values that are not finite"
            )
    if not np.isfinite(history.state).all():
        bad = int((~np.isfinite(history.state)).sum())
        raise _artifact_error(
            "neural_state.pt", f"tensor history.state holds {bad} values that are not finite"
        )
    band_z = net.head.band_z
    if not band_z >= 0:  # NaN fails too
        where = (
            "neural_state.pt: tensor net.head.band_z_value"
            if band_z_stored
            else ("neural.json: net_config.band_z")
        )
        raise ValueError(f"neural artifact: {where} is {band_z}, band_z must be in [0, inf)")
    shrink = net.head.shrink
    if bool(((shrink < 0) | (shrink > 1)).any()):
        raise _artifact_error(
            "neural_state.pt",
            f"tensor net.head.shrink is {[round(float(v), 6) for v in shrink]}, each factor must "
            "be in [0, 1]",
        )


def device_available(device: str | None) -> bool:
    """Whether torch can place tensors on ``device`` here (``None``, the default, always can).

    Examples
    --------
    >>> device_available(None), device_available("cpu")
    (True, True)
    """
    if device is None:
        return True
    kind = torch.device(device)
    if kind.type == "cuda":
        index = kind.index or 0
        return torch.cuda.is_available() and index < torch.cuda.device_count()
    if kind.type == "mps":
        return torch.backends.mps.is_available()
    return kind.type == "cpu"


def band_coverage(
    p_low: np.ndarray, p_high: np.ndarray, p_reference: np.ndarray
) -> dict[str, float]:
    """How often a reference probability (the de-margined closing line) lies inside the band.

    Parameters
    ----------
    p_low, p_high
        Band edges, shape (n, k).
    p_reference
        Reference probabilities, shape (n, k); rows with a NaN are skipped (and counted).

    Returns
    -------
    dict
        ``coverage`` over every (row, outcome), ``coverage_<j>`` per outcome column,
        ``mean_width``, ``n`` rows used and ``n_skipped``.

    Examples
    --------
    >>> lo = np.array([[0.4, 0.2, 0.2]]); hi = np.array([[0.5, 0.3, 0.3]])
    >>> band_coverage(lo, hi, np.array([[0.45, 0.25, 0.30]]))["coverage"]
    1.0
    """
    p_low, p_high, p_reference = (np.asarray(a, dtype=float) for a in (p_low, p_high, p_reference))
    keep = ~np.isnan(p_reference).any(axis=1)
    lo, hi, ref = p_low[keep], p_high[keep], p_reference[keep]
    inside = (ref >= lo) & (ref <= hi)
    out = {
        "coverage": float(inside.mean()) if inside.size else float("nan"),
        "mean_width": float((hi - lo).mean()) if inside.size else float("nan"),
        "n": int(keep.sum()),
        "n_skipped": int((~keep).sum()),
    }
    for j in range(ref.shape[1]):
        out[f"coverage_{j}"] = float(inside[:, j].mean()) if len(ref) else float("nan")
    return out


def calibrate_band_z(
    p: np.ndarray, band_std: np.ndarray, p_reference: np.ndarray, target: float = 0.9
) -> float:
    """Band half-width in ensemble standard deviations that covers ``target`` of a reference.

    Fit it on held-back weeks with the de-margined closing line as the reference, then set it
    with ``model.set_band_z(z)`` on the fitted model (the parameter, the head's buffer and any
    ONNX session together, so it survives warm refits and artifacts) and check the coverage on
    later weeks.

    The head computes the band in float32 (``p -+ z * std``, ``z`` a float32 buffer), so each
    (row, outcome) asks for a z a little above its exact distance / spread (by
    `BAND_ROUNDING_SLACK` of its probabilities), and the quantile is rounded up to a float32:
    the band that ``predict_band`` draws with ``z`` covers at least ``target`` of the
    calibration (row, outcome)s. The exact quantile sat on the last one it needed, and float32
    rounding dropped it (coverage 350/390 for a target of 0.9).

    Parameters
    ----------
    p
        Forecast probabilities, shape (n, k).
    band_std
        The ensemble members' standard deviation (``predict_outputs(X)["band_std"]``), (n, k).
    p_reference
        Reference probabilities, (n, k); rows with a NaN are skipped.
    target
        Wanted coverage over every (row, outcome).

    Raises
    ------
    ValueError
        When no row of ``p_reference`` is free of NaN (nothing to calibrate on), or when the
        band has no width (median ``band_std`` below `MIN_BAND_STD`): a model whose
        1X2 ``shrink_`` is 0 forecasts the market with every member, so no z makes its band
        cover anything, and the quantile of distance / spread would be a meaningless huge z.

    Examples
    --------
    >>> p = np.full((4, 1), 0.5); std = np.full((4, 1), 0.125)
    >>> z = calibrate_band_z(p, std, np.array([[0.625], [0.75], [0.875], [1.0]]), target=0.5)
    >>> round(z, 4), z == float(np.float32(z))
    (2.0, True)
    """
    keep = ~np.isnan(p_reference).any(axis=1)
    if not keep.any():  # the quantile of nothing was an IndexError
        raise ValueError("no reference rows to calibrate the band on")
    if float(np.median(band_std[keep])) < MIN_BAND_STD:
        raise ValueError(
            f"the band has no width (median ensemble spread {np.median(band_std[keep]):.2g}): "
            "the members agree, as when shrink_ is 0 and the network forecasts the market, so "
            "no band_z can calibrate it; calibrate a model whose shrink_['1x2'] is above 0"
        )
    p, band_std, p_reference = p[keep], band_std[keep], p_reference[keep]
    slack = BAND_ROUNDING_SLACK * (np.abs(p) + np.abs(p_reference))
    ratio = (np.abs(p_reference - p) + slack) / np.maximum(band_std, 1e-9)
    z = float(np.quantile(ratio, target, method="inverted_cdf"))
    z32 = np.float32(z)  # what the head's buffer holds: never below z
    if float(z32) < z:
        z32 = np.nextafter(z32, np.float32(np.inf))
    return float(z32)


#: An ensemble spread below this (a probability) is no band: `calibrate_band_z` refuses it.
MIN_BAND_STD = 1e-4
#: Float32 rounding of a band edge, per unit of probability (16 float32 epsilons, ~1.9e-6):
#: the head's softmax, ``z * std`` and the subtraction each round by an epsilon or a few;
#: `calibrate_band_z` widens every row's need by this times ``p + p_reference``.
BAND_ROUNDING_SLACK = 16 * float(np.finfo(np.float32).eps)


def bootstrap_weights(match_ids: np.ndarray, n_members: int, seed: int) -> np.ndarray:
    """Poisson(1) bootstrap weight per (match, ensemble member), shape (n, n_members) float32.

    A weight is a hash of the match id, the member and the seed, so a match keeps its weights
    across walk-forward refits and the members stay distinct ensembles.
    """
    h = pd.util.hash_array(np.asarray(match_ids, dtype=object)).astype(np.uint64)
    # P(k <= j) for Poisson(1), j = 0..7; beyond that the weight is 8.
    cdf = np.cumsum([np.exp(-1.0) / float(np.prod(range(1, j + 1))) for j in range(8)])
    out = np.empty((len(h), n_members), dtype=np.float32)
    with np.errstate(over="ignore"):
        for m in range(n_members):
            x = h ^ np.uint64((seed * 1_000_003 + m + 1) * 0x9E3779B97F4A7C15 % 2**64)
            x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            x = x ^ (x >> np.uint64(31))
            u = (x >> np.uint64(11)).astype(np.float64) / 2.0**53
            out[:, m] = np.searchsorted(cdf, u, side="right")
    return out


def _best_shrink(
    prior: np.ndarray,
    learned: np.ndarray,
    target_p: np.ndarray,
    *,
    min_gain: float,
    z: float = 0.0,
) -> float:
    """``a`` in [0, 1] minimising the log loss of ``softmax(prior + a * learned)``.

    The log loss is the mean cross-entropy against ``target_p`` (n, k), rows of probabilities:
    one-hot results or soft closing prices. 0 (the market) unless the best ``a`` lowers it by
    more than ``min_gain`` nats per match (``shrink_min_gain``).
    """

    def loss(a: float) -> float:
        return soft_log_loss(prior + a * learned, target_p)

    result = minimize_scalar(loss, bounds=(0.0, 1.0), method="bounded")
    candidates = {1.0: loss(1.0), float(result.x): float(result.fun)}
    best = min(candidates, key=lambda a: candidates[a])
    # Keep the market unless the network's part helps by more than noise-level gains.
    if loss(0.0) - candidates[best] <= min_gain:
        return 0.0
    if z > 0:
        # ...and by more than z standard errors of the per-row gains: a noisy target (results)
        # needs a larger gain than a smooth one (closing prices) to count as one
        gain = soft_log_loss_per_row(prior, target_p) - soft_log_loss_per_row(
            prior + best * learned, target_p
        )
        if gain.mean() <= z * gain.std(ddof=1) / np.sqrt(len(gain)):
            return 0.0
    return best


def _on_device(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.as_tensor(v).to(device) for k, v in arrays.items()}


def _take(tensors: dict[str, torch.Tensor], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    return {k: v.index_select(0, idx) for k, v in tensors.items()}


def _unseen_league_as_the_average(net: FootballNet) -> None:
    """Set the league embedding's spare row (a league not seen in training) to the mean of the
    trained rows.

    A cold fit never trains that row: a league first met at forecast time got the random
    vector it was initialised with, and its forecasts moved with the seed. The average league
    is the neutral guess. A warm refit trains the row on a league it first meets (Warm start,
    docs/neural.md) and leaves it as it is otherwise.
    """
    rows = net.league.weight
    if len(rows) > 1:  # (no trained row to average without a league in the training rows)
        with torch.no_grad():
            rows[-1] = rows[:-1].mean(dim=0)


def _pruning_folded(state: Mapping[str, Any]) -> dict[str, Any]:
    """``state`` with each pruned tensor as the plain tensor it stands for.

    A network pruned without making it permanent (``magnitude_prune(..., permanent=False)``)
    holds ``weight_orig`` and ``weight_mask`` in place of ``weight``: an artifact stores their
    product under ``weight``, the network the loader builds, which refused an artifact written
    as it was. The live network is left as it is.

    Examples
    --------
    >>> state = {"w_orig": torch.tensor([2.0, 3.0]), "w_mask": torch.tensor([1.0, 0.0]), "b": 1}
    >>> _pruning_folded(state)
    {'b': 1, 'w': tensor([2., 0.])}
    """
    out = dict(state)
    for key in [k for k in state if k.endswith("_orig") and k[: -len("_orig")] + "_mask" in state]:
        name = key[: -len("_orig")]
        out[name] = out.pop(key) * out.pop(name + "_mask")
    return out


def _training_order(X: pd.DataFrame) -> np.ndarray:
    """Row order of a fit: by kick-off, ties by league, home and away team (the loader's order).

    The minibatch shuffle and the validation cut follow this order, so a fit on the same
    matches with the same seed is the same model whatever order the caller's rows came in (a
    stable sort kept the caller's order of same-time kick-offs, and the fit moved with it).

    Examples
    --------
    >>> X = pd.DataFrame({"kickoff_utc": ["2024-01-01 15:00"] * 2 + ["2024-01-01 12:30"],
    ...                   "league": ["E0"] * 3, "home_team": ["Leeds", "Arsenal", "Wolves"]})
    >>> _training_order(X).tolist()
    [2, 1, 0]
    """
    ties = [
        X[name].to_numpy(dtype=object).astype(str)
        for name in ("away_team", "home_team", "league")  # last key sorts first
        if name in X.columns
    ]
    return np.lexsort((*ties, _kickoff_minutes(X)))


def _kickoff_minutes(X: pd.DataFrame) -> np.ndarray:
    """Kick-off as int64 minutes since the epoch (UTC); a missing kick-off is an error."""
    if "kickoff_utc" not in X.columns:
        raise ValueError("feature frame lacks columns ['kickoff_utc']")
    kickoff = pd.to_datetime(X["kickoff_utc"], utc=True)
    if kickoff.isna().any():
        row = int(np.flatnonzero(kickoff.isna().to_numpy())[0])
        raise ValueError(f"feature frame row {row}: kickoff_utc is missing")
    minutes = (kickoff - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1)
    return np.asarray(minutes.to_numpy(), dtype=np.int64)


def _minute(kickoff: Any, *, row: int) -> int:
    """One kick-off (aware or naive-as-UTC datetime, or ISO string) as minutes since the epoch."""
    stamp = pd.Timestamp(kickoff) if kickoff is not None else pd.NaT
    if pd.isna(stamp):
        raise ValueError(f"feature row {row}: kickoff_utc is missing")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int((stamp - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1))


@contextlib.contextmanager
def _torch_threads(n_threads: int) -> Iterator[None]:
    """Run torch ops on ``n_threads`` CPU threads, restoring the previous setting after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_unique_matches(X: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the first repeated ``match_id`` of ``X`` and the count.

    A repeated match entered each team's history twice, so a window held it twice and lost an
    older real match. Rows without a ``match_id`` (the column, or a missing value) pass.

    Examples
    --------
    >>> _check_unique_matches(pd.DataFrame({"match_id": ["a", "b", "c"]}))
    >>> repeats = pd.DataFrame({"match_id": ["a", "b", "a", "b"]})
    >>> _check_unique_matches(repeats)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: match_id 'a' is repeated at row 2 (2 rows repeat an earlier match_id): ...
    """
    if "match_id" not in X.columns:
        return
    ids = X["match_id"]
    repeated = (ids.duplicated(keep="first") & ids.notna()).to_numpy()
    if repeated.any():
        row = int(np.flatnonzero(repeated)[0])
        raise ValueError(
            f"match_id {ids.iat[row]!r} is repeated at row {row} ({int(repeated.sum())} rows "
            "repeat an earlier match_id): pass each match once, dropping the same rows of X and y"
        )


def _finite_or_nan(values: np.ndarray) -> np.ndarray:
    """``values`` (float) with every non-finite entry (inf, -inf) as NaN, a missing value."""
    return np.where(np.isfinite(values), values, np.nan)


def _probability_or_nan(p: np.ndarray) -> np.ndarray:
    """``p`` with every entry outside [0, 1] (or not finite) as NaN: no price.

    Examples
    --------
    >>> _probability_or_nan(np.array([0.5, 1.2, -0.1, np.inf, 0.0]))
    array([0.5, nan, nan, nan, 0. ])
    """
    return np.where((p >= 0.0) & (p <= 1.0), p, np.nan)


#: Every market-probability column a feature frame may hold.
_PROBABILITY_COLUMNS = frozenset(c for m in MarketKind for c in MARKET_COLUMNS[m])


def _unprice_out_of_range(matrix: np.ndarray, columns: Sequence[str]) -> None:
    """Set every market probability outside [0, 1] in ``matrix`` (n, len(columns)) to NaN.

    In place: a price that cannot be one is no price.
    """
    for j, column in enumerate(columns):
        if column in _PROBABILITY_COLUMNS:
            matrix[:, j] = _probability_or_nan(matrix[:, j])


@dataclass(frozen=True)
class _WeightsStamp:
    """The network an ONNX session was exported from, and its tensors' in-place versions.

    torch bumps a tensor's version on every in-place write (``fill_``, ``copy_`` in
    ``load_state_dict``, an optimiser step), so reading the versions (a few microseconds) tells
    whether the exported weights are still the network's.
    """

    network: torch.nn.Module
    tensors: tuple[torch.Tensor, ...]
    versions: tuple[int, ...]

    @classmethod
    def of(cls, network: torch.nn.Module) -> _WeightsStamp:
        tensors = (*network.parameters(), *network.buffers())
        return cls(network, tensors, tuple(t._version for t in tensors))

    def matches(self, network: torch.nn.Module) -> bool:
        """Whether ``network`` is the exported one, unedited since."""
        return network is self.network and all(
            t._version == v for t, v in zip(self.tensors, self.versions, strict=True)
        )
