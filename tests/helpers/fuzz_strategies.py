"""Hypothesis strategies of hostile Pub/Sub messages: payloads (arbitrary bytes, JSON,
envelopes with missing or mistyped parts, mutated and spliced examples/ records) and
attributes. The parse fuzz (tests/domain/test_parse_fuzz.py) and the running pipeline's
(tests/pipelines/test_pipeline_fuzz.py) share them."""

import copy
import json

from hypothesis import strategies as st

from helpers.examples import example_lines

EXAMPLE_DOCUMENTS = [json.loads(line) for line in example_lines("records.jsonl")[:18]] + [
    json.loads(line) for line in example_lines("records-bare.jsonl")
]
DATASETS = ["crm-profiles", "web-events", "web-events-archive", "nope", ""]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-11-30"]),
    st.sampled_from(DATASETS),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
attributes = st.builds(
    lambda own, dataset: {**own, **dataset},
    st.dictionaries(st.text(min_size=1, max_size=300), st.text(max_size=1500), max_size=110)
    | st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=10), max_size=3),
    st.fixed_dictionaries(
        {}, optional={"dataset": st.sampled_from(DATASETS), "operation": st.text(max_size=8)}
    ),
)


@st.composite
def mutated_examples(draw):
    """An example record with a value somewhere replaced, added or a key removed."""
    document = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCUMENTS)))
    for _ in range(draw(st.integers(1, 3))):
        node = document
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            if not isinstance(node[key], (dict, list)):
                break
            child = node[key]
            node = child if isinstance(child, dict) else {}
        if isinstance(node, dict):
            if node and draw(st.booleans()):
                node[draw(st.sampled_from(sorted(node)))] = draw(json_values)
            elif node and draw(st.booleans()):
                del node[draw(st.sampled_from(sorted(node)))]
            else:
                node[draw(st.text(max_size=8))] = draw(json_values)
    return json.dumps(document).encode()


def raw_text_edits(payload, draw):
    """The payload with a few bytes spliced in: escapes, constants, broken UTF-8."""
    splice = draw(
        st.sampled_from(
            [b"\\ud800", b"\\udfff", b"NaN", b"-Infinity", b"1e999", b"\xff", b"{", b"]", b'"'] * 1
        )
        | st.binary(max_size=4)
    )
    at = draw(st.integers(0, len(payload)))
    return payload[:at] + splice + payload[at:]


@st.composite
def payloads(draw):
    kind = draw(st.sampled_from(["bytes", "json", "envelope"] + ["example", "spliced"] * 3))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "envelope":
        header = draw(
            st.dictionaries(
                st.sampled_from(["datasetId", "schemaRef", "operations", "timestamp"]), json_values
            )
        )
        body = draw(st.one_of(json_values, st.fixed_dictionaries({"xdmEntity": json_values})))
        return json.dumps({"header": header, "body": body}).encode()
    payload = draw(mutated_examples())
    return raw_text_edits(payload, draw) if kind == "spliced" else payload


@st.composite
def deep_json(draw):
    """Arrays or objects nested around the parser's limit and far past it, balanced or
    not closed."""
    depth = draw(st.sampled_from([63, 64, 65, 1000]) | st.integers(1, 5000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}"), (b'{"body":[', b"]}")]))
    closed = depth - draw(st.sampled_from([0, 0, 0, 1]))
    return opener * depth + draw(st.sampled_from([b"1", b"{}", b'"x"', b""])) + closer * closed


@st.composite
def huge_json(draw):
    """A payload about Adobe's 1 MB limit (the parser's) or past it, well within Pub/Sub's
    10 MB: a long array, a long string, or an example record with a long field."""
    size = draw(st.sampled_from([999_000, 1_000_001, 1_500_000, 3_000_000]))
    kind = draw(st.sampled_from(["array", "string", "record"]))
    if kind == "array":
        return b"[" + b"1," * (size // 2) + b"1]"
    if kind == "string":
        return json.dumps({"header": {"datasetId": "web-events"}, "body": "x" * size}).encode()
    document = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCUMENTS)))
    document["padding"] = "é" * (size // 2)
    return json.dumps(document, ensure_ascii=False).encode()


@st.composite
def hostile_payloads(draw):
    """payloads() (bytes, JSON, envelopes, mutated and spliced examples) and, more rarely,
    deep and huge JSON."""
    kind = draw(st.sampled_from(["payloads"] * 14 + ["deep"] * 3 + ["huge"]))
    return draw({"payloads": payloads(), "deep": deep_json(), "huge": huge_json()}[kind])


PUBSUB_MAX_ATTRIBUTES = 100  # Pub/Sub's limits on a message's attributes
PUBSUB_MAX_KEY_BYTES = 256
PUBSUB_MAX_VALUE_BYTES = 1024


def _clip_utf8(text, limit):
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def within_pubsub_limits(attributes):
    """The attributes Pub/Sub accepts of these: at most 100, the `dataset` and `operation`
    first, keys of 1 to 256 bytes not starting with `goog`, values of at most 1024 bytes
    (clipped at a character's boundary)."""
    clipped = {}
    for key in sorted(attributes, key=lambda k: (k not in ("dataset", "operation"), k)):
        short = _clip_utf8(key, PUBSUB_MAX_KEY_BYTES)
        if short and not short.lower().startswith("goog") and short not in clipped:
            clipped[short] = _clip_utf8(attributes[key], PUBSUB_MAX_VALUE_BYTES)
        if len(clipped) == PUBSUB_MAX_ATTRIBUTES:
            break
    return clipped


@st.composite
def many_attributes(draw):
    """Up to Pub/Sub's 100 attributes, with odd keys and values up to its 1024 bytes (that
    `attributes` draws seldom)."""
    count = draw(st.sampled_from([PUBSUB_MAX_ATTRIBUTES - 1, PUBSUB_MAX_ATTRIBUTES]))
    prefix = draw(st.text(min_size=1, max_size=4))
    letter = draw(st.sampled_from(["v", "é", "€", "😀", "\x00", "\\ud800"]))
    length = draw(st.sampled_from([0, 1, 300, PUBSUB_MAX_VALUE_BYTES]))
    value = _clip_utf8(letter * length, PUBSUB_MAX_VALUE_BYTES)
    key_length = draw(st.sampled_from([1, PUBSUB_MAX_KEY_BYTES]))
    own = {
        _clip_utf8(f"{n:03d}{prefix * key_length}", PUBSUB_MAX_KEY_BYTES): value
        for n in range(count)
    }
    return within_pubsub_limits({**own, **draw(attributes)})


pubsub_attributes = attributes.map(within_pubsub_limits) | many_attributes()


@st.composite
def valid_example_messages(draw):
    """(payload, attributes) of a valid examples/ record with a fresh `_id`: an envelope of
    records.jsonl (lines 1-18), or a bare record of records-bare.jsonl with its `dataset`
    attribute; perhaps with a few harmless attributes more."""
    document = copy.deepcopy(draw(st.sampled_from(EXAMPLE_DOCUMENTS)))
    entity = document["body"]["xdmEntity"] if "header" in document else document
    entity["_id"] = f"fuzz-{draw(st.uuids()).hex}"
    extra = draw(st.dictionaries(st.sampled_from(["source", "trace", "n"]), st.text(max_size=20)))
    dataset = {} if "header" in document else {"dataset": "web-events"}
    return json.dumps(document).encode(), {**extra, **dataset}
