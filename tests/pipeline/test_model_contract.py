"""One contract suite over every football model (sklearn conventions plus safe artifacts)."""

from __future__ import annotations

import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from marketcast.datasets.football_data import FootballData
from marketcast.features.football import closing_targets
from marketcast.models.base import fit_football_model
from marketcast.models.factory import FOOTBALL_MODEL_CLASSES, load_model, make_model
from marketcast.types import MarketKind

ALL_MODELS = sorted(FOOTBALL_MODEL_CLASSES)
FAST_PARAMS = {
    "lightgbm": {"n_estimators": 60, "early_stopping_rounds": 10},
    "neural": {"max_epochs": 3},
}


@pytest.fixture(scope="module")
def split(epl: FootballData, epl_features: pd.DataFrame):
    train = (epl.matches["season"] != "2021-2022").to_numpy()
    y = epl.matches[["home_goals", "away_goals"]].to_numpy()
    closing = {m: p[train] for m, p in closing_targets(epl).items()}
    return epl_features[train], y[train], epl_features[~train].reset_index(drop=True), closing


def _model(name: str):
    return make_model(name, FAST_PARAMS.get(name), seed=7)


def _fit(model, split):
    """Fit as the pipeline does: a model learning the closing line gets the closing prices."""
    X_train, y_train, _, closing = split
    return fit_football_model(model, X_train, y_train, closing)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_probabilities_are_distributions_in_class_order(name: str, split) -> None:
    X_test = split[2]
    model = _fit(_model(name), split)
    p = model.predict_proba(X_test)
    assert p.shape == (len(X_test), 3)
    assert list(model.classes_) == ["home", "draw", "away"]
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    for market in MarketKind:
        pm = model.predict_market_proba(X_test, market)
        if pm is None:
            continue
        assert pm.shape == (len(X_test), 3 if market is MarketKind.ONE_X_TWO else 2)
        assert np.all(np.isfinite(pm))
        np.testing.assert_allclose(pm.sum(axis=1), 1.0, atol=1e-9)
        # the market's name works too, as the docs write it ("1x2"): two models raised on it
        np.testing.assert_array_equal(model.predict_market_proba(X_test, market.value), pm)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_fit_does_not_mutate_inputs(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    X_before, y_before, T_before = X_train.copy(), y_train.copy(), X_test.copy()
    model = _fit(_model(name), split)
    model.predict_proba(X_test)
    pd.testing.assert_frame_equal(X_train, X_before)
    pd.testing.assert_frame_equal(X_test, T_before)
    np.testing.assert_array_equal(y_train, y_before)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_no_learned_attribute_before_fit_and_clone_works(name: str, split) -> None:
    model = _model(name)
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert learned == []
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    X_test = split[2]
    np.testing.assert_allclose(
        _fit(twin, split).predict_proba(X_test),
        _fit(_model(name), split).predict_proba(X_test),
    )


@pytest.mark.parametrize("name", ALL_MODELS)
def test_same_seed_same_probabilities(name: str, split) -> None:
    X_test = split[2]
    a = _fit(_model(name), split).predict_proba(X_test)
    b = _fit(_model(name), split).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_artifact_and_pickle_round_trips_predict_the_same(name: str, split) -> None:
    X_test = split[2]
    model = _fit(_model(name), split)
    files = model.to_artifact()
    assert files
    assert all(not f.endswith((".pkl", ".pickle", ".joblib")) for f in files)
    assert all(isinstance(b, bytes) for b in files.values())
    rebuilt = load_model(name, files)
    _same_in_every_market(
        lambda m: model.predict_market_proba(X_test, m),
        lambda m: rebuilt.predict_market_proba(X_test, m),
        rtol=1e-9,
        atol=1e-12,
    )
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_allclose(unpickled.predict_proba(X_test), model.predict_proba(X_test))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_feature_rows_predict_what_the_frame_predicts(name: str, split) -> None:
    """The server's fast path (``predict_market_rows``) is the frame path without the frame."""
    X_test = split[2].iloc[:40]
    model = _fit(_model(name), split)
    rows = X_test.to_dict("records")
    _same_in_every_market(
        lambda m: model.predict_market_proba(X_test, m),
        lambda m: model.predict_market_rows(rows, m),
        rtol=0,
        atol=0,
    )
    with pytest.raises(ValueError, match="feature rows lack column"):
        model.predict_market_rows([{"league": "E0"}], MarketKind.ONE_X_TWO)


def _same_in_every_market(
    expected: Callable[[MarketKind], np.ndarray | None],
    got: Callable[[MarketKind], np.ndarray | None],
    **tolerance: float,
) -> None:
    """Both give ``None`` for the same markets and the same probabilities for the others."""
    for market in MarketKind:
        want, have = expected(market), got(market)
        if want is None:
            assert have is None, market
        else:
            np.testing.assert_allclose(have, want, err_msg=str(market), **tolerance)
