"""A small crypto registry for the API tests: bundled candles cut short, real exported champions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from marketcast.config import CryptoRunConfig
from marketcast.datasets.bundle import BUNDLED_CRYPTO, read_archive_csvs
from marketcast.orchestration.crypto import (
    fit_final_artifacts,
    pair_groups,
    prepare_crypto,
    prepared_rows_for_export,
)
from marketcast.registry import Registry, build_manifest
from marketcast.serving.crypto import CryptoService, CryptoSettings

PAIRS = ("BTCUSDT", "ETHUSDT", "XRPUSDT", "DOGEUSDT")
BARS_KEPT = 24 * 75  # the last 75 days of the bundle: enough for every 168 h window


class Setup:
    """A candle folder cut from the bundle and a registry with real exported champions."""

    def __init__(self, root: Path) -> None:
        self.candle_dir = root / "candles"
        self.candle_dir.mkdir()
        for name, raw in read_archive_csvs(BUNDLED_CRYPTO):
            if not any(f"{pair}_" in name for pair in PAIRS):
                continue
            header, *lines = raw.decode().splitlines()
            text = "\n".join([header, *lines[-BARS_KEPT:]]) + "\n"
            (self.candle_dir / Path(name).name).write_text(text)
        self.config = CryptoRunConfig(
            pairs=PAIRS,
            horizons=("1h", "1d"),
            group_size=2,
            model_params={"lightgbm": {"n_estimators": 20, "min_child_samples": 50}},
            registry_root=str(root / "registry"),
            runs_dir=str(root / "runs"),
        )
        self.prepared = prepare_crypto(self.config, [str(self.candle_dir)])
        self.registry = Registry(self.config.registry_root)
        self.versions = {
            ("1h", "logistic"): self.export("1h", "logistic"),
            ("1d", "flat"): self.export("1d", "flat"),
        }

    def export(
        self, horizon: str, name: str, gate: dict[str, dict[str, list[str]]] | None = None
    ) -> str:
        """What step 9 does for one champion: fit on every row, register, crown.

        ``gate``: for ``consensus``, the members the regime gate enabled per group and regime.
        """
        rows = prepared_rows_for_export(self.prepared, self.config, horizon)
        groups = pair_groups(self.prepared, self.config.group_size)
        files = fit_final_artifacts(rows, name, groups, self.config, horizon, gate)
        manifest = build_manifest(
            model_name=name,
            vertical="crypto",
            market=horizon,
            config=self.config,
            files=files,
            data_sha256=self.prepared.data_sha256,
            features_sha256="0" * 64,
            training_window={
                "start_utc": self.prepared.data.candles["open_time_utc"].min().to_pydatetime(),
                "end_utc": self.prepared.data.candles["open_time_utc"].max().to_pydatetime(),
                "n_matches": len(self.prepared.data.candles),
            },
            scores={"net_return": 0.01},
            run_id="test",
            git_sha_value="test",
        )
        version = self.registry.register("crypto", horizon, name, files, manifest)
        self.registry.set_champion("crypto", horizon, name, version, "test")
        return version

    def service(self, clock: Any = None) -> CryptoService:
        latest = self.prepared.data.candles["open_time_utc"].max().to_pydatetime()
        # five minutes after the hour the next bar closes, so pushing it is legitimate
        fixed = clock or (lambda: latest + timedelta(hours=2, minutes=5))
        settings = CryptoSettings(candle_paths=(str(self.candle_dir),))
        service = CryptoService(self.registry, settings, clock=fixed)
        service.reload()
        return service
