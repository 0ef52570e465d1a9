"""Versioned feature store: parquet snapshots named by the content hash recorded in manifests."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class FeatureSnapshot:
    """Where a feature frame was stored and the hash that names it."""

    path: Path
    sha256: str
    n_rows: int
    columns: tuple[str, ...]


def frame_sha256(frame: pd.DataFrame) -> str:
    """Content hash of a frame: values, index and column names (row order matters).

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1.0, 2.0]})
    >>> frame_sha256(a) == frame_sha256(a.copy())
    True
    >>> frame_sha256(a) == frame_sha256(a.iloc[::-1])
    False
    """
    digest = hashlib.sha256()
    digest.update(json.dumps([str(c) for c in frame.columns]).encode())
    digest.update(json.dumps([str(t) for t in frame.dtypes]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def save_features(frame: pd.DataFrame, root: str | Path, name: str) -> FeatureSnapshot:
    """Write ``frame`` to ``{root}/{name}/{sha[:16]}.parquet`` unless that version exists.

    The write goes to a temporary file first and is renamed into place, so a crash never
    leaves a half-written snapshot under a valid name.
    """
    sha = frame_sha256(frame)
    folder = Path(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sha[:16]}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
        meta = {"sha256": sha, "n_rows": len(frame), "columns": [str(c) for c in frame.columns]}
        (folder / f"{sha[:16]}.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return FeatureSnapshot(path, sha, len(frame), tuple(str(c) for c in frame.columns))


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a stored snapshot back."""
    return pd.read_parquet(path)
