"""LightGBM boosted from the market: trees learn what the pre-match price lacks."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, softmax
from sklearn.base import BaseEstimator

from marketcast.features.football import MARKET_COLUMNS
from marketcast.models.base import (
    CLASSES_1X2,
    LIGHTGBM_RANGES,
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
    lightgbm_params,
    market_labels,
    n_outcomes,
    require_fitted,
    soft_log_loss,
    training_targets,
)
from marketcast.types import MarketKind

log = logging.getLogger(__name__)

_EXCLUDED = frozenset({"match_id", "season", "kickoff_utc", "home_team", "away_team"})
_MIN_CALIBRATION_GAIN = 1e-4
#: Fewest validation rows early stopping may judge trees on.
MIN_VALIDATION_ROWS = 200


class LightGBMModel(BaseEstimator):  # type: ignore[misc]
    """Gradient-boosted trees per market, started from the de-margined pre-match price.

    Each market's booster gets the market's log-probabilities as ``init_score``, so with no trees
    it *is* the market; trees add only what the features (ratings, form, rest, spread across
    bookmakers) say the price lacks. The number of trees is chosen by early stopping on the
    latest ``validation_fraction`` of the training rows (time-ordered), then the booster is refit
    on all rows. A temperature is fitted on that validation slice and kept only when it lowers
    the validation log loss ("calibrate where it helps").

    ``target="closing"`` trains on the closing line instead of the results: each earlier match's
    de-margined closing probabilities are its soft label (cross-entropy against them), so the
    trees learn where the price moved between the pre-match snapshot and kick-off. A result is
    one draw from the truth; the closing price is the market's last, sharpest estimate of it,
    a far less noisy target. It stays a target: the features are the same pre-match ones, and
    a forecast never sees its own match's closing price. Markets whose training rows hold fewer
    than ``MIN_CLOSING_ROWS`` closing prices fall back to the results (``target_used_``).
    """

    def __init__(
        self,
        *,
        markets: tuple[str, ...] = ("1x2", "ou25", "ah"),
        n_estimators: int = 400,
        learning_rate: float = 0.02,
        num_leaves: int = 7,
        min_child_samples: int = 300,
        reg_lambda: float = 20.0,
        feature_fraction: float = 0.7,
        bagging_fraction: float = 0.8,
        validation_fraction: float = 0.15,
        early_stopping_rounds: int = 40,
        calibrate: bool = True,
        target: str = "result",
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.markets = markets
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.calibrate = calibrate
        self.target = target
        self.random_state = random_state
        self.n_jobs = n_jobs

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        check_param_ranges(self, LIGHTGBM_RANGES)
        known = [m.value for m in MarketKind]
        if not self.markets or not set(self.markets) <= set(known):
            raise ValueError(f"markets must be a non-empty subset of {known}, got {self.markets}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, X: pd.DataFrame, y: np.ndarray, closing: ClosingTargets | None = None) -> Self:
        """Fit one booster per market on rows in time order; ``y`` is (n, 2) goals.

        Rows are taken by kick-off, then ``match_id`` (when ``X`` has it), so the forecasts do
        not depend on how the caller ordered matches that kick off together (bagging picks rows
        by position). A row without goals (NaN) settles no market and trains none.
        ``closing`` (per market, (n, k) de-margined closing probabilities aligned with ``X``) is
        required with ``target="closing"`` and ignored otherwise.
        """
        self.check_params()
        check_no_outcome_columns(X)
        check_goals(X, y, missing_ok=True)
        y = np.asarray(y)
        order = _time_order(X)
        soft = closing_in_training_order(self.target, closing, order)
        X = X.iloc[order]
        y = y[order]
        self.feature_names_ = [c for c in X.columns if c not in _EXCLUDED]
        self.leagues_ = sorted(X["league"].astype(str).unique().tolist())
        features = self._design(X)
        self.boosters_: dict[str, lgb.Booster | None] = {}
        self.temperature_: dict[str, float] = {}
        self.base_rates_: dict[str, list[float]] = {}
        self.best_iteration_: dict[str, int] = {}
        self.target_used_: dict[str, str] = {}
        self.n_training_rows_: dict[str, int] = {}
        for market_name in self.markets:
            market = MarketKind(market_name)
            labels = market_labels(market, X, y)
            k = n_outcomes(market)
            self.base_rates_[market.value] = base_rates(labels, k).tolist()
            targets, keep, used = training_targets(
                labels, soft.get(market.value), k, name=f"lightgbm {market.value}"
            )
            init = self._init_score(X, market)
            booster, temperature, best = self._fit_market(
                features[keep], targets[keep], init[keep], k
            )
            self.boosters_[market.value] = booster
            self.temperature_[market.value] = temperature
            self.best_iteration_[market.value] = best
            self.target_used_[market.value] = used
            self.n_training_rows_[market.value] = int(keep.sum())
        self.classes_ = CLASSES_1X2
        return self

    def _params(self, targets: np.ndarray, k: int) -> dict[str, Any]:
        params = lightgbm_params(self)
        params.update(objective=_soft_log_loss_objective(targets, k), metric="None")
        if k > 2:
            params.update(num_class=k)
        return params

    def _fit_market(
        self, features: np.ndarray, targets: np.ndarray, init: np.ndarray, k: int
    ) -> tuple[lgb.Booster | None, float, int]:
        """Boost from ``init`` towards ``targets`` (rows of probabilities: one-hot or soft).

        Trees are added only where they can be trusted: with early stopping on, the latest
        ``validation_fraction`` of the rows must hold at least ``MIN_VALIDATION_ROWS`` to judge
        them; in any case a leaf needs ``min_child_samples`` rows, so fewer than twice that
        cannot split. Otherwise the forecast stays the market prior (logged).
        """
        init_flat = _flatten_init(init, k)
        n_valid = int(len(targets) * self.validation_fraction)
        best = self.n_estimators
        temperature = 1.0
        early_stopping = self.early_stopping_rounds > 0
        if len(targets) < 2 * self.min_child_samples or (
            early_stopping and n_valid < MIN_VALIDATION_ROWS
        ):
            log.info(
                "lightgbm: %d training rows are too few to fit and validate trees; "
                "the forecast stays the market price",
                len(targets),
            )
            return None, temperature, 0
        if early_stopping:
            n_train = len(targets) - n_valid
            train_set = lgb.Dataset(
                features[:n_train],
                targets[:n_train, 0],
                init_score=_flatten_init(init[:n_train], k),
                categorical_feature=[0],
                free_raw_data=False,
            )
            valid_set = lgb.Dataset(
                features[n_train:],
                targets[n_train:, 0],
                init_score=_flatten_init(init[n_train:], k),
                reference=train_set,
            )
            valid_targets = targets[n_train:]

            def valid_loss(preds: np.ndarray, _data: lgb.Dataset) -> tuple[str, float, bool]:
                return "soft_log_loss", soft_log_loss(_as_raw(preds, k), valid_targets), False

            probe = lgb.train(
                self._params(targets[:n_train], k),
                train_set,
                num_boost_round=self.n_estimators,
                valid_sets=[valid_set],
                feval=valid_loss,
                callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
            )
            best = max(int(probe.best_iteration or 0), 0)
            # LightGBM's early stopping starts from an infinite best score, so its first tree
            # always "improves": the market prior (no trees) is compared here, by the same loss
            # on the same rows, and kept unless the best tree count is strictly better.
            prior_loss = soft_log_loss(
                _raw_scores(None, features[n_train:], init[n_train:], k, None), valid_targets
            )
            if best > 0 and not _validation_loss(probe) < prior_loss:
                best = 0
            if self.calibrate and best > 0:
                raw = _raw_scores(probe, features[n_train:], init[n_train:], k, best)
                temperature = _fit_temperature(raw, valid_targets)
        if best == 0:
            # No tree helped on the validation slice: the forecast stays the market prior (no
            # temperature either, or the prior would be rescaled).
            return None, 1.0, best
        full = lgb.Dataset(features, targets[:, 0], init_score=init_flat, categorical_feature=[0])
        booster = lgb.train(self._params(targets, k), full, num_boost_round=best)
        return booster, temperature, best

    # -- prediction ------------------------------------------------------------------------
    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n_matches, 3) in ``classes_`` order."""
        p = self.predict_market_proba(X, MarketKind.ONE_X_TWO)
        if p is None:
            raise ValueError("this LightGBMModel was fitted without the 1x2 market")
        return p

    def predict_market_proba(self, X: pd.DataFrame, market: MarketKind) -> np.ndarray | None:
        """Probabilities per outcome of ``market``, or None when it was not fitted."""
        require_fitted(self, "boosters_")
        market = MarketKind(market)  # "1x2" works as well as MarketKind.ONE_X_TWO
        if market.value not in self.boosters_:
            return None
        return self._predict(market, self._design(X), self._init_score(X, market))

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> np.ndarray | None:
        """:meth:`predict_market_proba` on feature rows as mappings (the server's fast path)."""
        require_fitted(self, "boosters_")
        market = MarketKind(market)
        if market.value not in self.boosters_:
            return None
        return self._predict(market, self._design(rows), self._init_score(rows, market))

    def _predict(self, market: MarketKind, design: np.ndarray, init: np.ndarray) -> np.ndarray:
        """Probabilities from the design matrix and the market's log-probability prior."""
        raw = _raw_scores(self.boosters_[market.value], design, init, n_outcomes(market), None)
        return np.asarray(softmax(raw / self.temperature_[market.value], axis=1))

    # -- helpers ---------------------------------------------------------------------------
    def _design(self, X: FeatureSource) -> np.ndarray:
        """League code, then the float features, of a feature frame or of feature rows."""
        rest = [c for c in self.feature_names_ if c != "league"]
        leagues = feature_matrix(X, ["league"], str)[:, 0]
        return np.column_stack([self._league_codes(leagues), feature_matrix(X, rest)])

    def _league_codes(self, names: Iterable[str]) -> np.ndarray:
        """Position of each league in the training leagues, -1 for one never seen."""
        codes = {name: float(i) for i, name in enumerate(self.leagues_)}
        return np.array([codes.get(name, -1.0) for name in names], dtype=float)

    def _init_score(self, X: FeatureSource, market: MarketKind) -> np.ndarray:
        """Market log-probabilities (n, k); unpriced rows start from the training base rates."""
        p = feature_matrix(X, MARKET_COLUMNS[market])
        rates = getattr(self, "base_rates_", {}).get(market.value)
        if rates is None:  # no training base rates yet: uniform
            rates = np.full(p.shape[1], 1.0 / p.shape[1])
        return np.log(np.clip(fill_unpriced(p, rates), 1e-6, 1.0))

    # -- artifacts -------------------------------------------------------------------------
    def to_artifact(self) -> dict[str, bytes]:
        """LightGBM text models plus JSON metadata; nothing is pickled."""
        require_fitted(self, "boosters_")
        meta = {
            "params": self.get_params(),
            "feature_names": self.feature_names_,
            "leagues": self.leagues_,
            "temperature": self.temperature_,
            "base_rates": self.base_rates_,
            "best_iteration": self.best_iteration_,
            "target_used": self.target_used_,
            "n_training_rows": self.n_training_rows_,
        }
        files = {"lightgbm.json": json_bytes(meta)}
        for market, booster in self.boosters_.items():
            if booster is not None:
                files[f"lightgbm_{market}.txt"] = booster.model_to_string().encode("utf-8")
        return files

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        meta = json.loads(files["lightgbm.json"])
        params = dict(meta["params"])
        params["markets"] = tuple(params["markets"])
        model = cls(**params)
        model.feature_names_ = meta["feature_names"]
        model.leagues_ = meta["leagues"]
        model.temperature_ = {k: float(v) for k, v in meta["temperature"].items()}
        model.base_rates_ = meta["base_rates"]
        model.best_iteration_ = meta["best_iteration"]
        model.target_used_ = meta.get("target_used", dict.fromkeys(model.markets, "result"))
        model.n_training_rows_ = meta.get("n_training_rows", {})
        model.boosters_ = {
            m: (
                lgb.Booster(model_str=files[f"lightgbm_{m}.txt"].decode("utf-8"))
                if f"lightgbm_{m}.txt" in files
                else None
            )
            for m in model.markets
        }
        model.classes_ = CLASSES_1X2
        return model


def _time_order(X: pd.DataFrame) -> np.ndarray:
    """Positions of the rows by kick-off, then ``match_id`` when ``X`` has one, then position."""
    kickoff = X["kickoff_utc"].to_numpy()
    if "match_id" not in X.columns:
        return np.argsort(kickoff, kind="stable")
    return np.lexsort((X["match_id"].astype(str).to_numpy(), kickoff))


def _flatten_init(init: np.ndarray, k: int) -> np.ndarray:
    """LightGBM wants binary init as one logit and multiclass init class-major."""
    if k == 2:
        return init[:, 0] - init[:, 1]
    return init.T.reshape(-1)


def _raw_scores(
    booster: lgb.Booster | None, features: np.ndarray, init: np.ndarray, k: int, n_iter: int | None
) -> np.ndarray:
    """Total raw scores (n, k): trees plus the market prior, as log-odds per outcome."""
    trees: np.ndarray
    if booster is None:
        trees = np.zeros(len(features) if k == 2 else len(features) * k)
    else:
        # a few rows (a server's request) are faster on one thread than waiting for a pool;
        # 0 is LightGBM's default (OpenMP's thread count)
        threads = 1 if len(features) < SMALL_BATCH_ROWS else 0
        trees = np.asarray(
            booster.predict(features, raw_score=True, num_iteration=n_iter, num_threads=threads)
        )
    if k == 2:
        return _as_raw(trees + (init[:, 0] - init[:, 1]), k)
    return np.asarray(trees).reshape(len(features), k) + init


def _validation_loss(probe: lgb.Booster) -> float:
    """The validation loss early stopping recorded at ``probe.best_iteration``."""
    return float(probe.best_score["valid_0"]["soft_log_loss"])


def _as_raw(preds: np.ndarray, k: int) -> np.ndarray:
    """LightGBM's raw scores as (n, k) log-odds: a binary logit becomes ``[logit, 0]``."""
    if k == 2:
        return np.column_stack([preds, np.zeros_like(preds)])
    return preds


def _soft_log_loss_objective(
    targets: np.ndarray, k: int
) -> Callable[[np.ndarray, lgb.Dataset], tuple[np.ndarray, np.ndarray]]:
    """Gradient and Hessian of the cross-entropy against ``targets`` (rows of probabilities).

    With one-hot targets this is LightGBM's own ``binary`` / ``multiclass`` objective (same
    gradient, and the Hessian with multiclass's ``k / (k - 1)`` factor), so one code path
    serves results and closing prices alike.
    """
    if k == 2:
        q = targets[:, 0]

        def binary(preds: np.ndarray, _data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
            p = expit(preds)
            return p - q, p * (1.0 - p)

        return binary
    factor = k / (k - 1.0)

    def multiclass(preds: np.ndarray, _data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(preds, axis=1)
        return p - targets, factor * p * (1.0 - p)

    return multiclass


def _fit_temperature(raw: np.ndarray, targets: np.ndarray) -> float:
    """Temperature minimising validation log loss against ``targets``; 1.0 unless it helps."""

    def loss(t: float) -> float:
        return soft_log_loss(raw / t, targets)

    result = minimize_scalar(loss, bounds=(0.5, 2.0), method="bounded")
    t = float(result.x)
    return t if loss(1.0) - loss(t) > _MIN_CALIBRATION_GAIN else 1.0
