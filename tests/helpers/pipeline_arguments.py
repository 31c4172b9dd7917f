"""Command lines of the pipeline (pipelines/options.py), valid ones and the options'
own declarations, for the options' tests and the flex template's."""

import argparse

from apache_beam.options.pipeline_options import PipelineOptions

from helpers.examples import EXAMPLE_CATALOG
from pipelines.options import IngestOptions, check_options

VALID = {
    "input_subscription": "projects/demo-project/subscriptions/ingest-input-sub",
    "dead_letter_topic": "projects/demo-project/topics/ingest-dead-letter",
    "catalog": str(EXAMPLE_CATALOG),
    "lake_path": "gs://demo-bucket/lake",
    "bigtable_project": "demo-project",
}


def argv_of(values):
    return [f"--{name}={value}" for name, value in values.items()]


def pipeline_options():
    """The pipeline's own options, name -> argparse action, as IngestOptions declares them."""
    parser = argparse.ArgumentParser()
    IngestOptions._add_argparse_args(parser)
    return {action.dest: action for action in parser._actions if action.dest != "help"}


def required_options():
    """The options check_options asks for when none is given."""
    problems = check_options(PipelineOptions([]).view_as(IngestOptions))
    return {name for name in pipeline_options() if f"--{name} is required" in problems}
