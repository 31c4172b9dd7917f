"""What `ingest profile get` and `ingest identity get` share: their arguments, reading the
profile table with a catalog, and the identities, links and lookups in words.

Every text that comes from records (identities, record ids, pointers, values) goes
through common.quoted or common.escaped: what is printed never carries raw control
characters.
"""

import json

from google.api_core import exceptions as api_exceptions

from ingest import admin
from ingest.clients import open_table
from ingest.common import (
    CommandError,
    add_catalog_argument,
    add_table_arguments,
    bigtable_endpoint,
    count,
    escaped,
    load_catalog,
    quoted,
)

# The rules of domain/identity_graph.py, in words.
RULES = {
    "unique_namespace": "would put two identities of a unique namespace in one graph",
    "max_identities": "would take the graph past the catalog's max_identities",
    "deleted": "older than a delete of one of its identities",
    "unproven": "a person identity from an untrusted source, without a valid proof: never linked",
}
MAX_VALUE_CHARS = 80  # of an attribute's value in the text view; --json gives it whole


def add_lookup_arguments(parser, catalog_uses):
    parser.add_argument(
        "--namespace",
        required=True,
        help="identity namespace, as in identityMap (Email, ECID, CRMID, ...)",
    )
    parser.add_argument("--id", required=True, help="the identity's id in that namespace")
    add_catalog_argument(parser, catalog_uses)
    add_table_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="print the whole result as one JSON document"
    )


def read_table(args, read):
    """`read(table, catalog)` on the table the arguments name; its missing table said in
    one line."""
    catalog = load_catalog(args.catalog)
    admin.check_emulator_host("BIGTABLE_EMULATOR_HOST")
    table = open_table(args.project, args.instance, args.table)
    try:
        return table, read(table, catalog)
    except api_exceptions.NotFound:
        raise CommandError(
            f"table {table.name} does not exist ({bigtable_endpoint()}); "
            "`ingest bootstrap --catalog FILE` creates it"
        ) from None


def identity_text(namespace, identity_id):
    return f"{quoted(namespace)} {quoted(identity_id)}"


def link_text(link):
    """A link of read_profile's or read_identity_graph's `links` or `dropped`: the pair,
    and the record that made it, with its dataset and time."""
    record = quoted(link["record"]) if link["record"] else "(no _id)"
    return (
        f"{identity_text(*link['from'])} -- {identity_text(*link['to'])}  "
        f"by record {record} of {quoted(link['dataset'])} at {link['time']}"
    )


def rule_text(rule):
    return f"rule {quoted(rule)}: {RULES.get(rule, 'a guardrail of the identity graph')}"


def lookup_text(lookup):
    text = (
        f"lookup: {count(lookup['rows_read'], 'row')} read in "
        f"{count(lookup['round_trips'], 'round trip')}"
    )
    if not lookup["complete"]:
        text += "; INCOMPLETE: a bound of the lookup stopped the walk before every link"
    return text


def value_text(value):
    text = escaped(json.dumps(value, ensure_ascii=False))
    if len(text) > MAX_VALUE_CHARS:
        text = f"{text[:MAX_VALUE_CHARS]}... ({len(text)} characters)"
    return text
