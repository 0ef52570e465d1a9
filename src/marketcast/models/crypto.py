"""Crypto direction models: P(down), P(up) per bar from causal features (sklearn conventions)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from marketcast.models.base import (
    LIGHTGBM_RANGES,
    check_param_ranges,
    check_param_types,
    json_bytes,
    lightgbm_params,
    require_fitted,
)
from marketcast.models.gbm import load_booster

#: Stable crypto model names (``consensus`` is built in :mod:`marketcast.ensemble.consensus`).
CRYPTO_MODEL_NAMES = ("flat", "momentum", "buy_and_hold", "logistic", "lightgbm")

#: Class order of every crypto direction model: 0 = down, 1 = up.
CRYPTO_CLASSES = np.array([0, 1], dtype=np.int64)

_P_CLIP = 1e-9

#: The file of an exported crypto champion that describes it (see :func:`load_crypto_champion`).
CRYPTO_CHAMPION_SPEC = "crypto_model.json"


# -- shared helpers ----------------------------------------------------------------------------
def _check_frame(X: Any, where: str) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{where}: X must be a pandas DataFrame, got {type(X).__name__}")
    return X


def _check_labels(y: Any, n_rows: int) -> np.ndarray:
    """Direction labels as int64 in {0, 1}; errors name the first bad row."""
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != n_rows:
        raise ValueError(f"y must be 1-D with {n_rows} rows (one per row of X), got {y_arr.shape}")
    as_float = y_arr.astype(float)
    bad = ~np.isin(as_float, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"y row {row}: direction label must be 0 (down) or 1 (up), got {y_arr[row]!r}; "
            "dead-zone rows must be removed before fit"
        )
    return as_float.astype(np.int64)


def resolve_feature_columns(
    X: pd.DataFrame, feature_columns: Sequence[str] | None, exclude: Sequence[str] = ()
) -> list[str]:
    """Columns a model uses: ``feature_columns`` as given, or every numeric column of ``X``.

    Parameters
    ----------
    X
        Feature frame.
    feature_columns
        Explicit column names, or None for "all numeric (and boolean) columns of ``X``".
    exclude
        Columns never used as features when chosen automatically (e.g. a time column).

    Raises
    ------
    ValueError
        When named columns are missing, are not numeric, or nothing is left.
    """
    if feature_columns is None:
        numeric = X.select_dtypes(include=["number", "bool"]).columns
        columns = [str(c) for c in numeric if c not in set(exclude)]
    else:
        columns = [str(c) for c in feature_columns]
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"feature frame lacks columns {missing}")
        non_numeric = [
            c
            for c in columns
            if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))
        ]
        if non_numeric:
            raise ValueError(f"feature columns must be numeric; not numeric: {non_numeric}")
    if not columns:
        raise ValueError("no numeric feature columns in X")
    return columns


def _matrix(X: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Float matrix (n, k) of ``columns``; infinities become NaN (treated as missing)."""
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise ValueError(f"feature frame lacks columns {missing} the model was fitted on")
    matrix = X.loc[:, list(columns)].to_numpy(dtype=float, copy=True)
    matrix[~np.isfinite(matrix)] = np.nan
    return matrix


def _two_columns(p_up: np.ndarray) -> np.ndarray:
    """(n,) P(up) -> (n, 2) [P(down), P(up)], clipped away from 0 and 1."""
    p_up = np.clip(np.asarray(p_up, dtype=float), _P_CLIP, 1.0 - _P_CLIP)
    return np.column_stack([1.0 - p_up, p_up])


def _float_list(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=float).ravel()]


class DirectionClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """What every crypto model shares: an sklearn binary classifier of the next bar's direction.

    ``classes_`` is always ``[0, 1]`` (down, up) and ``predict_proba`` returns (n, 2), so
    sklearn's scorers (``"roc_auc"``, ``"neg_log_loss"``), ``cross_val_score`` and
    ``CalibratedClassifierCV`` take the models as they are.
    """

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2) as [P(down), P(up)]; every model defines its own."""
        raise NotImplementedError

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Direction per row: 1 (up) where P(up) > 0.5, else 0 (down, or no view)."""
        p_up = self.predict_proba(X)[:, 1]
        return CRYPTO_CLASSES[(p_up > 0.5).astype(np.intp)]


# -- baselines ---------------------------------------------------------------------------------
class FlatModel(DirectionClassifier):
    """No view: P(up) = 0.5 on every bar, so the position is always zero."""

    def __init__(self) -> None:
        pass

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Check the inputs; nothing is learned."""
        X = _check_frame(X, "FlatModel.fit")
        _check_labels(y, len(X))
        self.classes_ = CRYPTO_CLASSES.copy()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2): [0.5, 0.5] per row."""
        X = _check_frame(X, "FlatModel.predict_proba")
        return np.full((len(X), 2), 0.5)

    def to_artifact(self) -> dict[str, bytes]:
        """A JSON marker (the model has no state)."""
        return {"flat.json": json_bytes({"model": "flat"})}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        json.loads(files["flat.json"])
        model = cls()
        model.classes_ = CRYPTO_CLASSES.copy()
        return model


class BuyAndHoldModel(DirectionClassifier):
    """Always long: P(up) = ``p_up`` (0.999 by default) on every bar.

    ``p_up`` is a constant, not a forecast: it makes any "long when P(up) > 0.5" rule hold the
    pair throughout, so buy-and-hold is evaluated on the same bars and costs as every model. Its
    log loss is not meaningful (a near-certain forecast on a coin-flip label).
    """

    def __init__(self, *, p_up: float = 0.999) -> None:
        self.p_up = p_up

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        check_param_ranges(self, {"p_up": "(0.5, 1)"})

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Check the inputs and ``p_up``; nothing is learned."""
        self.check_params()
        X = _check_frame(X, "BuyAndHoldModel.fit")
        _check_labels(y, len(X))
        self.classes_ = CRYPTO_CLASSES.copy()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2): [1 - p_up, p_up] per row."""
        X = _check_frame(X, "BuyAndHoldModel.predict_proba")
        return _two_columns(np.full(len(X), float(self.p_up)))

    def to_artifact(self) -> dict[str, bytes]:
        """``p_up`` as JSON."""
        return {"buy_and_hold.json": json_bytes({"params": self.get_params()})}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        meta = json.loads(files["buy_and_hold.json"])
        model = cls(**meta["params"])
        model.classes_ = CRYPTO_CLASSES.copy()
        return model


# -- momentum ----------------------------------------------------------------------------------
class MomentumModel(DirectionClassifier):
    """Time-series momentum: P(up) = sigmoid(k * z) with z = clipped signal / rolling volatility.

    ``z = (X[column] / X[scale]) / s`` where ``s`` is the training standard deviation of
    ``column / scale`` (so ``k`` is on a unit scale), clipped to ``[-clip_z, clip_z]``. The slope
    ``k`` is fitted by one-dimensional maximum likelihood (Bernoulli log loss) on the training
    rows, bounded to ``[-max_k, max_k]``: a positive ``k`` is momentum, a negative one is mean
    reversion, zero means "no edge" (P(up) = 0.5), so the forecast is calibrated in the slope.
    There is no intercept: the model never bets on drift. Rows with a missing signal or a
    non-positive volatility get z = 0, i.e. P(up) = 0.5 (no position).

    Parameters
    ----------
    column
        Signal column, a trailing return (``ret_log_24h`` = last 24 bars).
    scale
        Column with the rolling volatility the signal is divided by, or None for the raw signal.
    clip_z
        Winsorisation of the standardised signal, in training standard deviations.
    max_k
        Bound on the fitted slope.
    """

    def __init__(
        self,
        *,
        column: str = "ret_log_24h",
        scale: str | None = "realised_vol_24h",
        clip_z: float = 4.0,
        max_k: float = 5.0,
    ) -> None:
        self.column = column
        self.scale = scale
        self.clip_z = clip_z
        self.max_k = max_k

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        # clip_z = inf: no winsorising
        check_param_ranges(self, {"clip_z": "(0, inf]", "max_k": "[0, inf)"})

    def _raw_signal(self, X: pd.DataFrame) -> np.ndarray:
        columns = [self.column] + ([self.scale] if self.scale is not None else [])
        values = _matrix(X, columns)
        signal = values[:, 0]
        if self.scale is not None:
            vol = values[:, 1]
            with np.errstate(divide="ignore", invalid="ignore"):
                signal = np.where(vol > 0, signal / vol, np.nan)
        return signal

    def _z(self, X: pd.DataFrame) -> np.ndarray:
        raw = self._raw_signal(X) / self.signal_std_
        z = np.clip(raw, -self.clip_z, self.clip_z)
        return np.where(np.isfinite(z), z, 0.0)

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Fit ``k`` by maximum likelihood on the rows with a usable signal."""
        self.check_params()
        X = _check_frame(X, "MomentumModel.fit")
        labels = _check_labels(y, len(X))
        raw = self._raw_signal(X)
        usable = np.isfinite(raw)
        std = float(np.std(raw[usable])) if usable.sum() >= 2 else 0.0
        self.signal_std_ = std if std > 0 else 1.0
        z = self._z(X)[usable]
        sign = 2.0 * labels[usable] - 1.0  # +1 up, -1 down

        def neg_log_likelihood(k: float) -> float:
            return float(-log_expit(sign * k * z).sum())

        if len(z) == 0 or not np.any(z):
            k = 0.0
        else:
            result = minimize_scalar(
                neg_log_likelihood, bounds=(-self.max_k, self.max_k), method="bounded"
            )
            k = float(result.x)
            # The bounded search never evaluates k = 0 exactly; keep "no edge" when it is better.
            if neg_log_likelihood(0.0) <= neg_log_likelihood(k):
                k = 0.0
        self.k_ = k
        self.n_fit_rows_ = int(usable.sum())
        self.classes_ = CRYPTO_CLASSES.copy()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2) as [P(down), P(up)]."""
        require_fitted(self, "k_")
        X = _check_frame(X, "MomentumModel.predict_proba")
        return _two_columns(expit(self.k_ * self._z(X)))

    def to_artifact(self) -> dict[str, bytes]:
        """Slope, signal scale and parameters as JSON."""
        require_fitted(self, "k_")
        meta = {
            "params": self.get_params(),
            "k": self.k_,
            "signal_std": self.signal_std_,
            "n_fit_rows": self.n_fit_rows_,
        }
        return {"momentum.json": json_bytes(meta)}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        meta = json.loads(files["momentum.json"])
        model = cls(**meta["params"])
        model.k_ = float(meta["k"])
        model.signal_std_ = float(meta["signal_std"])
        model.n_fit_rows_ = int(meta["n_fit_rows"])
        model.classes_ = CRYPTO_CLASSES.copy()
        return model


# -- logistic regression -----------------------------------------------------------------------
class LogisticModel(DirectionClassifier):
    """L2 logistic regression on median-imputed, standardised features.

    Medians, means and standard deviations come from the training rows only (the fold being
    fitted), and are stored, so prediction applies exactly the training transformation. A column
    that is entirely missing in training is imputed with 0; a constant column gets scale 1.
    Probabilities are computed from the stored coefficients, so a rebuilt artifact predicts
    bit-for-bit what the fitted model did.

    Parameters
    ----------
    C
        Inverse L2 strength of :class:`sklearn.linear_model.LogisticRegression`.
    feature_columns
        Columns to use; None means every numeric column of the training frame except
        ``time_column``.
    time_column
        Column never used as a feature when columns are chosen automatically.
    max_iter
        L-BFGS iteration limit.
    """

    def __init__(
        self,
        *,
        C: float = 0.1,
        feature_columns: Sequence[str] | None = None,
        time_column: str | None = "open_time_utc",
        max_iter: int = 1000,
    ) -> None:
        self.C = C
        self.feature_columns = feature_columns
        self.time_column = time_column
        self.max_iter = max_iter

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        # C = inf: unpenalised
        check_param_ranges(self, {"C": "(0, inf]", "max_iter": "[1, inf)"})

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Fit imputation, scaling and the regression on the training rows."""
        self.check_params()
        X = _check_frame(X, "LogisticModel.fit")
        labels = _check_labels(y, len(X))
        if len(np.unique(labels)) < 2:
            raise ValueError(
                f"LogisticModel.fit: y holds only class {int(labels[0]) if len(labels) else '-'}; "
                "both up and down rows are needed"
            )
        exclude = [self.time_column] if self.time_column else []
        self.feature_columns_ = resolve_feature_columns(X, self.feature_columns, exclude)
        matrix = _matrix(X, self.feature_columns_)
        all_missing = np.isnan(matrix).all(axis=0)
        medians = np.zeros(matrix.shape[1])
        if (~all_missing).any():
            medians[~all_missing] = np.nanmedian(matrix[:, ~all_missing], axis=0)
        self.medians_ = medians
        imputed = np.where(np.isnan(matrix), medians, matrix)
        self.means_ = imputed.mean(axis=0)
        scales = imputed.std(axis=0)
        self.scales_ = np.where(scales > 0, scales, 1.0)
        standardised = (imputed - self.means_) / self.scales_
        regression = LogisticRegression(C=self.C, max_iter=self.max_iter)
        regression.fit(standardised, labels)
        self.coef_ = np.asarray(regression.coef_[0], dtype=float)
        self.intercept_ = float(regression.intercept_[0])
        self.classes_ = CRYPTO_CLASSES.copy()
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        """Imputed, standardised design matrix (n, k) with the training statistics."""
        require_fitted(self, "coef_")
        matrix = _matrix(X, self.feature_columns_)
        imputed = np.where(np.isnan(matrix), self.medians_, matrix)
        return (imputed - self.means_) / self.scales_

    def decision_function(self, X: pd.DataFrame) -> np.ndarray:
        """Log-odds of "up" per row, shape (n,)."""
        X = _check_frame(X, "LogisticModel.decision_function")
        return self.transform(X) @ self.coef_ + self.intercept_

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2) as [P(down), P(up)]."""
        return _two_columns(expit(self.decision_function(X)))

    def to_artifact(self) -> dict[str, bytes]:
        """Coefficients, intercept, medians, means and scales as JSON."""
        require_fitted(self, "coef_")
        meta = {
            "params": self.get_params(),  # JSON writes the feature tuple as a list
            "feature_columns": self.feature_columns_,
            "coefficients": _float_list(self.coef_),
            "intercept": self.intercept_,
            "medians": _float_list(self.medians_),
            "means": _float_list(self.means_),
            "scales": _float_list(self.scales_),
        }
        return {"logistic.json": json_bytes(meta)}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        meta = json.loads(files["logistic.json"])
        model = cls(**_params_from_meta(meta))
        model.feature_columns_ = list(meta["feature_columns"])
        model.coef_ = np.asarray(meta["coefficients"], dtype=float)
        model.intercept_ = float(meta["intercept"])
        model.medians_ = np.asarray(meta["medians"], dtype=float)
        model.means_ = np.asarray(meta["means"], dtype=float)
        model.scales_ = np.asarray(meta["scales"], dtype=float)
        model.classes_ = CRYPTO_CLASSES.copy()
        return model


# -- gradient boosting -------------------------------------------------------------------------
class LightGBMDirectionModel(DirectionClassifier):
    """Gradient-boosted trees for P(up), with the tree count chosen by early stopping.

    Rows are taken in time order (sorted by ``time_column`` when the frame has it, otherwise as
    given). The latest ``validation_fraction`` of them (10% by default) is held out and trees are
    added while the held-out log loss improves (patience ``early_stopping_rounds``); the booster
    is then refit on all rows with that many trees. With fewer than ``min_validation_rows``
    held-out rows there is no early stopping and ``n_estimators`` trees are grown. Missing
    values are left to LightGBM (learned default directions).

    When the frame has ``label_end_column``, the held-out set is purged the way the walk-forward
    purges its test windows: a row before it whose label resolves at or after the held-out set's
    first ``time_column`` value (its label spans bars the held-out rows are scored on) does not
    train the probe booster that picks the tree count (``n_purged_`` counts them). The final
    booster is fitted on every row; the column is never a feature.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda, feature_fraction,
    bagging_fraction
        LightGBM settings (``min_child_samples`` = ``min_data_in_leaf``, ``reg_lambda`` = L2).
    feature_columns
        Columns to use; None means every numeric column except ``time_column``.
    time_column
        Column giving time order; never a feature when columns are chosen automatically.
    label_end_column
        Column giving when each row's label resolves (tz-aware or naive like ``time_column``);
        used only to purge early stopping's training rows, never a feature.
    validation_fraction, early_stopping_rounds, min_validation_rows
        Early-stopping set-up on the latest training rows.
    random_state, n_jobs
        Seed and threads; training is deterministic for a given seed and thread count.
    """

    def __init__(
        self,
        *,
        n_estimators: int = 300,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 200,
        reg_lambda: float = 10.0,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        feature_columns: Sequence[str] | None = None,
        time_column: str | None = "open_time_utc",
        label_end_column: str | None = "label_end_utc",
        validation_fraction: float = 0.1,
        early_stopping_rounds: int = 30,
        min_validation_rows: int = 100,
        random_state: int = 0,
        n_jobs: int = 2,
    ) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.feature_columns = feature_columns
        self.time_column = time_column
        self.label_end_column = label_end_column
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.min_validation_rows = min_validation_rows
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _lgb_params(self) -> dict[str, Any]:
        return {"objective": "binary", **lightgbm_params(self)}

    def check_params(self) -> None:
        """Raise ``ValueError`` for a parameter out of range (``fit`` calls it first)."""
        check_param_ranges(self, {**LIGHTGBM_RANGES, "min_validation_rows": "[1, inf)"})

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Choose the tree count on the latest rows, then fit on all rows.

        Raises
        ------
        ValueError
            For a parameter out of range, bad labels, or too few rows for ``bagging_fraction``
            of them to hold one (LightGBM grows every tree on that share of the rows).
        """
        self.check_params()
        X = _check_frame(X, "LightGBMDirectionModel.fit")
        labels = _check_labels(y, len(X))
        if int(len(labels) * self.bagging_fraction) < 1:
            raise ValueError(
                f"LightGBMDirectionModel.fit: {len(labels)} rows are too few; each tree grows "
                f"on bagging_fraction={self.bagging_fraction} of them, which must be a row"
            )
        if self.time_column is not None and self.time_column in X.columns:
            order = np.argsort(X[self.time_column].to_numpy(), kind="stable")
        else:
            order = np.arange(len(X))
        exclude = [c for c in (self.time_column, self.label_end_column) if c]
        if self.label_end_column in (self.feature_columns or ()):
            raise ValueError(
                f"label_end_column {self.label_end_column!r} is in feature_columns: a label's "
                "resolution time must not be a feature"
            )
        self.feature_columns_ = resolve_feature_columns(X, self.feature_columns, exclude)
        features = _matrix(X, self.feature_columns_)[order]
        labels = labels[order]
        params = self._lgb_params()
        n_valid = int(len(labels) * self.validation_fraction)
        best = self.n_estimators
        self.validation_log_loss_: float | None = None
        self.n_purged_ = 0
        n_train = len(labels) - n_valid
        early = n_valid >= self.min_validation_rows and self.early_stopping_rounds > 0
        probe_rows = self._probe_rows(X, order, n_train) if early else np.arange(0)
        if early and len(np.unique(labels[probe_rows])) == 2:  # else: no early stopping
            self.n_purged_ = n_train - len(probe_rows)
            train_set = lgb.Dataset(features[probe_rows], labels[probe_rows], free_raw_data=False)
            valid_set = lgb.Dataset(features[n_train:], labels[n_train:], reference=train_set)
            evals: dict[str, Any] = {}
            probe = lgb.train(
                params,
                train_set,
                num_boost_round=self.n_estimators,
                valid_sets=[valid_set],
                valid_names=["valid"],
                callbacks=[
                    lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                    lgb.record_evaluation(evals),
                ],
            )
            best = max(int(probe.best_iteration or 0), 1)
            self.validation_log_loss_ = float(evals["valid"]["binary_logloss"][best - 1])
        full = lgb.Dataset(features, labels)
        self.booster_ = lgb.train(params, full, num_boost_round=best)
        self.best_iteration_ = best
        self.classes_ = CRYPTO_CLASSES.copy()
        return self

    def _probe_rows(self, X: pd.DataFrame, order: np.ndarray, n_train: int) -> np.ndarray:
        """Positions (in time order) of the rows before the held-out set that may train the probe.

        Without ``label_end_column`` or ``time_column`` in the frame, every one of them.
        """
        rows = np.arange(n_train)
        if (
            self.label_end_column is None
            or self.label_end_column not in X.columns
            or self.time_column is None
            or self.time_column not in X.columns
        ):
            return rows
        times = pd.DatetimeIndex(X[self.time_column]).take(order)
        ends = pd.DatetimeIndex(X[self.label_end_column]).take(order)
        if (times.tz is None) != (ends.tz is None):
            raise ValueError(
                f"{self.time_column!r} and {self.label_end_column!r} must both be tz-aware "
                "or both naive"
            )
        opens = times[n_train:].min()
        # NaT compares False: a label that never resolves never trains the probe.
        resolved = np.asarray(ends[:n_train] < opens, dtype=bool)
        return rows[resolved]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n, 2) as [P(down), P(up)]."""
        require_fitted(self, "booster_")
        X = _check_frame(X, "LightGBMDirectionModel.predict_proba")
        if len(X) == 0:
            return np.empty((0, 2))
        p_up = np.asarray(self.booster_.predict(_matrix(X, self.feature_columns_)), dtype=float)
        return _two_columns(p_up)

    def to_artifact(self) -> dict[str, bytes]:
        """LightGBM text model plus JSON parameters; nothing is pickled."""
        require_fitted(self, "booster_")
        meta = {
            "params": self.get_params(),  # JSON writes the feature tuple as a list
            "feature_columns": self.feature_columns_,
            "best_iteration": self.best_iteration_,
            "validation_log_loss": self.validation_log_loss_,
        }
        return {
            "lightgbm_direction.json": json_bytes(meta),
            "lightgbm_direction.txt": self.booster_.model_to_string().encode("utf-8"),
        }

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        meta = json.loads(files["lightgbm_direction.json"])
        model = cls(**_params_from_meta(meta))
        model.feature_columns_ = list(meta["feature_columns"])
        model.best_iteration_ = int(meta["best_iteration"])
        loss = meta["validation_log_loss"]
        model.validation_log_loss_ = None if loss is None else float(loss)
        model.booster_ = load_booster(
            files["lightgbm_direction.txt"],
            file="lightgbm_direction.txt",
            n_classes=len(CRYPTO_CLASSES),
            n_features=len(model.feature_columns_),
        )
        model.classes_ = CRYPTO_CLASSES.copy()
        return model


# -- factory -----------------------------------------------------------------------------------
CRYPTO_MODEL_CLASSES: dict[str, type[Any]] = {
    "flat": FlatModel,
    "momentum": MomentumModel,
    "buy_and_hold": BuyAndHoldModel,
    "logistic": LogisticModel,
    "lightgbm": LightGBMDirectionModel,
}


def _params_from_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Constructor parameters saved by ``to_artifact`` (JSON lists back to tuples)."""
    params = dict(meta["params"])
    if params["feature_columns"] is not None:
        params["feature_columns"] = tuple(params["feature_columns"])
    return params


def make_crypto_model(name: str, **params: Any) -> Any:
    """Build the crypto direction model called ``name`` with ``params`` over its defaults.

    Examples
    --------
    >>> make_crypto_model("momentum", column="ret_log_168h").column
    'ret_log_168h'
    """
    try:
        cls = CRYPTO_MODEL_CLASSES[name]
    except KeyError:
        known = ", ".join(CRYPTO_MODEL_NAMES)
        raise ValueError(f"unknown crypto model {name!r}; known models: {known}") from None
    accepted = cls().get_params()
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ValueError(f"crypto model {name!r} has no parameters {unknown}")
    model = cls(**params)
    try:
        if hasattr(model, "check_params"):
            model.check_params()
        check_param_types(model)
    except ValueError as exc:
        raise ValueError(f"crypto model {name!r}: {exc}") from None
    return model


def load_crypto_model(name: str, files: dict[str, bytes]) -> Any:
    """Rebuild a fitted crypto model from its artifact files (JSON / LightGBM text; no pickle)."""
    if name not in CRYPTO_MODEL_CLASSES:
        known = ", ".join(CRYPTO_MODEL_NAMES)
        raise ValueError(f"unknown crypto model {name!r}; known models: {known}")
    return CRYPTO_MODEL_CLASSES[name].from_artifact(files)


# -- exported champions ------------------------------------------------------------------------
def load_crypto_champion(files: dict[str, bytes]) -> dict[str, Any]:
    """Rebuild the fitted models of an exported crypto champion: ``{group: {name: model}}``.

    ``files`` are a registry version's artifact files: :data:`CRYPTO_CHAMPION_SPEC` (members,
    pair groups, feature columns and, from spec version 2 on, what serving needs to price and
    gate a signal), ``<group>-<member>-<file>`` per fitted member, and
    ``<group>-<member>@<regime>-<file>`` per regime a member has a model of its own in (the
    spec's ``regime_models``; none in a version exported before it).

    Returns
    -------
    dict
        ``{"spec": <the parsed spec>, "models": {group: {member: fitted model}},
        "regime_models": {group: {member: {regime: fitted model}}}}``.
    """
    spec = json.loads(files[CRYPTO_CHAMPION_SPEC])
    out: dict[str, Any] = {"spec": spec, "models": {}, "regime_models": {}}

    def load(name: str, prefix: str) -> Any:
        own = {k[len(prefix) :]: v for k, v in files.items() if k.startswith(prefix)}
        return load_crypto_model(name, own)

    for group in spec["groups"]:
        for name in spec["members"]:
            out["models"].setdefault(group, {})[name] = load(name, f"{group}-{name}-")
        for name, regimes in spec.get("regime_models", {}).get(group, {}).items():
            out["regime_models"].setdefault(group, {})[name] = {
                regime: load(name, f"{group}-{name}@{regime}-") for regime in regimes
            }
    return out
