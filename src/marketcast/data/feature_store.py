"""Versioned feature store: parquet snapshots named by the content hash recorded in manifests."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

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


#: A temporary file of `write_atomic` (``.<name>.<32 hex>.tmp``) older than this is left by a
#: killed write, and a save removes it.
STALE_TEMPORARY_S = 3600.0
_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


def save_features(frame: pd.DataFrame, root: str | Path, name: str) -> FeatureSnapshot:
    """Write ``frame`` to ``{root}/{name}/{sha[:16]}.parquet`` unless that version exists.

    The snapshot and its ``.json`` metadata are each written atomically (`write_atomic`: a
    uniquely named temporary file renamed into place), so a crash never leaves a half-written
    file under a valid name, and runs sharing a folder can save the same version at once: the
    name is the content, so whichever rename lands last leaves the same bytes. A version counts
    as there when its metadata is this frame's (hash, rows, columns) and its parquet's footer
    reads with as many rows and columns; else both are written again (a truncated file under
    the name, from an interrupted copy of ``runs/`` or a store written before writes were
    atomic, was recorded as the run's snapshot). Temporary files a killed save left (older than
    `STALE_TEMPORARY_S`) are removed.

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
    meta = {"sha256": sha, "n_rows": len(frame), "columns": list(columns)}
    meta_ok = _read_json(meta_path) == meta
    if not (meta_ok and _parquet_shape(path) == (len(frame), len(columns))):
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        write_atomic(path, buffer.getvalue())
    if not meta_ok:
        write_atomic(meta_path, json.dumps(meta, indent=1).encode("utf-8"))
    _remove_stale_temporaries(folder)
    return FeatureSnapshot(path, sha, len(frame), columns)


def _read_json(path: Path) -> object:
    """The JSON at ``path``; None when it is missing or unreadable."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def _parquet_shape(path: Path) -> tuple[int, int] | None:
    """(rows, columns) from a parquet file's footer; None when it is missing or unreadable."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError, pa.ArrowException):
        return None
    return meta.num_rows, meta.num_columns


def _remove_stale_temporaries(folder: Path) -> None:
    cutoff = time.time() - STALE_TEMPORARY_S
    for entry in folder.iterdir():
        if _TEMPORARY.fullmatch(entry.name):
            with contextlib.suppress(OSError):  # another save's, or gone meanwhile
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()


def load_features(path: str | Path) -> pd.DataFrame:
    """Read a stored snapshot back."""
    return pd.read_parquet(path)
