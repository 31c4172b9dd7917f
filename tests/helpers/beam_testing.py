"""Beam's test pipelines as the transforms' tests run them."""

from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline


def streaming_pipeline():
    """A streaming TestPipeline on the BundleBasedDirectRunner, for TestStream input."""
    return TestPipeline(
        options=PipelineOptions(["--streaming", "--runner=BundleBasedDirectRunner"])
    )
