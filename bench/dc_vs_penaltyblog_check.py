"""Quick check: our Dixon-Coles against penaltyblog's on one real league-season, walk-forward.

Run under the penaltyblog venv:
    PYTHONPATH=/work/main/src /tmp/pbvenv/bin/python bench/dc_vs_penaltyblog_check.py

Both models see the same training rows (E0, time-decay weights with a 180-day half-life, rows
with weight < 1e-3 dropped) and predict the next 7 days, refitting weekly through one season.
Reports the 1X2 log loss of each and the mean fit time (ours cold and warm-started).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import sklearn.base  # noqa: F401
except ImportError:  # the penaltyblog venv has no scikit-learn: a stand-in BaseEstimator is enough
    base = types.ModuleType("sklearn.base")

    class BaseEstimator:
        """Minimal stand-in: get_params from the __init__ keyword arguments."""

        def get_params(self, deep: bool = True) -> dict[str, object]:
            import inspect

            names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
            return {n: getattr(self, n) for n in names}

        def set_params(self, **params: object) -> BaseEstimator:
            for k, v in params.items():
                setattr(self, k, v)
            return self

    base.BaseEstimator = BaseEstimator  # type: ignore[attr-defined]
    sklearn_stub = types.ModuleType("sklearn")
    sklearn_stub.base = base  # type: ignore[attr-defined]
    sys.modules["sklearn"] = sklearn_stub
    sys.modules["sklearn.base"] = base

from penaltyblog.models import DixonColesGoalModel, dixon_coles_weights

from marketcast.models.dixon_coles import DixonColes

DATA = Path("/work/shared/data/football")
HALF_LIFE_DAYS = 180.0


def load_league(league: str, seasons: list[str]) -> pd.DataFrame:
    frames = []
    for season in seasons:
        raw = pd.read_csv(DATA / league / f"{season}.csv", encoding="latin-1")
        raw = raw.dropna(subset=["HomeTeam", "FTHG"])
        frames.append(raw)
    raw = pd.concat(frames, ignore_index=True)
    dates = pd.to_datetime(raw["Date"], dayfirst=True, format="mixed")
    out = pd.DataFrame(
        {
            "league": raw["Div"].astype(str),
            "home_team": raw["HomeTeam"].astype(str).str.strip(),
            "away_team": raw["AwayTeam"].astype(str).str.strip(),
            "kickoff_utc": (dates + pd.Timedelta(hours=15)).dt.tz_localize("UTC"),
            "home_goals": raw["FTHG"].astype(int),
            "away_goals": raw["FTAG"].astype(int),
        }
    )
    return out.sort_values(["kickoff_utc", "home_team"], kind="stable").reset_index(drop=True)


def log_loss(proba: np.ndarray, outcome: np.ndarray) -> float:
    return float(-np.mean(np.log(proba[np.arange(len(outcome)), outcome])))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--league", default="E0")
    parser.add_argument("--test-season", default="2018-2019")
    parser.add_argument("--train-seasons", type=int, default=5)
    parser.add_argument("--start", default="2018-10-01", help="first test week (UTC date)")
    parser.add_argument("--l2", type=float, default=1e-3, help="our ridge (1e-9: plain MLE)")
    args = parser.parse_args()

    first_year = int(args.test_season[:4])
    seasons = [f"{y}-{y + 1}" for y in range(first_year - args.train_seasons, first_year + 1)]
    matches = load_league(args.league, seasons)
    goals = matches[["home_goals", "away_goals"]].to_numpy()
    outcome = np.where(goals[:, 0] > goals[:, 1], 0, np.where(goals[:, 0] == goals[:, 1], 1, 2))
    cut = pd.Timestamp(args.start, tz="UTC")
    end = matches["kickoff_utc"].max()

    ours_cold = DixonColes(half_life_days=HALF_LIFE_DAYS, l2=args.l2)
    ours_warm = DixonColes(half_life_days=HALF_LIFE_DAYS, l2=args.l2, warm_start=True)
    times = {"ours_cold": [], "ours_warm": [], "penaltyblog": []}
    probs = {"ours": [], "penaltyblog": []}
    outcomes, n_train = [], []
    xi = math.log(2.0) / HALF_LIFE_DAYS  # penaltyblog decay per day
    while cut <= end:
        train = (matches["kickoff_utc"] < cut).to_numpy()
        test = (
            (matches["kickoff_utc"] >= cut) & (matches["kickoff_utc"] < cut + pd.Timedelta(days=7))
        ).to_numpy()
        cut += pd.Timedelta(days=7)
        if not test.any():
            continue
        tr = matches[train]
        dates = list(tr["kickoff_utc"].dt.tz_localize(None))
        weights = dixon_coles_weights(dates, xi=xi)
        keep = weights >= 1e-3
        tr, weights, y = tr[keep], weights[keep], goals[train][keep]
        n_train.append(len(tr))

        t0 = time.perf_counter()
        ours_cold.fit(tr, y)
        times["ours_cold"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours_warm.fit(tr, y)
        times["ours_warm"].append(time.perf_counter() - t0)

        pb = DixonColesGoalModel(
            tr["home_goals"], tr["away_goals"], tr["home_team"], tr["away_team"], weights
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pb.fit()
        times["penaltyblog"].append(time.perf_counter() - t0)

        te = matches[test]
        probs["ours"].append(ours_cold.predict_proba(te))
        probs["penaltyblog"].append(
            np.array(
                [
                    pb.predict(h, a, max_goals=ours_cold.max_goals + 1).home_draw_away
                    for h, a in zip(te["home_team"], te["away_team"], strict=True)
                ]
            )
        )
        outcomes.append(outcome[test])

    y_test = np.concatenate(outcomes)
    p_ours = np.concatenate(probs["ours"])
    p_pb = np.concatenate(probs["penaltyblog"])
    p_pb = p_pb / p_pb.sum(axis=1, keepdims=True)
    print(
        f"league {args.league}, test {args.test_season} from {args.start}: "
        f"{len(times['ours_cold'])} weekly refits,"
    )
    print(
        f"  {len(y_test)} test matches, {int(np.mean(n_train))} training matches per fit on average"
    )
    print(
        f"  1X2 log loss   ours {log_loss(p_ours, y_test):.5f}   "
        f"penaltyblog {log_loss(p_pb, y_test):.5f}"
    )
    print(f"  max |p_ours - p_penaltyblog| = {np.abs(p_ours - p_pb).max():.4f}")
    ms = {k: 1e3 * float(np.mean(v)) for k, v in times.items()}
    print(
        f"  mean fit ms    ours cold {ms['ours_cold']:.1f}   ours warm {ms['ours_warm']:.1f}   "
        f"penaltyblog {ms['penaltyblog']:.1f}"
    )
    print(
        f"  speed-up       cold x{ms['penaltyblog'] / ms['ours_cold']:.1f}   "
        f"warm x{ms['penaltyblog'] / ms['ours_warm']:.1f}"
    )


if __name__ == "__main__":
    main()
