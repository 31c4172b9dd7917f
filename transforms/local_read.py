"""The Pub/Sub read of a local run: a background pull, and bundles of what it has pulled.

The DirectRunner's own read makes each bundle out of one synchronous pull of at most 10
messages, on the runner's only thread, and the runner's cost is per bundle: a local
pipeline then spends its time pulling, and a record waits for the pulls in front of it.
Here a thread of its own pulls the subscription (blocking pulls of up to 1,000 messages)
and the runner's read step only takes what is queued: every message pulled so far, up to
`bundle_size`, at once. Another thread acknowledges a message only once what the pipeline
made of it is durable, and extends its lease until then (both: background_pull.py). When
nothing is queued the read waits at most IDLE_WAIT_SECONDS and then returns empty, so that the
watermark, and with it the lake's windows, moves on while the topic is quiet. A failed
pull is retried, backing off, for as long as it fails: an outage of Pub/Sub is waited
out, with a WARNING each time, never the end of the pipeline.

DirectRunner only (Dataflow's read is its own): the step is evaluated by
_LocalReadEvaluator, registered with the runner's evaluators (docs/private-apis.md).
"""

import logging
import time

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.runners.direct.transform_evaluator import (
    TransformEvaluatorRegistry,
    _TransformEvaluator,
)
from apache_beam.runners.direct.util import TransformResult
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from transforms.background_pull import BackgroundPull, draining

IDLE_WAIT_SECONDS = 0.5

_LOG = logging.getLogger(__name__)


class LocalPubSubRead(beam.PTransform):
    """Unbounded PubsubMessages (attributes included) of one subscription."""

    def __init__(self, subscription, bundle_size, window_seconds=None):
        super().__init__()
        self.subscription = subscription
        self.bundle_size = bundle_size
        self.window_seconds = window_seconds  # the lake's: a message is held until its closes

    def expand(self, pbegin):
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)

    def get_windowing(self, unused_inputs):
        return beam.Windowing(GlobalWindows())


class _LocalReadEvaluator(_TransformEvaluator):
    """Each bundle of the read: what the background pull has queued, up to bundle_size,
    stamped with the time it is taken at. The watermark then moves to that time: nothing
    still queued can be late, since it is stamped when it is taken."""

    def start_bundle(self):
        pass

    def process_element(self, element):
        pass

    def finish_bundle(self):
        transform = self._applied_ptransform.transform
        pull = BackgroundPull.of(
            transform.subscription, transform.bundle_size, transform.window_seconds
        )
        if pull._watermark is None:
            pull.watch(_least_watermark(self._evaluation_context._watermark_manager))
        stamp = time.time()
        taken = pull.take(transform.bundle_size, IDLE_WAIT_SECONDS, stamp)
        if not taken and draining() and pull.drained():
            _LOG.info(
                "the read of %s is drained: every message taken is handed on", pull.subscription
            )
            return TransformResult(self, [], [], None, {None: MAX_TIMESTAMP})
        bundles = []
        if taken:
            bundle = self._evaluation_context.create_bundle(next(iter(self._outputs)))
            at = Timestamp.of(stamp)
            for message in taken:
                bundle.output(GlobalWindows.windowed_value(message, timestamp=at))
            bundles.append(bundle)
        unprocessed = self._evaluation_context.create_bundle(
            pvalue.PBegin(self._applied_ptransform.transform.pipeline)
        )
        hold = Timestamp.of(stamp if taken else time.time())
        return TransformResult(self, bundles, [unprocessed], None, {None: hold})


def _least_watermark(watermark_manager):
    """() -> the least output watermark of all the pipeline's steps, in seconds."""
    watermarks = list(watermark_manager._transform_to_watermarks.values())

    def least():
        return min(w.output_watermark for w in watermarks).micros / 1e6

    return least


TransformEvaluatorRegistry._test_evaluators_overrides[LocalPubSubRead] = _LocalReadEvaluator
