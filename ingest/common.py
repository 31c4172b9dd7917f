"""What the commands share: their errors, help format and argument types, resource names,
where the Google clients connect, reading catalogs and input files, and showing untrusted
text on a terminal."""

import argparse
import json
import logging
import os
import sys
from contextlib import nullcontext

from domain.catalog import Catalog, CatalogError
from ingest import admin

logger = logging.getLogger("ingest")
# The catalog `ingest local up`, `profile get` and `identity get` use when run in a clone of
# this repository (a path relative to the current folder).
EXAMPLE_CATALOG = "examples/catalog.yaml"


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


def add_subcommands(parser):
    """The subparsers of a command made of commands (`ingest`, `ingest local`)."""
    return parser.add_subparsers(title="commands", metavar="COMMAND", required=True)


def add_command_group(commands, name, help, description):
    """A command that only groups others, as `local` groups `up` and `down`: its subparsers."""
    group = commands.add_parser(
        name, help=help, description=description, formatter_class=HelpFormatter
    )
    return add_subcommands(group)


def positive_integer(text):
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return number


def default_project():
    return (
        os.environ.get("PUBSUB_PROJECT_ID")
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
        or admin.DEFAULT_PROJECT
    )


def add_table_arguments(parser):
    parser.add_argument(
        "--project",
        default=default_project(),
        help="project of the Bigtable instance ($PUBSUB_PROJECT_ID, else $GOOGLE_CLOUD_PROJECT)",
    )
    parser.add_argument("--instance", default=admin.DEFAULT_INSTANCE, help="Bigtable instance id")
    parser.add_argument("--table", default=admin.DEFAULT_TABLE, help="Bigtable table of profiles")


def count(number, noun, plural=None):
    return f"{number} {noun}" if number == 1 else f"{number} {plural or noun + 's'}"


def quoted(value):
    """A value as one word: as it is where that is unambiguous, else as a JSON string;
    never with raw control characters (escaped())."""
    if (
        value
        and value.isprintable()
        and not any(character.isspace() or character in "\"'=" for character in value)
    ):
        return value
    return escaped(json.dumps(value, ensure_ascii=False))


def escaped(text):
    """Untrusted text made safe to print: every character Python does not count as
    printable (control characters such as a terminal's escape sequences and line breaks,
    bidirectional overrides, lone surrogates) shown as a JSON escape, \\n, \\t or \\uXXXX;
    the rest as it is. Inside a JSON string the escapes stay valid JSON."""
    if text.isprintable():
        return text
    return "".join(
        character if character.isprintable() else _escape(character) for character in text
    )


def _escape(character):
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    code = ord(character)
    if code > 0xFFFF:  # as JSON writes it: a surrogate pair
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def terminal_json(value):
    """`value` as indented JSON (UTF-8 text as it is) with nothing a terminal would act on:
    json.dumps escapes C0 control characters but leaves DEL, C1 controls and
    bidirectional overrides, which escaped() escapes within each line."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    return "\n".join(escaped(line) for line in text.split("\n"))


def add_catalog_argument(parser, uses):
    """--catalog, examples/catalog.yaml by default where the current folder has it (a clone
    of this repository), else required. `uses`: what the command takes from it."""
    default = EXAMPLE_CATALOG if os.path.isfile(EXAMPLE_CATALOG) else None
    parser.add_argument(
        "--catalog",
        metavar="FILE",
        default=default,
        required=default is None,
        help=f"dataset catalog, YAML or JSON: its {uses}. Where the current folder has "
        f"{EXAMPLE_CATALOG} (a clone of this repository), that is the default; elsewhere "
        "--catalog is required",
    )


def resource_path(name, project, kind):
    """projects/<project>/<kind>/<name> from a short name, or a full path checked as such."""
    if name.startswith("projects/"):
        parts = name.split("/")
        if len(parts) != 4 or parts[2] != kind or not parts[1] or not parts[3]:
            raise CommandError(f"expected a name or projects/PROJECT/{kind}/NAME, got {name!r}")
        return name
    if "/" in name:
        raise CommandError(f"expected a name or projects/PROJECT/{kind}/NAME, got {name!r}")
    return f"projects/{project}/{kind}/{name}"


def bigtable_endpoint():
    host = os.environ.get("BIGTABLE_EMULATOR_HOST")
    if host:
        return f"Bigtable emulator at {host}"
    return "Cloud Bigtable: BIGTABLE_EMULATOR_HOST is not set"


def pubsub_endpoint():
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if host:
        return f"Pub/Sub emulator at {host}"
    return "Google Cloud Pub/Sub: PUBSUB_EMULATOR_HOST is not set"


def load_catalog(path):
    try:
        return Catalog.load(path)
    except CatalogError as error:
        raise UsageError(str(error)) from None


def open_binary(path):
    if path == "-":
        return nullcontext(sys.stdin.buffer)  # not closed afterwards: stdin is not ours
    return open(path, "rb")


def without_line_ending(line):
    if line.endswith(b"\n"):
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
    return line
