"""Registry reads stay inside the root and bounded: symlinks out, special files, oversize files."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import fsspec
import pytest

from marketcast.cli import main
from marketcast.registry import ArtifactIntegrityError, Registry
from marketcast.registry.manifest import validate_file_name, validate_name, validate_version
from marketcast.registry.store import MAX_JSON_BYTES, RegistryDamagedError
from tests.unit.test_registry import FILES, START, StepClock, make_manifest
from tests.unit.test_registry import _decision as decision


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "reg"


@pytest.fixture
def registry(root: Path) -> Registry:
    return Registry(str(root), clock=StepClock(START, timedelta(minutes=1)))


def _register(registry: Registry, model_name: str = "elo") -> str:
    manifest = make_manifest(model_name, FILES, market="1x2")
    return registry.register("football", "1x2", model_name, FILES, manifest)


def _version_dir(root: Path, version: str, model_name: str = "elo") -> Path:
    return root / "football" / "1x2" / model_name / version


def _move_out_and_link(path: Path, outside: Path) -> Path:
    """Move ``path`` to ``outside`` (same bytes) and leave a symlink to it in its place."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(path, outside)
    path.symlink_to(outside)
    return outside


# ---------------------------------------------------------------- symlinks out of the root


def test_artifact_symlinked_outside_the_root_is_refused(
    root: Path, registry: Registry, tmp_path: Path
) -> None:
    version = _register(registry)
    artifact = _version_dir(root, version) / "params.json"
    _move_out_and_link(artifact, tmp_path / "outside" / "params.json")  # same bytes, same sha

    with pytest.raises(ArtifactIntegrityError, match="resolves outside the registry root") as e:
        registry.load_files("football", "1x2", "elo", version)
    assert "'params.json'" in str(e.value)
    with pytest.raises(ArtifactIntegrityError, match=r"params\.json"):
        registry.set_champion("football", "1x2", "elo", version, "manual promotion")
    assert registry.champion("football", "1x2") is None


def test_manifest_symlinked_outside_the_root_is_refused(
    root: Path, registry: Registry, tmp_path: Path
) -> None:
    version = _register(registry)
    manifest = _version_dir(root, version) / "manifest.json"
    _move_out_and_link(manifest, tmp_path / "outside" / "manifest.json")

    with pytest.raises(ArtifactIntegrityError, match="resolves outside the registry root") as e:
        registry.manifest("football", "1x2", "elo", version)
    assert str(manifest) in str(e.value)
    assert registry.list_models() == []  # skipped with a warning, as any unreadable manifest


# ---------------------------------------------------------------- special files


@contextlib.contextmanager
def _fifo_in_place_of(path: Path, data: bytes) -> Iterator[None]:
    """Replace ``path`` by a FIFO that a thread fills with ``data`` once someone opens it."""
    path.unlink()
    os.mkfifo(path)

    def feed() -> None:
        with contextlib.suppress(OSError), open(path, "wb") as handle:
            handle.write(data)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if thread.is_alive():  # nobody opened it: open it so the writer returns
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            thread.join(timeout=5)
            os.close(fd)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_artifact_that_is_not_a_regular_file_is_refused(root: Path, registry: Registry) -> None:
    version = _register(registry)
    artifact = _version_dir(root, version) / "params.json"
    with (
        _fifo_in_place_of(artifact, FILES["params.json"]),
        pytest.raises(ArtifactIntegrityError, match="not a regular file") as e,
    ):
        registry.load_files("football", "1x2", "elo", version)
    assert "'params.json'" in str(e.value)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_champion_file_that_is_not_a_regular_file_is_damage(root: Path, registry: Registry) -> None:
    version = _register(registry)
    registry.set_champion("football", "1x2", "elo", version, "no champion yet")
    pointer = root / "football" / "1x2" / "champion.json"
    with (
        _fifo_in_place_of(pointer, pointer.read_bytes()),
        pytest.raises(RegistryDamagedError, match="not a regular file"),
    ):
        registry.champion("football", "1x2")


# ---------------------------------------------------------------- sizes


@pytest.mark.parametrize("where", ["local", "memory"])
def test_artifact_larger_than_its_manifest_says_is_not_read_whole(
    tmp_path: Path, where: str
) -> None:
    root = str(tmp_path / "reg") if where == "local" else f"memory://sec-{uuid.uuid4().hex}"
    registry = Registry(root, clock=StepClock(START))
    version = _register(registry)
    fs, base = fsspec.core.url_to_fs(root)
    path = f"{base}/football/1x2/elo/{version}/booster.txt"
    fs.pipe_file(path, FILES["booster.txt"] + b"\0" * 5_000_000)
    declared = len(FILES["booster.txt"])

    with pytest.raises(ArtifactIntegrityError, match=rf"has more than the {declared} bytes") as e:
        registry.load_files("football", "1x2", "elo", version)
    assert "'booster.txt' was modified" in str(e.value)
    if where == "memory":
        fs.rm(base, recursive=True)


def test_oversized_manifest_is_refused(root: Path, registry: Registry) -> None:
    version = _register(registry)
    manifest = _version_dir(root, version) / "manifest.json"
    with manifest.open("ab") as handle:  # still valid JSON: trailing white space
        handle.write(b" " * MAX_JSON_BYTES)

    with pytest.raises(ArtifactIntegrityError, match=r"has more than 16,777,216 bytes"):
        registry.manifest("football", "1x2", "elo", version)


def test_oversized_champion_file_is_damage(root: Path, registry: Registry) -> None:
    version = _register(registry)
    registry.set_champion("football", "1x2", "elo", version, "no champion yet")
    with (root / "football" / "1x2" / "champion.json").open("ab") as handle:
        handle.write(b" " * MAX_JSON_BYTES)

    with pytest.raises(RegistryDamagedError, match=r"champion\.json has more than 16,777,216"):
        registry.champion("football", "1x2")


def test_oversized_decision_is_skipped(
    registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.save_decision("football", "1x2", decision("elo v1"))
    path = Path(registry.save_decision("football", "1x2", decision("elo v2")))
    with path.open("ab") as handle:
        handle.write(b" " * MAX_JSON_BYTES)

    with caplog.at_level(logging.WARNING):
        assert [d.challenger for d in registry.decisions("football", "1x2")] == ["elo v1"]
    assert f"skipping unreadable decision {path}" in caplog.text
    assert "has more than 16,777,216 bytes" in caplog.text


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("check", "name"),
    [
        (validate_name, "e0\n"),
        (validate_version, "20261121T120000Z-3f2c1e9a\n"),
        (validate_file_name, "params.json\n"),
    ],
)
def test_names_with_a_trailing_newline_are_refused(check: Callable[[str], str], name: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        check(name)
    assert check(name.rstrip("\n")) == name.rstrip("\n")


# ---------------------------------------------------------------- registry show


def test_registry_show_prints_valid_json_for_nan_scores(
    root: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = make_manifest(
        "elo", FILES, market="1x2", scores={"log_loss": float("nan"), "rps": float("inf")}
    )
    registry.register("football", "1x2", "elo", FILES, manifest)

    assert main(["registry", "--root", str(root), "show", "football/1x2/elo"]) == 0

    def reject(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    shown = json.loads(capsys.readouterr().out, parse_constant=reject)
    assert shown["scores"] == {"log_loss": None, "rps": None}
    assert shown["score_log_loss"] is None
