"""`ingest validate`: records checked offline with the pipeline's own parser and a catalog."""

import dataclasses
import io
import json
import os

from domain.parsing import MAX_ERRORS_PER_RECORD, RecordParser
from domain.records import RecordError
from ingest.common import (
    HelpFormatter,
    UsageError,
    count,
    escaped,
    load_catalog,
    logger,
    open_binary,
    positive_integer,
    without_line_ending,
)

DESCRIPTION = (
    "Parse and validate records with the pipeline's own code and a catalog, without Pub/Sub,\n"
    "and print one line per record: `ok` and its dataset, or `invalid`, the error class and\n"
    "the message the dead letter would carry, then each schema violation on its own line.\n"
    "A file whose whole content is JSON is one document: an object is one record, an array\n"
    "a list of records (shown as FILE[index], counted from 0). Any other file is JSON Lines:\n"
    "each non-blank line is one record, as `ingest publish` would send it.\n"
    "Exit status: 0 when every record is valid, 1 when any is invalid, 2 when the catalog\n"
    "or a file cannot be read (every problem of the catalog is listed)."
)
EPILOG = (
    "example:\n"
    "  ingest validate --catalog examples/catalog.yaml --dataset web-events "
    "examples/records-bare.jsonl"
)


def add_parser(commands):
    validate = commands.add_parser(
        "validate",
        help="check records against the catalog offline, exactly as the pipeline does",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    validate.add_argument(
        "files", nargs="+", metavar="FILE", help="JSON or JSON Lines file; - reads standard input"
    )
    validate.add_argument(
        "--catalog", required=True, help="dataset catalog, YAML or JSON, local or gs://"
    )
    validate.add_argument(
        "--dataset", help="dataset of bare records, as the message attribute `dataset` gives it"
    )
    validate.add_argument(
        "--max-errors",
        type=positive_integer,
        default=MAX_ERRORS_PER_RECORD,
        help="schema violations to find and show per record (the dead letter shows "
        f"{MAX_ERRORS_PER_RECORD}); validation stops there",
    )
    validate.add_argument(
        "--json",
        action="store_true",
        help="print each record's result as a JSON object on its own line",
    )
    validate.set_defaults(handler=validate_files)


def validate_files(args):
    catalog = load_catalog(args.catalog)
    for path in args.files:
        if path != "-" and not os.path.isfile(path):
            raise UsageError(f"no such file: {path}")
    # The validators compute no more errors than are shown, as the pipeline's.
    catalog = dataclasses.replace(catalog, max_errors=args.max_errors)
    parser = RecordParser(catalog, max_errors=args.max_errors)
    attributes = {} if args.dataset is None else {"dataset": args.dataset}

    valid = invalid = 0
    for path in args.files:
        for source, payload in _records_in_file(path):
            result = _validation_result(parser, source, payload, attributes)
            print(
                escaped(json.dumps(result, ensure_ascii=False))
                if args.json
                else _validation_as_text(result)
            )
            if result["valid"]:
                valid += 1
            else:
                invalid += 1
    logger.info("%s: %d valid, %d invalid", count(valid + invalid, "record"), valid, invalid)
    return 1 if invalid else 0


def _records_in_file(path):
    """(where, payload) of each record: a JSON document's object or array items, else lines."""
    name = "stdin" if path == "-" else path
    try:
        with open_binary(path) as handle:
            content = handle.read()
    except OSError as error:
        raise UsageError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        document = json.loads(content.decode("utf-8"))
    except (ValueError, RecursionError):
        # Not one JSON document (UnicodeDecodeError is a ValueError): JSON Lines.
        return _json_lines(name, content)
    if isinstance(document, list):
        return [
            (f"{name}[{index}]", json.dumps(element).encode("utf-8"))
            for index, element in enumerate(document)
        ]
    first_line = content[: len(content) - len(content.lstrip())].count(b"\n") + 1
    return [(f"{name}:{first_line}", content)]


def _json_lines(name, content):
    records = []
    for line_number, line in enumerate(io.BytesIO(content), start=1):
        payload = without_line_ending(line)
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
        return {
            "source": source,
            "valid": False,
            "dataset": None,
            "error_class": "internal",
            "message": repr(error),
            "errors": [],
        }
    return {
        "source": source,
        "valid": True,
        "dataset": record.dataset,
        "error_class": None,
        "message": None,
        "errors": [],
    }


def _validation_as_text(result):
    if result["valid"]:
        return escaped(f"{result['source']} ok {result['dataset']}")
    lines = [f"{result['source']} invalid {result['error_class']}: {result['message']}"]
    for violation in result["errors"]:
        lines.append(
            f"    {violation['pointer'] or '/'}  {violation['keyword']}  {violation['message']}"
        )
    return "\n".join(escaped(line) for line in lines)
