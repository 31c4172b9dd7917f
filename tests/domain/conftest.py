"""Fixtures of the domain's tests: the example catalog, a parser of it, the XDM corpus."""

import pytest

from domain.catalog import Catalog
from domain.parsing import RecordParser
from domain.schemas import SchemaRegistry
from helpers.examples import EXAMPLE_CATALOG
from helpers.xdm_corpus import CORPUS, DANGLING


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load(str(EXAMPLE_CATALOG))


@pytest.fixture(scope="module")
def parser(catalog):
    return RecordParser(catalog)


@pytest.fixture(scope="session")
def corpus():
    """The project's copy of Adobe's XDM corpus (tests/data/xdm): never skipped."""
    if not (CORPUS / "schemas").is_dir() or not (CORPUS / "components").is_dir():
        pytest.fail(
            f"the XDM corpus is not at {CORPUS}: it is part of the repository", pytrace=False
        )
    return CORPUS


@pytest.fixture(scope="session")
def xdm_registry(corpus):
    """The corpus's schemas but the one whose $ref leads outside it."""
    return SchemaRegistry.load([f"{corpus}/**.schema.json"], exclude={DANGLING})
