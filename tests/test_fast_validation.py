"""The fast validator (jsonschema-rs) against the reference (python-jsonschema).

The record parser accepts a record when the fast validator says valid, and asks the
reference otherwise (domain/records.py). So the one property that matters is
"fast-valid => reference-valid"; these tests check it, and that the two also agree the
other way, on the project's schemas and on Adobe's XDM corpus: every example record, and
mutations of each made systematically at every path of it (a wrong type, the field
removed, bad date-times and dates, strings and numbers at the edges, unexpected keys, empty
objects and arrays), Hypothesis's near-valid records, and ingest.generate's stream.

The only disagreements allowed are the fast path's known refusals, where it declines and
the reference decides: numbers that are not finite (NaN, Infinity) and lone surrogates.

The timing of the fast path is a benchmark: python -m benchmarks.validation_cost.
"""
import collections
import dataclasses
import datetime
import json
import logging
import math
import pathlib
import pickle
import re

import jsonschema
import jsonschema_rs
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from test_xdm_corpus import DANGLING, corpus, examples_with_their_schema  # noqa: F401 (fixture)
from domain.catalog import Catalog, Dataset
from domain.records import RecordError
from domain.parsing import RecordParser
from domain.fast_validation import FAST_FORMATS, _rust_regex
from domain.schema_drafts import CHECKED_FORMATS
from domain.schemas import SchemaRegistry

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DRAFTS = {
    "draft-04": "http://json-schema.org/draft-04/schema#",
    "draft-06": "http://json-schema.org/draft-06/schema#",
    "draft-07": "http://json-schema.org/draft-07/schema#",
    "2019-09": "https://json-schema.org/draft/2019-09/schema",
    "2020-12": "https://json-schema.org/draft/2020-12/schema",
}
EXAMPLE_FILES = (("records.jsonl", {}), ("records-bare.jsonl", {"dataset": "web-events"}))
# Mutation kinds where the fast path declines by design and the reference decides.
DECLINED_BY_DESIGN = {"not_finite", "lone_surrogate"}

WRONG_TYPES = ["not-the-declared-type", 12345, 1.5, True, None, ["x"], {"x": 1}]
DATE_TIMES = [
    "2026-11-30T12:00:00Z", "2026-11-30t12:00:00z", "2026-11-30T12:00:00.123456+05:30",
    "2026-11-30T12:00:60Z", "2026-11-30T12:00:00-00:00", "1969-12-31T23:59:59Z",
    "yesterday", "2026-13-01T00:00:00Z", "2026-02-30T12:00:00Z", "2026-11-30T25:00:00Z",
    "2026-11-30T12:00:00", "2026-11-30 12:00:00Z", "2026-11-30T12:00:00+0100",
    "2026-11-30T12:00Z", "2026-11-30T12:00:00Z\n", " 2026-11-30T12:00:00Z", "",
    "2026-11-30", "2026-W48-1T12:00:00Z", "２０２６-11-30T12:00:00Z",
]
DATES = [
    "2026-11-30", "2024-02-29", "2026-02-29", "2026-02-30", "2026-13-01", "2026-11-31",
    "2026-11-30T12:00:00Z", "20261130", "2026-1-30", "2026-11-30\n", "", "0000-01-01",
    "２０２６-11-30", "2026/11/30",
]
EDGE_STRINGS = ["", "\n", "x\n", "\x1c", "\u2028", "é", "\u0301", "ABC", "abc", "A" * 300]
EDGE_NUMBERS = [0, -1, 1, 0.5, -0.5, 1.0, 2 ** 53 + 1, 10 ** 30, -10 ** 30, 1e300, -1e300,
                5e-324, True]
TRICKY_KEYS = ["zz_unexpected", "xdm:zz\n", "xdm:zz\r", "\r_x", "a_b", "@zz", "x://y", "",
               "xdm:zz"]


@dataclasses.dataclass
class Mutation:
    what: str  # e.g. "/person/birthDate = 'yesterday'"
    kind: str
    instance: object


# ---------------------------------------------------------------------------
# mutations, systematic at every path of an example


def nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, path + (index,))


def replaced(instance, path, new):
    """A copy of the instance with the value at path replaced (containers copied along it)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    copy = dict(instance) if isinstance(instance, dict) else list(instance)
    copy[head] = replaced(instance[head], rest, new)
    return copy


def removed(instance, path):
    parent_path, key = path[:-1], path[-1]
    parent = instance
    for step in parent_path:
        parent = parent[step]
    copy = dict(parent) if isinstance(parent, dict) else list(parent)
    del copy[key]
    return replaced(instance, parent_path, copy)


def pointer(path):
    return "".join(f"/{step}" for step in path) or "/"


def mutations(instance, thorough=True):
    """Mutations of the instance at every path. `thorough`: every candidate at every path;
    else a rotating share of the generic ones (the XDM corpus is large), but all of the
    date ones at date-like strings and all keys at objects."""
    turn = 0

    def some(candidates, count):
        nonlocal turn
        if thorough:
            return candidates
        turn += 1
        return [candidates[(turn + i) % len(candidates)] for i in range(count)]

    for path, value in nodes(instance):
        at = pointer(path)
        if path:
            yield Mutation(f"{at} removed", "removed", removed(instance, path))
        wrong = [w for w in WRONG_TYPES if type(w) is not type(value)]
        for candidate in some(wrong, 2):
            yield Mutation(f"{at} = {candidate!r}", "wrong_type",
                           replaced(instance, path, candidate))
        if isinstance(value, str):
            if re.match(r"\d{4}-\d\d-\d\d", value):  # a date or date-time field, likely
                for candidate in DATE_TIMES + DATES:
                    yield Mutation(f"{at} = {candidate!r}", "date",
                                   replaced(instance, path, candidate))
            variants = [value + "\n", "\x1c" + value, value + "\u2028", value.upper(),
                        value.lower(), value + "x", value[:-1], value * 20] + EDGE_STRINGS
            for candidate in some(variants, 4):
                yield Mutation(f"{at} = {candidate[:40]!r}", "string",
                               replaced(instance, path, candidate))
            if thorough:
                yield Mutation(f"{at} = lone surrogate", "lone_surrogate",
                               replaced(instance, path, value + "\ud800"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            variants = [value + 1, value - 1, -value, value + 0.5, value * 1.0] + EDGE_NUMBERS
            for candidate in some(variants, 3):
                yield Mutation(f"{at} = {candidate!r}", "number",
                               replaced(instance, path, candidate))
            if thorough:
                for candidate in (math.nan, math.inf, -math.inf):
                    yield Mutation(f"{at} = {candidate!r}", "not_finite",
                                   replaced(instance, path, candidate))
        elif isinstance(value, dict):
            yield Mutation(f"{at} = {{}}", "empty", replaced(instance, path, {}))
            for key in TRICKY_KEYS:
                for candidate in some([12345, "text", {"x": 1}], 1):
                    yield Mutation(f"{at} + {key!r}: {candidate!r}", "extra_key",
                                   replaced(instance, path, {**value, key: candidate}))
        elif isinstance(value, list):
            yield Mutation(f"{at} = []", "empty", replaced(instance, path, []))
            if value:
                yield Mutation(f"{at} + a copy of its first item", "duplicate",
                               replaced(instance, path, value + value[:1]))
            for candidate in some(WRONG_TYPES, 2):
                yield Mutation(f"{at} + {candidate!r}", "wrong_item",
                               replaced(instance, path, value + [candidate]))


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
        print(f"\n{name}: {self.total} instances: {self.both_valid} valid for both, "
              f"{self.both_invalid} invalid for both, {len(self.unsafe)} fast-valid but "
              f"reference-invalid, {len(self.declined)} fast-declined but reference-valid "
              f"({collections.Counter(kind for *_, kind in self.declined)}); "
              f"mutations by kind: {dict(self.kinds)}")

    def assert_agreement(self):
        assert self.unsafe == []
        assert [d for d in self.declined if d[2] not in DECLINED_BY_DESIGN] == []


def compare(tally, registry, schema_id, cases):
    fast, reference = registry.fast_validator(schema_id), registry.validator(schema_id)
    assert fast is not None, f"{schema_id} has no fast validator"
    for mutation in cases:
        tally.add(schema_id, mutation, fast.is_valid(mutation.instance),
                  reference.is_valid(mutation.instance))


# ---------------------------------------------------------------------------
# the project's schemas and records


@pytest.fixture(scope="module")
def catalog():
    return Catalog.load(str(EXAMPLES / "catalog.yaml"))


def example_entities(catalog):
    """(schema id, entity) of every record in examples/ that the reference accepts."""
    parser = RecordParser(catalog, fast_validation=False)
    entities = []
    for name, attributes in EXAMPLE_FILES:
        for line in (EXAMPLES / name).read_bytes().splitlines():
            try:
                record = parser.parse(line, attributes)
            except RecordError:
                continue
            entities.append((catalog.datasets[record.dataset].schema_id, record.entity))
    return entities


def generated_messages(count, seed):
    from ingest.generate import RecordGenerator
    generator = RecordGenerator(seed=seed, duplicate_share=0, clock=lambda: PUBLISH_TIME)
    return [(m.payload, {"dataset": m.dataset}) for m in generator.messages(count)]


def test_every_project_schema_and_the_whole_xdm_corpus_have_a_fast_validator(catalog, corpus):
    assert all(catalog.registry.fast_validator(s) is not None for s in catalog.registry.schemas)
    xdm = SchemaRegistry.load([f"{corpus}/**.schema.json"], exclude={DANGLING})
    assert sum(xdm.fast_validator(s) is not None for s in xdm.schemas) == len(xdm.schemas) == 499


def test_project_examples_and_their_mutations_get_the_same_verdicts(catalog):
    tally = Tally()
    for schema_id, entity in example_entities(catalog):
        compare(tally, catalog.registry, schema_id,
                [Mutation("the example", "example", entity), *mutations(entity)])
    tally.report("project schemas, examples/ and their mutations")
    assert tally.both_valid >= 21 and tally.both_invalid >= 5000
    assert tally.kinds["date"] >= 500 and tally.kinds["not_finite"] > 0
    tally.assert_agreement()


def test_generated_records_and_their_mutations_get_the_same_verdicts(catalog):
    tally = Tally()
    for number, (payload, attributes) in enumerate(generated_messages(3000, seed=11)):
        try:
            document = json.loads(payload)
            entity = document["body"]["xdmEntity"]
            schema_id = catalog.datasets[document["header"]["datasetId"]].schema_id
        except (ValueError, KeyError, TypeError):
            continue  # not JSON, not an envelope, not a dataset: no schema to compare under
        compare(tally, catalog.registry, schema_id,
                [Mutation(f"message {number}", "generated", entity)])
        if number < 150:
            compare(tally, catalog.registry, schema_id, mutations(entity, thorough=False))
    tally.report("ingest.generate records (3000) and mutations of 150")
    assert tally.both_valid >= 2800 and tally.both_invalid >= 1000
    tally.assert_agreement()


# Near-valid records: a valid record with one to three Hypothesis-chosen changes at paths
# of it. Numbers are finite and text has no lone surrogates (the fast path declines those
# by design; see the tests above), so the verdicts must be equal.
finite_numbers = st.integers() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) \
    | st.floats(allow_nan=False, allow_infinity=False)
tricky_text = st.text(alphabet=st.sampled_from("aZ09_-:./@ \n\r\x1c\u2028\u0301é٣"), max_size=8) \
    | st.text(max_size=8)
date_like = st.text(alphabet=st.sampled_from("0123456789-:TtZz+. \n"), min_size=8, max_size=26) \
    | st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()) \
    | st.dates().map(lambda d: d.isoformat())
json_values = st.recursive(
    st.none() | st.booleans() | finite_numbers | tricky_text | date_like,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(tricky_text, children, max_size=3),
    max_leaves=6)


@st.composite
def near_valid(draw, bases):
    schema_id, instance = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(1, 3))):
        paths = [path for path, _ in nodes(instance)]
        path = paths[draw(st.integers(0, len(paths) - 1))]
        value = _at(instance, path)
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
            edited = draw(st.sampled_from([value + "\n", value[:-1], value.upper(), value + "é"])
                          | date_like)
            instance = replaced(instance, path, edited)
        elif change == "edit" and isinstance(value, (int, float)) and not isinstance(value, bool):
            change = draw(finite_numbers | st.sampled_from([0.5, -1]))
            instance = replaced(instance, path, value + change)
        else:
            instance = replaced(instance, path, draw(json_values))
    return schema_id, instance


def _at(instance, path):
    for step in path:
        instance = instance[step]
    return instance


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
        compare(tally, registry, schema_id,
                [Mutation(example.name, "example", instance), *cases[::stride]])
    tally.report(f"XDM corpus, {len(pairs)} examples and their mutations")
    assert tally.both_valid >= 590 and tally.both_invalid >= 10000
    tally.assert_agreement()


# ---------------------------------------------------------------------------
# the record parser: the same outcome, to the letter, with and without the fast path


PUBLISH_TIME = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


def outcome(parser, payload, attributes):
    try:  # a Record's repr: NaN is not equal to itself, its repr is
        return ("record", repr(parser.parse(payload, attributes, "m", PUBLISH_TIME)))
    except RecordError as error:
        return ("error", error.error_class, error.message, error.pointer, error.dataset,
                error.violations)
    except Exception as error:  # e.g. a bare JSON number: _nesting raises TypeError
        return ("raised", type(error), str(error))


def test_the_parser_gives_the_same_records_and_the_same_errors(catalog):
    fast, reference = RecordParser(catalog), RecordParser(catalog, fast_validation=False)
    messages = generated_messages(2000, seed=3)
    for name, attributes in EXAMPLE_FILES:
        messages += [(line, attributes) for line in (EXAMPLES / name).read_bytes().splitlines()]
    for schema_id, entity in example_entities(catalog):
        dataset = "crm-profiles" if "profile" in schema_id else "web-events"
        messages += [(json.dumps(m.instance).encode(), {"dataset": dataset})
                     for m in mutations(entity)]
    classes, declined = collections.Counter(), 0
    for payload, attributes in messages:
        expected = outcome(reference, payload, attributes)
        before = fast.fast_path_disagreements
        assert outcome(fast, payload, attributes) == expected, payload
        declined += fast.fast_path_disagreements - before
        classes[{"record": "valid", "error": expected[1]}.get(expected[0], "raised")] += 1
    print(f"\nparser: {len(messages)} messages, {dict(classes)}; the fast path declined "
          f"{declined} the reference accepted")
    assert classes["schema_violation"] >= 3000 and classes["valid"] >= 1900
    assert fast.fast_path_disagreements == declined


def test_a_record_only_the_reference_accepts_is_valid_and_counted(catalog):
    # NaN is a number to the reference, and not below the minimum of 0; the fast path
    # declines numbers that are not finite.
    entity = json.loads((EXAMPLES / "records-bare.jsonl").read_text().splitlines()[0])
    entity.update({"eventType": "commerce.purchases", "commerce": {"order": {"priceTotal": "NaN"}}})
    payload = json.dumps(entity).replace('"NaN"', "NaN").encode()
    parser = RecordParser(catalog)
    record = parser.parse(payload, {"dataset": "web-events"})
    assert math.isnan(record.entity["commerce"]["order"]["priceTotal"])
    assert parser.fast_path_disagreements == 1
    assert RecordParser(catalog, fast_validation=False).parse(payload, {"dataset": "web-events"})


@pytest.mark.parametrize("number, valid", [("-Infinity", False), ("-1e999", False),
                                           ("1e999", False), ("NaN", True)])
def test_the_parser_never_lets_a_number_that_is_not_finite_through_the_fast_path(number, valid):
    # Alone, jsonschema-rs takes -inf for valid under a minimum of 0; the reference does not
    # (NaN it takes: no comparison with NaN is true).
    schema = {"$id": "https://x/s", "properties": {"x": {"minimum": 0, "maximum": 0}}}
    catalog = Catalog(datasets={"d": Dataset("d", "https://x/s", "event", False)},
                      registry=registry_of(schema))
    payload = b'{"x": %s, "timestamp": "2026-11-30T12:00:00Z"}' % number.encode()
    fast, reference = RecordParser(catalog), RecordParser(catalog, fast_validation=False)
    assert outcome(fast, payload, {"dataset": "d"}) == outcome(reference, payload, {"dataset": "d"})
    assert outcome(fast, payload, {"dataset": "d"})[0] == ("record" if valid else "error")


def test_the_disagreement_counter_reaches_beam_metrics(catalog):
    import apache_beam as beam
    from apache_beam.io.gcp.pubsub import PubsubMessage
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.testing.test_pipeline import TestPipeline

    from transforms.validate import ParseAndValidate
    entity = json.loads((EXAMPLES / "records-bare.jsonl").read_text().splitlines()[0])
    entity["productListItems"] = [{"quantity": 2, "priceTotal": "Infinity"}]
    nan_payload = json.dumps(entity).replace('"Infinity"', "Infinity").encode()
    plain_payload = (EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()[0]
    pipeline = TestPipeline(runner="BundleBasedDirectRunner")
    _ = (pipeline
         | beam.Create([PubsubMessage(nan_payload, {"dataset": "web-events"}),
                        PubsubMessage(plain_payload, {"dataset": "web-events"})])
         | ParseAndValidate(catalog))
    result = pipeline.run()
    result.wait_until_finish()
    counters = result.metrics().query(
        MetricsFilter().with_namespace("validation").with_name("fast_path_disagreement"))
    counters = counters["counters"]
    assert sum(counter.committed for counter in counters) == 1


# ---------------------------------------------------------------------------
# keywords where jsonschema-rs on its own differs from the reference


def registry_of(*schemas):
    return SchemaRegistry({schema["$id"]: schema for schema in schemas})


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
    ({"patternProperties": {".+_.+": {"type": "integer"}}, "additionalProperties": False},
     {"\u2028_x": 1}),
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
    keyword = draw(st.sampled_from(["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                    "multipleOf", "const", "enum", "uniqueItems", "maxLength",
                                    "minItems", "type"]))
    value = {
        "multipleOf": finite_numbers.filter(lambda n: n > 0),
        "const": json_values,
        "enum": st.lists(json_values, min_size=1, max_size=4),
        "uniqueItems": st.just(True),
        "maxLength": st.integers(0, 5),
        "minItems": st.integers(0, 3),
        "type": st.sampled_from(["integer", "number", "string", "null", "array", "object"]),
    }.get(keyword, finite_numbers)
    return {"$schema": DRAFTS[draw(st.sampled_from(["draft-06", "draft-07", "2020-12"]))],
            "$id": "https://x/s", keyword: draw(value)}


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(schema=one_keyword_schemas(), instance=json_values | finite_numbers
       | st.lists(finite_numbers | st.booleans(), max_size=4))
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
    schema = {"$schema": DRAFTS[draft], "$id": "https://x/s",
              "not": {"contentMediaType": "application/json", "contentEncoding": "base64"}}
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
    names = set(FAST_FORMATS) | set(jsonschema.FormatChecker().checkers) | {
        "ipv4", "ipv6", "email", "uri", "url", "uuid", "regex", "time", "duration",
        "hostname", "json-pointer", "uri-template", "some-format-nobody-knows"}
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
    ".+://.+", "^xdm:.*$", ".+_.+", "@.*", "^a.b$", "^(ab|c)+$", "x$|^y", "[^a-c]+_.?$",
    "a{2,3}?b", r"\.\$", "^[0-9]{1,3}?$", "(?:a|b)*$", "^$", "$a",
]
PATTERN_PROPERTY_REFUSED = [r"\w+", r"\s", r"\d", r"\bx", "(?i)a", "(?=a)", r"(a)\1", "a{,3}",
                            "a++", "[[:alpha:]]", "[]a]", "[a&&b]", r"\Z", "a{x}"]


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
        {"$id": "https://x/b",
         "$defs": {"words": {"patternProperties": {r"^\w+$": {"type": "integer"}}}}},
        {"$id": "https://x/c", "type": "object"})
    with caplog.at_level(logging.WARNING, logger="domain.schemas"):
        assert registry.fast_validator("https://x/a") is None
        assert registry.fast_validator("https://x/a") is None
        assert registry.fast_validator("https://x/c") is not None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("schema https://x/a: validated by the reference validator "
                                  "only, as https://x/b: patternProperties regex")


def test_a_schema_jsonschema_rs_cannot_compile_goes_to_the_reference(caplog):
    # A $ref into a patternProperties entry: its regex is rewritten for jsonschema-rs, so
    # the pointer no longer leads anywhere there.
    schema = {"$id": "https://x/s", "type": "object", "required": ["n"],
              "properties": {"n": {"$ref": "#/patternProperties/n.m"}},
              "patternProperties": {"n.m": {"type": "string", "pattern": "^[0-9]+$"}}}
    catalog = Catalog(datasets={"d": Dataset("d", "https://x/s", "event", False)},
                      registry=registry_of(schema))
    with caplog.at_level(logging.WARNING, logger="domain.schemas"):
        parser = RecordParser(catalog)
        RecordParser(catalog)
    assert parser.fast_validators == {"d": None}
    assert [r.getMessage() for r in caplog.records] == [
        "schema https://x/s: validated by the reference validator only, as jsonschema-rs "
        "cannot compile it: Pointer '/patternProperties/n.m' does not exist"]
    assert parser.parse(b'{"n": "12", "timestamp": "2026-11-30T12:00:00Z"}', {"dataset": "d"})
    with pytest.raises(RecordError, match="does not match"):
        parser.parse(b'{"n": "1x"}', {"dataset": "d"})


def test_refs_reach_across_drafts_on_the_fast_path_too(tmp_path):
    address = {"$schema": DRAFTS["draft-07"], "$id": "https://x/address", "type": "object",
               "properties": {"zip": {"type": "string"}}, "dependencies": {"zip": ["city"]}}
    person = {"$schema": DRAFTS["2020-12"], "$id": "https://x/person", "type": "object",
              "properties": {"home": {"$ref": "https://x/address"}},
              "dependentRequired": {"name": ["email"]}}
    fast = registry_of(address, person).fast_validator("https://x/person")
    assert fast.is_valid({"home": {"zip": "1", "city": "c"}})
    assert not fast.is_valid({"home": {"zip": "1"}})
    assert not fast.is_valid({"name": "n"})


# ---------------------------------------------------------------------------
# pickling: Beam ships the parser and the registry to its workers


def test_parser_and_registry_pickle_and_rebuild_their_fast_validators(catalog):
    from apache_beam.internal import pickler
    parser = RecordParser(catalog, max_errors=3)
    payload = (EXAMPLES / "records.jsonl").read_bytes().splitlines()[21]  # a schema violation
    for copy in (pickle.loads(pickle.dumps(parser)), pickler.loads(pickler.dumps(parser))):
        assert copy.max_errors == 3 and copy.fast_validation
        assert all(f is not None for f in copy.fast_validators.values())
        assert outcome(copy, payload, {}) == outcome(parser, payload, {})
    registry = pickle.loads(pickle.dumps(catalog.registry))
    assert registry.fast_validator("https://ns.example.com/xdm/experience-event") is not None
    reference_only = pickle.loads(pickle.dumps(RecordParser(catalog, fast_validation=False)))
    assert set(reference_only.fast_validators.values()) == {None}
