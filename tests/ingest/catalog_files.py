"""Catalog files the CLI's tests write: the example catalog with other retention periods."""

import pathlib

EXAMPLES = pathlib.Path(__file__).parents[2] / "examples"
EXAMPLE_CATALOG = str(EXAMPLES / "catalog.yaml")


def write_catalog(tmp_path, web_events_retention_days):
    """The example catalog, with another retention period for web-events."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        f"schemas: {EXAMPLES / 'schemas'}\n"
        "datasets:\n"
        "  crm-profiles: {schema: 'https://ns.example.com/xdm/individual-profile', "
        "kind: profile, profile: true}\n"
        "  web-events: {schema: 'https://ns.example.com/xdm/experience-event', "
        "kind: event, profile: true,\n"
        f"               retention_days: {web_events_retention_days}}}\n"
    )
    return catalog


def write_identity_catalog(tmp_path):
    """Two profile datasets and one of events, CRM first in the merge policy, and a graph
    that holds at most one CRMID."""
    catalog = tmp_path / "identity-catalog.yaml"
    profile_schema = "https://ns.example.com/xdm/individual-profile"
    catalog.write_text(
        f"schemas: {EXAMPLES / 'schemas'}\n"
        "datasets:\n"
        f"  crm-profiles: {{schema: '{profile_schema}', kind: profile, profile: true}}\n"
        f"  loyalty-profiles: {{schema: '{profile_schema}', kind: profile, profile: true}}\n"
        "  web-events: {schema: 'https://ns.example.com/xdm/experience-event', "
        "kind: event, profile: true}\n"
        "merge_policy: {dataset_precedence: [crm-profiles, loyalty-profiles]}\n"
        "identity: {priority: [CRMID, Email, ECID], unique: [CRMID]}\n"
    )
    return catalog
