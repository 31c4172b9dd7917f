"""What the pipeline needs in Google Cloud, set up: its topics and subscriptions, and the
Bigtable table of profiles with the column families a catalog needs.

`ingest bootstrap` runs create_or_update_table against Cloud Bigtable or the emulator;
`ingest local up`, the demo and the tests run create_resources against the emulators.
"""

import logging
import os
import socket
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

from google.api_core import retry
from google.api_core.exceptions import AlreadyExists, NotFound
from google.cloud import bigtable, pubsub_v1

from domain.profile_table import column_families

logger = logging.getLogger(__name__)

DEFAULT_PROJECT = "demo-project"
DEFAULT_TOPIC = "ingest-input"
DEFAULT_SUBSCRIPTION = "ingest-input-sub"
DEFAULT_DEAD_LETTER_TOPIC = "ingest-dead-letter"
DEFAULT_DEAD_LETTER_SUBSCRIPTION = "ingest-dead-letter-sub"
DEFAULT_INSTANCE = "ingest-instance"
DEFAULT_TABLE = "profiles"

SUBSCRIPTION_ACK_DEADLINE_SECONDS = 60
# Admin calls retry transient errors (such as "emulator not listening") for this long;
# the client libraries' own default is 600 s, which looks like a hang.
ADMIN_CALL_TIMEOUT_SECONDS = 20
EMULATOR_VARIABLES = ("PUBSUB_EMULATOR_HOST", "BIGTABLE_EMULATOR_HOST")


class AdminError(RuntimeError):
    """The resources could not be set up, or an emulator the environment names does not
    answer; the message says why."""


def port_accepts_connections(host, port, timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def check_emulator_host(variable):
    """Fail at once, not after minutes of client retries, if the variable's emulator is down."""
    address = os.environ.get(variable)
    if not address:
        return
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not port_accepts_connections(host, int(port)):
        raise AdminError(
            f"Nothing accepts connections at {variable}={address}. "
            'Is the local stack up? eval "$(ingest local up)"'
        )


def create_resources(
    project=DEFAULT_PROJECT,
    topic=DEFAULT_TOPIC,
    subscription=DEFAULT_SUBSCRIPTION,
    dead_letter_topic=DEFAULT_DEAD_LETTER_TOPIC,
    dead_letter_subscription=DEFAULT_DEAD_LETTER_SUBSCRIPTION,
    instance=DEFAULT_INSTANCE,
    table=DEFAULT_TABLE,
    pubsub_emulator_host=None,
    bigtable_emulator_host=None,
    allow_real_gcp=False,
    catalog=None,
):
    """Create the topics, subscriptions and table the pipeline needs; existing ones are kept.

    Talks to the emulators named by the *_emulator_host arguments, or else by the
    PUBSUB_EMULATOR_HOST and BIGTABLE_EMULATOR_HOST environment variables. Without
    them it refuses, unless allow_real_gcp is set: then it creates real resources in
    the Google Cloud project (the Bigtable instance must already exist). The table gets
    the column families the catalog's datasets need (events kept per retention period).
    """
    with _emulator_environment(pubsub_emulator_host, bigtable_emulator_host):
        if not allow_real_gcp:
            _require_emulators()
        _create_pubsub_resources(project, topic, subscription)
        _create_pubsub_resources(project, dead_letter_topic, dead_letter_subscription)
        _log_table_setup(create_or_update_table(project, instance, table, column_families(catalog)))


@contextmanager
def _emulator_environment(pubsub_emulator_host, bigtable_emulator_host):
    """Set the emulator variables for the duration (the client libraries read only os.environ)."""
    with environment_set(
        {
            "PUBSUB_EMULATOR_HOST": pubsub_emulator_host,
            "BIGTABLE_EMULATOR_HOST": bigtable_emulator_host,
        }
    ):
        yield


@contextmanager
def environment_set(variables):
    """os.environ with `variables` set (those with a value) for the duration, then as it was."""
    saved = {name: os.environ.get(name) for name in variables}
    try:
        for name, value in variables.items():
            if value:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _require_emulators():
    missing = [name for name in EMULATOR_VARIABLES if not os.environ.get(name)]
    if missing:
        raise AdminError(
            f"{' and '.join(missing)} not set, so this would create resources in real Google "
            'Cloud. Start the local stack (eval "$(ingest local up)") or pass '
            "allow_real_gcp=True if you mean it."
        )
    for name in EMULATOR_VARIABLES:
        check_emulator_host(name)


def _admin_retry():
    return retry.Retry(timeout=ADMIN_CALL_TIMEOUT_SECONDS)


def _create_pubsub_resources(project, topic, subscription):
    with pubsub_v1.PublisherClient() as publisher:
        topic_path = publisher.topic_path(project, topic)
        try:
            publisher.create_topic(
                name=topic_path, retry=_admin_retry(), timeout=ADMIN_CALL_TIMEOUT_SECONDS
            )
            logger.info("Created topic %s", topic_path)
        except AlreadyExists:
            logger.info("Topic %s already exists", topic_path)

    with pubsub_v1.SubscriberClient() as subscriber:
        subscription_path = subscriber.subscription_path(project, subscription)
        try:
            subscriber.create_subscription(
                request={
                    "name": subscription_path,
                    "topic": topic_path,
                    "ack_deadline_seconds": SUBSCRIPTION_ACK_DEADLINE_SECONDS,
                },
                retry=_admin_retry(),
                timeout=ADMIN_CALL_TIMEOUT_SECONDS,
            )
            logger.info("Created subscription %s", subscription_path)
        except AlreadyExists:
            logger.info("Subscription %s already exists", subscription_path)


# What create_or_update_table did to each column family.
FAMILY_CREATED = "created"
FAMILY_RULE_UPDATED = "updated rule"
FAMILY_UNCHANGED = "unchanged"
FAMILY_NOT_USED = "not used by the catalog"


@dataclass
class TableSetup:
    """What create_or_update_table did: the table's full name, whether it was created, and
    each column family's outcome (one of the FAMILY_* values)."""

    name: str
    created: bool
    families: dict


def create_or_update_table(project, instance_id, table_id, families):
    """Create the Bigtable table with the column families given (name -> GC rule), or bring
    an existing one up to date: add the missing families and set the GC rules that differ.

    An existing table keeps its data. Families it has that are not in `families` are kept
    too, and reported as FAMILY_NOT_USED: deleting one would delete its data.
    """
    with warnings.catch_warnings():
        # The client warns "Connecting to Bigtable emulator at ..." on every start: not news here.
        warnings.filterwarnings(
            "ignore", message="Connecting to Bigtable emulator", category=RuntimeWarning
        )
        client = bigtable.Client(project=project, admin=True)
        table = client.instance(instance_id).table(table_id)
    try:
        table.create(column_families=families)
        return TableSetup(
            table.name, created=True, families={family: FAMILY_CREATED for family in families}
        )
    except AlreadyExists:
        pass
    except NotFound as error:
        raise AdminError(
            f"Cannot create table {table.name}: {error.message} "
            "(on Cloud Bigtable the instance must exist first)"
        ) from None

    existing = table.list_column_families()
    outcomes = {}
    for family, gc_rule in families.items():
        if family not in existing:
            table.column_family(family, gc_rule=gc_rule).create()
            outcomes[family] = FAMILY_CREATED
        elif existing[family].gc_rule != gc_rule:
            table.column_family(family, gc_rule=gc_rule).update()
            outcomes[family] = FAMILY_RULE_UPDATED
        else:
            outcomes[family] = FAMILY_UNCHANGED
    for family in sorted(existing.keys() - families.keys()):
        outcomes[family] = FAMILY_NOT_USED
    return TableSetup(table.name, created=False, families=outcomes)


def _log_table_setup(setup):
    if setup.created:
        logger.info(
            "Created Bigtable table %s with column families %s",
            setup.name,
            ", ".join(setup.families),
        )
        return
    logger.info("Bigtable table %s already exists", setup.name)
    for outcome in (FAMILY_CREATED, FAMILY_RULE_UPDATED, FAMILY_NOT_USED):
        families = [family for family, done in setup.families.items() if done == outcome]
        if families:
            logger.info("  column families %s: %s", outcome, ", ".join(families))
