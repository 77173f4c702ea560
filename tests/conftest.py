"""Suite-wide options: ``--soak-long`` runs the soak and fault tests in their long form,
``--fuzz-long`` the fuzz tests with 100 000 examples instead of 200."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-long",
        action="store_true",
        default=False,
        help="run soak tests in their long form (1000 sensors for 10 minutes)",
    )
    parser.addoption(
        "--fuzz-long",
        action="store_true",
        default=False,
        help="run fuzz tests with 100 000 examples each (200 without)",
    )


@pytest.fixture
def soak_long(request: pytest.FixtureRequest) -> bool:
    """True when the long form of the soak tests was asked for."""
    return bool(request.config.getoption("--soak-long"))


@pytest.fixture
def fuzz_examples(request: pytest.FixtureRequest) -> int:
    """How many examples a fuzz test tries: 200, or 100 000 with ``--fuzz-long``."""
    return 100_000 if request.config.getoption("--fuzz-long") else 200
