"""`ingest dead-letter pull`: the messages the pipeline rejected, with the reasons it gave."""

import argparse
import json

from domain.dead_letters import ERROR_ATTRIBUTES
from domain.pubsub_clients import subscriber_client
from ingest import admin
from ingest.common import (
    HelpFormatter,
    add_command_group,
    count,
    default_project,
    escaped,
    logger,
    pubsub_endpoint,
    quoted,
    resource_path,
)
from ingest.pubsub import PAYLOAD_PREVIEW_CHARS, SubscriptionReader, payload_preview

PULL_DESCRIPTION = (
    "Pull messages from a dead-letter subscription and print one line per message:\n"
    "its publish time, its attributes (error_class, error_message, error_pointer,\n"
    "error_step, error_dataset first, then any others) and its payload, cut to\n"
    f"{PAYLOAD_PREVIEW_CHARS} characters. Stops after --max messages or when none has come\n"
    "for --wait seconds. Without --ack the messages stay on the subscription."
)


def add_parser(commands):
    dead_letter_commands = add_command_group(
        commands,
        "dead-letter",
        help="read the records the pipeline rejected",
        description="Read the records the pipeline rejected, with the reasons it gave.",
    )
    pull = dead_letter_commands.add_parser(
        "pull",
        help="print dead-lettered messages: their error attributes and payload",
        description=PULL_DESCRIPTION,
        epilog="example:\n  ingest dead-letter pull --subscription ingest-dead-letter-sub --max 20",
        formatter_class=HelpFormatter,
    )
    pull.add_argument(
        "--subscription",
        default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
        help="subscription name, or its full path projects/P/subscriptions/S",
    )
    pull.add_argument(
        "--project",
        default=default_project(),
        help="project of a short subscription name "
        "($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)",
    )
    pull.add_argument("--max", type=int, default=100, help="stop after this many messages")
    pull.add_argument(
        "--wait",
        type=float,
        default=5.0,
        help="stop when no message has come for this many seconds",
    )
    pull.add_argument(
        "--ack",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="acknowledge (remove) the messages printed; "
        "with --no-ack they are released for redelivery",
    )
    pull.add_argument(
        "--json",
        action="store_true",
        help="print each message as a JSON object (with the whole payload) on its own line",
    )
    pull.set_defaults(handler=pull_dead_letters)


def pull_dead_letters(args):
    subscription_path = resource_path(args.subscription, args.project, "subscriptions")
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")
    logger.info("Pulling from %s (%s)", subscription_path, pubsub_endpoint())
    line_of = _message_as_json if args.json else _message_as_line
    shown = 0

    def remaining():
        return args.max - shown

    with subscriber_client() as subscriber:
        # Without --ack, a message held past its ack deadline comes again: the reader gives it once.
        with SubscriptionReader(
            subscriber, subscription_path, args.wait, ack_repeats=args.ack
        ) as reader:
            for received_messages in reader.batches(remaining):
                for received in received_messages:
                    print(line_of(received.message))
                    shown += 1
                if args.ack:
                    reader.acknowledge(received_messages)
                else:
                    reader.hold(received_messages)

    if not shown:
        logger.info("No message came from %s within %s s.", subscription_path, args.wait)
    elif args.ack:
        logger.info(
            "%s from %s, acknowledged (removed).", count(shown, "message"), subscription_path
        )
    else:
        logger.info(
            "%s from %s, left on the subscription (--ack removes them).",
            count(shown, "message"),
            subscription_path,
        )
    return 0


def _ordered_attributes(attributes):
    names = [name for name in ERROR_ATTRIBUTES if name in attributes]
    names += sorted(name for name in attributes if name not in ERROR_ATTRIBUTES)
    return {name: attributes[name] for name in names}


def _message_as_line(message):
    fields = [message.publish_time.strftime("%Y-%m-%dT%H:%M:%SZ")]
    for name, value in _ordered_attributes(message.attributes).items():
        fields.append(f"{name}={quoted(value)}")
    fields.append(f"payload={payload_preview(message.data)}")
    return " ".join(fields)


def _message_as_json(message):
    return escaped(
        json.dumps(
            {
                "message_id": message.message_id,
                "publish_time": message.publish_time.isoformat(),
                "attributes": _ordered_attributes(message.attributes),
                "payload": message.data.decode("utf-8", errors="replace"),
            },
            ensure_ascii=False,
        )
    )
