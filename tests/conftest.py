"""Root test configuration: the ``--regen-golden`` option and its fixture."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--regen-golden",
        action="store_true",
        default=False,
        help="rewrite golden files from the current code instead of comparing against them",
    )


@pytest.fixture
def regen_golden(request: pytest.FixtureRequest) -> bool:
    """True when pytest runs with ``--regen-golden``."""
    return bool(request.config.getoption("--regen-golden"))
