"""Reading: Pub/Sub messages, with their attributes, from one subscription."""

import datetime

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub
from google.pubsub_v1.types import PubsubMessage as PubsubMessageProto

from domain.times import EPOCH
from transforms.local_read import LocalPubSubRead


class ReadMessages(beam.PTransform):
    """Reads `readers` parallel reads of one subscription and flattens them.

    With `local_bundle_size` N > 0 (the DirectRunner only), each read is the local read of
    transforms/local_read.py: a background pull, and bundles of up to N messages it has
    pulled, each acknowledged once what it made is durable. With 0, it is Beam's
    ReadFromPubSub: on Dataflow the native read, which acknowledges only after a
    checkpoint; on the DirectRunner the runner's own read, one pull of at most 10
    messages a bundle, acknowledged on pull.
    """

    def __init__(self, subscription, readers=1, local_bundle_size=0, window_seconds=None):
        super().__init__()
        self.subscription = subscription
        self.readers = readers
        self.local_bundle_size = local_bundle_size
        self.window_seconds = window_seconds  # the local read holds a message till its closes

    def expand(self, pipeline):
        reads = [pipeline | f"Read{index}" >> self._read() for index in range(self.readers)]
        return reads[0] if len(reads) == 1 else reads | "MergeReads" >> beam.Flatten()

    def _read(self):
        if self.local_bundle_size:
            return LocalPubSubRead(self.subscription, self.local_bundle_size, self.window_seconds)
        return _ReadFromPubSub(self.subscription)


class _ReadFromPubSub(ReadFromPubSub):
    """ReadFromPubSub(with_attributes=True), but the message protobufs the read hands
    over on Dataflow are decoded by message_from_proto: Beam's own step decodes them
    through proto-plus, the slow way per message. The read itself is Beam's: its
    source is the one with_attributes=True makes. The DirectRunner replaces the whole
    transform with its own read, which makes PubsubMessages too."""

    def __init__(self, subscription):
        super().__init__(subscription=subscription, with_attributes=True)
        self.with_attributes = False  # the parent's steps after the read leave the protos

    def expand_continued(self, pcoll):
        return super().expand_continued(pcoll) | "DecodeMessages" >> beam.Map(
            message_from_proto
        ).with_output_types(PubsubMessage)


_PUBSUB_MESSAGE_PB = PubsubMessageProto.pb()


def message_from_proto(encoded):
    """The message PubsubMessage._from_proto_str(encoded) makes, from the raw protobuf,
    but for its publish time: a plain UTC datetime to the microsecond (nanoseconds cut
    off), where Beam makes proto-plus's DatetimeWithNanoseconds. ParseAndValidate keeps
    the microseconds only, and a DatetimeWithNanoseconds is costly to make per message."""
    pb = _PUBSUB_MESSAGE_PB.FromString(encoded)
    if pb.HasField("publish_time"):
        stamp = pb.publish_time
        publish_time = EPOCH + datetime.timedelta(
            seconds=stamp.seconds, microseconds=stamp.nanos // 1000
        )
    else:
        publish_time = None
    return PubsubMessage(pb.data, dict(pb.attributes), pb.message_id, publish_time, pb.ordering_key)
