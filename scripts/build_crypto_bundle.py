"""Build the bundled crypto.tar.xz from the Binance spot hourly files (``<PAIR>_1h.csv``)."""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

from marketcast.datasets.bundle import (
    BUNDLED_CRYPTO,
    CRYPTO_BUNDLE_ROOT,
    MANIFEST_NAME,
    build_bundle,
)
from marketcast.datasets.crypto import load_candles

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "crypto"
MAX_BUNDLE_BYTES = 12 * 1024 * 1024
SPOT_HEADER = "date,open,high,low,close,volume,ticker"


def stage(source: Path, staging: Path) -> list[Path]:
    """Copy the top-level spot files of ``source`` into ``staging`` and write MANIFEST.csv.

    Only ``<PAIR>_1h.csv`` files directly in ``source`` whose header is the spot format are taken
    (the ``cryptodatadownload/`` and ``binance_futures_um/`` folders are not bundled). The
    manifest lists each file with its SHA-256, data rows and first and last bar.
    """
    files = sorted(
        p
        for p in source.glob("*_1h.csv")
        if p.is_file() and p.read_bytes().split(b"\n", 1)[0].strip() == SPOT_HEADER.encode()
    )
    if not files:
        raise FileNotFoundError(f"no spot <PAIR>_1h.csv files in {source}")
    rows = []
    for path in files:
        data = path.read_bytes()
        lines = [line for line in data.decode("utf-8").splitlines()[1:] if line.strip()]
        rows.append(
            {
                "file": f"{CRYPTO_BUNDLE_ROOT}/{path.name}",
                "sha256": hashlib.sha256(data).hexdigest(),
                "rows": len(lines),
                "first_open_time_utc": lines[0].split(",", 1)[0],
                "last_open_time_utc": lines[-1].split(",", 1)[0],
            }
        )
        shutil.copyfile(path, staging / path.name)
    with (staging / MANIFEST_NAME).open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="folder holding <PAIR>_1h.csv files"
    )
    parser.add_argument("--dest", type=Path, default=BUNDLED_CRYPTO)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        files = stage(args.source, Path(tmp))
        out = build_bundle(tmp, args.dest, root=CRYPTO_BUNDLE_ROOT)
    size = out.stat().st_size
    start = time.perf_counter()
    data = load_candles([out])
    seconds = time.perf_counter() - start
    report = data.report
    print(
        f"wrote {out} ({size / 1e6:.2f} MB): {len(files)} pairs, {report.rows_read} bars read, "
        f"{len(data.candles)} bars out, repaired {report.repaired}, "
        f"dropped {sum(report.dropped.values())}, {report.gaps_left} gaps left; "
        f"loaded in {seconds:.2f} s"
    )
    if size > MAX_BUNDLE_BYTES:
        print(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
