"""What a fault case counts (not a test module): published, in the lake, in the dead letter
(the lake's `_errors` and the dead-letter topic), lost and duplicated, by `_id` and by
Pub/Sub message id; and whether Bigtable holds exactly the cells of the published valid
records, and the profile the pure merge gives over them."""

import collections
import dataclasses
import time

import pyarrow.parquet as pq

from domain.profile_lookup import read_profile
from domain.profile_table import row_key
from tests.domain import graph_strategies as gs
from tests.faults import records as known
from tests.transforms.emulator_writes import cells_of, expected_cells

ERRORS = "_errors"
KILLED = "kill"  # the exit code noted for a run the test killed on purpose
RESULTS = []  # (case, Counts), printed at the end of the session (conftest.py)


def lake_rows(lake):
    """[(_id, _message_id)] of every row of every dataset but `_errors`; [(_message_id,
    error_class)] of `_errors`. Every file under the lake is read: a stray one counts too."""
    rows, errors = [], []
    for path in sorted(lake.rglob("*.parquet")) if lake.exists() else []:
        if ERRORS in path.relative_to(lake).parts[:1]:
            table = pq.read_table(path, columns=["_message_id", "error_class"])
            errors += zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)
        else:
            table = pq.read_table(path, columns=["_id", "_message_id"])
            ids, message_ids = (
                table.column("_id").to_pylist(),
                table.column("_message_id").to_pylist(),
            )
            rows += zip(ids, message_ids, strict=True)
    return rows, errors


def pull_all(subscriber, subscription, quiet_seconds=3):
    """Every message on the subscription, acknowledged, until none comes for a while."""
    messages = []
    quiet_until = time.monotonic() + quiet_seconds
    while time.monotonic() < quiet_until:
        response = subscriber.pull(
            request={"subscription": subscription, "max_messages": 500}, timeout=5
        )
        received = response.received_messages
        if received:
            messages += [r.message for r in received]
            subscriber.acknowledge(
                request={"subscription": subscription, "ack_ids": [r.ack_id for r in received]}
            )
            quiet_until = time.monotonic() + quiet_seconds
    return messages


@dataclasses.dataclass
class Counts:
    published: int
    published_valid: int
    lake_rows: int
    errors_rows: int
    dead_letter_topic: int
    lost_ids: list
    duplicated_ids: list
    lost_messages: list
    duplicated_messages: list
    poison_in_errors: int  # of the published invalid messages, those once in `_errors`
    poison_on_topic: int  # and those once on the dead-letter topic
    bigtable: str  # "exact", or what differs
    exit_codes: list
    seconds: float = 0.0

    @property
    def clean(self):
        return not (
            self.lost_ids or self.duplicated_ids or self.lost_messages or self.duplicated_messages
        )

    def assert_ok(self, case, log, poison=0):
        """0 lost, 0 duplicated, the poison dead-lettered once in each place, Bigtable
        exact, every run exited 0."""
        detail = f"{case}: {self.row(case)}\nthe pipeline's log (end):\n{log}"
        assert not self.lost_ids and not self.lost_messages, (
            f"lost {len(self.lost_ids)} ids, e.g. {self.lost_ids[:5]}; " + detail
        )
        assert not self.duplicated_ids and not self.duplicated_messages, (
            f"duplicated {len(self.duplicated_ids)} ids, e.g. {self.duplicated_ids[:5]}; " + detail
        )
        drained = [code for code in self.exit_codes if code != KILLED]
        assert drained and all(code == 0 for code in drained), detail
        assert self.errors_rows == self.poison_in_errors == poison, detail
        assert self.dead_letter_topic == self.poison_on_topic == poison, detail
        assert self.bigtable == "exact", detail

    def row(self, case):
        return (
            f"{case:<34} {self.published:>5} {self.lake_rows:>5} {self.errors_rows:>4}"
            f" {self.dead_letter_topic:>4} {len(self.lost_ids):>5} {len(self.lost_messages):>5}"
            f" {len(self.duplicated_ids):>5} {len(self.duplicated_messages):>5}"
            f"  {self.bigtable:<12} {','.join(map(str, self.exit_codes)):<6} {self.seconds:>5.0f}"
        )


HEADER = (
    f"{'case':<34} {'pub':>5} {'lake':>5} {'err':>4} {'dlt':>4} {'lost':>5} {'lostm':>5}"
    f" {'dup':>5} {'dupm':>5}  {'bigtable':<12} {'exits':<6} {'secs':>5}"
)
LEGEND = (
    "pub: published; lake: rows outside _errors; err: _errors rows; dlt: messages on the "
    "dead-letter topic; lost/dup: valid records by _id; lostm/dupm: by Pub/Sub message id; "
    "bigtable: its cells and profiles against the published records; exits: the runs' "
    "exit codes; secs: the case's wall time"
)


def count(target, published, exit_codes):
    """Counts against `published` ({message id: records.Message}), from the target's lake,
    dead-letter topic and table."""
    rows, errors = lake_rows(target.lake)
    with target.subscriber() as subscriber:
        topic = pull_all(subscriber, target.resources.dead_letter_subscription_path)
    valid = {mid: m for mid, m in published.items() if m.valid}
    poison = {mid: m for mid, m in published.items() if not m.valid}
    by_id = collections.Counter(record_id for record_id, _ in rows)
    by_message = collections.Counter(mid for _, mid in rows)
    expected_ids = {m.record_id for m in valid.values()}
    payloads = {m.payload for m in poison.values()}
    error_ids = collections.Counter(mid for mid, _ in errors)
    topic_payloads = collections.Counter(m.data for m in topic)
    return Counts(
        published=len(published),
        published_valid=len(valid),
        lake_rows=len(rows),
        errors_rows=len(errors),
        dead_letter_topic=len(topic),
        lost_ids=sorted(expected_ids - set(by_id)),
        duplicated_ids=sorted(i for i, n in by_id.items() if n > 1),
        lost_messages=sorted(set(valid) - set(by_message)),
        duplicated_messages=sorted(mid for mid, n in by_message.items() if n > 1),
        poison_in_errors=sum(1 for mid in poison if error_ids[mid] == 1),
        poison_on_topic=sum(1 for payload in payloads if topic_payloads[payload] == 1),
        bigtable=bigtable_check(target, list(valid.values())),
        exit_codes=list(exit_codes),
    )


def bigtable_check(target, valid_messages):
    """ "exact" if the table holds exactly the cells of the published valid records (each
    written once or many times: the same cells) and each person's profile, looked up by
    each identity, is the one the pure merge gives over those cells; else what differs."""
    catalog = known.catalog()
    expected = expected_cells(known.parsed(valid_messages, catalog), catalog)
    table = target.table()
    actual = cells_of(table)
    if actual != expected:
        missing = sorted(set(expected) - set(actual))
        differ = sorted(k for k in expected if k in actual and actual[k] != expected[k])
        extra = sorted(set(actual) - set(expected))
        return f"rows missing {len(missing)}, differing {len(differ)}, extra {len(extra)}"
    rules, policy = catalog.identity_rules, catalog.dataset_precedence
    for person in range(known.PERSONS):
        for identity in known.identities(person):
            if row_key(*identity) not in expected:
                continue
            found = read_profile(table, catalog, *identity)
            pure = gs.lookup(expected, identity, rules, policy).profile
            shown = {k: found[k] for k in pure} if found else None
            if shown != pure:
                return f"profile of {identity} differs"
    return "exact"


def summary_lines():
    if not RESULTS:
        return []
    return [HEADER] + [counts.row(case) for case, counts in RESULTS] + [LEGEND]
