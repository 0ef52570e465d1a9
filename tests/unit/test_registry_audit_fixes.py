"""What the registry and reports audit found: the data hash depended on the folder the football
files sat in and left crypto's funding and open interest out, a one-bet profit curve drew
nothing, two registrations of different content in one second could sort against registration
order, and a local registry path with ``::`` silently opened another folder."""

from __future__ import annotations

import io
import re
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pandas as pd
import pytest

from marketcast.config import CryptoRunConfig
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.datasets.football_data import load_football
from marketcast.orchestration.crypto import prepare_crypto
from marketcast.orchestration.football import data_sha256
from marketcast.registry import ChampionChangedError, Registry, RegistryError, build_manifest
from marketcast.reports.plots import assign_colors, profit_curves_svg
from tests.unit.test_registry import make_manifest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "football" / "mmz4281"
HASH = "0" * 64


# -- 1. data_sha256 is a content hash ----------------------------------------------------------
def _copy_fixtures(folder: Path) -> Path:
    shutil.copytree(FIXTURES, folder / "mmz4281")
    return folder / "mmz4281"


def test_football_data_hash_does_not_depend_on_the_folder(tmp_path: Path) -> None:
    """The same CSVs read from two folders gave two hashes (``source_file`` held the absolute
    path), and so two version suffixes for one data snapshot."""
    one = _copy_fixtures(tmp_path / "a")
    two = _copy_fixtures(tmp_path / "elsewhere" / "b c")
    first, second = load_football([one]), load_football([two])
    assert set(first.matches["source_file"]) != set(second.matches["source_file"])
    assert data_sha256(first) == data_sha256(second)

    # ... and it still is a hash of the content: one odds cell edited changes it
    edited = two / "2223" / "E0.csv"
    frame = pd.read_csv(edited)
    frame.loc[0, "B365H"] = float(frame.loc[0, "B365H"]) + 0.5
    frame.to_csv(edited, index=False)
    assert data_sha256(load_football([two])) != data_sha256(first)


def test_football_data_hash_keeps_a_league_the_path_gave(tmp_path: Path) -> None:
    """A file without ``Div`` takes its league from its folder: that reaches the ``league``
    column, so dropping the path from the hash loses nothing the rows were read with."""
    frame = pd.read_csv(FIXTURES / "2223" / "E0.csv").drop(columns=["Div"])
    hashes = []
    for league in ("E0", "E1"):
        folder = tmp_path / league
        folder.mkdir()
        frame.to_csv(folder / "2022-2023.csv", index=False)
        data = load_football([folder])
        assert set(data.matches["league"]) == {league}
        hashes.append(data_sha256(data))
    assert hashes[0] != hashes[1]


def _crypto_folder(folder: Path, *, funding_scale: float = 1.0, oi_scale: float = 1.0) -> Path:
    """BTCUSDT hourly candles of January 2022 from the bundle, with made-up funding (8 h) and
    open interest (4 h)."""
    folder.mkdir(parents=True)
    name, data = next(
        (n, d) for n, d in read_archive_csvs(BUNDLED_CRYPTO) if n.endswith("BTCUSDT_1h.csv")
    )
    candles = pd.read_csv(io.BytesIO(data))
    keep = (candles["date"] >= "2022-01-01") & (candles["date"] < "2022-02-01")
    candles.loc[keep].to_csv(folder / Path(name).name, index=False)
    start_ms = int(datetime(2022, 1, 1, tzinfo=UTC).timestamp() * 1000)
    hour_ms = 3_600_000
    pd.DataFrame(
        {
            "timestamp": [start_ms + i * 8 * hour_ms for i in range(93)],
            "symbol": "BTCUSDT",
            "funding_rate": [funding_scale * 1e-4 * (1 + (i % 3)) for i in range(93)],
        }
    ).to_csv(folder / "BTCUSDT_funding_8h.csv", index=False)
    pd.DataFrame(
        {
            "timestamp": [start_ms + i * 4 * hour_ms for i in range(186)],
            "symbol": "BTCUSDT",
            "sum_open_interest": [oi_scale * (1000.0 + i) for i in range(186)],
            "sum_open_interest_value": [oi_scale * (4e7 + 1e4 * i) for i in range(186)],
        }
    ).to_csv(folder / "BTCUSDT_open_interest_4h.csv", index=False)
    return folder


def test_crypto_data_hash_covers_funding_and_open_interest(tmp_path: Path) -> None:
    """Funding rates are a feature and a cost, open interest a feature: scaling either left the
    data hash (which hashed the candles alone) unchanged."""
    config = CryptoRunConfig(pairs=("BTCUSDT",), horizons=("1d",), models=("flat",))
    prepared = {
        tag: prepare_crypto(config, [str(_crypto_folder(tmp_path / tag, **scales))])
        for tag, scales in (
            ("as_is", {}),
            ("same_again", {}),
            ("funding_x10", {"funding_scale": 10.0}),
            ("oi_x10", {"oi_scale": 10.0}),
        )
    }
    assert len(prepared["as_is"].data.funding) > 0
    assert len(prepared["as_is"].data.open_interest) > 0
    sha = {tag: p.data_sha256 for tag, p in prepared.items()}
    assert re.fullmatch(r"[0-9a-f]{64}", sha["as_is"])
    assert sha["as_is"] == sha["same_again"]  # same content, another folder
    assert sha["funding_x10"] != sha["as_is"]
    assert sha["oi_x10"] != sha["as_is"]


# -- 2. a one-bet profit curve -------------------------------------------------------------------
def _paths_in(svg: str, color: str) -> list[list[tuple[float, float]]]:
    """The points of every line path stroked in ``color``."""
    found = []
    for d in re.findall(rf'<path d="([^"]*)"[^>]*style="[^"]*stroke: {color}[;"]', svg):
        points = re.findall(r"[ML] ([-\d.]+) ([-\d.]+)", d)
        found.append([(float(x), float(y)) for x, y in points])
    return found


@pytest.mark.parametrize(
    "curve",
    [
        {"kickoff_utc": ["2024-01-01T15:00:00Z"], "cumulative_profit": [1.5]},
        {"cumulative_profit": [1.5]},  # no kick-off times: x is the bet number
    ],
)
def test_a_single_bet_draws_a_rise_from_zero_and_a_marker(curve: dict[str, Any]) -> None:
    """One bet used to give the path ``M x y`` alone, which draws nothing."""
    color = assign_colors(["elo"])["elo"]
    svg = profit_curves_svg({"elo": curve})
    zero_y = _paths_in(svg, "#999999")[0][0][1]  # the horizontal line at 0
    model_path = _paths_in(svg, color)[0]
    assert len(model_path) >= 2
    assert model_path[0][1] == pytest.approx(zero_y)  # starts at 0 ...
    assert model_path[-1][1] < zero_y - 10  # ... and rises to the bet's profit
    # the bet carries a marker in the model's colour where the path ends (the other one is
    # the legend's)
    marks = re.findall(rf'<use [^>]*x="([-\d.]+)" y="([-\d.]+)" style="fill: {color}', svg)
    assert model_path[-1] in [(float(x), float(y)) for x, y in marks]
    assert model_path[0] not in [(float(x), float(y)) for x, y in marks]  # 0 is no bet


def test_many_bets_carry_no_markers_and_start_at_zero() -> None:
    color = assign_colors(["elo"])["elo"]
    days = [f"2024-01-{d:02d}T15:00:00Z" for d in range(1, 21)]
    profit = [float(i % 4) - 1.0 for i in range(20)]
    svg = profit_curves_svg({"elo": {"kickoff_utc": days, "cumulative_profit": profit}})
    zero_y = _paths_in(svg, "#999999")[0][0][1]
    model_path = _paths_in(svg, color)[0]
    assert model_path[0][1] == pytest.approx(zero_y)
    assert not re.findall(rf'<use [^>]*style="fill: {color}', svg)


# -- 3. registrations in one second sort in registration order ------------------------------------
class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _register(registry: Registry, payload: bytes, run_id: str) -> str:
    files = {"p.json": payload}
    manifest = build_manifest(
        model_name="elo",
        vertical="football",
        market="e0",
        config={"a": 1},
        files=files,
        data_sha256=HASH,
        features_sha256=HASH,
        training_window={
            "start_utc": datetime(2020, 1, 1, tzinfo=UTC),
            "end_utc": datetime(2021, 1, 1, tzinfo=UTC),
            "n_matches": 10,
        },
        scores={"log_loss": 1.0},
        run_id=run_id,
        git_sha_value="abc",
    )
    return registry.register("football", "e0", "elo", files, manifest)


@pytest.mark.parametrize("where", ["local", "memory"])
def test_a_registration_that_listed_before_another_claimed_moves_a_second_on(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second registration lists the versions as they were before the first claimed (it
    sees none), as two concurrent registrations do. Both used to get the same second and two
    folders, sorted by content hash: here the later one sorted first, and was the latest."""
    root = str(tmp_path / "reg") if where == "local" else f"memory://audit-{tmp_path.name}"
    registry = Registry(root, clock=FixedClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)))
    # payloads chosen so that the later content's hash sorts first (f681b90b > 2a522b7c)
    earlier = _register(registry, b"A-content-1", "earlier")
    original = Registry._children

    def listed_before_the_first_claimed(self: Registry, path: str, *, dirs: bool) -> list[str]:
        if dirs and path.rstrip("/").endswith("/e0/elo"):
            return []
        return original(self, path, dirs=dirs)

    monkeypatch.setattr(Registry, "_children", listed_before_the_first_claimed)
    later = _register(registry, b"B-content-7", "later")
    monkeypatch.setattr(Registry, "_children", original)

    assert earlier.split("-")[0] == "20260101T120000Z"
    assert later.split("-")[0] == "20260101T120001Z"
    assert registry.versions("football", "e0", "elo") == [earlier, later]
    assert registry.latest_version("football", "e0", "elo") == later
    assert registry.manifest("football", "e0", "elo", later).run_id == "later"
    # the stamp folder is no version, and no leftover
    assert registry.leftovers(older_than=timedelta(0)) == []


def test_registrations_in_one_second_without_a_race_still_move_on(tmp_path: Path) -> None:
    registry = Registry(
        str(tmp_path / "reg"), clock=FixedClock(datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC))
    )
    versions = [_register(registry, f"content-{i}".encode(), f"run{i}") for i in range(3)]
    assert [v.split("-")[0] for v in versions] == [f"20260101T12000{i}Z" for i in range(3)]
    assert registry.versions("football", "e0", "elo") == versions


# -- 4. '::' in a local registry path --------------------------------------------------------------
@pytest.mark.parametrize("form", ["path", "file_url", "relative"])
def test_a_local_registry_path_with_double_colon_is_refused(
    form: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Registry("/srv/reg/prod::v2")`` read and wrote ``/srv/reg/prod`` without a word."""
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "reg" / "prod::v2"
    root = {"path": str(folder), "file_url": f"file://{folder}", "relative": "reg/prod::v2"}[form]
    with pytest.raises(RegistryError, match=r"may not contain '::'") as caught:
        Registry(root)
    assert root in str(caught.value)
    assert list(tmp_path.iterdir()) == []  # nothing was created anywhere


def test_a_chained_caching_url_still_opens(tmp_path: Path) -> None:
    registry = Registry(f"simplecache::file://{tmp_path / 'reg'}")
    assert registry.versions("football", "e0", "elo") == []
    # the same place as the folder itself, however spelt (publish refuses it as a target)
    assert registry.location == Registry(str(tmp_path / "reg")).location


@pytest.mark.parametrize("cache", ["simplecache", "filecache", "blockcache"])
def test_a_cached_registry_sees_another_process_move_the_champion(
    tmp_path: Path, cache: str
) -> None:
    """Registry audit (medium): through ``simplecache::`` a registry read ``champion.json``
    from its first copy, so a promotion made by another process went unseen and a
    compare-and-set on the stale pointer passed."""
    url = f"{cache}::file://{tmp_path / 'reg'}"
    ours, theirs = Registry(url), Registry(url)
    files = {"elo.json": b"{}"}
    first = ours.register("football", "e0", "elo", files, make_manifest("elo", files))
    second = ours.register("football", "e0", "elo", files, make_manifest("elo", files))
    ours.set_champion("football", "e0", "elo", first, "no champion yet")
    assert theirs.champion("football", "e0").version == first  # type: ignore[union-attr]
    ours.set_champion("football", "e0", "elo", second, "by hand")
    assert theirs.champion("football", "e0").version == second  # type: ignore[union-attr]
    with pytest.raises(ChampionChangedError):  # the compare-and-set reads the live pointer
        theirs.set_champion("football", "e0", "elo", first, "x", expected=("elo", first))
    assert ours.champion("football", "e0").version == second  # type: ignore[union-attr]


def test_a_cached_object_store_registry_creates_exclusively() -> None:
    """A cache over memory:// (an object store here) turned exclusive create off: two runs
    could claim one version name."""
    assert Registry("simplecache::memory://cached-reg")._exclusive_create
    assert Registry("memory://cached-reg")._exclusive_create


@pytest.mark.parametrize(
    ("prefix", "under"),
    [
        ("dir::", ""),
        ("simplecache::dir::", ""),
        ("dir::simplecache::", ""),
        ("dir::dir::", ""),
        ("dir://sub::", "/sub"),
        ("simplecache::dir://sub::", "/sub"),
    ],
)
def test_a_dir_registry_writes_once_under_the_folder_it_names(prefix: str, under: str) -> None:
    """The review of session 24: ``dir::memory://reg`` prefixed its root to the path fsspec
    returned, which was that root again: every file went to ``/reg//reg/...``. The review of
    1660027: ``dir://sub::memory://reg`` names ``/reg/sub``; stepping over the layer dropped
    ``sub`` and wrote into the registry at ``/reg``."""
    base = f"reg-dir-{uuid.uuid4().hex}"
    root = f"/{base}{under}"
    registry = Registry(f"{prefix}memory://{base}")
    files = {"elo.json": b"{}"}
    version = registry.register("football", "e0", "elo", files, make_manifest("elo", files))
    registry.set_champion("football", "e0", "elo", version, "first")
    memory = fsspec.filesystem("memory")
    written = sorted(memory.find(f"/{base}"))
    assert f"{root}/football/e0/champion.json" in written
    assert f"{root}/football/e0/elo/{version}/manifest.json" in written
    assert all(path.startswith(f"{root}/football/") for path in written)
    plain = Registry(f"memory://{base}{under}")
    assert plain.champion("football", "e0").version == version  # type: ignore[union-attr]
    assert registry.location == plain.location
    memory.rm(f"/{base}", recursive=True)


def test_a_dir_registry_over_a_folder_is_that_folder(tmp_path: Path) -> None:
    """``dir::/srv/reg`` is the local folder ``/srv/reg``: its files are there (not under
    ``/srv/reg/srv/reg``), and it takes the local folder's locks and checks."""
    folder = tmp_path / "reg"
    registry = Registry(f"dir::{folder}")
    files = {"elo.json": b"{}"}
    version = registry.register("football", "e0", "elo", files, make_manifest("elo", files))
    assert (folder / "football" / "e0" / "elo" / version / "manifest.json").is_file()
    assert registry.location == Registry(str(folder)).location
    assert registry._is_local


@pytest.mark.parametrize(
    ("root", "opened"),
    [
        ("memory://a::b", "/a"),
        ("memory://a::memory://b", "/a"),
        ("simplecache::memory://a::b", "/a"),
        ("simplecache::/srv/reg/prod::v2", "/srv/reg/prod"),
    ],
)
def test_a_chain_with_a_part_that_wraps_nothing_is_refused(root: str, opened: str) -> None:
    """``memory://a::b`` opened ``memory://a`` and ignored ``b``, without a word (and
    ``simplecache::/srv/reg/prod::v2`` read and wrote ``/srv/reg/prod``)."""
    with pytest.raises(RegistryError, match=rf"wraps no other\), so fsspec would open '{opened}'"):
        Registry(root)
