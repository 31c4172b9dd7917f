"""domain/schemas.py and domain/schema_drafts.py: the limits checked before a schema, and a
reference validator that stops at the errors reported, with python-jsonschema's verdicts."""

import time

import jsonschema
import pytest

from domain.parsing import MAX_ERRORS_PER_RECORD
from domain.schema_drafts import ValidationLimits
from domain.schemas import MAX_ERRORS, SchemaRegistry

DRAFTS = {
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}


def registry_of(schema, limits=ValidationLimits(), draft="2020-12"):
    return SchemaRegistry(
        {"https://x/s": {"$schema": DRAFTS[draft], "$id": "https://x/s", **schema}}, limits
    )


def test_the_errors_computed_are_those_the_dead_letter_reports():
    assert MAX_ERRORS == MAX_ERRORS_PER_RECORD


@pytest.mark.parametrize(
    "instance, path, keyword",
    [
        ({"a": {"b": [0] * 4}}, ["a", "b"], "max_array_items"),
        ([{}, {"x": {"1": 1, "2": 2, "3": 3}}], [1, "x"], "max_object_properties"),
        ({"1": 1, "2": 2, "3": 3}, [], "max_object_properties"),
        ({"first": [0] * 4, "second": [0] * 5}, ["first"], "max_array_items"),
    ],
)
def test_an_instance_beyond_the_limits_gets_one_error_at_its_container(instance, path, keyword):
    registry = registry_of(
        {"type": "object"} if isinstance(instance, dict) else {}, ValidationLimits(3, 2)
    )
    assert registry.fast_validator("https://x/s").is_valid(instance) is False
    errors = list(registry.validator("https://x/s").iter_errors(instance))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(path, keyword)]
    assert "more than the limit of" in errors[0].message


def test_within_the_limits_both_validators_say_what_the_schema_says():
    registry = registry_of({"items": {"type": "string"}}, ValidationLimits(3, 2))
    assert registry.validator("https://x/s").is_valid(["a", "b", "c"])
    assert registry.fast_validator("https://x/s").is_valid(["a", "b", "c"])
    assert not registry.validator("https://x/s").is_valid(["a", 1])


def test_the_reference_stops_after_the_errors_it_reports():
    registry = registry_of({"items": {"type": "string"}})
    instance = list(range(9_000))
    errors = list(registry.validator("https://x/s").iter_errors(instance))
    assert [list(e.absolute_path) for e in errors] == [[0], [1], [2], [3], [4]]
    assert len(list(registry.validator("https://x/s", max_errors=7).iter_errors(instance))) == 7
    assert (
        len(list(registry.validator("https://x/s", max_errors=None).iter_errors(instance))) == 9_000
    )


@pytest.mark.parametrize("keyword", ["anyOf", "oneOf"])
def test_an_any_of_or_one_of_keeps_a_few_errors_of_each_failing_subschema(keyword):
    schema = {keyword: [{"items": {"type": "string"}}, {"items": {"type": "boolean"}}]}
    registry = registry_of(schema)
    [error] = registry.validator("https://x/s").iter_errors(list(range(9_000)))
    assert error.validator == keyword and len(error.context) == 10
    plain = jsonschema.Draft202012Validator(schema)
    assert error.message == next(plain.iter_errors(list(range(9_000)))).message


@pytest.mark.parametrize("draft", sorted(DRAFTS))
@pytest.mark.parametrize(
    "schema",
    [
        {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        {"oneOf": [{"type": "integer"}, {"minimum": 0}]},
        {"oneOf": [{"type": "integer"}, {"type": "string"}, {"maxLength": 2}]},
        {"uniqueItems": True},
        {"items": {"uniqueItems": True}},
    ],
)
def test_the_bounded_keywords_give_python_jsonschemas_verdicts_and_messages(draft, schema):
    registry = registry_of(schema, draft=draft)
    plain = jsonschema.validators.validator_for({"$schema": DRAFTS[draft]})(schema)
    instances = [
        1,
        -1,
        1.5,
        "ab",
        "abc",
        True,
        None,
        [],
        [1, 1.0],
        [1, True],
        [0, False],
        [True, True],
        [None, None],
        ["1", 1],
        [[1], [True]],
        [[1], [1.0]],
        [{"a": 1, "b": 2}, {"b": 2, "a": 1}],
        [{"a": 1}, {"a": True}],
        [{"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]}],
        [{"a": 1}, {"a": 1, "b": 1}],
        [[], {}],
        [[[1, 2]], [[2, 1]]],
        [1, 2, 3],
        [float("nan"), float("nan")],
    ]
    for instance in instances:
        ours = [
            e.message
            for e in registry.validator("https://x/s", max_errors=None).iter_errors(instance)
        ]
        theirs = [e.message for e in plain.iter_errors(instance)]
        assert ours == theirs, instance


def test_unique_items_costs_linear_time_on_objects():
    registry = registry_of({"uniqueItems": True})
    instance = [{"id": i, "tags": [str(i)]} for i in range(10_000)]
    started = time.process_time()
    assert registry.validator("https://x/s").is_valid(instance)
    assert not registry.validator("https://x/s").is_valid(instance + [{"tags": ["3"], "id": 3}])
    assert time.process_time() - started < 2  # pairwise comparison: about 10^8 comparisons
