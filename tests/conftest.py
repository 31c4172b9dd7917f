"""Shared fixtures: Google's Pub/Sub and Bigtable emulators, started once per test session.

The tests run against the real emulators, never against mocks. If the emulators cannot
be started here, the tests that need them fail (they are never skipped): a green run
must mean the code was tested.
"""

import pathlib
import uuid
from dataclasses import asdict, dataclass

import pytest

from domain.catalog import Catalog
from ingest import admin
from ingest.dev import local_stack

TEST_PROJECT = "demo-project"
EXAMPLE_CATALOG = pathlib.Path(__file__).parent.parent / "examples" / "catalog.yaml"


@dataclass
class Emulators:
    pubsub_host: str  # host:port, as in PUBSUB_EMULATOR_HOST
    bigtable_host: str  # host:port, as in BIGTABLE_EMULATOR_HOST
    project: str
    stack: local_stack.Stack


@dataclass
class StackResources:
    """Names of one test's own topics, subscriptions and Bigtable table."""

    project: str
    topic: str
    subscription: str
    dead_letter_topic: str
    dead_letter_subscription: str
    instance: str
    table: str

    @classmethod
    def unique(cls, project):
        """Names no other test uses, in `project`."""
        suffix = uuid.uuid4().hex[:8]
        return cls(
            project=project,
            topic=f"input-{suffix}",
            subscription=f"input-sub-{suffix}",
            dead_letter_topic=f"dead-letter-{suffix}",
            dead_letter_subscription=f"dead-letter-sub-{suffix}",
            instance="test-instance",
            table=f"profiles-{suffix}",
        )

    @property
    def topic_path(self):
        return f"projects/{self.project}/topics/{self.topic}"

    @property
    def subscription_path(self):
        return f"projects/{self.project}/subscriptions/{self.subscription}"

    @property
    def dead_letter_topic_path(self):
        return f"projects/{self.project}/topics/{self.dead_letter_topic}"

    @property
    def dead_letter_subscription_path(self):
        return f"projects/{self.project}/subscriptions/{self.dead_letter_subscription}"


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    """Both emulators on free ports, with the environment variables set for the session."""
    state_dir = tmp_path_factory.mktemp("local-stack")
    try:
        stack = local_stack.start(state_dir, pubsub_port=0, bigtable_port=0)
        start_error = None
    except local_stack.LocalStackError as error:
        start_error = error
    if start_error is not None:  # failed outside the except block, so the message is shown once
        pytest.fail(
            "These tests need the Pub/Sub and Bigtable emulators, which did not start:\n"
            f"{start_error}",
            pytrace=False,
        )

    try:
        with admin.environment_set(local_stack.environment(stack, TEST_PROJECT)):
            yield Emulators(
                pubsub_host=stack.pubsub.address,
                bigtable_host=stack.bigtable.address,
                project=TEST_PROJECT,
                stack=stack,
            )
    finally:
        local_stack.stop(state_dir)


@pytest.fixture
def pubsub_resources(emulators):
    """An input topic and subscription, a dead-letter topic and subscription and a Bigtable
    table, all with names unique to the test, created on the emulators."""
    resources = StackResources.unique(emulators.project)
    admin.create_resources(**asdict(resources), catalog=Catalog.load(str(EXAMPLE_CATALOG)))
    return resources
