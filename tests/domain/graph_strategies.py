"""Shared pieces of the identity-graph tests (not a test module).

- A small universe: namespaces CRMID, Email, ECID and Phone with a few ids each, so that
  records collide; record times from a few microsecond offsets, so that equal times (and
  equal milliseconds with different microseconds) happen.
- Records as real payloads (Adobe envelopes, with the identityMap in the entity or in
  body.xdmMeta, and bare records with their dataset and operation in the attributes),
  parsed by the real RecordParser against a small catalog written to a temporary folder.
- The profile table as a plain dict {row key: {family: {column: [(value, time_us)]}}}: the
  shape the layout's readers take. Cells are written as Bigtable keeps them: the cell's
  time cut to the millisecond (as PendingRows writes it), a write to the same column at
  the same time replacing that version, versions newest first.
- A lookup that walks that dict from one identity, row by row along the links it finds
  (as domain/profile_lookup.read_graph does, without its bounds), then resolves the graph
  and merges the profile with the code under test.
The plain oracles of the graph and of the unified profile, computed only from what the
test generated (never from cells): tests/domain/graph_oracles.py.
"""

import dataclasses
import datetime
import hashlib
import json
import textwrap

from hypothesis import strategies as st

from domain.catalog import Catalog
from domain.identity_graph import IdentityRules, resolve
from domain.merge import MergePolicy
from domain.parsing import RecordParser
from domain.profile_table import (
    events_of,
    identity_of_row_key,
    last_delete_of,
    links_of,
    records_of,
    row_key,
)
from domain.profile_writes import fragment_cells
from domain.unified_profile import Fragment, unified_profile

UTC = datetime.timezone.utc
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=UTC)
BASE = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BASE_US = (BASE - EPOCH) // datetime.timedelta(microseconds=1)
# Equal offsets give equal times; 0 and 400 share a millisecond, as do 2000 and 2600.
OFFSETS_US = (0, 400, 1_000, 2_000, 2_600)

NAMESPACES = ("CRMID", "Email", "ECID", "Phone")
GOOD_IDS = {
    "CRMID": ("C1", "C2"),
    "Email": ("ada@x.org", "bob@x.org"),
    "ECID": ("11", "22", "33"),
    "Phone": ("+441", "+442"),
}
POOL = tuple((namespace, value) for namespace in NAMESPACES for value in GOOD_IDS[namespace])
# Values the catalog below refuses: built-in kinds, and its own pattern (case-insensitive).
BLOCKED_IDS = {
    "CRMID": ("null",),
    "Email": ("anonymous", "Test@Example.com"),
    "ECID": ("00000000-0000-0000-0000-000000000000",),
    "Phone": ("", "undefined"),
}
BLOCKED = {(namespace, value) for namespace, values in BLOCKED_IDS.items() for value in values}

PROFILE_DATASETS = ("crm", "loyalty")
EVENT_DATASET = "web"
DATASETS = PROFILE_DATASETS + (EVENT_DATASET,)
RETENTION_DAYS = {"crm": 90, "loyalty": 90, "web": 30}
LOYALTY_FIELD = "/loyaltyId"  # loyalty's primary identity: a CRMID in this field
# Attribute pointers: nested, and one key holding a '/' (escaped ~1 in the pointer).
POINTERS = (
    "/person/firstName",
    "/person/lastName",
    "/loyalty/tier",
    "/loyalty/points",
    "/a~1b",
    "/tags",
)
POLICIES = ((), ("loyalty", "crm"), ("crm",), ("loyalty",))

SCHEMA_ID = "https://test.example/xdm/anything"
CATALOG_YAML = textwrap.dedent("""\
    schemas: schemas
    datasets:
      crm: {schema: "%(schema)s", kind: profile, profile: true}
      loyalty:
        schema: "%(schema)s"
        kind: profile
        profile: true
        identities: [{pointer: %(field)s, namespace: CRMID, primary: true}]
      web: {schema: "%(schema)s", kind: event, profile: true, retention_days: 30}
    identity:
      priority: [CRMID, Email, Phone, ECID]
      unique: [CRMID]
      blocked: ["(?i)test@example\\\\.com"]
    """) % {"schema": SCHEMA_ID, "field": LOYALTY_FIELD}


def write_catalog(folder, text=CATALOG_YAML):
    """A catalog file with one permissive schema; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "schemas").mkdir(exist_ok=True)
    (folder / "schemas" / "anything.json").write_text(
        json.dumps(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$id": SCHEMA_ID,
                "type": "object",
            }
        )
    )
    path = folder / "catalog.yaml"
    path.write_text(text)
    return str(path)


def load_parser(folder):
    catalog = Catalog.load(write_catalog(folder))
    return RecordParser(catalog)


# Records: what the test generates, and what it knows of each.


@dataclasses.dataclass(frozen=True)
class Spec:
    record_id: str
    dataset: str
    identities: tuple  # ((namespace, id), ...), distinct
    primary: int = 0  # index into identities
    operation: str = "merge"
    offset_us: int = 0
    attributes: tuple = ()  # ((pointer, value), ...) of a profile record
    event_type: str = "view"
    placement: str = "entity"  # identityMap in the entity, in body.xdmMeta, or a bare record
    mark_single: bool = True  # mark a lone identity primary (else it is primary as the only one)

    @property
    def kind(self):
        return "event" if self.dataset == EVENT_DATASET else "profile"

    @property
    def time_us(self):
        return BASE_US + self.offset_us


def _unescape(token):
    return token.replace("~1", "/").replace("~0", "~")


def _nest(attributes):
    entity = {}
    for pointer, value in attributes:
        tokens = [_unescape(t) for t in pointer.split("/")[1:]]
        node = entity
        for token in tokens[:-1]:
            node = node.setdefault(token, {})
        node[tokens[-1]] = value
    return entity


def iso_of(time_us):
    return (EPOCH + datetime.timedelta(microseconds=time_us)).isoformat()


def micros_of(moment):
    return (moment - EPOCH) // datetime.timedelta(microseconds=1)


def entity_of(spec):
    """(entity, identityMap placed in body.xdmMeta or None)."""
    identity_map = {}
    for index, (namespace, value) in enumerate(spec.identities):
        if spec.dataset == "loyalty" and index == spec.primary:
            continue  # in the dataset's identity field
        entry = {"id": value}
        if index == spec.primary and (spec.mark_single or len(spec.identities) > 1):
            entry["primary"] = True
        identity_map.setdefault(namespace, []).append(entry)
    if spec.kind == "event":
        entity = {
            "_id": spec.record_id,
            "eventType": spec.event_type,
            "timestamp": iso_of(spec.time_us),
        }
    else:
        entity = {
            "_id": spec.record_id,
            **_nest(spec.attributes),
            "_repo": {"modifyDate": iso_of(spec.time_us)},
        }
        if spec.dataset == "loyalty":
            entity[LOYALTY_FIELD[1:]] = spec.identities[spec.primary][1]
    meta = None
    if identity_map:
        if spec.placement == "xdmMeta":
            meta = {"identityMap": identity_map}
        else:
            entity["identityMap"] = identity_map
    return entity, meta


def message_of(spec):
    """(payload bytes, Pub/Sub attributes) of the record."""
    entity, meta = entity_of(spec)
    if spec.placement == "bare":
        attributes = {"dataset": spec.dataset}
        if spec.operation != "merge":
            attributes["operation"] = spec.operation
        return json.dumps(entity).encode(), attributes
    header = {"datasetId": spec.dataset, "schemaRef": {"id": SCHEMA_ID}}
    if spec.operation != "merge":
        header["operations"] = {"data": spec.operation}
    body = {"xdmEntity": entity}
    if meta is not None:
        body["xdmMeta"] = meta
    return json.dumps({"header": header, "body": body}).encode(), {}


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the test knows of a record, from its spec alone."""

    spec: Spec
    entity: dict
    order: tuple  # (time_us, tie-break): the documented order key
    primary: tuple  # (namespace, id), None where it is refused
    linked: tuple  # the accepted identities, sorted
    attributes: dict  # pointer -> value of a profile record (metadata excluded)


def tiebreak(dataset, entity, operation="merge"):
    """The documented tie-break: SHA-256 of the canonical JSON of [dataset, entity], or of
    [dataset, operation, entity] for an operation other than merge (so that an upsert and
    a delete of the same entity are two records)."""
    document = [dataset, entity] if operation == "merge" else [dataset, operation, entity]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def facts_of(spec):
    entity, _ = entity_of(spec)
    accepted = [i for i in spec.identities if i not in BLOCKED]
    primary = spec.identities[spec.primary]
    attributes = dict(spec.attributes) if spec.kind == "profile" else {}
    if spec.dataset == "loyalty":
        attributes[LOYALTY_FIELD] = primary[1]
    return Facts(
        spec,
        entity,
        (spec.time_us, tiebreak(spec.dataset, entity, spec.operation)),
        primary if primary not in BLOCKED else None,
        tuple(sorted(set(accepted))),
        attributes,
    )


def stored_facts(specs):
    """The facts of the records that reach the profile table (a refused primary: lake
    only), each once."""
    facts = {}
    for spec in specs:
        fact = facts_of(spec)
        if fact.primary is not None:
            facts[fact.order] = fact
    return list(facts.values())


# Strategies

VALUES = st.one_of(st.integers(0, 2), st.sampled_from(["x", "y", None]))


def attribute_lists():
    return st.lists(
        st.sampled_from(POINTERS).flatmap(
            lambda p: st.tuples(
                st.just(p), st.lists(st.integers(0, 1), max_size=2) if p == "/tags" else VALUES
            )
        ),
        max_size=3,
        unique_by=lambda a: a[0],
    ).map(tuple)


@st.composite
def specs(draw, record_id="r", datasets=DATASETS, blocked=True):
    dataset = draw(st.sampled_from(datasets))
    kind = "event" if dataset == EVENT_DATASET else "profile"
    identities = draw(st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True))
    if blocked and draw(st.integers(0, 5)) == 0:  # now and then, a refused value too
        refused = draw(st.sampled_from(sorted(BLOCKED)))
        identities.insert(draw(st.integers(0, len(identities))), refused)
        identities = list(dict.fromkeys(identities))[:4]
    if dataset == "loyalty":  # the primary is a CRMID, in the identity field
        crmid = draw(
            st.sampled_from(
                [("CRMID", v) for v in GOOD_IDS["CRMID"]] + ([("CRMID", "null")] if blocked else [])
            )
        )
        identities = [i for i in identities if i != crmid][:3] + [crmid]
        primary = len(identities) - 1
    else:
        primary = draw(st.integers(0, len(identities) - 1))
    operation = (
        "merge"
        if kind == "event"
        else draw(st.sampled_from(["merge", "merge", "merge", "create", "delete"]))
    )
    return Spec(
        record_id=record_id,
        dataset=dataset,
        identities=tuple(identities),
        primary=primary,
        operation=operation,
        offset_us=draw(st.sampled_from(OFFSETS_US)),
        attributes=draw(attribute_lists()) if kind == "profile" else (),
        event_type=draw(st.sampled_from(["view", "click"])),
        placement=draw(st.sampled_from(["entity", "xdmMeta", "bare"])),
        mark_single=draw(st.booleans()),
    )


@st.composite
def record_sets(draw, min_size=1, max_size=10, **kwargs):
    """Records with distinct `_id`s (so distinct records never share an order key)."""
    count = draw(st.integers(min_size, max_size))
    return [draw(specs(record_id=f"r{i}", **kwargs)) for i in range(count)]


@st.composite
def deliveries(draw, records):
    """The records in some order, some of them delivered again."""
    order = draw(st.permutations(records))
    again = draw(st.lists(st.sampled_from(records), max_size=4)) if records else []
    delivered = list(order)
    for record in again:
        delivered.insert(draw(st.integers(0, len(delivered))), record)
    return delivered


def rules_strategy(caps=(2, 3, 4, 50)):
    return st.builds(
        lambda order, listed, unique, cap: IdentityRules(
            tuple(order[:listed]), frozenset(unique), cap
        ),
        st.permutations(NAMESPACES),
        st.integers(0, len(NAMESPACES)),
        st.sets(st.sampled_from(NAMESPACES)),
        st.sampled_from(caps),
    )


# The profile table as a plain dict


def write_cell(table, key, cell):
    """One SetCell as Bigtable applies it: time cut to the millisecond; the same column at
    the same time replaces the version; versions newest first."""
    time_us = cell.time_us - cell.time_us % 1000
    versions = table.setdefault(key, {}).setdefault(cell.family, {}).setdefault(cell.column, [])
    versions[:] = [v for v in versions if v[1] != time_us] + [(cell.value, time_us)]
    versions.sort(key=lambda v: -v[1])


def ingest(parser, messages, table=None):
    """Parses each message and writes its cells, as transforms/profile_store does."""
    table = {} if table is None else table
    for payload, attributes in messages:
        record = parser.parse(payload, attributes, "message", None)
        if not record.feeds_profile or record.primary_identity is None:
            continue
        for key, cell in fragment_cells(record, RETENTION_DAYS[record.dataset]):
            write_cell(table, key, cell)
    return table


def ingest_specs(parser, specs_, table=None):
    return ingest(parser, [message_of(spec) for spec in specs_], table)


@dataclasses.dataclass
class Lookup:
    graph: object  # identity_graph.Graph
    profile: dict
    links: set  # the links read on the way
    deleted: dict


def links_and_deletes(table, identities):
    links, deleted = set(), {}
    for identity in identities:
        cells = table.get(row_key(*identity))
        if cells is None:
            continue
        links.update(links_of(cells))
        row_deleted = last_delete_of(cells)
        if row_deleted is not None:
            deleted[identity] = tuple(row_deleted)
    return links, deleted


def walk(table, start):
    """The links and deletes of every row reachable from `start` along links."""
    seen, frontier = {start}, [start]
    links, deleted = set(), {}
    while frontier:
        row_links, row_deleted = links_and_deletes(table, frontier)
        links |= row_links
        deleted.update(row_deleted)
        frontier = sorted({i for link in row_links for i in link.identities} - seen)
        seen.update(frontier)
    return links, deleted


def fragments_of(table, identities):
    fragments = {}
    for identity in identities:
        cells = table.get(row_key(*identity))
        if cells is not None:
            fragments[identity] = Fragment(tuple(records_of(cells)), tuple(events_of(cells)))
    return fragments


def lookup(table, start, rules, policy=(), max_events=20):
    links, deleted = walk(table, start)
    graph = resolve(start, links, rules, deleted)
    profile = unified_profile(
        graph.identities,
        fragments_of(table, graph.identities),
        MergePolicy(tuple(policy)),
        max_events,
    )
    return Lookup(graph, profile, links, deleted)


def all_links(table):
    """Every link and delete in the table, row by row."""
    return links_and_deletes(table, [identity_of_row_key(key) for key in table])
