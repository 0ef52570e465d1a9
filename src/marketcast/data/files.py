"""Atomic file writes shared by every stage that leaves a file behind (reports, pulls, JSON)."""

from __future__ import annotations

import contextlib
import os
import uuid
import zlib
from pathlib import Path

from marketcast.data.validation import DataError

GZIP_MAGIC = b"\x1f\x8b"


#: Largest size `gunzipped` decompresses to by default, in bytes: far above any season or candle
#: file, far below what a few kilobytes of gzip can expand to (a "gzip bomb").
GUNZIP_MAX_BYTES = 512 * 1024 * 1024


def gunzipped(name: str, data: bytes, *, max_bytes: int = GUNZIP_MAX_BYTES) -> bytes:
    """``data`` decompressed when it starts with the gzip magic, else as it is.

    Files are recognised by their bytes, not their names: ``E0.csv`` may be gzip, and an HTTP
    answer may come with ``Content-Encoding: gzip``. Decompression is incremental and stops as
    soon as the output passes ``max_bytes``, so a small bomb never expands in memory.
    Concatenated gzip members are joined, as `gzip.decompress` joins them.

    Raises
    ------
    DataError
        Naming ``name``, for gzip data that cannot be decompressed (a truncated file), or that
        decompresses to more than ``max_bytes`` bytes.

    Examples
    --------
    >>> import gzip
    >>> gunzipped("a.csv", gzip.compress(b"Div,Date")), gunzipped("b.csv", b"Div,Date")
    (b'Div,Date', b'Div,Date')
    >>> gunzipped("c.csv", gzip.compress(b"x" * 100), max_bytes=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    marketcast.data.validation.DataError: c.csv: gzip data decompresses to more than ...
    """
    if data[:2] != GZIP_MAGIC:
        return data
    out: list[bytes] = []
    n_bytes = 0
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip header and trailer
            pending = rest
            while not inflater.eof:
                chunk = inflater.decompress(pending, max_bytes - n_bytes + 1)
                if not chunk and len(inflater.unconsumed_tail) == len(pending):
                    raise EOFError("compressed data ended before the end-of-stream marker")
                pending = inflater.unconsumed_tail
                n_bytes += len(chunk)
                if n_bytes > max_bytes:
                    raise DataError(
                        name,
                        None,
                        None,
                        f"gzip data decompresses to more than the {max_bytes:,}-byte limit "
                        f"({len(data):,} bytes compressed)",
                    )
                out.append(chunk)
            rest = inflater.unused_data.lstrip(b"\x00")  # gzip.decompress skips zero padding
    except (EOFError, zlib.error) as exc:
        raise DataError(name, None, None, f"cannot decompress gzip data: {exc}") from exc
    return b"".join(out)


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    The bytes go to a temporary file in the same folder (created with mode ``0o666`` less the
    process umask, like any new file: ``tempfile.mkstemp`` would make it ``0o600``), are
    flushed to disk, and the file is renamed over ``path``. Missing parent folders are created.

    Parameters
    ----------
    path
        The file to write.
    data
        Its new content.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        Naming ``path`` (not the temporary file), with the original errno, so the subclass is
        kept (``IsADirectoryError`` when ``path`` is a folder). The temporary file is removed
        and an earlier file at ``path`` is left as it was.

    Examples
    --------
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_atomic(folder / "a" / "x.json", b"{}").read_bytes()
    b'{}'
    >>> sorted(p.name for p in (folder / "a").iterdir())  # no temporary file left behind
    ['x.json']
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, 0o666)  # the kernel applies the umask
    except OSError as exc:
        raise _write_error(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _write_error(path, exc) from exc
        raise
    _fsync_dir(path.parent)
    return path


def _write_error(path: Path, exc: OSError) -> OSError:
    """``exc`` restated as a failure to write ``path`` (same errno, so the same subclass)."""
    message = f"cannot write {path}: {exc.strerror or exc}"
    return OSError(message) if exc.errno is None else OSError(exc.errno, message)


def _fsync_dir(directory: Path) -> None:
    """Persist a rename on POSIX; silently skipped where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
