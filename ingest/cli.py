"""The `ingest` command line: run the local emulator stack, publish test data, read dead letters.

Each command is a `add_..._command(commands)` function that adds its sub-parser and
sets `handler` to the function that runs it: a new command is one more such pair.
Command results go to stdout; progress and errors go to stderr.
"""
import argparse
import json
import logging
import os
import sys
import time
from collections import deque
from contextlib import nullcontext

from google.api_core import exceptions as api_exceptions
from google.api_core import retry
from google.auth.exceptions import GoogleAuthError
from google.cloud import pubsub_v1

from ingest import local_stack

logger = logging.getLogger("ingest")

# Printed first and in this order by `dead-letter pull`; other attributes follow by name.
ERROR_ATTRIBUTES = ("error_class", "error_message", "error_pointer", "error_step", "error_dataset")
PAYLOAD_PREVIEW_CHARS = 200
# `publish` waits for the oldest message once this many are in flight: bounded memory.
MAX_MESSAGES_IN_FLIGHT = 1000
PUBSUB_CALL_TIMEOUT_SECONDS = 60
MAX_MESSAGES_PER_PULL = 100


class CommandError(Exception):
    """A failure to report in one line, without a traceback."""


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
    except (CommandError, local_stack.LocalStackError, api_exceptions.GoogleAPIError, GoogleAuthError) as error:
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
    add_publish_command(commands)
    add_dead_letter_commands(commands)
    return parser


def default_project():
    return os.environ.get("PUBSUB_PROJECT_ID") or os.environ.get("GOOGLE_CLOUD_PROJECT") or local_stack.DEFAULT_PROJECT


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
    up.add_argument("--project", default=local_stack.DEFAULT_PROJECT, help="Google Cloud project id to use")
    up.add_argument("--topic", default=local_stack.DEFAULT_TOPIC, help="input topic")
    up.add_argument("--subscription", default=local_stack.DEFAULT_SUBSCRIPTION,
                    help="subscription on the input topic")
    up.add_argument("--dead-letter-topic", default=local_stack.DEFAULT_DEAD_LETTER_TOPIC,
                    help="topic that receives the records the pipeline rejects")
    up.add_argument("--dead-letter-subscription", default=local_stack.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
                    help="subscription on the dead-letter topic (keeps dead letters for `dead-letter pull`)")
    up.add_argument("--instance", default=local_stack.DEFAULT_INSTANCE,
                    help="Bigtable instance id (the emulator accepts any)")
    up.add_argument("--table", default=local_stack.DEFAULT_TABLE, help="Bigtable table for the profiles")
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
    stack = local_stack.start(args.state_dir, args.pubsub_port, args.bigtable_port, timeout=args.timeout)
    local_stack.create_resources(
        project=args.project,
        topic=args.topic,
        subscription=args.subscription,
        dead_letter_topic=args.dead_letter_topic,
        dead_letter_subscription=args.dead_letter_subscription,
        instance=args.instance,
        table=args.table,
        pubsub_emulator_host=stack.pubsub.address,
        bigtable_emulator_host=stack.bigtable.address,
    )
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
# ingest publish


def add_publish_command(commands):
    publish = commands.add_parser(
        "publish",
        help="publish JSON Lines files to a Pub/Sub topic, one message per line",
        description=(
            "Publish each non-blank line of JSON Lines files as one Pub/Sub message, byte for byte:\n"
            "lines are not parsed, so invalid JSON is published too (to try the dead letter).\n"
            "Only the line ending (\\n or \\r\\n) is left out."
        ),
        epilog="example:\n  ingest publish --topic ingest-input --dataset web-events examples/records-bare.jsonl",
        formatter_class=HelpFormatter,
    )
    publish.add_argument("files", nargs="+", metavar="FILE", help="JSON Lines file; - reads standard input")
    publish.add_argument("--topic", required=True, help="topic name, or its full path projects/P/topics/T")
    publish.add_argument("--project", default=default_project(),
                         help="project of a short topic name ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)")
    publish.add_argument("--dataset",
                         help="value of the message attribute `dataset` (overrides --attribute dataset=...)")
    publish.add_argument("--attribute", action="append", type=_parse_attribute, default=[], metavar="KEY=VALUE",
                         help="message attribute to set on every message; repeatable")
    publish.set_defaults(handler=publish_files)


def _parse_attribute(text):
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def publish_files(args):
    topic_path = _resource_path(args.topic, args.project, "topics")
    attributes = dict(args.attribute)
    if args.dataset is not None:
        attributes["dataset"] = args.dataset
    for path in args.files:
        if path != "-" and not os.path.isfile(path):
            raise CommandError(f"no such file: {path}")
    local_stack.check_emulator_host("PUBSUB_EMULATOR_HOST")

    published = failed = skipped = 0
    first_error = None
    in_flight = deque()  # (where the line came from, its publish future)

    def count_failure(location, error):
        nonlocal failed, first_error
        failed += 1
        first_error = first_error or f"{location}: {error!r}"

    def wait_for_oldest():
        nonlocal published
        location, future = in_flight.popleft()
        try:
            future.result()
            published += 1
        except Exception as error:  # whatever made this message fail: count it and go on
            count_failure(location, error)

    with pubsub_v1.PublisherClient() as publisher:
        _check_topic_exists(publisher, topic_path)
        logger.info("Publishing to %s (%s)", topic_path, _pubsub_endpoint())
        publish_retry = retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS)
        for path in args.files:
            with _open_binary(path) as lines:
                for line_number, line in enumerate(lines, start=1):
                    message = _without_line_ending(line)
                    if not message.strip():
                        skipped += 1
                        continue
                    location = f"{'stdin' if path == '-' else path} line {line_number}"
                    try:
                        future = publisher.publish(
                            topic_path, message, retry=publish_retry, timeout=PUBSUB_CALL_TIMEOUT_SECONDS,
                            **attributes,
                        )
                    except Exception as error:  # e.g. a line over Pub/Sub's 10 MB limit
                        count_failure(location, error)
                        continue
                    in_flight.append((location, future))
                    if len(in_flight) >= MAX_MESSAGES_IN_FLIGHT:
                        wait_for_oldest()
        while in_flight:
            wait_for_oldest()

    summary = f"Published {_count(published, 'message')} to {topic_path}"
    if attributes:
        summary += " with attributes " + " ".join(f"{key}={_quoted(value)}" for key, value in attributes.items())
    if skipped:
        summary += f" ({_count(skipped, 'blank line')} skipped)"
    print(summary + ".")
    if failed:
        print(f"error: {_count(failed, 'message')} failed to publish; the first error: {first_error}", file=sys.stderr)
        return 1
    return 0


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
    pull.add_argument("--subscription", default=local_stack.DEFAULT_DEAD_LETTER_SUBSCRIPTION,
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
    local_stack.check_emulator_host("PUBSUB_EMULATOR_HOST")
    logger.info("Pulling from %s (%s)", subscription_path, _pubsub_endpoint())
    shown = 0
    seen_message_ids = set()
    held_ack_ids = []
    pull_retry = retry.Retry(timeout=PUBSUB_CALL_TIMEOUT_SECONDS)
    with pubsub_v1.SubscriberClient() as subscriber:
        try:
            quiet_until = time.monotonic() + args.wait
            while shown < args.max:
                seconds_left = quiet_until - time.monotonic()
                if seconds_left <= 0:
                    break
                try:
                    response = subscriber.pull(
                        request={"subscription": subscription_path,
                                 "max_messages": min(args.max - shown, MAX_MESSAGES_PER_PULL)},
                        retry=pull_retry,
                        timeout=max(seconds_left, 1.0),
                    )
                except api_exceptions.DeadlineExceeded:
                    continue
                except api_exceptions.NotFound:
                    raise CommandError(
                        f"subscription {subscription_path} does not exist ({_pubsub_endpoint()}). "
                        "`ingest local up --dead-letter-subscription NAME` creates it on the emulator."
                    ) from None
                ack_ids = []
                for received in response.received_messages:
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
    payload = message.data.decode("utf-8", errors="replace")
    preview = payload[:PAYLOAD_PREVIEW_CHARS]
    # One line per message, whatever the payload holds.
    preview = preview.replace("\r", "\\r").replace("\n", "\\n")
    if len(payload) > PAYLOAD_PREVIEW_CHARS:
        preview += f"... ({len(message.data)} bytes)"
    fields.append(f"payload={preview}")
    return " ".join(fields)


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


def _pubsub_endpoint():
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        return f"Pub/Sub emulator at {host}"
    return "Google Cloud Pub/Sub: PUBSUB_EMULATOR_HOST is not set"
