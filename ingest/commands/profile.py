"""`ingest profile get`: the unified profile an identity belongs to, from Bigtable."""

import sys

from domain.profile_lookup import read_profile
from ingest.common import (
    HelpFormatter,
    add_command_group,
    bigtable_endpoint,
    count,
    escaped,
    positive_integer,
    quoted,
    terminal_json,
)
from ingest.lookups import (
    add_lookup_arguments,
    identity_text,
    link_text,
    lookup_text,
    read_table,
    rule_text,
    value_text,
)

GET_DESCRIPTION = (
    "Print the unified profile of the person an identity belongs to: the merge, by the\n"
    "catalog's merge policy, of the records of every identity of its identity graph, so a\n"
    "lookup by any of them prints the same profile. Shows each attribute with its value,\n"
    "dataset, record time and the identity whose records it came from; the graph's\n"
    "identities; its events, newest first; how many links hold the graph and the links a\n"
    "guardrail dropped, with the rule (`ingest identity get` shows every link).\n"
    "Exit status 1 when nothing is stored of the identity."
)


def add_parser(commands):
    profile_commands = add_command_group(
        commands,
        "profile",
        help="read unified profiles from Bigtable",
        description="Read the unified profiles of the fragments the pipeline keeps in Bigtable.",
    )
    get = profile_commands.add_parser(
        "get",
        help="print the unified profile an identity belongs to",
        description=GET_DESCRIPTION,
        epilog="example:\n  ingest profile get --namespace Email --id ada@example.com --events 5",
        formatter_class=HelpFormatter,
    )
    add_lookup_arguments(get, "identity rules, merge policy and event datasets")
    get.add_argument(
        "--events",
        type=positive_integer,
        default=20,
        help="show at most this many events, newest first",
    )
    get.set_defaults(handler=get_profile)


def get_profile(args):
    table, profile = read_table(
        args,
        lambda table, catalog: read_profile(
            table, catalog, args.namespace, args.id, max_events=args.events
        ),
    )
    if profile is None:
        print(
            f"No profile has identity {identity_text(args.namespace, args.id)} in table "
            f"{table.name} ({bigtable_endpoint()}).",
            file=sys.stderr,
        )
        return 1
    print(terminal_json(profile) if args.json else profile_text(args, profile))
    return 0


def profile_text(args, profile):
    attributes, identities, events = (
        profile["attributes"],
        profile["identities"],
        profile["events"],
    )
    lines = [
        f"Profile of {identity_text(args.namespace, args.id)}: "
        f"{count(len(identities), 'identity', 'identities')}, "
        f"{count(len(attributes), 'attribute')}, "
        f"{count(len(events), 'event')} shown ({lookup_text(profile['lookup'])})",
        "",
        "Attributes: value, dataset, record time, and the identity it came from",
    ]
    width = max((len(escaped(pointer)) for pointer in attributes), default=0)
    values = {pointer: value_text(a["value"]) for pointer, a in attributes.items()}
    value_width = max(map(len, values.values()), default=0)
    for pointer, attribute in attributes.items():
        lines.append(
            f"  {escaped(pointer):<{width}}  {values[pointer]:<{value_width}}  "
            f"{quoted(attribute['dataset'])}  {attribute['time']}  "
            f"{identity_text(*attribute['identity'])}"
        )
    if not attributes:
        lines.append("  (none: no profile record, or a delete after the last)")
    lines += ["", "Identities:"]
    lines += [f"  {identity_text(i['namespace'], i['id'])}" for i in identities]
    lines += ["", "Events, newest first:"]
    types = [escaped(str(event["eventType"])) for event in events]
    type_width = max(map(len, types), default=0)
    for event, event_type in zip(events, types, strict=True):
        lines.append(
            f"  {event['time']}  {event_type:<{type_width}}  "
            f"{quoted(str(event['_id']))}  {quoted(event['dataset'])}"
        )
    if not events:
        lines.append("  (none)")
    graph = profile["graph"]
    lines += [
        "",
        f"Graph: {count(len(graph['links']), 'link')} hold it; "
        + (
            f"{len(graph['dropped'])} dropped by a guardrail:"
            if graph["dropped"]
            else "none dropped by a guardrail"
        ),
    ]
    for link in graph["dropped"]:
        lines.append(f"  {link_text(link)}; {rule_text(link['rule'])}")
    for removed in profile.get("removed_by_delete", []):
        lines += [
            "",
            f"Removed by the delete of {identity_text(*removed['identity'])} at "
            f"{removed['deleted_at']}: {count(len(removed['records']), 'record')} and "
            f"{count(removed['events'], 'event')} before it",
        ]
        lines += [
            f"  {r['time']}  {quoted(r['dataset'])}  {r['operation']}  {quoted(str(r['_id']))}"
            for r in removed["records"]
        ]
    return "\n".join(lines)
