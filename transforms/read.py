"""Reading: Pub/Sub messages, with their attributes, from one subscription."""
import apache_beam as beam
from apache_beam.io.gcp.pubsub import ReadFromPubSub


class ReadMessages(beam.PTransform):
    """Reads `readers` parallel pulls of one subscription and flattens them.

    On the DirectRunner one read pulls at most 10 messages per bundle, so several reads
    of one subscription are what lets it keep up; on Dataflow one read is enough.
    """

    def __init__(self, subscription, readers=1):
        super().__init__()
        self.subscription = subscription
        self.readers = readers

    def expand(self, pipeline):
        reads = [
            pipeline | f"Read{index}" >> ReadFromPubSub(
                subscription=self.subscription, with_attributes=True)
            for index in range(self.readers)
        ]
        if len(reads) == 1:
            return reads[0]
        return reads | "MergeReads" >> beam.Flatten()
