"""The `ingest` command line: run the local emulator stack, create the profile table, publish
test data, validate records offline, read and replay dead letters, read a merged profile.

Each command is a `add_..._command(commands)` function that adds its sub-parser and
sets `handler` to the function that runs it: a new command is one more such pair.
Command results go to stdout; progress and errors go to stderr.
"""
import argparse
import dataclasses
import datetime
import io
import json
import logging
import os
import sys
import textwrap
import time
from collections import Counter, deque
from contextlib import nullcontext

from google.api_core import exceptions as api_exceptions
from google.api_core import retry
from google.auth.exceptions import GoogleAuthError
from google.cloud import pubsub_v1
from google.cloud.bigtable import column_family as bigtable_column_family

from ingest import admin
from ingest.dev import generate, local_stack
from domain.profile_table import read_profile
from ingest.clients import open_table
from domain.catalog import Catalog, CatalogError
from domain.dead_letters import ERROR_ATTRIBUTES
from domain.profile_table import column_families
from domain.records import RecordError
from domain.parsing import MAX_ERRORS_PER_RECORD, RecordParser

logger = logging.getLogger("ingest")

PAYLOAD_PREVIEW_CHARS = 200
# `publish` waits for the oldest message once this many are in flight: bounded memory.
MAX_MESSAGES_IN_FLIGHT = 1000
PROGRESS_TERMINAL_SECONDS = 0.2  # `publish` rewrites its progress line this often on a terminal
PROGRESS_LOG_SECONDS = 5  # and prints a progress line this often otherwise
PUBSUB_CALL_TIMEOUT_SECONDS = 60
MAX_MESSAGES_PER_PULL = 100
EXAMPLE_CATALOG = "examples/catalog.yaml"  # `local up`'s catalog when run in a clone of this repository


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""


class UsageError(CommandError):
    """Input a command cannot use (a catalog, a file): exit status 2, as for a bad option."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults (but not empty ones) and keeps the descriptions' line breaks."""

    def _get_help_string(self, action):
        if action.default is None or action.default == []:
            return action.help
        return super()._get_help_string(action)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (CommandError, admin.AdminError, local_stack.LocalStackError, api_exceptions.GoogleAPIError,
            GoogleAuthError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Streaming ingestion of XDM-style customer data: local tools.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    add_local_commands(commands)
    add_bootstrap_command(commands)
    add_publish_command(commands)
    add_validate_command(commands)
    add_dead_letter_commands(commands)
    add_replay_command(commands)
    add_profile_commands(commands)
    return parser


def default_project():
    return os.environ.get("PUBSUB_PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT") or admin.DEFAULT_PROJECT


class _StderrHandler(logging.Handler):
    """Prints to whatever sys.stderr is at the time (pytest replaces it for each test)."""

    def emit(self, record):
        print(self.format(record), file=sys.stderr)


def _configure_logging():
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False


# ---------------------------------------------------------------------------
# ingest local up | down


def add_local_commands(commands):
    local = commands.add_parser(
        "local",
        help="start or stop the local Pub/Sub and Bigtable emulators",
        description="Start or stop the local stack of Google's Pub/Sub and Bigtable emulators.",
        formatter_class=HelpFormatter,
    )
    local_commands = local.add_subparsers(title="commands", metavar="COMMAND", required=True)

    up = local_commands.add_parser(
        "up",
        help="start the emulators and create the topics, subscriptions and table",
        description=(
            "Start the Pub/Sub and Bigtable emulators in the background (from the Google Cloud CLI,\n"
            "or with Docker if the CLI's emulators are not installed), create the input topic and\n"
            "subscription, the dead-letter topic and subscription and the Bigtable table, and print\n"
            "the environment variables that point the Google client libraries at them.\n"
            "Running it again while the stack is up only re-creates what is missing."
        ),
        epilog='example:\n  eval "$(ingest local up)"    # start, and export the settings into this shell',
        formatter_class=HelpFormatter,
    )
    _add_state_dir_argument(up)
    up.add_argument("--pubsub-port", type=int, default=local_stack.DEFAULT_PUBSUB_PORT,
                    help="port of the Pub/Sub emulator; 0 picks a free port")
    up.add_argument("--bigtable-port", type=int, default=local_stack.DEFAULT_BIGTABLE_PORT,
                    help="port of the Bigtable emulator; 0 picks a free port")
    up.add_argument("--project", default=admin.DEFAULT_PROJECT, help="Google Cloud project id to use")
    up.add_argument("--topic", default=admin.DEFAULT_TOPIC, help="input topic")
    up.add_argument("--subscription", default=admin.DEFAULT_SUBSCRIPTION,
                    help="subscription on the input topic")
    up.add_argument("--dead-letter-topic", default=admin.DEFAULT_DEAD_LETTER_TOPIC,
                    help="topic that receives the records the pipeline rejects")
    up.add_argument("--dead-letter-subscription", default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
                    help="subscription on the dead-letter topic (keeps dead letters for `dead-letter pull`)")
    up.add_argument("--instance", default=admin.DEFAULT_INSTANCE,
                    help="Bigtable instance id (the emulator accepts any)")
    up.add_argument("--table", default=admin.DEFAULT_TABLE, help="Bigtable table for the profiles")
    up.add_argument("--catalog", metavar="FILE",
                    default=EXAMPLE_CATALOG if os.path.isfile(EXAMPLE_CATALOG) else None,
                    help="dataset catalog whose event datasets decide the table's event column families")
    up.add_argument("--timeout", type=float, default=local_stack.STARTUP_TIMEOUT_SECONDS,
                    help="seconds to wait for the emulators to be ready")
    up.set_defaults(handler=local_up)

    down = local_commands.add_parser(
        "down",
        help="stop the emulators",
        description="Stop the emulators that `ingest local up` started. Their data (in memory) is lost.",
        formatter_class=HelpFormatter,
    )
    _add_state_dir_argument(down)
    down.set_defaults(handler=local_down)


def _add_state_dir_argument(parser):
    parser.add_argument("--state-dir", default=local_stack.DEFAULT_STATE_DIR,
                        help="folder for stack.json (what is running) and the emulators' logs")


def local_up(args):
    catalog = _load_catalog(args.catalog) if args.catalog else None
    stack = local_stack.start(args.state_dir, args.pubsub_port, args.bigtable_port, timeout=args.timeout)
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
        logger.info("No catalog given: the table has no column families for events yet; "
                    "`ingest bootstrap --catalog FILE` adds them.")
    for line in local_stack.export_lines(local_stack.environment(stack, args.project)):
        print(line)
    logger.info(
        'The local stack is up. Export its settings with eval "$(ingest local up)" (with the options used here); '
        "stop it with: ingest local down"
    )
    return 0


def local_down(args):
    stopped = local_stack.stop(args.state_dir)
    for emulator in stopped:
        logger.info("Stopped the %s on %s.", emulator.spec.title, emulator.address)
    if not stopped:
        logger.info("No local stack is running from %s.", args.state_dir)
    return 0


# ---------------------------------------------------------------------------
# ingest bootstrap


def add_bootstrap_command(commands):
    bootstrap = commands.add_parser(
        "bootstrap",
        help="create or update the Bigtable profile table for a catalog",
        description=(
            "Create the Bigtable table of profiles with the column families and garbage-collection\n"
            "rules the catalog needs (an events_<N>d family per retention period of the event\n"
            "datasets that feed profiles), on the emulator when BIGTABLE_EMULATOR_HOST is set, else\n"
            "on Cloud Bigtable (the instance must exist). Safe to run again: an existing table keeps\n"
            "its data, missing families are added, GC rules that differ from the catalog's are\n"
            "updated, and families the catalog no longer needs are reported but not deleted."
        ),
        epilog="example:\n  ingest bootstrap --catalog examples/catalog.yaml --project my-project --instance profiles",
        formatter_class=HelpFormatter,
    )
    bootstrap.add_argument("--catalog", required=True, metavar="FILE", help="dataset catalog, YAML or JSON")
    _add_table_arguments(bootstrap)
    bootstrap.set_defaults(handler=bootstrap_table)


def _add_table_arguments(parser):
    parser.add_argument("--project", default=default_project(),
                        help="project of the Bigtable instance ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)")
    parser.add_argument("--instance", default=admin.DEFAULT_INSTANCE, help="Bigtable instance id")
    parser.add_argument("--table", default=admin.DEFAULT_TABLE, help="Bigtable table of profiles")


def bootstrap_table(args):
    catalog = _load_catalog(args.catalog)
    admin.check_emulator_host("BIGTABLE_EMULATOR_HOST")
    logger.info("Bootstrapping table %s of instance %s in project %s (%s)",
                args.table, args.instance, args.project, _bigtable_endpoint())
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
        return f"newest {_count(rule.max_num_versions, 'version')}"
    if isinstance(rule, bigtable_column_family.MaxAgeGCRule):
        if rule.max_age % datetime.timedelta(days=1):
            return f"at most {rule.max_age} old"
        return f"at most {_count(rule.max_age.days, 'day')} old"
    # A union collects a cell that any of its rules would; an intersection one that all would.
    if isinstance(rule, bigtable_column_family.GCRuleUnion):
        return " and ".join(describe_gc_rule(part) for part in rule.rules)
    if isinstance(rule, bigtable_column_family.GCRuleIntersection):
        return " or ".join(describe_gc_rule(part) for part in rule.rules)
    return "every version, forever"


def _load_catalog(path):
    try:
        return Catalog.load(path)
    except CatalogError as error:
        raise UsageError(str(error)) from None


# ---------------------------------------------------------------------------
# ingest publish


def add_publish_command(commands):
    publish = commands.add_parser(
        "publish",
        help="publish JSON Lines files, or generated test records, to a Pub/Sub topic",
        description=(
            "Publish each non-blank line of JSON Lines files as one Pub/Sub message, byte for byte:\n"
            "lines are not parsed, so invalid JSON is published too (to try the dead letter).\n"
            "Only the line ending (\\n or \\r\\n) is left out.\n"
            "Or, with --generate N instead of files, publish N realistic XDM-style messages for the\n"
            "datasets of examples/catalog.yaml: profile records and events about --people persons,\n"
            "some of them invalid, some duplicated, with record times out of order.\n"
            "Progress goes to stderr; a summary to stdout at the end."
        ),
        epilog=(
            "examples:\n"
            "  ingest publish --topic ingest-input --dataset web-events examples/records-bare.jsonl\n"
            "  ingest publish --topic ingest-input --generate 10000 --rate 200 --seed 7 --people 50"
        ),
        formatter_class=HelpFormatter,
    )
    publish.add_argument("files", nargs="*", metavar="FILE", help="JSON Lines file; - reads standard input")
    publish.add_argument("--topic", required=True, help="topic name, or its full path projects/P/topics/T")
    publish.add_argument("--project", default=default_project(),
                         help="project of a short topic name ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)")
    publish.add_argument("--dataset",
                         help="value of the message attribute `dataset` (overrides --attribute dataset=...)")
    publish.add_argument("--attribute", action="append", type=_parse_attribute, default=[], metavar="KEY=VALUE",
                         help="message attribute to set on every message; repeatable")
    publish.add_argument("--rate", type=_non_negative_number, default=0, metavar="R",
                         help=f"messages per second, steadily; 0 publishes as fast as it can, with at most "
                              f"{MAX_MESSAGES_IN_FLIGHT} unconfirmed at a time")

    generated = publish.add_argument_group(
        "generated messages",
        "Instead of files. An invalid message fails in the pipeline with one of the error classes\n"
        + textwrap.fill(", ".join(generate.INVALID_CLASSES) + ".", width=90) + "\n"
        "A duplicate is a byte-identical copy of a recent message, as a retry or a redelivery is.",
    )
    generated.add_argument("--generate", type=_positive_integer, metavar="N", help="publish N generated messages")
    generated.add_argument("--seed", type=int,
                           help="seed of the generator, for a reproducible stream (default: a random one, "
                                "shown in the summary)")
    generated.add_argument("--people", type=_positive_integer, default=generate.DEFAULT_PEOPLE, metavar="K",
                           help="distinct persons, each with a stable Email and ECID (the same in every run)")
    generated.add_argument("--profile-share", type=_share, default=generate.DEFAULT_PROFILE_SHARE, metavar="S",
                           help="share of records that are crm-profiles records; the rest are events "
                                "(web-events, and one in ten web-events-archive)")
    generated.add_argument("--invalid-share", type=_share, default=generate.DEFAULT_INVALID_SHARE, metavar="S",
                           help="share of messages that are invalid")
    generated.add_argument("--duplicate-share", type=_share, default=generate.DEFAULT_DUPLICATE_SHARE,
                           metavar="S", help="share of messages that repeat a recent one")
    generated.add_argument("--out-of-order-seconds", type=_non_negative_number,
                           default=generate.DEFAULT_OUT_OF_ORDER_SECONDS, metavar="SECONDS",
                           help="each record's time (an event's timestamp, a profile's _repo.modifyDate) is "
                                "now less a random delay of up to this")
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
        raise UsageError("give either FILE... or --generate N" + (", not both" if args.files else ""))
    topic_path = _resource_path(args.topic, args.project, "topics")
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
                seed=args.seed, people=args.people, profile_share=args.profile_share,
                invalid_share=args.invalid_share, duplicate_share=args.duplicate_share,
                out_of_order_seconds=args.out_of_order_seconds,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        messages = ((f"generated message {number}", message.payload)
                    for number, message in enumerate(source.messages(args.generate), start=1))
        total = args.generate
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")

    outcome = publish_all(topic_path, messages, attributes, rate=args.rate, total=total)

    summary = f"Published {_count(outcome.published, 'message')} to {topic_path}"
    if attributes:
        summary += " with attributes " + " ".join(f"{key}={_quoted(value)}" for key, value in attributes.items())
    if isinstance(source, FileLines) and source.skipped:
        summary += f" ({_count(source.skipped, 'blank line')} skipped)"
    print(f"{summary}, {outcome.failed} failed, in {outcome.elapsed_seconds:.1f} s "
          f"({outcome.published / max(outcome.elapsed_seconds, 1e-9):,.0f} messages/s).")
    if isinstance(source, generate.RecordGenerator):
        by_class = ", ".join(f"{name} {count}" for name, count in sorted(source.invalid_classes.items()))
        print(f"Generated with seed {source.seed}: {source.counts['valid']} valid, "
              f"{source.counts['invalid']} invalid{f' ({by_class})' if by_class else ''}, "
              f"{_count(source.counts['duplicate'], 'duplicate')}.")
    if outcome.failed:
        print(f"error: {_count(outcome.failed, 'message')} failed to publish; the first error: "
              f"{outcome.first_error}", file=sys.stderr)
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
            with _open_binary(path) as lines:
                for line_number, line in enumerate(lines, start=1):
                    message = _without_line_ending(line)
                    if not message.strip():
                        self.skipped += 1
                        continue
                    yield f"{'stdin' if path == '-' else path} line {line_number}", message


@dataclasses.dataclass
class PublishOutcome:
    published: int = 0
    failed: int = 0
    first_error: str = None  # where the first failed message came from, and why it failed
    elapsed_seconds: float = 0.0
    interrupted: bool = False  # by Ctrl-C: what was in flight is still counted


def publish_all(topic_path, messages, attributes, rate=0, total=None):
    """Publishes each (where it came from, payload) of `messages` to the topic, with the
    attributes, at `rate` messages a second (0: as fast as it can). At most
    MAX_MESSAGES_IN_FLIGHT are unconfirmed at a time: bounded memory. A message that fails is
    counted and the others go on. Shows progress on stderr; `total`, when known, is how many
    messages will come."""
    outcome = PublishOutcome()
    in_flight = deque()  # (where the message came from, its publish future)

    def count_failure(location, error):
        outcome.failed += 1
        outcome.first_error = outcome.first_error or f"{location}: {error!r}"

    def wait_for_oldest():
        location, future = in_flight.popleft()
        try:
            future.result()
            outcome.published += 1
        except Exception as error:  # whatever made this message fail: count it and go on
            count_failure(location, error)

    with pubsub_v1.PublisherClient() as publisher:
        _check_topic_exists(publisher, topic_path)
        logger.info("Publishing to %s (%s)%s", topic_path, _pubsub_endpoint(),
                    f" at {rate:g} messages/s" if rate else "")
        publish_retry = retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS)
        started_at = time.monotonic()
        progress = ProgressLine(started_at, total)
        try:
            for number, (location, message) in enumerate(messages, start=1):
                try:
                    future = publisher.publish(
                        topic_path, message, retry=publish_retry, timeout=PUBSUB_CALL_TIMEOUT_SECONDS,
                        **attributes,
                    )
                    in_flight.append((location, future))
                except Exception as error:  # e.g. a line over Pub/Sub's 10 MB limit
                    count_failure(location, error)
                # Confirmed messages are counted as they come, so that the progress line keeps up.
                while in_flight and (len(in_flight) >= MAX_MESSAGES_IN_FLIGHT or in_flight[0][1].done()):
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
        text = (f"published {published}, failed {outcome.failed:,}, "
                f"{outcome.published / (now - self.started_at):,.0f} messages/s")
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


def _open_binary(path):
    if path == "-":
        return nullcontext(sys.stdin.buffer)  # not closed afterwards: stdin is not ours
    return open(path, "rb")


def _without_line_ending(line):
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line


def _check_topic_exists(publisher, topic_path):
    try:
        publisher.get_topic(topic=topic_path, retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
                            timeout=PUBSUB_CALL_TIMEOUT_SECONDS)
    except api_exceptions.NotFound:
        raise CommandError(
            f"topic {topic_path} does not exist ({_pubsub_endpoint()}). "
            "`ingest local up --topic NAME` creates it on the emulator."
        ) from None
    except api_exceptions.PermissionDenied:
        pass  # a publisher may lack pubsub.topics.get; publishing will tell


# ---------------------------------------------------------------------------
# ingest validate


def add_validate_command(commands):
    validate = commands.add_parser(
        "validate",
        help="check records against the catalog offline, exactly as the pipeline does",
        description=(
            "Parse and validate records with the pipeline's own code and a catalog, without Pub/Sub,\n"
            "and print one line per record: `ok` and its dataset, or `invalid`, the error class and\n"
            "the message the dead letter would carry, then each schema violation on its own line.\n"
            "A file whose whole content is JSON is one document: an object is one record, an array\n"
            "a list of records (shown as FILE[index], counted from 0). Any other file is JSON Lines:\n"
            "each non-blank line is one record, as `ingest publish` would send it.\n"
            "Exit status: 0 when every record is valid, 1 when any is invalid, 2 when the catalog\n"
            "or a file cannot be read."
        ),
        epilog=(
            "example:\n"
            "  ingest validate --catalog examples/catalog.yaml --dataset web-events examples/records-bare.jsonl"
        ),
        formatter_class=HelpFormatter,
    )
    validate.add_argument("files", nargs="+", metavar="FILE",
                          help="JSON or JSON Lines file; - reads standard input")
    validate.add_argument("--catalog", required=True, help="dataset catalog, YAML or JSON, local or gs://")
    validate.add_argument("--dataset",
                          help="dataset of bare records, as the message attribute `dataset` gives it")
    validate.add_argument("--max-errors", type=_positive_integer, default=MAX_ERRORS_PER_RECORD,
                          help="schema violations to show per record (the dead letter shows "
                               f"{MAX_ERRORS_PER_RECORD})")
    validate.add_argument("--json", action="store_true",
                          help="print each record's result as a JSON object on its own line")
    validate.set_defaults(handler=validate_files)


def _positive_integer(text):
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def validate_files(args):
    catalog = _load_catalog(args.catalog)
    for path in args.files:
        if path != "-" and not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    parser = RecordParser(catalog, max_errors=args.max_errors)
    attributes = {} if args.dataset is None else {"dataset": args.dataset}

    valid = invalid = 0
    for path in args.files:
        for source, payload in _records_in_file(path):
            result = _validation_result(parser, source, payload, attributes)
            print(json.dumps(result, ensure_ascii=False) if args.json else _validation_as_text(result))
            if result["valid"]:
                valid += 1
            else:
                invalid += 1
    logger.info("%s: %d valid, %d invalid", _count(valid + invalid, "record"), valid, invalid)
    return 1 if invalid else 0


def _records_in_file(path):
    """(where, payload) of each record: a JSON document's object or array elements, else JSON Lines."""
    name = "stdin" if path == "-" else path
    try:
        with _open_binary(path) as handle:
            content = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):  # not one JSON document (UnicodeDecodeError is a ValueError)
        return _json_lines(name, content)
    if isinstance(document, list):
        return [(f"{name}[{index}]", json.dumps(element).encode("utf-8"))
                for index, element in enumerate(document)]
    first_line = content[:len(content) - len(content.lstrip())].count(b"\n") + 1
    return [(f"{name}:{first_line}", content)]


def _json_lines(name, content):
    records = []
    for line_number, line in enumerate(io.BytesIO(content), start=1):
        payload = _without_line_ending(line)
        if payload.strip():
            records.append((f"{name}:{line_number}", payload))
    return records


def _validation_result(parser, source, payload, attributes):
    try:
        record = parser.parse(payload, attributes)
    except RecordError as error:
        return {
            "source": source,
            "valid": False,
            "dataset": error.dataset or attributes.get("dataset") or None,
            "error_class": error.error_class,
            "message": error.message,
            "errors": [dataclasses.asdict(violation) for violation in error.violations],
        }
    except Exception as error:  # the pipeline dead-letters these as `internal`: so do we
        return {"source": source, "valid": False, "dataset": None, "error_class": "internal",
                "message": repr(error), "errors": []}
    return {"source": source, "valid": True, "dataset": record.dataset, "error_class": None,
            "message": None, "errors": []}


def _validation_as_text(result):
    if result["valid"]:
        return f"{result['source']} ok {result['dataset']}"
    lines = [f"{result['source']} invalid {result['error_class']}: {result['message']}"]
    for violation in result["errors"]:
        lines.append(f"    {violation['pointer'] or '/'}  {violation['keyword']}  {violation['message']}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# ingest dead-letter pull


def add_dead_letter_commands(commands):
    dead_letter = commands.add_parser(
        "dead-letter",
        help="read the records the pipeline rejected",
        description="Read the records the pipeline rejected, with the reasons it gave.",
        formatter_class=HelpFormatter,
    )
    dead_letter_commands = dead_letter.add_subparsers(title="commands", metavar="COMMAND", required=True)
    pull = dead_letter_commands.add_parser(
        "pull",
        help="print dead-lettered messages: their error attributes and payload",
        description=(
            "Pull messages from a dead-letter subscription and print one line per message:\n"
            "its publish time, its attributes (error_class, error_message, error_pointer,\n"
            "error_step, dataset first, then any others) and its payload, cut to\n"
            f"{PAYLOAD_PREVIEW_CHARS} characters. Stops after --max messages or when none has come\n"
            "for --wait seconds. Without --ack the messages stay on the subscription."
        ),
        epilog="example:\n  ingest dead-letter pull --subscription ingest-dead-letter-sub --max 20",
        formatter_class=HelpFormatter,
    )
    pull.add_argument("--subscription", default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
                      help="subscription name, or its full path projects/P/subscriptions/S")
    pull.add_argument("--project", default=default_project(),
                      help="project of a short subscription name ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)")
    pull.add_argument("--max", type=int, default=100, help="stop after this many messages")
    pull.add_argument("--wait", type=float, default=5.0, help="stop when no message has come for this many seconds")
    pull.add_argument("--ack", action=argparse.BooleanOptionalAction, default=False,
                      help="acknowledge (remove) the messages printed; with --no-ack they are released for redelivery")
    pull.add_argument("--json", action="store_true",
                      help="print each message as a JSON object (with the whole payload) on its own line")
    pull.set_defaults(handler=pull_dead_letters)


def pull_dead_letters(args):
    subscription_path = _resource_path(args.subscription, args.project, "subscriptions")
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")
    logger.info("Pulling from %s (%s)", subscription_path, _pubsub_endpoint())
    shown = 0
    seen_message_ids = set()
    held_ack_ids = []
    with pubsub_v1.SubscriberClient() as subscriber:
        try:
            quiet_until = time.monotonic() + args.wait
            while shown < args.max:
                seconds_left = quiet_until - time.monotonic()
                if seconds_left <= 0:
                    break
                received_messages = _pull(
                    subscriber, subscription_path, min(args.max - shown, MAX_MESSAGES_PER_PULL), seconds_left)
                ack_ids = []
                for received in received_messages:
                    ack_ids.append(received.ack_id)
                    # Without --ack, a message held past its ack deadline comes again: print it once.
                    if received.message.message_id in seen_message_ids:
                        continue
                    seen_message_ids.add(received.message.message_id)
                    print(_message_as_json(received.message) if args.json else _message_as_line(received.message))
                    shown += 1
                    quiet_until = time.monotonic() + args.wait
                if not ack_ids:
                    continue
                if args.ack:
                    subscriber.acknowledge(request={"subscription": subscription_path, "ack_ids": ack_ids})
                else:
                    held_ack_ids.extend(ack_ids)
        finally:
            _release(subscriber, subscription_path, held_ack_ids)

    if not shown:
        logger.info("No message came from %s within %s s.", subscription_path, args.wait)
    elif args.ack:
        logger.info("%s from %s, acknowledged (removed).", _count(shown, "message"), subscription_path)
    else:
        logger.info("%s from %s, left on the subscription (--ack removes them).",
                    _count(shown, "message"), subscription_path)
    return 0


def _pull(subscriber, subscription_path, max_messages, seconds_left):
    """One pull from the subscription: the messages received, none if the call timed out."""
    try:
        response = subscriber.pull(
            request={"subscription": subscription_path, "max_messages": max_messages},
            retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
            timeout=max(seconds_left, 1.0),
        )
    except api_exceptions.DeadlineExceeded:
        return []
    except api_exceptions.NotFound:
        raise CommandError(
            f"subscription {subscription_path} does not exist ({_pubsub_endpoint()}). "
            "`ingest local up --dead-letter-subscription NAME` creates it on the emulator."
        ) from None
    return response.received_messages


def _release(subscriber, subscription_path, ack_ids):
    """Make held messages available again at once, instead of after their ack deadline."""
    for start in range(0, len(ack_ids), 1000):
        subscriber.modify_ack_deadline(request={
            "subscription": subscription_path,
            "ack_ids": ack_ids[start:start + 1000],
            "ack_deadline_seconds": 0,
        })


def _ordered_attributes(attributes):
    names = [name for name in ERROR_ATTRIBUTES if name in attributes]
    names += sorted(name for name in attributes if name not in ERROR_ATTRIBUTES)
    return {name: attributes[name] for name in names}


def _message_as_line(message):
    fields = [message.publish_time.strftime("%Y-%m-%dT%H:%M:%SZ")]
    for name, value in _ordered_attributes(message.attributes).items():
        fields.append(f"{name}={_quoted(value)}")
    fields.append(f"payload={_payload_preview(message.data)}")
    return " ".join(fields)


def _payload_preview(data):
    payload = data.decode("utf-8", errors="replace")
    preview = payload[:PAYLOAD_PREVIEW_CHARS]
    # One line per message, whatever the payload holds.
    preview = preview.replace("\r", "\\r").replace("\n", "\\n")
    if len(payload) > PAYLOAD_PREVIEW_CHARS:
        preview += f"... ({len(data)} bytes)"
    return preview


def _quoted(value):
    if value and not any(character.isspace() or character in "\"'=" for character in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def _message_as_json(message):
    return json.dumps({
        "message_id": message.message_id,
        "publish_time": message.publish_time.isoformat(),
        "attributes": _ordered_attributes(message.attributes),
        "payload": message.data.decode("utf-8", errors="replace"),
    }, ensure_ascii=False)


# ---------------------------------------------------------------------------
# ingest replay


def add_replay_command(commands):
    replay = commands.add_parser(
        "replay",
        help="republish dead letters to the input topic, after a fix",
        description=(
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
        ),
        epilog=(
            "examples:\n"
            "  ingest replay --error-class unknown_dataset --dataset loyalty-events --dry-run\n"
            "  ingest replay --error-class schema_violation --dataset crm-profiles"
        ),
        formatter_class=HelpFormatter,
    )
    replay.add_argument("--subscription", default=admin.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
                        help="dead-letter subscription name, or its full path projects/P/subscriptions/S")
    replay.add_argument("--topic", default=admin.DEFAULT_TOPIC,
                        help="input topic to republish to: a name, or its full path projects/P/topics/T")
    replay.add_argument("--project", default=default_project(),
                        help="project of short names ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)")
    replay.add_argument("--error-class", action="extend", nargs="+", default=[], metavar="CLASS",
                        help="replay only dead letters with one of these error classes; repeatable")
    replay.add_argument("--dataset", action="extend", nargs="+", default=[], metavar="DATASET",
                        help="replay only dead letters with one of these error_dataset values; repeatable")
    replay.add_argument("--max", type=_positive_integer, help="stop after replaying this many")
    replay.add_argument("--wait", type=float, default=5.0,
                        help="stop when no new dead letter has come for this many seconds")
    replay.add_argument("--dry-run", action="store_true",
                        help="print what would be replayed; publish nothing, acknowledge nothing")
    replay.set_defaults(handler=replay_dead_letters)


def replay_dead_letters(args):
    subscription_path = _resource_path(args.subscription, args.project, "subscriptions")
    topic_path = _resource_path(args.topic, args.project, "topics")
    admin.check_emulator_host("PUBSUB_EMULATOR_HOST")
    started_at = datetime.datetime.now(datetime.timezone.utc)
    seen_message_ids = set()
    held_ack_ids = []  # dead letters not replayed: released when done, so they stay
    left_by_class = Counter()
    newer_count = 0
    replayed = 0
    failures = []

    def leave(received):
        held_ack_ids.append(received.ack_id)
        left_by_class[received.message.attributes.get("error_class", "none")] += 1

    with pubsub_v1.PublisherClient() as publisher, pubsub_v1.SubscriberClient() as subscriber:
        _check_topic_exists(publisher, topic_path)
        logger.info("Replaying dead letters from %s to %s (%s)%s", subscription_path, topic_path,
                    _pubsub_endpoint(), ", dry run" if args.dry_run else "")
        try:
            quiet_until = time.monotonic() + args.wait
            while args.max is None or replayed < args.max:
                seconds_left = quiet_until - time.monotonic()
                if seconds_left <= 0:
                    break
                wanted = MAX_MESSAGES_PER_PULL
                if args.max is not None:
                    wanted = min(args.max - replayed, MAX_MESSAGES_PER_PULL)
                received_messages = _pull(subscriber, subscription_path, wanted, seconds_left)
                new_messages = []
                for received in received_messages:
                    if received.message.message_id in seen_message_ids:
                        held_ack_ids.append(received.ack_id)
                    else:
                        seen_message_ids.add(received.message.message_id)
                        new_messages.append(received)
                if received_messages and not new_messages:
                    break  # held dead letters came back past their ack deadline: all have been seen
                if not new_messages:
                    continue
                quiet_until = time.monotonic() + args.wait

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
                        print(f"would replay {received.message.message_id} "
                              f"{_reason_and_payload(received.message)}")
                        held_ack_ids.append(received.ack_id)
                    replayed += len(chosen)
                else:
                    published, failed = _republish(publisher, topic_path, chosen)
                    for received, new_message_id in published:
                        print(f"replayed {received.message.message_id} as {new_message_id} "
                              f"{_reason_and_payload(received.message)}")
                    if published:
                        subscriber.acknowledge(request={
                            "subscription": subscription_path,
                            "ack_ids": [received.ack_id for received, _ in published],
                        })
                    replayed += len(published)
                    for received, error in failed:
                        leave(received)
                        failures.append(f"{received.message.message_id}: {error!r}")
                logger.info("%s so far: %d %s, %d left", _count(len(seen_message_ids), "dead letter"), replayed,
                            "to replay" if args.dry_run else "replayed", sum(left_by_class.values()))
        finally:
            _release(subscriber, subscription_path, held_ack_ids)

    left = sum(left_by_class.values())
    by_class = ", ".join(f"{error_class} {count}" for error_class, count in sorted(left_by_class.items()))
    left_text = f"{left} left: {by_class}" if left else "0 left"
    if args.dry_run:
        logger.info("Dry run: would replay %d of %s (%s); nothing was published or acknowledged.",
                    replayed, _count(len(seen_message_ids), "dead letter"), left_text)
    else:
        logger.info("Replayed %d of %s to %s (%s).",
                    replayed, _count(len(seen_message_ids), "dead letter"), topic_path, left_text)
    if newer_count:
        logger.info("Left alone %s published after the replay began (a replayed message that failed "
                    "again would be one).", _count(newer_count, "dead letter"))
    if failures:
        print(f"error: {_count(len(failures), 'dead letter')} could not be republished and stay on "
              f"{subscription_path}; the first error: {failures[0]}", file=sys.stderr)
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
        original_attributes = {name: value for name, value in received.message.attributes.items()
                               if name not in ERROR_ATTRIBUTES}
        try:
            future = publisher.publish(
                topic_path, received.message.data, retry=retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS),
                timeout=PUBSUB_CALL_TIMEOUT_SECONDS, **original_attributes,
            )
        except Exception as error:  # e.g. an attribute named like an argument of publish(): topic, timeout
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
    reason = " ".join(f"{name}={_quoted(message.attributes.get(name, ''))}"
                      for name in ("error_class", "error_dataset"))
    return f"{reason} payload={_payload_preview(message.data)}"


# ---------------------------------------------------------------------------
# ingest profile get


def add_profile_commands(commands):
    profile = commands.add_parser(
        "profile",
        help="read merged profiles from Bigtable",
        description="Read the merged profiles the pipeline keeps in Bigtable.",
        formatter_class=HelpFormatter,
    )
    profile_commands = profile.add_subparsers(title="commands", metavar="COMMAND", required=True)
    get = profile_commands.add_parser(
        "get",
        help="print the merged profile an identity belongs to, as JSON",
        description=(
            "Print, as JSON, the merged profile that an identity belongs to: any identity linked\n"
            "to the profile finds it, not only its primary one. Each attribute comes with its value,\n"
            "dataset and record time; then the linked identities and the newest events.\n"
            "Exit status 1 when no profile has the identity."
        ),
        epilog="example:\n  ingest profile get --namespace Email --id ada@example.com --events 5",
        formatter_class=HelpFormatter,
    )
    get.add_argument("--namespace", required=True, help="identity namespace, as in identityMap (Email, ECID, ...)")
    get.add_argument("--id", required=True, help="the identity's id in that namespace")
    _add_table_arguments(get)
    get.add_argument("--events", type=_positive_integer, default=20, help="show at most this many events, newest first")
    get.set_defaults(handler=get_profile)


def get_profile(args):
    admin.check_emulator_host("BIGTABLE_EMULATOR_HOST")
    table = open_table(args.project, args.instance, args.table)
    try:
        profile = read_profile(table, args.namespace, args.id, max_events=args.events)
    except api_exceptions.NotFound:
        raise CommandError(
            f"table {table.name} does not exist ({_bigtable_endpoint()}); `ingest bootstrap --catalog FILE` creates it"
        ) from None
    if profile is None:
        print(f"No profile has identity {args.namespace} {args.id!r} in table {table.name} ({_bigtable_endpoint()}).",
              file=sys.stderr)
        return 1
    print(json.dumps(profile, indent=2, ensure_ascii=False))
    return 0


# ---------------------------------------------------------------------------
# shared


def _count(number, noun):
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _resource_path(name, project, kind):
    """projects/<project>/<kind>/<name> from a short name, or a full path checked as such."""
    if name.startswith("projects/"):
        parts = name.split("/")
        if len(parts) != 4 or parts[2] != kind or not parts[1] or not parts[3]:
            raise CommandError(f"expected a name or projects/PROJECT/{kind}/NAME, got {name!r}")
        return name
    if "/" in name:
        raise CommandError(f"expected a name or projects/PROJECT/{kind}/NAME, got {name!r}")
    return f"projects/{project}/{kind}/{name}"


def _bigtable_endpoint():
    host = os.environ.get("BIGTABLE_EMULATOR_HOST")
    if host:
        return f"Bigtable emulator at {host}"
    return "Cloud Bigtable: BIGTABLE_EMULATOR_HOST is not set"


def _pubsub_endpoint():
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        return f"Pub/Sub emulator at {host}"
    return "Google Cloud Pub/Sub: PUBSUB_EMULATOR_HOST is not set"
