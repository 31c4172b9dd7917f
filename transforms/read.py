"""Reading: Pub/Sub messages, with their attributes, from one subscription."""

import datetime

import apache_beam as beam
from apache_beam.io.gcp.pubsub import PubsubMessage, ReadFromPubSub
from apache_beam.metrics import Metrics
from google.pubsub_v1.types import PubsubMessage as PubsubMessageProto

from domain.times import EPOCH
from transforms.per_process import PerProcess

MAX_PULL_MESSAGES = 1000


class ReadMessages(beam.PTransform):
    """Reads `readers` parallel pulls of one subscription and flattens them.

    The DirectRunner's read pulls at most 10 messages per bundle, and the runner's cost
    is per bundle of every step, not per message: that caps a local pipeline at about a
    hundred messages a second. With `backlog_pull_size` N > 0, each bundle the read
    brings also pulls up to N more messages of the subscription, in the same bundle:
    a backlog then flows in bundles of up to N + 10, and a trickle is not delayed (a
    pull that finds nothing returns at once). Those messages are acknowledged when
    pulled, as the DirectRunner's read does its own. Dataflow's read needs none of this
    (N must be 0 there: its read acknowledges only after a checkpoint).
    """

    def __init__(self, subscription, readers=1, backlog_pull_size=0):
        super().__init__()
        self.subscription = subscription
        self.readers = readers
        self.backlog_pull_size = backlog_pull_size

    def expand(self, pipeline):
        reads = [
            pipeline | f"Read{index}" >> _ReadFromPubSub(self.subscription)
            for index in range(self.readers)
        ]
        messages = reads[0] if len(reads) == 1 else reads | "MergeReads" >> beam.Flatten()
        if self.backlog_pull_size:
            messages = messages | "PullBacklog" >> beam.ParDo(
                _PullBacklogFn(self.subscription, self.backlog_pull_size)
            )
        return messages


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


class _PullBacklogFn(beam.DoFn):
    def __init__(self, subscription, size):
        self.subscription = subscription
        self.size = size
        self.client_handle = PerProcess()

    def setup(self):
        self.client = self.client_handle.acquire(_subscriber_client)

    def start_bundle(self):
        self.pulled = False

    def process(self, message):
        yield message
        if self.pulled:
            return
        self.pulled = True
        client = self.client
        received = []
        while len(received) < self.size:
            response = client.pull(
                request={
                    "subscription": self.subscription,
                    "max_messages": min(MAX_PULL_MESSAGES, self.size - len(received)),
                    "return_immediately": True,
                }
            )
            # The raw protobuf: proto-plus wrappers are slow to read, message by message.
            pulled = type(response).pb(response).received_messages
            if not pulled:
                break
            received.extend(pulled)
            ack_ids = [m.ack_id for m in pulled]
            for start in range(0, len(ack_ids), 500):  # an ack request is at most 512 KB
                client.acknowledge(
                    request={
                        "subscription": self.subscription,
                        "ack_ids": ack_ids[start : start + 500],
                    }
                )
        Metrics.counter("read", "backlog_pulled").inc(len(received))
        for received_message in received:
            yield _message(received_message.message)


def _message(pulled):
    """The PubsubMessage the DirectRunner's read makes of a pulled message (protobuf)."""
    publish_time = (
        pulled.publish_time.ToDatetime(tzinfo=datetime.timezone.utc)
        if pulled.HasField("publish_time")
        else None
    )
    return PubsubMessage(
        pulled.data,
        dict(pulled.attributes),
        message_id=pulled.message_id or None,
        publish_time=publish_time,
        ordering_key=pulled.ordering_key,
    )


def _subscriber_client():
    from google.cloud import pubsub_v1

    return pubsub_v1.SubscriberClient()
