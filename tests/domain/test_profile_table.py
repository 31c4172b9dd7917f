"""domain/profile_table.py: the profile table's layout in Bigtable, both ways: row keys,
families, columns and cells as written, and the state read back from a stored row."""

import datetime
import json
import types

from google.cloud.bigtable import column_family
from google.cloud.bigtable.row import DirectRow
from google.cloud.bigtable.row_data import Cell

from domain import merge
from domain.profile_table import (
    ATTRIBUTES_FAMILY,
    DELETED_COLUMN,
    IDENTITY_FAMILY,
    META_FAMILY,
    RESET_COLUMN,
    attribute_cell,
    column_families,
    event_column,
    events_family,
    identity_column,
    identity_of_column,
    replace_cell,
    row_key,
    state_from_row,
)


def test_row_keys_do_not_collide_when_namespace_or_id_hold_the_separator():
    pairs = [("a#b", "c"), ("a", "b#c"), ("a%23b", "c"), ("a", "b%23c"), ("", "a#b#c")]
    assert len({row_key(*pair) for pair in pairs}) == len(pairs)


def test_a_row_key_is_a_hash_prefix_then_the_quoted_namespace_then_the_id():
    key = row_key("Email", "ada@example.com")
    prefix, namespace, identity = key.split(b"#", 2)
    assert len(prefix) == 4 and int(prefix, 16) >= 0
    assert (namespace, identity) == (b"Email", b"ada@example.com")
    assert row_key("E#mail", "x").split(b"#", 2)[1:] == [b"E%23mail", b"x"]
    assert row_key("Email", "é").endswith("é".encode())  # UTF-8
    assert row_key("Email", "a") != row_key("Email", "b")  # the hash spreads them
    assert row_key("Email", "a")[:4] != row_key("Email", "b")[:4]


def test_an_identity_column_reads_back_as_its_namespace_and_id():
    for namespace, identity_id in [
        ("Email", "a@b.c"),
        ("a#b", "c#d"),
        ("%23", "%23"),
        ("x/y z", ""),
        ("é", "ü#"),
    ]:
        assert identity_of_column(identity_column(namespace, identity_id)) == (
            namespace,
            identity_id,
        )


def test_event_columns_sort_newest_first_then_by_id():
    times_ms = [0, 1, 999, 1_762_070_400_123, 9_999_999_999_998]
    columns = [event_column(t * 1000, "e") for t in times_ms]
    assert columns == sorted(columns, reverse=True)
    assert event_column(5_000, "a") < event_column(5_999, "b")  # one millisecond: by id
    assert event_column(1_762_070_400_123_000, "evt-1") == b"8237929599876#evt-1"


def test_the_families_are_those_the_catalogs_datasets_need(catalog):
    families = column_families(catalog)
    assert set(families) == {"attr", "meta", "identity", "linked", events_family(90)}
    assert events_family(90) == "events_90d"
    rule = families["events_90d"]
    assert isinstance(rule, column_family.GCRuleUnion)
    assert column_family.MaxAgeGCRule(datetime.timedelta(days=90)) in rule.rules
    assert set(column_families()) == {"attr", "meta", "identity", "linked"}


def test_cells_are_the_mutations_set_cell_makes_from_a_datetime():
    for time_us in (0, 1_000, 1_762_070_400_000_000, 1_762_070_400_123_000, 1_762_070_400_123_999):
        ours, theirs = DirectRow(b"k"), DirectRow(b"k")
        replace_cell(ours, "attr", b"/a", '{"value": "é"}', time_us)
        theirs.delete_cell("attr", b"/a")
        theirs.set_cell(
            "attr",
            b"/a",
            '{"value": "é"}',
            timestamp=datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(microseconds=time_us),
        )
        assert [m._to_dict() for m in ours._get_mutations()] == [
            m._to_dict() for m in theirs._get_mutations()
        ], time_us


def stored_row(cells):
    """A row as the Bigtable client reads it: family -> column -> [Cell], newest first."""
    return types.SimpleNamespace(
        cells={
            family: {column: [Cell(value, time_us)] for column, (value, time_us) in columns.items()}
            for family, columns in cells.items()
        }
    )


def test_the_state_read_back_from_a_row_is_what_its_cells_say():
    row = stored_row(
        {
            ATTRIBUTES_FAMILY: {
                b"/loyalty/points": (attribute_cell(1650, "crm-profiles").encode(), 1_000_000),
                b"/person/name": (attribute_cell({"first": "Ada"}, "crm").encode(), 2_000_000),
            },
            META_FAMILY: {RESET_COLUMN: (b"1500000", 1_500_000), DELETED_COLUMN: (b"900", 0)},
            IDENTITY_FAMILY: {identity_column("E#mail", "ada@example.com"): (b"", 3_000_000)},
        }
    )
    state = state_from_row(row)
    assert state.candidates == {
        "/loyalty/points": {
            "crm-profiles": merge.Candidate(merge.OrderKey(1_000_000, ""), "crm-profiles", 1650)
        },
        "/person/name": {
            "crm": merge.Candidate(merge.OrderKey(2_000_000, ""), "crm", {"first": "Ada"})
        },
    }
    assert state.reset == merge.OrderKey(1_500_000, "")
    assert state.deleted == merge.OrderKey(900, "")
    assert state.identities == {("E#mail", "ada@example.com"): merge.OrderKey(3_000_000, "")}


def test_no_row_is_an_empty_state():
    state = state_from_row(None)
    assert (state.candidates, state.reset, state.deleted, state.identities) == ({}, None, None, {})
    assert state_from_row(stored_row({})).candidates == {}


def test_an_attribute_cell_is_the_value_and_its_dataset_as_json():
    assert json.loads(attribute_cell({"é": [1, None]}, "d")) == {
        "value": {"é": [1, None]},
        "dataset": "d",
    }
    assert "é" in attribute_cell("é", "d")  # not escaped: UTF-8 in the cell
