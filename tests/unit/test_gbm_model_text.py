"""LightGBM model text is checked before LightGBM parses it: a malformed text is a ModelTextError
naming the file and the line, tree and field, never an abort, a crash or a hang; every shape of
model LightGBM writes for us loads as before."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from marketcast.models import gbm
from marketcast.models.crypto import LightGBMDirectionModel, load_crypto_model
from marketcast.models.gbm import LightGBMModel, _soft_log_loss_objective

N_ROWS = 2000
N_FEATURES = 5  # league code, then four floats: the design matrix of LightGBMModel
FILE = "lightgbm_1x2.txt"


# -- editing model text --------------------------------------------------------------------------
def _blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of every tree block, ``Tree=i`` line to the blank lines after it."""
    starts = [m.start() for m in re.finditer(r"^Tree=\d+$", text, re.M)]
    ends = [*starts[1:], text.index("end of trees")]
    return list(zip(starts, ends, strict=True))


def _resize(text: str) -> str:
    """``tree_sizes`` recomputed, so that only the edit itself is wrong."""
    sizes = " ".join(str(len(text[a:b].encode())) for a, b in _blocks(text))
    return re.sub(r"^tree_sizes=.*$", lambda _: f"tree_sizes={sizes}", text, count=1, flags=re.M)


def _get(text: str, key: str, tree: int) -> str:
    start, end = _blocks(text)[tree]
    found = re.search(rf"^{key}=(.*)$", text[start:end], re.M)
    assert found is not None, key
    return found.group(1)


def _set(text: str, key: str, value: str | None, tree: int | None = None) -> str:
    """Line ``key=value`` of tree ``tree`` (of the header when None) set, or dropped for None."""
    start, end = _blocks(text)[tree] if tree is not None else (0, text.index("\n\n") + 1)
    pattern = re.compile(rf"^{re.escape(key)}=.*\n", re.M)
    assert pattern.search(text, start, end), key
    line = "" if value is None else f"{key}={value}\n"
    part = pattern.sub(lambda _: line, text[start:end], count=1)
    edited = text[:start] + part + text[end:]
    return _resize(edited) if tree is not None else edited


def _nth(values: str, i: int, new: str) -> str:
    items = values.split(" ")
    items[i] = new
    return " ".join(items)


# -- real model texts ----------------------------------------------------------------------------
def _data(seed: int = 0, n_categories: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features (league code first, NaNs in one column) and binary and 3-class labels."""
    rng = np.random.default_rng(seed)
    league = rng.integers(0, n_categories, N_ROWS).astype(float)
    floats = rng.normal(size=(N_ROWS, N_FEATURES - 1))
    floats[rng.random(N_ROWS) < 0.1, 1] = np.nan  # a NaN-missing split writes an inf threshold
    missing = np.isnan(floats[:, 1])
    signal = floats[:, 0] + (league % 3 == 1) - 0.8 * (league % 7 == 0) + 1.5 * missing
    signal += rng.normal(size=N_ROWS)
    classes = np.digitize(signal, [-0.5, 0.5])
    return np.column_stack([league, floats]), (classes == 2).astype(float), classes.astype(float)


def _params(**extra: object) -> dict[str, object]:
    return {"verbose": -1, "num_leaves": 7, "min_data_in_leaf": 20, "num_threads": 1, **extra}


def _shapes() -> dict[str, tuple[lgb.Booster, int]]:
    """Boosters of every shape our models write or LightGBM may: name -> (booster, classes)."""
    X, y2, y3 = _data()
    cats = {"categorical_feature": [0]}
    custom3 = _soft_log_loss_objective(np.eye(3)[y3.astype(int)], 3, np.ones(len(y3)))
    custom2 = _soft_log_loss_objective(np.column_stack([y2, 1 - y2]), 2, np.ones(len(y2)))
    many, y_many, _ = _data(seed=1, n_categories=80)
    return {
        # the football 1x2 booster: soft-label cross-entropy, league categorical
        "multiclass, custom objective, categorical": (
            lgb.train(_params(objective=custom3, num_class=3), lgb.Dataset(X, y3, **cats), 15),
            3,
        ),
        # the football over/under and Asian handicap boosters
        "binary, custom objective, categorical": (
            lgb.train(_params(objective=custom2), lgb.Dataset(X, y2, **cats), 15),
            2,
        ),
        # the crypto direction booster
        "binary objective": (lgb.train(_params(objective="binary"), lgb.Dataset(X, y2), 15), 2),
        "multiclass objective": (
            lgb.train(_params(objective="multiclass", num_class=3), lgb.Dataset(X, y3, **cats), 8),
            3,
        ),
        "multiclassova objective": (
            lgb.train(_params(objective="multiclassova", num_class=3), lgb.Dataset(X, y3), 5),
            3,
        ),
        # categorical bitsets of several 32-bit words
        "many categories": (
            lgb.train(
                _params(objective="binary", max_cat_to_onehot=4, cat_smooth=1.0),
                lgb.Dataset(many, y_many, **cats),
                10,
            ),
            2,
        ),
        # too few rows to split: every tree is a single leaf
        "single-leaf trees, binary": (
            lgb.train(_params(objective="binary", min_data_in_leaf=5000), lgb.Dataset(X, y2), 3),
            2,
        ),
        "single-leaf trees, multiclass": (
            lgb.train(
                _params(objective="multiclass", num_class=3, min_data_in_leaf=5000),
                lgb.Dataset(X, y3),
                2,
            ),
            3,
        ),
        "no trees, binary": (lgb.Booster(_params(objective="binary"), lgb.Dataset(X, y2)), 2),
        "no trees, multiclass": (
            lgb.Booster(_params(objective="multiclass", num_class=3), lgb.Dataset(X, y3)),
            3,
        ),
    }


@pytest.fixture(scope="module")
def shapes() -> dict[str, tuple[lgb.Booster, int]]:
    return _shapes()


@pytest.fixture(scope="module")
def multiclass(shapes) -> str:
    """The 1x2 booster's text: 3 classes, custom objective, categorical splits."""
    return shapes["multiclass, custom objective, categorical"][0].model_to_string()


def _first_tree(text: str, *, categorical: bool) -> int:
    """A tree with at least five leaves (and a categorical split, if asked)."""
    for tree in range(len(_blocks(text))):
        leaves = int(_get(text, "num_leaves", tree))
        if leaves >= 5 and (int(_get(text, "num_cat", tree)) > 0) == categorical:
            return tree
    raise AssertionError("no such tree")


def test_the_shapes_hold_what_they_are_named_for(shapes) -> None:
    texts = {name: booster.model_to_string() for name, (booster, _) in shapes.items()}
    assert re.search(r"^num_cat=[1-9]", texts["multiclass, custom objective, categorical"], re.M)
    assert "objective=" not in texts["multiclass, custom objective, categorical"]
    assert re.search(r"^threshold=.*\binf\b", texts["binary objective"], re.M)
    assert re.search(r"^cat_boundaries=0 [2-9]", texts["many categories"], re.M)
    assert set(re.findall(r"^num_leaves=(\d+)", texts["single-leaf trees, multiclass"], re.M)) == {
        "1"
    }
    assert "tree_sizes=\n" in texts["no trees, multiclass"]


@pytest.mark.parametrize("name", list(_shapes()))
def test_every_shape_lightgbm_writes_passes_and_loads_the_same(shapes, name: str) -> None:
    booster, n_classes = shapes[name]
    text = booster.model_to_string()
    gbm.check_model_text(text, file=FILE, n_classes=n_classes, n_features=N_FEATURES)
    loaded = gbm.load_booster(text.encode(), file=FILE, n_classes=n_classes, n_features=N_FEATURES)
    X, _, _ = _data(seed=2)
    np.testing.assert_array_equal(
        loaded.predict(X, raw_score=True), booster.predict(X, raw_score=True)
    )
    assert loaded.num_trees() == booster.num_trees()


# -- malformed texts: each one crashed, hung or misled LightGBM 4.7 ------------------------------
Edit = Callable[[str, int, int], str]  # (text, a categorical tree, a numerical tree) -> text

CASES: list[tuple[str, Edit, str]] = [
    # (what, edit, the message it must raise; LightGBM's behaviour without the check)
    ("empty", lambda t, c, n: "", r"empty, no model text"),  # LightGBMError
    ("cut short mid-line", lambda t, c, n: t[: len(t) // 2], r"line \d+: the text ends mid-line"),
    (  # SIGSEGV: LightGBM reads past the text
        "cut short at a line end, inside a tree",
        lambda t, c, n: t[: t.index("leaf_value=", _blocks(t)[-1][0])],
        r"tree \d+: tree_sizes says \d+ bytes, the text ends first",
    ),
    (  # SIGABRT
        "cut short after the header",
        lambda t, c, n: t[: t.index("Tree=0\n")],
        r"line 11: expected 'Tree=0' here",
    ),
    (  # loaded silently
        "no 'end of trees'",
        lambda t, c, n: t.replace("end of trees\n", ""),
        r"no 'end of trees' line after tree \d+",
    ),
    (  # SIGABRT
        "leaf_value one short",
        lambda t, c, n: _set(t, "leaf_value", _get(t, "leaf_value", n).rsplit(" ", 1)[0], n),
        r"tree {n} leaf_value: \d+ values, but num_leaves=\d+ needs \d+",
    ),
    (  # loaded silently
        "split_feature one extra",
        lambda t, c, n: _set(t, "split_feature", _get(t, "split_feature", n) + " 1", n),
        r"tree {n} split_feature: \d+ values, but num_leaves=\d+ needs \d+",
    ),
    (  # SIGABRT
        "threshold one short",
        lambda t, c, n: _set(t, "threshold", _get(t, "threshold", n).rsplit(" ", 1)[0], n),
        r"tree {n} threshold: \d+ values",
    ),
    (  # hang
        "left_child one short",
        lambda t, c, n: _set(t, "left_child", _get(t, "left_child", n).rsplit(" ", 1)[0], n),
        r"tree {n} left_child: \d+ values",
    ),
    (  # SIGABRT
        "num_leaves one more than the arrays",
        lambda t, c, n: _set(t, "num_leaves", str(int(_get(t, "num_leaves", n)) + 1), n),
        r"tree {n} split_feature: \d+ values, but num_leaves=\d+ needs \d+",
    ),
    (  # SIGSEGV
        "child out of range",
        lambda t, c, n: _set(t, "left_child", _nth(_get(t, "left_child", n), 0, "99"), n),
        r"tree {n} left_child: node 0's child 99 is out of range",
    ),
    (  # loaded silently
        "leaf out of range",
        lambda t, c, n: _set(t, "right_child", _nth(_get(t, "right_child", n), 0, "-99"), n),
        r"tree {n} right_child: node 0's child -99 is out of range",
    ),
    (  # hang: a cycle through the root
        "child is the root",
        lambda t, c, n: _set(t, "left_child", _nth(_get(t, "left_child", n), 1, "0"), n),
        r"tree {n} left_child: node 1's child 0 is the root",
    ),
    (  # a node reached twice, or a loop LightGBM follows blindly
        "child numbered before its parent",
        lambda t, c, n: _set(t, "left_child", _nth(_get(t, "left_child", n), 3, "1"), n),
        r"tree {n} left_child: node 3's child 1 is not numbered after it",
    ),
    (  # loaded silently
        "a child with two parents",
        lambda t, c, n: _set(
            t,
            "right_child",
            _nth(_get(t, "right_child", n), 0, _get(t, "left_child", n).split()[0]),
            n,
        ),
        r"tree {n} left_child: child -?\d+ has two parents",
    ),
    (  # SIGABRT: LightGBM allocates for 2^31 leaves
        "huge num_leaves",
        lambda t, c, n: _set(t, "num_leaves", "2147483647", n),
        r"tree {n} num_leaves: 2147483647 is not in \[1, 131072\]",
    ),
    (  # SIGSEGV
        "num_leaves 0",
        lambda t, c, n: _set(t, "num_leaves", "0", n),
        r"tree {n} num_leaves: 0 is not in \[1, 131072\]",
    ),
    (  # SIGABRT
        "huge num_cat",
        lambda t, c, n: _set(t, "num_cat", "2147483647", c),
        r"tree {c} num_cat: 2147483647 is not in \[0, num_leaves - 1\]",
    ),
    (  # SIGABRT
        "leaf_value not a number",
        lambda t, c, n: _set(t, "leaf_value", _nth(_get(t, "leaf_value", n), 2, "x.5"), n),
        r"tree {n} leaf_value: 'x\.5' is not a finite number",
    ),
    (  # forecasts NaN
        "leaf_value nan",
        lambda t, c, n: _set(t, "leaf_value", _nth(_get(t, "leaf_value", n), 0, "nan"), n),
        r"tree {n} leaf_value: 'nan' is not a finite number",
    ),
    (  # SIGSEGV
        "num_leaves not a number",
        lambda t, c, n: _set(t, "num_leaves", "seven", n),
        r"tree {n} num_leaves: 'seven' is not an integer",
    ),
    (  # hang
        "left_child not a number",
        lambda t, c, n: _set(t, "left_child", _nth(_get(t, "left_child", n), 1, "x"), n),
        r"tree {n} left_child: 'x' is not an integer",
    ),
    (  # SIGABRT
        "split_gain of two minus signs",
        lambda t, c, n: _set(t, "split_gain", _nth(_get(t, "split_gain", n), 0, "--1"), n),
        r"tree {n} split_gain: '--1' is not a number",
    ),
    (  # loaded silently: three class scores from a booster of one
        "num_class 1 on a 3-class booster",
        lambda t, c, n: _set(_set(t, "num_class", "1"), "num_tree_per_iteration", "1"),
        r"line 3: num_class=1, but this model's booster scores 3 outcomes",
    ),
    (  # SIGFPE: LightGBM divides by it
        "num_tree_per_iteration 0",
        lambda t, c, n: _set(t, "num_tree_per_iteration", "0"),
        r"line 4: num_tree_per_iteration='0' is not an integer in \[1, 1000\]",
    ),
    (  # loaded silently
        "num_tree_per_iteration unlike num_class",
        lambda t, c, n: _set(t, "num_tree_per_iteration", "2"),
        r"line 4: num_tree_per_iteration=2 but num_class=3",
    ),
    (  # loaded silently
        "trees not a multiple of the classes",
        lambda t, c, n: _resize(t[: _blocks(t)[-1][0]] + t[t.index("end of trees") :]),
        r"line 9: \d+ trees is not a multiple of num_tree_per_iteration=3",
    ),
    (  # the predict call fails, far from the artifact
        "fewer features than the model predicts from",
        lambda t, c, n: _set(
            _set(_set(t, "max_feature_idx", "2"), "feature_names", "a b c"),
            "feature_infos",
            "none none none",
        ),
        r"line 6: max_feature_idx=2 \(3 features\), but this model predicts from 5",
    ),
    (  # loaded silently, read past the feature row
        "split feature out of range",
        lambda t, c, n: _set(t, "split_feature", _nth(_get(t, "split_feature", n), 0, "999"), n),
        r"tree {n} split_feature: 999 is outside \[0, 4\]",
    ),
    (  # SIGSEGV
        "tree_sizes past the end",
        lambda t, c, n: _set(t, "tree_sizes", _nth(_get_sizes(t), 0, "100000000")),
        r"line 11: tree 0: tree_sizes says 100000000 bytes, the text ends first",
    ),
    (  # SIGABRT
        "tree_sizes off",
        lambda t, c, n: _set(t, "tree_sizes", _nth(_get_sizes(t), 0, "700")),
        r"line 11: tree 0 is not the 700 ASCII bytes that tree_sizes says",
    ),
    (  # loaded silently (LightGBM then parses tree by tree)
        "no tree_sizes",
        lambda t, c, n: _set(t, "tree_sizes", None),
        r"the header lacks tree_sizes",
    ),
    (  # SIGABRT
        "a NUL byte",
        lambda t, c, n: t.replace("leaf_value=", "leaf_value=\x00", 1),
        r"line \d+: a NUL character",
    ),
    (  # SIGABRT
        "carriage returns",
        lambda t, c, n: t.replace("\n", "\r\n"),
        r"line 1: a carriage return character",
    ),
    (  # SIGABRT
        "a tree without num_cat",
        lambda t, c, n: _set(t, "num_cat", None, n),
        r"tree {n} lacks num_cat",
    ),
    (  # SIGABRT
        "a tree without left_child",
        lambda t, c, n: _set(t, "left_child", None, n),
        r"tree {n} lacks left_child",
    ),
    (  # loaded silently
        "a tree index twice",
        lambda t, c, n: _resize(t.replace("\nTree=2\n", "\nTree=1\n")),
        r"expected 'Tree=2' here",
    ),
    (  # loaded silently, bitsets read past their end
        "cat_boundaries past cat_threshold",
        lambda t, c, n: _set(
            t, "cat_boundaries", _nth(_get(t, "cat_boundaries", c), -1, "9999"), c
        ),
        r"tree {c} cat_boundaries: must be \d+ rising offsets",
    ),
    (  # SIGSEGV: the threshold indexes cat_boundaries
        "categorical threshold out of range",
        lambda t, c, n: _set(t, "threshold", _cat_threshold(t, c, "50"), c),
        r"tree {c} threshold: the thresholds of categorical splits index cat_boundaries",
    ),
    (  # loaded silently
        "decision_type out of range",
        lambda t, c, n: _set(t, "decision_type", _nth(_get(t, "decision_type", n), 0, "127"), n),
        r"tree {n} decision_type: 127 is outside \[0, 11\]",
    ),
    (  # SIGABRT
        "categorical split without its bitsets",
        lambda t, c, n: _set(_set(t, "cat_boundaries", None, c), "cat_threshold", None, c),
        r"tree {c} num_cat: \d+, but the tree lacks cat_boundaries",
    ),
    (  # heap corruption: LightGBM sizes its output by the objective's class count
        "objective of another class count",
        lambda t, c, n: t.replace(
            "\nfeature_names=", "\nobjective=multiclass num_class:100\nfeature_names=", 1
        ),
        r"line 7: objective 'multiclass num_class:100' does not match num_class=3",
    ),
    (  # SIGSEGV
        "parameter line without a colon",
        lambda t, c, n: t.replace("[boosting: gbdt]", "[boosting]"),
        r"parameter line '\[boosting\]' is not '\[name: value\]'",
    ),
    (  # RecursionError from Python's JSON parser
        "parameter nested deep",
        lambda t, c, n: re.sub(
            r"\[interaction_constraints: \]",
            lambda _: "[interaction_constraints: " + "[" * 5000 + "]",
            t,
        ),
        r"parameter line '\[interaction_constraints: \[\[",
    ),
    (  # JSONDecodeError
        "pandas_categorical not JSON",
        lambda t, c, n: t.replace("pandas_categorical:null", "pandas_categorical:[[1,"),
        r"pandas_categorical: does not hold a JSON list or null",
    ),
    (  # loaded silently
        "a linear tree flag",
        lambda t, c, n: _set(t, "is_linear", "1", n),
        r"tree {n}: a linear tree",
    ),
    (  # loaded silently: Python's int() reads other scripts' digits
        "a non-ASCII digit",
        lambda t, c, n: _set(t, "num_class", "\u0663"),
        r"line 3: num_class='\u0663' is not an integer",
    ),
]


def _get_sizes(text: str) -> str:
    found = re.search(r"^tree_sizes=(.*)$", text, re.M)
    assert found is not None
    return found.group(1)


def _cat_threshold(text: str, tree: int, value: str) -> str:
    """The thresholds of ``tree`` with its first categorical split's set to ``value``."""
    types = _get(text, "decision_type", tree).split(" ")
    first = next(i for i, t in enumerate(types) if int(t) & 1)
    return _nth(_get(text, "threshold", tree), first, value)


def _malformed(text: str, case: tuple[str, Edit, str]) -> tuple[str, str]:
    """The edited text and the message it must raise, with the trees' numbers filled in."""
    _, edit, match = case
    categorical = _first_tree(text, categorical=True)
    numerical = _first_tree(text, categorical=False)
    edited = edit(text, categorical, numerical)
    assert edited != text
    return edited, match.replace("{c}", str(categorical)).replace("{n}", str(numerical))


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_malformed_text_is_refused_before_lightgbm_sees_it(multiclass, case) -> None:
    edited, match = _malformed(multiclass, case)
    with pytest.raises(
        gbm.ModelTextError, match=rf"^lightgbm artifact {re.escape(FILE)}: .*{match}"
    ):
        gbm.check_model_text(edited, file=FILE, n_classes=3, n_features=N_FEATURES)


def test_lightgbm_never_sees_the_malformed_texts_in_from_artifact(multiclass, tmp_path) -> None:
    """Each case through ``LightGBMModel.from_artifact`` in a child process: without the check
    the first one of them that crashes LightGBM takes that process down (or hangs it)."""
    meta = {
        "params": LightGBMModel(markets=("1x2",)).get_params(),
        "feature_names": ["league", "f1", "f2", "f3", "f4"],
        "leagues": ["A", "B", "C", "D"],
        "temperature": {"1x2": 1.0},
        "base_rates": {"1x2": [0.4, 0.3, 0.3]},
        "best_iteration": {"1x2": 15},
    }
    (tmp_path / "lightgbm.json").write_text(json.dumps(meta))
    expected = {}
    for number, case in enumerate(CASES):
        edited, match = _malformed(multiclass, case)
        (tmp_path / f"{number}.txt").write_bytes(edited.encode("utf-8", "surrogatepass"))
        expected[number] = match
    child = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from marketcast.models.gbm import LightGBMModel\n"
        "folder = Path(sys.argv[1])\n"
        f"for number in range({len(CASES)}):\n"
        "    files = {'lightgbm.json': (folder / 'lightgbm.json').read_bytes(),\n"
        f"             '{FILE}': (folder / f'{{number}}.txt').read_bytes()}}\n"
        "    try:\n"
        "        LightGBMModel.from_artifact(files)\n"
        "        print('case', json.dumps([number, 'loaded', '']), flush=True)\n"
        "    except Exception as exc:\n"
        "        print('case', json.dumps([number, type(exc).__name__, str(exc)]), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(tmp_path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
        check=False,
    )
    lines = [line.removeprefix("case ") for line in done.stdout.splitlines()]  # LightGBM logs too
    cases = [json.loads(line) for line in lines if line.startswith("[") and line[1].isdigit()]
    results = {number: (kind, message) for number, kind, message in cases}
    assert done.returncode == 0, f"the child died ({done.returncode}) after {len(results)} cases"
    for number, match in expected.items():
        kind, message = results[number]
        assert kind == "ModelTextError", (CASES[number][0], kind, message)
        assert re.search(rf"^lightgbm artifact {re.escape(FILE)}: .*{match}", message), (
            CASES[number][0],
            message,
        )


# -- through the models' loaders -----------------------------------------------------------------
@pytest.fixture(scope="module")
def football_model(epl) -> LightGBMModel:
    """Every market, trees on real features (no early stopping: too few rows to judge them)."""
    X, goals = epl
    model = LightGBMModel(
        n_estimators=12, min_child_samples=20, early_stopping_rounds=0, calibrate=False, n_jobs=1
    )
    return model.fit(X, goals)


def test_the_football_artifact_loads_and_forecasts_the_same(football_model, epl) -> None:
    X, _ = epl
    files = football_model.to_artifact()
    assert {"lightgbm_1x2.txt", "lightgbm_ou25.txt", "lightgbm_ah.txt"} <= set(files)
    rebuilt = LightGBMModel.from_artifact(files)
    for market in ("1x2", "ou25", "ah"):
        np.testing.assert_array_equal(
            rebuilt.predict_market_proba(X, market), football_model.predict_market_proba(X, market)
        )


def test_the_football_loader_names_the_booster_of_another_class_count(football_model) -> None:
    files = football_model.to_artifact()
    text = files["lightgbm_ou25.txt"].decode()
    files["lightgbm_ou25.txt"] = (
        text.replace("num_class=1\n", "num_class=3\n", 1)
        .replace("num_tree_per_iteration=1\n", "num_tree_per_iteration=3\n", 1)
        .encode()
    )
    with pytest.raises(
        ValueError,
        match=r"^lightgbm artifact lightgbm_ou25\.txt: line 3: "
        r"num_class=3, but this model's booster scores 2 outcomes",
    ):
        LightGBMModel.from_artifact(files)


def test_the_football_loader_names_a_file_of_another_feature_count(football_model) -> None:
    files = football_model.to_artifact()
    meta = json.loads(files["lightgbm.json"])
    meta["feature_names"] = meta["feature_names"][:-1]  # the booster predicts from one more
    files["lightgbm.json"] = json.dumps(meta).encode()
    with pytest.raises(
        ValueError,
        match=r"^lightgbm artifact lightgbm_1x2\.txt: line 6: "
        r"max_feature_idx=\d+ \(\d+ features\), but this model predicts from",
    ):
        LightGBMModel.from_artifact(files)


def test_bytes_that_are_not_utf8_name_the_file_and_line(football_model) -> None:
    files = football_model.to_artifact()
    text = files["lightgbm_ah.txt"]
    files["lightgbm_ah.txt"] = text[:200] + b"\xff" + text[200:]
    with pytest.raises(
        ValueError,
        match=r"^lightgbm artifact lightgbm_ah\.txt: line \d+: "
        r"byte 200 is not UTF-8",
    ):
        LightGBMModel.from_artifact(files)


@pytest.fixture(scope="module")
def crypto_model() -> tuple[LightGBMDirectionModel, pd.DataFrame]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(N_ROWS, 3)), columns=["ret_1", "ret_24", "vol_24"])
    X["open_time_utc"] = pd.date_range("2024-01-01", periods=N_ROWS, freq="h", tz="UTC")
    y = (X["ret_1"] + rng.normal(size=N_ROWS) > 0).astype(int).to_numpy()
    model = LightGBMDirectionModel(n_estimators=20, min_validation_rows=50, n_jobs=1)
    return model.fit(X, y), X


def test_the_crypto_artifact_loads_and_its_text_is_checked(crypto_model) -> None:
    model, X = crypto_model
    files = model.to_artifact()
    rebuilt = load_crypto_model("lightgbm", files)
    np.testing.assert_array_equal(rebuilt.predict_proba(X), model.predict_proba(X))
    text = files["lightgbm_direction.txt"].decode()
    edited = _set(text, "split_feature", _nth(_get(text, "split_feature", 0), 0, "7"), 0)
    with pytest.raises(
        ValueError,
        match=r"^lightgbm artifact lightgbm_direction\.txt: line \d+: "
        r"tree 0 split_feature: 7 is outside \[0, 2\]",
    ):
        load_crypto_model("lightgbm", {**files, "lightgbm_direction.txt": edited.encode()})


# -- what LightGBM itself refuses ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("parameter", "cause"),
    [
        ("[learning_rate: abc]", lgb.basic.LightGBMError),  # LightGBM: "Unknown token abc"
        ("[monotone_constraints: abc]", json.JSONDecodeError),  # its parameters' JSON
    ],
)
def test_an_error_lightgbm_raises_becomes_a_model_text_error(multiclass, parameter, cause) -> None:
    name = parameter.split(":")[0]
    text = re.sub(rf"^{re.escape(name)}: .*\]$", lambda _: parameter, multiclass, flags=re.M)
    assert parameter in text
    with pytest.raises(
        gbm.ModelTextError,
        match=rf"^lightgbm artifact {re.escape(FILE)}: LightGBM refused "
        rf"it \({cause.__name__}: ",
    ) as caught:
        gbm.load_booster(text.encode(), file=FILE, n_classes=3, n_features=N_FEATURES)
    assert isinstance(caught.value.__cause__, cause)


# -- the check fails closed ----------------------------------------------------------------------
def test_random_edits_are_accepted_or_refused_never_an_other_error(multiclass) -> None:
    """Edits of digits, tokens and lines: the check raises ModelTextError or nothing (of 15,000
    such edits, the 713 it accepted all loaded and predicted in LightGBM without a crash)."""
    rng = random.Random(0)
    lines = multiclass.split("\n")
    first, last = lines.index("Tree=0"), lines.index("end of trees")
    tokens = ["0", "1", "-1", "7", "-8", "99", "nan", "inf", "1e999", "", "x", "4294967296"]
    outcomes = {"accepted": 0, "refused": 0}
    for _ in range(300):
        edited = list(lines)
        k = rng.randrange(first, last)
        key, sep, value = edited[k].partition("=")
        if sep and rng.random() < 0.8:
            items = value.split(" ")
            items[rng.randrange(len(items))] = rng.choice(tokens)
            edited[k] = f"{key}={' '.join(items)}"
        else:
            edited.insert(rng.randrange(first, last), edited.pop(k))
        text = "\n".join(edited)
        if rng.random() < 0.8:
            text = _resize(text)
        try:
            gbm.check_model_text(text, file=FILE, n_classes=3, n_features=N_FEATURES)
            outcomes["accepted"] += 1
        except gbm.ModelTextError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 200
    assert outcomes["accepted"] + outcomes["refused"] == 300
