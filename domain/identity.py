"""Identities: a record's identityMap, and which one of them is primary."""

from domain.profile_table import MAX_ROW_KEY_BYTES, row_key


class IdentityError(ValueError):
    def __init__(self, error_class, message):
        super().__init__(message)
        self.error_class = error_class


def identities(entity):
    """(namespace, id, marked primary) for every identity in the record's identityMap."""
    return [
        (namespace, identity.get("id"), identity.get("primary") is True)
        for namespace, entries in (entity.get("identityMap") or {}).items()
        for identity in (entries if isinstance(entries, list) else [])
        if isinstance(identity, dict)
    ]


def primary_identity(entity):
    """The (namespace, id) marked primary in identityMap, or the only identity there is.
    Every identity becomes a row key (a profile is linked from each), so each is checked."""
    found = identities(entity)
    for namespace, identity_id, _ in found:
        if not isinstance(identity_id, str) or not identity_id:
            raise IdentityError("identity", f"an identity of namespace {namespace!r} has no id")
        if len(row_key(namespace, identity_id)) > MAX_ROW_KEY_BYTES:
            raise IdentityError(
                "identity_too_long",
                f"identity {namespace}:{identity_id[:40]}... makes a Bigtable row key longer "
                f"than {MAX_ROW_KEY_BYTES} bytes",
            )
    primaries = [i for i in found if i[2]] or (found if len(found) == 1 else [])
    if len(primaries) != 1:
        count = (
            f"{len(primaries)} marked primary"
            if primaries
            else (f"none marked primary among {len(found)}" if found else "no identities")
        )
        raise IdentityError(
            "identity", f"a profile needs exactly one primary identity in identityMap: {count}"
        )
    namespace, identity_id, _ = primaries[0]
    return namespace, identity_id
