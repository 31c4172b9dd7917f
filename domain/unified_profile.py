"""The unified profile of an identity graph: the merge, by the catalog's merge policy, of
every record of every identity in it. A pure function of the set of records.

Each identity's fragment (the records keyed by it) is folded on its own, so that its
`create` and `delete` apply to its own records, as today's per-row profile did: a delete
removes the fragment's attributes, events and links before it. The fragments' surviving
candidates then compete attribute by attribute under the policy, whichever fragment
they come from.
"""

import dataclasses

from domain import merge
from domain.times import from_micros


@dataclasses.dataclass(frozen=True)
class Fragment:
    """What one identity's row holds (domain/profile_table.py reads it)."""

    records: tuple = ()  # StoredRecords keyed by this identity
    events: tuple = ()  # StoredEvents keyed by this identity

    @property
    def deleted(self):
        """The order key of its last delete, or None."""
        return max((r.order for r in self.records if r.operation == "delete"), default=None)


@dataclasses.dataclass(frozen=True)
class Source:
    candidate: merge.Candidate
    identity: tuple  # the fragment it came from


def fold_fragment(fragment):
    """The fragment's ProfileState: its records folded (in any order: the fold is a pure
    function of the set)."""
    state = merge.ProfileState()
    for record in fragment.records:
        merge.apply(
            state,
            record.order,
            record.dataset,
            record.operation,
            [tuple(attribute) for attribute in record.attributes],
        )
    return state


def unified_profile(identities, fragments, policy, max_events=20):
    """The profile of a graph. `identities`: the graph's (namespace, id); `fragments`:
    {identity: Fragment} for those that have a row. Returns {"attributes": {pointer:
    {value, dataset, time, identity}}, "events": [newest first], "identities": [...]}."""
    best = {}  # pointer -> {dataset: Source}: each dataset's newest surviving candidate
    for identity in sorted(identities):
        fragment = fragments.get(identity)
        if fragment is None:
            continue
        for pointer, by_dataset in fold_fragment(fragment).candidates.items():
            kept = best.setdefault(pointer, {})
            for dataset, candidate in by_dataset.items():
                current = kept.get(dataset)
                if current is None or (candidate.key, identity) > (
                    current.candidate.key,
                    current.identity,
                ):
                    kept[dataset] = Source(candidate, identity)
    attributes = {}
    for pointer in sorted(best):
        source = max(best[pointer].values(), key=lambda s: policy.rank(s.candidate))
        attributes[pointer] = {
            "value": source.candidate.value,
            "dataset": source.candidate.dataset,
            "time": _iso(source.candidate.key.time_us),
            "identity": list(source.identity),
        }
    return {
        "attributes": attributes,
        "identities": [{"namespace": ns, "id": i} for ns, i in sorted(identities)],
        "events": visible_events(identities, fragments, max_events),
        "removed_by_delete": removed_by_deletes(identities, fragments),
    }


def removed_by_deletes(identities, fragments):
    """What each fragment's last delete made irrelevant: its records and events before the
    delete, counted and listed for the explain view rather than gone without a word.
    [{identity, deleted_at, records: [{dataset, time, operation, _id}], events: N}]."""
    removed = []
    for identity in sorted(identities):
        fragment = fragments.get(identity)
        deleted = fragment.deleted if fragment is not None else None
        if deleted is None:
            continue
        records = sorted(
            (r for r in fragment.records if r.order < deleted),
            key=lambda r: r.order,
        )
        removed.append(
            {
                "identity": list(identity),
                "deleted_at": _iso(deleted.time_us),
                "records": [
                    {
                        "dataset": r.dataset,
                        "time": _iso(r.order.time_us),
                        "operation": r.operation,
                        "_id": r.record_id,
                    }
                    for r in records
                ],
                "events": sum(1 for e in fragment.events if e.order <= deleted),
            }
        )
    return removed


def visible_events(identities, fragments, max_events):
    """The graph's events newest first, each once, but those a delete of their own
    fragment removed (those before it in the order of records)."""
    events = {}
    for identity in identities:
        fragment = fragments.get(identity)
        if fragment is None:
            continue
        deleted = fragment.deleted
        for event in fragment.events:
            if deleted is None or event.order > deleted:
                events[event.column] = event
    return [
        {
            "_id": e.event.get("_id"),
            "dataset": e.dataset,
            "time": _iso(e.order.time_us),
            "eventType": e.event.get("eventType"),
            "event": e.event,
        }
        for e in (events[c] for c in sorted(events)[:max_events])
    ]


def _iso(time_us):
    return from_micros(time_us).isoformat()
