"""The identity graph: which identities are one person, as a pure function of the links.

Every record of a profile-enabled dataset links its identities to one another: a `Link`
holds them all, with the record's order key (time, tie-break). The graph of an identity
is found by replaying every link it can reach, pair by pair, newest first (within one
time: pairs of higher-priority namespaces first, then by tie-break and value), as
Adobe's identity optimization algorithm does, and refusing a pair that would break a
rule:
- `unique_namespace`: a graph holds at most one identity of a unique namespace (two
  CRMIDs are two people; a shared device then follows whoever signed in on it last);
- `max_identities`: a graph holds at most `max_identities` (Adobe: 50); the oldest
  links go first;
- `deleted`: a link older than a delete of one of its identities no longer holds;
- `unproven`: a person identity a record carried without proof from an untrusted source
  (domain/identity_proof.py) was never linked; the record's link keeps it apart
  (`Link.unproven`), only to show it: nothing walks to it or joins it.
The same set of links gives the same graphs in any order, however often a link is seen.
"""

import dataclasses
import typing

DEFAULT_MAX_IDENTITIES = 50
UNIQUE_NAMESPACE = "unique_namespace"
MAX_IDENTITIES = "max_identities"
DELETED = "deleted"
UNPROVEN = "unproven"


class Link(typing.NamedTuple):
    """What one record says: these identities are one person (as of its time)."""

    time_us: int
    tiebreak: str
    identities: tuple  # ((namespace, id), ...), sorted: two or more, or one with unproven
    dataset: str = ""
    record_id: str = ""  # the record's `_id`, where it has one
    unproven: tuple = ()  # ((namespace, id), ...), sorted: carried, not linked (UNPROVEN)


class Edge(typing.NamedTuple):
    a: tuple  # (namespace, id); a < b
    b: tuple
    link: Link


@dataclasses.dataclass(frozen=True)
class IdentityRules:
    priority: tuple = ()  # namespaces, most trusted first
    unique: frozenset = frozenset()  # namespaces of which a graph holds at most one
    max_identities: int = DEFAULT_MAX_IDENTITIES

    def rank(self, namespace):
        """A namespace's place in the priority order: listed ones first, then by name."""
        if namespace in self.priority:
            return (0, self.priority.index(namespace), "")
        return (1, 0, namespace)


@dataclasses.dataclass
class Graph:
    identities: frozenset  # (namespace, id) of the person's graph, the start among them
    kept: list  # Edges within the graph, in replay order
    dropped: list  # (Edge, rule) refused, of those that touch the graph, in replay order


def edges_of(links):
    """Each link as the pairs of its identities, each pair once per link."""
    edges = set()
    for link in links:
        members = sorted(set(link.identities))
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                edges.add(Edge(a, b, link))
    return edges


def unproven_edges(links):
    """Each identity of a link paired with each of its unproven ones: never joined."""
    return {
        Edge(*sorted((member, unproven)), link)
        for link in links
        for unproven in link.unproven
        for member in set(link.identities)
    }


def replay_order(edge, rules):
    """Newest first; within one time the pair of higher-priority namespaces first; then
    the record's tie-break and the identities, so that the order is total."""
    ranks = sorted((rules.rank(edge.a[0]), rules.rank(edge.b[0])))
    return (-edge.link.time_us, ranks, edge.link.tiebreak, edge.a, edge.b)


def resolve(start, links, rules, deleted=None):
    """The graph of `start` (namespace, id) under the rules. `links`: every Link reachable
    from it (more does no harm); `deleted`: {identity: (time_us, tiebreak) of its last
    delete}."""
    deleted = deleted or {}
    parent = {}
    members = {}  # root -> set of identities
    unique_held = {}  # root -> {unique namespace: id}

    def find(identity):
        if identity not in parent:
            parent[identity] = identity
            members[identity] = {identity}
            unique_held[identity] = (
                {identity[0]: identity[1]} if identity[0] in rules.unique else {}
            )
        root = identity
        while parent[root] != root:
            root = parent[root]
        while parent[identity] != root:  # path compression
            parent[identity], identity = root, parent[identity]
        return root

    decisions = []  # (Edge, None or the rule that refused it)
    unproven = unproven_edges(links)
    for edge in sorted(edges_of(links) | unproven, key=lambda e: replay_order(e, rules)):
        if edge in unproven:
            decisions.append((edge, UNPROVEN))
            continue
        order = (edge.link.time_us, edge.link.tiebreak)
        if any(order < deleted[i] for i in (edge.a, edge.b) if i in deleted):
            decisions.append((edge, DELETED))
            continue
        root_a, root_b = find(edge.a), find(edge.b)
        if root_a == root_b:
            decisions.append((edge, None))
            continue
        held_a, held_b = unique_held[root_a], unique_held[root_b]
        if any(held_b.get(namespace, value) != value for namespace, value in held_a.items()):
            decisions.append((edge, UNIQUE_NAMESPACE))
            continue
        if len(members[root_a]) + len(members[root_b]) > rules.max_identities:
            decisions.append((edge, MAX_IDENTITIES))
            continue
        if len(members[root_a]) < len(members[root_b]):
            root_a, root_b = root_b, root_a
        parent[root_b] = root_a
        members[root_a] |= members.pop(root_b)
        unique_held[root_a] = {**unique_held.pop(root_b), **unique_held[root_a]}
        decisions.append((edge, None))
    graph = frozenset(members[find(start)])
    return Graph(
        identities=graph,
        kept=[edge for edge, rule in decisions if rule is None and edge.a in graph],
        dropped=[
            (edge, rule)
            for edge, rule in decisions
            if rule is not None and (edge.a in graph or edge.b in graph)
        ],
    )
