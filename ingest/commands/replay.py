"""`ingest replay`: dead letters republished to the input topic after a fix, each acknowledged
only once its copy is published."""

import datetime
import sys
from collections import Counter

from google.api_core import retry
from google.cloud import pubsub_v1

from domain.dead_letters import without_error_attributes
from domain.pubsub_clients import subscriber_client
from ingest import admin
from ingest.common import (
    HelpFormatter,
    count,
    default_project,
    logger,
    positive_integer,
    pubsub_endpoint,
    quoted,
    resource_path,
)
from ingest.pubsub import (
    PUBSUB_CALL_TIMEOUT_SECONDS,
    SubscriptionReader,
    check_topic_exists,
    payload_preview,
)

DESCRIPTION = (
    "After a fix (a schema change, a new dataset in the catalog), republish dead-lettered\n"
    "messages to the input topic: the payload unchanged, with the message's own attributes\n"
    "(the error_* attributes the pipeline added are left out). --error-class and --dataset\n"
    "choose which, by their error_class and error_dataset attributes; the others stay on the\n"
    "dead-letter subscription, as do dead letters published after the replay began (a\n"
    "replayed message that fails again must not be replayed again and again).\n"
    "A dead letter is acknowledged only once its copy is published: a crash loses nothing;\n"
    "at worst a message is both republished and still dead-lettered.\n"
    "Stops after --max replayed messages, when no new dead letter has come for --wait\n"
    "seconds, or when a pull brings only dead letters already seen."
)
EPILOG = (
    "examples:\n"
    "  ingest replay --error-class unknown_dataset --dataset loyalty-events --dry-run\n"
    "  ingest replay --error-class schema_violation --dataset crm-profiles"
)


def add_parser(commands):
    replay = commands.add_parser(
        "replay",
        help="republish dead letters to the input topic, after a fix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    replay.add_argument(
        "--subscription",
        default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
        help="dead-letter subscription name, or its full path projects/P/subscriptions/S",
    )
    replay.add_argument(
        "--topic",
        default=admin.DEFAULT_TOPIC,
        help="input topic to republish to: a name, or its full path projects/P/topics/T",
    )
    replay.add_argument(
        "--project",
        default=default_project(),
        help="project of short names ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)",
    )
    replay.add_argument(
        "--error-class",
        action="extend",
        nargs="+",
        default=[],
        metavar="CLASS",
        help="replay only dead letters with one of these error classes; repeatable",
    )
    replay.add_argument(
        "--dataset",
        action="extend",
        nargs="+",
        default=[],
        metavar="DATASET",
        help="replay only dead letters with one of these error_dataset values; repeatable",
    )
    replay.add_argument("--max", type=positive_integer, help="stop after replaying this many")
    replay.add_argument(
        "--wait",
        type=float,
        default=5.0,
        help="stop when no new dead letter has come for this many seconds",
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be replayed; publish nothing, acknowledge nothing",
    )
    replay.set_defaults(handler=replay_dead_letters)


def replay_dead_letters(args):
    subscription_path = resource_path(args.subscription, args.project, "subscriptions")
    topic_path = resource_path(args.topic, args.project, "topics")
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")
    started_at = datetime.datetime.now(datetime.timezone.utc)
    left_by_class = Counter()
    newer_count = 0
    replayed = 0
    failures = []

    with pubsub_v1.PublisherClient() as publisher, subscriber_client() as subscriber:
        check_topic_exists(publisher, topic_path)
        logger.info(
            "Replaying dead letters from %s to %s (%s)%s",
            subscription_path,
            topic_path,
            pubsub_endpoint(),
            ", dry run" if args.dry_run else "",
        )
        # Dead letters not replayed are held, and released when done, so that they stay.
        with SubscriptionReader(
            subscriber, subscription_path, args.wait, stop_at_repeats=True
        ) as reader:

            def leave(received):
                reader.hold([received])
                left_by_class[received.message.attributes.get("error_class", "none")] += 1

            remaining = (lambda: None) if args.max is None else (lambda: args.max - replayed)
            for new_messages in reader.batches(remaining):
                chosen = []
                for received in new_messages:
                    if received.message.publish_time > started_at:
                        newer_count += 1
                        leave(received)
                    elif _should_replay(received.message, args):
                        chosen.append(received)
                    else:
                        leave(received)
                if args.dry_run:
                    for received in chosen:
                        print(
                            f"would replay {received.message.message_id} "
                            f"{_reason_and_payload(received.message)}"
                        )
                    reader.hold(chosen)
                    replayed += len(chosen)
                else:
                    published, failed = _republish(publisher, topic_path, chosen)
                    for received, new_message_id in published:
                        print(
                            f"replayed {received.message.message_id} as {new_message_id} "
                            f"{_reason_and_payload(received.message)}"
                        )
                    reader.acknowledge([received for received, _ in published])
                    replayed += len(published)
                    for received, error in failed:
                        leave(received)
                        failures.append(f"{received.message.message_id}: {error!r}")
                logger.info(
                    "%s so far: %d %s, %d left",
                    count(len(reader.seen_message_ids), "dead letter"),
                    replayed,
                    "to replay" if args.dry_run else "replayed",
                    sum(left_by_class.values()),
                )

    dead_letters = count(len(reader.seen_message_ids), "dead letter")
    left = sum(left_by_class.values())
    by_class = ", ".join(
        f"{error_class} {number}" for error_class, number in sorted(left_by_class.items())
    )
    left_text = f"{left} left: {by_class}" if left else "0 left"
    if args.dry_run:
        logger.info(
            "Dry run: would replay %d of %s (%s); nothing was published or acknowledged.",
            replayed,
            dead_letters,
            left_text,
        )
    else:
        logger.info("Replayed %d of %s to %s (%s).", replayed, dead_letters, topic_path, left_text)
    if newer_count:
        logger.info(
            "Left alone %s published after the replay began "
            "(a replayed message that failed again would be one).",
            count(newer_count, "dead letter"),
        )
    if failures:
        print(
            f"error: {count(len(failures), 'dead letter')} could not be republished and stay on "
            f"{subscription_path}; the first error: {failures[0]}",
            file=sys.stderr,
        )
        return 1
    return 0


def _should_replay(message, args):
    attributes = message.attributes
    if args.error_class and attributes.get("error_class") not in args.error_class:
        return False
    if args.dataset and attributes.get("error_dataset") not in args.dataset:
        return False
    return True


def _republish(publisher, topic_path, dead_letters):
    """Publishes a copy of each dead letter, its payload unchanged, with the attributes it had
    before the pipeline added its error_* ones, and waits for each. Returns the
    (dead letter, new message id) pairs published and the (dead letter, error) pairs not."""
    in_flight = []
    failed = []
    for received in dead_letters:
        try:
            future = publisher.publish(
                topic_path,
                received.message.data,
                retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
                timeout=PUBSUB_CALL_TIMEOUT_SECONDS,
                **without_error_attributes(received.message.attributes),
            )
        except Exception as error:
            # E.g. an attribute named like an argument of publish(): topic, timeout.
            failed.append((received, error))
            continue
        in_flight.append((received, future))
    published = []
    for received, future in in_flight:
        try:
            published.append((received, future.result()))
        except Exception as error:  # whatever made this copy fail: the dead letter stays
            failed.append((received, error))
    return published, failed


def _reason_and_payload(message):
    reason = " ".join(
        f"{name}={quoted(message.attributes.get(name, ''))}"
        for name in ("error_class", "error_dataset")
    )
    return f"{reason} payload={payload_preview(message.data)}"
