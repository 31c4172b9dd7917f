"""transforms/read.py: ReadMessages' backlog pull, against the Pub/Sub emulator, and the
decoding of the messages Dataflow's read hands over (the option that sets the pull:
tests/pipelines/test_options.py)."""

import datetime

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from google.cloud import pubsub_v1

from helpers.pubsub_messages import proto_messages
from pubsub_helpers import pull_messages
from transforms.read import _PullBacklogFn, _ReadFromPubSub, message_from_proto
from transforms.validate import _plain_datetime


def publish(resources, count):
    publisher = pubsub_v1.PublisherClient()
    topic = publisher.topic_path(resources.project, resources.topic)
    futures = [
        publisher.publish(topic, f"backlog-{n}".encode(), dataset="web-events", number=str(n))
        for n in range(count)
    ]
    for future in futures:
        future.result(timeout=30)


def read_one_bundle(pipeline, resources, size):
    """What _PullBacklogFn makes of a bundle holding one message the read brought."""
    first = PubsubMessage(
        b"first", {"dataset": "web-events", "number": "first"}, message_id="m-first"
    )
    return (
        pipeline
        | beam.Create([first])
        | beam.ParDo(_PullBacklogFn(resources.subscription_path, size))
        | beam.Map(
            lambda m: (
                m.data,
                m.attributes["number"],
                bool(m.message_id),
                m.publish_time is not None,
            )
        )
    )


def test_a_bundle_takes_in_the_backlog_and_acknowledges_it(pubsub_resources):
    publish(pubsub_resources, 25)
    with TestPipeline(runner="BundleBasedDirectRunner") as pipeline:
        assert_that(
            read_one_bundle(pipeline, pubsub_resources, 1000),
            equal_to(
                [(b"first", "first", True, False)]
                + [(f"backlog-{n}".encode(), str(n), True, True) for n in range(25)]
            ),
        )
    assert pull_messages(pubsub_resources.subscription_path, 0, timeout=2) == []


def test_a_bundle_takes_in_at_most_the_pull_size(pubsub_resources):
    publish(pubsub_resources, 30)
    with TestPipeline(runner="BundleBasedDirectRunner") as pipeline:
        count = read_one_bundle(pipeline, pubsub_resources, 12) | beam.combiners.Count.Globally()
        assert_that(count, equal_to([13]))
    assert len(pull_messages(pubsub_resources.subscription_path, 18)) == 18


# --- the messages' decoding after Dataflow's read ---------------------------------------


def fields(message):
    return (
        message.data,
        message.attributes,
        message.message_id,
        message.publish_time,
        type(message.publish_time),
        message.publish_time and message.publish_time.tzinfo,
        message.ordering_key,
    )


def beams_decoding(encoded):
    """What Beam's own decoding makes, with the publish time as ParseAndValidate keeps it."""
    message = PubsubMessage._from_proto_str(encoded)
    message.publish_time = _plain_datetime(message.publish_time)
    return message


def test_message_from_proto_makes_what_beams_decoding_makes():
    for encoded in proto_messages():
        assert fields(message_from_proto(encoded)) == fields(beams_decoding(encoded))
    assert message_from_proto(proto_messages()[0]).ordering_key == "person-1"
    assert message_from_proto(proto_messages()[4]).publish_time == datetime.datetime(
        2026, 11, 30, 12, 0, 0, 123_456, tzinfo=datetime.timezone.utc
    )  # nanoseconds cut off
    assert type(message_from_proto(proto_messages()[4]).publish_time) is datetime.datetime


def test_the_read_decodes_the_protos_it_is_handed():
    # Dataflow's native read hands over the protos; the steps after it are these.
    read = _ReadFromPubSub("projects/demo-project/subscriptions/ingest-input-sub")
    assert read._source.with_attributes  # the read itself delivers whole messages
    with TestPipeline() as pipeline:
        decoded = read.expand_continued(
            pipeline | beam.Create(proto_messages()).with_output_types(bytes)
        )
        assert_that(
            decoded | beam.Map(fields),
            equal_to([fields(beams_decoding(m)) for m in proto_messages()]),
        )
