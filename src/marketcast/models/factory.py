"""Football models by their stable names: build one from params, or rebuild one from an artifact."""

from __future__ import annotations

from typing import Any

from marketcast.models.base import check_param_types
from marketcast.models.dixon_coles import DixonColes
from marketcast.models.elo import EloModel
from marketcast.models.gbm import LightGBMModel
from marketcast.models.market import MarketModel
from marketcast.models.neural import NeuralModel

FOOTBALL_MODEL_CLASSES: dict[str, type[Any]] = {
    "market": MarketModel,
    "elo": EloModel,
    "dixon_coles": DixonColes,
    "lightgbm": LightGBMModel,
    "neural": NeuralModel,
}

#: Defaults per model that differ from the class defaults: walk-forward refits warm-start, and
#: the pipeline's LightGBM learns the closing line of earlier matches (docs/models.md).
_DEFAULTS: dict[str, dict[str, Any]] = {
    "dixon_coles": {"warm_start": True},
    "lightgbm": {"target": "closing"},
    "neural": {"warm_start": True},
}


def make_model(name: str, params: dict[str, Any] | None = None, *, seed: int = 0) -> Any:
    """Build the football model called ``name`` with ``params`` over its defaults.

    A parameter of the wrong kind (`check_param_types`) or out of its range is an error here,
    before any data is read (the model's ``check_params``, which its ``fit`` calls too).

    Examples
    --------
    >>> type(make_model("market")).__name__
    'MarketModel'
    >>> make_model("lightgbm", {"validation_fraction": 1.5})
    Traceback (most recent call last):
    ...
    ValueError: validation_fraction must be in [0, 1), got 1.5
    """
    try:
        cls = FOOTBALL_MODEL_CLASSES[name]
    except KeyError:
        known = ", ".join(sorted(FOOTBALL_MODEL_CLASSES))
        raise ValueError(f"unknown football model {name!r}; known models: {known}") from None
    kwargs = {**_DEFAULTS.get(name, {}), **(params or {})}
    if "random_state" in cls().get_params():
        kwargs.setdefault("random_state", seed)
    model = cls(**kwargs)
    if hasattr(model, "check_params"):
        model.check_params()
    check_param_types(model)  # a model without ranges, and parameters no range covers
    return model


def load_model(name: str, files: dict[str, bytes]) -> Any:
    """Rebuild a fitted model from its artifact files (JSON / LightGBM text; never pickle)."""
    if name not in FOOTBALL_MODEL_CLASSES:
        raise ValueError(f"unknown football model {name!r}")
    return FOOTBALL_MODEL_CLASSES[name].from_artifact(files)
