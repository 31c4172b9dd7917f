"""`ingest identity get`: the identity graph an identity belongs to, from Bigtable."""

import sys

from domain.profile_lookup import read_identity_graph
from ingest.common import (
    HelpFormatter,
    add_command_group,
    bigtable_endpoint,
    count,
    terminal_json,
)
from ingest.lookups import (
    add_lookup_arguments,
    identity_text,
    link_text,
    lookup_text,
    read_table,
    rule_text,
)

GET_DESCRIPTION = (
    "Print the identity graph an identity belongs to, as the catalog's identity rules\n"
    "resolve it from the links stored in Bigtable: its identities; the links that hold it,\n"
    "newest first, each a pair of identities with the record (_id and dataset) that made it\n"
    "and the record's time; and the links a guardrail dropped, with the rule (unique\n"
    "namespaces, the cap on identities, a delete, a person identity sent without proof\n"
    "from an untrusted dataset: unproven). A record of three identities makes three\n"
    "links, one per pair.\n"
    "Exit status 1 when no link names the identity: its graph is itself alone."
)


def add_parser(commands):
    identity_commands = add_command_group(
        commands,
        "identity",
        help="read identity graphs from Bigtable",
        description="Read the identity graphs the pipeline's links make in Bigtable.",
    )
    get = identity_commands.add_parser(
        "get",
        help="print the identity graph an identity belongs to, with its links",
        description=GET_DESCRIPTION,
        epilog="example:\n  ingest identity get --namespace Email --id ada@example.com",
        formatter_class=HelpFormatter,
    )
    add_lookup_arguments(get, "identity rules (priority, unique namespaces, max_identities)")
    get.set_defaults(handler=get_identity_graph)


def get_identity_graph(args):
    table, graph = read_table(
        args,
        lambda table, catalog: read_identity_graph(
            table, catalog.identity_rules, args.namespace, args.id
        ),
    )
    if not graph["links"] and not graph["dropped"]:
        print(
            f"No link names identity {identity_text(args.namespace, args.id)} in table "
            f"{table.name} ({bigtable_endpoint()}): its graph is itself alone.",
            file=sys.stderr,
        )
        return 1
    print(terminal_json(graph) if args.json else graph_text(args, graph))
    return 0


def graph_text(args, graph):
    identities, links, dropped = graph["identities"], graph["links"], graph["dropped"]
    lines = [
        f"Identity graph of {identity_text(args.namespace, args.id)}: "
        f"{count(len(identities), 'identity', 'identities')}, {count(len(links), 'link')}, "
        f"{len(dropped)} dropped ({lookup_text(graph['lookup'])})",
        "",
        "Identities:",
    ]
    lines += [f"  {identity_text(i['namespace'], i['id'])}" for i in identities]
    lines += ["", "Links that hold it, newest first:"]
    lines += [f"  {link_text(link)}" for link in links] or ["  (none)"]
    lines += ["", "Links a guardrail dropped:"]
    lines += [f"  {link_text(link)}; {rule_text(link['rule'])}" for link in dropped] or ["  (none)"]
    return "\n".join(lines)
