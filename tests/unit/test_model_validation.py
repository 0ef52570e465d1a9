"""Models as sklearn estimators: clear errors for bad inputs and parameters, order-free fits."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import TimeSeriesSplit, cross_val_score

from marketcast.config import load_config
from marketcast.models.crypto import CRYPTO_MODEL_NAMES, make_crypto_model
from marketcast.models.dixon_coles import DixonColes
from marketcast.models.factory import FOOTBALL_MODEL_CLASSES, make_model
from marketcast.models.gbm import LightGBMModel
from marketcast.orchestration.football import build_models
from marketcast.types import MarketKind

#: Small LightGBM fits that still grow trees (no early stopping) and bag rows by position.
SMALL_LIGHTGBM = {
    "target": "result",
    "n_estimators": 30,
    "early_stopping_rounds": 0,
    "min_child_samples": 50,
    "n_jobs": 1,
}
CRYPTO_FAST = {
    "lightgbm": {"n_estimators": 40, "early_stopping_rounds": 10, "min_validation_rows": 50},
}


def _crypto_rows(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Hourly features and direction labels with P(up) = sigmoid(0.8 * ret / vol)."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.005, 0.02, n)
    ret = rng.normal(0.0, 1.0, n) * vol
    X = pd.DataFrame(
        {
            "open_time_utc": pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC"),
            "ret_log_24h": ret,
            "realised_vol_24h": vol,
            "volume_z": rng.normal(0, 1, n),
        }
    )
    y = (rng.random(n) < expit(0.8 * ret / vol)).astype(np.int64)
    return X, y


# -- goals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["elo", "dixon_coles"])
def test_missing_goals_are_an_error_naming_the_match(name: str, epl) -> None:
    """Elo counted a NaN score as an away win; Dixon-Coles called it a negative count."""
    X, y = epl
    goals = y.astype(float)
    goals[3, 1] = np.nan
    match = re.escape(f"goals missing at row 3 (match {X['match_id'].iat[3]!r})")
    with pytest.raises(ValueError, match=match):
        make_model(name).fit(X, goals)
    with pytest.raises(ValueError, match="goals missing at row 0"):
        make_model(name).fit(X, np.full_like(goals, np.nan))


@pytest.mark.parametrize("name", ["market", "lightgbm"])
def test_goals_of_the_wrong_shape_name_the_expected_one(name: str, epl) -> None:
    X, y = epl
    message = re.escape(f"y must have shape ({len(X)}, 2), [home_goals, away_goals] per row of X")
    with pytest.raises(ValueError, match=message + re.escape(f", got ({len(X)},)")):
        make_model(name).fit(X, y[:, 0])
    with pytest.raises(ValueError, match=message + re.escape(", got (10, 2)")):
        make_model(name).fit(X, y[:10])


@pytest.mark.parametrize("name", ["lightgbm", "neural"])
@pytest.mark.parametrize(
    ("column", "what"),
    [
        ("home_goals", "is the match's result"),
        ("FTR", "is the match's result"),
        ("pin_close_home", "looks like a closing price"),
        ("avg_closing_draw", "looks like a closing price"),
    ],
)
def test_a_result_or_closing_column_in_x_is_refused(name: str, column: str, what: str, epl) -> None:
    """Both models take every numeric column: a merged-in result or closing price was learnt
    from silently (the result is the label; the closing line the yardstick)."""
    X, y = epl
    leaky = X.assign(**{column: 1.0})
    with pytest.raises(ValueError, match=re.escape(f"feature column {column!r} {what}")):
        make_model(name).fit(leaky, y)


def test_the_network_refuses_an_empty_training_frame(epl) -> None:
    """Zero rows "fitted" base rates of 1/3 and a network that forecast the market."""
    X, y = epl
    with pytest.raises(ValueError, match="no training rows"):
        make_model("neural").fit(X.iloc[:0], y[:0])


# -- fitting order -----------------------------------------------------------------------------
def test_lightgbm_forecasts_do_not_depend_on_the_order_of_simultaneous_kickoffs(epl) -> None:
    """Bagging picks rows by position: matches kicking off together used to keep any order."""
    X, y = epl
    kickoff = X["kickoff_utc"].to_numpy()
    by_match_id = np.lexsort((X["match_id"].to_numpy(dtype=str), kickoff))
    by_reversed_position = np.lexsort((-np.arange(len(X)), kickoff))
    assert not np.array_equal(by_match_id, by_reversed_position)  # the sample has ties
    forecasts = [
        LightGBMModel(**SMALL_LIGHTGBM)
        .fit(X.iloc[order], y[order])
        .predict_market_proba(X, MarketKind.OVER_UNDER_25)
        for order in (by_match_id, by_reversed_position)
    ]
    np.testing.assert_array_equal(forecasts[0], forecasts[1])


# -- parameters --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        (
            "lightgbm",
            {"validation_fraction": 1.5},
            "validation_fraction must be in [0, 1), got 1.5",
        ),
        ("lightgbm", {"bagging_fraction": 0.0}, "bagging_fraction must be in (0, 1], got 0.0"),
        ("lightgbm", {"num_leaves": 1}, "num_leaves must be an integer in [2, 131072], got 1"),
        ("lightgbm", {"markets": ("1x2", "btts")}, "markets must be a non-empty subset of"),
        ("neural", {"validation_fraction": 1.5}, "validation_fraction must be in [0, 1), got 1.5"),
        ("neural", {"window": 0}, "window must be an integer in [1, inf), got 0"),
        ("neural", {"batch_size": 0}, "batch_size must be an integer in [1, inf), got 0"),
        ("neural", {"dropout": 1.0}, "dropout must be in [0, 1), got 1.0"),
        ("neural", {"warm_rows": 0}, "warm_rows must be an integer in [1, inf) or None, got 0"),
        ("neural", {"top_k": 5}, "top_k must be <= n_experts=4, got 5"),
        ("neural", {"learning_rate": "fast"}, "learning_rate must be in (0, inf), got 'fast'"),
        # no range, so taken as given: a true-ish "no" calibrated, -5 threads went to LightGBM
        ("lightgbm", {"calibrate": "no"}, "calibrate must be true or false, got 'no'"),
        ("lightgbm", {"n_jobs": -5}, "n_jobs must be an integer in [-1, inf), got -5"),
        ("lightgbm", {"random_state": "x"}, "random_state must be an integer in [0, 4294967295]"),
        ("neural", {"warm_start": "yes"}, "warm_start must be true or false, got 'yes'"),
    ],
)
def test_parameters_out_of_range_fail_before_any_work(
    name: str, params: dict[str, object], message: str, epl
) -> None:
    """1.5 fitted silently (LightGBM) or failed deep in torch (IndexError, RuntimeError)."""
    with pytest.raises(ValueError, match=re.escape(message)):
        make_model(name, params)
    model = make_model(name).set_params(**params)
    X, y = epl
    with pytest.raises(ValueError, match=re.escape(message)):
        model.fit(X, y)
    assert not [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]


def test_a_config_with_a_parameter_out_of_range_fails_naming_model_and_parameter(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("models: [lightgbm]\nmodel_params:\n  lightgbm: {validation_fraction: 1.5}\n")
    config = load_config(path)
    with pytest.raises(ValueError, match=re.escape("model_params.lightgbm: validation_fraction")):
        build_models(config)


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("lightgbm", {"bagging_fraction": 1.5}, "bagging_fraction must be in (0, 1], got 1.5"),
        ("lightgbm", {"min_validation_rows": 0}, "min_validation_rows must be an integer in"),
        ("momentum", {"clip_z": 0.0}, "clip_z must be in (0, inf], got 0.0"),
        ("logistic", {"C": -1.0}, "C must be in (0, inf], got -1.0"),
    ],
)
def test_crypto_parameters_out_of_range_are_errors(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(f"crypto model {name!r}: {message}")):
        make_crypto_model(name, **params)
    X, y = _crypto_rows(300)
    with pytest.raises(ValueError, match=re.escape(message)):
        make_crypto_model(name).set_params(**params).fit(X, y)


# -- not fitted --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(FOOTBALL_MODEL_CLASSES))
def test_football_models_used_before_fit_raise_not_fitted(name: str, epl) -> None:
    """market, lightgbm and neural raised AttributeError naming an internal attribute."""
    X, _ = epl
    model = make_model(name)
    with pytest.raises(NotFittedError, match=f"This {type(model).__name__} instance is not fitted"):
        model.predict_proba(X)
    with pytest.raises(NotFittedError):
        model.predict_market_proba(X, MarketKind.ONE_X_TWO)
    with pytest.raises(NotFittedError):
        model.predict_market_rows(X.iloc[:2].to_dict("records"), MarketKind.ONE_X_TWO)
    with pytest.raises(NotFittedError):
        model.to_artifact()


@pytest.mark.parametrize("name", ["momentum", "logistic", "lightgbm"])
def test_crypto_models_used_before_fit_raise_not_fitted(name: str) -> None:
    X, _ = _crypto_rows(50)
    model = make_crypto_model(name)
    with pytest.raises(NotFittedError):
        model.predict_proba(X)
    with pytest.raises(NotFittedError):
        model.predict_proba(X.iloc[:0])  # LightGBM gave (0, 2) unfitted
    with pytest.raises(NotFittedError):
        model.to_artifact()


# -- other inputs ------------------------------------------------------------------------------
def test_dixon_coles_predicts_no_rows_as_empty_arrays(epl) -> None:
    """Zero rows failed with "cannot reshape array of size 0"."""
    X, y = epl
    model = DixonColes().fit(X, y)
    assert model.predict_proba(X.iloc[:0]).shape == (0, 3)
    for market in MarketKind:
        want = (0, 3 if market is MarketKind.ONE_X_TWO else 2)
        assert model.predict_market_proba(X.iloc[:0], market).shape == want
        assert model.predict_market_rows([], market).shape == want


def test_a_text_column_is_named_in_the_error(epl) -> None:
    """LightGBM used every extra column and said only "could not convert string to float"."""
    X, y = epl
    with_referee = X.assign(referee="M Dean")
    with pytest.raises(ValueError, match=re.escape("feature columns ['referee'] cannot be read")):
        LightGBMModel(**SMALL_LIGHTGBM).fit(with_referee, y)


def test_crypto_lightgbm_on_too_few_rows_is_a_clear_error() -> None:
    """One row failed inside LightGBM: "Check failed: (num_data) > (0)"."""
    X, y = _crypto_rows(1)
    with pytest.raises(ValueError, match="1 rows are too few"):
        make_crypto_model("lightgbm").fit(X, y)
    X, y = _crypto_rows(2)
    assert make_crypto_model("lightgbm").fit(X, y).predict_proba(X).shape == (2, 2)


# -- crypto models as sklearn classifiers ------------------------------------------------------
@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_crypto_models_cross_validate_and_calibrate_as_sklearn_classifiers(name: str) -> None:
    """roc_auc scored NaN (not a classifier) and CalibratedClassifierCV raised IndexError."""
    X, y = _crypto_rows()
    model = make_crypto_model(name, **CRYPTO_FAST.get(name, {}))
    scores = cross_val_score(model, X, y, cv=TimeSeriesSplit(3), scoring="roc_auc")
    assert np.isfinite(scores).all()
    calibrated = CalibratedClassifierCV(model, cv=TimeSeriesSplit(3)).fit(X, y)
    p = calibrated.predict_proba(X)
    assert p.shape == (len(X), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    fitted = model.fit(X, y)
    expected = (fitted.predict_proba(X)[:, 1] > 0.5).astype(np.int64)
    np.testing.assert_array_equal(fitted.predict(X), expected)
    assert fitted.score(X, y) == pytest.approx(float((expected == y).mean()))


def test_off_settings_stay_expressible() -> None:
    """The range checks refused values that switch something off: no winsorising, no penalty,
    never stale, a whole number of bets written as a float, a fresh random bootstrap."""
    from marketcast.evaluation.backtest import BacktestConfig
    from marketcast.models.crypto import make_crypto_model
    from marketcast.serving.service import ServiceSettings

    assert make_crypto_model("momentum", clip_z=float("inf")).clip_z == float("inf")
    assert np.isinf(make_crypto_model("logistic", C=float("inf")).C)
    settings = ServiceSettings(stale_after_days=float("inf"), min_bets_for_liquidity=100.0)
    assert settings.stale_after_days == float("inf")
    assert BacktestConfig(seed=None).seed is None
    with pytest.raises(ValueError, match="stale_after_days"):
        ServiceSettings(stale_after_days=float("nan"))
    with pytest.raises(ValueError, match="min_bets_for_liquidity"):
        ServiceSettings(min_bets_for_liquidity=2.5)


def test_a_device_that_is_not_here_fails_the_parameter_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """device="cuda" on a machine without one failed inside torch, mid-fit, as an assertion."""
    import torch

    from marketcast.models.neural import NeuralModel

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match=r"device 'cuda' is not available here \(CUDA: False\)"):
        NeuralModel(device="cuda").check_params()
    NeuralModel(device="cpu").check_params()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("elo", {"use_pi": "maybe"}, "use_pi must be true or false, got 'maybe'"),
        ("dixon_coles", {"warm_start": 1}, "warm_start must be true or false, got 1"),
    ],
)
def test_a_model_without_ranges_still_refuses_a_parameter_of_the_wrong_kind(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make_model(name, params)
