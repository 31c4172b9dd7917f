"""`ingest profile get`: the merged profile an identity belongs to, from Bigtable."""

import json
import sys

from google.api_core import exceptions as api_exceptions

from domain.profile_table import read_profile
from ingest import admin
from ingest.clients import open_table
from ingest.common import (
    CommandError,
    HelpFormatter,
    add_command_group,
    add_table_arguments,
    bigtable_endpoint,
    positive_integer,
)

GET_DESCRIPTION = (
    "Print, as JSON, the merged profile that an identity belongs to: any identity linked\n"
    "to the profile finds it, not only its primary one. Each attribute comes with its value,\n"
    "dataset and record time; then the linked identities and the newest events.\n"
    "Exit status 1 when no profile has the identity."
)


def add_parser(commands):
    profile_commands = add_command_group(
        commands,
        "profile",
        help="read merged profiles from Bigtable",
        description="Read the merged profiles the pipeline keeps in Bigtable.",
    )
    get = profile_commands.add_parser(
        "get",
        help="print the merged profile an identity belongs to, as JSON",
        description=GET_DESCRIPTION,
        epilog="example:\n  ingest profile get --namespace Email --id ada@example.com --events 5",
        formatter_class=HelpFormatter,
    )
    get.add_argument(
        "--namespace",
        required=True,
        help="identity namespace, as in identityMap (Email, ECID, ...)",
    )
    get.add_argument("--id", required=True, help="the identity's id in that namespace")
    add_table_arguments(get)
    get.add_argument(
        "--events",
        type=positive_integer,
        default=20,
        help="show at most this many events, newest first",
    )
    get.set_defaults(handler=get_profile)


def get_profile(args):
    admin.check_emulator_host("BIGTABLE_EMULATOR_HOST")
    table = open_table(args.project, args.instance, args.table)
    try:
        profile = read_profile(table, args.namespace, args.id, max_events=args.events)
    except api_exceptions.NotFound:
        raise CommandError(
            f"table {table.name} does not exist ({bigtable_endpoint()}); "
            "`ingest bootstrap --catalog FILE` creates it"
        ) from None
    if profile is None:
        print(
            f"No profile has identity {args.namespace} {args.id!r} in table {table.name} "
            f"({bigtable_endpoint()}).",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(profile, indent=2, ensure_ascii=False))
    return 0
