"""Looking a person up by any of their identities: the graph first, then its fragments.

A lookup reads rows in a few round trips and a bounded number: the links of the rows
reached so far (the newest MAX_LINKS_PER_ROW of each, at most MAX_GRAPH_ROWS rows and
MAX_ROUNDS round trips), so a junk value or a shared kiosk seen with thousands of
others costs no more than those bounds; then, in one more, the records and newest
events of the graph's identities. Within the bounds the result is exact: the graph is
resolved from every link reached (domain/identity_graph.py) and the profile merged from
every fragment in it (domain/unified_profile.py).
"""

import dataclasses

from google.cloud.bigtable import row_filters
from google.cloud.bigtable.row_set import RowSet

from domain import merge
from domain.identity_graph import resolve
from domain.profile_table import (
    DELETES_FAMILY,
    LINKS_FAMILY,
    RECORDS_FAMILY,
    column_families,
    events_of,
    identity_of_row_key,
    is_events_family,
    last_delete_of,
    links_of,
    records_of,
    row_key,
)
from domain.times import from_micros
from domain.unified_profile import Fragment, unified_profile

MAX_LINKS_PER_ROW = 200
MAX_GRAPH_ROWS = 500
MAX_ROUNDS = 8


@dataclasses.dataclass
class GraphRead:
    graph: object  # identity_graph.Graph
    rows_read: int
    round_trips: int
    complete: bool  # False where a bound stopped the walk before every link was reached


def read_graph(table, namespace, identity_id, rules):
    start = (namespace, identity_id)
    links, deleted = set(), {}
    seen, frontier = {start}, [start]
    rows_read = round_trips = 0
    walk_filter = row_filters.RowFilterUnion(
        [
            row_filters.RowFilterChain(
                [
                    row_filters.FamilyNameRegexFilter(f"^{LINKS_FAMILY}$"),
                    row_filters.CellsRowLimitFilter(MAX_LINKS_PER_ROW),
                ]
            ),
            row_filters.FamilyNameRegexFilter(f"^{DELETES_FAMILY}$"),
        ]
    )
    cut_short = False
    while frontier and round_trips < MAX_ROUNDS:
        round_trips += 1
        rows_read += len(frontier)
        reached = []
        for row in _read_rows(table, frontier, walk_filter):
            row_deleted = last_delete_of(row.cells)
            if row_deleted is not None:
                deleted[identity_of_row_key(row.row_key)] = tuple(row_deleted)
            row_links = links_of(row.cells)
            cut_short = cut_short or len(row_links) >= MAX_LINKS_PER_ROW
            for link in row_links:
                links.add(link)
                reached.extend(i for i in link.identities if i not in seen)
        frontier = []
        for identity in dict.fromkeys(reached):
            if len(seen) >= MAX_GRAPH_ROWS:
                cut_short = True
                break
            seen.add(identity)
            frontier.append(identity)
    complete = not cut_short and not frontier
    return GraphRead(resolve(start, links, rules, deleted), rows_read, round_trips, complete)


def read_profile(table, catalog, namespace, identity_id, max_events=20):
    """The unified profile an identity belongs to, or None where nothing is stored of it.
    Besides the profile's attributes, identities and events: `graph`, the links that hold
    it together and those a rule refused, and `lookup`, what the lookup read."""
    read = read_graph(table, namespace, identity_id, catalog.identity_rules)
    fragments = {}
    for row in _read_rows(
        table, sorted(read.graph.identities), _fragment_filter(catalog, max_events)
    ):
        fragments[identity_of_row_key(row.row_key)] = Fragment(
            tuple(records_of(row.cells)), tuple(events_of(row.cells))
        )
    if not fragments and not read.graph.kept and not read.graph.dropped:
        return None
    policy = merge.MergePolicy(tuple(catalog.dataset_precedence))
    profile = unified_profile(read.graph.identities, fragments, policy, max_events)
    profile["graph"] = graph_summary(read.graph)
    profile["lookup"] = {
        "rows_read": read.rows_read + len(read.graph.identities),
        "round_trips": read.round_trips + 1,
        "complete": read.complete,
    }
    return profile


def read_identity_graph(table, rules, namespace, identity_id):
    """The graph of an identity as stored: its identities, the links that hold it (which
    record made each, and when) and the links refused, with the rule."""
    read = read_graph(table, namespace, identity_id, rules)
    return {
        "identities": [{"namespace": ns, "id": i} for ns, i in sorted(read.graph.identities)],
        **graph_summary(read.graph),
        "lookup": {
            "rows_read": read.rows_read,
            "round_trips": read.round_trips,
            "complete": read.complete,
        },
    }


def graph_summary(graph):
    return {
        "links": [_edge(edge) for edge in graph.kept],
        "dropped": [{**_edge(edge), "rule": rule} for edge, rule in graph.dropped],
    }


def _edge(edge):
    return {
        "from": list(edge.a),
        "to": list(edge.b),
        "time": from_micros(edge.link.time_us).isoformat(),
        "dataset": edge.link.dataset,
        "record": edge.link.record_id,
    }


def _fragment_filter(catalog, max_events):
    """The records, and each events family's newest `max_events` (the newest are the first
    columns: any a delete hides are older than those it leaves)."""
    chains = [row_filters.FamilyNameRegexFilter(f"^{RECORDS_FAMILY}$")]
    chains += [
        row_filters.RowFilterChain(
            [
                row_filters.FamilyNameRegexFilter(f"^{family}$"),
                row_filters.CellsRowLimitFilter(max_events),
            ]
        )
        for family in column_families(catalog)
        if is_events_family(family)
    ]
    return row_filters.RowFilterUnion(chains)


def _read_rows(table, identities, row_filter):
    if not identities:
        return []
    keys = RowSet()
    for identity in identities:
        keys.add_row_key(row_key(*identity))
    return list(table.read_rows(row_set=keys, filter_=row_filter))
