"""ingest.pubsub's SubscriptionReader, the pull loop `dead-letter pull` and `replay` share,
against the real Pub/Sub emulator."""

from google.cloud import pubsub_v1

from ingest.pubsub import SubscriptionReader
from pubsub_helpers import pull_messages


def publish(topic_path, payloads):
    with pubsub_v1.PublisherClient() as publisher:
        for future in [publisher.publish(topic_path, payload) for payload in payloads]:
            future.result()


def test_a_message_that_comes_again_is_given_once_and_a_pull_of_repeats_only_ends_the_reading(
    pubsub_resources,
):
    publish(pubsub_resources.topic_path, [b"a", b"b", b"c"])
    given = []
    with pubsub_v1.SubscriberClient() as subscriber:
        with SubscriptionReader(
            subscriber, pubsub_resources.subscription_path, wait=5, stop_at_repeats=True
        ) as reader:
            # A bound, so that a reader that gave a message twice fails here instead of reading on.
            for received_messages in reader.batches(remaining=lambda: 10 - len(given)):
                given.extend(received.message.data for received in received_messages)
                # As if held past their ack deadline: they come again at once.
                reader.release([received.ack_id for received in received_messages])

    assert sorted(given) == [b"a", b"b", b"c"]
    # The repeats were held, not acknowledged: all three are still there.
    left = pull_messages(pubsub_resources.subscription_path, expected_count=3)
    assert sorted(message.data for message in left) == sorted(given)


def test_reading_stops_at_the_number_wanted_and_leaves_the_rest(pubsub_resources):
    publish(pubsub_resources.topic_path, [b"1", b"2", b"3", b"4"])
    given = []
    with pubsub_v1.SubscriberClient() as subscriber:
        with SubscriptionReader(subscriber, pubsub_resources.subscription_path, wait=5) as reader:
            for received_messages in reader.batches(remaining=lambda: 2 - len(given)):
                given.extend(received.message.data for received in received_messages)
                reader.acknowledge(received_messages)

    assert len(given) == 2
    left = pull_messages(pubsub_resources.subscription_path, expected_count=2)
    assert sorted(given + [message.data for message in left]) == [b"1", b"2", b"3", b"4"]
