"""LightGBM boosted from the market: trees learn what the pre-match price lacks."""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Self

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
    market_label_weights,
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
            # a quarter line's half result weighs one half when learning the results (the
            # fair price's probability); a closing price is that probability already
            weights = market_label_weights(market, X, y) if used == "result" else np.ones(len(X))
            init = self._init_score(X, market)
            booster, temperature, best = self._fit_market(
                features[keep], targets[keep], init[keep], k, weights[keep]
            )
            self.boosters_[market.value] = booster
            self.temperature_[market.value] = temperature
            self.best_iteration_[market.value] = best
            self.target_used_[market.value] = used
            self.n_training_rows_[market.value] = int(keep.sum())
        self.classes_ = CLASSES_1X2
        return self

    def _params(self, targets: np.ndarray, k: int, weights: np.ndarray) -> dict[str, Any]:
        params = lightgbm_params(self)
        params.update(objective=_soft_log_loss_objective(targets, k, weights), metric="None")
        if k > 2:
            params.update(num_class=k)
        return params

    def _fit_market(
        self,
        features: np.ndarray,
        targets: np.ndarray,
        init: np.ndarray,
        k: int,
        weights: np.ndarray,
    ) -> tuple[lgb.Booster | None, float, int]:
        """Boost from ``init`` towards ``targets`` (rows of probabilities: one-hot or soft),
        each row weighing ``weights`` in the loss, the validation and the calibration alike.

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
            valid_targets, valid_weights = targets[n_train:], weights[n_train:]

            def valid_loss(preds: np.ndarray, _data: lgb.Dataset) -> tuple[str, float, bool]:
                loss = soft_log_loss(_as_raw(preds, k), valid_targets, valid_weights)
                return "soft_log_loss", loss, False

            probe = lgb.train(
                self._params(targets[:n_train], k, weights[:n_train]),
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
                _raw_scores(None, features[n_train:], init[n_train:], k, None),
                valid_targets,
                valid_weights,
            )
            if best > 0 and not _validation_loss(probe) < prior_loss:
                best = 0
            if self.calibrate and best > 0:
                raw = _raw_scores(probe, features[n_train:], init[n_train:], k, best)
                temperature = _fit_temperature(raw, valid_targets, valid_weights)
        if best == 0:
            # No tree helped on the validation slice: the forecast stays the market prior (no
            # temperature either, or the prior would be rescaled).
            return None, 1.0, best
        full = lgb.Dataset(features, targets[:, 0], init_score=init_flat, categorical_feature=[0])
        booster = lgb.train(self._params(targets, k, weights), full, num_boost_round=best)
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
        """Rebuild from :meth:`to_artifact` output.

        Each booster's text is checked by :func:`check_model_text` before LightGBM parses it;
        a malformed one raises :class:`ModelTextError` naming the file and where.
        """
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
        # league code, then the float features: the columns of _design
        n_features = 1 + sum(name != "league" for name in model.feature_names_)
        model.boosters_ = {
            m: (
                load_booster(
                    files[f"lightgbm_{m}.txt"],
                    file=f"lightgbm_{m}.txt",
                    n_classes=n_outcomes(MarketKind(m)),
                    n_features=n_features,
                )
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
    targets: np.ndarray, k: int, weights: np.ndarray
) -> Callable[[np.ndarray, lgb.Dataset], tuple[np.ndarray, np.ndarray]]:
    """Gradient and Hessian of the cross-entropy against ``targets`` (rows of probabilities),
    each row's scaled by its weight (a callable objective gets no Dataset weights applied).

    With one-hot targets this is LightGBM's own ``binary`` / ``multiclass`` objective (same
    gradient, and the Hessian with multiclass's ``k / (k - 1)`` factor), so one code path
    serves results and closing prices alike.
    """
    if k == 2:
        q = targets[:, 0]

        def binary(preds: np.ndarray, _data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
            p = expit(preds)
            return weights * (p - q), weights * p * (1.0 - p)

        return binary
    factor = k / (k - 1.0)
    w = weights[:, None]

    def multiclass(preds: np.ndarray, _data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(preds, axis=1)
        return w * (p - targets), w * factor * p * (1.0 - p)

    return multiclass


def _fit_temperature(raw: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> float:
    """Temperature minimising validation log loss against ``targets``; 1.0 unless it helps."""

    def loss(t: float) -> float:
        return soft_log_loss(raw / t, targets, weights)

    result = minimize_scalar(loss, bounds=(0.5, 2.0), method="bounded")
    t = float(result.x)
    return t if loss(1.0) - loss(t) > _MIN_CALIBRATION_GAIN else 1.0


# -- model text checks ---------------------------------------------------------------------------
class ModelTextError(ValueError):
    """A LightGBM model text in an artifact is malformed; the message names the file and where.

    LightGBM's C++ parser trusts its input: a truncated, edited or foreign text can make it
    abort, crash or loop instead of raising, so :func:`load_booster` checks the text first.
    """


#: LightGBM's own ceiling on ``num_leaves``.
MAX_NUM_LEAVES = 131072
_MAX_CLASSES = 1000
_MAX_FEATURES = 1_000_000
# decision_type bits: 1 categorical, 2 default left, then the missing type (0, 1 or 2) << 2
_MAX_DECISION_TYPE = 11
# Numbers as LightGBM writes them. Possessive quantifiers (++, *+, ?+) keep matching linear in
# the length of a line (a backtracking array pattern can take minutes on a long one).
_INT = r"-?\d{1,10}+"  # fits int64 exactly (and LightGBM's int32 once in range)
_NUMBER = r"-?\d++(?:\.\d++)?+(?:e[-+]?\d++)?+"
_FLOAT = rf"(?:{_NUMBER}|-?inf|nan)"  # a NaN-missing split's threshold is written as inf
_FINITE = r"-?\d++(?:\.\d++)?+(?:e(?:-\d{1,3}+|\+?\d{1,2}+))?+"  # below 1e100: no overflow
_SMALL_INT = re.compile(r"-?\d{1,10}", re.ASCII)
_SIZES = re.compile(r"(?:\d{1,15}(?: \d{1,15})*+)?+", re.ASCII)
_VERSION = re.compile(r"v\d+", re.ASCII)
# "[name: value]"; a value holds at most one level of brackets (interaction_constraints'
# "[0,1],[2,3]"): LightGBM turns vector parameters into JSON that Python then parses.
_PARAMETER = re.compile(r"\[[A-Za-z0-9_]+: (?:[^\[\]]*+|(?:\[[^\[\]]*+\],?)*+)\]")
_PANDAS_KEY = "pandas_categorical:"

_HEADER_REQUIRED = (
    "version",
    "num_class",
    "num_tree_per_iteration",
    "label_index",
    "max_feature_idx",
    "feature_names",
    "feature_infos",
    "tree_sizes",
)
_HEADER_KEYS = frozenset((*_HEADER_REQUIRED, "objective", "average_output", "monotone_constraints"))
_PER_SPLIT, _PER_LEAF, _SINGLE = "split", "leaf", "single"
# A tree's lines in the order Tree::ToString writes them: (field, number syntax, how many).
# The two categorical lines come only with num_cat > 0.
_TREE_FIELDS = (
    ("num_leaves", _INT, _SINGLE),
    ("num_cat", _INT, _SINGLE),
    ("split_feature", _INT, _PER_SPLIT),
    ("split_gain", _FLOAT, _PER_SPLIT),
    ("threshold", _FLOAT, _PER_SPLIT),
    ("decision_type", _INT, _PER_SPLIT),
    ("left_child", _INT, _PER_SPLIT),
    ("right_child", _INT, _PER_SPLIT),
    ("leaf_value", _FINITE, _PER_LEAF),
    ("leaf_weight", _FLOAT, _PER_LEAF),
    ("leaf_count", _INT, _PER_LEAF),
    ("internal_value", _FLOAT, _PER_SPLIT),
    ("internal_weight", _FLOAT, _PER_SPLIT),
    ("internal_count", _INT, _PER_SPLIT),
    ("cat_boundaries", _INT, None),
    ("cat_threshold", _INT, None),
    ("is_linear", "0", _SINGLE),  # linear trees: our models never fit them
    ("shrinkage", _FINITE, _SINGLE),
)
_TREE_CATEGORICAL = ("cat_boundaries", "cat_threshold")
_TREE_LINEAR = frozenset({"leaf_const", "num_features", "leaf_features", "leaf_coeff"})


def _field_syntax(number: str, count: str | None) -> str:
    return number if count == _SINGLE else rf"(?:{number}(?: {number})*+)?+"


def _tree_pattern() -> re.Pattern[str]:
    """One tree after its ``Tree=i`` line: every field, in order, then two blank lines."""
    lines = []
    for name, number, count in _TREE_FIELDS:
        line = rf"{name}=({_field_syntax(number, count)})\n"
        if name == _TREE_CATEGORICAL[0]:
            line = "(?:" + line
        elif name == _TREE_CATEGORICAL[-1]:
            line += ")?+"
        lines.append(line)
    # ASCII: \d is [0-9] only, so a matched tree's characters are its bytes
    return re.compile("".join(lines) + "\n\n", re.ASCII)


_TREE = _tree_pattern()
_FIELD_NAMES = tuple(name for name, _number, _count in _TREE_FIELDS)
_TREE_COUNTED = tuple(
    (name, count) for name, _number, count in _TREE_FIELDS if count in (_PER_SPLIT, _PER_LEAF)
)


def load_booster(data: bytes, *, file: str, n_classes: int, n_features: int) -> lgb.Booster:
    """A booster from the LightGBM model text ``data``, checked before LightGBM parses it.

    Parameters
    ----------
    data
        The artifact's bytes (``Booster.model_to_string()`` as UTF-8).
    file
        The artifact's file name, for the error message.
    n_classes
        Outcomes the booster scores (2 for a binary booster).
    n_features
        Columns of the design matrix the model predicts on.

    Raises
    ------
    ModelTextError
        When the bytes are not UTF-8, the text fails :func:`check_model_text`, or LightGBM
        refuses it (its ``LightGBMError``).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ModelTextError(
            f"lightgbm artifact {file}: line {line}: byte {exc.start} is not UTF-8 ({exc.reason})"
        ) from None
    check_model_text(text, file=file, n_classes=n_classes, n_features=n_features)
    try:
        return lgb.Booster(model_str=text)
    except (lgb.basic.LightGBMError, ValueError, RecursionError) as exc:
        raise ModelTextError(
            f"lightgbm artifact {file}: LightGBM refused it ({type(exc).__name__}: {exc})"
        ) from exc


def check_model_text(
    text: str, *, file: str, n_classes: int | None = None, n_features: int | None = None
) -> None:
    """Raise :class:`ModelTextError` unless ``text`` is whole LightGBM model text of our shape.

    Checked in pure Python, before LightGBM sees the text (its C++ parser trusts it: on some
    malformed input it aborts, crashes or loops; ``docs/models.md`` lists what was tried):

    - the text ends with a newline (else it was cut short) and holds no NUL or carriage return;
    - header: first line ``tree``; only keys LightGBM writes, each once; ``num_class`` in
      [1, 1000], ``num_tree_per_iteration`` equal to it, and 1 for ``n_classes=2``, else
      ``n_classes``; ``max_feature_idx + 1`` equal to ``n_features`` and to the count of
      feature names and infos; an objective, if any, binary or multiclass agreeing with
      ``num_class``; ``tree_sizes``, as many as a multiple of ``num_tree_per_iteration``;
    - every tree starts ``Tree=i``, in order, where ``tree_sizes`` puts it and ends exactly
      where it says (LightGBM jumps by them); its lines, in LightGBM's order, hold numbers of
      LightGBM's syntax (ASCII digits, integers of at most 10 digits, finite leaf values);
      ``num_leaves`` in [1, 131072] and every array as long as it requires; split features in
      [0, ``max_feature_idx``], decision types in [0, 11]; children in range, every node and
      leaf the child of exactly one node, numbered after its parent (so no cycle);
      ``num_cat`` categorical splits with thresholds 0 to ``num_cat - 1``, ``cat_boundaries``
      rising from 0 to the length of ``cat_threshold``, 32-bit words; no linear trees;
    - then ``end of trees``; parameter lines ``[name: value]`` up to ``end of parameters``,
      ``linear_tree`` off; a last ``pandas_categorical:`` line, if any, JSON null or a list;
      with no trees, no later line that LightGBM would read as part of the header.

    ``None`` skips the class or the feature count check.

    Examples
    --------
    >>> check_model_text("tree\\n", file="m.txt")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marketcast.models.gbm.ModelTextError: lightgbm artifact m.txt: line 2: the header never ends...
    """
    _ModelText(text, file).check(n_classes, n_features)


class _ModelText:
    """One model text under check; ``fail`` names the file and the line of an offset."""

    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file

    def fail(self, offset: int, what: str) -> ModelTextError:
        line = self.text.count("\n", 0, offset) + 1
        return ModelTextError(f"lightgbm artifact {self.file}: line {line}: {what}")

    def check(self, n_classes: int | None, n_features: int | None) -> None:
        text = self.text
        if not text or text.isspace():
            raise ModelTextError(f"lightgbm artifact {self.file}: empty, no model text")
        if not text.endswith("\n"):
            raise self.fail(len(text), "the text ends mid-line: it is cut short")
        for character, why in (("\x00", "a NUL"), ("\r", "a carriage return")):
            at = text.find(character)
            if at >= 0:
                raise self.fail(at, f"{why} character, which LightGBM never writes")
        end = text.find("\n\n")
        if end < 0:
            raise self.fail(
                len(text), "the header never ends (no blank line after it): the text is cut short"
            )
        header = self.header(end)
        num_class = self.header_int(header, "num_class", 1, _MAX_CLASSES)
        per_iteration = self.header_int(header, "num_tree_per_iteration", 1, _MAX_CLASSES)
        if per_iteration != num_class:
            raise self.fail(
                header["num_tree_per_iteration"][1],
                f"num_tree_per_iteration={per_iteration} but num_class={num_class}",
            )
        if n_classes is not None and num_class != (1 if n_classes == 2 else n_classes):
            raise self.fail(
                header["num_class"][1],
                f"num_class={num_class}, but this model's booster scores {n_classes} outcomes "
                f"(num_class={1 if n_classes == 2 else n_classes})",
            )
        self.header_int(header, "label_index", 0, _MAX_FEATURES)
        max_feature_idx = self.header_int(header, "max_feature_idx", 0, _MAX_FEATURES)
        if n_features is not None and max_feature_idx + 1 != n_features:
            raise self.fail(
                header["max_feature_idx"][1],
                f"max_feature_idx={max_feature_idx} ({max_feature_idx + 1} features), but this "
                f"model predicts from {n_features}",
            )
        self.check_header_values(header, max_feature_idx + 1, num_class)
        sizes_text, sizes_at = header["tree_sizes"]
        if not _SIZES.fullmatch(sizes_text):
            raise self.fail(sizes_at, "tree_sizes holds something other than byte counts")
        sizes = [int(size) for size in sizes_text.split(" ")] if sizes_text else []
        if len(sizes) % per_iteration:
            raise self.fail(
                sizes_at,
                f"{len(sizes)} trees is not a multiple of num_tree_per_iteration={per_iteration}",
            )
        # every tree where tree_sizes puts it (LightGBM jumps by them to parse trees in
        # parallel, and reads past the text when they are wrong), each of LightGBM's syntax
        at = end + 2
        trees: list[tuple[str, ...]] = []
        offsets: list[int] = []
        for index, size in enumerate(sizes):
            head = f"Tree={index}\n"
            match = None
            if at + size <= len(text) and text.startswith(head, at):
                match = _TREE.fullmatch(text, at + len(head), at + size)
            if match is None:
                raise self.tree_error(index, at, size)
            trees.append(match.groups())
            offsets.append(at)
            at += size
        _Forest(self, trees, offsets).check(max_feature_idx)
        if not (text.startswith("end of trees\n", at) or text[at:] == "end of trees"):
            after = f"after tree {len(sizes) - 1}" if sizes else "after the header"
            raise self.fail(at, f"no 'end of trees' line {after}: the text is cut short or edited")
        self.check_tail(at + len("end of trees"), header_keys_live=not sizes)

    # -- header ----------------------------------------------------------------------------------
    def header(self, end: int) -> dict[str, tuple[str, int]]:
        """Header key -> (value, offset of its line); every line known, each key once."""
        lines = self.text[:end].split("\n")
        if lines[0] != "tree":
            raise self.fail(0, f"first line is {lines[0][:40]!r}, not 'tree'")
        header: dict[str, tuple[str, int]] = {}
        at = len(lines[0]) + 1
        for line in lines[1:]:
            key, sep, value = line.partition("=")
            if key not in _HEADER_KEYS or bool(sep) == (key == "average_output"):
                raise self.fail(at, f"unexpected header line {line[:60]!r}")
            if key in header:
                raise self.fail(at, f"header key {key} given twice")
            if "=" in value and key not in ("feature_names", "monotone_constraints"):
                raise self.fail(at, f"header line {key} holds a second '='")
            header[key] = (value, at)
            at += len(line) + 1
        missing = [key for key in _HEADER_REQUIRED if key not in header]
        if missing:
            raise self.fail(end, f"the header lacks {', '.join(missing)}")
        return header

    def header_int(self, header: dict[str, tuple[str, int]], key: str, low: int, high: int) -> int:
        value, at = header[key]
        if not _SMALL_INT.fullmatch(value) or not low <= int(value) <= high:
            raise self.fail(at, f"{key}={value[:40]!r} is not an integer in [{low}, {high}]")
        return int(value)

    def check_header_values(
        self, header: dict[str, tuple[str, int]], n_features: int, num_class: int
    ) -> None:
        if not _VERSION.fullmatch(header["version"][0]):
            raise self.fail(header["version"][1], f"version={header['version'][0][:40]!r}")
        for key in ("feature_names", "feature_infos", "monotone_constraints"):
            if key not in header:
                continue
            value, at = header[key]
            items = value.split(" ")
            if "" in items:
                raise self.fail(at, f"{key} has an empty entry (two spaces, or one at an end)")
            if len(items) != n_features:
                raise self.fail(at, f"{key} has {len(items)} entries for {n_features} features")
            if key == "monotone_constraints" and not set(items) <= {"-1", "0", "1"}:
                raise self.fail(at, "monotone_constraints holds values other than -1, 0, 1")
        if "objective" in header:
            self.check_objective(*header["objective"], num_class)

    def check_objective(self, value: str, at: int, num_class: int) -> None:
        """Binary (one class score) or multiclass with ``num_class``; a custom objective writes
        no line. LightGBM sizes its output transform by the objective's own ``num_class``."""
        name, *tokens = value.split(" ")
        allowed = {"binary": {"sigmoid"}, "multiclass": {"num_class"}}
        allowed["multiclassova"] = {"num_class", "sigmoid"}
        if name not in allowed:
            raise self.fail(
                at, f"objective {name[:40]!r} is not binary, multiclass or multiclassova"
            )
        params: dict[str, str] = {}
        for token in tokens:
            key, sep, number = token.partition(":")
            if not sep or key not in allowed[name] or key in params:
                raise self.fail(at, f"objective {name} has an unexpected part {token[:40]!r}")
            if not re.fullmatch(_FINITE, number, re.ASCII) or float(number) <= 0:
                raise self.fail(at, f"objective {name}: {key} is not a positive number")
            params[key] = number
        classes = params.get("num_class", "1")
        if (name == "binary") != (num_class == 1) or classes != str(num_class):
            raise self.fail(at, f"objective {value[:60]!r} does not match num_class={num_class}")

    # -- trees -----------------------------------------------------------------------------------
    def tree_error(self, index: int, at: int, size: int) -> ModelTextError:
        """Why tree ``index`` (``size`` bytes from ``at``) is not where tree_sizes puts it, or
        does not match :data:`_TREE`: its first bad line."""
        if not self.text.startswith(f"Tree={index}\n", at):
            return self.fail(
                at,
                f"expected 'Tree={index}' here: tree_sizes does not match the trees, or the "
                "text is cut short",
            )
        if at + size > len(self.text):
            return self.fail(
                at, f"tree {index}: tree_sizes says {size} bytes, the text ends first: cut short"
            )
        block = self.text[at : at + size]
        where = f"tree {index}"
        if not block.endswith("\n\n\n") or "\n\n" in block[:-3] or not block.isascii():
            return self.fail(at, f"{where} is not the {size} ASCII bytes that tree_sizes says")
        line_at = at + block.index("\n") + 1
        lines = block[block.index("\n") + 1 : -3].split("\n")
        fields = [f for f in _TREE_FIELDS if f[0] not in _TREE_CATEGORICAL]
        if any(line.startswith("cat_boundaries=") for line in lines):
            fields = list(_TREE_FIELDS)
        for position, line in enumerate(lines):
            key, _sep, value = line.partition("=")
            if key in _TREE_LINEAR:
                return self.fail(
                    line_at, f"{where}: a linear tree ({key}), which our models never fit"
                )
            if position >= len(fields):
                return self.fail(line_at, f"{where}: unexpected line {line[:40]!r}")
            name, number, count = fields[position]
            if key != name:
                if key in _FIELD_NAMES:
                    what = f"lacks {name} (or has its lines out of order): {key} in its place"
                else:
                    what = f"unexpected line {line[:40]!r} where LightGBM writes {name}"
                return self.fail(line_at, f"{where} {what}")
            if name == "is_linear" and value != "0":
                return self.fail(line_at, f"{where}: a linear tree, which our models never fit")
            if not re.fullmatch(_field_syntax(number, count), value, re.ASCII):
                tokens = value.split(" ") if count != _SINGLE else [value]
                bad = next((t for t in tokens if not re.fullmatch(number, t, re.ASCII)), value)
                kinds = {_INT: "an integer of at most 10 digits", _FINITE: "a finite number"}
                kind = kinds.get(number, "a number")
                return self.fail(line_at, f"{where} {name}: {bad[:40]!r} is not {kind}")
            line_at += len(line) + 1
        if len(lines) < len(fields):
            return self.fail(line_at, f"{where} lacks {fields[len(lines)][0]}")
        return self.fail(at, f"{where} is not written as LightGBM writes a tree")

    # -- after the trees -------------------------------------------------------------------------
    def check_tail(self, start: int, *, header_keys_live: bool) -> None:
        """Parameter lines ``[name: value]`` (LightGBM turns them into JSON and crashes on one
        without a colon); with no trees, LightGBM reads every line as header: no header key,
        no ``Tree=``; a last ``pandas_categorical:`` line must hold JSON (Python parses it)."""
        text = self.text
        in_parameters = False
        at = start
        for line in text[start:].split("\n"):
            if line == "parameters:" and not in_parameters:
                in_parameters = True
            elif line == "end of parameters" and in_parameters:
                in_parameters = False
            elif in_parameters and line:
                if not _PARAMETER.fullmatch(line):
                    raise self.fail(at, f"parameter line {line[:60]!r} is not '[name: value]'")
                if line.startswith("[linear_tree: ") and line[14:15] != "0":
                    raise self.fail(at, "linear_tree is on, which our models never fit")
            elif header_keys_live and (
                line.startswith("Tree=") or line.partition("=")[0] in _HEADER_KEYS
            ):
                raise self.fail(at, f"line {line[:40]!r} after 'end of trees' reads as header")
            at += len(line) + 1
        if in_parameters:
            raise self.fail(len(text), "the parameters never end: the text is cut short")
        # the line lightgbm.Booster reads, found as it finds it
        newline = text.rfind("\n", 0, max(len(text) - len(_PANDAS_KEY), 0))
        last = text[newline:].strip()
        if last.startswith(_PANDAS_KEY):
            try:
                categories = json.loads(last[len(_PANDAS_KEY) :])
                valid = categories is None or (
                    isinstance(categories, list) and all(isinstance(c, list) for c in categories)
                )
            except (ValueError, RecursionError):
                valid = False
            if not valid:
                raise self.fail(newline + 1, f"{_PANDAS_KEY} does not hold a JSON list or null")


class _Forest:
    """Every tree's fields, checked against each other together with numpy (a Python loop over
    each tree's values would cost more than LightGBM's own parse)."""

    def __init__(self, owner: _ModelText, trees: list[tuple[str, ...]], offsets: list[int]) -> None:
        self.owner = owner
        self.trees = trees  # the groups of _TREE, per tree
        self.offsets = offsets  # where each tree starts in the text

    def fail(self, tree: int, name: str, what: str) -> ModelTextError:
        line_at = self.owner.text.find(f"\n{name}=", self.offsets[tree]) + 1
        return self.owner.fail(line_at, f"tree {tree} {name}: {what}")

    def check(self, max_feature_idx: int) -> None:
        if not self.trees:
            return
        n_trees = len(self.trees)
        columns = dict(zip(_FIELD_NAMES, zip(*self.trees, strict=True), strict=True))
        n_leaves = _ints(columns["num_leaves"])
        num_cat = _ints(columns["num_cat"])
        for name, bad, what in (
            ("num_leaves", (n_leaves < 1) | (n_leaves > MAX_NUM_LEAVES), "not in [1, 131072]"),
            ("num_cat", (num_cat < 0) | (num_cat > n_leaves - 1), "not in [0, num_leaves - 1]"),
        ):
            if bad.any():
                tree = int(np.argmax(bad))
                raise self.fail(tree, name, f"{columns[name][tree]} is {what}")
        for name, count in _TREE_COUNTED:
            values = columns[name]
            spaces = map(str.count, values, itertools.repeat(" "))
            n_values = np.fromiter(spaces, np.int64, n_trees) + np.fromiter(
                map(bool, values), bool, n_trees
            )
            wanted = n_leaves if count == _PER_LEAF else n_leaves - 1
            bad = n_values != wanted
            if name == "leaf_weight":  # a single leaf's weight may be left empty: unread
                bad &= (n_leaves > 1) | (n_values > 0)
            if bad.any():
                tree = int(np.argmax(bad))
                raise self.fail(
                    tree,
                    name,
                    f"{n_values[tree]} values, but num_leaves={n_leaves[tree]} needs "
                    f"{wanted[tree]}",
                )
        # one entry per split, every tree's splits in turn
        n_splits = n_leaves - 1
        tree_of = np.repeat(np.arange(n_trees), n_splits)
        first_split = np.cumsum(n_splits) - n_splits
        node = np.arange(len(tree_of)) - first_split[tree_of]  # the split's index in its tree
        decision = _ints(columns["decision_type"])
        split = _Splits(tree_of, first_split, node, n_leaves[tree_of], n_leaves, decision)
        self.check_splits(columns, split, max_feature_idx)
        self.check_categorical(columns, split, num_cat)

    def check_splits(
        self, columns: dict[str, tuple[str, ...]], split: _Splits, max_feature_idx: int
    ) -> None:
        """Split features and decision types in range; node 0 the root, every other node and
        every leaf the child of exactly one node, numbered after its parent as LightGBM numbers
        them, so every path from the root ends at a leaf (LightGBM follows children unchecked:
        out of range reads past its arrays, a cycle never ends)."""
        feature = _ints(columns["split_feature"])
        for name, values, low, high in (
            ("split_feature", feature, 0, max_feature_idx),
            ("decision_type", split.decision, 0, _MAX_DECISION_TYPE),
        ):
            bad = (values < low) | (values > high)
            if bad.any():
                at = int(np.argmax(bad))
                raise self.fail(
                    int(split.tree_of[at]), name, f"{values[at]} is outside [{low}, {high}]"
                )
        # a tree's 2 (n - 1) children fill its 2 (n - 1) slots once each: nodes 1 to n - 2,
        # then leaves -1 to -n
        n = split.n_leaves
        slots = []
        for name in ("left_child", "right_child"):
            child = _ints(columns[name])
            internal = child > 0
            in_range = np.where(
                internal, (child > split.node) & (child <= n - 2), (child < 0) & (child >= -n)
            )
            if not in_range.all():
                at = int(np.argmax(~in_range))
                what = "out of range"
                if child[at] == 0:
                    what = "the root"
                elif 0 < child[at] <= split.node[at]:
                    what = "not numbered after it, as LightGBM numbers nodes"
                raise self.fail(
                    int(split.tree_of[at]),
                    name,
                    f"node {split.node[at]}'s child {child[at]} is {what}",
                )
            slot = np.where(internal, child - 1, n - 2 + ~child)
            slots.append(2 * split.first_split[split.tree_of] + slot)
        slot_count = np.bincount(np.concatenate(slots), minlength=2 * len(split.tree_of))
        if (slot_count != 1).any():
            twice = int(np.argmax(slot_count > 1))
            tree = int(np.searchsorted(2 * split.first_split, twice, side="right") - 1)
            position = twice - 2 * int(split.first_split[tree])
            n_nodes = int(split.tree_leaves[tree]) - 2  # nodes 1 to n - 2 take the first slots
            named = position + 1 if position < n_nodes else ~(position - n_nodes)
            raise self.fail(tree, "left_child", f"child {named} has two parents")

    def check_categorical(
        self, columns: dict[str, tuple[str, ...]], split: _Splits, num_cat: np.ndarray
    ) -> None:
        """Categorical splits: ``num_cat`` of them, their thresholds 0 to ``num_cat - 1`` once
        each, indexing ``cat_boundaries``: rising offsets from 0 to the length of
        ``cat_threshold`` (bitsets of 32-bit words). LightGBM reads them all unchecked."""
        categorical = (split.decision & 1).astype(bool)
        marked = np.bincount(split.tree_of[categorical], minlength=len(num_cat))
        given = np.array([value is not None for value in columns["cat_boundaries"]])
        bad = (marked != num_cat) | (given != (num_cat > 0))
        if bad.any():
            tree = int(np.argmax(bad))
            if marked[tree] != num_cat[tree]:
                what = f"but decision_type marks {marked[tree]} splits categorical"
            else:
                what = f"but the tree {'has' if given[tree] else 'lacks'} cat_boundaries"
            raise self.fail(tree, "num_cat", f"{num_cat[tree]}, {what}")
        trees = np.flatnonzero(num_cat)
        if not len(trees):
            return
        # the thresholds of each tree's categorical splits: 0 to num_cat - 1, once each
        in_trees = num_cat[split.tree_of] > 0
        thresholds = " ".join(columns["threshold"][t] for t in trees).split(" ")
        is_categorical = categorical[in_trees]
        index = np.array([thresholds[i] for i in np.flatnonzero(is_categorical)], dtype=float)
        tree_of = split.tree_of[in_trees][is_categorical]
        valid = (index == np.round(index)) & (index >= 0) & (index < num_cat[tree_of])
        if valid.all():
            key = (np.cumsum(num_cat) - num_cat)[tree_of] + index.astype(np.int64)
            valid = np.bincount(key)[key] == 1
        if not valid.all():
            tree = int(tree_of[np.argmax(~valid)])
            raise self.fail(
                tree,
                "threshold",
                f"the thresholds of categorical splits index cat_boundaries: they must be 0 to "
                f"{num_cat[tree] - 1} (num_cat={num_cat[tree]}), once each",
            )
        # per tree num_cat + 1 offsets, rising from 0 to the number of words
        n_offsets = np.array([_n_values(columns["cat_boundaries"][t]) for t in trees])
        n_words = np.array([_n_values(columns["cat_threshold"][t]) for t in trees])
        bad = n_offsets != num_cat[trees] + 1
        if not bad.any():
            offsets = _ints(tuple(columns["cat_boundaries"][t] for t in trees))
            first = np.cumsum(n_offsets) - n_offsets
            step = np.diff(offsets, prepend=0)
            step[first] = 0  # a tree's offsets start afresh
            falls = np.add.reduceat(step < 0, first) > 0
            bad = (offsets[first] != 0) | (offsets[first + n_offsets - 1] != n_words) | falls
        if bad.any():
            tree = int(trees[np.argmax(bad)])
            raise self.fail(
                tree,
                "cat_boundaries",
                f"must be {num_cat[tree] + 1} rising offsets from 0 to the length of cat_threshold",
            )
        words = _ints(tuple(columns["cat_threshold"][t] for t in trees))
        bad = (words < 0) | (words >= 2**32)
        if bad.any():
            tree = int(trees[np.repeat(np.arange(len(trees)), n_words)[np.argmax(bad)]])
            raise self.fail(tree, "cat_threshold", f"{words[bad][0]} is not a 32-bit word")


class _Splits(NamedTuple):
    """Per split of every tree in turn: its tree, node index, its tree's leaves, its type."""

    tree_of: np.ndarray
    first_split: np.ndarray  # per tree: the position of its first split
    node: np.ndarray
    n_leaves: np.ndarray
    tree_leaves: np.ndarray  # per tree
    decision: np.ndarray


def _n_values(value: str) -> int:
    """How many space-separated values ``value`` holds."""
    return value.count(" ") + 1 if value else 0


def _ints(values: tuple[str, ...]) -> np.ndarray:
    """The space-separated integers of ``values`` (already of LightGBM's syntax), joined.

    Empty values are left out: numpy reads a lone separator as a 0.
    """
    return np.fromstring(" ".join(filter(None, values)), dtype=np.int64, sep=" ")
