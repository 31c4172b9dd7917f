"""The profile API in the shape of Adobe's entities API, over domain's read_profile: the
merge is never done here, only reshaped."""

import urllib.parse

from domain.profile_lookup import read_profile
from service.inlet import Problem

PROFILE_SCHEMA = "_xdm.context.profile"
EVENT_SCHEMA = "_xdm.context.experienceevent"
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000
MAX_EVENTS_READ = 10_000  # start + limit: the newest events a lookup reads


def profile_entity(profile, namespace, identity_id):
    """Adobe's `{entityId: {entityId, sources, entity, lastModifiedAt}}` of read_profile's
    profile; `attributes` (each with its dataset, time and identity), `identities`,
    `graph` and `lookup` are read_profile's, as they are."""
    entity = {}
    for pointer, attribute in profile["attributes"].items():
        _set(entity, pointer, attribute["value"])
    times = [a["time"] for a in profile["attributes"].values()]
    return {
        identity_id: {
            "entityId": identity_id,
            "entityIdNS": {"code": namespace},
            "sources": sorted({a["dataset"] for a in profile["attributes"].values()}),
            "entity": entity,
            "lastModifiedAt": max(times) if times else None,
            "attributes": profile["attributes"],
            "identities": profile["identities"],
            "graph": profile["graph"],
            "lookup": profile["lookup"],
        }
    }


def _set(target, pointer, value):
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
    for token in tokens[:-1]:
        target = target.setdefault(token, {})
    target[tokens[-1]] = value


def events_page(profile, namespace, identity_id, start, limit, url):
    """Adobe's `{_page, children, _links}` of the graph's events, newest first, from
    `start` (an offset) on."""
    events = profile["events"] if profile else []
    page = events[start : start + limit]
    more = len(events) > start + limit
    children = [
        {
            "relatedEntityId": identity_id,
            "relatedEntityIdNS": namespace,
            "entityId": event["_id"],
            "timestamp": event["time"],
            "dataset": event["dataset"],
            "entity": event["event"],
        }
        for event in page
    ]
    links = {}
    if more:
        query = dict(urllib.parse.parse_qsl(url.query))
        query["start"] = str(start + limit)
        links["next"] = {"href": f"{url.path}?{urllib.parse.urlencode(query)}"}
    return {
        "_page": {
            "orderby": "-timestamp",
            "start": str(start),
            "count": len(children),
            "next": str(start + limit) if more else "",
        },
        "children": children,
        "_links": links,
    }


def _whole(params, name, default, low, high):
    text = params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise Problem(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}")
    return int(text)


def entities(table, catalog, params, url):
    """The answer of GET /access/entities (blocking: Bigtable reads)."""
    schema = params.get("schema.name")
    if schema == PROFILE_SCHEMA:
        namespace, identity_id = _identity(params, "entityId", "entityIdNS")
        profile = read_profile(table, catalog, namespace, identity_id, max_events=1)
        if profile is None:
            raise Problem(404, "no_profile", f"no profile has identity {namespace} {identity_id!r}")
        return profile_entity(profile, namespace, identity_id)
    if schema == EVENT_SCHEMA:
        namespace, identity_id = _identity(params, "relatedEntityId", "relatedEntityIdNS")
        limit = _whole(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        start = _whole(params, "start", 0, 0, MAX_EVENTS_READ - limit)
        profile = read_profile(table, catalog, namespace, identity_id, start + limit + 1)
        return events_page(profile, namespace, identity_id, start, limit, url)
    raise Problem(
        400,
        "bad_parameter",
        f"schema.name must be {PROFILE_SCHEMA} or {EVENT_SCHEMA}, not {schema!r}",
    )


def _identity(params, id_name, namespace_name):
    identity_id, namespace = params.get(id_name), params.get(namespace_name)
    if not identity_id or not namespace:
        raise Problem(
            400, "bad_parameter", f"{id_name} and {namespace_name} (a namespace) are required"
        )
    return namespace, identity_id
