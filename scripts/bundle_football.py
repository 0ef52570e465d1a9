"""Build the bundled football.tar.xz from a folder of football-data.co.uk files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from marketcast.datasets.bundle import BUNDLED_FOOTBALL, build_bundle
from marketcast.datasets.football_data import load_football

DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "football"
MAX_BUNDLE_BYTES = 6 * 1024 * 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder of <league>/<season>.csv files (and MANIFEST.csv)",
    )
    parser.add_argument("--dest", type=Path, default=BUNDLED_FOOTBALL)
    args = parser.parse_args(argv)

    out = build_bundle(args.source, args.dest)
    size = out.stat().st_size
    data = load_football([out])
    report = data.report
    print(
        f"wrote {out} ({size / 1e6:.2f} MB): {report.files_read} files, "
        f"{report.rows_kept} matches, {len(data.odds)} quotes"
    )
    if size > MAX_BUNDLE_BYTES:
        print(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
