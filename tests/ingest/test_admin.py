"""ingest.admin: the topics, subscriptions and table the pipeline needs, on the real emulators."""

import pathlib

import pytest
from google.cloud import bigtable, pubsub_v1

from domain.catalog import Catalog
from domain.profile_table import column_families
from ingest import admin

EXAMPLE_CATALOG = pathlib.Path(__file__).parents[2] / "examples" / "catalog.yaml"


@pytest.mark.filterwarnings("ignore:Connecting to Bigtable emulator")
def test_create_resources_makes_topics_subscriptions_and_table_and_can_run_again(pubsub_resources):
    admin.create_resources(
        project=pubsub_resources.project,
        topic=pubsub_resources.topic,
        subscription=pubsub_resources.subscription,
        dead_letter_topic=pubsub_resources.dead_letter_topic,
        dead_letter_subscription=pubsub_resources.dead_letter_subscription,
        instance=pubsub_resources.instance,
        table=pubsub_resources.table,
    )

    with pubsub_v1.PublisherClient() as publisher:
        publisher.get_topic(topic=pubsub_resources.topic_path)
        publisher.get_topic(topic=pubsub_resources.dead_letter_topic_path)
    with pubsub_v1.SubscriberClient() as subscriber:
        subscription = subscriber.get_subscription(subscription=pubsub_resources.subscription_path)
        dead_letter_subscription = subscriber.get_subscription(
            subscription=pubsub_resources.dead_letter_subscription_path
        )
    assert subscription.topic == pubsub_resources.topic_path
    assert subscription.ack_deadline_seconds == 60
    assert dead_letter_subscription.topic == pubsub_resources.dead_letter_topic_path

    table = (
        bigtable.Client(project=pubsub_resources.project, admin=True)
        .instance(pubsub_resources.instance)
        .table(pubsub_resources.table)
    )
    assert table.exists()
    catalog = Catalog.load(str(EXAMPLE_CATALOG))
    assert set(table.list_column_families()) == set(column_families(catalog))
    assert set(column_families(catalog)) == {"rec", "link", "del", "events_90d"}


def test_create_resources_refuses_real_google_cloud_without_being_told(monkeypatch):
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("BIGTABLE_EMULATOR_HOST", raising=False)

    with pytest.raises(admin.AdminError, match="allow_real_gcp"):
        admin.create_resources()
