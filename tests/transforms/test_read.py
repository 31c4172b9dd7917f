"""transforms/read.py: the decoding of the messages Dataflow's read hands over (the local
read: tests/transforms/test_local_read.py)."""

import datetime

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from helpers.pubsub_messages import proto_messages
from transforms.read import _ReadFromPubSub, message_from_proto
from transforms.validate import _plain_datetime


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
