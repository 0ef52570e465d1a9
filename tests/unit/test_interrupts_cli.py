"""Ctrl-C and SIGTERM stop a command with one line and the shell's exit status, no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from marketcast.datasets.bundle import read_archive_csvs
from marketcast.datasets.football_data import bundled_football_path

SEASONS = ("E0/2018-2019.csv", "E0/2019-2020.csv", "E0/2020-2021.csv", "E0/2021-2022.csv")


@pytest.fixture(scope="module")
def epl_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four Premier League seasons out of the bundle: a walk-forward of a few seconds."""
    root = tmp_path_factory.mktemp("football")
    for name, payload in read_archive_csvs(bundled_football_path()):
        if name.endswith(SEASONS):
            (root / Path(name).name).write_bytes(payload)
    assert len(list(root.glob("*.csv"))) == len(SEASONS)
    return root


def _restore_default_sigint() -> None:
    # A child of a shell's background job starts with SIGINT ignored, and Python then never
    # raises KeyboardInterrupt: give the command the disposition a terminal would.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(
    ("signum", "status", "message"),
    [
        (signal.SIGINT, 130, "marketcast: interrupted"),
        (signal.SIGTERM, 143, "marketcast: terminated"),
    ],
)
def test_a_signal_during_evaluate_exits_with_one_line_and_leaves_no_temp_file(
    epl_folder: Path, tmp_path: Path, signum: int, status: int, message: str
) -> None:
    """Ctrl-C printed a KeyboardInterrupt traceback; SIGTERM exited 143 with no cleanup."""
    out = tmp_path / "out" / "eval.json"
    out.parent.mkdir()
    command = [sys.executable, "-m", "marketcast.cli", "evaluate", "football"]
    command += ["--data", str(epl_folder), "--start", "2019-08-01"]
    command += ["--models", "market,elo,dixon_coles", "--json", str(out)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=_restore_default_sigint,
    )
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:  # the data summary comes before the walk-forward starts
        seen.append(line)
        if line.startswith("data:"):
            break
    process.send_signal(signum)
    seen.append(process.stderr.read())
    assert process.wait(timeout=60) == status, "".join(seen)
    stderr = "".join(seen)
    assert "Traceback" not in stderr
    assert stderr.rstrip().endswith(message)
    assert not out.exists()  # stopped before the evaluation was written
    assert sorted(p.name for p in out.parent.iterdir()) == []  # no hidden `.eval.json.*.tmp`
