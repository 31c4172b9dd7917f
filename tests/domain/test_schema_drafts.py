"""domain/schema_drafts.py: each schema read with its own `$schema`, and the formats both
validators assert."""

import jsonschema
import pytest
import referencing.jsonschema

from domain.schema_drafts import (
    CHECKED_FORMATS,
    DEFAULT_DRAFT,
    FORMAT_CHECKER,
    resource,
    validator_class,
)
from helpers.schema_sets import DRAFTS

VALIDATORS = {
    "draft-04": jsonschema.Draft4Validator,
    "draft-06": jsonschema.Draft6Validator,
    "draft-07": jsonschema.Draft7Validator,
    "2019-09": jsonschema.Draft201909Validator,
    "2020-12": jsonschema.Draft202012Validator,
}


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_a_schema_is_validated_under_its_own_draft(draft):
    schema = {"$schema": DRAFTS[draft]}
    assert validator_class(schema) is VALIDATORS[draft]
    # the draft's own keyword names the schema for $ref: `id` in draft-04, `$id` after
    id_keyword = "id" if draft == "draft-04" else "$id"
    assert resource({**schema, id_keyword: "https://x/a"}).id() == "https://x/a"
    other = "$id" if draft == "draft-04" else "id"
    assert resource({**schema, other: "https://x/a"}).id() is None


def test_a_schema_without_a_draft_is_2020_12():
    assert validator_class({"type": "object"}) is jsonschema.Draft202012Validator
    assert DEFAULT_DRAFT is referencing.jsonschema.DRAFT202012
    assert resource({"$id": "https://x/a"}).id() == "https://x/a"
    assert resource({"id": "https://x/a"}).id() is None


def test_an_unknown_draft_is_refused():
    with pytest.raises(referencing.jsonschema.UnknownDialect):
        validator_class({"$schema": "https://example.com/my-draft"})


def test_only_date_time_and_date_are_checked():
    assert CHECKED_FORMATS == ("date-time", "date")
    assert set(FORMAT_CHECKER.checkers) == set(CHECKED_FORMATS)
    assert not FORMAT_CHECKER.conforms("2026-02-30", "date")
    assert not FORMAT_CHECKER.conforms("2026-11-30T12:00:00", "date-time")  # no offset
    assert FORMAT_CHECKER.conforms("2026-11-30T12:00:00Z", "date-time")
    assert FORMAT_CHECKER.conforms("not an email", "email")  # an annotation only
