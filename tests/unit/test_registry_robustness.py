"""Registry under damage: corrupt artifacts, unreadable pointer and decisions, bad roots."""

from __future__ import annotations

import importlib.util
import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from marketcast.cli import main
from marketcast.registry import ArtifactIntegrityError, Registry, RegistryError
from marketcast.registry.store import ChampionRecord, rollback_reason
from tests.unit.test_registry import StepClock, make_manifest
from tests.unit.test_registry import _decision as decision

START = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def register(registry: Registry, model_name: str, market: str = "1x2") -> str:
    """Register a one-file model ``model_name`` in ``football/{market}``; return its version."""
    files = {"m.json": json.dumps({"name": model_name}).encode()}
    manifest = make_manifest(model_name, files, market=market)
    return registry.register("football", market, model_name, files, manifest)


def market_dir(root: Path, market: str = "1x2") -> Path:
    return root / "football" / market


def champion_with_a_damaged_challenger(root: Path, registry: Registry) -> tuple[str, bytes]:
    """``market`` champion, a ``neural`` version with bytes appended to its file; returns that
    version and the pointer's bytes."""
    good = register(registry, "market")
    bad = register(registry, "neural")
    registry.set_champion("football", "1x2", "market", good, "no champion yet")
    with (market_dir(root) / "neural" / bad / "m.json").open("ab") as handle:
        handle.write(b"tampered")
    return bad, (market_dir(root) / "champion.json").read_bytes()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "reg"


@pytest.fixture
def registry(root: Path) -> Registry:
    return Registry(str(root), clock=StepClock(START, timedelta(minutes=1)))


# ---------------------------------------------------------------- 1. corrupt champions refused


def test_set_champion_refuses_a_corrupted_version(root: Path, registry: Registry) -> None:
    bad, pointer = champion_with_a_damaged_challenger(root, registry)

    with pytest.raises(ArtifactIntegrityError, match=r"'m\.json' was modified"):
        registry.set_champion("football", "1x2", "neural", bad, "manual promotion")

    assert (market_dir(root) / "champion.json").read_bytes() == pointer
    assert registry.champion("football", "1x2").model_name == "market"  # type: ignore[union-attr]


def test_set_champion_refuses_a_version_with_a_missing_file(root: Path, registry: Registry) -> None:
    version = register(registry, "neural")
    (market_dir(root) / "neural" / version / "m.json").unlink()

    with pytest.raises(ArtifactIntegrityError, match=r"missing \['m\.json'\]"):
        registry.set_champion("football", "1x2", "neural", version, "manual promotion")

    assert not (market_dir(root) / "champion.json").exists()


def test_rollback_refuses_to_restore_a_corrupted_version(root: Path, registry: Registry) -> None:
    first = register(registry, "market")
    second = register(registry, "neural")
    registry.set_champion("football", "1x2", "market", first, "no champion yet")
    registry.set_champion("football", "1x2", "neural", second, "manual promotion")
    pointer = (market_dir(root) / "champion.json").read_bytes()
    with (market_dir(root) / "market" / first / "m.json").open("ab") as handle:
        handle.write(b"\n")

    with pytest.raises(ArtifactIntegrityError, match=r"'m\.json' was modified"):
        registry.rollback("football", "1x2")

    assert (market_dir(root) / "champion.json").read_bytes() == pointer


def test_cli_promote_of_a_corrupted_version_is_an_error(
    root: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    bad, pointer = champion_with_a_damaged_challenger(root, registry)

    status = main(["registry", "--root", str(root), "promote", "football/1x2/neural", bad])

    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("marketcast: error: ")
    assert "m.json" in err
    assert (market_dir(root) / "champion.json").read_bytes() == pointer


# ---------------------------------------------------------------- 2. unreadable champion.json


def test_unreadable_champion_file_is_a_registry_error_naming_it(
    root: Path, registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    register(registry, "market")
    path = market_dir(root) / "champion.json"
    path.write_text("nonsense")

    with pytest.raises(RegistryError, match="unreadable") as caught:
        registry.champion("football", "1x2")
    assert str(path) in str(caught.value)
    assert "_ChampionFile" not in str(caught.value)

    # listed still, its market's champion marked '?', with the error (exit 2 listed nothing)
    assert main(["registry", "--root", str(root), "list"]) == 1
    err = capsys.readouterr().err
    assert str(path) in err
    assert "_ChampionFile" not in err


# ---------------------------------------------------------------- 3. unreadable decision files


def test_an_unreadable_decision_is_skipped_with_a_warning(
    root: Path, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.save_decision("football", "1x2", decision("elo", START))
    registry.save_decision("football", "1x2", decision("neural", START + timedelta(hours=1)))
    broken = market_dir(root) / "decisions" / "20261121T120000Z_broken.json"
    broken.write_text("nonsense")

    with caplog.at_level(logging.WARNING, logger="marketcast.registry.store"):
        saved = registry.decisions("football", "1x2")

    assert [d.challenger for d in saved] == ["elo", "neural"]
    assert any(str(broken) in record.getMessage() for record in caplog.records)


def test_latest_decision_falls_back_to_the_latest_readable_second(
    root: Path, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    registry.save_decision("football", "1x2", decision("elo", START))
    newest = START + timedelta(hours=1)
    path = registry.save_decision("football", "1x2", decision("neural", newest))
    Path(path).write_text("nonsense")

    with caplog.at_level(logging.WARNING, logger="marketcast.registry.store"):
        latest = registry.latest_decision("football", "1x2")

    assert latest is not None
    assert latest.challenger == "elo"
    assert any(path in record.getMessage() for record in caplog.records)


def test_latest_decision_is_none_when_every_decision_is_unreadable(
    root: Path, registry: Registry
) -> None:
    path = registry.save_decision("football", "1x2", decision("elo", START))
    Path(path).write_text("nonsense")

    assert registry.latest_decision("football", "1x2") is None
    assert registry.decisions("football", "1x2") == []


# ---------------------------------------------------------------- 4. flat rollback reasons


def test_rollback_reasons_stay_flat_over_many_cycles(registry: Registry) -> None:
    elo = register(registry, "elo")
    neural = register(registry, "neural")
    registry.set_champion("football", "1x2", "elo", elo, "no champion yet")
    expected = f"rollback from neural {neural}; elo {elo} restored (its reason: no champion yet)"

    reasons = []
    for _ in range(6):
        registry.set_champion("football", "1x2", "neural", neural, "manual promotion")
        reasons.append(registry.rollback("football", "1x2").reason)

    assert reasons == [expected] * 6
    assert registry.champion("football", "1x2").reason == expected  # type: ignore[union-attr]


def test_rollback_reason_unwraps_the_older_nested_form() -> None:
    nested = (
        "rollback from neural v3 (first promoted 2026-11-21T12:03:00Z: "
        "rollback from neural v2 (first promoted 2026-11-21T12:01:00Z: no champion yet))"
    )
    restored = ChampionRecord(model_name="elo", version="v1", promoted_utc=START, reason=nested)
    current = ChampionRecord(
        model_name="neural", version="v3", promoted_utc=START, reason="manual promotion"
    )

    assert rollback_reason(current, restored) == (
        "rollback from neural v3; elo v1 restored (its reason: no champion yet)"
    )


# ---------------------------------------------------------------- 5. unusable root URLs


@pytest.mark.skipif(importlib.util.find_spec("s3fs") is not None, reason="s3fs is installed")
def test_s3_root_without_s3fs_is_a_registry_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RegistryError, match=r"s3://bucket/x.*s3fs"):
        Registry("s3://bucket/x")

    assert main(["registry", "--root", "s3://bucket/x", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("marketcast: error: ")
    assert "s3fs" in err
    assert "Traceback" not in err


def test_unknown_protocol_is_a_registry_error() -> None:
    with pytest.raises(RegistryError, match=r"nosuchproto://bucket/x.*Protocol not known"):
        Registry("nosuchproto://bucket/x")


# ---------------------------------------------------------------- 6. missing local root


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "football/1x2"],
        ["show", "football/1x2/neural"],
        ["promote", "football/1x2/neural", "20261121T120000Z-0123abcd"],
        ["rollback", "football/1x2"],
    ],
)
def test_cli_on_a_missing_local_root_is_an_error(
    tmp_path: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nonexistent" / "dir"

    assert main(["registry", "--root", str(missing), *command]) == 2

    assert f"registry {missing} does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_cli_lists_an_existing_empty_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["registry", "--root", str(tmp_path), "list"]) == 0
    out = capsys.readouterr().out
    assert "vertical" in out  # the table's header, with no rows
    assert "football" not in out


def test_a_missing_local_root_can_still_be_opened_and_registered_into(root: Path) -> None:
    registry = Registry(str(root))
    assert not root.exists()
    version = register(registry, "market")
    assert registry.versions("football", "1x2", "market") == [version]


def test_an_unreadable_manifest_is_a_damaged_version_naming_the_file(
    root: Path, registry: Registry
) -> None:
    """Promoting onto it answered 422 with pydantic's raw dump of the file's bytes."""
    version = register(registry, "elo")
    manifest = market_dir(root) / "elo" / version / "manifest.json"
    manifest.write_text(manifest.read_text()[:40])
    with pytest.raises(ArtifactIntegrityError, match=f"manifest {manifest} is unreadable") as info:
        registry.set_champion("football", "1x2", "elo", version, "manual promotion")
    assert "input_value" not in str(info.value)


def _move_whose_delete_fails(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    """An object store's move: copy, then delete the source; here the delete fails."""
    fs = registry._fs

    def mv(source: str, target: str, **kwargs: object) -> None:
        fs.copy(source, target)
        raise OSError(5, "delete failed (throttled)")

    monkeypatch.setattr(fs, "mv", mv)


def test_a_pointer_written_whose_temporary_could_not_be_removed_counts_as_moved(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from marketcast.registry import PromotionRule, promote_if_better

    registry = Registry(f"memory://robust-{uuid.uuid4().hex}", clock=StepClock(START))
    market = register(registry, "market")
    registry.set_champion("football", "1x2", "market", market, "no champion yet")
    elo = register(registry, "elo")
    _move_whose_delete_fails(registry, monkeypatch)
    losses = 1.0 + np.random.default_rng(0).normal(0, 0.1, 400)

    with caplog.at_level("WARNING", logger="marketcast.registry.store"):
        decision = promote_if_better(
            registry,
            "football",
            "1x2",
            ("elo", elo),
            losses,
            losses - 0.05,
            PromotionRule(),
            champion=("market", market),
        )  # was: the OSError, with the pointer moved and the decision never saved
    assert decision.promote
    assert registry.champion("football", "1x2").model_name == "elo"
    assert registry.decisions("football", "1x2") == [decision]
    assert "could not remove its temporary" in caplog.text
    monkeypatch.undo()
    [left] = Registry(registry.root).leftovers(older_than=timedelta(0))  # on the real clock
    assert left.rsplit("/", 1)[-1].startswith(".champion.json.")  # for `registry clean`


def test_a_pointer_whose_copy_failed_is_still_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry(f"memory://robust-{uuid.uuid4().hex}", clock=StepClock(START))
    market = register(registry, "market")
    registry.set_champion("football", "1x2", "market", market, "no champion yet")
    elo = register(registry, "elo")

    def mv(source: str, target: str, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(registry._fs, "mv", mv)
    with pytest.raises(OSError, match="No space left"):
        registry.set_champion("football", "1x2", "elo", elo, "by hand")
    monkeypatch.undo()
    assert registry.champion("football", "1x2").model_name == "market"
