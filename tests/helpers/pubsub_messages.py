"""Pub/Sub messages as the pipeline's steps get them: Beam's PubsubMessages of the
examples/ records, and the message protos Dataflow's read hands over."""

import datetime

from apache_beam.io.gcp.pubsub import PubsubMessage
from google.pubsub_v1.types import PubsubMessage as PubsubMessageProto

from helpers.examples import EXAMPLES


def sample_messages():
    """records.jsonl (attribute n: the line number) then records-bare.jsonl (dataset
    web-events), one PubsubMessage a line."""
    lines = (EXAMPLES / "records.jsonl").read_bytes().splitlines()
    messages = [
        PubsubMessage(line, {"n": str(i)}, message_id=f"m{i}") for i, line in enumerate(lines)
    ]
    for i, line in enumerate((EXAMPLES / "records-bare.jsonl").read_bytes().splitlines()):
        messages.append(PubsubMessage(line, {"dataset": "web-events"}, message_id=f"b{i}"))
    return messages


def proto_messages():
    """Pub/Sub message protos with every field set, and with each left out."""
    moment = datetime.datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=datetime.timezone.utc)
    full = PubsubMessageProto(
        data=b'{"a": 1}',
        attributes={"dataset": "web-events", "k": "v"},
        message_id="m-1",
        publish_time=moment,
        ordering_key="person-1",
    )
    nanos = PubsubMessageProto.pb(PubsubMessageProto(data=b"x", message_id="m-2"))
    nanos.publish_time.seconds, nanos.publish_time.nanos = 1_796_040_000, 123_456_789
    return [
        PubsubMessageProto.serialize(full),
        PubsubMessageProto.serialize(PubsubMessageProto(data=b"only data")),
        PubsubMessageProto.serialize(PubsubMessageProto(attributes={"dataset": "d"})),
        PubsubMessageProto.serialize(PubsubMessageProto()),
        nanos.SerializeToString(),
        PubsubMessage(
            b"\xff\x00", {"√": "ü" * 300}, message_id="m-3", publish_time=moment
        )._to_proto_str(for_publish=False),
    ]
