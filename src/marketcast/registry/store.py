"""Artifact store: model versions, manifests, champion pointers and decisions on any fsspec URL."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import stat
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import fsspec.core
from fsspec import AbstractFileSystem
from fsspec.implementations.cached import CachingFileSystem
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from marketcast.data.files import write_atomic
from marketcast.registry.manifest import (
    MANIFEST_FILE,
    ArtifactIntegrityError,
    FileEntry,
    Manifest,
    file_entries,
    sha256_bytes,
    sha256_json,
    validate_file_name,
    validate_name,
    validate_version,
    verify_files,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no cross-process pointer lock
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from marketcast.registry.promotion import PromotionDecision

logger = logging.getLogger(__name__)

CHAMPION_FILE = "champion.json"
#: Held around every read-modify-write of a market's champion pointer: ``flock`` on a local
#: root; on an object store, the file's exclusive creation is the lock (`_lease_lock`).
CHAMPION_LOCK_FILE = ".champion.lock"
#: fsspec protocols whose ``open(path, "xb")`` creates a file only if it does not exist, in one
#: request: S3 (s3fs, ``If-None-Match``), Google Cloud Storage (gcsfs, generation 0), Azure
#: (adlfs) and the in-process memory filesystem. Elsewhere the last writer wins the pointer.
EXCLUSIVE_CREATE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "memory"})
#: An object-store pointer lock older than this was left by a crashed holder and is broken: a
#: move holds it for one read and one write of ``champion.json``.
CHAMPION_LOCK_STALE = timedelta(minutes=2)
#: How long a promotion waits for another holder of the pointer lock before giving up.
CHAMPION_LOCK_WAIT_SECONDS = 30.0
#: An object-store lock that stays unreadable (empty: its holder crashed between creating and
#: writing it, where a store shows the file first) this long, as this waiter sees it, is broken.
UNREADABLE_LOCK_GRACE_SECONDS = 5.0
DECISIONS_DIR = "decisions"
#: On an object store (`EXCLUSIVE_CREATE_PROTOCOLS`) a version folder is claimed by creating
#: this file in it with ``"xb"`` (object stores have no folders to create exclusively); it is
#: removed once the version's manifest is written.
VERSION_CLAIM_FILE = ".claim"
#: A model's claimed version stamps: ``{model_name}/.stamps/{stamp}``, one small file each,
#: created exclusively before the version folder, so that two registrations of different
#: content never share a second (their versions would then sort by hash, not in order).
STAMPS_DIR = ".stamps"
#: Versions tried, a second apart, before a registration gives up (each taken by another).
MAX_VERSION_TRIES = 1000
#: Names a model may not take because the market folder uses them itself.
RESERVED_MODEL_NAMES = frozenset({DECISIONS_DIR, CHAMPION_FILE})
#: Version and decision timestamps: sortable, second resolution, UTC.
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_VERSION_PATTERN = re.compile(r"(\d{8}T\d{6}Z)-[0-9a-f]{8}")  # used with fullmatch
#: Versions of one run are registered within this of each other (`Registry.version_of_run`).
RUN_REGISTRATION_SPAN = timedelta(days=1)
#: A temporary file of an atomic write (`write_atomic`, `_write_atomic`): ``.<name>.<hex>.tmp``.
_TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")
#: A reason written by :meth:`Registry.rollback`; group 1 is the restored champion's own reason.
_ROLLBACK_REASON = re.compile(r"rollback from \S+ \S+; \S+ \S+ restored \(its reason: (.*)\)", re.S)
#: The nesting form rollback reasons had before (``... (first promoted <time>: <reason>)``).
_LEGACY_ROLLBACK_REASON = re.compile(r"rollback from \S+ \S+ \(first promoted \S+: (.*)\)", re.S)
#: Run reports live beside the verticals, under a name no vertical can take (names start with
#: a lower-case letter or digit): ``{root}/_reports/{vertical}/{run_id}/``.
REPORTS_DIR = "_reports"
#: Written last into a run's report folder: the run, the time and every file's size and sha256.
REPORT_INDEX_FILE = "index.json"
#: A run that registers versions marks itself here first (`Registry.begin_run`):
#: ``{root}/_runs/{vertical}/{run_id}.json``, removed once the run's report is saved. A mark
#: left without a report is a run that stopped between registering and its report: no
#: champion pointer was moved to its versions, which `Registry.leftovers` then lists.
RUNS_DIR = "_runs"
#: A report save's folder: the first 16 hex digits of its files' hash (`save_run_report`).
_REPORT_GENERATION = re.compile(r"[0-9a-f]{16}")
#: Most bytes read from a registry JSON file (manifest, ``champion.json``, a decision): each is a
#: few kilobytes; the cap keeps a damaged or hostile file from filling memory.
MAX_JSON_BYTES = 16 * 1024 * 1024


class RegistryError(Exception):
    """A registry request that cannot be met (unknown model, nothing to roll back to, ...)."""


class RegistryDamagedError(RegistryError):
    """A registry file the registry itself wrote cannot be read back (e.g. ``champion.json``)."""


class ChampionChangedError(RegistryError):
    """A conditional ``set_champion`` found another champion than the one its caller decided on."""


#: ``set_champion(expected=...)`` default: move the pointer whatever it holds.
_UNCHECKED: Any = object()


class ChampionLockTimeoutError(ChampionChangedError):
    """The champion pointer's lock stayed held past `CHAMPION_LOCK_WAIT_SECONDS`: nothing moved.

    A `ChampionChangedError`, so a run reports the market as not applied (its reports and
    registered versions stay) instead of stopping after other markets' pointers moved.
    """


class ModelNotFoundError(RegistryError, LookupError):
    """The requested model version has no manifest in the registry."""


class _RefusedFile(ValueError):
    """A registry file that is not read: outside the root, not a regular file, or too large."""


class _FileTooLarge(_RefusedFile):
    """A registry file larger than the most its reader accepts."""


class ChampionRecord(BaseModel):
    """Which model version is the champion of a market, since when, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_name: str
    version: str
    promoted_utc: AwareDatetime
    reason: str

    @field_validator("model_name")
    @classmethod
    def _safe_model_name(cls, value: str) -> str:
        return validate_name(value, "model name")

    @field_validator("version")
    @classmethod
    def _safe_version(cls, value: str) -> str:
        return validate_version(value)


class RunReportIndex(BaseModel):
    """``index.json`` of a run's report in the registry: which files make it, and their hashes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str
    vertical: str
    saved_utc: AwareDatetime
    #: the folder (beside ``index.json``) holding this save's files: their content's hash
    generation: str = Field(pattern=r"^[0-9a-f]{16}$")
    files: list[FileEntry] = Field(min_length=1)

    @field_validator("run_id")
    @classmethod
    def _safe_run_id(cls, value: str) -> str:
        return validate_file_name(value)

    @field_validator("vertical")
    @classmethod
    def _safe_vertical(cls, value: str) -> str:
        return validate_name(value, "vertical")


class _ChampionFile(BaseModel):
    """On-disk shape of ``champion.json``: the current record plus earlier ones, oldest first."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model_name: str
    version: str
    promoted_utc: AwareDatetime
    reason: str
    history: list[ChampionRecord] = Field(default_factory=list)

    def current(self) -> ChampionRecord:
        return ChampionRecord(
            model_name=self.model_name,
            version=self.version,
            promoted_utc=self.promoted_utc,
            reason=self.reason,
        )


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _short_error(error: ValidationError) -> str:
    """The first problem pydantic found, without the model name or the input echoed back."""
    problems = error.errors(include_url=False, include_input=False)
    first = problems[0]
    where = ".".join(str(part) for part in first["loc"])
    text = f"{where}: {first['msg']}" if where else str(first["msg"])
    return text if len(problems) == 1 else f"{text} (and {len(problems) - 1} more)"


#: The first release of a filesystem package whose ``"xb"`` is a conditional write: s3fs
#: 2025.7.0 (before it, a small file ignored "x", fsspec/s3fs#973), adlfs 2024.12.0.
_XB_SINCE = {"s3fs": "2025.7.0", "adlfs": "2024.12.0"}


def _honours_xb(fs: Any) -> bool:
    """False for an S3 or Azure filesystem package older than its first conditional ``"xb"``:
    it would overwrite the lock file, and the pointer would be last-writer-wins unannounced.

    Examples
    --------
    >>> _honours_xb(fsspec.filesystem("memory"))
    True
    """
    from importlib.metadata import PackageNotFoundError, version

    package = type(fs).__module__.split(".", 1)[0]
    floor = _XB_SINCE.get(package)
    if floor is None:
        return True
    try:
        installed = version(package)
    except PackageNotFoundError:
        return False

    def release(text: str) -> tuple[int, ...]:  # "2025.7.0" -> (2025, 7, 0); no packaging dep
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    return release(installed) >= release(floor)


def _holder_text(holder: Mapping[str, Any]) -> str:
    """Who holds a pointer lock, for messages: ``host pid 123 since 2026-...``."""
    if holder.get("acquired_utc") is None:
        return "an unreadable lock file"
    return (
        f"{holder.get('host', '?')} pid {holder.get('pid', '?')} since "
        f"{holder['acquired_utc']:%Y-%m-%d %H:%M:%S} UTC"
    )


def _pointer_text(pointer: tuple[str, str] | None) -> str:
    return "no champion" if pointer is None else " ".join(pointer)


def rollback_reason(current: ChampionRecord, restored: ChampionRecord) -> str:
    """The reason :meth:`Registry.rollback` records when it restores ``restored``.

    ``"rollback from {current} {version}; {restored} {version} restored (its reason: {why})"``,
    where ``why`` is the reason ``restored`` was first made champion: earlier rollback wrappers
    around it are removed, so repeated rollback and promote cycles never nest.

    Examples
    --------
    >>> from datetime import UTC, datetime
    >>> when = datetime(2026, 11, 21, tzinfo=UTC)
    >>> elo = ChampionRecord(
    ...     model_name="elo", version="v1", promoted_utc=when, reason="no champion yet"
    ... )
    >>> neural = ChampionRecord(
    ...     model_name="neural", version="v2", promoted_utc=when, reason="manual promotion"
    ... )
    >>> first = rollback_reason(neural, elo)
    >>> first
    'rollback from neural v2; elo v1 restored (its reason: no champion yet)'
    >>> rollback_reason(neural, elo.model_copy(update={"reason": first})) == first
    True
    """
    original = restored.reason
    while match := _ROLLBACK_REASON.fullmatch(original) or _LEGACY_ROLLBACK_REASON.fullmatch(
        original
    ):
        original = match.group(1)
    return (
        f"rollback from {current.model_name} {current.version}; "
        f"{restored.model_name} {restored.version} restored (its reason: {original})"
    )


def _decision_label(label: str) -> str:
    """Make a free-form model label safe for a file name ("Elo v2" -> "elo-v2")."""
    safe = re.sub(r"[^a-z0-9_.-]+", "-", label.lower()).strip("-.")
    safe = re.sub(r"\.{2,}", ".", safe)[:64]
    return safe or "model"


def protocol_names(fs: AbstractFileSystem) -> tuple[str, ...]:
    """An fsspec filesystem's protocol names, its main one first (fsspec gives one string, or a
    tuple of aliases: ``("s3", "s3a")``).

    >>> protocol_names(fsspec.filesystem("memory"))
    ('memory',)
    """
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)


def underlying(fs: AbstractFileSystem, path: str) -> tuple[AbstractFileSystem, str]:
    """``fs`` and ``path`` without the layers fsspec wraps around a filesystem: caches
    (``simplecache::``, ``filecache::``, ``blockcache::``) and ``dir::`` prefixes, at any depth.

    This is what a registry reads and writes, and what a lock on its folder is taken on. A cache
    serves mutable files, such as ``champion.json``, from a stale copy. A ``dir::`` layer
    prefixes its own root to every path. For ``dir::/srv/reg``, ``url_to_fs`` returns that root
    as the path too, so the registry wrote under the root twice (``/srv/reg//srv/reg/...``): the
    path is then the root itself. ``dir://staging::/srv/reg`` names a folder under the root,
    ``/srv/reg/staging``.

    Examples
    --------
    >>> fs, path = fsspec.core.url_to_fs("simplecache::dir::memory://reg")
    >>> inner, root = underlying(fs, path)
    >>> type(inner).__name__, root
    ('MemoryFileSystem', '/reg')
    >>> underlying(*fsspec.core.url_to_fs("dir://staging::memory://reg"))[1]
    '/reg/staging'
    """
    while True:
        if isinstance(fs, CachingFileSystem):
            fs = fs.fs
        elif isinstance(fs, DirFileSystem):
            fs, path = fs.fs, fs.path if path == fs.path else fs._join(path)
        else:
            return fs, path


class Registry:
    """Model registry on a local folder or any fsspec URL.

    Layout::

        {root}/{vertical}/{market}/{model_name}/{version}/manifest.json   (written last)
        {root}/{vertical}/{market}/{model_name}/{version}/<artifact files>
        {root}/{vertical}/{market}/champion.json
        {root}/{vertical}/{market}/decisions/{timestamp}_{challenger}.json

    Parameters
    ----------
    root
        Local folder path or fsspec URL (``file://``, ``memory://``, ``s3://`` ...).
    clock
        Returns the current time (aware, UTC); injectable for tests.
    """

    def __init__(self, root: str = "registry", *, clock: Callable[[], datetime] = _utc_now) -> None:
        self.root = str(root)
        try:
            fs, path = fsspec.core.url_to_fs(self.root)
        except ImportError as error:  # e.g. s3:// without s3fs: "Install s3fs to access S3"
            raise RegistryError(
                f"cannot open registry {self.root}: its filesystem package is missing ({error})"
            ) from error
        except ValueError as error:  # e.g. "Protocol not known: ..."
            raise RegistryError(f"cannot open registry {self.root}: {error}") from error
        except OSError as error:  # ftp:// and the like connect here: "Connection refused"
            raise RegistryError(f"cannot open registry {self.root}: {error}") from error
        if isinstance(fs, LocalFileSystem) and "::" in self.root:
            # fsspec reads "/srv/reg::v2" as URL chaining and opens "/srv/reg": the registry
            # would read and write another folder than the one named, without a word
            raise RegistryError(
                f"cannot open registry {self.root}: a local path may not contain '::', which "
                f"fsspec reads as URL chaining (it would open {path!r}); rename the folder"
            )
        wrapped, inner = 0, fs
        while getattr(inner, "fs", None) is not None:
            wrapped, inner = wrapped + 1, inner.fs
        if self.root.count("::") != wrapped:
            # "memory://a::b" opened memory://a, dropping "b", and "simplecache::/srv/x::v2"
            # /srv/x: each part but the last must be a filesystem wrapping the next
            # (simplecache::s3://..., dir::...), or a part is ignored
            inner_protocol = protocol_names(inner)[0]
            raise RegistryError(
                f"cannot open registry {self.root}: '::' chains filesystems, but only "
                f"{wrapped + 1} of its {self.root.count('::') + 1} parts open one "
                f"({inner_protocol}:// wraps no other), so fsspec would open {path!r} and "
                "ignore the rest; give one URL"
            )
        # A cache (simplecache::, filecache::, blockcache::) served champion.json, the pointer
        # lock and the run marks from its first copy: another process's promotion went unseen,
        # and a compare-and-set compared with the stale copy. The registry reads and writes the
        # filesystem the cache wraps (its files are small, and a server holds its champions in
        # memory anyway), and the one a dir:: layer wraps, at that layer's root.
        fs, path = underlying(fs, path)
        protocols = set(protocol_names(fs))
        self._fs = fs
        self._is_local = isinstance(fs, LocalFileSystem)
        self._exclusive_create = bool(protocols & EXCLUSIVE_CREATE_PROTOCOLS) and _honours_xb(fs)
        self._root_path = path.rstrip("/") or "/"
        if self._is_local:
            self._root_path = os.path.abspath(self._root_path)
        self._clock = clock

    def now(self) -> datetime:
        """The registry clock's current time (UTC)."""
        return self._clock().astimezone(UTC)

    def require_root(self) -> None:
        """Raise unless the root can be read as a registry.

        Opening a registry on a missing folder is allowed (``register`` creates it); commands
        that only read or move pointers call this first, so a mistyped local path is an error
        rather than an empty registry. Object stores (``s3://`` ...) have no empty folders, so
        only local roots are checked.

        Raises
        ------
        RegistryError
            When a local root does not exist or is not a folder.
        """
        if not self._is_local or os.path.isdir(self._root_path):
            return
        if os.path.exists(self._root_path):
            raise RegistryError(f"registry {self.root} is not a folder")
        raise RegistryError(f"registry {self.root} does not exist")

    def __repr__(self) -> str:
        return f"Registry({self.root!r})"

    @property
    def filesystem(self) -> Any:
        """The fsspec filesystem the registry reads and writes."""
        return self._fs

    @property
    def location(self) -> tuple[str, str]:
        """``(protocol, root path)``: equal for two registries opened on one place, however
        their URLs were spelt (``reg``, ``./reg``, ``file:///.../reg``; a cache or ``dir::``
        layer, ``simplecache::s3://b/x``, is the filesystem it wraps, `underlying`)."""
        return (protocol_names(self._fs)[0], self._root_path)

    # ------------------------------------------------------------------ paths and raw I/O

    def _path(self, *names: str) -> str:
        """Join already-validated names under the root; refuse anything resolving outside it."""
        path = self._root_path
        for name in names:
            path = self._join(path, name)
        if self._is_local:
            self._check_inside_root(path)
        return path

    def _check_inside_root(self, path: str) -> None:
        """A ``ValueError`` unless the local ``path``, symlinks followed, is under the root."""
        root_real = os.path.realpath(self._root_path)
        real = os.path.realpath(path)
        if real != root_real and not real.startswith(root_real + os.sep):
            raise _RefusedFile(f"refusing path {path!r}: it resolves outside the registry root")

    def _join(self, folder: str, name: str) -> str:
        return os.path.join(folder, name) if self._is_local else f"{folder.rstrip('/')}/{name}"

    def _market_path(self, vertical: str, market: str, *rest: str) -> str:
        return self._path(
            validate_name(vertical, "vertical"), validate_name(market, "market"), *rest
        )

    def _version_path(self, vertical: str, market: str, model_name: str, version: str) -> str:
        return self._market_path(
            vertical, market, self._model_name(model_name), validate_version(version)
        )

    @staticmethod
    def _model_name(model_name: str) -> str:
        validate_name(model_name, "model name")
        if model_name in RESERVED_MODEL_NAMES:
            raise ValueError(f"model name {model_name!r} is reserved by the registry")
        return model_name

    def _write_atomic(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` so readers see the old file or the whole new one."""
        if self._is_local:
            write_atomic(path, data)
            return
        folder, name = path.rsplit("/", 1)
        tmp = self._join(folder, f".{name}.{uuid.uuid4().hex}.tmp")
        self._fs.makedirs(folder, exist_ok=True)
        self._fs.pipe_file(tmp, data)
        try:
            self._fs.mv(tmp, path)
        except Exception:
            # an object store's move is a copy then a delete: when only the delete failed the
            # write took effect, and raising made callers act as if it had not (a promotion
            # whose pointer moved lost its decision record)
            self._fs.invalidate_cache(folder)
            if not self._holds(path, data):
                raise
            logger.warning(
                "wrote %s, but could not remove its temporary %s (`registry clean` removes it)",
                path,
                tmp,
                exc_info=True,
            )
        self._fs.invalidate_cache(folder)

    def _holds(self, path: str, data: bytes) -> bool:
        """Whether the file at ``path`` can be read and holds ``data``."""
        try:
            return bytes(self._fs.cat_file(path)) == data
        except Exception:  # unreadable or missing: the write did not take effect
            return False

    def _read(self, path: str, max_bytes: int = MAX_JSON_BYTES) -> bytes:
        """The bytes of the file at ``path``; a `_RefusedFile` when it has more than ``max_bytes``.

        On a local root the file, symlinks followed, must lie inside the root and be a regular
        file (a link to ``/dev/zero`` never ends, a FIFO blocks), and at most ``max_bytes + 1``
        bytes are read. ``FileNotFoundError`` when it does not exist.
        """
        if self._is_local:
            self._check_inside_root(path)
            # O_NONBLOCK: opening a FIFO must not wait for a writer (no effect on regular files)
            flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
            fd = os.open(path, flags)
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise _RefusedFile(f"refusing {path}: not a regular file")
                data = handle.read(max_bytes + 1)
        else:
            data = bytes(self._fs.cat_file(path, start=0, end=max_bytes + 1))
        if len(data) > max_bytes:
            raise _FileTooLarge(f"{path} has more than {max_bytes:,} bytes")
        return data

    def _exists(self, path: str) -> bool:
        return bool(self._fs.exists(path))

    def _write_new(self, path: str, data: bytes) -> bool:
        """Write ``data`` to ``path`` only if no file is there: False, writing nothing, when one
        is. Readers see no file or the whole one (but for an instant, empty, on a filesystem
        without hard links).

        Local: the bytes go to a temporary file, flushed to disk, then hard-linked to ``path``
        (``link`` fails when ``path`` exists: checking first, then writing, let two writers
        both write it); where hard links are not supported, ``path`` is created with
        ``O_EXCL`` and then replaced. Object stores that create exclusively: ``"xb"``. Any
        other filesystem: checked, then written (a race remains there).
        """
        if self._is_local:
            folder = os.path.dirname(path)
            os.makedirs(folder, exist_ok=True)
            tmp = os.path.join(folder, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
            try:
                with open(tmp, "xb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                except OSError:  # no hard links here (some network filesystems)
                    try:
                        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
                    except FileExistsError:
                        return False
                    write_atomic(path, data)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            return True
        if self._exclusive_create:
            self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            try:
                with self._fs.open(path, "xb") as handle:
                    handle.write(data)
            except FileExistsError:
                return False
            return True
        if self._exists(path):
            return False
        self._write_atomic(path, data)
        return True

    def _claim_version(self, folder: str) -> bool:
        """Create the version folder ``folder`` for this registration alone; False when it
        exists already (another registration took that version).

        Local: ``os.mkdir``, which fails when the folder exists. Object stores that create
        exclusively: the folder's `VERSION_CLAIM_FILE`, created with ``"xb"`` and removed once
        the manifest is written (`_release_version`): a claim made after that finds the
        manifest and gives the version up. Any other filesystem: the version is free when it
        has no manifest (a race remains there).
        """
        manifest = self._join(folder, MANIFEST_FILE)
        if self._is_local:
            os.makedirs(os.path.dirname(folder), exist_ok=True)
            try:
                os.mkdir(folder)
            except FileExistsError:
                return False
            return True
        if self._exclusive_create:
            claim = self._join(folder, VERSION_CLAIM_FILE)
            holder = {"host": socket.gethostname(), "pid": os.getpid(), "utc": self.now()}
            if not self._write_new(claim, json.dumps(holder, default=str).encode()):
                return False
            if self._exists(manifest):  # registered, and its claim since released
                self._release_version(folder)
                return False
            return True
        return not self._exists(manifest)

    def _claim_stamp(self, vertical: str, market: str, model_name: str, stamp: str) -> bool:
        """Claim the second ``stamp`` of a model for this registration alone; False when another
        registration claimed it (then this one moves a second on).

        The version folder's claim (`_claim_version`) holds the content hash too, so two
        registrations of different content that listed the versions before either claimed got
        one second and two folders, and sorted by hash. The stamp file,
        ``{model}/.stamps/{stamp}``, is created exclusively (`_write_new`: a hard link locally,
        ``"xb"`` on object stores; checked, then written, on other filesystems). It stays: a
        stamp file is a few bytes, and a crash after claiming only leaves that second taken.
        """
        path = self._market_path(vertical, market, model_name, STAMPS_DIR, stamp)
        holder = {"host": socket.gethostname(), "pid": os.getpid(), "utc": self.now()}
        return self._write_new(path, json.dumps(holder, default=str).encode())

    def _release_version(self, folder: str) -> None:
        """Remove a version folder's claim (object stores): a failure is only a warning."""
        if self._is_local or not self._exclusive_create:
            return
        try:
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm_file(self._join(folder, VERSION_CLAIM_FILE))
        except Exception:  # a claim left beside a manifest only keeps that version taken
            logger.warning("registry %s: could not remove the claim of %s", self.root, folder)

    def _children(self, path: str, *, dirs: bool) -> list[str]:
        """Names of the sub-folders (``dirs=True``) or files directly under ``path``."""
        try:
            entries = self._fs.ls(path, detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        wanted = "directory" if dirs else "file"
        names = {
            entry["name"].rstrip("/").rsplit("/", 1)[-1]
            for entry in entries
            if entry.get("type") == wanted
        }
        return sorted(names)

    # ------------------------------------------------------------------ model versions

    def _new_version(
        self,
        vertical: str,
        market: str,
        model_name: str,
        manifest: Manifest,
        not_before: datetime | None = None,
    ) -> str:
        """UTC timestamp + short content hash, strictly later than every existing version (and
        not before ``not_before``)."""
        now = self.now().replace(microsecond=0)
        if not_before is not None and now < not_before:
            now = not_before
        model_dir = self._market_path(vertical, market, model_name)
        stamps = [
            datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
            for name in self._children(model_dir, dirs=True)
            if (match := _VERSION_PATTERN.fullmatch(name))
        ]
        if stamps and now <= max(stamps):
            now = max(stamps) + timedelta(seconds=1)
        content = sha256_json(
            {
                "files": [entry.model_dump(mode="json") for entry in manifest.files],
                "config_sha256": manifest.config_sha256,
                "data_sha256": manifest.data_sha256,
                "features_sha256": manifest.features_sha256,
            }
        )
        return f"{now.strftime(TIMESTAMP_FORMAT)}-{content[:8]}"

    def register(
        self,
        vertical: str,
        market: str,
        model_name: str,
        files: Mapping[str, bytes],
        manifest: Manifest,
    ) -> str:
        """Store a model's artifact files and manifest; return the new version.

        Artifact files are written first and ``manifest.json`` last, each atomically, so a crash
        part-way leaves a folder without a manifest, which every reader ignores.

        Parameters
        ----------
        vertical, market, model_name
            Where to file the model; must equal the manifest's fields.
        files
            File name -> bytes, as returned by the model's ``to_artifact()``. Pickle-family
            names are refused.
        manifest
            The run's manifest. Its ``files`` list may be empty (it is filled in here) or must
            match ``files`` exactly. ``version`` is normally ``None`` and assigned here; a set
            version is kept (copying between registries) and must not exist yet.

        Returns
        -------
        str
            The version, e.g. ``"20261121T235959Z-3f2c1e9a"``; later registrations of the same
            model sort after earlier ones.
        """
        validate_name(vertical, "vertical")
        validate_name(market, "market")
        self._model_name(model_name)
        for field, given in (
            ("vertical", vertical),
            ("market", market),
            ("model_name", model_name),
        ):
            if getattr(manifest, field) != given:
                raise ValueError(
                    f"manifest {field} {getattr(manifest, field)!r} does not match {given!r}"
                )
        if not files:
            raise ValueError(f"no artifact files given for {vertical}/{market}/{model_name}")
        for name in files:
            validate_file_name(name)
        entries = file_entries(files)
        if manifest.files and manifest.files != entries:
            raise ValueError(
                f"manifest lists files {[e.name for e in manifest.files]} whose hashes or sizes "
                f"differ from the files given {[e.name for e in entries]}"
            )
        manifest = manifest.model_copy(update={"files": entries})
        version, folder = self._claim_new_version(vertical, market, model_name, manifest)
        manifest = Manifest.model_validate({**manifest.model_dump(), "version": version})
        for name in sorted(files):
            self._write_atomic(self._join(folder, name), bytes(files[name]))
        self._write_atomic(
            self._join(folder, MANIFEST_FILE), manifest.model_dump_json(indent=2).encode()
        )
        self._release_version(folder)
        logger.info("registered %s/%s/%s %s", vertical, market, model_name, version)
        return version

    def _claim_new_version(
        self, vertical: str, market: str, model_name: str, manifest: Manifest
    ) -> tuple[str, str]:
        """The version a registration writes, and its folder, claimed for it alone.

        A new version whose folder another registration created meanwhile (the same content
        in the same second: both listed the versions before either wrote) moves a second on:
        before, both got one version, and the later manifest replaced the earlier one. A set
        version (copied from another registry) must have no manifest yet; its folder without
        one (a crashed copy) is written again.
        """
        if manifest.version is not None:
            version = manifest.version
            folder = self._version_path(vertical, market, model_name, version)
            if not self._claim_version(folder) and self._exists(self._join(folder, MANIFEST_FILE)):
                raise FileExistsError(f"{vertical}/{market}/{model_name} {version} already exists")
            return version, folder
        not_before = None
        for _ in range(MAX_VERSION_TRIES):
            version = self._new_version(vertical, market, model_name, manifest, not_before)
            stamp_text = version.split("-", 1)[0]
            folder = self._version_path(vertical, market, model_name, version)
            if self._claim_stamp(vertical, market, model_name, stamp_text) and self._claim_version(
                folder
            ):
                return version, folder
            stamp = datetime.strptime(stamp_text, TIMESTAMP_FORMAT)
            not_before = stamp.replace(tzinfo=UTC) + timedelta(seconds=1)
        raise RegistryError(
            f"no free version of {vertical}/{market}/{model_name} after {MAX_VERSION_TRIES} "
            "tries: each was taken by another registration"
        )

    def manifest(self, vertical: str, market: str, model_name: str, version: str) -> Manifest:
        """Return the manifest of one registered version.

        Raises
        ------
        ModelNotFoundError
            When the version has no manifest (never registered, or its registration crashed).
        """
        path = self._join(self._version_path(vertical, market, model_name, version), MANIFEST_FILE)
        try:
            raw = self._read(path)
        except FileNotFoundError:
            raise ModelNotFoundError(
                f"no model {vertical}/{market}/{model_name} version {version} in {self.root}"
            ) from None
        except _RefusedFile as error:
            raise ArtifactIntegrityError(f"manifest {path} is unreadable ({error})") from error
        try:
            manifest = Manifest.model_validate_json(raw)
        except ValidationError as error:
            raise ArtifactIntegrityError(
                f"manifest {path} is unreadable ({_short_error(error)})"
            ) from error
        if (manifest.vertical, manifest.market, manifest.model_name, manifest.version) != (
            vertical,
            market,
            model_name,
            version,
        ):
            raise RegistryError(
                f"manifest at {path} describes {manifest.vertical}/{manifest.market}/"
                f"{manifest.model_name} {manifest.version}, not the folder it sits in"
            )
        return manifest

    def load_files(
        self, vertical: str, market: str, model_name: str, version: str
    ) -> dict[str, bytes]:
        """Return the artifact files of one version, each checked against its manifest sha256.

        No more bytes than the manifest records (plus one) are read from a file, and on a local
        root only regular files inside the root are read, symlinks followed.

        Raises
        ------
        ArtifactIntegrityError
            When a file is missing, its bytes differ from what the manifest recorded, or it is
            larger than that, outside the root or not a regular file.
        """
        manifest = self.manifest(vertical, market, model_name, version)
        folder = self._version_path(vertical, market, model_name, version)
        files: dict[str, bytes] = {}
        for entry in manifest.files:
            validate_file_name(entry.name)
            path = self._join(folder, entry.name)
            try:
                files[entry.name] = self._read(path, max_bytes=entry.bytes)
            except FileNotFoundError:
                continue  # reported by verify_files as missing
            except _FileTooLarge as error:
                raise ArtifactIntegrityError(
                    f"{model_name} {version}: artifact {entry.name!r} was modified: {path} has "
                    f"more than the {entry.bytes:,} bytes its manifest records"
                ) from error
            except _RefusedFile as error:
                raise ArtifactIntegrityError(
                    f"{model_name} {version}: artifact {entry.name!r} is unreadable ({error})"
                ) from error
        verify_files(manifest, files)
        return files

    def versions(self, vertical: str, market: str, model_name: str) -> list[str]:
        """Registered versions of one model (those with a manifest), oldest first."""
        model_dir = self._market_path(vertical, market, self._model_name(model_name))
        return [
            name
            for name in self._children(model_dir, dirs=True)
            if self._is_valid_version(name)
            and self._exists(self._join(self._join(model_dir, name), MANIFEST_FILE))
        ]

    def latest_version(self, vertical: str, market: str, model_name: str) -> str | None:
        """The most recently registered version of a model, or ``None``."""
        found = self.versions(vertical, market, model_name)
        return found[-1] if found else None

    def version_of_run(
        self, vertical: str, market: str, model_name: str, run_id: str, *, near: str
    ) -> str | None:
        """The version of ``model_name`` that run ``run_id`` registered, or ``None``.

        ``near`` is another version of that run (of any model of the market). A run registers
        its versions within minutes of each other, though not in stamp order across models
        (each model's stamps only increase within that model, and runs may overlap), so the
        search reads manifests newest first and stops at the first version stamped more than
        `RUN_REGISTRATION_SPAN` before ``near``: a registry of years of daily runs is not read
        whole. A version whose manifest cannot be read is skipped with a warning.
        """
        near_match = _VERSION_PATTERN.fullmatch(near)
        oldest = (
            datetime.strptime(near_match.group(1), TIMESTAMP_FORMAT) - RUN_REGISTRATION_SPAN
            if near_match
            else None
        )
        for version in reversed(self.versions(vertical, market, model_name)):
            match = _VERSION_PATTERN.fullmatch(version)
            if oldest and match and datetime.strptime(match.group(1), TIMESTAMP_FORMAT) < oldest:
                return None
            try:
                manifest = self.manifest(vertical, market, model_name, version)
            except (RegistryError, ValueError, OSError) as exc:
                logger.warning(
                    "%s/%s/%s %s skipped: %s", vertical, market, model_name, version, exc
                )
                continue
            if manifest.run_id == run_id:
                return version
        return None

    def leftovers(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """What crashed writers left behind, older than ``older_than``: paths, sorted.

        A run killed while registering leaves a version folder without ``manifest.json``
        (ignored by every reader, never removed), and a write killed before its rename leaves a
        temporary ``.<name>.<hex>.tmp`` file beside its target. A version folder counts once
        both the stamp in its name (the start of its registration) and each of its files are
        older (a version copied from another registry keeps its old stamp while it is written);
        a temporary file by its modification time. A run report's generation that its index
        does not name (a report save that died, `save_run_report`) counts once each of its
        files is older. The default hour leaves a registration still in progress alone.
        """
        cutoff = self.now() - older_than
        found: list[str] = []
        pointed: dict[tuple[str, str], set[tuple[str, str]] | None] = {}
        for folder, names in self._walk(self._root_path, ()):
            # <vertical>/<market>/<model>/<version>: a version folder is four levels down, under
            # registry names (not under _reports, _runs or a folder of the user's own), and
            # never one a champion pointer names (a damaged champion is repaired, not removed)
            files = None
            if (
                len(names) == 4
                and (match := _VERSION_PATTERN.fullmatch(names[3]))
                and all(self._is_valid_name(part) for part in names[:3])
            ):
                stamped = datetime.strptime(match.group(1), TIMESTAMP_FORMAT).replace(tzinfo=UTC)
                files = self._children(folder, dirs=False)
                if (
                    stamped < cutoff
                    and MANIFEST_FILE not in files
                    # read only for a candidate: a market without one reads no champion.json
                    and not self._pointer_names(pointed, *names)
                    # a version copied from another registry keeps its old stamp while written
                    and all(self._modified(self._join(folder, f)) < cutoff for f in files)
                ):
                    found.append(folder)
                    continue
            for file in files if files is not None else self._children(folder, dirs=False):
                if _TEMP_FILE.fullmatch(file) and self._modified(self._join(folder, file)) < cutoff:
                    found.append(self._join(folder, file))
        found.extend(self._report_leftovers(cutoff))
        found.extend(self._stopped_run_leftovers(cutoff, pointed))
        return sorted(found)

    def remove_leftovers(self, older_than: timedelta = timedelta(hours=1)) -> list[str]:
        """Remove what :meth:`leftovers` lists; return the paths removed.

        A stopped run's mark goes last, after its versions: a clean that dies part-way leaves
        the mark, so the next one finds the versions still left. A version's manifest goes
        first, the reverse of :meth:`register`: a version half removed is then an unlisted
        crashed registration, never a listed version with files missing.
        """
        removed = self.leftovers(older_than)
        marks = self._path(RUNS_DIR) + "/"
        for path in sorted(removed, key=lambda path: path.startswith(marks)):
            manifest = self._join(path, MANIFEST_FILE)
            if self._exists(manifest):
                self._fs.rm(manifest)
            # an object store's folder goes with its last file
            with contextlib.suppress(FileNotFoundError):
                self._fs.rm(path, recursive=True)
        return removed

    # ------------------------------------------------------------------ runs in progress

    def _run_mark_path(self, vertical: str, run_id: str) -> str:
        return self._path(
            RUNS_DIR, validate_name(vertical, "vertical"), f"{validate_file_name(run_id)}.json"
        )

    def begin_run(self, vertical: str, run_id: str) -> None:
        """Mark ``run_id`` as registering versions, until its report is saved
        (:meth:`save_run_report` removes the mark).

        A run killed after registering and before its report (so before any champion pointer
        moved to its versions) left complete versions that looked like any other; with the mark
        left behind, :meth:`leftovers` lists them once the mark is older than the cut-off.
        """
        mark = {"run_id": run_id, "vertical": vertical, "started_utc": self.now().isoformat()}
        self._write_atomic(self._run_mark_path(vertical, run_id), json.dumps(mark).encode())

    def _end_run(self, vertical: str, run_id: str) -> None:
        """Remove a run's mark (its report is saved); a failure only leaves it for `clean`."""
        path = self._run_mark_path(vertical, run_id)
        try:
            self._fs.rm(path)  # one request: a report saved again, or published, has no mark
        except FileNotFoundError:
            pass
        except OSError as error:
            logger.warning("could not remove the run mark %s: %s", path, error)

    def stopped_runs(self, older_than: timedelta = timedelta(hours=1)) -> list[tuple[str, str]]:
        """``(vertical, run_id)`` of the runs marked by :meth:`begin_run` more than
        ``older_than`` ago whose report the registry does not hold, sorted.

        An unreadable mark is skipped with a warning (which run it was cannot be told).
        """
        return self._stopped_runs(self.now() - older_than)

    def _stopped_runs(self, cutoff: datetime) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        runs = self._path(RUNS_DIR)
        for vertical in self._children(runs, dirs=True):
            if not self._is_valid_name(vertical):
                continue
            for name in self._children(self._join(runs, vertical), dirs=False):
                run_id = name.removesuffix(".json")
                if run_id == name or not _is_file_name(run_id):
                    continue
                path = self._join(self._join(runs, vertical), name)
                try:
                    mark = json.loads(self._read(path))
                    started = datetime.fromisoformat(mark["started_utc"])
                except (OSError, ValueError, KeyError, TypeError, _RefusedFile) as error:
                    logger.warning("skipping the run mark %s: unreadable (%s)", path, error)
                    continue
                if started.tzinfo is None or started >= cutoff:
                    continue
                if not self._exists(self._report_path(vertical, run_id, REPORT_INDEX_FILE)):
                    found.append((vertical, run_id))
        return sorted(found)

    def _stopped_run_leftovers(
        self, cutoff: datetime, pointed: dict[tuple[str, str], set[tuple[str, str]] | None]
    ) -> list[str]:
        """The versions of each stopped run (:meth:`stopped_runs`), except in a market where a
        champion pointer names one of them, now or in its history (promoted by hand), or whose
        pointer cannot be read (:meth:`_pointer_names`, ``pointed`` its cache), then the run's
        mark, unless a pointer that cannot be read kept some (a clean after its repair finds
        them again)."""
        found: list[str] = []
        manifests: dict[str, list[Manifest]] = {}  # per vertical, read once for all its runs
        for vertical, run_id in self._stopped_runs(cutoff):
            if vertical not in manifests:
                manifests[vertical] = self.list_models(vertical)
            of_run = [m for m in manifests[vertical] if m.run_id == run_id and m.version]
            # a market where a version of this run was made champion (by hand) keeps all the
            # run's versions there: a server blends a champion with its run's other members
            kept = {
                m.market
                for m in of_run
                if self._pointer_names(pointed, vertical, m.market, m.model_name, str(m.version))
            }
            found.extend(
                self._version_path(vertical, m.market, m.model_name, str(m.version))
                for m in of_run
                if m.market not in kept
            )
            # kept behind a pointer that cannot be read: the mark stays, for a clean after repair
            if all(pointed[vertical, market] is not None for market in kept):
                found.append(self._run_mark_path(vertical, run_id))
        return found

    def _walk(self, folder: str, names: tuple[str, ...]) -> Iterator[tuple[str, tuple[str, ...]]]:
        """``(path, names)`` of ``folder`` and its sub-folders down to a version folder's depth
        (4), parents first; ``names`` are a folder's names below the root (the root's are
        empty)."""
        yield folder, names
        if len(names) < 4:
            for child in self._children(folder, dirs=True):
                yield from self._walk(self._join(folder, child), (*names, child))

    def _pointer_names(
        self,
        pointed: dict[tuple[str, str], set[tuple[str, str]] | None],
        vertical: str,
        market: str,
        model_name: str,
        version: str,
    ) -> bool:
        """Whether the market's champion pointer names ``model_name`` ``version``, now or in its
        history; ``pointed`` caches each market's read. A ``champion.json`` that cannot be read
        names every version of its market (which it names cannot be told), with a warning."""
        if (vertical, market) not in pointed:
            named: set[tuple[str, str]] | None
            try:
                state = self._read_champion_file(vertical, market)
            except RegistryDamagedError as error:
                logger.warning("leaving every version of %s/%s: %s", vertical, market, error)
                named = None
            else:
                records = [] if state is None else [*state.history, state.current()]
                named = {(r.model_name, r.version) for r in records}
            pointed[vertical, market] = named
        named = pointed[vertical, market]
        return named is None or (model_name, version) in named

    def _modified(self, path: str) -> datetime:
        """A file's modification time (UTC); "now" where the filesystem cannot say."""
        try:
            stamp = self._fs.modified(path)
        except (NotImplementedError, OSError, KeyError):
            return self.now()
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)

    @staticmethod
    def _is_valid_name(name: str) -> bool:
        try:
            validate_name(name)
        except ValueError:
            return False
        return True

    @staticmethod
    def _is_valid_version(name: str) -> bool:
        try:
            validate_version(name)
        except ValueError:
            return False
        return True

    def verticals(self) -> list[str]:
        """Vertical folders under the root, sorted."""
        return [n for n in self._children(self._root_path, dirs=True) if self._is_valid_name(n)]

    def markets(self, vertical: str) -> list[str]:
        """Market folders of ``vertical``, sorted (whether or not they hold a champion)."""
        folder = self._path(validate_name(vertical, "vertical"))
        return [n for n in self._children(folder, dirs=True) if self._is_valid_name(n)]

    def model_names(self, vertical: str, market: str) -> list[str]:
        """Model folders of a market, sorted (a folder may hold no registered version yet)."""
        return [
            n
            for n in self._children(self._market_path(vertical, market), dirs=True)
            if self._is_valid_name(n) and n not in RESERVED_MODEL_NAMES
        ]

    def list_models(self, vertical: str | None = None, market: str | None = None) -> list[Manifest]:
        """Manifests of every registered version, sorted by vertical, market, model, version.

        Versions whose folder lacks ``manifest.json`` (a crashed registration) are skipped;
        so is an unreadable manifest, with a warning in the log.
        """
        verticals = (
            [validate_name(vertical, "vertical")] if vertical is not None else self.verticals()
        )
        rows: list[Manifest] = []
        for vert in verticals:
            markets = (
                [validate_name(market, "market")] if market is not None else self.markets(vert)
            )
            for mkt in markets:
                for model_name in self.model_names(vert, mkt):
                    for version in self.versions(vert, mkt, model_name):
                        try:
                            rows.append(self.manifest(vert, mkt, model_name, version))
                        except (ValidationError, RegistryError, ValueError) as error:
                            logger.warning(
                                "skipping %s/%s/%s %s: unreadable manifest (%s)",
                                vert,
                                mkt,
                                model_name,
                                version,
                                error,
                            )
        return rows

    # ------------------------------------------------------------------ champion pointer

    def _read_champion_file(self, vertical: str, market: str) -> _ChampionFile | None:
        path = self._market_path(vertical, market, CHAMPION_FILE)
        try:
            raw = self._read(path)
        except FileNotFoundError:
            return None
        except _RefusedFile as error:
            raise RegistryDamagedError(
                f"champion file {path} is unreadable ({error}); repair or remove it"
            ) from error
        try:
            state = _ChampionFile.model_validate_json(raw)
            state.current()  # the current record's names and version checked like history's
            return state
        except ValidationError as error:
            raise RegistryDamagedError(
                f"champion file {path} is unreadable ({_short_error(error)}); repair or remove it"
            ) from error

    def _write_champion_file(self, vertical: str, market: str, state: _ChampionFile) -> None:
        path = self._market_path(vertical, market, CHAMPION_FILE)
        self._write_atomic(path, state.model_dump_json(indent=2).encode())

    @contextlib.contextmanager
    def _champion_lock(self, vertical: str, market: str) -> Iterator[None]:
        """Hold the market's pointer lock: promotions and rollbacks from several processes (or
        hosts, on an object store) run one at a time, so none reads a pointer another is
        replacing (one history entry was lost). Local roots use ``flock``; object stores that
        create files exclusively (`EXCLUSIVE_CREATE_PROTOCOLS`) a lease file; on any other
        filesystem the last writer wins, with a warning.
        """
        path = self._market_path(vertical, market, CHAMPION_LOCK_FILE)
        if not self._is_local:
            if self._exclusive_create:
                with self._lease_lock(path):
                    yield
                return
            logger.warning(
                "registry %s: %s cannot create a file exclusively, so concurrent promotions "
                "of %s/%s are not serialised (the last writer wins the pointer)",
                self.root,
                type(self._fs).__name__,
                vertical,
                market,
            )
            yield
            return
        if fcntl is None:  # pragma: no cover - not POSIX
            yield
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a+b") as handle:
            deadline = time.monotonic() + CHAMPION_LOCK_WAIT_SECONDS
            pause = 0.01
            while True:  # a wedged holder must not block every promotion without a word
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise ChampionLockTimeoutError(
                            f"the champion pointer lock {path} is held by another process for "
                            f"over {CHAMPION_LOCK_WAIT_SECONDS:g} s; another promotion or "
                            "rollback is running, or its process hangs"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _lease_lock(self, path: str) -> Iterator[None]:
        """Hold an object-store lock: ``path`` created with ``"xb"`` (one request, refused when
        it exists) and removed on release, if it is still this holder's.

        A lock stamped more than `CHAMPION_LOCK_STALE` away from this registry's clock (older,
        or in the future: a skewed clock), or unreadable for `UNREADABLE_LOCK_GRACE_SECONDS`
        as this waiter sees it (a lock being written reads empty for a moment), was left by a
        crashed holder and is broken, with a warning. Two
        processes breaking the same stale lock at the same instant could both go on: object
        stores cannot delete a file only if it is unchanged. Waits up to
        `CHAMPION_LOCK_WAIT_SECONDS` for a live holder, then raises `RegistryError` naming it.
        """
        token = uuid.uuid4().hex
        body = {"owner": token, "host": socket.gethostname(), "pid": os.getpid()}
        deadline = time.monotonic() + CHAMPION_LOCK_WAIT_SECONDS
        unreadable_since: float | None = None  # a lock being written reads empty for a moment
        pause = 0.02
        self._fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        while True:
            stamp = {**body, "acquired_utc": self.now().isoformat()}
            try:
                with self._fs.open(path, "xb") as handle:
                    handle.write(json.dumps(stamp).encode())
                break
            except FileExistsError:
                pass
            holder = self._lock_holder(path)
            if holder is None:  # released meanwhile: try again at once
                continue
            acquired = holder.get("acquired_utc")
            if isinstance(acquired, datetime):
                unreadable_since = None
                # stale either way: a clock far ahead stamped it in the future
                stale = abs(self.now() - acquired) > CHAMPION_LOCK_STALE
            else:
                unreadable_since = unreadable_since or time.monotonic()
                stale = time.monotonic() - unreadable_since > UNREADABLE_LOCK_GRACE_SECONDS
            if stale:
                logger.warning(
                    "registry %s: breaking the stale pointer lock %s (%s)",
                    self.root,
                    path,
                    _holder_text(holder),
                )
                with contextlib.suppress(FileNotFoundError):
                    self._fs.rm_file(path)
                continue
            if time.monotonic() > deadline:
                raise ChampionLockTimeoutError(
                    f"the champion pointer lock {path} is held by {_holder_text(holder)} for "
                    f"over {CHAMPION_LOCK_WAIT_SECONDS:g} s; another promotion or rollback is "
                    f"running (a crashed one's lock is broken after "
                    f"{CHAMPION_LOCK_STALE.total_seconds():g} s)"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.5)
        try:
            yield
        finally:
            try:  # a failed release must not turn a move that was written into a failure
                holder = self._lock_holder(path)
                if holder is not None and holder.get("owner") == token:
                    with contextlib.suppress(FileNotFoundError):
                        self._fs.rm_file(path)
            except Exception:  # the lock then goes stale and is broken later
                logger.warning("registry %s: could not release %s", self.root, path, exc_info=True)

    def _lock_holder(self, path: str) -> dict[str, Any] | None:
        """The lock file's JSON (``acquired_utc`` parsed; only ``{"acquired_utc": None}`` when
        unreadable), or None when there is no lock file."""
        try:
            raw = self._read(path, max_bytes=64 * 1024)
        except FileNotFoundError:
            return None
        except _RefusedFile:
            return {"acquired_utc": None}
        try:
            holder = json.loads(raw)
            holder["acquired_utc"] = datetime.fromisoformat(holder["acquired_utc"])
            if holder["acquired_utc"].tzinfo is None:
                raise ValueError("naive time")
        except (ValueError, TypeError, KeyError):
            return {"acquired_utc": None}
        return dict(holder)

    def champion(self, vertical: str, market: str) -> ChampionRecord | None:
        """The current champion of a market, or ``None`` when none was ever set."""
        state = self._read_champion_file(vertical, market)
        return state.current() if state is not None else None

    def champion_history(self, vertical: str, market: str) -> list[ChampionRecord]:
        """Earlier champions that :meth:`rollback` can restore, oldest first."""
        state = self._read_champion_file(vertical, market)
        return list(state.history) if state is not None else []

    def _verify_champion(self, vertical: str, market: str, model_name: str, version: str) -> None:
        """Check every artifact file of a version before the champion pointer moves to it."""
        try:
            self.load_files(vertical, market, model_name, version)
        except ArtifactIntegrityError as error:
            folder = self._version_path(vertical, market, model_name, version)
            detail = str(error).removeprefix(f"{model_name} {version}: ")
            raise ArtifactIntegrityError(
                f"refusing to make {vertical}/{market}/{model_name} {version} champion "
                f"({folder}): {detail}; the champion is unchanged"
            ) from error

    def set_champion(
        self,
        vertical: str,
        market: str,
        model_name: str,
        version: str,
        reason: str,
        *,
        expected: tuple[str, str] | None = _UNCHECKED,
    ) -> ChampionRecord:
        """Make a registered version the champion; the previous one goes onto the history.

        The version's artifact files are checked against its manifest first, so a corrupt or
        incomplete version never becomes champion. Setting the version that is already
        champion changes nothing and returns its record.

        ``expected`` makes the move conditional (compare-and-set): the ``(model_name,
        version)`` the caller read before deciding, or ``None`` for "no champion yet". A run
        decides from the champion it read minutes earlier; a promotion or rollback made in the
        meantime (by the CLI or a server) is then not silently undone.

        Raises
        ------
        ModelNotFoundError
            When the version is not registered.
        ArtifactIntegrityError
            When one of its files is missing or differs from the manifest's sha256; the
            pointer is left unchanged.
        ChampionChangedError
            When ``expected`` is given and the pointer holds something else; it is left as is.
        """
        self._verify_champion(vertical, market, model_name, version)
        with self._champion_lock(vertical, market):
            state = self._read_champion_file(vertical, market)
            if expected is not _UNCHECKED:
                found = None if state is None else (state.model_name, state.version)
                if found != expected:
                    raise ChampionChangedError(
                        f"the champion of {vertical}/{market} changed after it was read: "
                        f"expected {_pointer_text(expected)}, found {_pointer_text(found)}; "
                        f"{model_name} {version} was not made champion"
                    )
            if state is not None and (state.model_name, state.version) == (model_name, version):
                return state.current()
            history = [*state.history, state.current()] if state is not None else []
            record = ChampionRecord(
                model_name=model_name, version=version, promoted_utc=self.now(), reason=reason
            )
            self._write_champion_file(
                vertical, market, _ChampionFile(**record.model_dump(), history=history)
            )
        logger.info(
            "champion of %s/%s is now %s %s: %s", vertical, market, model_name, version, reason
        )
        return record

    def rollback(
        self,
        vertical: str,
        market: str,
        *,
        expected: tuple[str, str] | None = None,
    ) -> ChampionRecord:
        """Restore the previous champion; the current one is dropped from the pointer.

        Repeated rollbacks walk further back through the history. The restored version's
        artifact files are checked first; its reason is :func:`rollback_reason`.

        ``expected`` makes the rollback conditional (compare-and-set): the ``(model_name,
        version)`` the caller read as the newest history entry, and checked (``marketcast
        registry rollback`` loads it as a server would), before taking the lock. Another
        rollback or promotion made since then is a `ChampionChangedError`: three rollbacks at
        once otherwise restored, two of them, versions they had never checked.

        Raises
        ------
        RegistryError
            When the market has no champion, or no earlier champion to return to.
        ChampionChangedError
            When ``expected`` is given and the version a rollback would restore now is
            another; the pointer is left unchanged.
        ArtifactIntegrityError
            When a file of the version to restore is missing or corrupt; the pointer is left
            unchanged.
        """
        if self._read_champion_file(vertical, market) is None:  # before the lock's folder
            raise RegistryError(f"cannot roll back {vertical}/{market}: it has no champion")
        with self._champion_lock(vertical, market):
            state = self._read_champion_file(vertical, market)
            if state is None:
                raise RegistryError(f"cannot roll back {vertical}/{market}: it has no champion")
            if not state.history:
                raise RegistryError(
                    f"cannot roll back {vertical}/{market}: {state.model_name} {state.version} "
                    "is the first champion, there is no earlier one"
                )
            previous = state.history[-1]
            found = (previous.model_name, previous.version)
            if expected is not None and found != expected:
                raise ChampionChangedError(
                    f"the champion of {vertical}/{market} changed after it was read: a rollback "
                    f"would now restore {_pointer_text(found)}, not {_pointer_text(expected)}; "
                    "nothing was rolled back"
                )
            self._verify_champion(vertical, market, previous.model_name, previous.version)
            record = ChampionRecord(
                model_name=previous.model_name,
                version=previous.version,
                promoted_utc=self.now(),
                reason=rollback_reason(state.current(), previous),
            )
            self._write_champion_file(
                vertical, market, _ChampionFile(**record.model_dump(), history=state.history[:-1])
            )
        logger.info(
            "rolled %s/%s back to %s %s", vertical, market, record.model_name, record.version
        )
        return record

    # ------------------------------------------------------------------ promotion decisions

    def save_decision(self, vertical: str, market: str, decision: PromotionDecision) -> str:
        """Save a promotion decision beside the manifests it compared; return its path.

        The file is ``{root}/{vertical}/{market}/decisions/{timestamp}_{challenger}.json``;
        ``decided_utc`` is filled in with the registry clock when the decision lacks it.
        """
        if decision.decided_utc is None:
            decision = decision.model_copy(update={"decided_utc": self.now()})
        assert decision.decided_utc is not None
        stamp = decision.decided_utc.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
        folder = self._market_path(vertical, market, DECISIONS_DIR)
        base = f"{stamp}_{_decision_label(decision.challenger)}"
        data = decision.model_dump_json(indent=2).encode()
        path = self._join(folder, f"{base}.json")
        counter = 1
        # created only where no file is: two decisions saved at once in the same second both
        # found a name free, and the later replaced the earlier
        while not self._write_new(path, data):
            counter += 1
            path = self._join(folder, f"{base}-{counter}.json")
        return path

    def decisions(self, vertical: str, market: str) -> list[PromotionDecision]:
        """Saved promotion decisions of a market, oldest first (by ``decided_utc``).

        The decisions are an audit log: an unreadable file is skipped with a warning in the
        log, and the rest are returned.
        """
        return self._read_decisions(vertical, market, self._decision_files(vertical, market))

    def latest_decision(self, vertical: str, market: str) -> PromotionDecision | None:
        """The market's most recent readable promotion decision, or ``None`` when there is none.

        Reads only the files of the latest second (file names start with the decision time),
        so a market with a long history of decisions costs one listing and a file or two. When
        every file of that second is unreadable (each skipped with a warning), the second
        before it is read, and so on.
        """
        by_stamp: dict[str, list[str]] = {}
        for name in self._decision_files(vertical, market):
            by_stamp.setdefault(name.split("_", 1)[0], []).append(name)
        for stamp in sorted(by_stamp, reverse=True):
            read = self._read_decisions(vertical, market, by_stamp[stamp])
            if read:
                return read[-1]
        return None

    def has_decision(self, vertical: str, market: str, decision: PromotionDecision) -> bool:
        """Whether ``decision`` (its time included) is saved in the market: only the files of
        its second are read."""
        if decision.decided_utc is None:
            return False
        stamp = decision.decided_utc.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
        names = [n for n in self._decision_files(vertical, market) if n.startswith(f"{stamp}_")]
        return decision in self._read_decisions(vertical, market, names)

    def _decision_files(self, vertical: str, market: str) -> list[str]:
        folder = self._market_path(vertical, market, DECISIONS_DIR)
        return [
            name
            for name in self._children(folder, dirs=False)
            if name.endswith(".json") and not name.startswith(".")
        ]

    def _read_decisions(
        self, vertical: str, market: str, names: list[str]
    ) -> list[PromotionDecision]:
        """The named decision files, oldest first: by ``decided_utc``, then in the order they
        were saved (``x.json`` before ``x-2.json`` before ``x-10.json``). Unreadable files are
        skipped with a warning."""
        from marketcast.registry.promotion import PromotionDecision

        folder = self._market_path(vertical, market, DECISIONS_DIR)
        read: list[tuple[PromotionDecision, str]] = []
        for name in names:
            path = self._join(folder, name)
            try:
                read.append((PromotionDecision.model_validate_json(self._read(path)), name))
            except ValidationError as error:
                logger.warning("skipping unreadable decision %s: %s", path, _short_error(error))
            except (ValueError, OSError) as error:
                logger.warning("skipping unreadable decision %s: %s", path, error)
        earliest = datetime.min.replace(tzinfo=UTC)
        read.sort(key=lambda item: (item[0].decided_utc or earliest, len(item[1]), item[1]))
        return [decision for decision, _ in read]

    # ------------------------------------------------------------------ run reports

    def _report_path(self, vertical: str, run_id: str, *rest: str) -> str:
        return self._path(
            REPORTS_DIR,
            validate_name(vertical, "vertical"),
            validate_file_name(run_id),
            *(validate_file_name(name) for name in rest),
        )

    def save_run_report(self, vertical: str, run_id: str, files: Mapping[str, bytes]) -> str:
        """Store a run's report files under ``{root}/_reports/{vertical}/{run_id}/``; return
        the folder.

        The files go into a folder of their own, named by their content's hash (a
        *generation*), each written atomically, and ``index.json`` (run id, time, generation,
        every file's name, size and sha256) is replaced last; then the earlier generations are
        removed. A save that dies part-way leaves the earlier index and the files it names as
        they were (a generation no index names is a leftover, :meth:`leftovers`): saving in
        place made every later read, and every publish of the run's champion, fail for good.
        """
        if not files:
            raise ValueError(f"no report files given for {vertical} run {run_id}")
        if REPORT_INDEX_FILE in files:
            raise ValueError(f"{REPORT_INDEX_FILE!r} is the registry's own name in a run's report")
        entries = file_entries(files)  # validates each name
        generation = sha256_json([entry.model_dump(mode="json") for entry in entries])[:16]
        index = RunReportIndex(
            run_id=run_id,
            vertical=vertical,
            saved_utc=self.now(),
            generation=generation,
            files=entries,
        )
        folder = self._report_path(vertical, run_id)
        for name in sorted(files):
            self._write_atomic(self._report_path(vertical, run_id, generation, name), files[name])
        self._write_atomic(
            self._join(folder, REPORT_INDEX_FILE), index.model_dump_json(indent=2).encode()
        )
        self._end_run(vertical, run_id)  # the run's versions now have their report
        first = self._modified(self._report_path(vertical, run_id, generation, min(files)))
        for old in self._earlier_generations(vertical, run_id, {generation}, first):
            try:  # a reader of the index just replaced reads again; a failure only leaves it
                self._fs.rm(old, recursive=True)
            except OSError as error:
                logger.warning("could not remove an earlier report of %s: %s", run_id, error)
        return folder

    def _earlier_generations(
        self, vertical: str, run_id: str, keep: set[str], before: datetime
    ) -> list[str]:
        """A run's report generations, but those in ``keep`` and the one its index names now,
        whose files were all written before ``before``.

        Two saves of one run's report overlap (a run saving again while a publish copies into
        the same registry): each kept only its own generation, so the save that wrote its index
        first removed the generation the later index names, and the report could not be read
        until saved again. A generation written since ``before`` is another save's.
        """
        folder = self._report_path(vertical, run_id)
        try:
            index = self.run_report_index(vertical, run_id)
        except ArtifactIntegrityError:
            return []  # which generation is live cannot be told: leave them all
        if index is not None:
            keep = keep | {index.generation}
        found: list[str] = []
        for name in self._children(folder, dirs=True):
            if name in keep or not _REPORT_GENERATION.fullmatch(name):
                continue
            generation = self._join(folder, name)
            files = self._children(generation, dirs=False)
            if all(self._modified(self._join(generation, f)) < before for f in files):
                found.append(generation)
        return found

    def run_report_folder(self, vertical: str, run_id: str) -> str:
        """Where a run's report is (or would be) stored: a path or URL under the root; its
        files are in the generation folder its index names."""
        folder = self._report_path(vertical, run_id)
        if self._is_local or "://" not in self.root:
            return folder
        return str(self._fs.unstrip_protocol(folder))

    def run_report_index(self, vertical: str, run_id: str) -> RunReportIndex | None:
        """The index of a run's stored report, or ``None`` when the registry holds none.

        Raises
        ------
        ArtifactIntegrityError
            When ``index.json`` is unreadable or describes another run.
        """
        path = self._report_path(vertical, run_id, REPORT_INDEX_FILE)
        try:
            index = RunReportIndex.model_validate_json(self._read(path))
        except FileNotFoundError:
            return None
        except _RefusedFile as error:
            raise ArtifactIntegrityError(f"report index {path} is unreadable ({error})") from error
        except ValidationError as error:
            raise ArtifactIntegrityError(
                f"report index {path} is unreadable ({_short_error(error)})"
            ) from error
        if (index.vertical, index.run_id) != (vertical, run_id):
            raise ArtifactIntegrityError(
                f"report index {path} describes {index.vertical} run {index.run_id}, not the "
                "folder it sits in"
            )
        return index

    def run_report_files(self, vertical: str, run_id: str) -> dict[str, bytes]:
        """A run's stored report files, each checked against its index's size and sha256.

        Raises
        ------
        ModelNotFoundError
            When the registry holds no report of that run.
        ArtifactIntegrityError
            When a file is missing, larger than indexed or modified.
        """
        index = self.run_report_index(vertical, run_id)
        if index is None:
            raise ModelNotFoundError(f"no report of {vertical} run {run_id} in {self.root}")
        files: dict[str, bytes] = {}
        for entry in index.files:
            path = self._report_path(vertical, run_id, index.generation, entry.name)
            try:
                data = self._read(path, max_bytes=entry.bytes)
            except FileNotFoundError:
                raise ArtifactIntegrityError(
                    f"report of {vertical} run {run_id}: {entry.name!r} is missing ({path})"
                ) from None
            except _RefusedFile as error:
                raise ArtifactIntegrityError(
                    f"report of {vertical} run {run_id}: {entry.name!r} was modified or is "
                    f"unreadable ({error})"
                ) from error
            if sha256_bytes(data) != entry.sha256 or len(data) != entry.bytes:
                raise ArtifactIntegrityError(
                    f"report of {vertical} run {run_id}: {entry.name!r} was modified: expected "
                    f"{entry.bytes} bytes with sha256 {entry.sha256[:12]}..., found {len(data)} "
                    f"bytes with sha256 {sha256_bytes(data)[:12]}..."
                )
            files[entry.name] = data
        return files

    def run_reports(self, vertical: str) -> list[str]:
        """Run ids whose report the registry holds (those with an index), sorted."""
        folder = self._path(REPORTS_DIR, validate_name(vertical, "vertical"))
        return [
            name
            for name in self._children(folder, dirs=True)
            if _is_file_name(name)
            and self._exists(self._join(self._join(folder, name), REPORT_INDEX_FILE))
        ]

    def _report_leftovers(self, cutoff: datetime) -> list[str]:
        """Report generations no index names (a save that died), older than ``cutoff``."""
        found: list[str] = []
        reports = self._path(REPORTS_DIR)
        for vertical in self._children(reports, dirs=True):
            if not self._is_valid_name(vertical):
                continue
            for run_id in self._children(self._join(reports, vertical), dirs=True):
                if not _is_file_name(run_id):
                    continue
                found.extend(self._earlier_generations(vertical, run_id, set(), cutoff))
        return found


def is_rollback_reason(reason: str) -> bool:
    """Whether a champion's ``reason`` is one :meth:`Registry.rollback` wrote.

    >>> is_rollback_reason("rollback from elo v2; market v1 restored (its reason: first)")
    True
    >>> is_rollback_reason("no champion yet")
    False
    """
    return bool(_ROLLBACK_REASON.fullmatch(reason) or _LEGACY_ROLLBACK_REASON.fullmatch(reason))


def _is_file_name(name: str) -> bool:
    try:
        validate_file_name(name)
    except ValueError:
        return False
    return True


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """A flat row for listings: names, version, creation time, scores and training window."""
    return {
        "vertical": manifest.vertical,
        "market": manifest.market,
        "model_name": manifest.model_name,
        "version": manifest.version,
        "created_utc": manifest.created_utc.isoformat(),
        "git_sha": manifest.git_sha,
        "n_matches": manifest.training_window.n_matches,
        **{f"score_{name}": value for name, value in manifest.scores.items()},
    }


__all__ = [
    "CHAMPION_FILE",
    "DECISIONS_DIR",
    "ChampionRecord",
    "ModelNotFoundError",
    "Registry",
    "RegistryDamagedError",
    "RegistryError",
    "manifest_summary",
    "rollback_reason",
]
