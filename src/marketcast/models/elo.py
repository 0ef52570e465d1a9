"""Elo model: an ordered logit from pre-match rating differences to home/draw/away."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator

from marketcast.models.base import FeatureSource, check_goals, feature_matrix, require_fitted
from marketcast.types import MarketKind

ARTIFACT_FILE = "elo_model.json"
#: Elo points per unit of the first covariate (keeps the coefficients of order one).
ELO_SCALE = 100.0
#: Weight, in matches, of the pseudo-matches at z = 0 (split evenly over home/draw/away) added to
#: the likelihood so that no class gets probability 0. With COEF_RIDGE it moves forecasts fitted
#: on 1,140 real matches by <= 2.2e-6 and on 7,456 by <= 3e-7 (docs/models.md, "Elo model").
PSEUDO_MATCHES = 0.01
#: Ridge on the coefficients, ``COEF_RIDGE / 2 * |beta|^2`` added to the summed NLL (a N(0, 1/ridge)
#: prior): keeps them finite on separable data (a handful of matches).
COEF_RIDGE = 1e-4


def ordered_logit_proba(
    z: npt.NDArray[np.float64], cut_away: float, cut_draw: float
) -> npt.NDArray[np.float64]:
    """(P(home), P(draw), P(away)) of the ordered logit with latent ``z`` and two cut points.

    ``P(away) = σ(cut_away - z)``, ``P(away or draw) = σ(cut_draw - z)``, ``cut_away < cut_draw``.

    Examples
    --------
    >>> ordered_logit_proba(np.array([0.0]), -1.0, 1.0).round(3)
    array([[0.269, 0.462, 0.269]])
    """
    f_away = expit(cut_away - z)
    # f_draw - f_away written without cancellation, so a small draw share does not round to 0
    p_draw = expit(cut_draw - z) * expit(z - cut_away) * -np.expm1(cut_away - cut_draw)
    return np.stack([expit(z - cut_draw), p_draw, f_away], axis=1)


def _negative_log_likelihood(
    params: npt.NDArray[np.float64],
    x: npt.NDArray[np.float64],
    outcome: npt.NDArray[np.intp],
    weight: npt.NDArray[np.float64] | None = None,
    ridge: float = 0.0,
) -> tuple[float, npt.NDArray[np.float64]]:
    """Weighted mean NLL and gradient; ``params = [beta..., cut_away, log(cut_draw - cut_away)]``.

    The mean is over the total ``weight`` (1 per row when ``None``); ``ridge / 2 * |beta|^2`` is
    added to the weighted sum before dividing.
    """
    beta, c1, log_gap = params[:-2], params[-2], params[-1]
    w = np.ones(len(outcome)) if weight is None else weight
    gap = np.exp(log_gap)
    c2 = c1 + gap
    z = x @ beta
    f1 = expit(c1 - z)
    f2 = expit(c2 - z)
    d1 = f1 * (1.0 - f1)
    d2 = f2 * (1.0 - f2)
    # f2 - f1 = f2 * (1 - f1) * (1 - exp(-gap)), written without cancellation: it stays > 0 and
    # accurate when the gap is tiny (training rows without a draw)
    p_draw = f2 * expit(z - c1) * -np.expm1(-gap)
    p = np.choose(outcome, [expit(z - c2), p_draw, f1])
    p = np.maximum(p, 1e-300)
    # d log p / d c1, d c2 (cut points as free parameters), and d log p / d z, times the weight
    g_c1 = w * np.choose(outcome, [np.zeros_like(z), -d1 / p, 1.0 - f1])
    g_c2 = w * np.choose(outcome, [-f2, d2 / p, np.zeros_like(z)])
    g_z = -(g_c1 + g_c2)
    n = float(w.sum())
    grad = np.concatenate(
        [
            (-(x.T @ g_z) + ridge * beta) / n,
            [-(g_c1.sum() + g_c2.sum()) / n, -(g_c2.sum() * gap) / n],
        ]
    )
    value = (-np.dot(w, np.log(p)) + 0.5 * ridge * np.dot(beta, beta)) / n
    return float(value), grad


class EloModel(BaseEstimator):  # type: ignore[misc]
    """Ordered logit on the pre-match Elo difference (and optionally the pi-rating goal edge).

    The latent strength is ``z = b1 * (elo_home - elo_away) / 100 [+ b2 * pi_expected_gd]``; two
    cut points split it into away / draw / home. Home advantage lives in the cut points.

    Parameters
    ----------
    use_pi
        Add ``pi_expected_gd`` from :func:`marketcast.features.ratings.pi_ratings` as a covariate.
    """

    #: The markets it prices (evaluate and run refuse a market no chosen model prices before any
    #: fit): ratings carry no goal totals or margins.
    markets: ClassVar[tuple[str, ...]] = ("1x2",)

    def __init__(self, *, use_pi: bool = False) -> None:
        self.use_pi = use_pi

    def _design(self, X: FeatureSource) -> npt.NDArray[np.float64]:
        """The covariates of a feature frame or of feature rows, shape (n, 1 or 2)."""
        names = ("elo_home", "elo_away") + (("pi_expected_gd",) if self.use_pi else ())
        values = feature_matrix(X, names)
        return np.column_stack([(values[:, 0] - values[:, 1]) / ELO_SCALE, values[:, 2:]])

    def fit(self, X: pd.DataFrame, y: npt.NDArray[np.int_]) -> Self:
        """Fit the coefficients and cut points by maximum likelihood, lightly regularised.

        The likelihood adds ``PSEUDO_MATCHES`` pseudo-matches at ``z = 0`` split evenly over
        home/draw/away and a ridge ``COEF_RIDGE`` on the coefficients, so that a training set with
        a result never seen (one match, no draws) still fits finite parameters and gives every
        class a probability > 0.

        Parameters
        ----------
        X
            Feature frame with ``elo_home``, ``elo_away`` (and ``pi_expected_gd`` if ``use_pi``).
        y
            Goals, shape (n, 2) ``[home_goals, away_goals]``, none missing. Rows with NaN
            features are skipped.

        Returns
        -------
        EloModel
            The fitted estimator.

        Raises
        ------
        ValueError
            For goals of another shape, a missing or negative count (naming its row), or an
            optimum that is not finite.
        """
        goals = check_goals(X, y)
        x = self._design(X)
        outcome = np.where(goals[:, 0] > goals[:, 1], 0, np.where(goals[:, 0] == goals[:, 1], 1, 2))
        keep = np.all(np.isfinite(x), axis=1)
        if not keep.any():
            raise ValueError("no rows with finite rating features to fit EloModel")
        x, outcome = x[keep], outcome[keep].astype(np.intp)
        # Smoothed shares (counts + 1) / (n + 3) lie in (0, 1) and keep both starting cut points
        # finite when a class is missing from the training rows (one match, no draws, ...).
        shares = (np.bincount(outcome, minlength=3) + 1.0) / (len(outcome) + 3.0)
        start_away = float(np.log(shares[2] / (1.0 - shares[2])))
        start_draw = float(np.log((shares[2] + shares[1]) / shares[0]))
        params0 = np.concatenate(
            [np.zeros(x.shape[1]), [start_away, np.log(start_draw - start_away)]]
        )
        # Pseudo-matches at z = 0, PSEUDO_MATCHES in all split evenly over the three results:
        # every class keeps a probability > 0 (a finite optimum) when the training rows never
        # show it; COEF_RIDGE keeps the coefficients finite when the rows are separable.
        x_fit = np.vstack([x, np.zeros((3, x.shape[1]))])
        outcome_fit = np.concatenate([outcome, np.arange(3, dtype=np.intp)])
        weight = np.concatenate([np.ones(len(outcome)), np.full(3, PSEUDO_MATCHES / 3.0)])
        res = minimize(
            _negative_log_likelihood,
            params0,
            args=(x_fit, outcome_fit, weight, COEF_RIDGE),
            jac=True,
            # L-BFGS-B, not BFGS: on separable rows with a class never seen (two matches, no draw)
            # BFGS's first line search ran onto the plateau log(gap) ~ -36 and stalled there.
            method="L-BFGS-B",
            options={"gtol": 1e-8, "ftol": 1e-15, "maxiter": 500},
        )
        if not (np.all(np.isfinite(res.x)) and np.isfinite(res.fun)):
            raise ValueError(
                f"EloModel fit ended at a non-finite point ({res.message}); "
                "check the rating features for extreme values"
            )
        params = np.asarray(res.x, dtype=np.float64)
        self.coef_ = params[:-2].copy()
        self.cut_away_ = float(params[-2])
        self.cut_draw_ = float(params[-2] + np.exp(params[-1]))
        self.converged_ = bool(res.success)
        self.n_train_ = len(outcome)
        self.classes_ = np.array(["home", "draw", "away"])
        return self

    def predict_proba(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Return shape (n_matches, 3); columns follow ``self.classes_``; NaN features give NaN."""
        return self._proba(X)

    def predict_market_proba(
        self, X: pd.DataFrame, market: MarketKind
    ) -> npt.NDArray[np.float64] | None:
        """1X2 probabilities; ``None`` for the goal markets (ratings carry no goal totals)."""
        return self._proba(X) if MarketKind(market) is MarketKind.ONE_X_TWO else None

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> npt.NDArray[np.float64] | None:
        """:meth:`predict_market_proba` on feature rows as mappings (the server's fast path)."""
        return self._proba(rows) if MarketKind(market) is MarketKind.ONE_X_TWO else None

    def _proba(self, X: FeatureSource) -> npt.NDArray[np.float64]:
        require_fitted(self, "coef_")
        return ordered_logit_proba(self._design(X) @ self.coef_, self.cut_away_, self.cut_draw_)

    def to_artifact(self) -> dict[str, bytes]:
        """Parameters and fitted state as one JSON file."""
        require_fitted(self, "coef_")
        state = {
            "model": "elo",
            "params": self.get_params(),
            "coef": self.coef_.tolist(),
            "cut_away": self.cut_away_,
            "cut_draw": self.cut_draw_,
            "converged": self.converged_,
            "n_train": self.n_train_,
        }
        return {ARTIFACT_FILE: json.dumps(state, indent=1, sort_keys=True).encode()}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild a fitted model from :meth:`to_artifact` output."""
        state = json.loads(files[ARTIFACT_FILE])
        model = cls(**state["params"])
        model.coef_ = np.array(state["coef"], dtype=np.float64)
        model.cut_away_ = float(state["cut_away"])
        model.cut_draw_ = float(state["cut_draw"])
        model.converged_ = bool(state["converged"])
        model.n_train_ = int(state["n_train"])
        model.classes_ = np.array(["home", "draw", "away"])
        return model
