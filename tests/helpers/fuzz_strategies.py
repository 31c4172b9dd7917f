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
