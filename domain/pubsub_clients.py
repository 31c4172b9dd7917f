"""The Pub/Sub subscriber client, made so that it can pull any message the topic accepts.

Against the emulator (PUBSUB_EMULATOR_HOST), the client library opens its channel with
gRPC's default 4 MiB limit on a received message: a message above it (Pub/Sub takes up
to 10 MB) can then never be pulled, and a pull loop that retries it never moves on. The
library's own channel to Google has no limit; this one, to the emulator, has none either.
"""

import os


def subscriber_client():
    from google.cloud import pubsub_v1

    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    if not host:
        return pubsub_v1.SubscriberClient()
    import grpc
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    channel = grpc.insecure_channel(
        host,
        options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
    )
    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=channel))
