"""NeuralModel state that must hold across edits and copies, and inputs it must not trust."""

from __future__ import annotations

import copy
import io
import json
import pickle

import numpy as np
import pytest
import torch

from marketcast.models.neural import NeuralModel
from marketcast.types import MarketKind

TINY = {
    "window": 4,
    "d_model": 8,
    "n_heads": 2,
    "d_state": 2,
    "n_experts": 2,
    "top_k": 1,
    "n_band_heads": 2,
    "max_epochs": 1,
    "batch_size": 256,
    "n_jobs": 1,
    "device": "cpu",
    "shrink_to_market": False,  # the network's own part stays in the forecast
}
MARKET_1X2 = ["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]


@pytest.fixture(scope="module")
def model(split) -> NeuralModel:
    X_train, y_train, _ = split
    return NeuralModel(random_state=1, warm_start=True, **TINY).fit(X_train, y_train)


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_band_z_survives_artifacts_warm_refits_and_set_band_z(model, split) -> None:
    X_train, y_train, X_test = split
    fitted = copy.deepcopy(model)
    fitted.network_.head.band_z = 7.0  # set on the head: the buffer carries it
    low, high = fitted.predict_band(X_test)
    files = fitted.to_artifact()
    assert _strict_json(files["neural.json"].decode())["net_config"]["band_z"] == 7.0
    rebuilt = NeuralModel.from_artifact(files)
    assert rebuilt.network_.head.band_z == 7.0
    np.testing.assert_array_equal(rebuilt.predict_band(X_test)[0], low)
    np.testing.assert_array_equal(rebuilt.predict_band(X_test)[1], high)

    fitted.set_params(band_z=5.0, warm_epochs=0).fit(X_train, y_train)  # a warm refit
    assert fitted.network_.head.band_z == 5.0
    meta = json.loads(fitted.to_artifact()["neural.json"])
    assert meta["params"]["band_z"] == meta["net_config"]["band_z"] == 5.0
    assert NeuralModel.from_artifact(fitted.to_artifact()).network_.head.band_z == 5.0

    assert fitted.set_band_z(3.0) is fitted
    assert fitted.band_z == fitted.network_.head.band_z == fitted.network_.config.band_z == 3.0
    assert pickle.loads(pickle.dumps(fitted)).network_.head.band_z == 3.0


def test_artifact_without_a_band_z_buffer_takes_the_config_value(model, split) -> None:
    _, _, X_test = split
    files = model.to_artifact()
    tensors = torch.load(io.BytesIO(files["neural_state.pt"]), weights_only=True)
    assert tensors.pop("net.head.band_z_value").item() == pytest.approx(1.645)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)  # as written before band_z was a buffer
    meta = json.loads(files["neural.json"])
    meta["net_config"]["band_z"] = 2.5
    old = {"neural.json": json.dumps(meta).encode(), "neural_state.pt": buffer.getvalue()}
    rebuilt = NeuralModel.from_artifact(old)
    assert rebuilt.network_.head.band_z == 2.5
    np.testing.assert_array_equal(rebuilt.predict_proba(X_test), model.predict_proba(X_test))


def test_onnx_session_follows_edits_of_the_network(model, split) -> None:
    _, _, X_test = split
    fitted = copy.deepcopy(model).use_onnx(max_rows=8)
    head = fitted.network_.head

    def small_equals_large() -> None:
        small = fitted.predict_outputs(X_test.iloc[:3])  # onnxruntime
        large = fitted.predict_outputs(X_test.iloc[:40])  # torch
        for key, value in small.items():
            np.testing.assert_allclose(value, large[key][:3], atol=1e-5, err_msg=key)

    before = fitted.predict_outputs(X_test.iloc[:3])
    head.band_z = 7.0
    small_equals_large()
    with torch.no_grad():
        head.shrink.zero_()
    small_equals_large()
    state = {
        k: v * 0.5 if v.is_floating_point() else v for k, v in model.network_.state_dict().items()
    }
    fitted.network_.load_state_dict(state)
    small_equals_large()
    fitted.set_band_z(2.0)
    small_equals_large()
    after = fitted.predict_outputs(X_test.iloc[:3])
    assert not np.allclose(after["band_low"], before["band_low"])
    assert not np.allclose(after["logits_1x2"], before["logits_1x2"])


def test_copying_a_model_keeps_the_originals_onnx_session(model) -> None:
    fitted = copy.deepcopy(model).use_onnx(max_rows=8)
    session = fitted.onnx_session_
    twin = pickle.loads(pickle.dumps(fitted))
    clone = copy.deepcopy(fitted)
    assert not hasattr(twin, "onnx_session_")
    assert not hasattr(clone, "onnx_session_")
    assert fitted.onnx_session_ is session
    assert fitted.onnx_max_rows_ == 8


def test_an_infinite_value_in_a_teams_history_counts_as_missing(model, epl) -> None:
    X, y = epl
    fitted = copy.deepcopy(model)
    row = 490  # within the window of the team's next fixtures
    team = X["home_team"].iloc[row]
    later = X.iloc[500:]
    involved = ((later["home_team"] == team) | (later["away_team"] == team)).to_numpy()
    assert involved.any()
    forecasts = {}
    for value in (np.inf, np.nan):
        edited = X.iloc[:500].copy()
        edited.loc[edited.index[row], ["elo_home", "home_rest_days", "ah_line"]] = value
        edited.loc[edited.index[row], "mkt_1x2_home"] = -value  # -inf or NaN: no price
        forecasts[value] = fitted.update_history(edited, y[:500]).predict_proba(later)
        assert np.isfinite(fitted.history_.state).all()
    assert np.isfinite(forecasts[np.inf]).all()
    np.testing.assert_array_equal(forecasts[np.inf], forecasts[np.nan])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, -0.2, 1.5])
def test_a_market_probability_outside_0_1_is_unpriced(model, split, bad: float) -> None:
    _, _, X_test = split
    fixtures = X_test.iloc[:4]
    wrong, unpriced = fixtures.copy(), fixtures.copy()
    wrong.loc[wrong.index[1], "mkt_1x2_home"] = bad
    unpriced.loc[unpriced.index[1], "mkt_1x2_home"] = np.nan
    p = model.predict_proba(wrong)
    np.testing.assert_array_equal(p, model.predict_proba(unpriced))
    np.testing.assert_array_equal(p[[0, 2, 3]], model.predict_proba(fixtures)[[0, 2, 3]])
    rows = wrong.to_dict("records")  # the server's path agrees
    np.testing.assert_array_equal(model.predict_market_rows(rows, MarketKind.ONE_X_TWO), p)


def test_an_infinite_training_feature_is_missing_not_a_huge_mean(split) -> None:
    X_train, y_train, X_test = split
    fits = {}
    for value in (np.inf, np.nan):
        X = X_train.copy()
        X.loc[X.index[10], "home_rest_days"] = value
        fits[value] = NeuralModel(random_state=0, **{**TINY, "max_epochs": 0}).fit(X, y_train)
    with_inf, with_nan = fits[np.inf], fits[np.nan]
    assert np.isfinite(with_inf.static_mean_).all()
    assert with_inf.static_mean_ == with_nan.static_mean_
    assert with_inf.static_std_ == with_nan.static_std_
    assert "home_rest_days" in with_inf.missing_indicators_
    np.testing.assert_array_equal(with_inf.predict_proba(X_test), with_nan.predict_proba(X_test))


@pytest.mark.parametrize("goals", [np.inf, -1.0, np.nan, 1.5])  # 1.5: not a count
def test_bad_goals_are_errors_naming_the_row(model, split, goals: float) -> None:
    X_train, y_train, _ = split
    y = y_train.astype(float)
    y[7, 1] = goals
    match = str(X_train["match_id"].iat[7])
    with pytest.raises(ValueError, match=f"at row 7 \\(match '{match}'\\)"):
        NeuralModel(**TINY).fit(X_train, y)
    with pytest.raises(ValueError, match="at row 7"):
        copy.deepcopy(model).update_history(X_train, y)


def test_artifact_json_is_strict_when_validation_is_too_small(epl) -> None:
    X, y = epl
    small = NeuralModel(random_state=0, **TINY).fit(X.iloc[:200], y[:200])  # 20 < 30 rows
    assert np.isnan(small.best_val_log_loss_)
    files = small.to_artifact()
    meta = _strict_json(files["neural.json"].decode())
    assert meta["best_val_log_loss"] is None
    assert np.isnan(NeuralModel.from_artifact(files).best_val_log_loss_)
    meta["best_val_log_loss"] = float("nan")  # an artifact written before: a bare NaN
    older = {**files, "neural.json": json.dumps(meta).encode()}
    assert np.isnan(NeuralModel.from_artifact(older).best_val_log_loss_)


def test_deterministic_fit_restores_the_callers_torch_setting(epl) -> None:
    X, y = epl
    before = torch.are_deterministic_algorithms_enabled()
    assert before is False
    NeuralModel(deterministic=True, **TINY).fit(X.iloc[:200], y[:200])
    assert torch.are_deterministic_algorithms_enabled() is before
