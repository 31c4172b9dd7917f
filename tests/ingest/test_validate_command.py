"""`ingest validate`: records checked offline against the catalog, as the pipeline checks them."""

import io
import json
from pathlib import Path

import pytest

from ingest import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CATALOG = str(EXAMPLES / "catalog.yaml")
RECORDS = str(EXAMPLES / "records.jsonl")
BARE_RECORDS = str(EXAMPLES / "records-bare.jsonl")


def validate(*arguments):
    return cli.main(["validate", "--catalog", CATALOG, *arguments])


def example_record(line_number):
    """The record on that line of examples/records.jsonl, as a dict."""
    return json.loads(Path(RECORDS).read_text().splitlines()[line_number - 1])


def test_the_example_stream_has_18_valid_records_and_the_6_documented_failures(capsys):
    assert validate(RECORDS) == 1

    output = capsys.readouterr()
    lines = output.out.splitlines()
    results = [line for line in lines if not line.startswith(" ")]
    assert len(results) == 24
    assert results[0] == f"{RECORDS}:1 ok crm-profiles"
    assert results[3] == f"{RECORDS}:4 ok web-events"
    assert results[15] == f"{RECORDS}:16 ok web-events-archive"
    assert all(" ok " in line for line in results[:18])
    assert [line.split()[:3] for line in results[18:]] == [
        [f"{RECORDS}:19", "invalid", "not_json:"],
        [f"{RECORDS}:20", "invalid", "not_object:"],
        [f"{RECORDS}:21", "invalid", "unknown_dataset:"],
        [f"{RECORDS}:22", "invalid", "schema_violation:"],
        [f"{RECORDS}:23", "invalid", "schema_violation:"],
        [f"{RECORDS}:24", "invalid", "identity:"],
    ]
    assert results[18].startswith(
        f"{RECORDS}:19 invalid not_json: message is not JSON: Expecting value"
    )
    # Each schema violation follows its record on an indented line: pointer, keyword, message.
    violations = lines[lines.index(results[21]) + 1]
    assert violations == "    /loyalty/points  type  '5400' is not of type 'integer'"
    violations = lines[lines.index(results[22]) + 1]
    assert violations == "    /  required  'timestamp' is a required property"
    assert "24 records: 18 valid, 6 invalid" in output.err


def test_json_output_has_one_object_per_record_with_the_violations(capsys):
    assert validate("--json", RECORDS) == 1

    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [result["valid"] for result in results] == [True] * 18 + [False] * 6
    assert results[0] == {
        "source": f"{RECORDS}:1",
        "valid": True,
        "dataset": "crm-profiles",
        "error_class": None,
        "message": None,
        "errors": [],
    }
    assert [result["error_class"] for result in results[18:]] == [
        "not_json",
        "not_object",
        "unknown_dataset",
        "schema_violation",
        "schema_violation",
        "identity",
    ]
    assert results[20]["dataset"] == "no-such-dataset"
    points, timestamp = results[21], results[22]
    assert points["dataset"] == "crm-profiles"
    assert points["errors"] == [
        {
            "pointer": "/loyalty/points",
            "keyword": "type",
            "message": "'5400' is not of type 'integer'",
        }
    ]
    assert [(error["pointer"], error["keyword"]) for error in timestamp["errors"]] == [
        ("", "required")
    ]
    assert results[23]["errors"] == []


def test_bare_records_need_the_dataset_option(capsys):
    assert validate("--dataset", "web-events", BARE_RECORDS) == 0
    output = capsys.readouterr()
    assert output.out.splitlines() == [f"{BARE_RECORDS}:{line} ok web-events" for line in (1, 2, 3)]
    assert "3 records: 3 valid, 0 invalid" in output.err

    assert validate(BARE_RECORDS) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert all(
        line.startswith(f"{BARE_RECORDS}:") and " invalid unknown_dataset: no dataset" in line
        for line in lines
    )


def test_a_json_array_file_is_a_list_of_records_and_a_json_object_file_one_record(tmp_path, capsys):
    array_file = tmp_path / "records.json"
    array_file.write_text(
        json.dumps([example_record(1), example_record(22), "not a record"], indent=2)
    )
    object_file = tmp_path / "record.json"
    # Pretty-printed, not JSON Lines.
    object_file.write_text("\n\n" + json.dumps(example_record(4), indent=2))

    assert validate(str(array_file), str(object_file)) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{array_file}[0] ok crm-profiles"
    assert lines[1].startswith(f"{array_file}[1] invalid schema_violation: /loyalty/points")
    assert lines[2] == "    /loyalty/points  type  '5400' is not of type 'integer'"
    assert lines[3] == (
        f"{array_file}[2] invalid not_object: a record is a JSON object, not a string"
    )
    assert lines[4] == f"{object_file}:3 ok web-events"
    assert len(lines) == 5


def test_standard_input_is_read_as_a_file(monkeypatch, capsys):
    lines = Path(RECORDS).read_bytes().splitlines()
    stdin = io.TextIOWrapper(io.BytesIO(lines[0] + b"\n\n" + lines[18] + b"\n"))
    monkeypatch.setattr("sys.stdin", stdin)

    assert validate("-") == 1

    output = capsys.readouterr().out.splitlines()
    assert output[0] == "stdin:1 ok crm-profiles"
    assert output[1].startswith("stdin:3 invalid not_json: ")


def test_max_errors_limits_the_violations_found_and_shown(tmp_path, capsys):
    record = example_record(1)
    entity = record["body"]["xdmEntity"]
    entity["homeAddress"]["countryCode"] = "gb"
    entity["loyalty"]["points"] = "1200"
    entity["loyalty"]["tier"] = "diamond"
    records = tmp_path / "three-violations.jsonl"
    records.write_text(json.dumps(record) + "\n")

    assert validate("--max-errors", "2", str(records)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{records}:1 invalid schema_violation: /homeAddress/countryCode: ")
    assert "more" not in lines[0]  # validation stops at the errors shown: the rest are unknown
    assert lines[1:] == [  # the first two the validator finds (in the schema's order)
        "    /homeAddress/countryCode  pattern  'gb' does not match '^[A-Z]{2}$'",
        "    /loyalty/tier  enum  'diamond' is not one of ['bronze', 'silver', 'gold', 'platinum']",
    ]

    assert validate("--json", str(records)) == 1
    result = json.loads(capsys.readouterr().out)
    assert [error["keyword"] for error in result["errors"]] == ["pattern", "type", "enum"]
    assert "more" not in result["message"]


def test_max_errors_must_be_at_least_one(capsys):
    with pytest.raises(SystemExit) as exit_info:
        validate("--max-errors", "0", RECORDS)
    assert exit_info.value.code == 2
    assert "expected a whole number of at least 1, got '0'" in capsys.readouterr().err


def test_a_catalog_that_cannot_be_read_or_used_exits_2_with_the_reason(tmp_path, capsys):
    missing = tmp_path / "missing.yaml"
    assert cli.main(["validate", "--catalog", str(missing), RECORDS]) == 2
    output = capsys.readouterr()
    assert output.err.startswith(f"error: cannot read {missing}")
    assert output.out == ""

    no_datasets = tmp_path / "catalog.yaml"
    no_datasets.write_text("schemas: schemas\n")
    assert cli.main(["validate", "--catalog", str(no_datasets), RECORDS]) == 2
    assert (
        capsys.readouterr().err == f"error: {no_datasets}: a catalog needs a 'datasets' mapping\n"
    )


def test_an_input_file_that_does_not_exist_exits_2(tmp_path, capsys):
    assert validate(RECORDS, str(tmp_path / "nothing.jsonl")) == 2
    output = capsys.readouterr()
    assert output.err == f"error: no such file: {tmp_path / 'nothing.jsonl'}\n"
    assert output.out == ""


def test_a_catalog_with_several_problems_exits_2_listing_every_one(tmp_path, capsys):
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"schemas: {EXAMPLES / 'schemas'}\n"
        "datasets:\n"
        "  ../escape: {schema: 'https://ns.example.com/xdm/experience-event', kind: event}\n"
        "  _errors: {schema: 'https://ns.example.com/xdm/experience-event', kind: event}\n"
        "  web-events: {schema: 'https://ns.example.com/xdm/experience-event', kind: table}\n"
        "limits: {max_array_items: 0}\n"
    )
    assert cli.main(["validate", "--catalog", str(catalog), RECORDS]) == 2
    output = capsys.readouterr()
    assert output.out == ""
    lines = output.err.splitlines()
    assert lines[0] == f"error: {catalog}: 4 problems:"
    assert "dataset id '../escape' is not 1 to 100 letters" in output.err
    assert "dataset id '_errors' starts with '_', which is reserved" in output.err
    assert "dataset 'web-events' has kind 'table'" in output.err
    assert "limits.max_array_items must be a whole number from 1 to 1,000,000" in output.err


def test_a_record_beyond_the_limits_is_a_schema_violation_at_its_array(tmp_path, capsys):
    record = example_record(1)
    record["body"]["xdmEntity"]["tags"] = ["t"] * 10_001
    records = tmp_path / "wide.jsonl"
    records.write_text(json.dumps(record) + "\n")

    assert validate("--json", str(records)) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["error_class"] == "schema_violation"
    assert result["errors"] == [
        {
            "pointer": "/tags",
            "keyword": "max_array_items",
            "message": "an array of 10001 items, more than the limit of 10000",
        }
    ]
