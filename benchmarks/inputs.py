"""The inputs of the worker path, the step costs and the validation cost: generated
messages (ingest.dev.generate, seeded, a fixed clock), and the Pub/Sub protos Dataflow's
read hands a worker."""

import datetime
import os
import struct

FIXED_CLOCK = datetime.datetime(2026, 11, 30, 12, 0, tzinfo=datetime.timezone.utc)


def generated_messages(count, seed):
    from apache_beam.io.gcp.pubsub import PubsubMessage

    from ingest.dev.generate import RecordGenerator

    generator = RecordGenerator(seed=seed, duplicate_share=0, clock=lambda: FIXED_CLOCK)
    messages = []
    for number, generated in enumerate(generator.messages(count)):
        messages.append(
            PubsubMessage(
                generated.payload,
                {"dataset": generated.dataset},
                message_id=str(number),
                publish_time=FIXED_CLOCK,
            )
        )
    return messages, dict(generator.counts)


def write_pubsub_protos(messages, folder, shards=10):
    """The messages as Pub/Sub protos, length-prefixed, in `shards` files: what Dataflow's
    read hands the pipeline is such bytes, decoded by transforms.read.message_from_proto."""
    os.makedirs(folder)
    paths = [os.path.join(folder, f"messages-{n}") for n in range(shards)]
    for number, path in enumerate(paths):
        with open(path, "wb") as out:
            for message in messages[number::shards]:
                encoded = message._to_proto_str(for_publish=False)
                out.write(struct.pack(">I", len(encoded)) + encoded)
    return paths


def read_pubsub_protos(path):
    with open(path, "rb") as handle:
        data = handle.read()
    position = 0
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        yield data[position + 4 : position + 4 + length]
        position += 4 + length
