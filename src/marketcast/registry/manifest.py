"""Run manifests: what was trained, on which data and code, with which files and scores."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

#: Vertical, market, model and version names: lower-case, no separators, never "..". Anchored
#: with ``\Z``, not ``$``, which also matches before a trailing newline ("e0\n").
NAME_PATTERN = re.compile(r"\A[a-z0-9][a-z0-9_.-]{0,63}\Z")
#: Versions: like NAME_PATTERN but upper case is allowed ("20261121T235959Z-3f2c1e9a").
VERSION_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
#: Artifact file names: like NAME_PATTERN but case is kept (a model may write "booster_1X2.txt").
FILE_NAME_PATTERN = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")
#: Suffixes of formats that execute code when loaded; the registry refuses them.
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
#: File name the registry keeps for itself inside each version folder.
MANIFEST_FILE = "manifest.json"
#: Packages recorded in every manifest by default (missing ones are recorded as "not installed").
DEFAULT_PACKAGES = (
    "marketcast",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "lightgbm",
    "pyarrow",
    "torch",
    "pydantic",
    "fsspec",
)

_SHA256_PATTERN = r"^[0-9a-f]{64}$"


class ArtifactIntegrityError(ValueError):
    """An artifact's bytes do not match the sha256 or size its manifest recorded."""


def validate_name(value: str, kind: str = "name") -> str:
    """Return ``value`` if it is a safe registry name, else raise ``ValueError``.

    Parameters
    ----------
    value
        Candidate vertical, market, model or version name.
    kind
        What the name is, used in the error message.

    Returns
    -------
    str
        ``value`` unchanged.

    Examples
    --------
    >>> validate_name("dixon_coles", "model name")
    'dixon_coles'
    >>> validate_name("../etc", "model name")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: invalid model name '../etc': use 1-64 characters from a-z, 0-9, ...
    """
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid {kind} {value!r}: use 1-64 characters from a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit, and no '..'"
        )
    return value


def validate_version(value: str) -> str:
    """Return ``value`` if it is a safe version name, else raise ``ValueError``.

    Examples
    --------
    >>> validate_version("20261121T235959Z-3f2c1e9a")
    '20261121T235959Z-3f2c1e9a'
    """
    if not isinstance(value, str) or not VERSION_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid version {value!r}: use 1-64 characters from A-Z, a-z, 0-9, '_', '.', '-', "
            "starting with a letter or digit, and no '..'"
        )
    return value


def validate_file_name(value: str) -> str:
    """Return ``value`` if it is a safe artifact file name, else raise ``ValueError``.

    Pickle-family suffixes (``.pkl``, ``.pickle``, ``.joblib``) and the reserved name
    ``manifest.json`` are refused.

    Examples
    --------
    >>> validate_file_name("booster.txt")
    'booster.txt'
    >>> validate_file_name("model.pkl")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: refusing artifact file 'model.pkl': the registry never stores pickles ...
    """
    if not isinstance(value, str) or not FILE_NAME_PATTERN.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid artifact file name {value!r}: use 1-128 characters from A-Z, a-z, 0-9, "
            "'_', '.', '-', starting with a letter or digit, no '/' and no '..'"
        )
    if value.lower().endswith(PICKLE_SUFFIXES):
        raise ValueError(
            f"refusing artifact file {value!r}: the registry never stores pickles "
            f"({', '.join(PICKLE_SUFFIXES)}); save JSON, text, parquet or tensors instead"
        )
    if value == MANIFEST_FILE:
        raise ValueError(f"artifact file name {MANIFEST_FILE!r} is reserved for the manifest")
    return value


class GroupWindow(BaseModel):
    """Where one league's (crypto: one pair's) training data ends, and how much there is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    end_utc: AwareDatetime
    n_matches: int = Field(ge=0)


class TrainingWindow(BaseModel):
    """The span of data a model was trained on; ``groups``, per league (crypto: per pair),
    where each one's data ends and how much there is (absent in manifests made before
    2026-11-24)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_utc: AwareDatetime
    end_utc: AwareDatetime
    n_matches: int = Field(ge=0)
    groups: dict[str, GroupWindow] | None = None

    @model_validator(mode="after")
    def _start_before_end(self) -> TrainingWindow:
        if self.start_utc > self.end_utc:
            raise ValueError(
                f"training window starts after it ends: {self.start_utc} > {self.end_utc}"
            )
        return self


class FileEntry(BaseModel):
    """One artifact file: name, sha256 of its bytes and its size in bytes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    sha256: str = Field(pattern=_SHA256_PATTERN)
    bytes: int = Field(ge=0)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        return validate_file_name(value)


class Manifest(BaseModel):
    """Everything needed to trust and reproduce one registered model version."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, protected_namespaces=(), ser_json_inf_nan="constants"
    )

    run_id: str = Field(min_length=1)
    model_name: str
    version: str | None = None
    vertical: str
    market: str
    git_sha: str = Field(min_length=1)
    created_utc: AwareDatetime
    config: dict[str, Any]
    config_sha256: str = Field(pattern=_SHA256_PATTERN)
    data_sha256: str = Field(pattern=_SHA256_PATTERN)
    features_sha256: str = Field(pattern=_SHA256_PATTERN)
    training_window: TrainingWindow
    package_versions: dict[str, str]
    scores: dict[str, float]
    backtest: dict[str, Any]
    files: list[FileEntry]

    @field_validator("model_name", "vertical", "market")
    @classmethod
    def _safe_names(cls, value: str) -> str:
        return validate_name(value)

    @field_validator("version")
    @classmethod
    def _safe_version(cls, value: str | None) -> str | None:
        return None if value is None else validate_version(value)

    @model_validator(mode="after")
    def _unique_files(self) -> Manifest:
        names = [entry.name for entry in self.files]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate artifact file names in manifest: {sorted(names)}")
        return self


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``.

    Examples
    --------
    >>> sha256_bytes(b"")[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> bytes:
    """Return ``obj`` as canonical JSON bytes: sorted keys, no spaces, UTF-8.

    Pydantic models are dumped in JSON mode first, so a typed config hashes like its dict.

    Examples
    --------
    >>> canonical_json({"b": 1, "a": [1.5, "x"]})
    b'{"a":[1.5,"x"],"b":1}'
    """
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_json(obj: Any) -> str:
    """Return the hex sha256 of ``obj``'s canonical JSON (see :func:`canonical_json`).

    Examples
    --------
    >>> sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    True
    """
    return sha256_bytes(canonical_json(obj))


def git_sha(cwd: str | Path | None = None) -> str:
    """Return ``git rev-parse --short HEAD`` for ``cwd``, with ``-dirty`` appended when a tracked
    file under ``cwd`` differs from that commit, or ``"unknown"`` outside a git checkout.

    A model trained from edited code named the commit it was not made from: ``-dirty`` says the
    sha alone cannot rebuild it (as ``git describe --dirty`` marks it). Only the files under
    ``cwd`` count (by default this package's source: ``make bench`` rewrites the tracked results
    under ``bench/`` before it trains, and a clean clone's champion read as dirty), and files git
    does not track never do. When the check itself fails the sha is given as it is.

    Parameters
    ----------
    cwd
        Folder to ask; defaults to the folder holding this package's source, so the sha names the
        code that trained the model rather than wherever the process was started.
    """
    folder = Path(cwd) if cwd is not None else Path(__file__).resolve().parents[1]
    sha = _git(folder, "rev-parse", "--short", "HEAD")
    if not sha:
        return "unknown"
    changed = _git(folder, "status", "--porcelain", "--untracked-files=no", "--", ".")
    return f"{sha}-dirty" if changed else sha


def _git(folder: Path, *args: str) -> str | None:
    """The stripped output of ``git args`` run in ``folder``; None when it fails. Optional locks
    are off: ``git status`` would otherwise refresh ``.git/index`` under a user's feet."""
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def package_versions(names: Iterable[str] = DEFAULT_PACKAGES) -> dict[str, str]:
    """Return installed versions of ``names``; a missing package maps to ``"not installed"``.

    Examples
    --------
    >>> package_versions(["surely-not-a-real-package-xyz"])
    {'surely-not-a-real-package-xyz': 'not installed'}
    """
    versions: dict[str, str] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def file_entries(files: Mapping[str, bytes]) -> list[FileEntry]:
    """Return one :class:`FileEntry` per file, sorted by name.

    Examples
    --------
    >>> [(e.name, e.bytes) for e in file_entries({"b.json": b"{}", "a.txt": b"abc"})]
    [('a.txt', 3), ('b.json', 2)]
    """
    entries = []
    for name in sorted(files):
        data = files[name]
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"artifact file {name!r} must be bytes, got {type(data).__name__}")
        entries.append(FileEntry(name=name, sha256=sha256_bytes(bytes(data)), bytes=len(data)))
    return entries


def verify_files(manifest: Manifest, files: Mapping[str, bytes]) -> None:
    """Raise :class:`ArtifactIntegrityError` unless ``files`` match ``manifest.files`` exactly.

    Each listed file must be present with the recorded size and sha256, and no unlisted file may
    appear.
    """
    label = f"{manifest.model_name} {manifest.version or '(unregistered)'}"
    expected = {entry.name: entry for entry in manifest.files}
    missing = sorted(set(expected) - set(files))
    extra = sorted(set(files) - set(expected))
    if missing or extra:
        raise ArtifactIntegrityError(
            f"{label}: files do not match the manifest (missing {missing}, unlisted {extra})"
        )
    for name, entry in expected.items():
        data = bytes(files[name])
        if len(data) != entry.bytes or sha256_bytes(data) != entry.sha256:
            raise ArtifactIntegrityError(
                f"{label}: artifact {name!r} was modified: expected {entry.bytes} bytes with "
                f"sha256 {entry.sha256[:12]}..., found {len(data)} bytes with sha256 "
                f"{sha256_bytes(data)[:12]}..."
            )


def build_manifest(
    *,
    model_name: str,
    vertical: str,
    market: str,
    config: Mapping[str, Any] | BaseModel,
    files: Mapping[str, bytes],
    data_sha256: str,
    features_sha256: str,
    training_window: TrainingWindow | Mapping[str, Any],
    scores: Mapping[str, float],
    backtest: Mapping[str, Any] | None = None,
    run_id: str | None = None,
    created_utc: datetime | None = None,
    packages: Iterable[str] = DEFAULT_PACKAGES,
    git_sha_value: str | None = None,
) -> Manifest:
    """Assemble a :class:`Manifest` for a trained model, hashing its config and files.

    Parameters
    ----------
    model_name, vertical, market
        Registry names (see :func:`validate_name`).
    config
        The run's configuration (dict or pydantic model); stored as JSON and hashed canonically.
    files
        The model's ``to_artifact()`` output: file name -> bytes.
    data_sha256, features_sha256
        Content hashes of the training data snapshot and the feature table.
    training_window
        ``{start_utc, end_utc, n_matches}`` of the training data.
    scores, backtest
        Evaluation scores (``{"log_loss": 0.98, ...}``) and backtest summary.
    run_id
        Defaults to ``"{created:%Y-%m-%dT%H-%M-%S}_{vertical}_{market}_{model_name}"``.
    created_utc
        Defaults to now (UTC).
    packages
        Distribution names whose versions are recorded.
    git_sha_value
        Defaults to :func:`git_sha`.

    Returns
    -------
    Manifest
        With ``version=None``; :meth:`Registry.register` assigns the version.
    """
    created = created_utc if created_utc is not None else datetime.now(UTC)
    config_json = config.model_dump(mode="json") if isinstance(config, BaseModel) else dict(config)
    return Manifest(
        run_id=run_id or f"{created:%Y-%m-%dT%H-%M-%S}_{vertical}_{market}_{model_name}",
        model_name=model_name,
        version=None,
        vertical=vertical,
        market=market,
        git_sha=git_sha_value if git_sha_value is not None else git_sha(),
        created_utc=created,
        config=config_json,
        config_sha256=sha256_json(config_json),
        data_sha256=data_sha256,
        features_sha256=features_sha256,
        training_window=TrainingWindow.model_validate(training_window),
        package_versions=package_versions(packages),
        scores={name: float(value) for name, value in scores.items()},
        backtest=dict(backtest or {}),
        files=file_entries(files),
    )
