"""`ingest local up | down`: the local stack of emulators, with the pipeline's resources."""

import os

from ingest import admin
from ingest.common import EXAMPLE_CATALOG, HelpFormatter, add_command_group, load_catalog, logger
from ingest.dev import local_stack

UP_DESCRIPTION = (
    "Start the Pub/Sub and Bigtable emulators in the background (from the Google Cloud CLI,\n"
    "or with Docker if the CLI's emulators are not installed), create the input topic and\n"
    "subscription, the dead-letter topic and subscription and the Bigtable table, and print\n"
    "the environment variables that point the Google client libraries at them.\n"
    "Running it again while the stack is up only re-creates what is missing."
)
UP_EPILOG = (
    'example:\n  eval "$(ingest local up)"    # start, and export the settings into this shell'
)


def add_parser(commands):
    local_commands = add_command_group(
        commands,
        "local",
        help="start or stop the local Pub/Sub and Bigtable emulators",
        description="Start or stop the local stack of Google's Pub/Sub and Bigtable emulators.",
    )

    up = local_commands.add_parser(
        "up",
        help="start the emulators and create the topics, subscriptions and table",
        description=UP_DESCRIPTION,
        epilog=UP_EPILOG,
        formatter_class=HelpFormatter,
    )
    _add_state_dir_argument(up)
    up.add_argument(
        "--pubsub-port",
        type=int,
        default=local_stack.DEFAULT_PUBSUB_PORT,
        help="port of the Pub/Sub emulator; 0 picks a free port",
    )
    up.add_argument(
        "--bigtable-port",
        type=int,
        default=local_stack.DEFAULT_BIGTABLE_PORT,
        help="port of the Bigtable emulator; 0 picks a free port",
    )
    up.add_argument(
        "--project", default=admin.DEFAULT_PROJECT, help="Google Cloud project id to use"
    )
    up.add_argument("--topic", default=admin.DEFAULT_TOPIC, help="input topic")
    up.add_argument(
        "--subscription", default=admin.DEFAULT_SUBSCRIPTION, help="subscription on the input topic"
    )
    up.add_argument(
        "--dead-letter-topic",
        default=admin.DEFAULT_DEAD_LETTER_TOPIC,
        help="topic that receives the records the pipeline rejects",
    )
    up.add_argument(
        "--dead-letter-subscription",
        default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
        help="subscription on the dead-letter topic (keeps dead letters for `dead-letter pull`)",
    )
    up.add_argument(
        "--instance",
        default=admin.DEFAULT_INSTANCE,
        help="Bigtable instance id (the emulator accepts any)",
    )
    up.add_argument("--table", default=admin.DEFAULT_TABLE, help="Bigtable table for the profiles")
    up.add_argument(
        "--catalog",
        metavar="FILE",
        default=EXAMPLE_CATALOG if os.path.isfile(EXAMPLE_CATALOG) else None,
        help="dataset catalog whose event datasets decide the table's event column families",
    )
    up.add_argument(
        "--timeout",
        type=float,
        default=local_stack.STARTUP_TIMEOUT_SECONDS,
        help="seconds to wait for the emulators to be ready",
    )
    up.set_defaults(handler=local_up)

    down = local_commands.add_parser(
        "down",
        help="stop the emulators",
        description="Stop the emulators that `ingest local up` started. "
        "Their data (in memory) is lost.",
        formatter_class=HelpFormatter,
    )
    _add_state_dir_argument(down)
    down.set_defaults(handler=local_down)


def _add_state_dir_argument(parser):
    parser.add_argument(
        "--state-dir",
        default=local_stack.DEFAULT_STATE_DIR,
        help="folder for stack.json (what is running) and the emulators' logs",
    )


def local_up(args):
    catalog = load_catalog(args.catalog) if args.catalog else None
    stack = local_stack.start(
        args.state_dir, args.pubsub_port, args.bigtable_port, timeout=args.timeout
    )
    admin.create_resources(
        project=args.project,
        topic=args.topic,
        subscription=args.subscription,
        dead_letter_topic=args.dead_letter_topic,
        dead_letter_subscription=args.dead_letter_subscription,
        instance=args.instance,
        table=args.table,
        pubsub_emulator_host=stack.pubsub.address,
        bigtable_emulator_host=stack.bigtable.address,
        catalog=catalog,
    )
    if catalog is None:
        logger.info(
            "No catalog given: the table has no column families for events yet; "
            "`ingest bootstrap --catalog FILE` adds them."
        )
    for line in local_stack.export_lines(local_stack.environment(stack, args.project)):
        print(line)
    logger.info(
        'The local stack is up. Export its settings with eval "$(ingest local up)" '
        "(with the options used here); stop it with: ingest local down"
    )
    return 0


def local_down(args):
    stopped = local_stack.stop(args.state_dir)
    for emulator in stopped:
        logger.info("Stopped the %s on %s.", emulator.spec.title, emulator.address)
    if not stopped:
        logger.info("No local stack is running from %s.", args.state_dir)
    return 0
