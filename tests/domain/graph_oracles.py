"""Plain oracles of the identity-graph tests (not a test module): the graphs and the
unified profile a set of records must give, computed only from what the test generated
(tests/domain/graph_strategies.Facts), never from cells, written from the docstrings of
domain/identity_graph.py, domain/unified_profile.py and domain/merge.py, with plain sets
and sorts (no union-find, no fold)."""

import dataclasses

from tests.domain.graph_strategies import iso_of


def _rank(rules, namespace):
    """The documented priority: listed namespaces first, in their order; then by name."""
    return (
        (0, rules.priority.index(namespace), "")
        if namespace in rules.priority
        else (1, 0, namespace)
    )


@dataclasses.dataclass
class OracleGraphs:
    component: dict  # identity -> frozenset: its graph
    decisions: list  # (a, b, order, rule or None), in replay order

    def graph(self, identity):
        return self.component.get(identity, frozenset({identity}))

    def kept(self, identity):
        members = self.graph(identity)
        return [(a, b, o) for a, b, o, rule in self.decisions if rule is None and a in members]

    def dropped(self, identity):
        members = self.graph(identity)
        return [
            (a, b, o, rule)
            for a, b, o, rule in self.decisions
            if rule is not None and (a in members or b in members)
        ]


def oracle_graphs(facts, rules):
    """Replays every pair of every link newest first (at one time: the pair of the
    higher-priority namespaces first, then tie-break, then the identities), refusing a
    pair older than a delete of either identity, a pair that would put two identities of
    a unique namespace in one graph, and one that would make a graph larger than the cap.
    Plain sets, no union-find."""
    deletes = {}
    for fact in facts:
        if fact.spec.operation == "delete":
            deletes[fact.primary] = max(deletes.get(fact.primary, fact.order), fact.order)
    pairs = []
    for fact in facts:
        if fact.spec.operation == "delete" or len(fact.linked) < 2:
            continue
        for i, a in enumerate(fact.linked):
            for b in fact.linked[i + 1 :]:
                pairs.append((a, b, fact.order))
    pairs.sort(
        key=lambda p: (
            -p[2][0],
            sorted([_rank(rules, p[0][0]), _rank(rules, p[1][0])]),
            p[2][1],
            p[0],
            p[1],
        )
    )
    component = {}
    decisions = []
    for a, b, order in pairs:
        graph_a = component.get(a, frozenset({a}))
        graph_b = component.get(b, frozenset({b}))
        union = graph_a | graph_b
        if any(i in deletes and order < deletes[i] for i in (a, b)):
            rule = "deleted"
        elif graph_a == graph_b:
            rule = None
        elif any(len({i for n, i in union if n == namespace}) > 1 for namespace in rules.unique):
            rule = "unique_namespace"
        elif len(union) > rules.max_identities:
            rule = "max_identities"
        else:
            rule = None
            for identity in union:
                component[identity] = union
        decisions.append((a, b, order, rule))
    return OracleGraphs(component, decisions)


def graph_as_plain(graph):
    """A Graph of the code as plain tuples, comparable with OracleGraphs."""
    return (
        graph.identities,
        [(e.a, e.b, (e.link.time_us, e.link.tiebreak)) for e in graph.kept],
        [(e.a, e.b, (e.link.time_us, e.link.tiebreak), rule) for e, rule in graph.dropped],
    )


def oracle_profile(identities, facts, precedence=(), max_events=20):
    """The unified profile, plainly: for each identity of the graph, its own records (those
    keyed by it) after its last create or delete; per attribute, the winner across all of
    them by the policy (newest order key; or the dataset listed first, unlisted ones last,
    then newest). Events: each identity's own, but those whose order key (time in µs,
    tie-break) is before its last delete's (unified_profile.visible_events), newest first
    (the layout's column order: time in µs, then tie-break, then `_id`), at most
    max_events, each with its time to the µs. And per identity with a delete, what its last
    delete made irrelevant: its records before it, and how many of its events."""
    attributes = {}
    events = []
    removed = []
    for identity in sorted(identities):
        own = [f for f in facts if f.primary == identity]
        resets = [f.order for f in own if f.spec.operation in ("create", "delete")]
        last_reset = max(resets) if resets else None
        deletes = [f.order for f in own if f.spec.operation == "delete"]
        last_delete = max(deletes) if deletes else None
        if last_delete is not None:  # what the delete made irrelevant, for the explain view
            before = sorted(
                (f for f in own if f.spec.kind == "profile" and f.order < last_delete),
                key=lambda f: f.order,
            )
            removed.append(
                {
                    "identity": list(identity),
                    "deleted_at": iso_of(last_delete[0]),
                    "records": [
                        {
                            "dataset": f.spec.dataset,
                            "time": iso_of(f.order[0]),
                            "operation": f.spec.operation,
                            "_id": f.spec.record_id,
                        }
                        for f in before
                    ],
                    "events": sum(
                        1 for f in own if f.spec.kind == "event" and f.order <= last_delete
                    ),
                }
            )
        for fact in own:
            if fact.spec.kind == "event":
                if last_delete is None or fact.order > last_delete:
                    events.append(fact)
                continue
            if fact.spec.operation == "delete" or (last_reset and fact.order < last_reset):
                continue
            for pointer, value in fact.attributes.items():
                rank = (
                    -(
                        precedence.index(fact.spec.dataset)
                        if fact.spec.dataset in precedence
                        else len(precedence)
                    )
                    if precedence
                    else 0,
                    fact.order,
                )
                if pointer not in attributes or rank > attributes[pointer][0]:
                    attributes[pointer] = (
                        rank,
                        {
                            "value": value,
                            "dataset": fact.spec.dataset,
                            "time": iso_of(fact.order[0]),
                            "identity": list(identity),
                        },
                    )
    events.sort(key=lambda f: (-f.order[0], f.order[1], f.spec.record_id))
    return {
        "attributes": {p: attributes[p][1] for p in sorted(attributes)},
        "identities": [{"namespace": n, "id": i} for n, i in sorted(identities)],
        "events": [
            {
                "_id": f.spec.record_id,
                "dataset": f.spec.dataset,
                "time": iso_of(f.order[0]),
                "eventType": f.spec.event_type,
                "event": f.entity,
            }
            for f in events[:max_events]
        ],
        "removed_by_delete": removed,
    }
