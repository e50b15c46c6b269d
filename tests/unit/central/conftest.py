"""Fixtures for the central's unit tests: the golden institution, its profile, a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from central.institution import InstitutionConfig, parse_institution
from central.profile import CoefficientProfile, load_profile
from central.store import Store
from tests.unit.central.central_helpers import INSTITUTION


@pytest.fixture
def institution() -> InstitutionConfig:
    return parse_institution(INSTITUTION)


@pytest.fixture
def profile() -> CoefficientProfile:
    return load_profile("national")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "central.sqlite"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    try:
        yield s
    finally:
        s.close()
