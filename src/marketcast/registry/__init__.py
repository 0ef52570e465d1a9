"""Model registry: artifact store, manifests, champion/challenger promotion and rollback."""

from __future__ import annotations

from marketcast.registry.manifest import (
    DEFAULT_PACKAGES,
    ArtifactIntegrityError,
    FileEntry,
    Manifest,
    TrainingWindow,
    build_manifest,
    canonical_json,
    file_entries,
    git_sha,
    package_versions,
    sha256_bytes,
    sha256_json,
    validate_file_name,
    validate_name,
    validate_version,
    verify_files,
)
from marketcast.registry.promotion import (
    PromotionDecision,
    PromotionRule,
    decide_among,
    decide_promotion,
    promote_if_better,
)
from marketcast.registry.store import (
    ChampionChangedError,
    ChampionLockTimeoutError,
    ChampionRecord,
    ModelNotFoundError,
    Registry,
    RegistryError,
    manifest_summary,
)

__all__ = [
    "DEFAULT_PACKAGES",
    "ArtifactIntegrityError",
    "ChampionChangedError",
    "ChampionLockTimeoutError",
    "ChampionRecord",
    "FileEntry",
    "Manifest",
    "ModelNotFoundError",
    "PromotionDecision",
    "PromotionRule",
    "Registry",
    "RegistryError",
    "TrainingWindow",
    "build_manifest",
    "canonical_json",
    "decide_among",
    "decide_promotion",
    "file_entries",
    "git_sha",
    "manifest_summary",
    "package_versions",
    "promote_if_better",
    "sha256_bytes",
    "sha256_json",
    "validate_file_name",
    "validate_name",
    "validate_version",
    "verify_files",
]
