"""`ingest publish`: JSON Lines files, byte for byte, or generated test traffic, to a topic."""

import argparse
import dataclasses
import os
import sys
import textwrap
import time
from collections import deque

from google.api_core import exceptions, retry
from google.cloud import pubsub_v1

from ingest import admin
from ingest.common import (
    CommandError,
    HelpFormatter,
    UsageError,
    count,
    default_project,
    logger,
    open_binary,
    positive_integer,
    pubsub_endpoint,
    quoted,
    resource_path,
    without_line_ending,
)
from ingest.dev import generate
from ingest.pubsub import PUBSUB_CALL_TIMEOUT_SECONDS, check_topic_exists

# `publish` waits for the oldest message once this many are in flight: bounded memory.
MAX_MESSAGES_IN_FLIGHT = 1000
PROGRESS_TERMINAL_SECONDS = 0.2  # `publish` rewrites its progress line this often on a terminal
PROGRESS_LOG_SECONDS = 5  # and prints a progress line this often otherwise


DESCRIPTION = (
    "Publish each non-blank line of JSON Lines files as one Pub/Sub message, byte for byte:\n"
    "lines are not parsed, so invalid JSON is published too (to try the dead letter).\n"
    "Only the line ending (\\n or \\r\\n) is left out.\n"
    "Or, with --generate N instead of files, publish N realistic XDM-style messages for the\n"
    "datasets of examples/catalog.yaml: profile records and events about --people persons,\n"
    "some of them invalid, some duplicated, with record times out of order.\n"
    "Progress goes to stderr; a summary to stdout at the end."
)
EPILOG = (
    "examples:\n"
    "  ingest publish --topic ingest-input --dataset web-events examples/records-bare.jsonl\n"
    "  ingest publish --topic ingest-input --generate 10000 --rate 200 --seed 7 --people 50"
)
GENERATED_DESCRIPTION = (
    "Instead of files. An invalid message fails in the pipeline with one of the error classes\n"
    + textwrap.fill(", ".join(generate.INVALID_CLASSES) + ".", width=90)
    + "\n"
    "A duplicate is a byte-identical copy of a recent message, as a retry or a redelivery is."
)


def add_parser(commands):
    publish = commands.add_parser(
        "publish",
        help="publish JSON Lines files, or generated test records, to a Pub/Sub topic",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    publish.add_argument(
        "files", nargs="*", metavar="FILE", help="JSON Lines file; - reads standard input"
    )
    publish.add_argument(
        "--topic", required=True, help="topic name, or its full path projects/P/topics/T"
    )
    publish.add_argument(
        "--project",
        default=default_project(),
        help="project of a short topic name ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)",
    )
    publish.add_argument(
        "--dataset",
        help="value of the message attribute `dataset` (overrides --attribute dataset=...)",
    )
    publish.add_argument(
        "--attribute",
        action="append",
        type=_parse_attribute,
        default=[],
        metavar="KEY=VALUE",
        help="message attribute to set on every message; repeatable",
    )
    publish.add_argument(
        "--rate",
        type=_non_negative_number,
        default=0,
        metavar="R",
        help=f"messages per second, steadily; 0 publishes as fast as it can, "
        f"with at most {MAX_MESSAGES_IN_FLIGHT} unconfirmed at a time",
    )

    generated = publish.add_argument_group("generated messages", GENERATED_DESCRIPTION)
    generated.add_argument(
        "--generate", type=positive_integer, metavar="N", help="publish N generated messages"
    )
    generated.add_argument(
        "--seed",
        type=int,
        help="seed of the generator, for a reproducible stream "
        "(default: a random one, shown in the summary)",
    )
    generated.add_argument(
        "--people",
        type=positive_integer,
        default=generate.DEFAULT_PEOPLE,
        metavar="K",
        help="distinct persons, each with a stable Email and ECID (the same in every run)",
    )
    generated.add_argument(
        "--profile-share",
        type=_share,
        default=generate.DEFAULT_PROFILE_SHARE,
        metavar="S",
        help="share of records that are crm-profiles records; the rest are "
        "events (web-events, and one in ten web-events-archive)",
    )
    generated.add_argument(
        "--invalid-share",
        type=_share,
        default=generate.DEFAULT_INVALID_SHARE,
        metavar="S",
        help="share of messages that are invalid",
    )
    generated.add_argument(
        "--duplicate-share",
        type=_share,
        default=generate.DEFAULT_DUPLICATE_SHARE,
        metavar="S",
        help="share of messages that repeat a recent one",
    )
    generated.add_argument(
        "--out-of-order-seconds",
        type=_non_negative_number,
        default=generate.DEFAULT_OUT_OF_ORDER_SECONDS,
        metavar="SECONDS",
        help="each record's time (an event's timestamp, a profile's "
        "_repo.modifyDate) is now less a random delay of up to this",
    )
    publish.set_defaults(handler=publish_messages)


def _parse_attribute(text):
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _non_negative_number(text):
    try:
        number = float(text)
    except ValueError:
        number = -1
    if not number >= 0 or number == float("inf"):  # `not >=` also refuses nan
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {text!r}")
    return number


def _share(text):
    number = _non_negative_number(text)
    if number > 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return number


def publish_messages(args):
    if bool(args.files) == (args.generate is not None):
        raise UsageError(
            "give either FILE... or --generate N" + (", not both" if args.files else "")
        )
    topic_path = resource_path(args.topic, args.project, "topics")
    attributes = dict(args.attribute)
    if args.dataset is not None:
        attributes["dataset"] = args.dataset
    if args.generate is None:
        for path in args.files:
            if path != "-" and not os.path.isfile(path):
                raise CommandError(f"no such file: {path}")
        source = FileLines(args.files)
        messages, total = source, None
    else:
        try:
            source = generate.RecordGenerator(
                seed=args.seed,
                people=args.people,
                profile_share=args.profile_share,
                invalid_share=args.invalid_share,
                duplicate_share=args.duplicate_share,
                out_of_order_seconds=args.out_of_order_seconds,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        messages = (
            (f"generated message {number}", message.payload)
            for number, message in enumerate(source.messages(args.generate), start=1)
        )
        total = args.generate
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")

    outcome = publish_all(topic_path, messages, attributes, rate=args.rate, total=total)

    summary = f"Published {count(outcome.published, 'message')} to {topic_path}"
    if attributes:
        summary += " with attributes " + " ".join(
            f"{key}={quoted(value)}" for key, value in attributes.items()
        )
    if isinstance(source, FileLines) and source.skipped:
        summary += f" ({count(source.skipped, 'blank line')} skipped)"
    print(
        f"{summary}, {outcome.refused} refused, {outcome.unknown} unknown, in "
        f"{outcome.elapsed_seconds:.1f} s "
        f"({outcome.published / max(outcome.elapsed_seconds, 1e-9):,.0f} messages/s)."
    )
    if isinstance(source, generate.RecordGenerator):
        by_class = ", ".join(
            f"{name} {number}" for name, number in sorted(source.invalid_classes.items())
        )
        print(
            f"Generated with seed {source.seed}: {source.counts['valid']} valid, "
            f"{source.counts['invalid']} invalid{f' ({by_class})' if by_class else ''}, "
            f"{count(source.counts['duplicate'], 'duplicate')}."
        )
    if outcome.refused:
        print(
            f"error: {count(outcome.refused, 'message')} refused, not on the topic; the first: "
            f"{outcome.first_refusal}",
            file=sys.stderr,
        )
    if outcome.unknown:
        print(
            f"error: {count(outcome.unknown, 'message')} unknown: the publish gave no answer, "
            "so each may or may not be on the topic. Publishing them again is safe: the lake "
            "writes a message (its dataset and bytes) once within the pipeline's "
            "--dedup_minutes (10), and a record's profile cells are the same however often "
            f"it comes. The first: {outcome.first_unknown}",
            file=sys.stderr,
        )
    if outcome.interrupted:
        print("Interrupted: stopped publishing.", file=sys.stderr)
        return 130
    return 1 if outcome.failed else 0


class FileLines:
    """The non-blank lines of JSON Lines files, byte for byte without their line ending, as
    (where the line came from, message) pairs. Counts the blank lines it skips."""

    def __init__(self, paths):
        self.paths = paths
        self.skipped = 0

    def __iter__(self):
        for path in self.paths:
            with open_binary(path) as lines:
                for line_number, line in enumerate(lines, start=1):
                    message = without_line_ending(line)
                    if not message.strip():
                        self.skipped += 1
                        continue
                    yield f"{'stdin' if path == '-' else path} line {line_number}", message


# Answers that say Pub/Sub did not take the message. Any other failure (a deadline, an
# unavailable service, retries run out) may have come after Pub/Sub stored it.
REFUSALS = (
    exceptions.InvalidArgument,
    exceptions.NotFound,
    exceptions.PermissionDenied,
    exceptions.Unauthenticated,
    exceptions.FailedPrecondition,
)


def publish_refused(error):
    """Whether a failed publish is known not to have reached the topic."""
    return isinstance(error, REFUSALS) or not isinstance(error, exceptions.GoogleAPIError)


@dataclasses.dataclass
class PublishOutcome:
    published: int = 0
    refused: int = 0  # known not to be on the topic
    unknown: int = 0  # no answer: may be on the topic
    first_refusal: str = None  # where the first refused message came from, and why
    first_unknown: str = None
    elapsed_seconds: float = 0.0
    interrupted: bool = False  # by Ctrl-C: what was in flight is still counted

    @property
    def failed(self):
        return self.refused + self.unknown


def publish_all(topic_path, messages, attributes, rate=0, total=None):
    """Publishes each (where it came from, payload) of `messages` to the topic, with the
    attributes, at `rate` messages a second (0: as fast as it can). At most
    MAX_MESSAGES_IN_FLIGHT are unconfirmed at a time: bounded memory. A message that fails is
    counted and the others go on. Shows progress on stderr; `total`, when known, is how many
    messages will come."""
    outcome = PublishOutcome()
    in_flight = deque()  # (where the message came from, its publish future)

    def count_failure(location, error):
        if publish_refused(error):
            outcome.refused += 1
            outcome.first_refusal = outcome.first_refusal or f"{location}: {error!r}"
        else:
            outcome.unknown += 1
            outcome.first_unknown = outcome.first_unknown or f"{location}: {error!r}"

    def wait_for_oldest():
        location, future = in_flight.popleft()
        try:
            future.result()
            outcome.published += 1
        except Exception as error:  # whatever made this message fail: count it and go on
            count_failure(location, error)

    with pubsub_v1.PublisherClient() as publisher:
        check_topic_exists(publisher, topic_path)
        logger.info(
            "Publishing to %s (%s)%s",
            topic_path,
            pubsub_endpoint(),
            f" at {rate:g} messages/s" if rate else "",
        )
        publish_retry = retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS)
        started_at = time.monotonic()
        progress = ProgressLine(started_at, total)
        try:
            for number, (location, message) in enumerate(messages, start=1):
                try:
                    future = publisher.publish(
                        topic_path,
                        message,
                        retry=publish_retry,
                        timeout=PUBSUB_CALL_TIMEOUT_SECONDS,
                        **attributes,
                    )
                    in_flight.append((location, future))
                except Exception as error:  # e.g. a line over Pub/Sub's 10 MB limit
                    count_failure(location, error)
                # Confirmed messages are counted as they come, so that the progress line keeps up.
                while in_flight and (
                    len(in_flight) >= MAX_MESSAGES_IN_FLIGHT or in_flight[0][1].done()
                ):
                    wait_for_oldest()
                progress.show(outcome)
                if rate:
                    # The next message is due number / rate seconds after the start: a steady rate
                    # without drift. Waiting before it is read or generated keeps its times current.
                    time.sleep(max(0.0, started_at + number / rate - time.monotonic()))
        except KeyboardInterrupt:
            outcome.interrupted = True
        while in_flight:
            wait_for_oldest()
        outcome.elapsed_seconds = time.monotonic() - started_at
        progress.finish()
    return outcome


class ProgressLine:
    """How many messages are published and failed so far, and at what rate, on stderr: one
    line rewritten in place on a terminal, else a line every PROGRESS_LOG_SECONDS."""

    def __init__(self, started_at, total=None):
        self.stream = sys.stderr
        self.on_terminal = self.stream.isatty()
        self.every_seconds = PROGRESS_TERMINAL_SECONDS if self.on_terminal else PROGRESS_LOG_SECONDS
        self.started_at = started_at
        self.next_at = started_at + self.every_seconds
        self.total = total
        self.shown = False

    def show(self, outcome):
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.every_seconds
        published = f"{outcome.published:,}" + (f" of {self.total:,}" if self.total else "")
        text = (
            f"published {published}, refused {outcome.refused:,}, unknown {outcome.unknown:,}, "
            f"{outcome.published / (now - self.started_at):,.0f} messages/s"
        )
        if self.on_terminal:
            self.stream.write(f"\r{text}\x1b[K")  # \x1b[K clears what a longer line left
            self.stream.flush()
        else:
            print(text, file=self.stream, flush=True)
        self.shown = True

    def finish(self):
        if self.on_terminal and self.shown:
            self.stream.write("\r\x1b[K")  # the summary says it all
            self.stream.flush()
