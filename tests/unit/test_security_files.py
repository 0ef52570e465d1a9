"""`gunzipped` decompresses incrementally and stops at its size cap (a gzip bomb never expands)."""

from __future__ import annotations

import gzip
import inspect
import tracemalloc
import zlib

import pytest

from marketcast.data.files import GUNZIP_MAX_BYTES, gunzipped
from marketcast.data.validation import DataError


def _gzip_of_zeros(n_bytes: int) -> bytes:
    """gzip of ``n_bytes`` zero bytes, built a megabyte at a time (the input never exists)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * 1_000_000
    parts = [packer.compress(chunk) for _ in range(n_bytes // len(chunk))]
    return b"".join([*parts, packer.flush()])


def test_gzip_bomb_stops_at_the_cap_without_expanding() -> None:
    bomb = _gzip_of_zeros(200_000_000)  # about 200 KB of gzip for 200 MB of zeros
    assert len(bomb) < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"more than the 1,000,000-byte limit") as info:
            gunzipped("bomb.csv.gz", bomb, max_bytes=1_000_000)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.file == "bomb.csv.gz"
    assert peak_bytes < 20_000_000  # never near the 200 MB it would expand to


def test_default_cap() -> None:
    assert GUNZIP_MAX_BYTES == 512 * 1024 * 1024
    assert inspect.signature(gunzipped).parameters["max_bytes"].default == GUNZIP_MAX_BYTES


def test_data_at_the_cap_and_concatenated_members_are_kept() -> None:
    data = b"Div,Date\n" + b"E0,01/01/2024\n" * 1000
    assert gunzipped("a.gz", gzip.compress(data), max_bytes=len(data)) == data
    two_members = gzip.compress(data) + gzip.compress(b"tail") + b"\0\0"
    assert gunzipped("b.gz", two_members) == gzip.decompress(two_members) == data + b"tail"


@pytest.mark.parametrize(
    "damaged",
    [
        gzip.compress(b"abc" * 1000)[:-5],
        gzip.compress(b"abc")[:10],
        gzip.compress(b"abc") + b"junk",
    ],
    ids=["cut-trailer", "cut-body", "trailing-junk"],
)
def test_damaged_gzip_is_a_data_error(damaged: bytes) -> None:
    with pytest.raises(DataError, match=r"broken\.gz: cannot decompress gzip data"):
        gunzipped("broken.gz", damaged)
