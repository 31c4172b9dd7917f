"""The pipeline's options, and every check of them made before anything starts.

templates/metadata.json declares the same options to Dataflow (tests/pipelines hold the
two to one another).
"""

import argparse
import os
import re
import tempfile

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)

from domain.profile_table import column_families

DEFAULT_RUNNER = "BundleBasedDirectRunner"
DEFAULT_BACKLOG_PULL_SIZE = 1000


class IngestOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        group = parser.add_argument_group("streaming ingestion")
        group.add_argument(
            "--input_subscription",
            help="Pub/Sub subscription to read, projects/<project>/subscriptions/<name>.",
        )
        group.add_argument(
            "--dead_letter_topic",
            help="Pub/Sub topic that receives every message that fails, unchanged, with "
            "error_class, error_message, error_pointer and error_step attributes.",
        )
        group.add_argument(
            "--catalog",
            help="Dataset catalog (YAML or JSON, local or gs://): dataset -> schema, kind, "
            "profile.",
        )
        group.add_argument(
            "--lake_path",
            help="Root of the data lake (local folder or gs://bucket/path; gs:// on "
            "Dataflow); Parquet lands in <lake_path>/<dataset>/date=YYYY-MM-DD/hour=HH/.",
        )
        group.add_argument(
            "--bigtable_project",
            default=None,
            help="Project of the Bigtable instance (default: --project, else "
            "$GOOGLE_CLOUD_PROJECT).",
        )
        group.add_argument(
            "--bigtable_instance",
            default="ingest-instance",
            help="Bigtable instance id (6-33 lowercase letters, digits and hyphens).",
        )
        group.add_argument(
            "--bigtable_table",
            default="profiles",
            help="Bigtable table of profiles (1-50 letters, digits and _-.).",
        )
        group.add_argument(
            "--window_seconds",
            type=int,
            default=60,
            help="Length of the lake's windows: a Parquet file per dataset and window.",
        )
        group.add_argument(
            "--dedup_minutes",
            type=int,
            default=10,
            help="The lake's dedup horizon: a message (by dataset and payload bytes: a "
            "Pub/Sub redelivery or a client's retry) is written to the lake once within "
            "this many minutes of its first copy, across windows; a copy after it is "
            "written again. Its state is held about this long.",
        )
        group.add_argument(
            "--pubsub_readers",
            type=int,
            default=1,
            help="Parallel reads of the subscription, flattened. On the DirectRunner the "
            "reads share one background pull of the subscription, so more add nothing; "
            "1 is right on Dataflow too.",
        )


class LocalRunOptions(PipelineOptions):
    """Options of the local (DirectRunner) run only: not Dataflow template parameters."""

    @classmethod
    def _add_argparse_args(cls, parser):
        group = parser.add_argument_group("local runs (DirectRunner)")
        group.add_argument(
            "--backlog_pull_size",
            type=int,
            default=None,
            help="DirectRunner only: the read pulls the subscription on a thread of its "
            "own, up to 1,000 messages a pull, each acknowledged only once what it made is "
            "durable (its lease extended until then), and each bundle "
            "takes in up to this many of the messages pulled so far (the runner's cost "
            "is per bundle). 0: the DirectRunner's own read instead, one pull of at most "
            "10 messages a bundle. Default: 1000 on the DirectRunner, 0 on other runners; "
            "must be 0 on Dataflow, whose read is its own.",
        )


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_options(argv):
    """Checks our options (and answers --help) before Beam sees the rest."""
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.streaming_ingest",
        description="The streaming ingestion pipeline: Pub/Sub in, profiles in Bigtable, "
        "Parquet in the lake.",
        formatter_class=_HelpFormatter,
        epilog="Beam's own options are accepted too (--runner, default "
        f"{DEFAULT_RUNNER}; --project; --region; ...). Streaming is always on. On the "
        "DirectRunner with its local read (--backlog_pull_size above 0, the default), SIGTERM "
        "or Ctrl-C drains: no new messages are taken, what was taken "
        "is written and every window closed, then it exits 0 (a second signal stops it at "
        "once). There, a message is acknowledged only once its Bigtable cells, lake file "
        "and dead letter are written: after a crash or a SIGKILL, Pub/Sub delivers what "
        "was not again, and the lake writes a message once within --dedup_minutes. On "
        "Dataflow, the runner acknowledges after its own checkpoint; drain the job "
        "(gcloud dataflow jobs drain).",
    )
    IngestOptions._add_argparse_args(parser)
    LocalRunOptions._add_argparse_args(parser)
    ours, _ = parser.parse_known_args(argv)

    options = PipelineOptions(argv)
    options.view_as(StandardOptions).streaming = True
    if not options.view_as(StandardOptions).runner:
        # Dataflow's flex-template launcher gives --template_location; should it leave the
        # runner out, the job must still go to Dataflow, not run on the launcher's VM.
        launched_as_template = options.view_as(GoogleCloudOptions).template_location
        options.view_as(StandardOptions).runner = (
            "DataflowRunner" if launched_as_template else DEFAULT_RUNNER
        )
    elif options.view_as(StandardOptions).runner == "DirectRunner":
        # Beam's DirectRunner would first try Prism, which has neither Beam's Pub/Sub
        # read nor ours: the pipeline runs where the DirectRunner would fall back to.
        options.view_as(StandardOptions).runner = DEFAULT_RUNNER
    ingest = options.view_as(IngestOptions)
    ingest.bigtable_project = (
        ours.bigtable_project
        or options.view_as(GoogleCloudOptions).project
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
    )
    local = options.view_as(LocalRunOptions)
    if local.backlog_pull_size is None:
        local.backlog_pull_size = DEFAULT_BACKLOG_PULL_SIZE if on_direct_runner(options) else 0
    problems = check_options(ingest)
    if problems:
        parser.error("\n  ".join(problems))
    return options


def check_options(options):
    """Every problem with the options, one message each, found before anything starts."""
    problems = [
        f"--{name} is required"
        for name in ("input_subscription", "dead_letter_topic", "catalog", "lake_path")
        if not getattr(options, name)
    ]
    if problems:
        return problems
    # Google's rules for the ids; templates/metadata.json holds the same patterns.
    project_id = r"(?:[a-z0-9][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]"
    project_rule = (
        "6-30 lowercase letters, digits and hyphens, starting with a letter "
        "and not ending with a hyphen"
    )
    pubsub_name = r"[A-Za-z][-A-Za-z0-9_.~+%]{2,254}"
    for name, kind in (("input_subscription", "subscriptions"), ("dead_letter_topic", "topics")):
        path = getattr(options, name)
        match = re.fullmatch(rf"projects/([^/]+)/{kind}/([^/]+)", path)
        if not match:
            problems.append(f"--{name} {path!r}: expected projects/<project>/{kind}/<name>")
        elif not re.fullmatch(project_id, match[1]):
            problems.append(f"--{name} {path!r}: {match[1]!r} is not a project id ({project_rule})")
        elif not re.fullmatch(pubsub_name, match[2]):
            problems.append(
                f"--{name} {path!r}: {match[2]!r} is not a Pub/Sub name (3-255 "
                "letters, digits and -_.~+%, starting with a letter)"
            )
    if not options.bigtable_project:
        problems.append("no Bigtable project: give --bigtable_project or --project")
    elif not re.fullmatch(project_id, options.bigtable_project):
        problems.append(
            f"--bigtable_project {options.bigtable_project!r}: not a project id ({project_rule})"
        )
    if not re.fullmatch(r"[a-z][-a-z0-9]{4,31}[a-z0-9]", options.bigtable_instance):
        problems.append(
            f"--bigtable_instance {options.bigtable_instance!r}: a Bigtable "
            "instance id is 6-33 lowercase letters, digits and hyphens, starting "
            "with a letter and not ending with a hyphen"
        )
    if not re.fullmatch(r"[_a-zA-Z0-9][-_.a-zA-Z0-9]{0,49}", options.bigtable_table):
        problems.append(
            f"--bigtable_table {options.bigtable_table!r}: a Bigtable table id is "
            "1-50 letters, digits and _-., not starting with - or ."
        )
    if options.window_seconds < 1:
        problems.append("--window_seconds must be at least 1")
    if options.dedup_minutes < 1:
        problems.append("--dedup_minutes must be at least 1")
    if options.pubsub_readers < 1:
        problems.append("--pubsub_readers must be at least 1")
    on_dataflow = "dataflow" in str(options.view_as(StandardOptions).runner).lower()
    backlog_pull_size = options.view_as(LocalRunOptions).backlog_pull_size or 0
    if backlog_pull_size < 0:
        problems.append("--backlog_pull_size must be 0 or more")
    elif backlog_pull_size and not on_direct_runner(options):
        problems.append(
            "--backlog_pull_size is for the DirectRunner only: leave it out "
            "(Dataflow's read acknowledges only after a checkpoint; messages "
            "pulled beside it would be acknowledged before)"
        )
    if on_dataflow and not options.lake_path.startswith("gs://"):
        problems.append(
            f"--lake_path {options.lake_path!r}: on Dataflow the lake must be a "
            "gs:// path (each worker would write to its own disk)"
        )
    elif "://" not in options.lake_path:
        # A local lake is created and written to here; a gs:// one cannot be checked
        # offline, and the workers' first write reports a missing bucket or permission.
        try:
            os.makedirs(options.lake_path, exist_ok=True)
            with tempfile.TemporaryFile(dir=options.lake_path):
                pass
        except OSError as error:
            problems.append(
                f"--lake_path {options.lake_path!r} is not a folder this process "
                f"can write to: {error}"
            )
    return problems


def on_direct_runner(options):
    return "direct" in str(options.view_as(StandardOptions).runner).lower()


def check_profile_table(options, catalog):
    """The profile table must have the column families the catalog needs: writing to a
    missing one fails only after the client's retries, and then stops the pipeline."""
    from google.api_core import exceptions, retry
    from google.cloud import bigtable

    client = bigtable.Client(project=options.bigtable_project, admin=True)
    table = client.instance(options.bigtable_instance).table(options.bigtable_table)
    try:
        existing = client.table_admin_client.get_table(
            request={"name": table.name}, retry=retry.Retry(timeout=20), timeout=20
        ).column_families
    except exceptions.NotFound:
        existing = None
    except exceptions.GoogleAPIError as error:
        return f"cannot read the profile table {table.name}: {error}"
    missing = sorted(set(column_families(catalog)) - set(existing or ()))
    if existing is None or missing:
        found = "does not exist" if existing is None else f"lacks families {missing}"
        return (
            f"the profile table {table.name} {found}; create it with: ingest bootstrap "
            f"--catalog {options.catalog} --project {options.bigtable_project} "
            f"--instance {options.bigtable_instance} --table {options.bigtable_table}"
        )
    return None
