"""A neural artifact that cannot be loaded, or whose files disagree, is a ValueError naming the
file; the calibrated band covers its target on the calibration rows."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from marketcast.cli import main
from marketcast.features.football import closing_targets
from marketcast.features.football_state import build_feature_state
from marketcast.models.neural import NeuralModel, band_coverage, calibrate_band_z
from marketcast.registry import Registry
from tests.unit.test_neural_model import fitted  # noqa: F401  (the fitted model fixture)
from tests.unit.test_registry import make_manifest

Files = dict[str, bytes]


def _with_meta(files: Files, edit: Callable[[dict[str, Any]], None]) -> Files:
    meta = json.loads(files["neural.json"])
    edit(meta)
    return {**files, "neural.json": json.dumps(meta).encode()}


def _with_tensors(files: Files, edit: Callable[[dict[str, torch.Tensor]], None]) -> Files:
    tensors = torch.load(io.BytesIO(files["neural_state.pt"]), weights_only=True)
    edit(tensors)
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    return {**files, "neural_state.pt": buffer.getvalue()}


def _saved(obj: object) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _raises_our_error(files: Files, match: str) -> ValueError:
    """The load fails with our ValueError, and nothing of torch's text comes along with it."""
    with pytest.raises(ValueError, match=match) as caught:
        NeuralModel.from_artifact(files)
    error = caught.value
    assert str(error).startswith("neural artifact: ")
    assert "weights_only" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None
    return error


@pytest.fixture(scope="module")
def files(fitted: NeuralModel) -> Files:  # noqa: F811
    return fitted.to_artifact()


def test_the_artifact_a_fit_writes_loads_and_forecasts_the_same(fitted, files, split) -> None:  # noqa: F811
    _, _, X_test = split
    rebuilt = NeuralModel.from_artifact(files)
    np.testing.assert_array_equal(rebuilt.predict_proba(X_test), fitted.predict_proba(X_test))


@pytest.mark.parametrize(
    ("state", "match"),
    [
        # torch's own error said to retry with weights_only=False (arbitrary code execution)
        (b"garbage", r"neural_state\.pt: not a torch state dict of tensors \(UnpicklingError\)"),
        (b"", r"neural_state\.pt: not a torch state dict of tensors"),
        (_saved([torch.zeros(2)]), r"neural_state\.pt: not a torch state dict of tensors$"),
        (_saved({"net.x": "text"}), r"neural_state\.pt: not a torch state dict of tensors$"),
    ],
)
def test_a_state_file_that_is_no_state_dict_is_a_clear_error(files, state, match) -> None:
    _raises_our_error({**files, "neural_state.pt": state}, match)


def test_a_tensor_of_another_shape_is_named_with_both_shapes(files) -> None:
    """It was torch's RuntimeError "size mismatch for encoder.position ...", a traceback."""
    wrong = _with_tensors(files, lambda t: t.__setitem__("net.encoder.position", torch.zeros(3)))
    _raises_our_error(
        wrong,
        r"neural_state\.pt: tensor net\.encoder\.position has shape \(3,\), the network wants "
        r"\(4, 8\)",
    )


def _set(key: str, value: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda tensors: tensors.__setitem__(key, value)


def _nan_at_first(key: str) -> Callable[[dict[str, torch.Tensor]], None]:
    def edit(tensors: dict[str, torch.Tensor]) -> None:
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            _nan_at_first("net.static.weight"),
            r"neural_state\.pt: tensor net\.static\.weight holds 1 values that are not finite",
        ),
        (
            _nan_at_first("history.state"),
            r"tensor history\.state holds 1 values that are not finite",
        ),
        (
            _set("net.head.band_z_value", torch.tensor(-1.0)),
            r"net\.head\.band_z_value is -1\.0, band_z must be in \[0, inf\)",
        ),
        (
            _set("net.head.band_z_value", torch.tensor(float("nan"))),
            r"tensor net\.head\.band_z_value holds 1 values that are not finite",
        ),
        (
            _set("net.head.shrink", torch.tensor([5.0, -3.0, 1.0])),
            r"tensor net\.head\.shrink is \[5\.0, -3\.0, 1\.0\], each factor must be in \[0, 1\]",
        ),
    ],
)
def test_values_no_fit_writes_are_refused(files, edit, match) -> None:
    """Only kinds and shapes were checked: a NaN weight forecast NaN for every fixture, a
    band_z of -1 inverted every band, shrink factors of 5 and -3 moved probabilities."""
    _raises_our_error(_with_tensors(files, edit), match)


def test_an_older_artifacts_band_z_from_its_config_is_checked_too(files) -> None:
    older = _with_tensors(files, lambda t: t.pop("net.head.band_z_value"))
    NeuralModel.from_artifact(older)  # loads: the head keeps the config's band_z
    bad = _with_meta(older, lambda meta: meta["net_config"].__setitem__("band_z", -2.0))
    _raises_our_error(bad, r"neural\.json: net_config\.band_z is -2\.0, band_z must be")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda t: t.pop("net.static.weight"),
            r"neural_state\.pt: lacks tensor net\.static\.weight",
        ),
        (
            lambda t: t.__setitem__("net.extra.weight", torch.zeros(1)),
            r"tensor net\.extra\.weight is not part of the network",
        ),
        (lambda t: t.pop("history.state"), r"neural_state\.pt: lacks tensor history\.state"),
        (
            lambda t: t.__setitem__("history.team", t["history.team"].float()),
            r"tensor history\.team is torch\.float32 with 1 dimensions, the history needs "
            r"torch\.int64",
        ),
        (
            lambda t: t.__setitem__("history.state", t["history.state"][:, :5].contiguous()),
            r"history tensors of shapes .* the history needs \(m,\), \(m,\) and \(m, 13\)",
        ),
        (
            lambda t: t.__setitem__("history.kickoff_min", t["history.kickoff_min"].flip(0)),
            r"the history is not sorted by team and kick-off",
        ),
    ],
)
def test_missing_extra_or_malformed_tensors_are_clear_errors(files, edit, match) -> None:
    _raises_our_error(_with_tensors(files, edit), match)


@pytest.mark.parametrize(
    "key",
    [
        "params",
        "net_config",
        "static_features",
        "static_mean",
        "static_std",
        "missing_indicators",
        "leagues",
        "base_rates",
        "team_names",
        "sequence_features",
        "n_fits",
        "best_epoch",
        "best_val_log_loss",
        "shrink",
    ],
)
def test_a_missing_key_of_neural_json_is_named(files, key) -> None:
    """It was "marketcast: error: 'leagues'", a bare KeyError."""
    _raises_our_error(
        _with_meta(files, lambda m: m.pop(key)), rf"neural\.json: missing key '{key}'"
    )


def test_optional_keys_of_older_artifacts_may_be_missing(files) -> None:
    older = _with_meta(files, lambda m: [m.pop("target_used"), m.pop("n_training_rows")])
    rebuilt = NeuralModel.from_artifact(older)
    assert rebuilt.target_used_ == {"1x2": "result", "ou25": "result", "ah": "result"}


@pytest.mark.parametrize(
    ("meta", "match"),
    [
        (b"{not json", r"neural\.json: not valid JSON \(Expecting property name"),
        (b"\xff\xfe", r"neural\.json: not valid JSON"),
        (b"[1, 2]", r"neural\.json: a list, not a JSON object"),
    ],
)
def test_a_meta_file_that_is_no_json_object_is_a_clear_error(files, meta, match) -> None:
    _raises_our_error({**files, "neural.json": meta}, match)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.__setitem__("leagues", None), r"'leagues' is null, not a list"),
        (lambda m: m.__setitem__("n_fits", True), r"'n_fits' is a boolean, not an integer"),
        (lambda m: m.__setitem__("team_names", [1, 2]), r"'team_names' holds a value that is not"),
        (lambda m: m["params"].__setitem__("windw", 3), r"params or net_config: .*'windw'"),
        (lambda m: m["net_config"].pop("n_leagues"), r"params or net_config: .*'n_leagues'"),
        (lambda m: m["params"].__setitem__("device", "gpu0"), r"params\.device 'gpu0' is not"),
        (
            lambda m: m.__setitem__("sequence_features", m["sequence_features"][::-1]),
            r"neural\.json: built with sequence features",
        ),
    ],
)
def test_keys_of_the_wrong_type_are_named(files, edit, match) -> None:
    _raises_our_error(_with_meta(files, edit), match)


@pytest.mark.parametrize("missing", ["neural.json", "neural_state.pt"])
def test_a_missing_file_is_named(files, missing) -> None:
    """Without neural.json it was a bare KeyError: 'neural.json'."""
    given = {name: data for name, data in files.items() if name != missing}
    _raises_our_error(given, rf"neural artifact: {missing.replace('.', '[.]')} missing")


def _shift_team_names(meta: dict[str, Any]) -> None:
    meta["team_names"] = meta["team_names"][1:]


def _swap_team_names(meta: dict[str, Any]) -> None:
    names = meta["team_names"]
    names[0], names[1] = names[1], names[0]


def test_team_names_that_do_not_match_the_history_are_refused(fitted, files, split) -> None:  # noqa: F811
    """Shifted by one, they loaded and forecast other numbers (max |dp| 0.017), silently."""
    _raises_our_error(
        _with_meta(files, _shift_team_names),
        r"neural\.json: (\d+) team_names for a stored history of \d+ teams \(codes 0 to \d+ in "
        r"neural_state\.pt\): each team would get another's matches",
    )
    _raises_our_error(
        _with_meta(files, _swap_team_names), r"team_names are not distinct and sorted"
    )
    # the same length and order is what a fit writes: it loads
    n_teams = len(fitted.history_.team_names)
    assert len(json.loads(files["neural.json"])["team_names"]) == n_teams


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # every league went to the "unseen league" row, silently
        (
            lambda m: m.__setitem__("leagues", []),
            r"neural\.json: 0 leagues for a network trained on 1 \(net_config\.n_leagues\)",
        ),
        (
            lambda m: m.__setitem__("leagues", [*m["leagues"], "ZZ"]),
            r"2 leagues for a network trained on 1",
        ),
        (
            lambda m: m.__setitem__("leagues", ["E0", "E0"]),
            r"leagues are not distinct and sorted",
        ),
        # a NumPy broadcast error at the first forecast
        (
            lambda m: m.__setitem__("static_mean", m["static_mean"][:-1]),
            r"neural\.json: static_mean has (\d+) values for \d+ static_features",
        ),
        (
            lambda m: m.__setitem__("static_std", [*m["static_std"], 1.0]),
            r"static_std has \d+ values for \d+ static_features",
        ),
        (
            lambda m: m.__setitem__("static_std", [0.0] * len(m["static_std"])),
            r"static_std holds a value <= 0",
        ),
        (
            lambda m: m.__setitem__("static_mean", [None] * len(m["static_mean"])),
            r"static_mean holds a value that is not a number",
        ),
        (
            lambda m: m.__setitem__("missing_indicators", ["no_such_column"]),
            r"missing_indicators must be distinct static_features",
        ),
        (
            lambda m: m.__setitem__("missing_indicators", m["missing_indicators"][:-1]),
            r"static_features and \d+ missing_indicators for a network that takes \d+ "
            r"\(net_config\.n_static_features\)",
        ),
        (
            lambda m: m["base_rates"].__setitem__("1x2", [0.5, 0.5]),
            r"base_rates\['1x2'\] is not a list of 3 numbers",
        ),
    ],
)
def test_a_layout_that_does_not_fit_the_network_is_refused(files, edit, match) -> None:
    _raises_our_error(_with_meta(files, edit), match)


def test_registry_promote_prints_our_error_without_a_traceback(
    fitted,  # noqa: F811
    epl_data,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A state file that passes its sha256 check but does not load ended in a traceback, exit
    1, with torch's advice to load it with weights_only=False."""
    registry = Registry(str(tmp_path))
    files = {
        **fitted.to_artifact(),
        "neural_state.pt": b"garbage",
        "feature_state.json": build_feature_state(epl_data).to_json(),
    }
    manifest = make_manifest("neural", files, market="1x2")
    version = registry.register("football", "1x2", "neural", files, manifest)
    code = main(["registry", "--root", str(tmp_path), "promote", "football/1x2/neural", version])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "marketcast: error: neural artifact: neural_state.pt: not a torch state dict of tensors "
        "(UnpicklingError)\n"
    )
    assert registry.champion("football", "1x2") is None


# -- the calibrated band -------------------------------------------------------------------


@pytest.mark.parametrize("target", [0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
def test_the_calibrated_band_covers_the_target_on_its_calibration_rows(
    fitted,  # noqa: F811
    split,
    epl_data,
    target: float,
) -> None:
    """The exact quantile z sat on its last row, and the float32 band (z a float32 buffer,
    float32 arithmetic) left that row out: coverage 350/390 = 0.8974 for a target of 0.9."""
    _, _, X_test = split
    X_cal = X_test.iloc[:130]
    reference = closing_targets(epl_data)["1x2"][500:630]
    model = copy.deepcopy(fitted)
    out = model.predict_outputs(X_cal)
    z = calibrate_band_z(model.predict_proba(X_cal), out["band_std"], reference, target)
    model.set_band_z(z)
    assert model.network_.head.band_z == z  # a float32 value: the buffer holds it exactly
    low, high = model.predict_band(X_cal)
    covered = band_coverage(low, high, reference)
    assert covered["n"] > 100
    # at least the target, and at most 3 of the 3 n (row, outcome)s more
    assert target <= covered["coverage"] <= target + 1 / covered["n"]


def test_a_reference_without_a_usable_row_is_a_clear_error() -> None:
    """All NaN: it was "IndexError: index -1 is out of bounds for axis 0 with size 0"."""
    p = np.full((4, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"^no reference rows to calibrate the band on$"):
        calibrate_band_z(p, np.full((4, 3), 0.02), np.full((4, 3), np.nan))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # a forecast read a window of 0 matches, and the load gave no word
        (
            lambda m: m["params"].__setitem__("window", 0),
            r"params: window must be an integer in \[1, inf\), got 0",
        ),
        (
            lambda m: m["params"].__setitem__("target", "odds"),
            r"params: target must be one of \('result', 'closing'\), got 'odds'",
        ),
        (
            lambda m: m["params"].__setitem__("band_z", -1.0),
            r"params: band_z must be in \[0, inf\)",
        ),
        (
            lambda m: m["params"].__setitem__("top_k", m["params"]["n_experts"] + 1),
            r"params: top_k must be <= n_experts",
        ),
    ],
)
def test_params_out_of_their_range_are_named(files, edit, match) -> None:
    """The params an artifact gives pass the estimator's own check, as a fit's would."""
    _raises_our_error(_with_meta(files, edit), rf"neural\.json: {match}")
