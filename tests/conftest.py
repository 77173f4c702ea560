"""Suite-wide options: ``--soak-long`` runs the soak and fault tests in their long form."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-long",
        action="store_true",
        default=False,
        help="run soak tests in their long form (1000 sensors for 10 minutes)",
    )


@pytest.fixture
def soak_long(request: pytest.FixtureRequest) -> bool:
    """True when the long form of the soak tests was asked for."""
    return bool(request.config.getoption("--soak-long"))
