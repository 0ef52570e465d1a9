"""Audit fixes: unloadable versions, rollback and promotion races, same-second versions, and
config seeds and windows refused at validation, naming the file and the key."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

import marketcast.orchestration.commands as commands
from marketcast.cli import main
from marketcast.config import CryptoRunConfig, FootballRunConfig, load_config, load_crypto_config
from marketcast.registry import (
    ArtifactIntegrityError,
    ChampionChangedError,
    Manifest,
    Registry,
    RegistryError,
    build_manifest,
    promote_if_better,
)
from marketcast.serving.app import create_app
from marketcast.serving.service import ChampionService
from marketcast.serving.settings import ServingSettings

#: ``marketcast.config.MAX_SEED``: numpy's legacy seeding and scikit-learn take seeds below 2**32
MAX_SEED = 2**32 - 1
WHEN = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
ADMIN_TOKEN = "audit-admin-token-0123456789"


def fixed_clock() -> datetime:
    return WHEN


def manifest_for(
    name: str, files: dict[str, bytes], *, market: str = "1x2", run_id: str | None = None
) -> Manifest:
    return build_manifest(
        model_name=name,
        vertical="football",
        market=market,
        config={"seed": 7},
        files=files,
        data_sha256="d" * 64,
        features_sha256="f" * 64,
        training_window={
            "start_utc": "2020-01-01T00:00:00Z",
            "end_utc": "2021-01-01T00:00:00Z",
            "n_matches": 10,
        },
        scores={"log_loss": 0.97},
        backtest={},
        run_id=run_id,
    )


def register(registry: Registry, name: str, files: dict[str, bytes], **kwargs: Any) -> str:
    return registry.register("football", "1x2", name, files, manifest_for(name, files, **kwargs))


def memory_root() -> str:
    return f"memory://audit-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def feature_state(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real feature state (one bundled Premier League season), as a run registers it."""
    from marketcast.datasets.bundle import read_archive_csvs
    from marketcast.datasets.football_data import bundled_football_path, load_football
    from marketcast.features.football_state import build_feature_state

    folder = tmp_path_factory.mktemp("e0")
    [payload] = [
        data
        for name, data in read_archive_csvs(bundled_football_path())
        if name.endswith("E0/2021-2022.csv")
    ]
    (folder / "E0.csv").write_bytes(payload)
    return build_feature_state(load_football([str(folder)])).to_json()


def bad_booster_files(feature_state: bytes) -> dict[str, bytes]:
    """A LightGBM version whose manifest matches its files, but whose booster is not one."""
    from marketcast.models.factory import make_model

    meta = {
        "params": make_model("lightgbm").get_params(),
        "feature_names": [],
        "leagues": ["E0"],
        "temperature": {},
        "base_rates": {},
        "best_iteration": {},
    }
    return {
        "lightgbm.json": json.dumps(meta).encode(),
        "lightgbm_1x2.txt": b"tree\nnot a booster\n",
        "feature_state.json": feature_state,
    }


# ---------------------------------------------------------------- 1. unloadable versions


def test_promote_of_a_version_that_cannot_load_exits_2_with_one_line(
    tmp_path: Path, feature_state: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    """A garbage booster raised LightGBMError (no ValueError): a traceback and exit 1. It is
    refused before LightGBM reads it now (`ModelTextError`), named with the version."""
    root = tmp_path / "reg"
    registry = Registry(str(root))
    bare = register(registry, "elo", {"m.json": b"{}"})
    registry.set_champion("football", "1x2", "elo", bare, "set by hand")
    bad = register(registry, "lightgbm", bad_booster_files(feature_state))

    assert main(["registry", "--root", str(root), "promote", "football/1x2/lightgbm", bad]) == 2
    err_lines = [
        line for line in capsys.readouterr().err.splitlines() if not line.startswith("[LightGBM]")
    ]
    assert len(err_lines) == 1
    assert err_lines[0].startswith(
        f"marketcast: error: football/1x2/lightgbm {bad} cannot be served: ModelTextError: "
        "lightgbm artifact lightgbm_1x2.txt: line "
    )
    assert registry.champion("football", "1x2").version == bare


def test_rollback_to_a_version_that_cannot_load_exits_2(
    tmp_path: Path, feature_state: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "reg"
    registry = Registry(str(root))
    bad = register(registry, "lightgbm", bad_booster_files(feature_state))
    bare = register(registry, "elo", {"m.json": b"{}"})
    registry.set_champion("football", "1x2", "lightgbm", bad, "set by hand")
    registry.set_champion("football", "1x2", "elo", bare, "set by hand")

    assert main(["registry", "--root", str(root), "rollback", "football/1x2"]) == 2
    err = capsys.readouterr().err
    assert f"marketcast: error: football/1x2/lightgbm {bad} cannot be served" in err
    assert registry.champion("football", "1x2").version == bare
    assert [h.version for h in registry.champion_history("football", "1x2")] == [bad]


def test_admin_promote_of_a_version_that_cannot_load_is_409_not_500(
    tmp_path: Path, feature_state: bytes
) -> None:
    registry = Registry(str(tmp_path / "reg"))
    bad = register(registry, "lightgbm", bad_booster_files(feature_state))
    service = ChampionService(registry)
    with pytest.raises(RegistryError, match=f"football/1x2/lightgbm {bad} cannot be served"):
        service.promote("1x2", "lightgbm", bad)

    app = create_app(ServingSettings(admin_token=ADMIN_TOKEN), service)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/admin/promote",
            json={"market": "1x2", "model_name": "lightgbm", "version": bad},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
    assert response.status_code == 409
    assert response.json()["detail"].startswith(
        f"promote failed: football/1x2/lightgbm {bad} cannot be served: ModelTextError"
    )
    assert registry.champion("football", "1x2") is None


# ---------------------------------------------------------------- 2. rollback under the lock


def three_champions(registry: Registry) -> list[str]:
    versions = [register(registry, name, {"m.json": name.encode()}) for name in ("a", "b", "c")]
    for name, version in zip(("a", "b", "c"), versions, strict=True):
        registry.set_champion("football", "1x2", name, version, "set by hand")
    return versions


@pytest.mark.parametrize("root", ["local", "memory"])
def test_store_rollback_with_expected_restores_only_that_version(tmp_path: Path, root: str) -> None:
    registry = Registry(str(tmp_path / "reg") if root == "local" else memory_root())
    a, b, _ = three_champions(registry)
    registry.rollback("football", "1x2", expected=("b", b))  # c -> b
    with pytest.raises(ChampionChangedError, match=f"would now restore a {a}, not b {b}"):
        registry.rollback("football", "1x2", expected=("b", b))
    assert registry.champion("football", "1x2").version == b
    assert [h.version for h in registry.champion_history("football", "1x2")] == [a]


def test_cli_rollback_restores_only_the_version_it_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another rollback finishing during this one's check: this one restored ``a``, which it
    never loaded (three rollbacks at once restored two unchecked versions)."""
    root = tmp_path / "reg"
    registry = Registry(str(root))
    a, b, _ = three_champions(registry)
    checked: list[tuple[str, str]] = []

    def check_while_another_rolls_back(
        store: Registry, vertical: str, market: str, model_name: str, version: str
    ) -> None:
        checked.append((model_name, version))
        Registry(str(root)).rollback(vertical, market)  # the other process: c -> b

    monkeypatch.setattr(commands, "_check_servable", check_while_another_rolls_back)
    assert main(["registry", "--root", str(root), "rollback", "football/1x2"]) == 2
    assert checked == [("b", b)]
    assert "changed after it was read" in capsys.readouterr().err
    assert registry.champion("football", "1x2").version == b  # the other's rollback only
    assert [h.version for h in registry.champion_history("football", "1x2")] == [a]


# ---------------------------------------------------------------- 3. promote_if_better

LOSSES = 1.0 + np.random.default_rng(0).normal(0, 0.1, 500)


def _elo_over_market(registry: Registry, elo: str, market: str) -> Any:
    """Challenge champion ``market`` with ``elo``, 0.05 a match better on the same matches."""
    return promote_if_better(
        registry,
        "football",
        "1x2",
        ("elo", elo),
        LOSSES,
        LOSSES - 0.05,
        champion=("market", market),
    )


@pytest.mark.parametrize("root", ["local", "memory"])
def test_promote_if_better_saves_no_decision_for_a_damaged_challenger(
    tmp_path: Path, root: str
) -> None:
    registry = Registry(str(tmp_path / "reg") if root == "local" else memory_root())
    market = register(registry, "market", {"a.json": b"{}"})
    registry.set_champion("football", "1x2", "market", market, "first")
    elo = register(registry, "elo", {"a.json": b'{"x":1}'})
    folder = f"{registry._root_path}/football/1x2/elo/{elo}/a.json"
    registry._fs.rm_file(folder)  # removed by hand

    with pytest.raises(ArtifactIntegrityError, match=r"a\.json"):
        _elo_over_market(registry, elo, market)
    assert registry.champion("football", "1x2").model_name == "market"
    assert registry.decisions("football", "1x2") == []  # was: promote=True, challenger elo


def test_promote_if_better_does_not_replace_a_promotion_made_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = Registry(memory_root())
    market = register(registry, "market", {"a.json": b"{}"})
    registry.set_champion("football", "1x2", "market", market, "first")
    dixon_coles = register(registry, "dixon_coles", {"a.json": b"{2}"})
    elo = register(registry, "elo", {"a.json": b'{"x":1}'})
    operator = Registry(registry.root)
    read_champion: Callable[..., Any] = registry.champion

    def champion_then_operator_promotes(vertical: str, market_name: str) -> Any:
        current = read_champion(vertical, market_name)
        operator.set_champion("football", "1x2", "dixon_coles", dixon_coles, "manual promotion")
        return current

    monkeypatch.setattr(registry, "champion", champion_then_operator_promotes)
    with pytest.raises(ChampionChangedError, match=f"expected market {market}"):
        _elo_over_market(registry, elo, market)
    assert operator.champion("football", "1x2").model_name == "dixon_coles"
    assert [h.model_name for h in operator.champion_history("football", "1x2")] == ["market"]
    assert operator.decisions("football", "1x2") == []


def test_promote_if_better_refuses_losses_of_a_champion_replaced_before_the_call() -> None:
    registry = Registry(memory_root())
    market = register(registry, "market", {"a.json": b"{}"})
    registry.set_champion("football", "1x2", "market", market, "first")
    dixon_coles = register(registry, "dixon_coles", {"a.json": b"{2}"})
    elo = register(registry, "elo", {"a.json": b'{"x":1}'})
    # the losses were computed against market; an operator then promoted dixon_coles
    registry.set_champion("football", "1x2", "dixon_coles", dixon_coles, "by operator")

    with pytest.raises(ChampionChangedError, match=f"those of market {market}.*dixon_coles"):
        _elo_over_market(registry, elo, market)
    assert registry.champion("football", "1x2").model_name == "dixon_coles"  # was: elo
    assert registry.decisions("football", "1x2") == []  # was: a test dixon_coles never took


def test_promote_if_better_saves_its_decision_after_the_move() -> None:
    registry = Registry(memory_root())
    market = register(registry, "market", {"a.json": b"{}"})
    registry.set_champion("football", "1x2", "market", market, "first")
    elo = register(registry, "elo", {"a.json": b'{"x":1}'})
    saved_with_champion: list[str] = []
    save = registry.save_decision

    def save_decision(vertical: str, market_name: str, decision: Any) -> str:
        saved_with_champion.append(registry.champion(vertical, market_name).model_name)
        return save(vertical, market_name, decision)

    registry.save_decision = save_decision  # type: ignore[method-assign]
    decision = _elo_over_market(registry, elo, market)
    assert decision.promote
    assert saved_with_champion == ["elo"]  # was "market": saved before the move
    assert registry.latest_decision("football", "1x2") == decision


# ---------------------------------------------------------------- 4. same-second versions


@pytest.mark.parametrize("root", ["local", "file", "memory"])
def test_same_second_identical_registrations_get_two_versions(tmp_path: Path, root: str) -> None:
    """Both listed the versions before either wrote: one version, the later manifest won."""
    url = {
        "local": str(tmp_path / "reg"),
        "file": f"file://{tmp_path / 'reg'}",
        "memory": memory_root(),
    }[root]
    files = {"a.json": b"{}"}  # same seed, same data: the same bytes
    barrier = threading.Barrier(2)
    out: dict[str, str] = {}

    def go(run_id: str) -> None:
        registry = Registry(url, clock=fixed_clock)
        listed = registry._children
        waited = []

        def children(path: str, *, dirs: bool) -> list[str]:
            names = listed(path, dirs=dirs)
            if not waited:  # the first listing of each: both before either writes
                waited.append(True)
                barrier.wait(timeout=20)
            return names

        registry._children = children  # type: ignore[method-assign]
        try:
            out[run_id] = register(registry, "elo", files, run_id=run_id)
        except Exception as exc:  # reported below
            out[run_id] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=go, args=(f"run{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registry = Registry(url)
    versions = registry.versions("football", "1x2", "elo")
    assert sorted(out.values()) == versions
    assert [v.split("-")[0] for v in versions] == ["20261123T120000Z", "20261123T120001Z"]
    assert len({v.split("-")[1] for v in versions}) == 1  # the same content hash
    run_ids = {registry.manifest("football", "1x2", "elo", v).run_id for v in versions}
    assert run_ids == {"run1", "run2"}
    for version in versions:
        assert registry.load_files("football", "1x2", "elo", version) == files


@pytest.mark.parametrize("root", ["local", "memory"])
def test_a_version_written_after_the_listing_moves_the_next_one_on(
    tmp_path: Path, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing that missed a version written just after it: FileExistsError, after training."""
    registry = Registry(
        str(tmp_path / "reg") if root == "local" else memory_root(), clock=fixed_clock
    )
    first = register(registry, "elo", {"a.json": b"{}"}, run_id="run1")
    monkeypatch.setattr(registry, "_children", lambda path, *, dirs: [])
    second = register(registry, "elo", {"a.json": b"{}"}, run_id="run2")
    assert (first[:16], second[:16]) == ("20261123T120000Z", "20261123T120001Z")
    assert first[16:] == second[16:]  # the same content hash
    assert registry.manifest("football", "1x2", "elo", first).run_id == "run1"


@pytest.mark.parametrize("root", ["local", "memory"])
def test_decisions_saved_in_one_second_are_all_kept(
    tmp_path: Path, root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name was checked free, then written: a decision saved between the two was lost."""
    from marketcast.promotion import decide_promotion

    registry = Registry(
        str(tmp_path / "reg") if root == "local" else memory_root(), clock=fixed_clock
    )
    monkeypatch.setattr(registry, "_exists", lambda path: False)  # each check saw no file yet
    first = decide_promotion("market", LOSSES, "elo", LOSSES - 0.05)
    second = decide_promotion("market", LOSSES, "elo", LOSSES + 0.05)
    paths = [registry.save_decision("football", "1x2", d) for d in (first, second)]
    assert paths[0] != paths[1]
    assert [d.promote for d in registry.decisions("football", "1x2")] == [True, False]


# ---------------------------------------------------------------- 5. seeds


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("seed", [2**63, 2**64, MAX_SEED + 1])
def test_a_seed_out_of_range_names_the_file_and_the_key(
    tmp_path: Path, seed: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """It passed validation and --dry-run, then failed in the walk-forward with "Overflow when
    unpacking long long", naming nothing."""
    path = write(tmp_path, f"models: [market]\nseed: {seed}\n")
    with pytest.raises(ValueError, match=r"run\.yaml, field 'seed': .*less than or equal to 4294"):
        load_config(path)
    crypto = write(tmp_path, f"vertical: crypto\nseed: {seed}\n", "crypto.yaml")
    with pytest.raises(ValueError, match=r"crypto\.yaml, field 'seed': "):
        load_crypto_config(crypto)
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    assert f"{path}, field 'seed': " in capsys.readouterr().err


def test_the_largest_seed_is_taken_by_every_seeded_library() -> None:
    import torch
    from sklearn.utils import check_random_state

    from marketcast.models.nn.seed import seed_everything

    assert FootballRunConfig(seed=MAX_SEED).seed == CryptoRunConfig(seed=MAX_SEED).seed
    check_random_state(MAX_SEED)
    seed_everything(MAX_SEED + 1000)  # the neural model seeds with seed + n_fits_
    assert torch.Generator().manual_seed(MAX_SEED + 1000).initial_seed() == MAX_SEED + 1000


# ---------------------------------------------------------------- 6. windows


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("start: 2021-10-01\n  end: 2021-09-01", "end 2021-09-01 must be after start 2021-10-01"),
        ("start: 2021-10-01\n  end: 2021-10-01", "end 2021-10-01 must be after start 2021-10-01"),
        ("start: 2021-10-01\n  end: '2021-10-01T01:00:00+02:00'", "must be after start"),
    ],
)
def test_a_window_ending_before_it_starts_names_the_file_and_the_key(
    tmp_path: Path, window: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was "--end ... must be after --start ..." (options `run` lacks), after the data."""
    path = write(tmp_path, f"models: [market]\nwalk_forward:\n  {window}\n")
    with pytest.raises(ValueError, match=r"run\.yaml, field 'walk_forward\.end': ") as caught:
        load_config(path)
    assert message in str(caught.value)
    crypto = write(tmp_path, f"vertical: crypto\nwalk_forward:\n  {window}\n", "crypto.yaml")
    with pytest.raises(ValueError, match=r"crypto\.yaml, field 'walk_forward\.end': "):
        load_crypto_config(crypto)
    assert main(["run", "--config", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}, field 'walk_forward.end': " in err
    assert "--end" not in err


def test_a_crypto_end_before_the_default_start_is_refused_and_a_later_one_kept() -> None:
    with pytest.raises(ValueError, match="end 2022-01-01 must be after start 2022-07-01"):
        CryptoRunConfig.model_validate({"walk_forward": {"end": "2022-01-01"}})
    assert CryptoRunConfig.model_validate({"walk_forward": {"end": "2023-01-01"}}).walk_forward
    kept = FootballRunConfig.model_validate(
        {"walk_forward": {"start": "2021-08-01", "end": "2022-01-01"}}
    )
    assert (kept.walk_forward.start, kept.walk_forward.end) == ("2021-08-01", "2022-01-01")


def test_registry_show_names_both_shapes_it_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`registry show football` said "expected vertical/market/model", while `show` also takes
    vertical/market (the champion)."""
    assert main(["registry", "--root", str(tmp_path), "show", "football"]) == 2
    err = capsys.readouterr().err
    assert "expected vertical/market or vertical/market/model, got 'football'" in err
