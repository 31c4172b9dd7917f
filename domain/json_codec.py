"""JSON decoding and canonical encoding with orjson, where its result is the stdlib's.

json stays the authority: each function uses orjson only for inputs on which orjson is
known to give exactly what json gives, and hands every other input to json. The
differences, all found by experiment (tests/domain/test_json_codec.py proves the rest equal):

decode (orjson.loads against json.loads):
- orjson refuses what json reads as a non-finite float (NaN, Infinity, 1e999) and what
  json refuses itself (bad UTF-8, a BOM, lone surrogate escapes, bad syntax): any error
  goes to json, which gives today's document or today's error. (The record parser then
  refuses the non-finite floats as not_json: domain/parsing.py.)
- orjson reads an integer beyond 64 bits as a float; json as an int.
- orjson reads up to 1024 levels of nesting; json stops earlier (Python's recursion
  limit, less the caller's stack: about 990 levels).

canonical (orjson.dumps with OPT_SORT_KEYS against json's canonical encoder):
- NaN and +-Infinity: orjson writes null, json NaN/Infinity/-Infinity.
- Integers beyond 64 bits, nesting deeper than 254 levels, lone surrogates: orjson
  refuses them.
- Floats of magnitude in [1e-9, 1e-4): repr writes 1e-05 and 1e-09, orjson 0.00001 and
  1e-9. Every other float, every string and the key order are written alike.

The guards are byte searches (a regular expression costs more than orjson saves): they
may send an input to json that orjson would have got right, never the other way round.
"""

import json

import orjson

# What json.dumps(..., sort_keys=True, separators=(",", ":"), ensure_ascii=False) makes,
# with one encoder for all records (json.dumps with options builds one per call).
CANONICAL_JSON = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)

# An integer of 64 bits has at most 20 digits, and all of 18 fit: a number with 19 digits
# or more before its fraction goes to json. Outside a string a number follows '[', ',',
# ':' or whitespace (the '-' is its sign): all become ':' here, digits '0'. A long digit
# string such as an ECID follows a quote and does not match.
_NUMBER_SHAPES = bytes.maketrans(b"0123456789[,: \t\n\r-", b"0000000000::::::::")
_LONG_NUMBER = b":" + b"0" * 19
# A document nested N levels deep has N opening brackets and 2N bytes at least. Below
# this depth json never gives up (unless called from about 480 frames deep).
_MAX_DEPTH = 512

# repr writes an exponent with two digits at least (1e-05, 1e+16); orjson writes 1e-9.
# A float in the output ends at ',', ']', '}' or the end; '+' and '-' become ',' too.
_EXPONENT_SHAPES = bytes.maketrans(b"0123456789+-]}", b"0000000000,,,,")
_ONE_DIGIT_EXPONENT = b"e,0,"


def decode(payload):
    """(document, True): the document json.loads(payload.decode("utf-8")) gives, whose
    numbers are all finite; or None where only json can tell (the caller asks json)."""
    if type(payload) is not bytes or payload[:1] not in (b"{", b"["):
        return None  # orjson also reads str; a bare value or leading space: json
    if len(payload) >= 2 * _MAX_DEPTH and payload.count(b"[") + payload.count(b"{") >= _MAX_DEPTH:
        return None
    if _LONG_NUMBER in payload.translate(_NUMBER_SHAPES):
        return None
    try:
        return orjson.loads(payload), True  # orjson refuses NaN, Infinity and overflow
    except Exception:
        return None


def canonical(value):
    """CANONICAL_JSON.encode(value).encode("utf-8"), for any value json.loads can give."""
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return CANONICAL_JSON.encode(value).encode("utf-8")
    if (
        b"null" in encoded  # None, or NaN or Infinity
        or b"0.0000" in encoded  # repr writes below 1e-4 with an exponent
        or _ONE_DIGIT_EXPONENT in (encoded + b",").translate(_EXPONENT_SHAPES)
    ):
        return CANONICAL_JSON.encode(value).encode("utf-8")
    return encoded
