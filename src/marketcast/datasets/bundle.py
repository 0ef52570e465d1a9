"""Build and read the bundled data (football, crypto): deterministic xz-compressed tarballs."""

from __future__ import annotations

import io
import lzma
import tarfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from marketcast.data.files import gunzipped
from marketcast.data.validation import DataError, IntegrityReport, split_group_key

#: Where the bundled copy of the football data lives inside the installed package.
BUNDLED_FOOTBALL = Path(__file__).resolve().parent / "bundled" / "football.tar.xz"
#: Top-level folder of every member in the tarball (members are ``football/<league>/<season>.csv``).
BUNDLE_ROOT = "football"
#: Where the bundled copy of the Binance spot hourly candles lives inside the installed package.
BUNDLED_CRYPTO = Path(__file__).resolve().parent / "bundled" / "crypto.tar.xz"
#: Top-level folder of the crypto tarball's members (``crypto/<PAIR>_1h.csv``).
CRYPTO_BUNDLE_ROOT = "crypto"
MANIFEST_NAME = "MANIFEST.csv"


def build_bundle(
    source_dir: str | Path, dest: str | Path = BUNDLED_FOOTBALL, *, root: str = BUNDLE_ROOT
) -> Path:
    """Pack every ``*.csv`` under ``source_dir`` (MANIFEST.csv included) into an xz tarball.

    Members are named ``<root>/<relative path>``, added in sorted order with zeroed owners and
    timestamps, so building twice from the same files gives identical bytes. The tarball is
    written to a temporary name and renamed, so a crash never leaves a truncated bundle.

    Parameters
    ----------
    source_dir
        Folder holding ``<league>/<season>.csv`` files (and optionally ``MANIFEST.csv``).
    dest
        Output path, by default the package's ``datasets/bundled/football.tar.xz``.
    root
        Top-level folder of every member: `BUNDLE_ROOT` (``football``) by default,
        `CRYPTO_BUNDLE_ROOT` for the crypto bundle.

    Returns
    -------
    Path
        The written tarball.
    """
    source = Path(source_dir)
    files = sorted(p for p in source.rglob("*.csv") if p.is_file())
    if not files:
        raise FileNotFoundError(f"no *.csv files under {source}")
    out = Path(dest)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, mode="w:xz", preset=9) as tar:
        for path in files:
            data = path.read_bytes()
            info = tarfile.TarInfo(f"{root}/{path.relative_to(source).as_posix()}")
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out


def read_archive_csvs(
    path: str | Path,
    *,
    include_manifest: bool = False,
    errors: list[DataError] | None = None,
) -> list[tuple[str, bytes]]:
    """Read the ``*.csv`` and ``*.csv.gz`` members of a tar archive, sorted by member name.

    The members are chosen as a folder's files are (``iter_csv_files``): hidden members (a
    macOS ``._2022-2023.csv`` beside the real file) and ``MANIFEST.csv`` are skipped, and
    gzip members are decompressed.

    Parameters
    ----------
    path
        A ``.tar``, ``.tar.gz`` or ``.tar.xz`` archive (compression is detected).
    include_manifest
        Also return ``MANIFEST.csv`` members (skipped by default: they hold no matches).
    errors
        Where a member that cannot be read (a truncated ``.csv.gz``), or an archive that ends
        early, is reported, naming ``<archive>:<member>``; the members read are still returned,
        as a folder's good files are when one of them is bad. None: the first such error is
        raised, and nothing is returned.

    Returns
    -------
    list of (member name, bytes)

    Raises
    ------
    DataError
        Naming the archive, when it cannot be read (truncated, not a tar archive), or naming
        the member that cannot be; with ``errors`` given, only when not one member was read.
    """
    out: list[tuple[str, bytes]] = []
    last = ""  # the last member header read, for an archive that ends early
    try:
        with tarfile.open(path, mode="r:*") as tar:
            for member in tar:  # one header at a time: members before a damaged end are kept
                name = last = member.name
                if not member.isfile() or not name.lower().endswith((".csv", ".csv.gz")):
                    continue
                if any(part.startswith(".") for part in Path(name).parts):
                    continue
                if not include_manifest and Path(name).name.upper() == MANIFEST_NAME.upper():
                    continue
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                try:
                    out.append((name, gunzipped(f"{path}:{name}", handle.read())))
                except DataError as bad_member:
                    if errors is None:
                        raise
                    errors.append(bad_member)
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as exc:
        if errors is None or not out:
            raise DataError(str(path), None, None, f"cannot read archive: {exc}") from exc
        errors.append(DataError(str(path), None, None, f"cannot read archive past {last}: {exc}"))
    out.sort(key=lambda item: item[0])
    return out


@dataclass
class ArchiveNames:
    """Where each tar member that a loader read lies, so what it reports says so.

    The loaders name a member as its archive lists it (``crypto/BTCUSDT_1h.csv``: they take
    the league, season or pair from that name), which does not say which archive holds it.

    Parameters
    ----------
    members
        Member name -> ``<archive>:<member>`` for each archive holding it.
    files
        The files read besides the archives, as the loaders name them: a name that is also a
        member gets each place it is in, joined by " or " (as does a member of two archives).

    Examples
    --------
    >>> from marketcast.data.validation import Issue
    >>> names = ArchiveNames({"crypto/ETHUSDT_1h.csv": ["a.tar:crypto/ETHUSDT_1h.csv"]})
    >>> report = IntegrityReport(errors=[Issue("crypto/ETHUSDT_1h.csv", 1, None, "no header")])
    >>> names.name_report(report)
    >>> report.errors[0].file
    'a.tar:crypto/ETHUSDT_1h.csv'
    >>> str(names.name_error(DataError("crypto/ETHUSDT_1h.csv", 3, "high", "below low")))
    "a.tar:crypto/ETHUSDT_1h.csv, row 3, field 'high': below low"
    """

    members: dict[str, list[str]] = field(default_factory=dict)
    files: set[str] = field(default_factory=set)

    def where(self, name: str) -> str:
        """``name`` with the archives holding it, or as it is when no archive does."""
        places = self.members.get(name)
        if not places:
            return name
        return " or ".join([name, *places] if name in self.files else places)

    def name_report(self, report: IntegrityReport) -> None:
        """Name the archive wherever ``report`` names a member (issues, errors, per-file
        counts, header-only files); changed in place."""
        if not self.members:
            return
        where = self.where
        report.errors = [replace(issue, file=where(issue.file)) for issue in report.errors]
        report.issues = [replace(issue, file=where(issue.file)) for issue in report.issues]
        for counts in (report.columns_present_but_empty, report.rows_without_quote):
            renamed = {}
            for key, n in counts.items():
                file, group = split_group_key(key)
                renamed[f"{where(file)}: {group}"] = n
            counts.clear()
            counts.update(renamed)
        if (header_only := getattr(report, "header_only_files", None)) is not None:
            header_only[:] = [where(name) for name in header_only]  # a CandleReport's

    def name_error(self, error: DataError) -> DataError:
        """``error`` naming the archive when it names a member (a loader raising on a member)."""
        where = self.where(error.file)
        if where == error.file:
            return error
        return DataError(where, error.row, error.field, error.reason, error.value)


def read_bundle_manifest(path: str | Path = BUNDLED_FOOTBALL) -> bytes:
    """Return the raw bytes of the bundle's ``MANIFEST.csv`` (file list with row counts)."""
    for name, data in read_archive_csvs(path, include_manifest=True):
        if Path(name).name.upper() == MANIFEST_NAME.upper():
            return data
    raise FileNotFoundError(f"{path} holds no {MANIFEST_NAME}")
