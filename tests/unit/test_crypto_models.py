"""Crypto direction models: one contract suite, plus what each model must learn."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.base import clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from marketcast.models.crypto import (
    CRYPTO_MODEL_NAMES,
    LightGBMDirectionModel,
    LogisticModel,
    MomentumModel,
    load_crypto_model,
    make_crypto_model,
)

BTC_CSV = Path("/work/shared/data/crypto/BTCUSDT_1h.csv")
FAST_PARAMS: dict[str, dict[str, object]] = {
    "lightgbm": {
        "n_estimators": 60,
        "min_validation_rows": 50,
        "early_stopping_rounds": 10,
        "n_jobs": 1,
    },
}
LN2 = float(np.log(2.0))


def btc_features(n_rows: int = 4000) -> tuple[pd.DataFrame, np.ndarray]:
    """Causal features and next-bar direction labels from the first ``n_rows`` BTC hours.

    Dead-zone bars (|next log return| < 1 bp) and bars without a next bar are dropped, as the
    caller of the models does.
    """
    raw = pd.read_csv(BTC_CSV, nrows=n_rows, parse_dates=["date"])
    raw["volume"] = raw["volume"].where(raw["volume"] > 0)  # a zero-volume hour: no log volume
    close = raw["close"].to_numpy(dtype=float)
    log_close = pd.Series(np.log(close))
    ret_1 = log_close.diff()
    frame = pd.DataFrame(
        {
            "open_time_utc": raw["date"].dt.tz_localize("UTC"),
            "pair": raw["ticker"],
            "ret_1": ret_1,
            "ret_log_24h": log_close.diff(24),
            "ret_log_168h": log_close.diff(168),
            "realised_vol_24h": ret_1.rolling(24).std(),
            "realised_vol_168h": ret_1.rolling(168).std(),
            "log_quote_volume_24h": np.log(raw["volume"] * raw["close"]),
            "spread_estimate_168h": (2 * (raw["high"] - raw["low"]) / (raw["high"] + raw["low"]))
            / 10,
        }
    )
    frame["trend_strength_168h"] = frame["ret_log_168h"] / (
        frame["realised_vol_168h"] * np.sqrt(168)
    )
    volume = np.log(raw["volume"])
    frame["volume_z"] = (volume - volume.rolling(168).mean()) / volume.rolling(168).std()
    next_ret = log_close.shift(-1) - log_close
    keep = next_ret.notna() & (next_ret.abs() >= 1e-4)
    frame = frame[keep.to_numpy()].reset_index(drop=True)
    y = (next_ret[keep] > 0).to_numpy(dtype=np.int64)
    return frame, y


def synthetic(n: int = 3000, seed: int = 0, k_true: float = 0.8) -> tuple[pd.DataFrame, np.ndarray]:
    """Features with NaNs; P(up) = sigmoid(k_true * standardised ret_24 / vol_24)."""
    rng = np.random.default_rng(seed)
    vol = rng.uniform(0.005, 0.02, n)
    ret_24 = rng.normal(0.0, 1.0, n) * vol
    frame = pd.DataFrame(
        {
            "open_time_utc": pd.date_range("2022-01-01", periods=n, freq="h", tz="UTC"),
            "ret_1": rng.normal(0, 0.01, n),
            "ret_log_24h": ret_24,
            "realised_vol_24h": vol,
            "trend_strength_168h": rng.normal(0, 1, n),
            "volume_z": rng.normal(0, 1, n),
            "funding_rate": rng.normal(0, 1e-4, n),
        }
    )
    frame.loc[rng.random(n) < 0.05, "volume_z"] = np.nan
    frame.loc[rng.random(n) < 0.05, "funding_rate"] = np.nan
    z = np.clip(ret_24 / vol / np.std(ret_24 / vol), -4, 4)
    y = (rng.random(n) < expit(k_true * z)).astype(np.int64)
    return frame, y


@pytest.fixture(scope="module")
def split() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame, np.ndarray]:
    X, y = synthetic()
    cut = 2400
    return X.iloc[:cut], y[:cut], X.iloc[cut:].reset_index(drop=True), y[cut:]


def _model(name: str) -> object:
    return make_crypto_model(name, **FAST_PARAMS.get(name, {}))


# -- contract suite ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_probabilities_are_distributions(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    model = _model(name).fit(X_train, y_train)
    p = model.predict_proba(X_test)
    assert p.shape == (len(X_test), 2)
    assert list(model.classes_) == [0, 1]
    assert np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_no_learned_attribute_before_fit_and_clone_works(name: str, split) -> None:
    model = _model(name)
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert learned == []
    twin = clone(model)
    assert twin.get_params() == model.get_params()
    X_train, y_train, X_test, _ = split
    np.testing.assert_array_equal(
        twin.fit(X_train, y_train).predict_proba(X_test),
        _model(name).fit(X_train, y_train).predict_proba(X_test),
    )


@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_same_seed_same_probabilities(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    a = _model(name).fit(X_train, y_train).predict_proba(X_test)
    b = _model(name).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_artifact_round_trip_predicts_identically(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    model = _model(name).fit(X_train, y_train)
    files = model.to_artifact()
    assert files
    assert all(isinstance(b, bytes) for b in files.values())
    assert all(f.endswith((".json", ".txt")) for f in files)
    rebuilt = load_crypto_model(name, files)
    np.testing.assert_array_equal(rebuilt.predict_proba(X_test), model.predict_proba(X_test))
    assert rebuilt.get_params() == model.get_params()
    unpickled = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(unpickled.predict_proba(X_test), model.predict_proba(X_test))


@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_inputs_are_not_mutated(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    X_before, y_before, T_before = X_train.copy(), y_train.copy(), X_test.copy()
    _model(name).fit(X_train, y_train).predict_proba(X_test)
    pd.testing.assert_frame_equal(X_train, X_before)
    pd.testing.assert_frame_equal(X_test, T_before)
    np.testing.assert_array_equal(y_train, y_before)


@pytest.mark.parametrize("name", CRYPTO_MODEL_NAMES)
def test_bad_labels_name_the_row(name: str, split) -> None:
    X_train, y_train, _, _ = split
    y_bad = y_train.copy()
    y_bad[7] = 2
    with pytest.raises(ValueError, match="y row 7"):
        _model(name).fit(X_train, y_bad)


@pytest.mark.parametrize("name", ["momentum", "logistic", "lightgbm"])
def test_missing_feature_column_at_predict_is_an_error(name: str, split) -> None:
    X_train, y_train, X_test, _ = split
    model = _model(name).fit(X_train, y_train)
    with pytest.raises(ValueError, match="lacks columns"):
        model.predict_proba(X_test.drop(columns=["ret_log_24h"]))


def test_factory_rejects_unknown_names_and_parameters() -> None:
    with pytest.raises(ValueError, match="unknown crypto model 'arima'"):
        make_crypto_model("arima")
    with pytest.raises(ValueError, match="no parameters \\['depth'\\]"):
        make_crypto_model("logistic", depth=3)
    assert make_crypto_model("logistic", C=2.0).C == 2.0


# -- baselines ---------------------------------------------------------------------------------
def test_flat_and_buy_and_hold_are_constant(split) -> None:
    X_train, y_train, X_test, _ = split
    np.testing.assert_array_equal(
        make_crypto_model("flat").fit(X_train, y_train).predict_proba(X_test), 0.5
    )
    p = make_crypto_model("buy_and_hold", p_up=0.99).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_allclose(p[:, 1], 0.99)
    with pytest.raises(ValueError, match="p_up"):
        make_crypto_model("buy_and_hold", p_up=0.4).fit(X_train, y_train)


# -- momentum ----------------------------------------------------------------------------------
@pytest.mark.parametrize("k_true", [0.8, -0.6, 0.0])
def test_momentum_slope_is_the_maximum_likelihood_one(k_true: float) -> None:
    X, y = synthetic(n=20000, seed=3, k_true=k_true)
    model = MomentumModel(column="ret_log_24h", scale="realised_vol_24h").fit(X, y)
    assert model.k_ == pytest.approx(k_true, abs=0.08)
    # calibrated: the mean forecast matches the up-rate among rows the model calls "up"
    p_up = model.predict_proba(X)[:, 1]
    called_up = p_up > 0.55
    if k_true != 0.0:
        assert p_up[called_up].mean() == pytest.approx(y[called_up].mean(), abs=0.02)
    assert log_loss(y, p_up) <= LN2 + 1e-12


def test_momentum_without_signal_or_volatility_has_no_view() -> None:
    X, y = synthetic(n=2000, seed=4, k_true=1.0)
    model = MomentumModel().fit(X, y)
    probe = X.iloc[:3].copy()
    probe.loc[0, "ret_log_24h"] = np.nan
    probe.loc[1, "realised_vol_24h"] = 0.0
    probe.loc[2, "realised_vol_24h"] = np.nan
    np.testing.assert_array_equal(model.predict_proba(probe)[:, 1], 0.5)
    assert model.k_ > 0.5


# -- logistic ----------------------------------------------------------------------------------
def test_logistic_scaler_statistics_come_from_the_training_fold_only(split) -> None:
    X_train, y_train, X_test, _ = split
    model = LogisticModel().fit(X_train, y_train)
    columns = model.feature_columns_
    assert "open_time_utc" not in columns
    train = X_train[columns].to_numpy(dtype=float)
    medians = np.nanmedian(train, axis=0)
    imputed = np.where(np.isnan(train), medians, train)
    np.testing.assert_array_equal(model.medians_, medians)
    np.testing.assert_allclose(model.means_, imputed.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(model.scales_, imputed.std(axis=0), rtol=1e-12)
    # the whole frame's statistics differ, so the test would notice a fit on train + test
    everything = pd.concat([X_train, X_test])[columns].to_numpy(dtype=float)
    assert not np.allclose(np.nanmedian(everything, axis=0), model.medians_)


def test_logistic_matches_the_sklearn_pipeline(split) -> None:
    X_train, y_train, X_test, _ = split
    columns = ["ret_1", "ret_log_24h", "realised_vol_24h", "volume_z", "funding_rate"]
    ours = LogisticModel(C=0.5, feature_columns=columns).fit(X_train, y_train)
    reference = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=0.5, max_iter=1000)
    ).fit(X_train[columns].to_numpy(), y_train)
    np.testing.assert_allclose(
        ours.predict_proba(X_test), reference.predict_proba(X_test[columns].to_numpy()), atol=1e-6
    )


def test_logistic_handles_an_all_missing_and_a_constant_column(split) -> None:
    X_train, y_train, X_test, _ = split
    X_odd = X_train.assign(dead=np.nan, const=3.0)
    model = LogisticModel().fit(X_odd, y_train)
    p = model.predict_proba(X_test.assign(dead=1.0, const=3.0))
    assert np.all(np.isfinite(p))
    k = model.feature_columns_.index("const")
    assert model.scales_[k] == 1.0
    with pytest.raises(ValueError, match="only class 1"):
        LogisticModel().fit(X_train, np.ones(len(X_train), dtype=int))


# -- lightgbm ----------------------------------------------------------------------------------
def test_lightgbm_early_stops_on_the_latest_tenth_in_time_order(split) -> None:
    X_train, y_train, X_test, _ = split
    params = {
        "n_estimators": 80,
        "min_validation_rows": 50,
        "early_stopping_rounds": 10,
        "n_jobs": 1,
    }
    model = LightGBMDirectionModel(**params).fit(X_train, y_train)
    assert 1 <= model.best_iteration_ <= 80
    assert model.booster_.num_trees() == model.best_iteration_
    # the recorded validation loss is that of a booster fitted on the first 90% by time
    n_train = len(X_train) - int(len(X_train) * 0.1)
    cols = model.feature_columns_
    probe = lgb.train(
        model._lgb_params(),
        lgb.Dataset(X_train[cols].to_numpy(dtype=float)[:n_train], y_train[:n_train]),
        num_boost_round=model.best_iteration_,
    )
    late = probe.predict(X_train[cols].to_numpy(dtype=float)[n_train:])
    assert model.validation_log_loss_ == pytest.approx(log_loss(y_train[n_train:], late), rel=1e-9)
    # shuffled rows are put back in time order: the same model comes out
    shuffled = np.random.default_rng(1).permutation(len(X_train))
    again = LightGBMDirectionModel(**params).fit(X_train.iloc[shuffled], y_train[shuffled])
    assert again.best_iteration_ == model.best_iteration_
    np.testing.assert_allclose(again.predict_proba(X_test), model.predict_proba(X_test))


def test_lightgbm_early_stopping_purges_labels_that_overlap_the_held_out_rows(split) -> None:
    """A row whose label resolves after the held-out tenth opens never trains the probe booster.

    Labels of 24 bars: the last 24 training hours (by time) overlap the held-out rows' bars and
    are purged; the probe (and so the recorded held-out loss) is fitted on the rest, the final
    booster on every row, and the label end is never a feature.
    """
    X_train, y_train, X_test, _ = split
    X = X_train.assign(label_end_utc=X_train["open_time_utc"] + pd.Timedelta(hours=24))
    params = {"n_estimators": 80, "min_validation_rows": 50, "early_stopping_rounds": 10}
    model = LightGBMDirectionModel(**params, n_jobs=1).fit(X, y_train)
    n_train = len(X) - int(len(X) * 0.1)
    opens = X["open_time_utc"].iloc[n_train]
    purged = int((X["label_end_utc"].iloc[:n_train] >= opens).sum())
    assert purged == 24 == model.n_purged_
    assert "label_end_utc" not in model.feature_columns_
    cols = model.feature_columns_
    matrix = X[cols].to_numpy(dtype=float)
    probe = lgb.train(
        model._lgb_params(),
        lgb.Dataset(matrix[: n_train - purged], y_train[: n_train - purged]),
        num_boost_round=model.best_iteration_,
    )
    late = probe.predict(matrix[n_train:])
    assert model.validation_log_loss_ == pytest.approx(log_loss(y_train[n_train:], late), rel=1e-9)
    assert model.booster_.num_trees() == model.best_iteration_
    # shuffled rows: the same purge in time order
    shuffled = np.random.default_rng(2).permutation(len(X))
    again = LightGBMDirectionModel(**params, n_jobs=1).fit(X.iloc[shuffled], y_train[shuffled])
    assert again.n_purged_ == 24
    np.testing.assert_allclose(again.predict_proba(X_test), model.predict_proba(X_test))
    # a label that never resolves (NaT) never trains the probe
    unresolved = X.assign(label_end_utc=X["label_end_utc"].where(X.index != 0))
    assert LightGBMDirectionModel(**params, n_jobs=1).fit(unresolved, y_train).n_purged_ == 25
    with pytest.raises(ValueError, match="must not be a feature"):
        LightGBMDirectionModel(feature_columns=["ret_1", "label_end_utc"]).fit(X, y_train)


def test_lightgbm_stops_early_on_noise_and_learns_a_signal(split) -> None:
    X_train, y_train, X_test, y_test = split
    params = {
        "n_estimators": 200,
        "min_validation_rows": 50,
        "early_stopping_rounds": 15,
        "n_jobs": 1,
    }
    noise = np.random.default_rng(5).integers(0, 2, len(y_train))
    assert LightGBMDirectionModel(**params).fit(X_train, noise).best_iteration_ < 200
    model = LightGBMDirectionModel(**params, min_child_samples=50).fit(X_train, y_train)
    assert log_loss(y_test, model.predict_proba(X_test)[:, 1]) < LN2 - 0.01


# -- real data ---------------------------------------------------------------------------------
@pytest.mark.skipif(not BTC_CSV.exists(), reason="shared BTC data not present")
def test_models_on_real_btc_hours_are_sane_out_of_sample() -> None:
    X, y = btc_features(4000)
    cut = int(len(X) * 0.75)
    X_train, y_train, X_test, y_test = X.iloc[:cut], y[:cut], X.iloc[cut:], y[cut:]
    assert X_train.isna().any().any()  # warm-up NaNs reach the models
    losses = {}
    for name in ("momentum", "logistic", "lightgbm"):
        model = _model(name).fit(X_train, y_train)
        p_up = model.predict_proba(X_test)[:, 1]
        assert np.all(np.isfinite(p_up))
        losses[name] = log_loss(y_test, p_up)
        # calibrated models stay near a coin flip on an hourly direction: no wild forecasts
        assert losses[name] < LN2 + 0.02, (name, losses[name])
    assert json.loads(_model("logistic").fit(X_train, y_train).to_artifact()["logistic.json"])[
        "feature_columns"
    ] == [c for c in X.columns if c not in ("open_time_utc", "pair")]
