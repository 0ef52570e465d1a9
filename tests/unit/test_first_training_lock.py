"""The first training's lock on a registry folder: one server trains the bundled champions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marketcast.orchestration.first_training import TrainingElsewhereError, lock_for_training


@pytest.mark.parametrize("second", ["path", "cached", "dir"])
def test_a_second_training_of_one_folder_is_refused_however_it_is_spelt(
    tmp_path: Path, second: str
) -> None:
    """The review of d47a018: ``simplecache::`` over a local folder took no lock, while the
    registry opened through it writes that folder like any other spelling of it."""
    folder = tmp_path / "registry"
    fd = lock_for_training(str(folder))
    assert fd is not None
    try:
        url = {
            "path": str(folder),
            "cached": f"simplecache::file://{folder}",
            "dir": f"simplecache::dir::{folder}",
        }[second]
        with pytest.raises(TrainingElsewhereError, match="another process is training"):
            lock_for_training(url)
    finally:
        os.close(fd)
    again = lock_for_training(f"simplecache::file://{folder}")  # free once the first ends
    assert again is not None
    os.close(again)


def test_a_registry_without_a_local_folder_trains_unlocked() -> None:
    assert lock_for_training("memory://first-training-lock") is None
