"""Feature snapshots: concurrent saves, missing metadata and write errors."""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from marketcast.data.feature_store import frame_sha256, load_features, save_features


def _frame(seed: int = 0, n_rows: int = 50_000) -> pd.DataFrame:
    values = np.random.default_rng(seed).normal(size=(n_rows, 8))
    return pd.DataFrame(values, columns=[f"f{i}" for i in range(8)])


def test_concurrent_saves_of_one_version_all_succeed(tmp_path: Path) -> None:
    """Two runs sharing runs_dir shared one temp name, and one rename found it gone."""
    n_writers, n_rounds = 4, 5
    errors: list[BaseException] = []
    for seed in range(n_rounds):
        frame = _frame(seed)
        start = threading.Barrier(n_writers)

        def save(frame: pd.DataFrame = frame, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                save_features(frame, tmp_path, "football")
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=save) for _ in range(n_writers)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()
    assert errors == []
    folder = tmp_path / "football"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 * n_rounds  # a .parquet and a .json per version, no temp files
    assert all(name.endswith((".parquet", ".json")) for name in names)
    for seed in range(n_rounds):
        frame = _frame(seed)
        stem = frame_sha256(frame)[:16]
        pd.testing.assert_frame_equal(load_features(folder / f"{stem}.parquet"), frame)


def test_missing_metadata_is_written_again(tmp_path: Path) -> None:
    frame = _frame(n_rows=10)
    snapshot = save_features(frame, tmp_path, "crypto")
    meta_path = snapshot.path.with_suffix(".json")
    meta_path.unlink()  # a crash between the two writes

    again = save_features(frame, tmp_path, "crypto")

    assert again == snapshot
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    assert meta == {"sha256": snapshot.sha256, "n_rows": 10, "columns": list(frame.columns)}


def test_a_full_disk_names_the_snapshot_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", disk_full)
    frame = _frame(n_rows=10)
    expected = tmp_path / "football" / f"{frame_sha256(frame)[:16]}.parquet"

    with pytest.raises(OSError, match="No space left on device") as caught:
        save_features(frame, tmp_path, "football")

    assert caught.value.errno == errno.ENOSPC
    assert str(expected) in str(caught.value)
    assert list(expected.parent.iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated parquet", "other metadata", "unreadable metadata"])
def test_a_damaged_version_under_the_name_is_written_again(tmp_path: Path, damage: str) -> None:
    """Any file under the name was taken for the version: a 14-byte parquet (an interrupted
    copy of runs/) was recorded as the run's snapshot, and it could not be opened."""
    frame = _frame(0, n_rows=100)
    first = save_features(frame, tmp_path, "football")
    meta_path = first.path.with_suffix(".json")
    if damage == "truncated parquet":
        first.path.write_bytes(first.path.read_bytes()[:14])
    elif damage == "other metadata":
        meta_path.write_text(json.dumps({"sha256": "0" * 64, "n_rows": 3, "columns": ["x"]}))
    else:
        meta_path.write_text("{not json")
    again = save_features(frame, tmp_path, "football")
    assert again == first
    pd.testing.assert_frame_equal(load_features(again.path), frame)
    assert json.loads(meta_path.read_text())["sha256"] == frame_sha256(frame)


def test_temporary_files_a_killed_save_left_are_removed_once_old(tmp_path: Path) -> None:
    folder = tmp_path / "football"
    folder.mkdir()
    old = folder / f".abc.parquet.{'a' * 32}.tmp"
    fresh = folder / f".abc.parquet.{'b' * 32}.tmp"  # another save's, still being written
    mine = folder / "notes.tmp"  # not a temporary name of ours
    for path in (old, fresh, mine):
        path.write_bytes(b"x" * 10)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(mine, (two_hours_ago, two_hours_ago))
    save_features(_frame(0, n_rows=10), tmp_path, "football")
    assert not old.exists()  # was: kept for good, full-size
    assert fresh.exists()
    assert mine.exists()
