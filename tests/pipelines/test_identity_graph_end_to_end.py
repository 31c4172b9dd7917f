"""Issue #14 end to end: the streaming pipeline started as users start it, against the
Pub/Sub and Bigtable emulators, stitches the fragments of one person into one profile.

The person of the issue, in three fragments: a CRM profile record keyed by Email; a
loyalty profile record keyed by CRMID that also carries the Email (and disagrees on the
first name); web events keyed by the device's ECID that also carry the Email. Looked up
by each of the three identities: one and the same profile, the catalog's merge policy
over all three records, written out here by hand. And Adobe's tutorial record, sent
unchanged, feeds the profile of its work email.
"""

import dataclasses
import json
import textwrap

import pytest

from domain.catalog import Catalog
from domain.profile_lookup import read_profile
from domain.profile_table import column_families
from helpers.examples import EXAMPLES
from ingest.admin import create_or_update_table
from tests.pipelines.running_pipeline import (
    profile_table,
    publish,
    shown,
    start_pipeline,
    stop,
    wait_until,
)

pytestmark = pytest.mark.integration

EMAIL = ("Email", "marie@example.com")
CRMID = ("CRMID", "CRM-1867")
ECID = ("ECID", "90210384756102938475610293847561029384")
JANE = ("Email", "janedoe@example.com")
ADOBE_DATASET = "{DATASET_ID}"


def catalog_text():
    """The example datasets, a loyalty dataset, and Adobe's tutorial dataset; the CRM is
    trusted before the loyalty program."""
    return textwrap.dedent(f"""\
        schemas: ["{EXAMPLES / "schemas"}", "{EXAMPLES / "adobe" / "schemas"}"]
        datasets:
          crm-profiles:
            schema: https://ns.example.com/xdm/individual-profile
            kind: profile
            profile: true
          loyalty-profiles:
            schema: https://ns.example.com/xdm/individual-profile
            kind: profile
            profile: true
          web-events:
            schema: https://ns.example.com/xdm/experience-event
            kind: event
            profile: true
          "{ADOBE_DATASET}":
            schema: https://ns.example.com/adobe-tutorial/profile
            schema_ref: "https://ns.adobe.com/{{TENANT_ID}}/schemas/{{SCHEMA_ID}}"
            kind: profile
            profile: true
            identities:
              - {{pointer: /workEmail/address, namespace: Email, primary: true}}
        merge_policy:
          dataset_precedence: [crm-profiles, loyalty-profiles]
        identity:
          priority: [CRMID, Email, Phone, ECID]
          unique: [CRMID, Email]
        """)


def envelope(dataset, schema, entity):
    return json.dumps(
        {
            "header": {"datasetId": dataset, "schemaRef": {"id": schema}},
            "body": {"xdmEntity": entity},
        }
    ).encode()


PROFILE = "https://ns.example.com/xdm/individual-profile"
EVENT = "https://ns.example.com/xdm/experience-event"
CRM = {
    "_id": "crm-marie-1",
    "identityMap": {"Email": [{"id": EMAIL[1], "primary": True}]},
    "_repo": {"modifyDate": "2026-11-10T09:00:00Z"},
    "person": {"name": {"firstName": "Marie", "lastName": "Curie"}, "birthDate": "1867-11-07"},
    "homeAddress": {"city": "Paris", "countryCode": "FR"},
    "loyalty": {"tier": "silver"},
}
LOYALTY = {  # a day newer than the CRM's, and it says Maria
    "_id": "loy-marie-1",
    "identityMap": {"CRMID": [{"id": CRMID[1], "primary": True}], "Email": [{"id": EMAIL[1]}]},
    "_repo": {"modifyDate": "2026-11-11T09:00:00Z"},
    "person": {"name": {"firstName": "Maria"}},
    "loyalty": {"tier": "gold", "points": 1200},
    "mobilePhone": {"number": "+48100000001"},
}
EVENTS = [
    {
        "_id": f"web-marie-{n}",
        "timestamp": timestamp,
        "eventType": event_type,
        "identityMap": {"ECID": [{"id": ECID[1], "primary": True}], "Email": [{"id": EMAIL[1]}]},
    }
    for n, timestamp, event_type in [
        (1, "2026-11-12T10:00:00Z", "web.webpagedetails.pageViews"),
        (2, "2026-11-12T10:05:00Z", "commerce.productViews"),
        (3, "2026-11-12T10:07:30.250Z", "web.webinteraction.linkClicks"),
    ]
]


def attribute(value, dataset, time_, identity):
    return {"value": value, "dataset": dataset, "time": time_, "identity": list(identity)}


CRM_TIME, LOYALTY_TIME = "2026-11-10T09:00:00+00:00", "2026-11-11T09:00:00+00:00"
# Dataset precedence: the CRM's value wherever it has one, the loyalty program's elsewhere.
BY_PRECEDENCE = {
    "/homeAddress/city": attribute("Paris", "crm-profiles", CRM_TIME, EMAIL),
    "/homeAddress/countryCode": attribute("FR", "crm-profiles", CRM_TIME, EMAIL),
    "/loyalty/points": attribute(1200, "loyalty-profiles", LOYALTY_TIME, CRMID),
    "/loyalty/tier": attribute("silver", "crm-profiles", CRM_TIME, EMAIL),
    "/mobilePhone/number": attribute("+48100000001", "loyalty-profiles", LOYALTY_TIME, CRMID),
    "/person/birthDate": attribute("1867-11-07", "crm-profiles", CRM_TIME, EMAIL),
    "/person/name/firstName": attribute("Marie", "crm-profiles", CRM_TIME, EMAIL),
    "/person/name/lastName": attribute("Curie", "crm-profiles", CRM_TIME, EMAIL),
}
# The timestamp policy over the same records: the newer loyalty record wins where both say.
BY_TIMESTAMP = {
    **BY_PRECEDENCE,
    "/loyalty/tier": attribute("gold", "loyalty-profiles", LOYALTY_TIME, CRMID),
    "/person/name/firstName": attribute("Maria", "loyalty-profiles", LOYALTY_TIME, CRMID),
}
WANT_EVENTS = [
    ("web-marie-3", "2026-11-12T10:07:30.250000+00:00", "web.webinteraction.linkClicks"),
    ("web-marie-2", "2026-11-12T10:05:00+00:00", "commerce.productViews"),
    ("web-marie-1", "2026-11-12T10:00:00+00:00", "web.webpagedetails.pageViews"),
]
WANT_LINKS = {
    (CRMID, EMAIL, "loyalty-profiles", "loy-marie-1"),
    *((ECID, EMAIL, "web-events", f"web-marie-{n}") for n in (1, 2, 3)),
}
JANE_ATTRIBUTES = {
    "/person/name/firstName": "Jane",
    "/person/name/middleName": "F",
    "/person/name/lastName": "Doe",
    "/person/birthDate": "1969-03-14",
    "/person/gender": "female",
    "/workEmail/primary": True,
    "/workEmail/address": "janedoe@example.com",
    "/workEmail/type": "work",
    "/workEmail/status": "active",
}


def without_lookup(profile):
    return {k: v for k, v in profile.items() if k != "lookup"}


def test_three_fragments_of_one_person_are_one_profile_by_each_identity(
    emulators, pubsub_resources, tmp_path
):
    catalog_path = tmp_path / "catalog.yaml"
    catalog_path.write_text(catalog_text())
    catalog = Catalog.load(str(catalog_path))
    create_or_update_table(
        emulators.project,
        pubsub_resources.instance,
        pubsub_resources.table,
        column_families(catalog),
    )
    lake_path, log_path = tmp_path / "lake", tmp_path / "pipeline.log"
    pipeline = start_pipeline(pubsub_resources, lake_path, emulators, catalog_path)
    try:
        adobe = (EXAMPLES / "adobe" / "record.json").read_bytes()
        publish(
            pubsub_resources.topic_path,
            [(envelope("web-events", EVENT, e), {}) for e in EVENTS[::-1]]
            + [(envelope("loyalty-profiles", PROFILE, LOYALTY), {})]
            + [(adobe, {})]
            + [(envelope("crm-profiles", PROFILE, CRM), {})],
        )
        table = profile_table(emulators, pubsub_resources)
        people = (EMAIL, CRMID, ECID)

        def stitched():
            found = [shown(read_profile(table, catalog, *i)) for i in people + (JANE,)]
            return None not in found and all(
                len(f["identities"]) == 3 and len(f["events"]) == 3 and len(f["attributes"]) == 8
                for f in found[:3]
            )

        wait_until(stitched, "the three fragments, stitched", pipeline, log_path)

        profiles = {i: read_profile(table, catalog, *i) for i in people}
        for identity, profile in profiles.items():
            assert profile["identities"] == [
                {"namespace": ns, "id": value} for ns, value in (CRMID, ECID, EMAIL)
            ], identity
            assert profile["attributes"] == BY_PRECEDENCE, identity
            assert [(e["_id"], e["time"], e["eventType"]) for e in profile["events"]] == (
                WANT_EVENTS
            ), identity
            assert {e["dataset"] for e in profile["events"]} == {"web-events"}
            links = {
                (tuple(link["from"]), tuple(link["to"]), link["dataset"], link["record"])
                for link in profile["graph"]["links"]
            }
            assert links == WANT_LINKS and profile["graph"]["dropped"] == [], identity
            assert profile["lookup"]["complete"] is True
            assert without_lookup(profile) == without_lookup(profiles[EMAIL])  # one profile

        # The same fragments under the timestamp policy: the policy is applied when read.
        timestamp = dataclasses.replace(catalog, dataset_precedence=())
        for identity in people:
            assert read_profile(table, timestamp, *identity)["attributes"] == BY_TIMESTAMP

        # Adobe's tutorial record, sent as it is: the profile of its work email.
        jane = read_profile(table, catalog, *JANE)
        assert {p: a["value"] for p, a in jane["attributes"].items()} == JANE_ATTRIBUTES
        assert {a["dataset"] for a in jane["attributes"].values()} == {ADOBE_DATASET}
        assert {tuple(a["identity"]) for a in jane["attributes"].values()} == {JANE}
        assert jane["identities"] == [{"namespace": "Email", "id": "janedoe@example.com"}]
        assert jane["events"] == [] and jane["graph"] == {"links": [], "dropped": []}
        assert pipeline.poll() is None
    finally:
        stop(pipeline)
