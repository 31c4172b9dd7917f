"""The `ingest` command line: run the local emulator stack, create the profile table, publish
test data, validate records offline, read and replay dead letters, read a unified profile
and an identity graph, and serve the HTTP inlet and profile API.

Each command is a module of ingest.commands whose `add_parser(subparsers)` adds its
parser and sets `handler` to the function that runs it: a new command is one more module
in COMMANDS. Command results go to stdout; progress and errors go to stderr.
"""

import argparse
import logging
import sys

from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import GoogleAuthError

from ingest.admin import AdminError
from ingest.commands import (
    bootstrap,
    dead_letter,
    identity,
    local,
    profile,
    publish,
    replay,
    serve,
    validate,
)
from ingest.common import CommandError, HelpFormatter, UsageError, add_subcommands, logger
from ingest.dev.local_stack import LocalStackError

# In the order `ingest --help` lists them.
COMMANDS = (
    local,
    bootstrap,
    publish,
    validate,
    dead_letter,
    replay,
    profile,
    identity,
    serve,
)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging()
    try:
        return args.handler(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (
        CommandError,
        AdminError,
        LocalStackError,
        api_exceptions.GoogleAPIError,
        GoogleAuthError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ingest",
        description="Streaming ingestion of XDM-style customer data: local tools.",
        formatter_class=HelpFormatter,
    )
    commands = add_subcommands(parser)
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


class _StderrHandler(logging.Handler):
    """Prints to whatever sys.stderr is at the time (pytest replaces it for each test)."""

    def emit(self, record):
        print(self.format(record), file=sys.stderr)


def _configure_logging():
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.setLevel(logging.INFO)
        logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
