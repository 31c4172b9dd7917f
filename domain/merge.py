"""The profile merge: a pure function of the set of records of a fragment (the records of
one identity), in any order; domain/unified_profile.py merges a graph's fragments.

Every record has an order key: (record time in microseconds, tie-break), where the
tie-break is the SHA-256 of the record's dataset, operation (where not `merge`) and
canonical JSON. So two records with the same time are ordered the same way on every run,
and a record delivered twice is the same record.

- `merge` (the default) sets the attributes it carries.
- `create` replaces the attributes: those of records before it are gone.
- `delete` removes them all; records older than it have no effect, newer ones start
  anew. (Its identity's links and events before it go too: domain/identity_graph.py,
  domain/unified_profile.py.)

Which value of an attribute wins among the records after the last create or delete is
the merge policy's choice: `timestamp` (the newest record's value), or
`dataset_precedence` (the value of the dataset listed first; newest within a dataset).

ProfileState keeps, per attribute, the newest candidate of each dataset: enough to answer
for both policies exactly, whatever order records arrive in.
"""

import dataclasses
import hashlib
import typing

from domain import json_codec


class OrderKey(typing.NamedTuple):  # tuples: ordered, compared and pickled at C speed
    time_us: int
    tiebreak: str


class Candidate(typing.NamedTuple):
    key: OrderKey
    dataset: str
    value: object


@dataclasses.dataclass(frozen=True)
class MergePolicy:
    precedence: tuple = ()  # datasets, most trusted first; empty: timestamp order

    def rank(self, candidate):
        if not self.precedence:
            return (candidate.key,)
        position = (
            self.precedence.index(candidate.dataset)
            if candidate.dataset in self.precedence
            else len(self.precedence)
        )
        return (-position, candidate.key)


@dataclasses.dataclass
class ProfileState:
    candidates: dict = dataclasses.field(default_factory=dict)  # pointer -> {dataset: Candidate}
    reset: OrderKey = None  # the last create or delete: attributes before it are gone
    deleted: OrderKey = None  # the last delete: records before it have no effect

    def winners(self, policy):
        """pointer -> the Candidate whose value the profile shows."""
        candidates = self.candidates
        rank = policy.rank
        winners = {}
        for pointer in candidates:
            by_dataset = candidates[pointer]
            if len(by_dataset) == 1:  # most attributes come from one dataset: no ranking
                (winners[pointer],) = by_dataset.values()
            else:
                winners[pointer] = max(by_dataset.values(), key=rank)
        return winners


def order_key(record_time_us, dataset, entity, operation="merge"):
    """Two records that differ only in their operation (an upsert and a delete of the same
    entity) are two records: a non-merge operation is part of what is hashed."""
    document = [dataset, entity] if operation == "merge" else [dataset, operation, entity]
    canonical = json_codec.canonical(document)  # the bytes json's encoder makes
    return OrderKey(record_time_us, hashlib.sha256(canonical).hexdigest())


def apply(state, key, dataset, operation, attributes):
    """Folds one record into the state. `attributes`: [(pointer, value)]."""
    if operation in ("create", "delete") and (state.reset is None or key > state.reset):
        state.reset = key
        _forget_attributes_before(state, key)
    if operation == "delete" and (state.deleted is None or key > state.deleted):
        state.deleted = key
    if operation != "delete" and (state.reset is None or key >= state.reset):
        for pointer, value in attributes:
            by_dataset = state.candidates.setdefault(pointer, {})
            current = by_dataset.get(dataset)
            if current is None or key > current.key:
                by_dataset[dataset] = Candidate(key, dataset, value)


def is_deleted_before(state, key):
    """True for a record older than the profile's last delete: it has no effect at all."""
    return state.deleted is not None and key < state.deleted


def _forget_attributes_before(state, reset):
    for pointer in list(state.candidates):
        kept = {d: c for d, c in state.candidates[pointer].items() if c.key >= reset}
        if kept:
            state.candidates[pointer] = kept
        else:
            del state.candidates[pointer]
