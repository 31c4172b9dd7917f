"""`ingest replay`: dead letters republished to the input topic, against the real Pub/Sub
emulator."""

import threading

from google.cloud import pubsub_v1

from ingest import cli
from pubsub_helpers import pull_messages

PROFILE_WITH_TEXT_POINTS = (
    b'{"header":{"datasetId":"crm-profiles"},"body":{"xdmEntity":{"loyalty":{"points":"5"}}}}'
)
EVENT_WITHOUT_TIMESTAMP = b'{"_id":"evt-1","eventType":"web.webpagedetails.pageViews"}'
LOYALTY_EVENT = b'{"header":{"datasetId":"loyalty-events"},"body":{"xdmEntity":{"_id":"loy-1"}}}'
NOT_JSON = b'{"header": oops'


def dead_letter(payload, original_attributes, error_class, error_dataset=None):
    """A message as the pipeline dead-letters it: payload and attributes unchanged, plus its
    reason."""
    attributes = dict(original_attributes)
    attributes.update(
        error_class=error_class,
        error_message=f"a {error_class}",
        error_pointer="/x",
        error_step="parse_and_validate",
    )
    if error_dataset:
        attributes["error_dataset"] = error_dataset
    return payload, attributes


DEAD_LETTERS = [
    dead_letter(
        PROFILE_WITH_TEXT_POINTS,
        {"source": "crm-export", "batch": "7"},
        "schema_violation",
        "crm-profiles",
    ),
    dead_letter(
        EVENT_WITHOUT_TIMESTAMP, {"dataset": "web-events"}, "schema_violation", "web-events"
    ),
    dead_letter(LOYALTY_EVENT, {}, "unknown_dataset", "loyalty-events"),
    dead_letter(NOT_JSON, {"source": "app"}, "not_json"),
]


def publish(topic_path, messages):
    with pubsub_v1.PublisherClient() as publisher:
        futures = [
            publisher.publish(topic_path, payload, **attributes) for payload, attributes in messages
        ]
        for future in futures:
            future.result()


def as_pairs(messages):
    return sorted((message.data, dict(message.attributes)) for message in messages)


def replay(resources, *arguments):
    return cli.main(
        [
            "replay",
            "--project",
            resources.project,
            "--subscription",
            resources.dead_letter_subscription,
            "--topic",
            resources.topic,
            "--wait",
            "1",
            *arguments,
        ]
    )


def test_replay_republishes_the_matching_dead_letters_with_their_original_attributes(
    pubsub_resources, capsys
):
    publish(pubsub_resources.dead_letter_topic_path, DEAD_LETTERS)

    exit_code = replay(
        pubsub_resources,
        "--error-class",
        "schema_violation",
        "unknown_dataset",
        "--dataset",
        "crm-profiles",
        "--dataset",
        "loyalty-events",
    )

    assert exit_code == 0
    output = capsys.readouterr()
    replayed_lines = output.out.splitlines()
    assert len(replayed_lines) == 2
    assert all(line.startswith("replayed ") for line in replayed_lines)
    assert (
        f"Replayed 2 of 4 dead letters to {pubsub_resources.topic_path} "
        "(2 left: not_json 1, schema_violation 1)."
    ) in output.err

    replayed = pull_messages(pubsub_resources.subscription_path, expected_count=2)
    assert as_pairs(replayed) == sorted(
        [
            (PROFILE_WITH_TEXT_POINTS, {"source": "crm-export", "batch": "7"}),
            (LOYALTY_EVENT, {}),
        ]
    )
    left = pull_messages(pubsub_resources.dead_letter_subscription_path, expected_count=2)
    assert as_pairs(left) == sorted([DEAD_LETTERS[1], DEAD_LETTERS[3]])


def test_dry_run_prints_what_would_be_replayed_and_leaves_everything(pubsub_resources, capsys):
    publish(pubsub_resources.dead_letter_topic_path, DEAD_LETTERS)

    assert replay(pubsub_resources, "--dry-run", "--error-class", "schema_violation") == 0

    output = capsys.readouterr()
    lines = output.out.splitlines()
    assert len(lines) == 2
    assert all(
        line.startswith("would replay ") and "error_class=schema_violation" in line
        for line in lines
    )
    assert "Dry run: would replay 2 of 4 dead letters" in output.err
    assert pull_messages(pubsub_resources.subscription_path, expected_count=0) == []
    left = pull_messages(pubsub_resources.dead_letter_subscription_path, expected_count=4)
    assert as_pairs(left) == sorted(DEAD_LETTERS)


def test_replay_stops_after_max_messages(pubsub_resources, capsys):
    publish(pubsub_resources.dead_letter_topic_path, DEAD_LETTERS)

    assert replay(pubsub_resources, "--max", "1", "--error-class", "schema_violation") == 0

    assert len(capsys.readouterr().out.splitlines()) == 1
    replayed = pull_messages(pubsub_resources.subscription_path, expected_count=1)
    assert len(replayed) == 1
    assert replayed[0].data in (PROFILE_WITH_TEXT_POINTS, EVENT_WITHOUT_TIMESTAMP)
    assert len(pull_messages(pubsub_resources.dead_letter_subscription_path, expected_count=3)) == 3


def test_dead_letters_published_after_the_replay_began_are_left_alone(pubsub_resources, capsys):
    """A replayed message that fails again comes back as a new dead letter: replaying it would
    loop."""
    publish(pubsub_resources.dead_letter_topic_path, DEAD_LETTERS[:1])
    exit_codes = []
    replaying = threading.Thread(
        target=lambda: exit_codes.append(replay(pubsub_resources, "--wait", "3"))
    )
    replaying.start()
    # Once the first dead letter is replayed, the replay has surely begun: publish another.
    replayed = pull_messages(pubsub_resources.subscription_path, expected_count=1)
    assert [message.data for message in replayed] == [PROFILE_WITH_TEXT_POINTS]
    publish(pubsub_resources.dead_letter_topic_path, DEAD_LETTERS[2:3])
    replaying.join(timeout=30)

    assert exit_codes == [0]
    assert "Left alone 1 dead letter published after the replay began" in capsys.readouterr().err
    assert pull_messages(pubsub_resources.subscription_path, expected_count=0) == []
    left = pull_messages(pubsub_resources.dead_letter_subscription_path, expected_count=1)
    assert as_pairs(left) == [DEAD_LETTERS[2]]


def test_replay_from_a_subscription_that_does_not_exist_fails_clearly(pubsub_resources, capsys):
    exit_code = cli.main(
        [
            "replay",
            "--project",
            pubsub_resources.project,
            "--subscription",
            "no-such-sub",
            "--topic",
            pubsub_resources.topic,
            "--wait",
            "1",
        ]
    )

    assert exit_code == 1
    assert (
        "subscription projects/demo-project/subscriptions/no-such-sub does not exist"
        in capsys.readouterr().err
    )
