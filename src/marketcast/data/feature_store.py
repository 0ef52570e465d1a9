"""Versioned feature store: parquet snapshots named by the content hash recorded in manifests."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from marketcast.data.files import write_atomic


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

    The snapshot and its ``.json`` metadata are each written atomically (`write_atomic`: a
    uniquely named temporary file renamed into place), so a crash never leaves a half-written
    file under a valid name, and runs sharing a folder can save the same version at once: the
    name is the content, so whichever rename lands last leaves the same bytes. Metadata found
    missing beside an existing snapshot is written again.

    Raises
    ------
    OSError
        Naming the file that could not be written (the disk is full, the folder is read-only);
        no temporary file is left behind.
    """
    sha = frame_sha256(frame)
    columns = tuple(str(c) for c in frame.columns)
    folder = Path(root) / name
    path = folder / f"{sha[:16]}.parquet"
    meta_path = folder / f"{sha[:16]}.json"
    if not path.exists():
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_atomic(path, buffer.getvalue())
    if not meta_path.exists():
        meta = {"sha256": sha, "n_rows": len(frame), "columns": list(columns)}
        write_atomic(meta_path, json.dumps(meta, indent=1).encode("utf-8"))
    return FeatureSnapshot(path, sha, len(frame), columns)


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a stored snapshot back."""
    return pd.read_parquet(path)
