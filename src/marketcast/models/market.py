"""The market itself as a model: de-margined pre-match prices (the bar every model must clear)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from marketcast.features.football import MARKET_COLUMNS
from marketcast.models.base import (
    CLASSES_1X2,
    FeatureSource,
    base_rates,
    check_goals,
    feature_matrix,
    fill_unpriced,
    json_bytes,
    market_labels,
    n_outcomes,
    require_fitted,
)
from marketcast.types import MarketKind


class MarketModel(BaseEstimator):  # type: ignore[misc]
    """Forecast = the de-margined pre-match price; matches nobody priced get training base rates.

    The de-margining method is chosen when the features are built (and recorded in the manifest).
    """

    def __init__(self) -> None:
        pass

    def fit(self, X: pd.DataFrame, y: np.ndarray) -> Self:
        """Learn only the fallback: base rates per market from the training labels.

        ``y`` is (n, 2) goals; a row without goals (NaN) settles no market and is skipped.
        """
        check_goals(X, y, missing_ok=True)
        y = np.asarray(y)
        self.base_rates_ = {
            m.value: base_rates(market_labels(m, X, y), n_outcomes(m)).tolist() for m in MarketKind
        }
        self.classes_ = CLASSES_1X2
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Return shape (n_matches, 3) in ``classes_`` order."""
        p = self.predict_market_proba(X, MarketKind.ONE_X_TWO)
        assert p is not None
        return p

    def predict_market_proba(self, X: FeatureSource, market: MarketKind) -> np.ndarray | None:
        """De-margined pre-match probabilities for ``market``; base rates where unpriced."""
        require_fitted(self, "base_rates_")
        market = MarketKind(market)  # "1x2" works as well as MarketKind.ONE_X_TWO
        p = feature_matrix(X, MARKET_COLUMNS[market])
        return fill_unpriced(p, self.base_rates_[market.value])

    def predict_market_rows(
        self, rows: Sequence[Mapping[str, Any]], market: MarketKind
    ) -> np.ndarray | None:
        """:meth:`predict_market_proba` on feature rows as mappings (the server's fast path)."""
        return self.predict_market_proba(rows, market)

    def to_artifact(self) -> dict[str, bytes]:
        """The fallback base rates as JSON."""
        require_fitted(self, "base_rates_")
        return {"market.json": json_bytes({"base_rates": self.base_rates_})}

    @classmethod
    def from_artifact(cls, files: dict[str, bytes]) -> Self:
        """Rebuild from :meth:`to_artifact` output."""
        model = cls()
        model.base_rates_ = json.loads(files["market.json"])["base_rates"]
        model.classes_ = CLASSES_1X2
        return model
