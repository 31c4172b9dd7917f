"""Which identities a record may link: a person namespace only from a trusted source, or
with proof.

One event with `ECID attacker-device` primary and `Email victim@example.com` beside it
would link the attacker's device to the victim's profile. So the catalog names its person
namespaces, and a record links an identity of one only where its source is trusted (its
dataset is marked `trusted`, an authenticated source such as a CRM's server-side sync,
and, for what the HTTP service sent, its connection is too: a public client connection
never is) or the identity carries a proof: the customer's server signs the identity, as
Intercom's identity verification does, and the page or app passes the signature on with
it:

    identity:
      person_namespaces: [Email, CRMID]
      proof_secret_env: INGEST_IDENTITY_PROOF_SECRET   # the variable holding the secret
    datasets:
      crm-profiles: {..., trusted: true}               # links person identities as they come

    "identityMap": {"Email": [{"id": "ada@example.com", "proof": "<hex>"}]}

The proof is the lowercase hex HMAC-SHA256 of `<namespace>:<id>` (UTF-8) under the secret
(its UTF-8 bytes); a person namespace holds no `:`, so the text reads one way only. It is
compared in constant time (hmac.compare_digest). The catalog holds only the name of the
environment variable that holds the secret, read where records are parsed: a secret is
never in the catalog nor in the repository. Where the variable is unset or empty, no
proof holds. Only the identityMap carries proofs: a person identity in an identity field
(a JSON pointer of the dataset) links only from a trusted dataset.

An identity that may not be linked is refused as `unproven` (domain/identity.py): never
linked nor keyed by, counted as `identity_refused/unproven`, and shown in the explain view.
Without `person_namespaces` every namespace links as before.
"""

import dataclasses
import hashlib
import hmac
import os
import re

from domain.connections import CONNECTION_ATTRIBUTE
from domain.identity import identity_map_of

# An environment variable's name, as POSIX shells take it.
ENV_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
KEYS = ("person_namespaces", "proof_secret_env")


@dataclasses.dataclass(frozen=True)
class LinkTrust:
    person_namespaces: frozenset = frozenset()  # linked only when trusted or proven
    proof_secret_env: str = ""  # the environment variable holding the HMAC secret

    def secret(self):
        """The secret's bytes, or None where there is none."""
        value = os.environ.get(self.proof_secret_env, "") if self.proof_secret_env else ""
        return value.encode("utf-8", "surrogatepass") if value else None

    def needs_proof(self, trusted, entity, xdm_meta=None):
        """None where every identity of the record may be linked (no person namespaces, or
        a `trusted` source: source_trusted()); else a function (namespace, id) -> True
        where that identity may not be linked: a person identity without a proof that
        holds."""
        if not self.person_namespaces or trusted:
            return None
        persons, secret, proven = self.person_namespaces, self.secret(), set()
        if secret is not None:
            for namespace, entry in identity_map_of(entity, xdm_meta):
                identity_id = entry.get("id")
                if namespace in persons and isinstance(identity_id, str):
                    if proof_holds(secret, namespace, identity_id, entry.get("proof")):
                        proven.add((namespace, identity_id))
        return lambda namespace, identity_id: (
            namespace in persons and (namespace, identity_id) not in proven
        )


def source_trusted(dataset, attributes, connections):
    """Whether a record's source is trusted: its dataset is, and where the HTTP service
    sent it (its CONNECTION_ATTRIBUTE), that connection is too. The attribute can only take
    trust away: naming a trusted connection gives nothing a dataset does not have."""
    if not dataset.trusted:
        return False
    connection_id = attributes.get(CONNECTION_ATTRIBUTE) if attributes else None
    if connection_id is None:
        return True
    connection = connections.get(connection_id)
    return connection is not None and connection.trusted


def identity_proof(secret, namespace, identity_id):
    """The proof of (namespace, id) under `secret` (bytes or str): what a customer's server
    computes and sends beside the identity."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    text = f"{namespace}:{identity_id}".encode("utf-8", "surrogatepass")
    return hmac.new(secret, text, hashlib.sha256).hexdigest()


def proof_holds(secret, namespace, identity_id, proof):
    """True when `proof` is the proof of (namespace, id) under `secret`, in constant time."""
    if not secret or not isinstance(proof, str):
        return False
    expected = identity_proof(secret, namespace, identity_id).encode()
    return hmac.compare_digest(expected, proof.encode("utf-8", "surrogatepass"))


def parse_link_trust(problems, spec, namespace_problem):
    """The LinkTrust of the catalog's `identity` mapping; what is wrong goes to `problems`."""
    persons = spec.get("person_namespaces", [])
    if not isinstance(persons, list):
        problems.append("identity.person_namespaces must be a list of namespaces")
        persons = []
    for namespace in persons:
        problem = namespace_problem(namespace)
        if problem is None and ":" in namespace:
            problem = f"person namespace {namespace!r} holds ':' (its proof would read two ways)"
        if problem:
            problems.append(f"identity.person_namespaces: {problem}")
    env = spec.get("proof_secret_env", "")
    if not isinstance(env, str) or (env and not ENV_NAME_PATTERN.fullmatch(env)):
        problems.append(
            "identity.proof_secret_env must name an environment variable (letters, digits "
            f"and '_'), not {env!r}: the catalog never holds the secret itself"
        )
        env = ""
    valid = frozenset(n for n in persons if isinstance(n, str) and n)
    return LinkTrust(valid, env)
