"""domain/json_codec.py: orjson's answers, where it is used, are exactly json's.

Every test compares with the stdlib: `_decode_json`'s own json path (the codec switched
off) for decoding, a json.JSONEncoder with the canonical options for encoding. `same`
(helpers/json_equality.py) is a type-exact deep equality (1 is not 1.0, nor True; -0.0
is not 0.0; NaN is NaN; dict key order counts), and the first tests show it catching
each of those, and orjson's raw answers where the codec must not use them.

The timing of the codec is a benchmark: python -m benchmarks.json_codec_cost.
"""

import decimal
import json
import math
import random
import struct
from unittest import mock

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from domain import json_codec
from domain.parsing import RecordParser, _decode_json
from domain.records import RecordError
from helpers.examples import EXAMPLE_FILES, EXAMPLES
from helpers.json_equality import same
from helpers.mutations import mutations

# The authority, built here rather than taken from the code under test.
REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def no_fast_path(payload):
    return None


def decoded(payload, fast=True):
    """What `_decode_json` gives or raises, with the codec or (fast=False) without it."""
    try:
        if fast:
            return ("document", *_decode_json(payload))
        with mock.patch.object(json_codec, "decode", no_fast_path):
            return ("document", *_decode_json(payload))
    except RecordError as error:
        return ("error", error.error_class, error.message, error.pointer)
    except Exception as error:
        return ("raised", type(error), str(error))


def check_decode(payload):
    """Asserts the codec changes nothing; returns whether orjson gave the answer."""
    assert same(decoded(payload), decoded(payload, fast=False)), payload[:300]
    fast = json_codec.decode(payload)
    if fast is not None:
        assert same(fast, (json.loads(payload.decode("utf-8")), True)), payload[:300]
    return fast is not None


def encoded(encode, value):
    try:
        return ("bytes", encode(value))
    except Exception as error:
        return ("raised", type(error), str(error))


def check_canonical(value):
    expected = encoded(lambda v: REFERENCE.encode(v).encode("utf-8"), value)
    assert encoded(json_codec.canonical, value) == expected, repr(value)[:300]


# ---------------------------------------------------------------------------
# the comparison can fail


@pytest.mark.parametrize(
    "a, b",
    [
        (1, 1.0),
        (1, True),
        (0, False),
        (0.0, -0.0),
        (-0.0, 0),
        (None, False),
        ("1", 1),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
        ([1, [2, {"x": 1}]], [1, [2, {"x": 1.0}]]),
        ([1], (1,)),
        ({"a": [1]}, {"a": [1, 1]}),
        (2**64, float(2**64)),
        ("\u00e9", "e\u0301"),
        (math.nan, None),
        (math.inf, math.nan),
    ],
)
def test_same_tells_apart_what_json_tells_apart(a, b):
    assert not same(a, b) and not same(b, a)


def test_same_holds_for_equal_documents_and_nan():
    document = {"a": [math.nan, -0.0, 1, 1.0, True, None, {"b": "c"}]}
    assert same(document, json.loads(json.dumps(document)))


@pytest.mark.parametrize(
    "text",
    [
        b"[18446744073709551616]",
        b'{"n":-9223372036854775809}',
        b"[123456789012345678901234567890]",
    ],
)
def test_orjson_alone_reads_big_integers_as_floats(text):
    assert not same(orjson.loads(text), json.loads(text))
    assert json_codec.decode(text) is None
    check_decode(text)


def test_orjson_alone_reads_deeper_than_json_can():
    text = b"[" * 1000 + b"]" * 1000
    orjson.loads(text)
    with pytest.raises(RecursionError):
        json.loads(text)
    assert json_codec.decode(text) is None
    assert (
        decoded(text)
        == decoded(text, fast=False)
        == ("error", "too_deep", "JSON nested deeper than 64 levels", "")
    )


@pytest.mark.parametrize(
    "value",
    [
        math.nan,
        math.inf,
        -math.inf,
        1e-05,
        1e-09,
        5.5e-07,
        9.999999999999998e-05,
        2**64,
        -(2**63) - 1,
    ],
)
def test_orjson_alone_writes_these_unlike_json(value):
    try:
        raw = orjson.dumps([value], option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raw = None
    assert raw != REFERENCE.encode([value]).encode("utf-8")
    check_canonical([value])


# ---------------------------------------------------------------------------
# decoding: edge cases


EDGE_TEXTS = [
    b"1e999",
    b"-1e999",
    b"1E400",
    b"-1E+400",
    b"1.7976931348623159e308",
    b"1e-400",
    b"-0",
    b"-0.0",
    b"0e0",
    b"-0e-0",
    b"5e-324",
    b"2.4703282292062327e-324",
    b"2.4703282292062328e-324",
    b"1.7976931348623157e308",
    b"9007199254740993",
    b"9007199254740993.0",
    b"0.1",
    b"1E5",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"18446744073709551615",
    b"18446744073709551616",
    b"123456789012345678",
    b"1234567890123456789",
    b"-1234567890123456789",
    b"12345678901234567890123456789012345678901234567890",
    b"1234567890123456789.5",
    b"1234567890123456789e0",
    b"NaN",
    b"-NaN",
    b"Infinity",
    b"-Infinity",
    b"nan",
    b"inf",
    b"01",
    b"1.",
    b".5",
    b"+1",
    b"1e",
    b"-",
    b"0x10",
    b"1_000",
    b"\xef\xbc\x91",
    b'"\\ud800"',
    b'"\\udc00"',
    b'"\\ud800\\udc00"',
    b'"\\udbff\\udfff"',
    b'"\\ud800x"',
    b'"\\uDFFF\\uD800"',
    b'"\xed\xa0\x80"',
    b'"\xff"',
    b'"\xc3"',
    b'"\xc0\x80"',
    b'"\xf4\x90\x80\x80"',
    b'"a\x00b"',
    b'"a\x01b"',
    b'"a\x1fb"',
    b'"a\x7fb"',
    b'"\\u0000"',
    b'"\xe2\x80\xa8\xe2\x80\xa9"',
    b'"\\/\\b\\f\\n\\r\\t\\"\\\\"',
    b'"\\x41"',
    b'"\\U0041"',
    b'"\\u12"',
    b"'a'",
    b"true",
    b"false",
    b"null",
    b"True",
    b"nul",
    b"",
    b"   ",
    b"\xef\xbb\xbf{}",
    b"\xef\xbb\xbf[1]",
    b"\x00",
    b"\x0c1",
    b"\xc2\xa01",
]
EDGE_DOCUMENTS = [
    b"{}",
    b"[]",
    b'{"a":1,"a":2}',
    b'{"a":1,"b":2,"a":3}',
    b'{"a":{"x":1},"b":2,"a":[3]}',
    b'{"b":1,"a":2}',
    b'{"z":1,"y":{"b":1,"a":2},"x":[{"d":1,"c":2}]}',
    b'{"":1}',
    b'{"a":1,}',
    b"[1,]",
    b"[1 2]",
    b'{"a" 1}',
    b"{a:1}",
    b'{"a":1}x',
    b'{"a":1}{}',
    b'{"a":1}\n',
    b'{"a":1}\r\n\t ',
    b' {"a":1}',
    b"\n[1]",
    b"[1]\x0b",
    b"[1]\x0c",
    b"[1]\xc2\xa0",
    b"[1]\xe2\x80\xa8",
    b'{"a":1}\x00',
    b"[\t\n\r 1 \t\n\r]",
    b'{"\xe2\x80\xa8":"\xe2\x80\xa8"}',
    b'{"\\ud800":1}',
    b'{"a\\u0000b":1}',
    b'{"id":"96451422384075545487409018393362977034"}',
    b'{"id":96451422384075545487409018393362977034}',
    b'{"id":"x:1234567890123456789"}',
    b'{"id":"-1234567890123456789"}',
    b'[1234567890123456789,"1234567890123456789"]',
    b'{"a":[-1234567890123456789]}',
    b"[0.1234567890123456789012]",
    b"[-0]",
    b"[-0.0,0.0,-0e5]",
    b"[1,1.0,1e0,true]",
    b'{"t":true,"f":false,"n":null}',
    b"[" + b"9" * 5000 + b"]",
    b"[1" + b",1" * 2000 + b"]",
]


def wrapped(literal):
    return [
        literal,
        b"[" + literal + b"]",
        b'{"v":' + literal + b"}",
        b'{"a":[1,{"b":' + literal + b'}],"c":2}',
    ]


@pytest.mark.parametrize("payload", [w for t in EDGE_TEXTS for w in wrapped(t)] + EDGE_DOCUMENTS)
def test_edge_cases_decode_as_json_decodes_them(payload):
    check_decode(payload)


@pytest.mark.parametrize(
    "depth",
    [
        1,
        63,
        64,
        65,
        100,
        255,
        256,
        500,
        511,
        512,
        513,
        900,
        990,
        995,
        996,
        1000,
        1024,
        1025,
        2000,
        100000,
    ],
)
@pytest.mark.parametrize("brackets", [(b"[", b"]"), (b'{"a":', b"}"), (b'[{"a":', b"}]")])
def test_deep_nesting_decodes_as_json_decodes_it(depth, brackets):
    opening, closing = brackets
    check_decode(opening * depth + b"1" + closing * depth)


def test_many_brackets_in_a_shallow_document_decode_as_json():
    assert check_decode(b"[" + b",".join([b'{"a":[1]}'] * 400) + b"]") is False  # 800 brackets
    assert check_decode(b"[" + b",".join([b'{"a":1}'] * 400) + b"]") is True


def test_a_non_bytes_payload_is_not_decoded_by_orjson():
    assert json_codec.decode('{"a":1}') is None
    assert json_codec.decode(bytearray(b'{"a":1}')) is None
    check_decode('{"a":1}')


def test_a_good_record_takes_the_fast_path_and_is_finite():
    payload = (EXAMPLES / "records.jsonl").read_bytes().splitlines()[0]
    document, finite = json_codec.decode(payload)
    assert finite and same(document, json.loads(payload))


# ---------------------------------------------------------------------------
# decoding: numbers, every way of writing them


def test_number_literals_of_every_size_decode_as_json_decodes_them():
    rnd = random.Random(5)
    literals = []
    for _ in range(20000):
        digits = str(rnd.randrange(1, 10 ** rnd.randint(1, 40)))
        point = rnd.randint(0, len(digits))
        literal = digits[:point] or "0"
        if point < len(digits):
            literal += "." + digits[point:]
        literal = rnd.choice(["", "-"]) + literal
        if rnd.random() < 0.7:
            literal += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randint(0, 400))
        literals.append(literal)
    with decimal.localcontext() as context:  # halfway between two doubles, and either side
        context.prec = 800
        for _ in range(3000):
            f = abs(struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0])
            g = math.nextafter(f, math.inf)
            if math.isfinite(g) and f:
                half = (decimal.Decimal(f) + decimal.Decimal(g)) / 2
                literals += [f"{h:e}" for h in (half, half.next_plus(), half.next_minus())]
    fast = sum(check_decode(b'{"n":[' + literal.encode() + b"]}") for literal in literals)
    assert fast > len(literals) * 0.8


JSON_NUMBER = r"-?(0|[1-9][0-9]{0,45})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,4})?"
SHORT_JSON_NUMBER = r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,30})?([eE][+-]?[0-9]{1,2})?"


@settings(max_examples=800, deadline=None)
@given(st.from_regex(JSON_NUMBER, fullmatch=True))
def test_hypothesis_number_literals_decode_as_json_decodes_them(literal):
    event("orjson" if check_decode(f"[{literal}]".encode()) else "json")


# ---------------------------------------------------------------------------
# decoding: Hypothesis's JSON texts


ALL_CHARACTERS = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
ODD_STRINGS = ["\ud800", "\udfff", "\ud83d", "\ude00"]  # lone surrogates: only json reads them


def string_literal(text, ensure_ascii, escape_slash):
    literal = json.dumps(text, ensure_ascii=ensure_ascii)
    return literal.replace("/", "\\/") if escape_slash else literal


def json_texts(odd):
    """JSON texts, with whitespace and numbers written in many ways and duplicate keys.
    `odd`: also what orjson refuses or reads differently (NaN, 1e999, big integers, lone
    surrogates, a leading BOM...) and what is not JSON at all."""
    strings = st.one_of(
        st.text(),
        st.sampled_from(
            ["", "a", "b", "\U0001f600", "\u2028", "\x00", "\x7f", "12345678901234567890"]
        ),
    )
    numbers = st.one_of(
        st.from_regex(SHORT_JSON_NUMBER, fullmatch=True),
        st.integers(-(10**17), 10**17).map(str),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.floats(allow_nan=False, allow_infinity=False).map(lambda f: f"{f:.17e}"),
    )
    others = st.sampled_from(["true", "false", "null"])
    whitespace = st.sampled_from(["", "", " ", "\n", "\t", "\r\n", "  \n\t"])
    before, after = st.sampled_from(["", "", "", "", "", " \n"]), st.sampled_from(["", "\n"])
    if odd:
        strings = st.one_of(strings, st.text(ALL_CHARACTERS), st.sampled_from(ODD_STRINGS))
        numbers = st.one_of(
            numbers,
            st.from_regex(JSON_NUMBER, fullmatch=True),
            st.integers().map(str),
            st.integers(-(2**63), 2**64).map(str),
            st.floats().map(json.dumps),
            st.sampled_from(
                ["NaN", "Infinity", "-Infinity", "1e999", "-0", "1E400", "01", "1.", ".5", "+1"]
            ),
        )
        others = st.sampled_from(["true", "false", "null", "True", "nul", "None"])
        whitespace = st.sampled_from(["", "", " ", "\n", "\x0c", "\x0b", "\u00a0", "\u2028"])
        before = after = st.sampled_from(["", " ", "\ufeff", "x", ",", "\x00"])
    string_literals = st.builds(string_literal, strings, st.booleans(), st.booleans())
    keys = st.one_of(string_literals, st.sampled_from(['"a"', '"b"', '"\\u0061"']))

    def array(items):
        return "[" + ",".join(f"{a}{item}{b}" for a, item, b in items) + "]"

    def object_(members):
        return (
            "{" + ",".join(f"{a}{key}{b}:{c}{value}{d}" for a, key, b, c, value, d in members) + "}"
        )

    def containers(children):
        return st.one_of(
            st.lists(st.tuples(whitespace, children, whitespace), max_size=6).map(array),
            st.lists(
                st.tuples(whitespace, keys, whitespace, whitespace, children, whitespace),
                max_size=6,
            ).map(object_),
        )

    scalars = st.one_of(numbers, string_literals, others)
    return st.builds(
        lambda *parts: "".join(parts),
        before,
        containers(st.recursive(scalars, containers, max_leaves=40)),
        after,
    )


def encoded_text(text):
    return text.encode("utf-8", "surrogatepass")  # raw surrogates: bytes that are not UTF-8


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(odd=False))
def test_hypothesis_json_texts_decode_as_json_decodes_them(text):
    event("orjson" if check_decode(encoded_text(text)) else "json")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_texts(odd=True))
def test_hypothesis_odd_json_texts_decode_as_json_decodes_them(text):
    event("orjson" if check_decode(encoded_text(text)) else "json")


MUTATION_BYTES = [
    *b'{}[]:,"\\ 0123456789-+.eEtfnul\t\n\r\x00\x01\x7f',
    0x80,
    0xC3,
    0xE2,
    0xED,
    0xEF,
    0xFF,
]


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    json_texts(odd=False),
    st.lists(
        st.tuples(st.integers(0, 10**6), st.sampled_from("dir"), st.sampled_from(MUTATION_BYTES)),
        min_size=1,
        max_size=4,
    ),
)
def test_hypothesis_json_texts_mutated_byte_by_byte_decode_as_json(text, edits):
    payload = bytearray(encoded_text(text))
    for position, operation, byte in edits:
        position %= len(payload) + 1
        if operation == "d":
            del payload[position : position + 1]
        elif operation == "i":
            payload.insert(position, byte)
        else:
            payload[position : position + 1] = bytes([byte])
    event("orjson" if check_decode(bytes(payload)) else "json")


# ---------------------------------------------------------------------------
# canonical encoding


STRINGS = st.one_of(
    st.text(),
    st.text(ALL_CHARACTERS),
    st.sampled_from(
        [
            "",
            "a",
            "b",
            "\U0001f600",
            "\u2028",
            "\x00",
            "\x7f",
            "null",
            "0.0000",
            "1e-5",
            *ODD_STRINGS,
        ]
    ),
)
JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(-(2**70), 2**70),
        st.floats(),
        st.floats(-1e-3, 1e-3),
        st.floats(allow_subnormal=True, width=32),
        STRINGS,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=6), st.dictionaries(STRINGS, children, max_size=6)
    ),
    max_leaves=60,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES)
def test_hypothesis_values_encode_as_json_encodes_them(value):
    check_canonical(value)
    check_canonical(["web-events", value])


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON_VALUES, st.booleans())
def test_hypothesis_values_decode_as_their_json_text_decodes(value, ensure_ascii):
    text = json.dumps(value, ensure_ascii=ensure_ascii)
    check_decode(encoded_text(text))
    check_decode(encoded_text(json.dumps([value], indent=2)))


EDGE_VALUES = [
    0,
    -1,
    1,
    True,
    False,
    None,
    "",
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    10**100,
    -(10**100),
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1,
    1.5,
    100.0,
    1e15,
    1e16,
    1e17,
    1e21,
    1e22,
    1e308,
    1.7976931348623157e308,
    5e-324,
    -5e-324,
    2.2e-308,
    1e-4,
    1e-5,
    1.5e-5,
    9.999999999999999e-5,
    1e-9,
    1e-10,
    1.2345e-7,
    0.0001,
    0.00011,
    9999999999999998.0,
    123456789012345680000.0,
    math.nan,
    -math.nan,
    math.inf,
    -math.inf,
    'a"\\\n\r\t\b\f\x00\x01\x1f\x7f\u2028\u2029\ud7ff\ue000\uffff\U0001f600',
    "</script>",
    "\ud800",
    "a\udfff",
    "\ud83d\ude00",
    "null",
    "0.0000",
    "1e-5",
    "e-5,",
    "e+5]",
    {
        "b": 1,
        "a": 2,
        "A": 3,
        "\u00e9": 4,
        "\U0001f600": 5,
        "\uffff": 6,
        "": 7,
        "\x00": 8,
        "a\x00": 9,
        "ab": 10,
    },
    {"\ud800": 1},
    {"b": {"d": [1, {"f": 1, "e": 2}], "c": None}, "a": []},
    [],
    {},
    [[]],
    [{}],
    ("tuple", 1),
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=repr)
def test_edge_values_encode_as_json_encodes_them(value):
    for wrapping in (value, [value], {"k": value}, ["web-events", {"a": [value, 1]}]):
        check_canonical(wrapping)


@pytest.mark.parametrize("depth", [1, 200, 253, 254, 255, 256, 300, 900])
def test_deep_values_encode_as_json_encodes_them(depth):
    for leaf in ([], {}, 1):
        value = leaf
        for _ in range(depth):
            value = {"a": value} if depth % 2 else [value]
        check_canonical(value)


def test_floats_of_every_decade_and_length_encode_as_json_encodes_them():
    """Every decimal exponent, every count of significant digits, and the floats either
    side: where orjson writes a float unlike repr, the codec must see it."""
    rnd = random.Random(11)
    floats = []
    for exponent in range(-330, 312):
        for digits in range(1, 18):
            for _ in range(3):
                mantissa = rnd.randrange(10 ** (digits - 1), 10**digits)
                f = float(f"{mantissa}e{exponent - digits + 1}")
                floats += [f, -f, math.nextafter(f, 0), math.nextafter(f, math.inf)]
    for chunk in range(0, len(floats), 64):
        check_canonical(floats[chunk : chunk + 64])
    for f in floats:
        if math.isfinite(f) and f:
            check_canonical(f)


def test_random_bit_patterns_encode_as_json_encodes_them():
    rnd = random.Random(13)
    for _ in range(50000):
        check_canonical(struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0])


def test_every_code_point_encodes_as_json_encodes_it():
    for start in range(0, 0x110000, 256):
        characters = [chr(c) for c in range(start, start + 256) if not 0xD800 <= c <= 0xDFFF]
        check_canonical(characters)
        check_canonical({c: c for c in characters})  # key order too
        check_canonical("".join(characters))


# ---------------------------------------------------------------------------
# real records: examples/, the XDM corpus, ingest.dev.generate, and their mutations


def variants(value):
    """JSON texts of a value, written in several ways."""
    return [
        json.dumps(value).encode(),
        encoded_text(json.dumps(value, ensure_ascii=False)),
        json.dumps(value, indent=2).encode(),
        json.dumps(value, separators=(",", ":")).encode(),
        json.dumps(value, indent="\t", sort_keys=True).encode(),
    ]


def check_record_and_mutations(document, count):
    """About `count` mutations, evenly spaced along the document's paths (with NaN,
    Infinity and lone surrogates at some)."""
    cases = list(mutations(document))
    for mutation in cases[:: max(1, len(cases) // count)]:
        check_canonical(mutation.instance)
        for payload in variants(mutation.instance)[:2]:
            check_decode(payload)


def test_example_records_and_their_mutations(catalog):
    parser = RecordParser(catalog)
    fast = 0
    for name, attributes in EXAMPLE_FILES:
        for line in (EXAMPLES / name).read_bytes().splitlines():
            fast += check_decode(line)
            try:
                document = json.loads(line)
            except ValueError:  # a record that is not JSON, on purpose
                continue
            check_canonical(document)
            for payload in variants(document):
                check_decode(payload)
            check_record_and_mutations(document, 200)
            try:
                record = parser.parse(line, attributes)
            except RecordError:
                continue
            check_canonical([record.dataset, record.entity])
    assert fast >= 20


def test_xdm_examples_and_their_mutations(corpus):
    examples = sorted(corpus.rglob("*.example.*.json"))
    assert len(examples) >= 590
    fast = 0
    for example in examples:
        raw = example.read_bytes()
        fast += check_decode(raw)
        document = json.loads(raw)
        check_canonical(document)
        for payload in variants(document):
            check_decode(payload)
        check_record_and_mutations(document, 20)
    assert fast >= 550


def generated(count, seed):
    from ingest.dev.generate import RecordGenerator

    return [
        (m.payload, m.dataset)
        for m in RecordGenerator(seed=seed, duplicate_share=0).messages(count)
    ]


def test_generated_records_take_the_fast_path_and_decode_as_json(catalog):
    parser = RecordParser(catalog)
    messages = generated(3000, seed=21)
    fast = sum(check_decode(payload) for payload, _ in messages)
    assert fast >= len(messages) * 0.95  # the invalid ones include text that is not JSON
    encoder = mock.Mock(wraps=json_codec.CANONICAL_JSON)
    with mock.patch.object(json_codec, "CANONICAL_JSON", encoder):
        records = 0
        for payload, dataset in messages:
            try:
                record = parser.parse(payload, {"dataset": dataset})
            except RecordError:
                continue
            records += 1
            check_canonical([record.dataset, record.entity])
            check_canonical(json.loads(payload))
    assert records >= len(messages) * 0.9
    assert encoder.encode.call_count == 0  # orjson wrote every one of them


def test_generated_records_mutated():
    for payload, _ in generated(150, seed=22)[::3]:
        try:
            document = json.loads(payload)
        except ValueError:
            continue
        check_record_and_mutations(document, 60)
