"""`ingest bootstrap`: create or update the Bigtable table of profiles for a catalog."""

import datetime

from google.cloud.bigtable import column_family as bigtable_column_family

from domain.profile_table import column_families
from ingest import admin
from ingest.common import (
    HelpFormatter,
    add_table_arguments,
    bigtable_endpoint,
    count,
    load_catalog,
    logger,
)

DESCRIPTION = (
    "Create the Bigtable table of profiles with the column families and garbage-collection\n"
    "rules the catalog needs (an events_<N>d family per retention period of the event\n"
    "datasets that feed profiles), on the emulator when BIGTABLE_EMULATOR_HOST is set, else\n"
    "on Cloud Bigtable (the instance must exist). Safe to run again: an existing table keeps\n"
    "its data, missing families are added, GC rules that differ from the catalog's are\n"
    "updated, and families the catalog no longer needs are reported but not deleted."
)
EPILOG = (
    "example:\n"
    "  ingest bootstrap --catalog examples/catalog.yaml --project my-project --instance profiles"
)


def add_parser(commands):
    bootstrap = commands.add_parser(
        "bootstrap",
        help="create or update the Bigtable profile table for a catalog",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    bootstrap.add_argument(
        "--catalog", required=True, metavar="FILE", help="dataset catalog, YAML or JSON"
    )
    add_table_arguments(bootstrap)
    bootstrap.set_defaults(handler=bootstrap_table)


def bootstrap_table(args):
    catalog = load_catalog(args.catalog)
    admin.check_emulator_host("BIGTABLE_EMULATOR_HOST")
    logger.info(
        "Bootstrapping table %s of instance %s in project %s (%s)",
        args.table,
        args.instance,
        args.project,
        bigtable_endpoint(),
    )
    families = column_families(catalog)
    setup = admin.create_or_update_table(args.project, args.instance, args.table, families)
    print(f"Created table {setup.name}:" if setup.created else f"Table {setup.name} exists:")
    width = max(len(family) for family in setup.families)
    for family, outcome in setup.families.items():
        if outcome == admin.FAMILY_NOT_USED:
            print(f"  {family:<{width}}  {outcome} (kept, with its data)")
        else:
            print(f"  {family:<{width}}  {outcome:<12}  {describe_gc_rule(families[family])}")
    return 0


def describe_gc_rule(rule):
    """A garbage-collection rule in words: what a cell must satisfy to be kept."""
    if isinstance(rule, bigtable_column_family.MaxVersionsGCRule):
        return f"newest {count(rule.max_num_versions, 'version')}"
    if isinstance(rule, bigtable_column_family.MaxAgeGCRule):
        if rule.max_age % datetime.timedelta(days=1):
            return f"at most {rule.max_age} old"
        return f"at most {count(rule.max_age.days, 'day')} old"
    # A union collects a cell that any of its rules would; an intersection one that all would.
    if isinstance(rule, bigtable_column_family.GCRuleUnion):
        return " and ".join(describe_gc_rule(part) for part in rule.rules)
    if isinstance(rule, bigtable_column_family.GCRuleIntersection):
        return " or ".join(describe_gc_rule(part) for part in rule.rules)
    return "every version, forever"
