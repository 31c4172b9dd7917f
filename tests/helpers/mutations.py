"""Mutations of a JSON document, made systematically at every path of it: a wrong type,
the field removed, bad date-times and dates, strings and numbers at the edges, unexpected
keys, empty objects and arrays. The fast validator's and the JSON codec's tests run
their comparisons over them."""

import dataclasses
import math
import re

WRONG_TYPES = ["not-the-declared-type", 12345, 1.5, True, None, ["x"], {"x": 1}]
DATE_TIMES = [
    "2026-11-30T12:00:00Z",
    "2026-11-30t12:00:00z",
    "2026-11-30T12:00:00.123456+05:30",
    "2026-11-30T12:00:60Z",
    "2026-11-30T12:00:00-00:00",
    "1969-12-31T23:59:59Z",
    "yesterday",
    "2026-13-01T00:00:00Z",
    "2026-02-30T12:00:00Z",
    "2026-11-30T25:00:00Z",
    "2026-11-30T12:00:00",
    "2026-11-30 12:00:00Z",
    "2026-11-30T12:00:00+0100",
    "2026-11-30T12:00Z",
    "2026-11-30T12:00:00Z\n",
    " 2026-11-30T12:00:00Z",
    "",
    "2026-11-30",
    "2026-W48-1T12:00:00Z",
    "２０２６-11-30T12:00:00Z",
]
DATES = [
    "2026-11-30",
    "2024-02-29",
    "2026-02-29",
    "2026-02-30",
    "2026-13-01",
    "2026-11-31",
    "2026-11-30T12:00:00Z",
    "20261130",
    "2026-1-30",
    "2026-11-30\n",
    "",
    "0000-01-01",
    "２０２６-11-30",
    "2026/11/30",
]
EDGE_STRINGS = ["", "\n", "x\n", "\x1c", "\u2028", "é", "\u0301", "ABC", "abc", "A" * 300]
EDGE_NUMBERS = [0, -1, 1, 0.5, -0.5, 1.0, 2**53 + 1, 10**30, -(10**30), 1e300, -1e300, 5e-324, True]
TRICKY_KEYS = ["zz_unexpected", "xdm:zz\n", "xdm:zz\r", "\r_x", "a_b", "@zz", "x://y", "", "xdm:zz"]


@dataclasses.dataclass
class Mutation:
    what: str  # e.g. "/person/birthDate = 'yesterday'"
    kind: str
    instance: object


def nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from nodes(child, path + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from nodes(child, path + (index,))


def value_at(instance, path):
    for step in path:
        instance = instance[step]
    return instance


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
            yield Mutation(
                f"{at} = {candidate!r}", "wrong_type", replaced(instance, path, candidate)
            )
        if isinstance(value, str):
            if re.match(r"\d{4}-\d\d-\d\d", value):  # a date or date-time field, likely
                for candidate in DATE_TIMES + DATES:
                    yield Mutation(
                        f"{at} = {candidate!r}", "date", replaced(instance, path, candidate)
                    )
            variants = [
                value + "\n",
                "\x1c" + value,
                value + "\u2028",
                value.upper(),
                value.lower(),
                value + "x",
                value[:-1],
                value * 20,
            ] + EDGE_STRINGS
            for candidate in some(variants, 4):
                yield Mutation(
                    f"{at} = {candidate[:40]!r}", "string", replaced(instance, path, candidate)
                )
            if thorough:
                yield Mutation(
                    f"{at} = lone surrogate",
                    "lone_surrogate",
                    replaced(instance, path, value + "\ud800"),
                )
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            variants = [value + 1, value - 1, -value, value + 0.5, value * 1.0] + EDGE_NUMBERS
            for candidate in some(variants, 3):
                yield Mutation(
                    f"{at} = {candidate!r}", "number", replaced(instance, path, candidate)
                )
            if thorough:
                for candidate in (math.nan, math.inf, -math.inf):
                    yield Mutation(
                        f"{at} = {candidate!r}", "not_finite", replaced(instance, path, candidate)
                    )
        elif isinstance(value, dict):
            yield Mutation(f"{at} = {{}}", "empty", replaced(instance, path, {}))
            for key in TRICKY_KEYS:
                for candidate in some([12345, "text", {"x": 1}], 1):
                    yield Mutation(
                        f"{at} + {key!r}: {candidate!r}",
                        "extra_key",
                        replaced(instance, path, {**value, key: candidate}),
                    )
        elif isinstance(value, list):
            yield Mutation(f"{at} = []", "empty", replaced(instance, path, []))
            if value:
                yield Mutation(
                    f"{at} + a copy of its first item",
                    "duplicate",
                    replaced(instance, path, value + value[:1]),
                )
            for candidate in some(WRONG_TYPES, 2):
                yield Mutation(
                    f"{at} + {candidate!r}",
                    "wrong_item",
                    replaced(instance, path, value + [candidate]),
                )
