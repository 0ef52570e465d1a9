"""Registry store and manifests: round trips, integrity, safe names, champion pointer, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem
from pydantic import ValidationError

from marketcast.registry import (
    ArtifactIntegrityError,
    ChampionLockTimeoutError,
    Manifest,
    ModelNotFoundError,
    PromotionDecision,
    PromotionRule,
    Registry,
    RegistryError,
    build_manifest,
    canonical_json,
    git_sha,
    package_versions,
    sha256_bytes,
    sha256_json,
)

FILES = {
    "params.json": b'{"attack": [0.1, -0.2], "home_advantage": 0.25}',
    "booster.txt": b"tree\nversion=v4\nnum_class=3\n",
}
HASH_A = "a" * 64
HASH_B = "b" * 64


class StepClock:
    """A clock that starts at a fixed instant and moves by ``step`` on every call."""

    def __init__(self, start: datetime, step: timedelta = timedelta(0)) -> None:
        self.current = start
        self.step = step

    def __call__(self) -> datetime:
        value = self.current
        self.current += self.step
        return value


START = datetime(2026, 11, 21, 23, 59, 59, 500_000, tzinfo=UTC)


def make_manifest(
    model_name: str = "dixon_coles",
    files: dict[str, bytes] | None = None,
    vertical: str = "football",
    market: str = "e0",
    **overrides: object,
) -> Manifest:
    manifest = build_manifest(
        model_name=model_name,
        vertical=vertical,
        market=market,
        config={"model": {"name": model_name, "params": {"half_life_days": 180}}, "seed": 7},
        files=files if files is not None else FILES,
        data_sha256=HASH_A,
        features_sha256=HASH_B,
        training_window={
            "start_utc": "2019-08-09T19:00:00Z",
            "end_utc": "2024-05-19T15:00:00Z",
            "n_matches": 1900,
        },
        scores={"log_loss": 0.981, "rps": 0.201},
        backtest={"roi": -0.012, "n_bets": 412},
        created_utc=datetime(2026, 11, 21, 12, 0, tzinfo=UTC),
        packages=["numpy", "surely-not-installed-pkg"],
        git_sha_value="3f2c1e9",
    )
    return manifest.model_copy(update=overrides) if overrides else manifest


@pytest.fixture(params=["local", "memory"])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param == "local":
        yield Registry(str(tmp_path / "registry"), clock=StepClock(START))
    else:
        root = f"memory://registry-test-{uuid.uuid4().hex}"
        yield Registry(root, clock=StepClock(START))
        fs, path = fsspec.core.url_to_fs(root)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def register(registry: Registry, model_name: str = "dixon_coles", **kwargs: object) -> str:
    files = kwargs.pop("files", FILES)
    assert isinstance(files, dict)
    return registry.register(
        "football", "e0", model_name, files, make_manifest(model_name, files, **kwargs)
    )


# ---------------------------------------------------------------- manifest helpers


def test_sha256_json_is_canonical() -> None:
    assert canonical_json({"b": [1, 2.5], "a": "é"}) == '{"a":"é","b":[1,2.5]}'.encode()
    assert sha256_json({"b": 1, "a": 2}) == sha256_json({"a": 2, "b": 1})
    assert sha256_json({"a": 1}) != sha256_json({"a": 2})
    assert sha256_json({"a": 1}) == sha256_bytes(b'{"a":1}')


def test_sha256_json_hashes_pydantic_models_like_their_dict() -> None:
    rule = PromotionRule(alpha=0.01)
    as_dict = {**PromotionRule().model_dump(), "alpha": 0.01}  # the same fields as a plain dict
    assert sha256_json(rule) == sha256_json(as_dict)
    assert sha256_json(rule) != sha256_json(PromotionRule())


def test_git_sha_outside_a_checkout_is_unknown(tmp_path: Path) -> None:
    assert git_sha(tmp_path) == "unknown"


def test_git_sha_marks_a_tree_with_changed_tracked_files(tmp_path: Path) -> None:
    """Registry audit (medium): a model trained from edited code named the clean commit."""

    def git(*args: str) -> str:
        completed = subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        return completed.stdout.strip()

    git("init", "-q")
    (tmp_path / "model.py").write_text("a = 1\n")
    git("add", "model.py")
    git("commit", "-q", "-m", "first")
    sha = git("rev-parse", "--short", "HEAD")
    (tmp_path / "run.log").write_text("not tracked\n")
    assert git_sha(tmp_path) == sha  # an untracked file does not count
    (tmp_path / "model.py").write_text("a = 2\n")
    assert git_sha(tmp_path) == f"{sha}-dirty"
    # only the files under the folder asked count (the package's source, not bench results)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "code.py").write_text("b = 1\n")
    git("add", "src/code.py")
    git("commit", "-q", "-m", "second", "--", "src/code.py")
    assert git_sha(tmp_path / "src") == git("rev-parse", "--short", "HEAD")
    assert git_sha(tmp_path).endswith("-dirty")


def test_package_versions_reads_installed_metadata() -> None:
    versions = package_versions(["numpy", "surely-not-installed-pkg"])
    import numpy as np

    assert versions == {"numpy": np.__version__, "surely-not-installed-pkg": "not installed"}


def test_build_manifest_hashes_config_and_files() -> None:
    manifest = make_manifest()
    assert manifest.version is None
    assert manifest.config_sha256 == sha256_json(manifest.config)
    assert [(f.name, f.bytes) for f in manifest.files] == [
        ("booster.txt", len(FILES["booster.txt"])),
        ("params.json", len(FILES["params.json"])),
    ]
    assert manifest.files[1].sha256 == sha256_bytes(FILES["params.json"])
    assert manifest.run_id == "2026-11-21T12-00-00_football_e0_dixon_coles"
    assert manifest.git_sha == "3f2c1e9"
    assert manifest.package_versions["surely-not-installed-pkg"] == "not installed"


def test_manifest_forbids_unknown_fields_and_is_frozen() -> None:
    data = make_manifest().model_dump(mode="json")
    with pytest.raises(ValidationError, match="extra"):
        Manifest.model_validate({**data, "surprise": 1})
    with pytest.raises(ValidationError, match="frozen"):
        make_manifest().model_name = "other"  # type: ignore[misc]


def test_manifest_rejects_bad_hashes_and_reversed_window() -> None:
    data = make_manifest().model_dump(mode="json")
    with pytest.raises(ValidationError, match="data_sha256"):
        Manifest.model_validate({**data, "data_sha256": "not-a-hash"})
    window = {**data["training_window"], "start_utc": "2030-01-01T00:00:00Z"}
    with pytest.raises(ValidationError, match="starts after it ends"):
        Manifest.model_validate({**data, "training_window": window})


# ---------------------------------------------------------------- register / load


def test_register_load_round_trip(registry: Registry) -> None:
    version = register(registry)
    assert version.startswith("20261121T235959Z-")
    assert len(version.split("-")[1]) == 8
    assert registry.load_files("football", "e0", "dixon_coles", version) == FILES
    manifest = registry.manifest("football", "e0", "dixon_coles", version)
    assert manifest.version == version
    assert manifest.scores == {"log_loss": 0.981, "rps": 0.201}
    assert {f.name: f.sha256 for f in manifest.files} == {
        name: sha256_bytes(data) for name, data in FILES.items()
    }
    assert manifest == make_manifest().model_copy(update={"version": version})


def test_versions_are_monotonic_within_one_second(registry: Registry) -> None:
    first = register(registry)
    second = register(registry)
    third = register(registry, files={"params.json": b"{}"})
    assert first < second < third
    assert second.startswith("20261122T000000Z-")
    assert registry.versions("football", "e0", "dixon_coles") == [first, second, third]
    assert registry.latest_version("football", "e0", "dixon_coles") == third


def test_version_of_run_finds_each_models_version_of_one_run_reading_back_only_to_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's cloud blend takes each model's version from the champion's run (the latest
    version was a one-league experiment's); the search must not read a whole registry: it
    stops a day (RUN_REGISTRATION_SPAN) before the version it is given."""
    registry = Registry(str(tmp_path / "registry"), clock=StepClock(START, timedelta(hours=12)))
    runs: dict[str, dict[str, str]] = {}
    for run, models in (
        ("r1", ("dixon_coles", "elo")),
        ("r2", ("dixon_coles", "elo")),
        ("r3", ("dixon_coles",)),
    ):
        runs[run] = {
            m: register(registry, m, files={"p.json": run.encode()}, run_id=run) for m in models
        }
    read: list[str] = []
    manifest = registry.manifest

    def counted(vertical: str, market: str, model_name: str, version: str) -> Manifest:
        read.append(version)
        return manifest(vertical, market, model_name, version)

    monkeypatch.setattr(registry, "manifest", counted)
    find = registry.version_of_run
    assert find("football", "e0", "elo", "r2", near=runs["r2"]["dixon_coles"]) == runs["r2"]["elo"]
    assert find("football", "e0", "elo", "r1", near=runs["r1"]["dixon_coles"]) == runs["r1"]["elo"]
    read.clear()
    assert find("football", "e0", "elo", "r3", near=runs["r3"]["dixon_coles"]) is None
    assert read == [runs["r2"]["elo"]]  # more than a day before r3: r1's is never read
    assert find("football", "e0", "lightgbm", "r1", near=runs["r1"]["dixon_coles"]) is None
    # a damaged manifest on the way is skipped, with a warning naming it
    (
        tmp_path / "registry" / "football" / "e0" / "elo" / runs["r2"]["elo"] / "manifest.json"
    ).write_text("{")
    with caplog.at_level("WARNING", logger="marketcast.registry.store"):
        assert (
            find("football", "e0", "elo", "r1", near=runs["r1"]["dixon_coles"]) == runs["r1"]["elo"]
        )
    assert f"elo {runs['r2']['elo']} skipped" in caplog.text


def test_list_models_filters_and_sorts(registry: Registry) -> None:
    v_dc = register(registry, "dixon_coles")
    v_elo = register(registry, "elo")
    v_crypto = registry.register(
        "crypto",
        "btc-usdt",
        "lightgbm",
        FILES,
        make_manifest("lightgbm", vertical="crypto", market="btc-usdt"),
    )
    everything = [(m.vertical, m.model_name, m.version) for m in registry.list_models()]
    assert everything == [
        ("crypto", "lightgbm", v_crypto),
        ("football", "dixon_coles", v_dc),
        ("football", "elo", v_elo),
    ]
    assert [m.model_name for m in registry.list_models("football", "e0")] == ["dixon_coles", "elo"]
    assert registry.list_models("football", "sp1") == []


def test_tampered_artifact_raises(registry: Registry) -> None:
    version = register(registry)
    path = registry._path("football", "e0", "dixon_coles", version, "params.json")
    with registry._fs.open(path, "wb") as handle:
        handle.write(b'{"attack": [9.9, -0.2], "home_advantage": 0.25}')
    with pytest.raises(ArtifactIntegrityError, match=r"'params.json' was modified"):
        registry.load_files("football", "e0", "dixon_coles", version)


def test_missing_artifact_raises(registry: Registry) -> None:
    version = register(registry)
    registry._fs.rm(registry._path("football", "e0", "dixon_coles", version, "booster.txt"))
    with pytest.raises(ArtifactIntegrityError, match=r"missing \['booster.txt'\]"):
        registry.load_files("football", "e0", "dixon_coles", version)


def test_unknown_version_raises_not_found(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError, match="no model football/e0/elo version 1"):
        registry.load_files("football", "e0", "elo", "1")


@pytest.mark.parametrize(
    ("vertical", "market", "model_name"),
    [
        ("football", "e0", "../evil"),
        ("football", "../../etc", "elo"),
        ("football", "e0", "a/b"),
        ("football", "e0", "/abs"),
        ("..", "e0", "elo"),
        ("football", "E0", "elo"),
        ("football", "e0", ""),
        ("football", "e0", "a..b"),
        ("football", "e0", "x" * 65),
        ("football", "e0", "decisions"),
    ],
)
def test_unsafe_names_raise(
    registry: Registry, vertical: str, market: str, model_name: str
) -> None:
    with pytest.raises(ValueError, match=r"invalid|reserved"):
        registry.register(vertical, market, model_name, FILES, make_manifest())
    assert registry.list_models() == []


@pytest.mark.parametrize("bad", ["../escape", "a/b", "..", "v1/../../x"])
def test_unsafe_versions_raise(registry: Registry, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid version"):
        registry.load_files("football", "e0", "elo", bad)


@pytest.mark.parametrize(
    "file_name", ["model.pkl", "model.pickle", "estimator.joblib", "MODEL.PKL", "../x.json"]
)
def test_pickle_and_unsafe_file_names_refused(registry: Registry, file_name: str) -> None:
    files = {file_name: b"\x80\x04K\x01."}
    with pytest.raises(ValueError, match=r"pickle|invalid artifact file name"):
        registry.register("football", "e0", "elo", files, make_manifest("elo", FILES))
    assert registry.list_models() == []


def test_manifest_name_mismatch_and_file_mismatch_raise(registry: Registry) -> None:
    with pytest.raises(ValueError, match="model_name 'dixon_coles' does not match 'elo'"):
        registry.register("football", "e0", "elo", FILES, make_manifest("dixon_coles"))
    other = make_manifest("elo", {"params.json": b"{}"})
    with pytest.raises(ValueError, match="differ from the files given"):
        registry.register("football", "e0", "elo", FILES, other)


def test_symlink_escaping_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "registry"
    (root / "football").mkdir(parents=True)
    os.symlink(outside, root / "football" / "e0")
    registry = Registry(str(root))
    with pytest.raises(ValueError, match="outside the registry root"):
        registry.register("football", "e0", "elo", FILES, make_manifest("elo"))
    assert list(outside.iterdir()) == []


def test_crash_before_manifest_leaves_version_invisible(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    original: Callable[[str, bytes], None] = registry._write_atomic
    written: list[str] = []

    def crash_on_manifest(path: str, data: bytes) -> None:
        if path.endswith("manifest.json"):
            raise OSError("disk vanished")
        written.append(path.rsplit("/", 1)[-1].rsplit(os.sep, 1)[-1])
        original(path, data)

    monkeypatch.setattr(registry, "_write_atomic", crash_on_manifest)
    with pytest.raises(OSError, match="disk vanished"):
        register(registry)
    assert sorted(written) == ["booster.txt", "params.json"]
    assert registry.list_models() == []
    assert registry.versions("football", "e0", "dixon_coles") == []
    monkeypatch.undo()
    version = register(registry)
    assert [m.version for m in registry.list_models()] == [version]


def test_atomic_write_leaves_no_temp_files(registry: Registry) -> None:
    version = register(registry)
    folder = registry._path("football", "e0", "dixon_coles", version)
    names = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in registry._fs.ls(folder, detail=False))
    assert names == ["booster.txt", "manifest.json", "params.json"]


def test_manifest_json_never_contains_pickle_data(registry: Registry) -> None:
    version = register(registry)
    raw = registry._fs.cat_file(
        registry._path("football", "e0", "dixon_coles", version, "manifest.json")
    )
    stored = json.loads(raw)
    assert stored["version"] == version
    assert stored["files"][0]["name"] == "booster.txt"


# ---------------------------------------------------------------- champion and rollback


def test_no_champion_is_none(registry: Registry) -> None:
    assert registry.champion("football", "e0") is None
    assert registry.champion_history("football", "e0") == []


def test_set_champion_and_rollback(registry: Registry) -> None:
    v1 = register(registry, "elo")
    v2 = register(registry, "dixon_coles")
    v3 = register(registry, "lightgbm")
    registry.set_champion("football", "e0", "elo", v1, "no champion yet")
    registry.set_champion("football", "e0", "dixon_coles", v2, "log_loss gain 0.004")
    record = registry.set_champion("football", "e0", "lightgbm", v3, "log_loss gain 0.002")
    assert registry.champion("football", "e0") == record
    assert (record.model_name, record.version, record.reason) == (
        "lightgbm",
        v3,
        "log_loss gain 0.002",
    )
    assert [r.model_name for r in registry.champion_history("football", "e0")] == [
        "elo",
        "dixon_coles",
    ]

    back = registry.rollback("football", "e0")
    assert (back.model_name, back.version) == ("dixon_coles", v2)
    assert back.reason.startswith(f"rollback from lightgbm {v3}")
    assert registry.champion("football", "e0") == back
    back = registry.rollback("football", "e0")
    assert (back.model_name, back.version) == ("elo", v1)
    with pytest.raises(RegistryError, match="no earlier one"):
        registry.rollback("football", "e0")
    assert registry.champion("football", "e0") == back


def test_rollback_without_champion_raises(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="football/e0: it has no champion"):
        registry.rollback("football", "e0")


def test_set_champion_requires_a_registered_version(registry: Registry) -> None:
    with pytest.raises(ModelNotFoundError):
        registry.set_champion("football", "e0", "elo", "20260101T000000Z-00000000", "why not")
    assert registry.champion("football", "e0") is None


def test_set_same_champion_twice_is_idempotent(registry: Registry) -> None:
    version = register(registry, "elo")
    first = registry.set_champion("football", "e0", "elo", version, "first")
    again = registry.set_champion("football", "e0", "elo", version, "again")
    assert again == first
    assert registry.champion_history("football", "e0") == []


def test_champion_file_is_beside_the_models(registry: Registry) -> None:
    version = register(registry, "elo")
    registry.set_champion("football", "e0", "elo", version, "no champion yet")
    raw = registry._fs.cat_file(registry._path("football", "e0", "champion.json"))
    stored = json.loads(raw)
    assert stored["model_name"] == "elo"
    assert stored["version"] == version
    assert stored["history"] == []
    # the pointer file is not mistaken for a model
    assert [m.model_name for m in registry.list_models()] == ["elo"]


# ---------------------------------------------------------------- decisions


def test_decisions_saved_beside_manifests(registry: Registry) -> None:
    register(registry, "elo")
    decision = PromotionDecision(
        promote=False,
        reason="log_loss gain 0.0004 per match, p=0.3 >= 0.05 over 900 matches: not significant",
        champion="elo",
        challenger="dixon_coles",
        mean_difference=0.0004,
        p_value=0.3,
        n=900,
        rule=PromotionRule(),
    )
    path = registry.save_decision("football", "e0", decision)
    second = registry.save_decision("football", "e0", decision)
    assert path.replace(os.sep, "/").endswith(
        "football/e0/decisions/20261121T235959Z_dixon_coles.json"
    )
    assert second.endswith("20261121T235959Z_dixon_coles-2.json")
    saved = registry.decisions("football", "e0")
    assert len(saved) == 2
    assert saved[0] == decision.model_copy(update={"decided_utc": START})
    # decisions are not mistaken for a model
    assert [m.model_name for m in registry.list_models()] == ["elo"]


def _decision(challenger: str, decided: datetime | None = None) -> PromotionDecision:
    return PromotionDecision(
        promote=False,
        reason=f"{challenger}: not significant",
        champion="market",
        challenger=challenger,
        mean_difference=0.0002,
        p_value=0.08,
        n=4000,
        rule=PromotionRule(),
        decided_utc=decided,
    )


def test_decisions_are_oldest_first_and_latest_reads_the_newest(registry: Registry) -> None:
    assert registry.latest_decision("football", "e0") is None
    earlier = START - timedelta(days=3)
    # within one second: names sort "lightgbm" < "market" < "zeta", decision times do not
    for challenger, micro in (("zeta", 100), ("lightgbm", 300), ("market", 200)):
        registry.save_decision(
            "football", "e0", _decision(challenger, START.replace(microsecond=micro))
        )
    registry.save_decision("football", "e0", _decision("old", earlier))
    # the same decision time twelve times: saved as x.json, x-2.json, ... x-12.json
    repeated = START.replace(microsecond=999_000)
    for i in range(12):
        registry.save_decision(
            "football", "e0", _decision("same", repeated).model_copy(update={"n": 1000 + i})
        )
    saved = registry.decisions("football", "e0")
    assert [d.challenger for d in saved[:4]] == ["old", "zeta", "market", "lightgbm"]
    assert [d.n for d in saved[4:]] == [1000 + i for i in range(12)]
    latest = registry.latest_decision("football", "e0")
    assert latest == saved[-1]
    assert latest.n == 1011
    assert registry.latest_decision("football", "ou25") is None


def test_local_root_accepts_file_url(tmp_path: Path) -> None:
    registry = Registry(f"file://{tmp_path}/reg", clock=StepClock(START))
    version = register(registry)
    assert (
        tmp_path / "reg" / "football" / "e0" / "dixon_coles" / version / "manifest.json"
    ).exists()
    assert (
        Registry(str(tmp_path / "reg")).load_files("football", "e0", "dixon_coles", version)
        == FILES
    )


def _promote_in_turn(root: str, versions: list[str], times: int) -> None:
    registry = Registry(root)
    for k in range(times):
        version = versions[k % len(versions)]
        registry.set_champion("football", "e0", "elo", version, f"round {k}")


def test_promotions_from_several_processes_keep_every_history_entry(tmp_path: Path) -> None:
    """Each process read the pointer, then replaced it: one that read before another wrote lost
    that promotion from the history. The pointer's read-modify-write now holds a file lock."""
    import multiprocessing

    root = str(tmp_path / "registry")
    registry = Registry(root, clock=StepClock(START))
    versions = [register(registry, "elo", files={"params.json": b"%d" % i}) for i in range(8)]
    n_processes, times = 4, 12
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_promote_in_turn, args=(root, versions[2 * i : 2 * i + 2], times))
        for i in range(n_processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * n_processes
    # every promotion differs from the pointer it replaced (each process alternates its own two
    # versions), so every one but the first pushed an entry onto the history
    assert len(registry.champion_history("football", "e0")) == n_processes * times - 1


def test_promotions_from_several_threads_on_an_object_store_keep_every_history_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an object store the last writer won: a promotion that read the pointer before another
    wrote it dropped that promotion from the history. The pointer lock is now a file created
    exclusively ("xb": S3 If-None-Match, GCS generation 0), shown here on memory://."""
    import threading
    import time

    root = f"memory://registry-lock-{uuid.uuid4().hex}"
    registry = Registry(root, clock=StepClock(START))
    versions = [register(registry, "elo", files={"params.json": b"%d" % i}) for i in range(8)]
    read = Registry._read_champion_file

    def slow_read(self: Registry, vertical: str, market: str) -> object:
        state = read(self, vertical, market)
        time.sleep(0.002)  # widen the read-modify-write window, as a network round trip does
        return state

    monkeypatch.setattr(Registry, "_read_champion_file", slow_read)
    n_threads, times = 4, 10

    def promote(own: list[str]) -> None:
        mine = Registry(root, clock=StepClock(START))
        for k in range(times):
            mine.set_champion("football", "e0", "elo", own[k % 2], f"round {k}")

    threads = [
        threading.Thread(target=promote, args=(versions[2 * i : 2 * i + 2],))
        for i in range(n_threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(registry.champion_history("football", "e0")) == n_threads * times - 1
    fs, path = fsspec.core.url_to_fs(root)
    assert not fs.exists(f"{path}/football/e0/.champion.lock")  # released
    fs.rm(path, recursive=True)


def _memory_registry_and_lock(name: str) -> tuple[Registry, StepClock, str, str]:
    """A memory:// registry with one elo version, its clock, and the e0 pointer's lock path."""
    clock = StepClock(START)
    registry = Registry(f"memory://registry-{name}-{uuid.uuid4().hex}", clock=clock)
    version = register(registry, "elo")
    _, path = fsspec.core.url_to_fs(registry.root)
    return registry, clock, version, f"{path}/football/e0/.champion.lock"


def test_an_object_store_lock_left_by_a_crash_is_broken_and_a_live_one_waited_for(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from marketcast.registry import store

    registry, clock, version, lock = _memory_registry_and_lock("stale")
    fs, path = fsspec.core.url_to_fs(registry.root)
    holder = {"owner": "x", "host": "box-7", "pid": 41, "acquired_utc": START.isoformat()}
    fs.pipe_file(lock, json.dumps(holder).encode())
    # a live holder (acquired now): the promotion waits, then names it
    monkeypatch.setattr(store, "CHAMPION_LOCK_WAIT_SECONDS", 0.2)
    with pytest.raises(RegistryError, match=r"held by box-7 pid 41 since 2026-11-21 23:59:59"):
        registry.set_champion("football", "e0", "elo", version, "first")
    assert registry.champion("football", "e0") is None
    assert fs.exists(lock)  # not ours: left alone
    # the same lock three minutes later was left by a crash: broken, and the move goes ahead
    clock.current = START + timedelta(minutes=3)
    with caplog.at_level("WARNING", logger="marketcast.registry.store"):
        record = registry.set_champion("football", "e0", "elo", version, "first")
    assert record.version == version
    assert "breaking the stale pointer lock" in caplog.text
    assert "box-7 pid 41" in caplog.text
    assert not fs.exists(lock)
    fs.pipe_file(lock, b"not json")  # an unreadable lock is broken too, after a grace period
    monkeypatch.setattr(store, "UNREADABLE_LOCK_GRACE_SECONDS", 0.05)
    other = register(registry, "elo", files={"params.json": b"2"})
    assert registry.set_champion("football", "e0", "elo", other, "second").version == other
    fs.rm(path, recursive=True)


def test_a_filesystem_without_exclusive_create_warns_that_the_last_writer_wins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = f"{PlainMemory.protocol}://registry-plain-{uuid.uuid4().hex}"
    registry = Registry(root, clock=StepClock(START))
    version = register(registry, "elo")
    with caplog.at_level("WARNING", logger="marketcast.registry.store"):
        registry.set_champion("football", "e0", "elo", version, "first")
    assert "cannot create a file exclusively" in caplog.text
    assert "last writer wins" in caplog.text
    fs, path = fsspec.core.url_to_fs(root)
    fs.rm(path, recursive=True)


class PlainMemory(MemoryFileSystem):
    """fsspec's memory filesystem under a protocol the registry does not know to create files
    exclusively."""

    protocol = "plain-memory"

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return str(super()._strip_protocol(path.removeprefix(f"{cls.protocol}://")))


fsspec.register_implementation(PlainMemory.protocol, PlainMemory, clobber=True)


@pytest.mark.parametrize(
    "current",
    [
        {"model_name": "market", "version": "bad/version"},
        {"model_name": "../market", "version": "20261121T235959Z-0123abcd"},
    ],
)
def test_a_pointer_edited_into_bad_names_is_a_damaged_registry(
    registry: Registry, current: dict[str, str]
) -> None:
    """Valid JSON with a bad version passed the file's own check and failed later, as a raw
    pydantic error: the CLI printed its dump, a server would not start, the watcher looped."""
    from marketcast.registry.store import RegistryDamagedError

    version = register(registry)
    registry.set_champion("football", "e0", "dixon_coles", version, "first")
    fs, path = fsspec.core.url_to_fs(registry.root)
    body = {**current, "promoted_utc": "2026-01-01T00:00:00Z", "reason": "x"}
    fs.pipe_file(f"{path}/football/e0/champion.json", json.dumps(body).encode())
    with pytest.raises(RegistryDamagedError, match=r"champion file .* is unreadable .*repair or"):
        registry.champion("football", "e0")


def test_an_object_store_lock_being_written_or_stamped_ahead_is_not_broken_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An empty lock (the store shows the file before its body) was broken at once: 8 threads
    held it together and 7 history entries were lost. A lock stamped in the future (a skewed
    clock) was never stale."""
    from marketcast.registry import store

    registry, _, version, lock = _memory_registry_and_lock("grace")
    fs, path = fsspec.core.url_to_fs(registry.root)
    fs.pipe_file(lock, b"")  # a holder between creating and writing it
    monkeypatch.setattr(store, "CHAMPION_LOCK_WAIT_SECONDS", 0.3)
    with pytest.raises(ChampionLockTimeoutError, match="held by an unreadable lock file"):
        registry.set_champion("football", "e0", "elo", version, "first")
    assert fs.exists(lock)  # waited for, not broken (its grace is 5 s)
    ahead = {"owner": "x", "host": "fast", "pid": 1, "acquired_utc": "2026-11-22T00:30:00+00:00"}
    fs.pipe_file(lock, json.dumps(ahead).encode())  # 30 minutes ahead of the registry's clock
    assert registry.set_champion("football", "e0", "elo", version, "first").version == version
    fs.rm(path, recursive=True)


def test_a_local_pointer_lock_held_too_long_is_an_error_not_a_hang(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    from marketcast.registry import store

    registry = Registry(str(tmp_path / "registry"), clock=StepClock(START))
    version = register(registry, "elo")
    monkeypatch.setattr(store, "CHAMPION_LOCK_WAIT_SECONDS", 0.2)
    with open(tmp_path / "registry" / "football" / "e0" / ".champion.lock", "a+b") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process's descriptor, as flock sees it
        with pytest.raises(ChampionLockTimeoutError, match=r"held by another process for over"):
            registry.set_champion("football", "e0", "elo", version, "first")
    assert registry.set_champion("football", "e0", "elo", version, "first").version == version


def test_a_failed_rollback_leaves_no_folder_behind(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path / "registry"), clock=StepClock(START))
    register(registry, "elo")
    with pytest.raises(RegistryError, match="cannot roll back fotball/e0: it has no champion"):
        registry.rollback("fotball", "e0")
    assert not (tmp_path / "registry" / "fotball").exists()


def test_an_s3fs_older_than_its_conditional_xb_is_last_writer_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before s3fs 2025.7 a small file opened "xb" was simply written: the lock excluded no one."""
    import importlib.metadata

    from marketcast.registry import store

    class S3FileSystem:  # stands in for s3fs's class: only its module name is read
        __module__ = "s3fs.core"

    for installed, honoured in (("2025.3.2", False), ("2025.7.0", True), ("2026.1.0", True)):
        monkeypatch.setattr(importlib.metadata, "version", lambda name, v=installed: v)
        assert store._honours_xb(S3FileSystem()) is honoured


def test_version_of_run_finds_a_version_stamped_before_another_runs(tmp_path: Path) -> None:
    """Two runs registering at once: A's elo at :00, B's elo at :01, A's dixon_coles at :02.
    The search stopped at B's elo (another run, stamped before A's dixon_coles) and the cloud
    blend lost A's elo without a word."""
    registry = Registry(str(tmp_path / "registry"), clock=StepClock(START, timedelta(seconds=1)))
    a_elo = register(registry, "elo", files={"p.json": b"a"}, run_id="A")
    register(registry, "elo", files={"p.json": b"b"}, run_id="B")
    a_dc = register(registry, "dixon_coles", files={"p.json": b"a"}, run_id="A")
    assert registry.version_of_run("football", "e0", "elo", "A", near=a_dc) == a_elo


def _old_folder_without_manifest(folder: Path) -> Path:
    """``folder`` (a version folder's path) with no manifest, its files two hours old."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "params.json").write_bytes(b"{}")
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).timestamp()
    for file in folder.iterdir():
        os.utime(file, (two_hours_ago, two_hours_ago))
    return folder


def test_clean_leaves_a_champion_without_its_manifest_and_folders_outside_the_registry(
    tmp_path: Path,
) -> None:
    """Registry audit (low): a champion's version whose manifest was lost counted as a killed
    registration and `clean` removed it (it can be repaired, as the run's error says), and so
    was a version-shaped folder under names the registry never writes."""
    root = tmp_path / "registry"
    registry = Registry(str(root))
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    stamp = f"{two_hours_ago:%Y%m%dT%H%M%SZ}"
    then = Registry(str(root), clock=lambda: two_hours_ago)  # versions stamped two hours ago
    champion = then.register("football", "e0", "elo", FILES, make_manifest("elo"))
    before = then.register("football", "e0", "elo", FILES, make_manifest("elo"))
    then.set_champion("football", "e0", "elo", before, "no champion yet")
    then.set_champion("football", "e0", "elo", champion, "by hand")
    assert champion.startswith(stamp[:11])  # stamped then (to the hour)
    for version in (champion, before):  # the champion, and the one in its history
        folder = root / "football" / "e0" / "elo" / version
        (folder / "manifest.json").unlink()
        _old_folder_without_manifest(folder)
    crashed = _old_folder_without_manifest(root / "football" / "e0" / "elo" / f"{stamp}-0123abcd")
    theirs = _old_folder_without_manifest(root / "My Models" / "a" / "b" / f"{stamp}-89abcdef")
    assert registry.leftovers() == [str(crashed)]
    assert registry.remove_leftovers() == [str(crashed)]
    assert theirs.exists()
    assert (root / "football" / "e0" / "elo" / champion / "params.json").exists()
    # a champion.json that cannot be read names every version of its market: none is listed
    (root / "football" / "e0" / "champion.json").write_text("{")
    _old_folder_without_manifest(crashed)
    assert registry.leftovers() == []


def test_leftovers_of_killed_writers_are_listed_and_removed_once_old(tmp_path: Path) -> None:
    """A run killed while registering leaves a version folder without a manifest, and a write
    killed before its rename a temporary file: invisible to readers, and never removed."""
    registry = Registry(str(tmp_path / "registry"))
    kept = registry.register("football", "e0", "dixon_coles", FILES, make_manifest())
    model = tmp_path / "registry" / "football" / "e0" / "dixon_coles"
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    crashed = model / f"{two_hours_ago:%Y%m%dT%H%M%SZ}-0123abcd"  # the manifest never came
    crashed.mkdir()
    (crashed / "params.json").write_bytes(b"{}")
    os.utime(crashed / "params.json", (two_hours_ago.timestamp(), two_hours_ago.timestamp()))
    # a version copied from another registry keeps its old stamp while its files are written
    copying = model / f"{two_hours_ago:%Y%m%dT%H%M%SZ}-89abcdef"
    copying.mkdir()
    (copying / "booster.txt").write_bytes(b"tree")
    in_progress = model / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-4567abcd"
    in_progress.mkdir()
    (in_progress / "params.json").write_bytes(b"{}")
    old_temp = model / kept / f".manifest.json.{uuid.uuid4().hex}.tmp"
    old_temp.write_bytes(b"{")
    os.utime(old_temp, (two_hours_ago.timestamp(), two_hours_ago.timestamp()))
    new_temp = model.parent / f".champion.json.{uuid.uuid4().hex}.tmp"
    new_temp.write_bytes(b"{")

    assert registry.leftovers() == sorted([str(crashed), str(old_temp)])
    assert registry.remove_leftovers() == sorted([str(crashed), str(old_temp)])
    assert not crashed.exists()
    assert not old_temp.exists()
    assert in_progress.exists()  # younger than the hour: a registration may still be writing
    assert copying.exists()
    assert new_temp.exists()
    assert registry.versions("football", "e0", "dixon_coles") == [kept]
    registry.load_files("football", "e0", "dixon_coles", kept)  # the good version is intact
    assert registry.leftovers(timedelta(0)) == sorted(
        [str(copying), str(in_progress), str(new_temp)]
    )
