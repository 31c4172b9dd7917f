"""The catalog's `connections`: who may send records over HTTP (service/), and where to.

    connections:
      web-site:                       # the id in POST /collection/{connectionId}
        kind: client                  # public: a browser or an app holds no secret
        datasets: [web-events]        # the datasets its messages may write
        origins: ["https://www.example.com"]   # browser origins allowed (CORS)
      crm-sync:
        kind: server                  # requires an API key
        datasets: [crm-profiles, web-events]
        api_key_sha256: 9f86d0...     # hex SHA-256 of the key: the key itself is never stored
        read_profiles: true           # may read profiles (GET /access/entities)
        trusted: true                 # its records may link person namespaces unproven,
                                      # into a trusted dataset (domain/identity_proof.py)

A key is checked in constant time against the stored hash (hmac.compare_digest). Every
problem is reported with the catalog's others (domain/catalog.py).
"""

import dataclasses
import hashlib
import hmac
import re

CONNECTION_KINDS = ("client", "server")
# Adobe's connection ids are 64 hexadecimal digits; names such as `web-site` also match.
CONNECTION_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# An origin as a browser sends it: scheme://host[:port], nothing after.
ORIGIN_PATTERN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|\*")
KEYS = {"kind", "datasets", "origins", "api_key_sha256", "read_profiles", "trusted"}
# The Pub/Sub attribute the service stamps on what a connection sends: the pipeline then
# trusts its identities only as far as that connection (domain/identity_proof.py).
CONNECTION_ATTRIBUTE = "connectionId"


@dataclasses.dataclass(frozen=True)
class Connection:
    id: str
    kind: str  # client (public) or server (API key)
    datasets: frozenset  # the dataset ids its messages may write
    origins: tuple = ()  # browser origins allowed; "*" allows any
    api_key_sha256: str = ""  # server: hex SHA-256 of its API key
    read_profiles: bool = False  # server: may read profiles
    trusted: bool = False  # server: an authenticated source of person identities

    @property
    def public(self):
        return self.kind == "client"

    def allows_origin(self, origin):
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    def accepts_key(self, key):
        """True when `key` is this server connection's API key (constant time)."""
        if self.public or not self.api_key_sha256 or not key:
            return False
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return hmac.compare_digest(digest, self.api_key_sha256)


def api_key_hash(key):
    """What `api_key_sha256` holds for `key`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_connections(problems, spec, datasets):
    """{id: Connection} of the catalog's `connections` mapping; what is wrong goes to
    `problems`. `datasets`: the catalog's dataset ids."""
    if spec is None:
        return {}
    if not isinstance(spec, dict):
        problems.append(f"connections must be a mapping of connection ids, not {spec!r}")
        return {}
    connections = {}
    for connection_id, entry in spec.items():
        connection = _parse_connection(problems, connection_id, entry, datasets)
        if connection is not None:
            connections[connection_id] = connection
    return connections


def _parse_connection(problems, connection_id, entry, datasets):
    found = len(problems)
    if not isinstance(connection_id, str) or not CONNECTION_ID_PATTERN.fullmatch(connection_id):
        problems.append(
            f"connection id {connection_id!r} is not 1 to 128 letters, digits, '-', '_' or '.', "
            "starting with a letter or a digit"
        )
    if not isinstance(entry, dict):
        problems.append(f"connection {connection_id!r} must be a mapping")
        return None
    name = f"connection {connection_id!r}"
    unknown = sorted(set(entry) - KEYS, key=str)
    if unknown:
        problems.append(f"{name}: unknown keys {unknown}; it takes {sorted(KEYS)}")
    kind = entry.get("kind")
    if kind not in CONNECTION_KINDS:
        problems.append(f"{name} has kind {kind!r}; expected one of {CONNECTION_KINDS}")
    written = entry.get("datasets")
    if not isinstance(written, list) or not written:
        problems.append(f"{name}: 'datasets' must be a non-empty list of dataset ids")
        written = []
    unknown_datasets = [d for d in written if not isinstance(d, str) or d not in datasets]
    if unknown_datasets:
        problems.append(f"{name} names unknown datasets {unknown_datasets}")
    origins = entry.get("origins", [])
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        problems.append(f"{name}: 'origins' must be a list of origins (strings)")
        origins = []
    bad = [o for o in origins if not ORIGIN_PATTERN.fullmatch(o)]
    if bad:
        problems.append(
            f"{name}: origins {bad} are not scheme://host[:port] (as a browser sends them) or '*'"
        )
    key_hash = entry.get("api_key_sha256", "")
    read_profiles = entry.get("read_profiles", False)
    if not isinstance(read_profiles, bool):
        problems.append(f"{name}: 'read_profiles' must be true or false")
    if kind == "server" and not (isinstance(key_hash, str) and SHA256_HEX.fullmatch(key_hash)):
        problems.append(
            f"{name}: a server connection needs 'api_key_sha256', the key's SHA-256 as 64 "
            "lowercase hexadecimal digits (printf %s KEY | sha256sum)"
        )
    trusted = entry.get("trusted", False)
    if not isinstance(trusted, bool):
        problems.append(f"{name}: 'trusted' must be true or false")
    if kind == "client" and (key_hash or read_profiles is True or trusted is True):
        problems.append(
            f"{name}: a client connection is public: it takes no 'api_key_sha256', never "
            "'read_profiles' (profiles are personal data) and is never 'trusted' (anyone "
            "can send it any identity)"
        )
    if len(problems) > found:
        return None
    return Connection(
        connection_id, kind, frozenset(written), tuple(origins), key_hash, read_profiles, trusted
    )
