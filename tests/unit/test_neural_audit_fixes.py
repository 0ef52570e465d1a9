"""NeuralModel inputs an audit found it trusted: repeated matches, part-priced 1X2, bad band_z."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pandas as pd
import pytest

from marketcast.models.neural import SEQUENCE_FEATURES, NeuralModel, TeamHistory
from tests.unit.test_neural_robustness import MARKET_1X2, TINY

STORED = SEQUENCE_FEATURES[:-1]  # the columns of ``TeamHistory.state`` (age is per query)


@pytest.fixture(scope="module")
def model(split) -> NeuralModel:
    X_train, y_train, _ = split
    return NeuralModel(random_state=1, **TINY).fit(X_train, y_train)


def _with_overlap(X: pd.DataFrame, y: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """The training rows followed by an overlapping newer pull: the last 100 rows again."""
    return pd.concat([X, X.tail(100)]), np.vstack([y, y[-100:]])


def _repeat_error(X: pd.DataFrame) -> str:
    """The error a repeat of ``X``'s row ``len(X) - 100`` must raise (as a regex)."""
    first = re.escape(repr(X["match_id"].iat[len(X) - 100]))
    return f"match_id {first} is repeated at row {len(X)} \\(100 rows repeat"


def test_update_history_refuses_repeated_match_ids_and_keeps_its_history(model, split) -> None:
    X_train, y_train, X_test = split
    fitted = copy.deepcopy(model)
    state, p = fitted.history_.state.copy(), fitted.predict_proba(X_test)
    X_dup, y_dup = _with_overlap(X_train, y_train)
    with pytest.raises(ValueError, match=_repeat_error(X_train)):
        fitted.update_history(X_dup, y_dup)
    np.testing.assert_array_equal(fitted.history_.state, state)
    np.testing.assert_array_equal(fitted.predict_proba(X_test), p)


def test_fit_refuses_repeated_match_ids_before_changing_the_model(model, split) -> None:
    X_train, y_train, X_test = split
    fitted = copy.deepcopy(model)
    base_rates, mean, p = fitted.base_rates_, fitted.static_mean_, fitted.predict_proba(X_test)
    X_dup, y_dup = _with_overlap(X_train, y_train)
    with pytest.raises(ValueError, match=_repeat_error(X_train)):
        fitted.fit(X_dup, y_dup)
    assert fitted.base_rates_ == base_rates
    assert fitted.static_mean_ == mean
    np.testing.assert_array_equal(fitted.predict_proba(X_test), p)


def test_team_history_build_refuses_repeats_but_not_rows_without_an_id(split) -> None:
    X_train, y_train, _ = split
    with pytest.raises(ValueError, match=_repeat_error(X_train)):
        TeamHistory.build(*_with_overlap(X_train, y_train))
    unnamed = X_train.assign(match_id=None)  # no ids to compare: nothing to refuse
    np.testing.assert_array_equal(
        TeamHistory.build(unnamed, y_train).state, TeamHistory.build(X_train, y_train).state
    )


@pytest.mark.parametrize("bad", [1.3, -0.2, np.inf, np.nan])
@pytest.mark.parametrize("column", MARKET_1X2)
def test_one_bad_1x2_price_unprices_the_whole_row_of_the_history(
    split, column: str, bad: float
) -> None:
    X_train, y_train, _ = split
    row = 10
    wrong, unpriced = X_train.copy(), X_train.copy()
    wrong.loc[wrong.index[row], column] = bad
    unpriced.loc[unpriced.index[row], MARKET_1X2] = np.nan
    history = TeamHistory.build(wrong, y_train)
    minute = (X_train["kickoff_utc"].iat[row] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(
        minutes=1
    )
    goals = {"home_team": y_train[row], "away_team": y_train[row][::-1]}
    for side, (goals_for, goals_against) in goals.items():
        code = history._codes[str(X_train[side].iat[row])]
        (at,) = np.flatnonzero((history.team == code) & (history.kickoff_min == minute))
        state = dict(zip(STORED, history.state[at].tolist(), strict=True))
        assert state["p_win"] == state["p_draw"] == state["p_lose"] == np.float32(1 / 3)
        assert state["price_missing"] == 1.0
        points = 3.0 if goals_for > goals_against else 1.0 if goals_for == goals_against else 0.0
        assert state["points_minus_expected"] == np.float32((points - 4.0 / 3.0) / 3.0)
    np.testing.assert_array_equal(history.state, TeamHistory.build(unpriced, y_train).state)


@pytest.mark.parametrize("z", [-1.0, math.nan, math.inf])
def test_set_band_z_refuses_a_negative_or_non_finite_value(model, split, z: float) -> None:
    _, _, X_test = split
    fitted = copy.deepcopy(model)
    low, high = fitted.predict_band(X_test)
    message = rf"^band_z must be in \[0, inf\), got {z}$"
    with pytest.raises(ValueError, match=message):
        NeuralModel(band_z=z).check_params()  # the same message as for the parameter
    with pytest.raises(ValueError, match=message):
        fitted.set_band_z(z)
    head, config = fitted.network_.head, fitted.network_.config
    assert fitted.band_z == config.band_z == 1.645  # left as it was
    assert head.band_z == pytest.approx(1.645)  # a float32 buffer
    rebuilt = NeuralModel.from_artifact(fitted.to_artifact())
    for before, after in zip((low, high), rebuilt.predict_band(X_test), strict=True):
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"band_z": -1.0}, r"band_z must be in \[0, inf\), got -1.0"),
        ({"band_z": math.nan}, r"band_z must be in \[0, inf\), got nan"),
        ({"window": 0}, r"window must be an integer in \[1, inf\), got 0"),
        ({"target": "odds"}, r"target must be one of"),
    ],
)
def test_to_artifact_refuses_params_check_params_refuses(model, params, match: str) -> None:
    fitted = copy.deepcopy(model).set_params(**params)  # set_params checks nothing
    with pytest.raises(ValueError, match=f"^neural artifact not written: {match}"):
        fitted.to_artifact()


def test_to_artifact_refuses_a_nan_band_z_set_on_the_head(model) -> None:
    fitted = copy.deepcopy(model)
    fitted.network_.head.band_z = math.nan  # the buffer is saved as the config's band_z
    with pytest.raises(ValueError, match=r"not written: band_z must be in \[0, inf\), got nan"):
        fitted.to_artifact()


def test_a_network_parameter_changed_after_the_fit_is_named_not_a_tensor_crash(
    model, split
) -> None:
    """``set_params(window=8)`` after a fit with 4: the artifact saved and loaded, then every
    forecast crashed with "The size of tensor a (8) must match the size of tensor b (4)"."""
    import json

    _, _, X_test = split
    changed = copy.deepcopy(model).set_params(window=8)
    message = r"window is 8 but the network was fitted with 4: fit again"
    with pytest.raises(ValueError, match=message):
        changed.predict_proba(X_test)
    with pytest.raises(ValueError, match=f"not written: {message}"):
        changed.to_artifact()
    with pytest.raises(ValueError, match=message):  # a warm refit trains the network it has
        changed.set_params(warm_start=True).fit(*split[:2])
    files = model.to_artifact()
    meta = json.loads(files["neural.json"])
    meta["params"]["n_experts"] = 3
    edited = {**files, "neural.json": json.dumps(meta).encode()}
    with pytest.raises(ValueError, match="n_experts is 3 but the network was fitted with 2"):
        NeuralModel.from_artifact(edited)


def test_a_network_pruned_without_folding_its_masks_saves_and_loads(model, split) -> None:
    """``magnitude_prune(..., permanent=False)`` left weight_orig and weight_mask: the artifact
    was written, and the loader refused it (it lacks tensor ...weight)."""
    from marketcast.training.compress import linear_layers, magnitude_prune

    _, _, X_test = split
    pruned = copy.deepcopy(model)
    pruned.network_ = magnitude_prune(pruned.network_, 0.5, permanent=False)
    assert any(k.endswith("weight_mask") for k in pruned.network_.state_dict())
    loaded = NeuralModel.from_artifact(pruned.to_artifact())
    np.testing.assert_allclose(
        loaded.predict_proba(X_test), pruned.predict_proba(X_test), atol=1e-6
    )
    zeros = sum(int((layer.weight == 0).sum()) for _, layer in linear_layers(loaded.network_))
    weights = sum(layer.weight.numel() for _, layer in linear_layers(loaded.network_))
    assert zeros / weights == pytest.approx(0.5, abs=0.02)  # the pruned weights stay pruned
    assert any(k.endswith("weight_mask") for k in pruned.network_.state_dict())  # left as it was


def test_a_fit_is_the_same_whatever_order_same_time_kick_offs_come_in(split) -> None:
    """A stable sort kept the caller's order of same-time kick-offs, and the minibatches and
    the validation cut moved with it: the same matches and seed gave another model."""
    X_train, y_train, X_test = split
    kickoff = pd.to_datetime(X_train["kickoff_utc"], utc=True).to_numpy()
    assert pd.Series(kickoff).duplicated().sum() > 50  # Saturday 15:00 kick-offs
    reverse = np.lexsort((-np.arange(len(X_train)), kickoff))  # reversed within each kick-off
    params = {**TINY, "max_epochs": 2, "validation_fraction": 0.2, "patience": 5}
    a = NeuralModel(random_state=4, **params).fit(X_train, y_train)
    b = NeuralModel(random_state=4, **params).fit(X_train.iloc[reverse], y_train[reverse])
    np.testing.assert_array_equal(a.predict_proba(X_test), b.predict_proba(X_test))


def test_closing_targets_missing_on_every_validation_row_leave_early_stopping_out(
    epl, caplog: pytest.LogCaptureFixture
) -> None:
    """The validation loss was NaN, which never improves: after ``patience`` epochs the fit
    restored the untrained starting weights, and said nothing."""
    X, y = epl
    n = len(X)
    closing = {
        "1x2": np.full((n, 3), 1 / 3),
        "ou25": np.full((n, 2), 0.5),
        "ah": np.full((n, 2), 0.5),
    }
    for p in closing.values():
        p[-100:] = np.nan  # the latest rows: no closing price yet
    n_valid = int(n * 0.1)
    assert n - 100 >= 500  # enough closing prices to train on them
    assert n_valid < 100  # and no validation row has one
    params = {**TINY, "max_epochs": 4, "patience": 1, "validation_fraction": 0.1}
    fitted = NeuralModel(random_state=0, target="closing", **params).fit(X, y, closing=closing)
    assert fitted.target_used_["1x2"] == "closing"
    assert fitted.best_epoch_ == 4  # every epoch trained, the last weights kept
    assert f"none of the {n_valid} validation rows has a 1X2 target" in caplog.text


def test_a_league_unseen_in_training_gets_the_average_leagues_embedding(model, split) -> None:
    """A cold fit never trained the spare row: a new league was forecast with the random vector
    it was initialised with, so its forecasts moved with the seed."""
    _, _, X_test = split
    rows = model.network_.league.weight.detach()
    np.testing.assert_allclose(rows[-1].numpy(), rows[:-1].mean(dim=0).numpy(), atol=1e-6)
    renamed = X_test.assign(league="XX")
    p = model.predict_proba(renamed)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(
        p, NeuralModel.from_artifact(model.to_artifact()).predict_proba(renamed)
    )
