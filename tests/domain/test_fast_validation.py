"""domain/fast_validation.py: the fast validator (jsonschema-rs) against the reference
(python-jsonschema).

The record parser accepts a record when the fast validator says valid, and asks the
reference otherwise (domain/parsing.py). So the one property that matters is
"fast-valid => reference-valid"; these tests check it, and that the two also agree the
other way, on the project's schemas and on Adobe's XDM corpus: every example record, and
mutations of each made systematically at every path of it (helpers/mutations.py),
Hypothesis's near-valid records, and ingest.dev.generate's stream. The parser's outcomes with
and without the fast path: tests/domain/test_parsing.py.

The only disagreements allowed are the fast path's known refusals, where it declines and
the reference decides: numbers that are not finite (NaN, Infinity) and lone surrogates.

The timing of the fast path is a benchmark: python -m benchmarks.validation_cost.
"""

import collections
import dataclasses
import json
import logging
import math
import re

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain.catalog import Catalog, Dataset
from domain.fast_validation import FAST_FORMATS, _rust_regex
from domain.parsing import RecordParser
from domain.records import RecordError
from domain.schema_drafts import CHECKED_FORMATS
from domain.schemas import SchemaRegistry
from helpers.examples import EXAMPLES, example_entities, generated_messages
from helpers.mutations import (
    DATE_TIMES,
    DATES,
    TRICKY_KEYS,
    Mutation,
    mutations,
    nodes,
    removed,
    replaced,
    value_at,
)
from helpers.schema_sets import DRAFTS, registry_of
from helpers.xdm_corpus import DANGLING, examples_with_their_schema

# Mutation kinds where the fast path declines by design and the reference decides.
DECLINED_BY_DESIGN = {"not_finite", "lone_surrogate"}


@dataclasses.dataclass
class Tally:
    """Verdicts of both validators over many instances."""

    both_valid: int = 0
    both_invalid: int = 0
    unsafe: list = dataclasses.field(default_factory=list)  # fast valid, reference not
    declined: list = dataclasses.field(default_factory=list)  # fast not, reference valid
    kinds: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def add(self, schema_id, mutation, fast_valid, reference_valid):
        self.kinds[mutation.kind] += 1
        if fast_valid and reference_valid:
            self.both_valid += 1
        elif not fast_valid and not reference_valid:
            self.both_invalid += 1
        elif fast_valid:
            self.unsafe.append((schema_id, mutation.what))
        else:
            self.declined.append((schema_id, mutation.what, mutation.kind))

    @property
    def total(self):
        return self.both_valid + self.both_invalid + len(self.unsafe) + len(self.declined)

    def report(self, name):
        print(
            f"\n{name}: {self.total} instances: {self.both_valid} valid for both, "
            f"{self.both_invalid} invalid for both, {len(self.unsafe)} fast-valid but "
            f"reference-invalid, {len(self.declined)} fast-declined but reference-valid "
            f"({collections.Counter(kind for *_, kind in self.declined)}); "
            f"mutations by kind: {dict(self.kinds)}"
        )

    def assert_agreement(self):
        assert self.unsafe == []
        assert [d for d in self.declined if d[2] not in DECLINED_BY_DESIGN] == []


def compare(tally, registry, schema_id, cases):
    fast, reference = registry.fast_validator(schema_id), registry.validator(schema_id)
    assert fast is not None, f"{schema_id} has no fast validator"
    for mutation in cases:
        tally.add(
            schema_id,
            mutation,
            fast.is_valid(mutation.instance),
            reference.is_valid(mutation.instance),
        )


# ---------------------------------------------------------------------------
# the project's schemas and records


def test_every_project_schema_and_the_whole_xdm_corpus_have_a_fast_validator(catalog, corpus):
    assert all(catalog.registry.fast_validator(s) is not None for s in catalog.registry.schemas)
    xdm = SchemaRegistry.load([f"{corpus}/**.schema.json"], exclude={DANGLING})
    assert sum(xdm.fast_validator(s) is not None for s in xdm.schemas) == len(xdm.schemas) == 499


def test_project_examples_and_their_mutations_get_the_same_verdicts(catalog):
    tally = Tally()
    for schema_id, entity in example_entities(catalog):
        compare(
            tally,
            catalog.registry,
            schema_id,
            [Mutation("the example", "example", entity), *mutations(entity)],
        )
    tally.report("project schemas, examples/ and their mutations")
    assert tally.both_valid >= 21 and tally.both_invalid >= 5000
    assert tally.kinds["date"] >= 500 and tally.kinds["not_finite"] > 0
    tally.assert_agreement()


def test_generated_records_and_their_mutations_get_the_same_verdicts(catalog):
    tally = Tally()
    for number, (payload, _attributes) in enumerate(generated_messages(3000, seed=11)):
        try:
            document = json.loads(payload)
            entity = document["body"]["xdmEntity"]
            schema_id = catalog.datasets[document["header"]["datasetId"]].schema_id
        except (ValueError, KeyError, TypeError):
            continue  # not JSON, not an envelope, not a dataset: no schema to compare under
        compare(
            tally, catalog.registry, schema_id, [Mutation(f"message {number}", "generated", entity)]
        )
        if number < 150:
            compare(tally, catalog.registry, schema_id, mutations(entity, thorough=False))
    tally.report("ingest.dev.generate records (3000) and mutations of 150")
    assert tally.both_valid >= 2800 and tally.both_invalid >= 1000
    tally.assert_agreement()


# Near-valid records: a valid record with one to three Hypothesis-chosen changes at paths
# of it. Numbers are finite and text has no lone surrogates (the fast path declines those
# by design; see the tests above), so the verdicts must be equal.
finite_numbers = (
    st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
)
tricky_text = st.text(
    alphabet=st.sampled_from("aZ09_-:./@ \n\r\x1c\u2028\u0301é٣"), max_size=8
) | st.text(max_size=8)
date_like = (
    st.text(alphabet=st.sampled_from("0123456789-:TtZz+. \n"), min_size=8, max_size=26)
    | st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat())
    | st.dates().map(lambda d: d.isoformat())
)
json_values = st.recursive(
    st.none() | st.booleans() | finite_numbers | tricky_text | date_like,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(tricky_text, children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def near_valid(draw, bases):
    schema_id, instance = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(1, 3))):
        paths = [path for path, _ in nodes(instance)]
        path = paths[draw(st.integers(0, len(paths) - 1))]
        value = value_at(instance, path)
        change = draw(st.sampled_from(["replace", "remove", "add", "edit", "edit", "same_type"]))
        if change == "same_type" and isinstance(value, str):
            instance = replaced(instance, path, draw(tricky_text | date_like))
        elif change == "same_type" and isinstance(value, bool):
            instance = replaced(instance, path, not value)
        elif change == "same_type" and isinstance(value, (int, float)):
            instance = replaced(instance, path, draw(finite_numbers))
        elif change == "remove" and path:
            instance = removed(instance, path)
        elif change == "add" and isinstance(value, dict):
            key = draw(st.sampled_from(TRICKY_KEYS) | tricky_text)
            instance = replaced(instance, path, {**value, key: draw(json_values)})
        elif change == "edit" and isinstance(value, str):
            edited = draw(
                st.sampled_from([value + "\n", value[:-1], value.upper(), value + "é"]) | date_like
            )
            instance = replaced(instance, path, edited)
        elif change == "edit" and isinstance(value, (int, float)) and not isinstance(value, bool):
            change = draw(finite_numbers | st.sampled_from([0.5, -1]))
            instance = replaced(instance, path, value + change)
        else:
            instance = replaced(instance, path, draw(json_values))
    return schema_id, instance


@pytest.fixture(scope="module")
def project_bases(catalog):
    bases = example_entities(catalog)
    for payload, _ in generated_messages(300, seed=5):
        try:
            document = json.loads(payload)
            schema_id = catalog.datasets[document["header"]["datasetId"]].schema_id
            entity = document["body"]["xdmEntity"]
        except (ValueError, KeyError, TypeError):
            continue
        if catalog.registry.validator(schema_id).is_valid(entity):
            bases.append((schema_id, entity))
    return bases


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_near_valid_records_get_the_same_verdict(catalog, project_bases, data):
    schema_id, instance = data.draw(near_valid(project_bases))
    fast = catalog.registry.fast_validator(schema_id)
    reference = catalog.registry.validator(schema_id)
    verdict = reference.is_valid(instance)
    event(f"reference-valid: {verdict}")
    assert fast.is_valid(instance) == verdict, instance


# ---------------------------------------------------------------------------
# the XDM corpus

XDM_MUTATIONS_PER_EXAMPLE = 80  # of up to 3,000: evenly spaced along the example's paths


def test_xdm_examples_and_their_mutations_get_the_same_verdicts(corpus):
    registry = SchemaRegistry.load([f"{corpus}/**.schema.json"], exclude={DANGLING})
    tally = Tally()
    pairs = examples_with_their_schema(corpus, registry)
    assert len(pairs) >= 590
    for example, schema_id in pairs:
        instance = json.loads(example.read_text())
        cases = list(mutations(instance, thorough=False))
        stride = max(1, math.ceil(len(cases) / XDM_MUTATIONS_PER_EXAMPLE))  # the reference's time
        compare(
            tally,
            registry,
            schema_id,
            [Mutation(example.name, "example", instance), *cases[::stride]],
        )
    tally.report(f"XDM corpus, {len(pairs)} examples and their mutations")
    assert tally.both_valid >= 590 and tally.both_invalid >= 10000
    tally.assert_agreement()


# ---------------------------------------------------------------------------
# keywords where jsonschema-rs on its own differs from the reference


KEYWORD_CASES = [  # (schema, instance): each a place where jsonschema-rs alone differs
    ({"pattern": r"^[^\s]+$"}, "\x1c"),  # \s: Python's includes \x1c, ECMA's does not
    ({"pattern": r"^[^\s]+$"}, "\ufeff"),
    ({"pattern": r"\w+/x"}, "é/x"),  # \w: Unicode in Python, ASCII in ECMA
    ({"pattern": r"^[A-Z]{3}$"}, "ABC\n"),  # Python's $ matches before a final newline
    ({"pattern": r"^a.b$"}, "a\rb"),  # ECMA's . refuses \r
    ({"multipleOf": 0.01}, 0.07),  # float arithmetic
    ({"multipleOf": 0.1}, 1.7976931348623157e308),
    ({"multipleOf": 9007199254740992.0}, 9007199254740993),
    ({"patternProperties": {"^xdm:.*$": {"type": "integer"}}}, {"xdm:a\n": "text"}),
    ({"patternProperties": {"^xdm:.*$": {"type": "integer"}}}, {"xdm:a\r": "text"}),
    ({"patternProperties": {".+_.+": {"type": "integer"}}}, {"\r_x": "text"}),
    (
        {"patternProperties": {".+_.+": {"type": "integer"}}, "additionalProperties": False},
        {"\u2028_x": 1},
    ),
    ({"not": {"pattern": r"^[^\s]+$"}}, "\x1c"),
    ({"oneOf": [{"format": "email"}, {"type": "string"}]}, "not an email"),
    ({"format": "date"}, "2026-02-30"),
    ({"format": "date-time"}, "2026-11-30T12:00:00"),
    ({"format": "uri"}, "not a uri"),
]


@pytest.mark.parametrize("draft", ["draft-06", "draft-07", "2020-12"])
@pytest.mark.parametrize("schema, instance", KEYWORD_CASES)
def test_where_jsonschema_rs_alone_differs_the_fast_validator_does_not(draft, schema, instance):
    schema = {"$schema": DRAFTS[draft], "$id": "https://x/s", **schema}
    registry = registry_of(schema)
    fast = registry.fast_validator("https://x/s")
    assert fast is not None
    assert fast.is_valid(instance) == registry.validator("https://x/s").is_valid(instance)


@st.composite
def one_keyword_schemas(draw):
    keyword = draw(
        st.sampled_from(
            [
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "multipleOf",
                "const",
                "enum",
                "uniqueItems",
                "maxLength",
                "minItems",
                "type",
            ]
        )
    )
    value = {
        "multipleOf": finite_numbers.filter(lambda n: n > 0),
        "const": json_values,
        "enum": st.lists(json_values, min_size=1, max_size=4),
        "uniqueItems": st.just(True),
        "maxLength": st.integers(0, 5),
        "minItems": st.integers(0, 3),
        "type": st.sampled_from(["integer", "number", "string", "null", "array", "object"]),
    }.get(keyword, finite_numbers)
    return {
        "$schema": DRAFTS[draw(st.sampled_from(["draft-06", "draft-07", "2020-12"]))],
        "$id": "https://x/s",
        keyword: draw(value),
    }


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    schema=one_keyword_schemas(),
    instance=json_values | finite_numbers | st.lists(finite_numbers | st.booleans(), max_size=4),
)
def test_single_keywords_get_the_same_verdict_on_any_value(schema, instance):
    registry = registry_of(schema)
    fast = registry.fast_validator("https://x/s").is_valid(instance)
    try:
        reference = registry.validator("https://x/s").is_valid(instance)
    except OverflowError:  # the reference's multipleOf on a huge integer: it fails the record
        assert not fast
        return
    event(f"{list(schema)[-1]}: {reference}")
    assert fast == reference


@pytest.mark.parametrize("draft", ["draft-06", "draft-07"])
def test_content_keywords_are_annotations_as_in_the_reference(draft):
    schema = {
        "$schema": DRAFTS[draft],
        "$id": "https://x/s",
        "not": {"contentMediaType": "application/json", "contentEncoding": "base64"},
    }
    assert jsonschema_rs.validator_for(schema).is_valid("{not json")  # alone, it asserts them
    registry = registry_of(schema)
    assert registry.fast_validator("https://x/s").is_valid("{not json") is False
    assert registry.validator("https://x/s").is_valid("{not json") is False


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_that_are_not_finite_are_never_fast_valid(value):
    # Alone, jsonschema-rs takes -inf for valid under a minimum of 0: its numbers are finite
    schema = {"$id": "https://x/s", "minimum": 0, "maximum": 0, "not": {"type": "number"}}
    assert jsonschema_rs.validator_for(schema).is_valid(-math.inf)
    fast = registry_of(schema).fast_validator("https://x/s")
    assert fast.is_valid(value) is False and fast.is_valid({"a": [value]}) is False
    assert fast.is_valid({"a": [value]}, numbers_finite=True) is True  # the caller's word


def test_a_lone_surrogate_is_not_fast_valid_and_does_not_raise():
    fast = registry_of({"$id": "https://x/s", "type": "string"}).fast_validator("https://x/s")
    assert fast.is_valid("\ud800") is False and fast.is_valid("ok") is True


@pytest.mark.parametrize("draft", sorted(DRAFTS))
def test_only_date_time_and_date_are_asserted_of_all_formats(draft):
    names = (
        set(FAST_FORMATS)
        | set(jsonschema.FormatChecker().checkers)
        | {
            "ipv4",
            "ipv6",
            "email",
            "uri",
            "url",
            "uuid",
            "regex",
            "time",
            "duration",
            "hostname",
            "json-pointer",
            "uri-template",
            "some-format-nobody-knows",
        }
    )
    for name in sorted(names):
        schema = {"$schema": DRAFTS[draft], "$id": "https://x/s", "format": name}
        registry = registry_of(schema)
        fast, reference = registry.fast_validator("https://x/s"), registry.validator("https://x/s")
        for value in ["\x00 :: not valid [ at all ###", "", "2026-11-30T12:00:00Z", "2026-11-30"]:
            if name in CHECKED_FORMATS:
                assert fast.is_valid(value) == reference.is_valid(value), (name, value)
            else:
                assert fast.is_valid(value) and reference.is_valid(value), (name, value)
    for name, values in (("date-time", DATE_TIMES), ("date", DATES)):
        registry = registry_of({"$schema": DRAFTS[draft], "$id": "https://x/s", "format": name})
        fast, reference = registry.fast_validator("https://x/s"), registry.validator("https://x/s")
        assert [fast.is_valid(v) for v in values] == [reference.is_valid(v) for v in values]
        assert any(reference.is_valid(v) for v in values)
        assert not all(reference.is_valid(v) for v in values)


PATTERN_PROPERTY_REGEXES = [
    ".+://.+",
    "^xdm:.*$",
    ".+_.+",
    "@.*",
    "^a.b$",
    "^(ab|c)+$",
    "x$|^y",
    "[^a-c]+_.?$",
    "a{2,3}?b",
    r"\.\$",
    "^[0-9]{1,3}?$",
    "(?:a|b)*$",
    "^$",
    "$a",
]
PATTERN_PROPERTY_REFUSED = [
    r"\w+",
    r"\s",
    r"\d",
    r"\bx",
    "(?i)a",
    "(?=a)",
    r"(a)\1",
    "a{,3}",
    "a++",
    "[[:alpha:]]",
    "[]a]",
    "[a&&b]",
    r"\Z",
    "a{x}",
]


@settings(max_examples=400, deadline=None)
@given(key=st.text(alphabet=st.sampled_from("abcxyd_:./@$\n\r\u2028\u2029é0129"), max_size=8))
def test_rewritten_pattern_property_regexes_match_where_python_does(key):
    for regex in PATTERN_PROPERTY_REGEXES:
        rewritten = _rust_regex(regex)
        assert rewritten is not None, regex
        rust = jsonschema_rs.validator_for({"patternProperties": {rewritten: False}})
        assert (not rust.is_valid({key: 1})) == bool(re.search(regex, key)), (regex, rewritten)


def test_the_corpus_pattern_property_regexes_are_all_rewritten(corpus):
    regexes = set()
    for path in list(corpus.rglob("*.schema.json")) + list(EXAMPLES.glob("schemas/*.json")):
        for _, node in nodes(json.loads(path.read_text())):
            if isinstance(node, dict) and isinstance(node.get("patternProperties"), dict):
                regexes.update(node["patternProperties"])
    assert len(regexes) >= 40 and all(_rust_regex(regex) for regex in regexes)
    for regex in PATTERN_PROPERTY_REFUSED:
        assert _rust_regex(regex) is None, regex


# ---------------------------------------------------------------------------
# falling back to the reference, schema by schema


def test_a_schema_reaching_a_regex_beyond_the_fast_path_goes_to_the_reference(caplog):
    registry = registry_of(
        {"$id": "https://x/a", "properties": {"b": {"$ref": "https://x/b#/$defs/words"}}},
        {
            "$id": "https://x/b",
            "$defs": {"words": {"patternProperties": {r"^\w+$": {"type": "integer"}}}},
        },
        {"$id": "https://x/c", "type": "object"},
    )
    with caplog.at_level(logging.WARNING, logger="domain.schemas"):
        assert registry.fast_validator("https://x/a") is None
        assert registry.fast_validator("https://x/a") is None
        assert registry.fast_validator("https://x/c") is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        "schema https://x/a: validated by the reference validator "
        "only, as https://x/b: patternProperties regex"
    )


def test_a_schema_jsonschema_rs_cannot_compile_goes_to_the_reference(caplog):
    # A $ref into a patternProperties entry: its regex is rewritten for jsonschema-rs, so
    # the pointer no longer leads anywhere there.
    schema = {
        "$id": "https://x/s",
        "type": "object",
        "required": ["n"],
        "properties": {"n": {"$ref": "#/patternProperties/n.m"}},
        "patternProperties": {"n.m": {"type": "string", "pattern": "^[0-9]+$"}},
    }
    catalog = Catalog(
        datasets={"d": Dataset("d", "https://x/s", "event", False)}, registry=registry_of(schema)
    )
    with caplog.at_level(logging.WARNING, logger="domain.schemas"):
        parser = RecordParser(catalog)
        RecordParser(catalog)
    assert parser.fast_validators == {"d": None}
    assert [r.getMessage() for r in caplog.records] == [
        "schema https://x/s: validated by the reference validator only, as jsonschema-rs "
        "cannot compile it: Pointer '/patternProperties/n.m' does not exist"
    ]
    assert parser.parse(b'{"n": "12", "timestamp": "2026-11-30T12:00:00Z"}', {"dataset": "d"})
    with pytest.raises(RecordError, match="does not match"):
        parser.parse(b'{"n": "1x"}', {"dataset": "d"})


def test_refs_reach_across_drafts_on_the_fast_path_too(tmp_path):
    address = {
        "$schema": DRAFTS["draft-07"],
        "$id": "https://x/address",
        "type": "object",
        "properties": {"zip": {"type": "string"}},
        "dependencies": {"zip": ["city"]},
    }
    person = {
        "$schema": DRAFTS["2020-12"],
        "$id": "https://x/person",
        "type": "object",
        "properties": {"home": {"$ref": "https://x/address"}},
        "dependentRequired": {"name": ["email"]},
    }
    fast = registry_of(address, person).fast_validator("https://x/person")
    assert fast.is_valid({"home": {"zip": "1", "city": "c"}})
    assert not fast.is_valid({"home": {"zip": "1"}})
    assert not fast.is_valid({"name": "n"})
