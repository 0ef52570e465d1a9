"""What every football model shares: labels per market, probability clean-up, artifact helpers."""

from __future__ import annotations

import inspect
import json
import logging
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.special import log_softmax
from sklearn.exceptions import NotFittedError

from marketcast.datasets.football_data import (
    CLOSING_SOURCE_COLUMNS,
    HEADER_ALIASES,
    STAT_COLUMNS,
    STAT_SOURCE_COLUMNS,
    UNREAD_STAT_SOURCE_COLUMNS,
)
from marketcast.labels.football import (
    asian_handicap_label,
    asian_handicap_result,
    outcome_1x2,
    outcome_over_under,
)
from marketcast.types import OUTCOMES, MarketKind

log = logging.getLogger(__name__)

CLASSES_1X2 = np.array(OUTCOMES[MarketKind.ONE_X_TWO])
#: Below this many rows a model predicts on one thread: a server's request is a handful of
#: rows, and thread pools waiting on a busy core cost more than they save (130 ms vs 5 ms).
SMALL_BATCH_ROWS = 256


class FootballModel(Protocol):
    """The estimator contract every football model follows (sklearn conventions)."""

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self: ...

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray: ...

    def predict_market_proba(self, X: pd.DataFrame, market: MarketKind) -> np.ndarray | None: ...

    def to_artifact(self) -> dict[str, bytes]: ...


class RowPredictor(Protocol):
    """Optional fast path: predict from feature rows (plain mappings) without a DataFrame.

    A server answering one fixture at a time spends more on building a one-row DataFrame
    (~0.5 ms with its identity columns) than a model like the market spends predicting. A
    model offering this method must return exactly what ``predict_market_proba`` returns for
    the frame built from the same rows (``tests/pipeline/test_model_contract.py`` checks every
    football model, ``tests/pipeline/test_service.py`` the served ones).
    """

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> np.ndarray | None: ...


#: What a model reads its features from: the feature frame, or a server's feature rows.
FeatureSource = pd.DataFrame | Sequence[Mapping[str, Any]]


def feature_matrix(X: FeatureSource, columns: Sequence[str], dtype: Any = float) -> np.ndarray:
    """``columns`` of a feature frame or of feature rows, shape (n, len(columns)).

    Rows are the server's fast path (:class:`RowPredictor`): one pass over them costs about a
    microsecond where building a one-row DataFrame costs half a millisecond.

    Parameters
    ----------
    X
        A feature frame, or feature rows as mappings (column name to value).
    columns
        The columns to read, in order.
    dtype
        The array's dtype (``str`` for names such as ``league``).

    Returns
    -------
    numpy.ndarray
        A new array (never a view of the frame), one row per match; a missing value (``None``
        in a row) is NaN for floats.

    Raises
    ------
    ValueError
        Naming every column the frame or the first row lacks, or every column whose values
        cannot be read as ``dtype`` (text in a float column).

    Examples
    --------
    >>> rows = [{"elo_home": 1510.0, "elo_away": 1480.0}, {"elo_home": 1600.0, "elo_away": None}]
    >>> feature_matrix(rows, ["elo_home", "elo_away"])
    array([[1510., 1480.],
           [1600.,   nan]])
    >>> feature_matrix(pd.DataFrame(rows), ["elo_away", "elo_home"])[0]
    array([1480., 1510.])
    >>> feature_matrix(rows, ["pi_expected_gd"])
    Traceback (most recent call last):
    ...
    ValueError: feature rows lack columns ['pi_expected_gd']
    """
    if isinstance(X, pd.DataFrame):
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise ValueError(f"feature frame lacks columns {missing}")
        try:
            return np.asarray(X[list(columns)].to_numpy(dtype=dtype, copy=True))  # ours to write
        except (TypeError, ValueError) as exc:
            raise _unreadable(X, columns, dtype, exc) from None
    missing = [c for c in columns if X and c not in X[0]]
    if missing:
        raise ValueError(f"feature rows lack columns {missing}")
    try:
        values = np.array([[row[c] for c in columns] for row in X], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _unreadable(X, columns, dtype, exc) from None
    return values.reshape(len(X), len(columns))


def _unreadable(X: FeatureSource, columns: Sequence[str], dtype: Any, exc: Exception) -> ValueError:
    """The error for columns of ``X`` that cannot be read as ``dtype``, naming each of them."""
    bad = []
    for c in columns:
        try:
            if isinstance(X, pd.DataFrame):
                X[c].to_numpy(dtype=dtype)
            else:
                np.array([row[c] for row in X], dtype=dtype)
        except (TypeError, ValueError):
            bad.append(c)
    return ValueError(f"feature columns {bad} cannot be read as numbers ({exc})")


def require_fitted(model: Any, attribute: str) -> None:
    """Raise sklearn's ``NotFittedError`` unless ``fit`` has set ``attribute`` on ``model``.

    What ``sklearn.utils.validation.check_is_fitted(model, attribute)`` checks, at ~0.1 µs
    instead of ~2 µs: it runs on every call of the serving fast path.

    Examples
    --------
    >>> class Model:
    ...     pass
    >>> require_fitted(Model(), "coef_")
    Traceback (most recent call last):
    ...
    sklearn.exceptions.NotFittedError: This Model instance is not fitted yet: call fit first
    """
    if not hasattr(model, attribute):
        raise NotFittedError(
            f"This {type(model).__name__} instance is not fitted yet: call fit first"
        )


#: Column names of a match's own result (the normalised table's and football-data.co.uk's,
#: with the older files' ``HG``, ``AG``, ``Res``), lower case.
OUTCOME_COLUMNS = frozenset(
    {"home_goals", "away_goals", "result", "fthg", "ftag", "ftr", "hthg", "htag", "htr"}
) | frozenset(
    alias.lower() for alias, name in HEADER_ALIASES.items() if name in ("FTHG", "FTAG", "FTR")
)
#: football-data's closing quotes and closing handicap line, from the loader's tables, lower case.
CLOSING_COLUMNS = frozenset(name.lower() for name in CLOSING_SOURCE_COLUMNS)
#: Statistics of a match itself (shots, corners, cards ...): the loader's ``matches`` columns and
#: football-data's, lower case.
MATCH_STAT_COLUMNS = frozenset(
    name.lower()
    for name in (
        *STAT_COLUMNS,
        *(source for source, _ in STAT_SOURCE_COLUMNS),
        *UNREAD_STAT_SOURCE_COLUMNS,
    )
)
_CLOSING_NAME = re.compile(r"(^|[^a-z])clos(e|ing)([^a-z]|$)")


def check_no_outcome_columns(X: pd.DataFrame) -> None:
    """Refuse a feature frame holding a match's result, its statistics or a closing price.

    Models that take every numeric column as a feature (the network, LightGBM) would learn
    from them: the result is the label, the match's own shots or cards are known only once it
    is played, and the closing line is the yardstick a model is judged against, known only at
    kick-off. The pipeline's features never carry any of them; a frame merged by hand may, for
    example with football-data's own columns (``FTHG``, ``HS``, ``PSCH``, ``AvgC>2.5``,
    ``AHCh``). Names are compared in any case. Pre-match odds (``PSH``, ``B365>2.5``, ``AHh``)
    are known before kick-off and pass.

    Raises
    ------
    ValueError
        Naming the first such column and why it is refused.

    Examples
    --------
    >>> check_no_outcome_columns(pd.DataFrame(columns=["elo_diff", "home_goals_for_ewm", "PSH"]))
    >>> check_no_outcome_columns(pd.DataFrame(columns=["elo_diff", "pin_close_home"]))
    Traceback (most recent call last):
    ...
    ValueError: feature column 'pin_close_home' looks like a closing price: ...
    >>> check_no_outcome_columns(pd.DataFrame(columns=["PSH", "PSCH"]))
    Traceback (most recent call last):
    ...
    ValueError: feature column 'PSCH' is football-data's closing price or line: ...
    >>> check_no_outcome_columns(pd.DataFrame(columns=["HS"]))
    Traceback (most recent call last):
    ...
    ValueError: feature column 'HS' is a statistic of the match itself: ...
    """
    for column in X.columns:
        name = str(column).lower()
        if name in OUTCOME_COLUMNS:
            raise ValueError(
                f"feature column {column!r} is the match's result: drop it from X (pass the "
                "goals as y)"
            )
        if name in CLOSING_COLUMNS:
            raise ValueError(
                f"feature column {column!r} is football-data's closing price or line: the "
                "closing line is the yardstick, known only at kick-off, never a feature (its "
                "pre-match columns, such as 'PSH' or 'AHh', may be)"
            )
        if name in MATCH_STAT_COLUMNS:
            raise ValueError(
                f"feature column {column!r} is a statistic of the match itself: known only once "
                "it is played, never a feature of it (the pipeline's shot features use earlier "
                "matches only)"
            )
        if _CLOSING_NAME.search(name):
            raise ValueError(
                f"feature column {column!r} looks like a closing price: the closing line is the "
                "yardstick, known only at kick-off, never a feature (rename it if it is known "
                "before)"
            )


def check_goals(X: pd.DataFrame, y: Any, *, missing_ok: bool = False) -> np.ndarray:
    """Goals as floats, shape (len(X), 2), checked; an error names the bad row and its match.

    Parameters
    ----------
    X
        The feature frame the goals belong to; its ``match_id`` names a bad row.
    y
        Home and away goals per row of ``X``.
    missing_ok
        Let NaN through: a match without a result settles no market (``market_labels`` gives
        it -1), for models that skip such rows.

    Raises
    ------
    ValueError
        For a shape other than (len(X), 2), a missing count (unless ``missing_ok``), or an
        infinite or negative one.

    Examples
    --------
    >>> X = pd.DataFrame({"match_id": ["E0:a", "E0:b"]})
    >>> check_goals(X, [[1, 0], [2, 2]])
    array([[1., 0.],
           [2., 2.]])
    >>> check_goals(X, [[1, 0], [np.nan, 2]])
    Traceback (most recent call last):
    ...
    ValueError: goals missing at row 1 (match 'E0:b')
    >>> check_goals(X, [1, 0])
    Traceback (most recent call last):
    ...
    ValueError: y must have shape (2, 2), [home_goals, away_goals] per row of X, got (2,)
    """
    goals = np.asarray(y)
    if goals.ndim != 2 or goals.shape[1] != 2 or goals.shape[0] != len(X):
        raise ValueError(
            f"y must have shape ({len(X)}, 2), [home_goals, away_goals] per row of X, "
            f"got {goals.shape}"
        )
    goals = goals.astype(float)
    missing = np.isnan(goals).any(axis=1)
    if missing.any() and not missing_ok:
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"goals missing at row {row}{_match_label(X, row)}")
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(goals) & (goals >= 0) & (goals == np.round(goals))
    bad = ~missing & ~counts.all(axis=1)
    if bad.any():  # goals are counts: 1.5 (an average, or xG in the wrong column) is no score
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"goals at row {row}{_match_label(X, row)} must be finite, non-negative whole "
            f"numbers, got {goals[row].tolist()}"
        )
    return goals


def check_kickoffs(X: pd.DataFrame) -> None:
    """Raise ``ValueError`` naming the first row of ``X`` whose ``kickoff_utc`` is missing.

    A model that weighs matches by age needs every training match's date.

    Examples
    --------
    >>> X = pd.DataFrame({"match_id": ["E0:a", "E0:b"], "kickoff_utc": ["2024-08-16", None]})
    >>> check_kickoffs(X.iloc[:1])
    >>> check_kickoffs(X)
    Traceback (most recent call last):
    ...
    ValueError: kickoff_utc missing at row 1 (match 'E0:b')
    """
    missing = pd.isna(X["kickoff_utc"]).to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise ValueError(f"kickoff_utc missing at row {row}{_match_label(X, row)}")


def _match_label(X: pd.DataFrame, row: int) -> str:
    """`` (match '...')`` for row ``row`` of ``X``, or nothing when it has no ``match_id``."""
    return f" (match {X['match_id'].iat[row]!r})" if "match_id" in X.columns else ""


def check_param_ranges(model: Any, ranges: Mapping[str, str]) -> None:
    """Raise ``ValueError`` naming the first parameter of ``model`` outside its range.

    ``ranges`` maps a parameter to its interval, written as in maths (``"[0, 1)"``,
    ``"(0, inf)"``); an interval followed by ``" or None"`` also takes None. A parameter whose
    default is an integer must be a whole number; a bool is never a number here. Every
    other parameter's kind is checked too (`check_param_types`).

    Examples
    --------
    >>> class Model:
    ...     def __init__(self, *, rate: float = 0.1, n_rows: int | None = 5) -> None:
    ...         self.rate, self.n_rows = rate, n_rows
    >>> check_param_ranges(Model(), {"rate": "(0, 1]", "n_rows": "[1, inf) or None"})
    >>> check_param_ranges(Model(rate=1.5), {"rate": "(0, 1]"})
    Traceback (most recent call last):
    ...
    ValueError: rate must be in (0, 1], got 1.5
    >>> check_param_ranges(Model(n_rows=2.5), {"n_rows": "[1, inf) or None"})
    Traceback (most recent call last):
    ...
    ValueError: n_rows must be an integer in [1, inf) or None, got 2.5
    """
    check_param_types(model, skip=ranges)  # the others: a bool, a seed, a thread count
    defaults = inspect.signature(type(model)).parameters
    for name, interval in ranges.items():
        value = getattr(model, name)
        bounds, _, none_ok = interval.partition(" or ")
        if value is None and none_ok:
            continue
        default = defaults[name].default
        integer = isinstance(default, numbers.Integral) and not isinstance(default, bool)
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not (number and _in_interval(float(value), bounds)) or (
            integer and not float(value).is_integer()
        ):
            kind = "an integer in" if integer else "in"
            raise ValueError(f"{name} must be {kind} {interval}, got {value!r}")


def check_param_types(model: Any, *, skip: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` naming the first constructor parameter of ``model`` whose value is
    not of its default's kind.

    A yes/no parameter takes only a bool (``calibrate: "false"``, true-ish text, calibrated), a
    whole-number one an integer (or a whole float), a number one a number (never a bool), a text
    one text, a tuple one a tuple or list. None passes: where a parameter takes it, its range
    says so (`check_param_ranges`, which checks the kinds of the parameters in ``skip``).

    Examples
    --------
    >>> class Model:
    ...     def __init__(self, *, calibrate: bool = True, seed: int = 0) -> None:
    ...         self.calibrate, self.seed = calibrate, seed
    >>> check_param_types(Model(seed=3.0))
    >>> check_param_types(Model(calibrate="no"))
    Traceback (most recent call last):
    ...
    ValueError: calibrate must be true or false, got 'no'
    >>> check_param_types(Model(seed="x"))
    Traceback (most recent call last):
    ...
    ValueError: seed must be an integer, got 'x'
    """
    skipped = set(skip)
    for name, param in inspect.signature(type(model)).parameters.items():
        default, value = param.default, getattr(model, name, None)
        if (
            name in skipped
            or default is inspect.Parameter.empty
            or default is None
            or value is None
        ):
            continue
        real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if isinstance(default, bool):
            fits, kind = isinstance(value, bool), "true or false"
        elif isinstance(default, numbers.Integral):
            fits, kind = real and float(value).is_integer(), "an integer"
        elif isinstance(default, numbers.Real):
            fits, kind = real, "a number"
        elif isinstance(default, str):
            fits, kind = isinstance(value, str), "text"
        elif isinstance(default, tuple):
            fits, kind = isinstance(value, tuple | list), "a list"
        else:
            continue
        if not fits:
            raise ValueError(f"{name} must be {kind}, got {value!r}")


def _in_interval(value: float, interval: str) -> bool:
    """Whether ``value`` lies in ``interval``, e.g. ``"[0, 1)"`` (``inf`` for no bound)."""
    low, high = (float(end) for end in interval[1:-1].split(","))
    above = value > low or (interval[0] == "[" and value == low)
    below = value < high or (interval[-1] == "]" and value == high)
    return above and below and not math.isnan(value)


#: What a model learns from: each match's result, or the de-margined closing price of the match.
TARGETS = ("result", "closing")
#: Below this many training rows with a closing price a market falls back to the results.
MIN_CLOSING_ROWS = 500

#: Per market (its value, e.g. ``"1x2"``): de-margined closing probabilities, shape (n, k),
#: aligned with the training rows, NaN where the match had no closing price. A *target* for
#: models trained on the closing line, never a feature (`fit_football_model`).
ClosingTargets = Mapping[str, np.ndarray]


def fit_football_model(
    model: Any, X: pd.DataFrame, y: np.ndarray, closing: ClosingTargets | None = None
) -> Any:
    """Fit ``model`` on ``(X, y)``; a model trained on the closing line also gets ``closing``.

    Models whose ``target`` parameter is ``"closing"`` learn the de-margined closing price of
    earlier matches instead of (or beside) their results; every other model ignores it. Such a
    model checks the closing prices itself (`closing_in_training_order`).
    """
    if getattr(model, "target", "result") == "closing":
        return model.fit(X, y, closing=closing)
    return model.fit(X, y)


def closing_in_training_order(
    target: str, closing: ClosingTargets | None, order: np.ndarray
) -> dict[str, np.ndarray]:
    """Check a model's ``target`` and return its closing targets re-ordered like its rows.

    ``order`` is the permutation a fit applies to its rows (time order). Empty for
    ``target="result"``; a clear error for an unknown target, a closing target without closing
    prices, or closing prices not aligned with the rows.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    if target != "closing":
        return {}
    if closing is None:
        raise ValueError(
            "target='closing' needs the closing probabilities: pass closing=closing_targets(data)"
        )
    out = {}
    for market, p in closing.items():
        p = np.asarray(p, dtype=float)
        if len(p) != len(order):
            raise ValueError(
                f"closing[{market!r}] has {len(p)} rows, the feature frame {len(order)}"
            )
        out[market] = p[order]
    return out


def training_targets(
    labels: np.ndarray, closing: np.ndarray | None, n_classes: int, *, name: str = ""
) -> tuple[np.ndarray, np.ndarray, str]:
    """Target probabilities (n, k), the rows that train, and which target they are.

    ``closing`` (n, k), NaN rows where no closing price: its rows that have one, renormalised,
    unless fewer than ``MIN_CLOSING_ROWS`` do (or it is None); then the one-hot results of the
    rows that settle (``labels >= 0``), and the fallback is logged under ``name``. Rows that do
    not train get all-zero targets.
    """
    if closing is not None:
        keep = np.isfinite(closing).all(axis=1)
        if keep.sum() >= MIN_CLOSING_ROWS:
            targets = np.where(keep[:, None], closing, 0.0)
            targets /= np.where(keep, targets.sum(axis=1), 1.0)[:, None]
            return targets, keep, "closing"
        log.info(
            "%s: %d training rows have a closing price, fewer than %d: learning the results",
            name,
            int(keep.sum()),
            MIN_CLOSING_ROWS,
        )
    keep = labels >= 0
    targets = np.zeros((len(labels), n_classes))
    targets[np.flatnonzero(keep), labels[keep]] = 1.0
    return targets, keep, "result"


def soft_log_loss(raw: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean cross-entropy of ``softmax(raw)`` (n, k) against rows of target probabilities.

    One-hot targets give the log loss of the results; soft ones (closing prices) the
    cross-entropy to them. ``weights`` (n,) weigh the rows (`market_label_weights`).
    """
    return float(np.average(soft_log_loss_per_row(raw, targets), weights=weights))


def soft_log_loss_per_row(raw: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The cross-entropy of each row of ``softmax(raw)`` against its target probabilities."""
    return np.asarray(-(targets * log_softmax(raw, axis=1)).sum(axis=1))


def market_labels(market: MarketKind, X: pd.DataFrame, y_goals: np.ndarray) -> np.ndarray:
    """Class index per row for ``market`` (-1 where the market does not settle one way).

    ``y_goals`` has shape (n, 2): home and away goals. Asian handicap uses ``X["ah_line"]``;
    a full push or a missing line is -1.
    """
    home_goals = np.asarray(y_goals[:, 0])
    away_goals = np.asarray(y_goals[:, 1])
    if market is MarketKind.ONE_X_TWO:
        return np.asarray(outcome_1x2(home_goals, away_goals), dtype=np.int64)
    if market is MarketKind.OVER_UNDER_25:
        return np.asarray(outcome_over_under(home_goals, away_goals, 2.5), dtype=np.int64)
    line = X["ah_line"].to_numpy(dtype=float)
    labels = np.full(len(X), -1, dtype=np.int64)
    ok = ~np.isnan(line)
    labels[ok] = asian_handicap_label(home_goals[ok] - away_goals[ok], line[ok])
    return labels


def market_label_weights(market: MarketKind, X: pd.DataFrame, y_goals: np.ndarray) -> np.ndarray:
    """Row weights of `market_labels` for a model learning the results: on an Asian handicap
    a half win or half loss (a quarter line) weighs one half, every other row one.

    The weighted likelihood's best probability of a side is then its expected share of the
    stake won, the quarter line's fair-price probability that the market, the closing line
    and Dixon-Coles give (`marketcast.models.dixon_coles.asian_handicap_proba`); unweighted, a
    half win counted as a whole one.
    """
    if market is not MarketKind.ASIAN_HANDICAP:
        return np.ones(len(X))
    goals = np.asarray(y_goals, dtype=float)
    line = X["ah_line"].to_numpy(dtype=float)
    ok = np.isfinite(line)
    weights = np.zeros(len(X))
    weights[ok] = np.abs(asian_handicap_result(goals[ok, 0] - goals[ok, 1], line[ok]))
    return weights


def normalise_rows(p: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    """Clip to ``[eps, 1]`` and renormalise each row to sum to 1."""
    p = np.clip(np.asarray(p, dtype=float), eps, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def base_rates(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Class frequencies with add-one smoothing, ignoring ``-1`` labels."""
    valid = labels[labels >= 0]
    counts = np.bincount(valid, minlength=n_classes).astype(float) + 1.0
    return counts / counts.sum()


def fill_unpriced(p: np.ndarray, rates: npt.ArrayLike) -> np.ndarray:
    """``p`` (n, k) with every row that holds a NaN (a market nobody priced) set to ``rates``.

    Fills ``p`` in place and returns it: the callers pass arrays of their own.

    Examples
    --------
    >>> fill_unpriced(np.array([[0.5, 0.5], [np.nan, 0.4]]), [0.6, 0.4])
    array([[0.5, 0.5],
           [0.6, 0.4]])
    """
    p[np.isnan(p).any(axis=1)] = np.asarray(rates)
    return p


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON bytes for an artifact file."""
    return json.dumps(obj, sort_keys=True, indent=1, allow_nan=True).encode("utf-8")


def n_outcomes(market: MarketKind) -> int:
    """Number of outcome columns for ``market``."""
    return len(OUTCOMES[market])


#: Ranges of the LightGBM parameters our boosted estimators share (`check_param_ranges`).
LIGHTGBM_RANGES = {
    "n_estimators": "[1, inf)",
    "learning_rate": "(0, inf)",
    "num_leaves": "[2, 131072]",
    "min_child_samples": "[0, inf)",
    "reg_lambda": "[0, inf)",
    "feature_fraction": "(0, 1]",
    "bagging_fraction": "(0, 1]",
    "validation_fraction": "[0, 1)",
    "early_stopping_rounds": "[0, inf)",
    "random_state": "[0, 4294967295] or None",
    "n_jobs": "[-1, inf)",  # -1 and 0: LightGBM's default thread count
}


def lightgbm_params(model: Any) -> dict[str, Any]:
    """LightGBM parameters shared by our boosted estimators, read from their attributes.

    ``model`` has ``learning_rate``, ``num_leaves``, ``min_child_samples``, ``reg_lambda``,
    ``feature_fraction``, ``bagging_fraction``, ``random_state`` and ``n_jobs``; the objective is
    the caller's. Deterministic, column-wise, silent.
    """
    return {
        "learning_rate": model.learning_rate,
        "num_leaves": model.num_leaves,
        "min_data_in_leaf": model.min_child_samples,
        "lambda_l2": model.reg_lambda,
        "feature_fraction": model.feature_fraction,
        "bagging_fraction": model.bagging_fraction,
        "bagging_freq": 1,
        "seed": model.random_state,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": model.n_jobs,
        "verbosity": -1,
    }
