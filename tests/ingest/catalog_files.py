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
