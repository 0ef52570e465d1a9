"""NeuralModel on a slice of bundled Premier League data: contract, leaks, seeds, artifacts."""

from __future__ import annotations

import copy
import io
import json
import pickle
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from scipy.special import softmax
from sklearn.base import clone

from marketcast.features.football import closing_targets
from marketcast.models.base import market_labels, training_targets
from marketcast.models.factory import load_model, make_model
from marketcast.models.neural import (
    SEQUENCE_FEATURES,
    NeuralModel,
    TeamHistory,
    _best_shrink,
    band_coverage,
    bootstrap_weights,
    calibrate_band_z,
)
from marketcast.models.nn.network import BATCH_KEYS, FLAT_OUTPUTS, LossWeights, multitask_loss
from marketcast.models.nn.onnx import OnnxSession, export_football_net_onnx
from marketcast.types import MarketKind

TINY = {
    "window": 4,
    "d_model": 8,
    "n_heads": 2,
    "d_state": 2,
    "n_experts": 4,
    "top_k": 2,
    "n_band_heads": 3,
    "max_epochs": 2,
    "batch_size": 128,
    "n_jobs": 1,
    "device": "cpu",
    "shrink_min_rows": 30,  # the 500-row fits below hold 50 validation rows
}


@pytest.fixture(scope="module")
def epl_closing(epl_data) -> dict[str, np.ndarray]:
    """De-margined closing probabilities of :func:`epl` rows, per market."""
    return closing_targets(epl_data)


@pytest.fixture(scope="module")
def train_closing(epl_closing) -> dict[str, np.ndarray]:
    """The closing probabilities of the training rows of :func:`split`."""
    return {m: p[:500] for m, p in epl_closing.items()}


@pytest.fixture(scope="module")
def shuffled_train(split, train_closing):
    """The training rows of :func:`split` out of kick-off order, closing prices alongside."""
    X_train, y_train, _ = split
    perm = np.random.default_rng(0).permutation(len(X_train))
    return X_train.iloc[perm], y_train[perm], {m: p[perm] for m, p in train_closing.items()}


@pytest.fixture(scope="module")
def fitted_closing(shuffled_train) -> NeuralModel:
    return NeuralModel(random_state=3, target="closing", **TINY).fit(*shuffled_train)


def _soft_log_loss(p: np.ndarray, target_p: np.ndarray) -> float:
    """Mean cross-entropy of forecasts ``p`` against target probabilities (rows with no NaN)."""
    keep = np.isfinite(target_p).all(axis=1)
    return float(-(target_p[keep] * np.log(p[keep])).sum(axis=1).mean())


def _closing_line_validation(
    model: NeuralModel, X: pd.DataFrame, closing_1x2: np.ndarray
) -> tuple[float, float]:
    """1X2 cross-entropy against the closing line on the validation slice, and its best shrink.

    The slice is the one a fit of ``model`` on ``X`` validates on; the network is judged
    unshrunk, as early stopping saw it.
    """
    order = np.argsort(X["kickoff_utc"].to_numpy(), kind="stable")
    valid = order[len(order) - int(len(order) * model.validation_fraction) :]
    X_valid, closing = X.iloc[valid], closing_1x2[valid]
    model = copy.deepcopy(model)
    model.network_.head.shrink.fill_(1.0)
    logits = model.predict_outputs(X_valid)["logits_1x2"]
    prior = model.make_batch(X_valid)["market_1x2"].double().numpy()
    loss = _soft_log_loss(softmax(logits, axis=1), closing)
    return loss, _best_shrink(prior, logits - prior, closing, min_gain=1e-4)


@pytest.fixture(scope="module")
def fitted(split) -> NeuralModel:
    X_train, y_train, _ = split
    return NeuralModel(random_state=3, **TINY).fit(X_train, y_train)


def test_probabilities_are_distributions_for_every_market(fitted, split) -> None:
    _, _, X_test = split
    p = fitted.predict_proba(X_test)
    assert p.shape == (len(X_test), 3)
    assert list(fitted.classes_) == ["home", "draw", "away"]
    assert np.all(p > 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    for market in MarketKind:
        pm = fitted.predict_market_proba(X_test, market)
        assert pm is not None
        assert pm.shape == (len(X_test), 3 if market is MarketKind.ONE_X_TWO else 2)
        np.testing.assert_allclose(pm.sum(axis=1), 1.0, atol=1e-9)


def test_forecast_starts_near_the_market_it_is_boosted_from(fitted, split) -> None:
    _, _, X_test = split
    market = X_test[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    gap = np.abs(fitted.predict_proba(X_test) - market).mean()
    assert gap < 0.05


def test_outputs_band_goal_diff_and_routing(fitted, split) -> None:
    _, _, X_test = split
    out = fitted.predict_outputs(X_test)
    n = len(X_test)
    assert out["context"].shape == (n, 8)
    assert out["goal_diff"].shape == (n,)
    low, high = fitted.predict_band(X_test)
    p = fitted.predict_proba(X_test)
    assert np.all(low <= p + 1e-6)
    assert np.all(high >= p - 1e-6)
    assert np.all((low >= 0) & (high <= 1))
    routing = fitted.routing_by_league(X_test)
    assert list(routing.index) == ["E0"]
    assert int(routing.loc["E0", "n_matches"]) == n
    experts = routing[[f"expert_{k}" for k in range(4)]].to_numpy()
    np.testing.assert_allclose(experts.sum(axis=1), 1.0, atol=1e-6)


def test_no_future_result_reaches_a_fixture(epl) -> None:
    """Perturb the results of every match from a fixture's kick-off day on: nothing changes."""
    X, y = epl
    model = NeuralModel(random_state=1, **TINY).fit(X.iloc[:400], y[:400])
    day = X["kickoff_utc"].dt.floor("D")
    cutoff = day.iloc[600]
    fixtures = X[(day == cutoff).to_numpy()]
    later = X[(day > cutoff + pd.Timedelta(days=3)).to_numpy()].iloc[:40]
    rng = np.random.default_rng(0)
    perturbed = y.copy()
    future = (X["kickoff_utc"] >= cutoff).to_numpy()
    perturbed[future] = rng.integers(0, 7, size=(int(future.sum()), 2))

    model.update_history(X, y)
    emb_true = model.predict_outputs(fixtures)["context"]
    p_true = model.predict_proba(fixtures)
    later_true = model.predict_outputs(later)["context"]
    model.update_history(X, perturbed)
    np.testing.assert_array_equal(model.predict_outputs(fixtures)["context"], emb_true)
    np.testing.assert_array_equal(model.predict_proba(fixtures), p_true)
    # Sensitivity: fixtures after the cutoff do see the (perturbed) matches before them.
    assert not np.allclose(model.predict_outputs(later)["context"], later_true)


def test_team_history_windows_hold_only_strictly_earlier_matches(epl) -> None:
    X, y = epl
    history = TeamHistory.build(X, y)
    minute = (X["kickoff_utc"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(minutes=1)
    minute = minute.to_numpy(dtype=np.int64)
    seq, valid = history.window(X["home_team"].to_numpy(), minute, 10)
    age = seq[..., SEQUENCE_FEATURES.index("age_years")]
    assert np.all(age[valid] > 0)  # every match used is strictly older than the fixture
    first = X.groupby("home_team").head(1).index.to_numpy()
    # A team's first match of the slice may only see away games before it, never itself.
    counts = valid.sum(axis=1)
    assert counts[0] == 0
    assert np.all(valid[:, 1:] >= valid[:, :-1])  # padding only on the left (oldest side)
    assert counts[first].max() < 10
    unknown, unknown_valid = history.window(np.array(["Nobody FC"]), minute[:1], 10)
    assert not unknown_valid.any()
    assert np.count_nonzero(unknown) == 0


def test_two_seeded_fits_are_identical_and_another_seed_differs(split) -> None:
    X_train, y_train, X_test = split
    a = NeuralModel(random_state=11, **TINY).fit(X_train, y_train).predict_proba(X_test)
    b = NeuralModel(random_state=11, **TINY).fit(X_train, y_train).predict_proba(X_test)
    c = NeuralModel(random_state=12, **TINY).fit(X_train, y_train).predict_proba(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_a_fit_gives_the_callers_random_streams_back(split) -> None:
    """The fit reseeded Python's, NumPy's and torch's global generators and left them so: a
    caller's next draws were the network's seed's, whatever the caller had seeded."""
    X_train, y_train, _ = split
    draws = []
    for caller_seed in (11, 22):
        np.random.seed(caller_seed)
        random.seed(caller_seed)
        torch.manual_seed(caller_seed)
        NeuralModel(random_state=3, **{**TINY, "max_epochs": 1}).fit(X_train, y_train)
        draws.append((np.random.random(), random.random(), float(torch.rand(1))))
    np.random.seed(11)
    random.seed(11)
    torch.manual_seed(11)
    assert draws[0] == (np.random.random(), random.random(), float(torch.rand(1)))
    assert draws[0] != draws[1]  # was: the same after the fit whatever the caller seeded


def test_state_dict_round_trip_predicts_identically(fitted, split) -> None:
    _, _, X_test = split
    files = fitted.to_artifact()
    assert set(files) == {"neural.json", "neural_state.pt"}
    tensors = torch.load(io.BytesIO(files["neural_state.pt"]), weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    rebuilt = load_model("neural", files)
    for market in MarketKind:
        np.testing.assert_array_equal(
            rebuilt.predict_market_proba(X_test, market),
            fitted.predict_market_proba(X_test, market),
        )
    np.testing.assert_array_equal(rebuilt.predict_band(X_test)[0], fitted.predict_band(X_test)[0])


def test_artifact_trained_on_a_gpu_loads_on_a_machine_without_one(
    fitted, split, monkeypatch
) -> None:
    # A champion fitted with device="cuda" on a GPU box must still serve from a CPU-only one.
    _, _, X_test = split
    files = fitted.to_artifact()
    meta = json.loads(files["neural.json"])
    meta["params"]["device"] = "cuda:0"
    files["neural.json"] = json.dumps(meta).encode()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rebuilt = load_model("neural", files)
    assert rebuilt.device is None
    assert next(rebuilt.network_.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(rebuilt.predict_proba(X_test), fitted.predict_proba(X_test))


def test_network_exports_to_onnx_with_the_same_outputs(split, tmp_path) -> None:
    X_train, y_train, X_test = split
    # Unshrunk, so the logits carry the network's own part and not only the market price.
    model = NeuralModel(random_state=3, shrink_to_market=False, **TINY).fit(X_train, y_train)
    batch = model.make_batch(X_test)
    assert not np.allclose(
        model.predict_outputs(X_test)["logits_1x2"], batch["market_1x2"].numpy(), atol=1e-3
    )
    path = export_football_net_onnx(
        model.network_, model.make_batch(X_test.iloc[:2]), tmp_path / "n.onnx"
    )
    session = OnnxSession(path, intra_op_threads=1)
    assert session.input_names == list(BATCH_KEYS)
    for rows in (slice(None), slice(0, 1), slice(5, 12)):  # the batch dimension is dynamic
        expected = model.predict_outputs(X_test.iloc[rows])
        got = session.run({k: v[rows] for k, v in batch.items()})
        assert set(got) == set(FLAT_OUTPUTS)
        for key in FLAT_OUTPUTS:
            np.testing.assert_allclose(got[key], expected[key], atol=1e-5, err_msg=key)
    with pytest.raises(ValueError, match="inputs missing: \\['static'\\]"):
        session.run({k: v for k, v in batch.items() if k != "static"})


def _torch_ran(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stands in for the network's forward pass: any torch forward pass fails loudly."""
    raise RuntimeError("torch ran")


def test_rows_path_and_onnx_runtime_forecast_what_torch_forecasts(split) -> None:
    X_train, y_train, X_test = split
    model = NeuralModel(random_state=3, shrink_to_market=False, **TINY).fit(X_train, y_train)
    rows = X_test.to_dict("records")
    expected = {market: model.predict_market_proba(X_test, market) for market in MarketKind}
    for market in MarketKind:  # the server's row path builds exactly the frame path's batch
        np.testing.assert_array_equal(model.predict_market_rows(rows, market), expected[market])
    torch_out = model.predict_outputs(X_test.iloc[:7])

    assert model.use_onnx(max_rows=8) is model
    for n in (1, 7):
        got = model.predict_outputs(X_test.iloc[:n])
        assert set(got) == set(torch_out)
        for key in FLAT_OUTPUTS:
            np.testing.assert_allclose(got[key], torch_out[key][:n], atol=1e-5, err_msg=key)
    for market in MarketKind:
        np.testing.assert_allclose(
            model.predict_market_rows(rows[:3], market), expected[market][:3], atol=1e-6
        )
    # Up to max_rows rows torch never runs; a larger batch is torch's again. (The forward pass
    # is swapped, not the network: a new network would make the session export it again.)
    model.network_.forward = _torch_ran
    model.predict_market_rows(rows[:8], MarketKind.ONE_X_TWO)
    with pytest.raises(RuntimeError, match="torch ran"):
        model.predict_market_rows(rows[:9], MarketKind.ONE_X_TWO)
    del model.network_.forward

    twin = pickle.loads(pickle.dumps(model))  # a session does not pickle: the copy drops it
    assert not hasattr(twin, "onnx_session_")
    np.testing.assert_array_equal(twin.predict_proba(X_test), expected[MarketKind.ONE_X_TWO])
    model.set_params(warm_start=False).fit(X_train, y_train)  # new weights: the session goes
    assert not hasattr(model, "onnx_session_")


def test_feature_rows_errors_name_what_is_missing(fitted, split) -> None:
    rows = split[2].head(2).to_dict("records")
    unpriced = [{k: v for k, v in r.items() if k != "mkt_1x2_home"} for r in rows]
    with pytest.raises(ValueError, match="feature rows lack columns \\['mkt_1x2_home'\\]"):
        fitted.predict_market_rows(unpriced, MarketKind.ONE_X_TWO)
    no_kickoff = [rows[0], {**rows[1], "kickoff_utc": None}]
    with pytest.raises(ValueError, match="feature row 1: kickoff_utc is missing"):
        fitted.predict_market_rows(no_kickoff, MarketKind.ONE_X_TWO)


def test_sklearn_conventions_and_factory_defaults(split) -> None:
    model = make_model("neural", TINY, seed=5)
    assert model.random_state == 5
    assert model.warm_start is True
    assert [a for a in vars(model) if a.endswith("_") and not a.startswith("_")] == []
    assert clone(model).get_params() == model.get_params()


def test_warm_start_continues_from_previous_weights(split) -> None:
    X_train, y_train, _ = split
    warm = NeuralModel(random_state=2, warm_start=True, **TINY).fit(X_train, y_train)
    first = {k: v.clone() for k, v in warm.network_.state_dict().items()}
    layout = list(warm.static_features_)
    # Zero warm epochs: the refit must keep exactly the weights it continues from.
    warm.set_params(warm_epochs=0).fit(X_train, y_train)
    assert warm.n_fits_ == 2
    assert warm.training_log_ == []
    assert warm.static_features_ == layout
    for key, value in warm.network_.state_dict().items():
        assert torch.equal(value, first[key]), key
    warm.set_params(warm_epochs=1, warm_rows=200).fit(X_train, y_train)
    assert warm.n_fits_ == 3
    assert len(warm.training_log_) == 1
    cold = NeuralModel(random_state=2, **TINY).fit(X_train, y_train)
    assert cold.n_fits_ == 1


def test_fit_does_not_mutate_inputs(split) -> None:
    X_train, y_train, X_test = split
    X_before, y_before = X_train.copy(), y_train.copy()
    NeuralModel(**{**TINY, "max_epochs": 1}).fit(X_train, y_train).predict_proba(X_test)
    pd.testing.assert_frame_equal(X_train, X_before)
    np.testing.assert_array_equal(y_train, y_before)


def test_bad_inputs_are_clear_errors(fitted, split) -> None:
    X_train, y_train, X_test = split
    with pytest.raises(ValueError, match="y must have shape"):
        NeuralModel(**TINY).fit(X_train, y_train[:, 0])
    with pytest.raises(ValueError, match="lacks columns"):
        fitted.predict_proba(X_test.drop(columns=["elo_diff"]))
    bad = X_train.copy()
    bad.loc[bad.index[3], "kickoff_utc"] = pd.NaT
    with pytest.raises(ValueError, match="row 3: kickoff_utc is missing"):
        NeuralModel(**TINY).fit(bad, y_train)


def test_band_coverage_counts_reference_inside_band() -> None:
    low = np.array([[0.4, 0.2, 0.2], [0.5, 0.2, 0.1], [0.1, 0.1, 0.1]])
    high = np.array([[0.5, 0.3, 0.3], [0.6, 0.3, 0.2], [0.2, 0.2, 0.2]])
    ref = np.array([[0.45, 0.35, 0.2], [0.55, 0.25, 0.2], [np.nan, 0.5, 0.5]])
    out = band_coverage(low, high, ref)
    assert out["n"] == 2
    assert out["n_skipped"] == 1
    assert out["coverage"] == pytest.approx(5 / 6)
    assert out["coverage_1"] == pytest.approx(0.5)
    assert out["mean_width"] == pytest.approx(0.1)


def test_bootstrap_weights_are_stable_poisson_and_member_specific() -> None:
    ids = np.array([f"E0:2020-01-{d:02d}:A:B" for d in range(1, 29)] * 100)
    w = bootstrap_weights(ids, 4, seed=0)
    assert w.shape == (len(ids), 4)
    np.testing.assert_array_equal(w, bootstrap_weights(ids, 4, seed=0))
    np.testing.assert_array_equal(w[:28], w[28:56])  # a match keeps its weight
    unique = bootstrap_weights(np.array([f"m{i}" for i in range(20000)]), 2, seed=0)
    assert unique[:, 0].mean() == pytest.approx(1.0, abs=0.03)
    assert (unique[:, 0] == 0).mean() == pytest.approx(np.exp(-1), abs=0.02)
    assert not np.array_equal(unique[:, 0], unique[:, 1])


def test_calibrated_band_width_reaches_the_target_coverage(fitted, split) -> None:
    _, _, X_test = split
    out = fitted.predict_outputs(X_test)
    p = softmax(out["logits_1x2"], axis=1)
    reference = X_test[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    z = calibrate_band_z(p, out["band_std"], reference, target=0.8)
    covered = band_coverage(p - z * out["band_std"], p + z * out["band_std"], reference)
    assert z > 0
    assert 0.8 <= covered["coverage"] < 0.8 + 3 / reference.size


def test_shrink_to_market_is_fitted_per_market_and_stored_in_the_head(fitted) -> None:
    assert set(fitted.shrink_) == {"1x2", "ou25", "ah"}
    assert all(0.0 <= a <= 1.0 for a in fitted.shrink_.values())
    head_shrink = fitted.network_.head.shrink.tolist()
    assert head_shrink == pytest.approx([fitted.shrink_[m] for m in ("1x2", "ou25", "ah")])


def test_a_short_history_keeps_the_market_price(epl, caplog: pytest.LogCaptureFixture) -> None:
    """Too few validation rows to vouch for the network: every market is the price (shrink 0)."""
    X, y = epl
    model = NeuralModel(random_state=0, **{**TINY, "shrink_min_rows": 200})
    with caplog.at_level("INFO", logger="marketcast.models.neural"):
        model.fit(X.iloc[:500], y[:500])  # 50 validation rows
    assert model.shrink_ == {"1x2": 0.0, "ou25": 0.0, "ah": 0.0}
    assert model.network_.head.shrink.tolist() == [0.0, 0.0, 0.0]
    assert "too few to judge the network" in caplog.text
    later = X.iloc[500:600]
    market = later[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    np.testing.assert_allclose(
        model.predict_proba(later), market / market.sum(axis=1, keepdims=True), atol=1e-5
    )
    # a learned part kept on the same rows when the bar is low enough to judge it
    judged = NeuralModel(random_state=0, **TINY).fit(X.iloc[:500], y[:500])
    assert not np.allclose(judged.predict_proba(later), market / market.sum(1, keepdims=True))


def test_best_shrink_keeps_signal_and_drops_noise() -> None:
    rng = np.random.default_rng(0)
    n = 20000
    prior = np.log(np.full((n, 3), 1 / 3))
    truth = rng.normal(0, 0.8, size=(n, 3))
    p_true = np.exp(truth) / np.exp(truth).sum(axis=1, keepdims=True)
    labels = (p_true.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    one_hot = np.eye(3)[labels]
    assert _best_shrink(prior, truth, one_hot, min_gain=1e-4) == pytest.approx(1.0, abs=0.1)
    noise = rng.normal(0, 0.8, size=(n, 3))
    assert _best_shrink(prior, noise, one_hot, min_gain=1e-4) < 0.1
    # Soft targets (the probabilities themselves) pin the signal down from few rows.
    assert _best_shrink(prior[:500], truth[:500], p_true[:500], min_gain=1e-4) == pytest.approx(
        1.0, abs=1e-3
    )
    # A gain below the bar is not worth leaving the market for.
    weak = 0.02 * truth[:500]
    assert _best_shrink(prior[:500], weak, p_true[:500], min_gain=1e-5) > 0.9
    assert _best_shrink(prior[:500], weak, p_true[:500], min_gain=1.0) == 0.0


def test_shrink_z_asks_a_noisy_target_for_more_evidence_than_a_smooth_one() -> None:
    """Pure noise fitted on results passes the gain bar by luck; the z bar stops it, and still
    keeps a weak real signal measured against smooth targets (its true probabilities)."""
    kept_noise, kept_noise_z, kept_signal_z = 0, 0, 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        n = 2000
        prior = np.log(np.full((n, 3), 1 / 3))
        truth = rng.normal(0, 0.1, size=(n, 3))  # a football-sized correction
        p_true = np.exp(truth) / np.exp(truth).sum(axis=1, keepdims=True)
        one_hot = np.eye(3)[(p_true.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)]
        noise = rng.normal(0, 0.1, size=(n, 3))
        kept_noise += _best_shrink(prior, noise, one_hot, min_gain=1e-5) > 0
        kept_noise_z += _best_shrink(prior, noise, one_hot, min_gain=1e-5, z=1.645) > 0
        kept_signal_z += _best_shrink(prior, truth, p_true, min_gain=1e-5, z=1.645) > 0.9
    assert kept_noise >= 4  # without z, about a third of the noise fits pass
    assert kept_noise_z <= 2  # one-sided 5% per fit
    assert kept_signal_z == 20


def test_empty_frame_gives_empty_predictions(fitted, split) -> None:
    _, _, X_test = split
    empty = X_test.iloc[:0]
    assert fitted.predict_proba(empty).shape == (0, 3)
    assert fitted.predict_market_proba(empty, MarketKind.OVER_UNDER_25).shape == (0, 2)


def test_closing_target_moves_forecasts_towards_the_closing_line(split, train_closing) -> None:
    X_train, y_train, _ = split
    params = {
        **TINY,
        "max_epochs": 10,
        "learning_rate": 5e-3,
        "validation_fraction": 0.0,
        "shrink_to_market": False,  # no validation slice: keep what was learned
    }
    by_result = NeuralModel(random_state=0, **params).fit(X_train, y_train)
    by_closing = NeuralModel(random_state=0, target="closing", **params).fit(
        X_train, y_train, train_closing
    )
    # E0 2020-21 has a closing 1X2 and O/U 2.5 price for every match, too few AH ones.
    assert by_closing.target_used_ == {"1x2": "closing", "ou25": "closing", "ah": "result"}
    assert by_closing.n_training_rows_["1x2"] == 500
    assert by_result.target_used_ == {"1x2": "result", "ou25": "result", "ah": "result"}
    closing = train_closing["1x2"]
    market = X_train[["mkt_1x2_home", "mkt_1x2_draw", "mkt_1x2_away"]].to_numpy()
    loss_closing = _soft_log_loss(by_closing.predict_proba(X_train), closing)
    loss_result = _soft_log_loss(by_result.predict_proba(X_train), closing)
    assert loss_closing < loss_result - 0.005
    assert loss_closing < _soft_log_loss(market, closing) + 1e-3


def test_early_stopping_and_shrink_measure_the_closing_line(fitted_closing, shuffled_train) -> None:
    """Validation log loss and shrink are cross-entropies against closing prices, not results.

    The rows come out of kick-off order: the closing prices must follow the fit's re-ordering.
    """
    X_train, _, closing = shuffled_train
    loss, shrink = _closing_line_validation(fitted_closing, X_train, closing["1x2"])
    assert fitted_closing.best_val_log_loss_ == pytest.approx(loss, rel=1e-5)
    assert fitted_closing.shrink_["1x2"] == pytest.approx(shrink, abs=1e-4)


def test_warm_refit_on_the_closing_line_keeps_rows_aligned(epl, epl_closing) -> None:
    X, y = epl
    params = {**TINY, "max_epochs": 1, "warm_epochs": 1, "warm_rows": 450}
    model = NeuralModel(target="closing", warm_start=True, **params).fit(
        X.iloc[:500], y[:500], {m: p[:500] for m, p in epl_closing.items()}
    )
    model.fit(X, y, epl_closing)
    # 760 rows: 76 validate, the latest 450 of the other 684 fine-tune.
    assert model.n_training_rows_["1x2"] == 450 + 76
    assert model.target_used_["1x2"] == "closing"
    loss, _ = _closing_line_validation(model, X, epl_closing["1x2"])
    assert model.best_val_log_loss_ == pytest.approx(loss, rel=1e-5)


def test_target_errors_are_clear(split, train_closing) -> None:
    X_train, y_train, _ = split
    with pytest.raises(ValueError, match="target must be one of"):
        NeuralModel(target="closing_line", **TINY).fit(X_train, y_train)
    with pytest.raises(ValueError, match="closing probabilities"):
        NeuralModel(target="closing", **TINY).fit(X_train, y_train)
    short = {m: p[:-1] for m, p in train_closing.items()}
    with pytest.raises(ValueError, match="499 rows, the feature frame 500"):
        NeuralModel(target="closing", **TINY).fit(X_train, y_train, short)


def test_market_with_few_closing_prices_falls_back_to_results(split, train_closing) -> None:
    X_train, y_train, _ = split
    sparse = dict(train_closing)
    sparse["ou25"] = np.where(np.arange(500)[:, None] < 100, train_closing["ou25"], np.nan)
    model = NeuralModel(target="closing", **{**TINY, "max_epochs": 1}).fit(X_train, y_train, sparse)
    assert model.target_used_ == {"1x2": "closing", "ou25": "result", "ah": "result"}
    assert model.n_training_rows_["ou25"] == 500  # every result settles over/under 2.5
    ah_labels = market_labels(MarketKind.ASIAN_HANDICAP, X_train, y_train)
    assert model.n_training_rows_["ah"] == int((ah_labels >= 0).sum())


def test_closing_target_artifact_round_trip(fitted_closing, split) -> None:
    _, _, X_test = split
    files = fitted_closing.to_artifact()
    rebuilt = load_model("neural", files)
    assert rebuilt.target == "closing"
    assert rebuilt.target_used_ == fitted_closing.target_used_
    assert rebuilt.n_training_rows_ == fitted_closing.n_training_rows_
    for market in MarketKind:
        np.testing.assert_array_equal(
            rebuilt.predict_market_proba(X_test, market),
            fitted_closing.predict_market_proba(X_test, market),
        )
    # An artifact written before closing-line targets existed trained on the results.
    meta = json.loads(files["neural.json"])
    for key in ("target_used", "n_training_rows"):
        del meta[key]
    del meta["params"]["target"]
    old = load_model("neural", {**files, "neural.json": json.dumps(meta).encode()})
    assert old.target == "result"
    assert old.target_used_ == {"1x2": "result", "ou25": "result", "ah": "result"}


def test_result_target_ignores_closing_prices(fitted, split, train_closing) -> None:
    X_train, y_train, X_test = split
    again = NeuralModel(random_state=3, **TINY).fit(X_train, y_train, train_closing)
    assert again.target_used_ == {"1x2": "result", "ou25": "result", "ah": "result"}
    np.testing.assert_array_equal(again.predict_proba(X_test), fitted.predict_proba(X_test))


def test_one_hot_targets_train_exactly_like_index_labels(fitted, split) -> None:
    """Result targets as one-hot rows give the index-label loss and gradients of before."""
    X_train, y_train, _ = split
    rows, goals = X_train.iloc[:64], y_train[:64]
    keys = {
        MarketKind.ONE_X_TWO: "1x2",
        MarketKind.OVER_UNDER_25: "ou",
        MarketKind.ASIAN_HANDICAP: "ah",
    }
    labels = {keys[m]: market_labels(m, rows, goals) for m in keys}
    labels["ah"][::5] = -1  # unsettled rows are left out
    boot = torch.as_tensor(bootstrap_weights(rows["match_id"].to_numpy(), 3, seed=0))
    goal_diff = torch.as_tensor(goals[:, 0] - goals[:, 1], dtype=torch.float32)
    targets = {"boot": boot, "goal_diff": goal_diff}
    for key, key_labels in labels.items():
        p, keep, used = training_targets(key_labels, None, 3 if key == "1x2" else 2)
        assert used == "result"
        targets[f"p_{key}"] = torch.as_tensor(p, dtype=torch.float32)
        targets[f"w_{key}"] = torch.as_tensor(keep, dtype=torch.float32)
    y = {key: torch.as_tensor(v) for key, v in labels.items()}
    net = copy.deepcopy(fitted.network_).train()
    net.head.shrink.fill_(1.0)  # every market's learned part gets gradients
    batch = fitted.make_batch(rows)

    def index_loss(out: dict[str, Any]) -> torch.Tensor:
        """The loss as it was computed from index labels."""
        ce_members = F.cross_entropy(
            out["logits_1x2_members"].reshape(-1, 3),
            y["1x2"].repeat_interleave(3),
            reduction="none",
        ).view(-1, 3)
        settled = y["ah"] >= 0
        return (
            (boot * ce_members).sum() / boot.sum()
            + 0.5 * F.cross_entropy(out["logits_ou"], y["ou"])
            + 0.5 * F.cross_entropy(out["logits_ah"][settled], y["ah"][settled])
            + 0.05 * F.smooth_l1_loss(out["goal_diff"], goal_diff)
            + 0.05 * out["aux"]["balance_loss"]
            - 0.01 * out["aux"]["gate_entropy"]
        )

    def loss_and_grads(
        loss_of: Callable[[dict[str, Any]], torch.Tensor],
    ) -> tuple[float, list[torch.Tensor]]:
        net.zero_grad()
        torch.manual_seed(0)  # the same dropout masks for both losses
        loss = loss_of(net(batch))
        loss.backward()
        return float(loss.detach()), [
            p.grad.clone() for p in net.parameters() if p.grad is not None
        ]

    soft, soft_grads = loss_and_grads(lambda out: multitask_loss(out, targets, LossWeights())[0])
    index, index_grads = loss_and_grads(index_loss)
    assert soft == pytest.approx(index, rel=1e-6)
    assert len(soft_grads) == len(index_grads) > 0
    for a, b in zip(soft_grads, index_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_band_without_width_cannot_be_calibrated() -> None:
    """With shrink 0 every member is the market: the spread is clamped to 1e-6 and the
    quantile of distance over spread came out as z = 43,039 (a [0, 1] band after a refit)."""
    p = np.full((50, 3), 1 / 3)
    reference = p + np.linspace(-0.05, 0.05, 50)[:, None] * np.array([1.0, -0.5, -0.5])
    with pytest.raises(ValueError, match=r"the band has no width \(median ensemble spread 1e-06\)"):
        calibrate_band_z(p, np.full((50, 3), 1e-6), reference)
    assert calibrate_band_z(p, np.full((50, 3), 0.02), reference) > 0


def test_a_quantized_network_is_refused_as_an_artifact_with_a_clear_error(
    fitted: NeuralModel,
) -> None:
    """It failed with "'torch.dtype' object has no attribute 'detach'"."""
    import copy

    from marketcast.training.compress import quantize_dynamic_int8

    model = copy.deepcopy(fitted)
    model.network_ = quantize_dynamic_int8(model.network_)
    with pytest.raises(ValueError, match=r"the network holds quantized weights .*save the model"):
        model.to_artifact()
    assert "neural_state.pt" in fitted.to_artifact()  # the fp32 model saves as before
