"""A record's identities: where they are found, which one is primary, and which are
refused.

Identities come from the record's `identityMap` (or, as in Adobe's time-series payloads,
the envelope's `body.xdmMeta.identityMap`) and from the dataset's identity fields, as
Adobe's schema identity descriptors declare them (a JSON pointer, a namespace, whether
it is primary). A value that is blocked (empty, `null`, `undefined`, `anonymous`, all
zeros, or a pattern of the catalog's) or longer than MAX_IDENTITY_CHARS is refused: it
is never linked nor keyed by, and the record lands without it. So is a person identity
a record may not link (`unproven`: domain/identity_proof.py).
"""

import dataclasses

from domain.identity_graph import UNPROVEN
from domain.profile_table import MAX_ROW_KEY_BYTES, row_key

MAX_IDENTITY_CHARS = 1024
BLOCKED_VALUES = frozenset({"", "null", "undefined", "anonymous"})
# What an all-zero id is made of: 0, 0000, 00000000-0000-0000-0000-000000000000, 0.0
_ZERO_ID_CHARACTERS = frozenset("0-_.: ")
MAX_NAMESPACE_CHARS = 256
BLOCKED = "blocked"
TOO_LONG = "too_long"


class IdentityError(ValueError):
    def __init__(self, error_class, message):
        super().__init__(message)
        self.error_class = error_class


@dataclasses.dataclass(frozen=True)
class IdentityField:
    """A field of the record that holds an identity (Adobe's identity descriptor)."""

    pointer: str  # JSON pointer, e.g. /workEmail/address
    namespace: str
    primary: bool = False

    def value_in(self, entity):
        value = entity
        for token in self.pointer.split("/")[1:]:
            if not isinstance(value, dict):
                return None
            value = value.get(token.replace("~1", "/").replace("~0", "~"))
        return value


def identity_map_of(entity, xdm_meta=None):
    """(namespace, entry) for every entry of the record's identityMap (else the envelope's
    xdmMeta's) that is a mapping."""
    identity_map = entity.get("identityMap")
    if identity_map is None and isinstance(xdm_meta, dict):
        identity_map = xdm_meta.get("identityMap")
    return [
        (namespace, identity)
        for namespace, entries in (identity_map if isinstance(identity_map, dict) else {}).items()
        for identity in (entries if isinstance(entries, list) else [])
        if isinstance(identity, dict)
    ]


def identities(entity, xdm_meta=None, fields=()):
    """(namespace, id, marked primary) for every identity the record carries: its
    identityMap (else the envelope's xdmMeta's), then its identity fields."""
    found = [
        (namespace, identity.get("id"), identity.get("primary") is True)
        for namespace, identity in identity_map_of(entity, xdm_meta)
    ]
    for field in fields:
        value = field.value_in(entity)
        if value is not None:
            found.append((field.namespace, value, field.primary))
    return found


def refusal(identity_id, blocked_patterns=()):
    """Why an identity value is refused, or None."""
    if len(identity_id) > MAX_IDENTITY_CHARS:
        return TOO_LONG
    text = identity_id.strip()
    if text.lower() in BLOCKED_VALUES or ("0" in text and set(text) <= _ZERO_ID_CHARACTERS):
        return BLOCKED
    if any(pattern.fullmatch(identity_id) for pattern in blocked_patterns):
        return BLOCKED
    return None


@dataclasses.dataclass(frozen=True)
class RecordIdentities:
    primary: tuple  # (namespace, id); None where it is refused
    linked: tuple  # every accepted (namespace, id), sorted, each once
    refused: tuple  # ((namespace, id, why), ...)


def record_identities(found, blocked_patterns=(), needs_primary=True, needs_proof=None):
    """Checks the identities `identities()` found. Raises IdentityError where the record
    cannot be read: an identity without an id, a namespace longer than
    MAX_NAMESPACE_CHARS, or (`needs_primary`) not exactly one primary identity. A value
    whose row key would pass Bigtable's limit (a long value in a wide script) is refused
    as too long; one `needs_proof(namespace, id)` is true of, as unproven."""
    accepted, refused = set(), []
    for namespace, identity_id, _ in found:
        if not isinstance(namespace, str) or not namespace or not isinstance(identity_id, str):
            raise IdentityError("identity", f"an identity of namespace {namespace!r} has no id")
        if len(namespace) > MAX_NAMESPACE_CHARS:
            raise IdentityError(
                "identity_too_long",
                f"identity namespace {namespace[:40]!r}... is longer than "
                f"{MAX_NAMESPACE_CHARS} characters",
            )
        why = refusal(identity_id, blocked_patterns)
        if why is None and len(row_key(namespace, identity_id)) > MAX_ROW_KEY_BYTES:
            why = TOO_LONG
        if why is None and needs_proof is not None and needs_proof(namespace, identity_id):
            why = UNPROVEN
        if why is None:
            accepted.add((namespace, identity_id))
        else:
            refused.append((namespace, identity_id, why))
    primary = None
    if needs_primary:
        namespace, identity_id = primary_of(found)
        primary = (namespace, identity_id) if (namespace, identity_id) in accepted else None
    return RecordIdentities(primary, tuple(sorted(accepted)), tuple(refused))


def primary_of(found):
    """The (namespace, id) marked primary, or the only identity there is."""
    distinct = list(dict.fromkeys((ns, i, p) for ns, i, p in found))
    primaries = [i for i in distinct if i[2]] or (distinct if len(distinct) == 1 else [])
    if len({(ns, i) for ns, i, _ in primaries}) != 1:
        count = (
            f"{len(primaries)} marked primary"
            if primaries
            else (f"none marked primary among {len(distinct)}" if distinct else "no identities")
        )
        raise IdentityError("identity", f"a profile needs exactly one primary identity: {count}")
    namespace, identity_id, _ = primaries[0]
    return namespace, identity_id
