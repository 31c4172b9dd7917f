"""Fixtures of the transforms' tests: the example catalog (the emulators: tests/conftest.py)."""

import pytest

from domain.catalog import Catalog
from helpers.examples import EXAMPLE_CATALOG


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load(str(EXAMPLE_CATALOG))
