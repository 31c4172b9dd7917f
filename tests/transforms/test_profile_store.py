"""transforms/profile_store.py: WriteProfiles on Beam's TestStream against the real
Bigtable emulator.

The same records, reordered, redelivered and with equal timestamps, must leave the same
rows, cell for cell; upserts and deletes must do what the README says; every identity of
a profile must lead to it. The stream and the run: helpers/profile_streams.py.
"""

import random
import uuid

import pytest

from domain.parsing import RecordParser
from domain.profile_table import read_profile
from helpers.profile_streams import profile_record, run_and_read, sample_stream

pytestmark = pytest.mark.integration


def test_order_redelivery_and_ties_leave_the_same_rows(emulators, catalog):
    records = sample_stream(catalog)
    _, in_order = run_and_read(records, catalog, f"p-{uuid.uuid4().hex[:6]}")
    for seed in (1, 2):
        rng = random.Random(seed)
        shuffled = records + rng.sample(records, len(records) // 3)  # redeliveries
        rng.shuffle(shuffled)
        _, reordered = run_and_read(shuffled, catalog, f"p-{uuid.uuid4().hex[:6]}")
        assert reordered == in_order


def test_writing_within_a_bundle_leaves_the_same_rows(emulators, catalog, monkeypatch):
    from transforms import profile_store

    records = sample_stream(catalog)
    _, at_bundle_end = run_and_read(records, catalog, f"p-{uuid.uuid4().hex[:6]}")
    monkeypatch.setattr(profile_store, "MAX_UPDATES_UNWRITTEN", 2)
    _, every_two = run_and_read(records, catalog, f"p-{uuid.uuid4().hex[:6]}")
    assert every_two == at_bundle_end


def test_a_restart_takes_up_the_stored_rows_and_leaves_the_same_rows(emulators, catalog):
    # A new pipeline starts with empty state: each person's state is read back from the
    # table (profile_table.state_from_row). Stored cells carry no tie-break, so the two
    # records with the very same time are left out here.
    records = [r for r in sample_stream(catalog) if not r.entity["_id"].startswith("tie-")]
    _, at_once = run_and_read(records, catalog, f"p-{uuid.uuid4().hex[:6]}")
    rng = random.Random(3)
    for _ in range(2):
        shuffled = rng.sample(records, len(records))
        half = len(shuffled) // 2
        table_id = f"p-{uuid.uuid4().hex[:6]}"
        run_and_read(shuffled[:half], catalog, table_id)
        _, restarted = run_and_read(shuffled[half:], catalog, table_id)
        assert restarted == at_once


def test_merged_profiles_upserts_deletes_and_lookup_by_any_identity(emulators, catalog):
    table, _ = run_and_read(sample_stream(catalog), catalog, f"p-{uuid.uuid4().hex[:6]}")

    ada = read_profile(table, "Email", "ada@example.com")
    attributes = {p: a["value"] for p, a in ada["attributes"].items()}
    assert attributes["/loyalty/points"] == 1650  # newest of three records
    assert attributes["/homeAddress/city"] == "Cambridge"
    assert attributes["/mobilePhone/number"] == "+447700900815"  # only the second had it
    assert ada["attributes"]["/loyalty/points"]["dataset"] == "crm-profiles"
    assert [e["_id"] for e in ada["events"]] == [
        "evt-ada-0005",
        "evt-ada-0004",
        "evt-ada-0003",
        "evt-ada-0002",
        "evt-ada-0001",
    ]
    assert ("CRMID", "CRM-000815") in {(i["namespace"], i["id"]) for i in ada["identities"]}
    for identity in ada["identities"]:  # every linked identity finds her
        found = read_profile(table, identity["namespace"], identity["id"])
        assert found is not None and found["key"] == ada["key"]

    grace = read_profile(table, "Email", "grace@example.com")
    tie_winner = max(["silver", "platinum"], key=lambda tier: _tiebreak_of(catalog, tier))
    assert grace["attributes"]["/loyalty/tier"]["value"] == tie_winner

    alan = read_profile(table, "Email", "alan@example.com")
    assert {p: a["value"] for p, a in alan["attributes"].items() if not p.startswith("/_")} == {
        "/person/name/firstName": "Alan",
        "/loyalty/points": 7,
    }

    gone = read_profile(table, "Email", "gone@example.com")
    assert {p: a["value"] for p, a in gone["attributes"].items() if not p.startswith("/_")} == {
        "/loyalty/points": 3
    }


def _tiebreak_of(catalog, tier):
    from domain import merge

    record = RecordParser(catalog).parse(
        profile_record(
            "tie-1" if tier == "silver" else "tie-2",
            "2026-11-20T00:00:00Z",
            "grace@example.com",
            loyalty={"tier": tier},
        )
    )
    return merge.order_key(0, record.dataset, record.entity).tiebreak


def test_profile_updates_cross_the_shuffle_as_they_were_made(catalog):
    import typing

    import apache_beam as beam

    from domain import merge
    from domain.profile_writes import ProfileUpdate
    from domain.records import RecordError
    from helpers.json_equality import same
    from ingest.dev.generate import RecordGenerator
    from transforms.profile_store import ProfileUpdateCoder, key_by_person

    parser = RecordParser(catalog)
    updates = []
    for generated in RecordGenerator(seed=3).messages(400):
        try:
            record = parser.parse(generated.payload, {"dataset": generated.dataset})
        except RecordError:
            continue
        if record.feeds_profile:
            updates.append(ProfileUpdate.of(record))
    assert {u.kind for u in updates} == {"profile", "event"}
    odd_values = (
        ("/a", 2**70),
        ("/b", -0.0),
        ("/c", float("nan")),
        ("/d", 1e-7),
        ("/e", {"z": [True, None, 1, 1.0, "é\u2028"], "a": {}}),
        ("/f", []),
        ("/g", False),
        ("/h", "x" * 5000),
    )
    updates.append(updates[0]._replace(attributes=odd_values, operation="delete"))
    coder = beam.coders.registry.get_coder(ProfileUpdate)
    assert isinstance(coder, ProfileUpdateCoder)
    for update in updates:
        decoded = coder.decode(coder.encode(update))
        assert type(decoded) is ProfileUpdate and type(decoded.order) is merge.OrderKey
        assert same(tuple(decoded), tuple(update)), update

    keyed = beam.Pipeline() | beam.Create([]) | key_by_person()
    assert beam.coders.registry.get_coder(keyed.element_type) == beam.coders.TupleCoder(
        [beam.coders.BytesCoder(), ProfileUpdateCoder()]
    )
    assert typing.get_type_hints(ProfileUpdate)  # still a NamedTuple, fields typed
