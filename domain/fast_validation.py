"""The fast path of validation: jsonschema-rs over the schema set, trusted only where it
is shown to agree with the reference validator (python-jsonschema).

A schema it cannot take (a keyword whose semantics it does not share, a regex that
cannot be rewritten, a schema jsonschema-rs refuses) is validated by the reference only,
with a warning once per schema.
"""

import logging
import math
import urllib.parse

import jsonschema
import jsonschema_rs

from domain.schema_drafts import CHECKED_FORMATS, FORMAT_CHECKER, ValidationLimits, validator_class

_log = logging.getLogger(__name__)

# The fast validator asserts the CHECKED_FORMATS with the reference's own checkers and lets
# every other format pass: those jsonschema-rs 0.61 knows (it asserts them by default in
# drafts 4 to 7) and those the reference knows, overridden one by one; unknown ones pass.
FAST_FORMATS = {
    **{
        name: (lambda value: True)
        for name in (
            "color",
            "duration",
            "email",
            "hostname",
            "idn-email",
            "idn-hostname",
            "ipv4",
            "ipv6",
            "iri",
            "iri-reference",
            "json-pointer",
            "regex",
            "relative-json-pointer",
            "time",
            "uri",
            "uri-reference",
            "uri-template",
            "uuid",
            "host-name",
            "ip-address",
            "utc-millisec",
        )
    },
    **{
        name: (lambda value, name=name: FORMAT_CHECKER.conforms(value, name))
        for name in CHECKED_FORMATS
    },
}
# Keywords whose semantics the fast path has not been shown to share with the reference:
# a schema that uses one, or reaches one through a $ref, is checked by the reference only.
REFERENCE_ONLY_KEYWORDS = (
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "unevaluatedProperties",
    "unevaluatedItems",
    "$vocabulary",
)
# Keywords that hold subschemas by name (their keys are names, not keywords) and keywords
# that hold plain values (never schemas).
_NAMED_SUBSCHEMAS = (
    "properties",
    "patternProperties",
    "definitions",
    "$defs",
    "dependentSchemas",
    "dependencies",
)
_VALUE_KEYWORDS = ("enum", "const", "examples", "default")


class FastValidator:
    """jsonschema-rs over the schema set, for the one question "surely valid?".

    `is_valid(instance)` is True only if the reference validator accepts the instance too;
    False means "ask the reference", which alone says what is wrong (and may yet accept:
    where the two differ, jsonschema-rs is the stricter one, e.g. Python's `$` matches
    before a final newline). What makes it so:
    - formats: only CHECKED_FORMATS asserted, with the reference's own checkers;
    - pattern and multipleOf run the reference's own code (Python `re` against ECMA 262
      regexes, float arithmetic); the content keywords, which jsonschema-rs asserts in
      drafts 6 and 7, are annotations as in the reference;
    - a patternProperties regex is given to jsonschema-rs rewritten to match what Python's
      `re.search` matches (see _rust_regex), and a schema with one that cannot be rewritten
      goes to the reference only, as do REFERENCE_ONLY_KEYWORDS;
    - a number that is not finite (json.loads reads NaN, Infinity and 1e999) does not
      cross into Rust as a number: such an instance is never fast-valid;
    - anything jsonschema-rs raises on (a lone surrogate cannot cross into Rust) is False;
    - an instance beyond the ValidationLimits is False (the reference, which checks them
      before the schema, then says which array or object): `limits` is them compiled.
    """

    def __init__(self, compiled, limits=None):
        self.compiled = compiled
        self.limits = limits

    def is_valid(self, instance, numbers_finite=False):
        """`numbers_finite`: the caller knows every number in the instance is finite (the
        record parser does, from json.loads); else they are checked here (a few µs)."""
        if not numbers_finite and not _all_finite(instance):
            return False
        try:
            valid = self.compiled.is_valid(instance)  # stops at a first error, limits walk all
            return valid and (self.limits is None or self.limits.is_valid(instance))
        except Exception:
            return False


class _ReferenceOnly(Exception):
    """Why a schema cannot have a fast validator."""


def _refuse_retrieval(uri):
    raise ValueError(f"{uri} is not in the schema set; nothing is fetched from the network")


def _reference_keywords(validator_class):
    """jsonschema-rs keywords that run the reference's code, or nothing."""
    checker = validator_class({})  # what the reference's keyword functions ask is_type of

    def delegate(function):
        class Keyword:
            def __init__(self, parent_schema, value, schema_path):
                self.parent_schema, self.value = parent_schema, value

            def validate(self, instance):
                for error in function(checker, self.value, instance, self.parent_schema):
                    raise ValueError(error.message)

        return Keyword

    class Annotation:
        def __init__(self, parent_schema, value, schema_path):
            pass

        def validate(self, instance):
            pass

    return {
        "pattern": delegate(jsonschema.Draft202012Validator.VALIDATORS["pattern"]),
        "multipleOf": delegate(jsonschema.Draft202012Validator.VALIDATORS["multipleOf"]),
        "contentMediaType": Annotation,
        "contentEncoding": Annotation,
        "contentSchema": Annotation,
    }


def _all_finite(instance):
    pending = [instance]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):
            return False
    return True


def _for_jsonschema_rs(node):
    """A copy of a schema with each patternProperties regex rewritten by _rust_regex (one
    that cannot be is left as it is: _fast_path_problems keeps such schemas away)."""
    if isinstance(node, list):
        return [_for_jsonschema_rs(item) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {}
    for key, value in node.items():
        if key in _VALUE_KEYWORDS:
            copy[key] = value
        elif key in _NAMED_SUBSCHEMAS and isinstance(value, dict):
            rename = (
                (lambda name: _rust_regex(name) or name)
                if key == "patternProperties"
                else (lambda name: name)
            )
            copy[key] = {rename(name): _for_jsonschema_rs(sub) for name, sub in value.items()}
        else:
            copy[key] = _for_jsonschema_rs(value)
    return copy


def _fast_path_facts(schemas):
    """{schema id: (what in it the fast path cannot take, the schema ids its $refs reach)}."""
    owners = {}  # every $id in the set (nested ones too) -> the schema holding it
    for sid, schema in schemas.items():
        for _, base, _, _ in _schema_nodes(schema, sid):
            owners.setdefault(urllib.parse.urldefrag(base).url, sid)
    facts = {}
    for sid, schema in schemas.items():
        problems, reached = [], set()
        rust_class = jsonschema_rs.validator_cls_for(schema).__name__
        if rust_class != validator_class(schema).__name__:
            problems.append(f"{sid}: jsonschema-rs reads its $schema as {rust_class}")
        for node, base, parent_base, at_root in _schema_nodes(schema, sid):
            problems += [f"{sid}: {problem}" for problem in _fast_path_problems(node, at_root)]
            if not isinstance(node.get("$ref"), str):
                continue
            # Before draft 2019-09 an $id beside a $ref is ignored: follow both readings.
            for ref_base in {base, parent_base}:
                target = urllib.parse.urldefrag(urllib.parse.urljoin(ref_base, node["$ref"])).url
                if target in owners:
                    reached.add(owners[target])
                else:
                    problems.append(
                        f"{sid}: cannot tell which schema $ref {node['$ref']!r} leads to"
                    )
        facts[sid] = (problems, sorted(reached))
    return facts


def _schema_nodes(node, base, parent_base=None, at_root=True):
    """(node, its base URI, its parent's, whether it is the document) for every object in a
    schema that may be a schema: all but the values of enum, const, examples and default."""
    if isinstance(node, list):
        for item in node:
            yield from _schema_nodes(item, base, base, False)
        return
    if not isinstance(node, dict):
        return
    parent_base = base if parent_base is None else parent_base
    if isinstance(node.get("$id"), str):
        base = urllib.parse.urljoin(base, node["$id"])
    yield node, base, parent_base, at_root
    for key, value in node.items():
        if key in _NAMED_SUBSCHEMAS and isinstance(value, dict):
            for subschema in value.values():  # the keys are names, not keywords
                yield from _schema_nodes(subschema, base, base, False)
        elif key not in _VALUE_KEYWORDS:
            yield from _schema_nodes(value, base, base, False)


def _fast_path_problems(node, at_root):
    """What in one schema object the fast path cannot take."""
    problems = [f"it uses {key}" for key in REFERENCE_ONLY_KEYWORDS if key in node]
    if "$schema" in node and not at_root:
        problems.append("a subschema has its own $schema")
    if isinstance(node.get("patternProperties"), dict):
        problems += [
            f"patternProperties regex {name!r} is beyond the fast path"
            for name in node["patternProperties"]
            if _rust_regex(name) is None
        ]
    return problems


def _rust_regex(pattern):
    r"""A regex that jsonschema-rs (ECMA 262 syntax) matches exactly where Python's
    `re.search(pattern, ...)` does, or None. Only a plain subset is rewritten: literals,
    escaped punctuation, classes of those, groups, alternation, `^`, and greedy or lazy
    quantifiers; `.` becomes `[^\n]` (ECMA's `.` also refuses \r, U+2028 and U+2029) and
    `$` becomes `(?=\n?$)` (Python's `$` also matches before a final newline). Class
    escapes (\w, \s, \d, \b: Unicode in Python, ASCII in ECMA), flags, look-arounds,
    back references and possessive quantifiers are not rewritten."""
    out, i, n = [], 0, len(pattern)
    quantifiable = False
    while i < n:
        char = pattern[i]
        if char == "\\":
            if i + 1 >= n or pattern[i + 1].isalnum() or not pattern[i + 1].isascii():
                return None
            out.append(pattern[i : i + 2])
            i, quantifiable = i + 2, True
        elif char == "[":
            end = i + 1
            if end < n and pattern[end] == "^":
                end += 1
            if end < n and pattern[end] == "]":
                return None  # a leading ] is a literal in Python, an empty class in ECMA
            while end < n and pattern[end] != "]":
                if pattern[end] == "[" or pattern[end : end + 2] in ("&&", "--", "~~"):
                    return None
                if pattern[end] == "\\":
                    if end + 1 >= n or pattern[end + 1].isalnum() or not pattern[end + 1].isascii():
                        return None
                    end += 1
                end += 1
            if end >= n:
                return None
            out.append(pattern[i : end + 1])
            i, quantifiable = end + 1, True
        elif char == ".":
            out.append("[^\\n]")
            i, quantifiable = i + 1, True
        elif char == "$":
            out.append("(?=\\n?$)")
            i, quantifiable = i + 1, False
        elif char == "(":
            if pattern.startswith("(?:", i):
                out.append("(?:")
                i += 3
            elif pattern.startswith("(?", i):
                return None
            else:
                out.append("(")
                i += 1
            quantifiable = False
        elif char in "*+?{":
            if not quantifiable:
                return None
            if char == "{":
                end = pattern.find("}", i)
                if end < 0 or not _is_counted_quantifier(pattern[i + 1 : end]):
                    return None
                quantifier, i = pattern[i : end + 1], end + 1
            else:
                quantifier, i = char, i + 1
            if i < n and pattern[i] == "?":
                quantifier, i = quantifier + "?", i + 1
            if i < n and pattern[i] in "*+?{":
                return None  # possessive, or a quantifier of a quantifier
            out.append(quantifier)
            quantifiable = False
        elif char == "}" or char == "]":
            return None
        else:  # ^ | ) and literals
            out.append(char)
            i, quantifiable = i + 1, char not in "^|"
    return "".join(out)


def _is_counted_quantifier(inside):
    low, comma, high = inside.partition(",")
    return low.isdigit() and low.isascii() and (not high or (high.isdigit() and high.isascii()))


class FastPath:
    """Fast validators of the schemas of one set, each built once, on first use."""

    def __init__(self, schemas, limits=ValidationLimits()):
        self.schemas = schemas  # {$id: contents}
        self.limits = limits.compiled()
        self._registry = None  # jsonschema_rs.Registry of the whole set
        self._validators = {}  # schema id -> FastValidator, or None: reference only
        self._facts = None  # see _fast_path_facts

    def validator(self, schema_id):
        if schema_id not in self._validators:
            try:
                fast = self._build(schema_id)
            except _ReferenceOnly as reason:
                fast = None
                _log.warning(
                    "schema %s: validated by the reference validator only, as %s", schema_id, reason
                )
            except Exception as error:  # jsonschema_rs refuses what the reference accepts
                fast = None
                _log.warning(
                    "schema %s: validated by the reference validator only, as "
                    "jsonschema-rs cannot compile it: %s",
                    schema_id,
                    (str(error).strip().splitlines() or [repr(error)])[0][:300],
                )
            self._validators[schema_id] = fast
        return self._validators[schema_id]

    def _build(self, schema_id):
        reasons = self._reference_only_reasons(schema_id)
        if reasons:
            raise _ReferenceOnly("; ".join(reasons[:3]))
        if self._registry is None:
            self._registry = jsonschema_rs.Registry(
                [(sid, _for_jsonschema_rs(schema)) for sid, schema in self.schemas.items()],
                retriever=_refuse_retrieval,
            )
        reference_class = validator_class(self.schemas[schema_id])
        compiled = getattr(jsonschema_rs, reference_class.__name__)(
            _for_jsonschema_rs(self.schemas[schema_id]),
            registry=self._registry,
            base_uri=schema_id,
            retriever=_refuse_retrieval,
            validate_formats=True,
            formats=FAST_FORMATS,
            ignore_unknown_formats=True,
            keywords=_reference_keywords(reference_class),
        )
        return FastValidator(compiled, self.limits)

    def _reference_only_reasons(self, schema_id):
        """Why the schema, or a schema it reaches by $ref, must go to the reference."""
        if self._facts is None:
            self._facts = _fast_path_facts(self.schemas)
        reasons, seen, pending = [], set(), [schema_id]
        while pending:
            sid = pending.pop()
            if sid not in seen:
                seen.add(sid)
                problems, reached = self._facts[sid]
                reasons += problems
                pending += reached
        return reasons
