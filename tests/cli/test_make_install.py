"""`make install`'s venv rules, run on a small project with the repository's own recipe."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = """[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"
[project]
name = "demo"
version = "0"
[tool.setuptools.packages.find]
where = ["src"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A package with the Makefile's variables and install recipe (up to its `run` target)."""
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    recipe = ROOT.joinpath("Makefile").read_text().split("\nrun:")[0]
    (tmp_path / "Makefile").write_text(recipe)
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "src" / "demo").mkdir(parents=True)
    (tmp_path / "src" / "demo" / "__init__.py").write_text("")
    (tmp_path / "requirements.lock").write_text("# first lock\n")
    return tmp_path


def _install(project: Path) -> str:
    done = subprocess.run(
        ["make", "install", f"PY={sys.executable}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _touch(path: Path) -> None:
    path.write_text(path.read_text())  # newer than the stamp


def test_a_broken_venv_or_another_lock_builds_it_afresh(project: Path) -> None:
    """An install interrupted while the venv was made left python without pip, and every later
    `make install` failed on "No module named pip"; a package the lock dropped stayed."""
    assert "afresh" in _install(project)
    venv_python = project / ".venv" / "bin" / "python"
    marker = project / ".venv" / "left-over"
    marker.write_text("a package the lock dropped")
    _touch(project / "pyproject.toml")  # the package changed: installed over the venv
    assert "afresh" not in _install(project)
    assert marker.exists()
    (project / "requirements.lock").write_text("# second lock\n")  # another lock: afresh
    assert "afresh" in _install(project)
    assert not marker.exists()
    site = next((project / ".venv" / "lib").glob("python3.*/site-packages"))
    shutil.rmtree(site / "pip")  # interrupted while ensurepip ran
    _touch(project / "pyproject.toml")
    assert "afresh" in _install(project)
    check = subprocess.run([venv_python, "-c", "import pip, demo"], capture_output=True)
    assert check.returncode == 0, check.stderr
