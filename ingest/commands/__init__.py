"""The `ingest` commands, one module each: its `add_parser(subparsers)` adds the command's
parser and sets `handler` to the function that runs it."""
