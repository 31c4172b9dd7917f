"""domain/merge.py: the profile merge is a pure function of the set of records
(property-based tests), and the order key that breaks ties hashes json's canonical bytes."""

import hashlib
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import merge

DATASETS = ("crm", "loyalty", "web")
POINTERS = ("/name", "/tier", "/points")


def record_strategy():
    return st.fixed_dictionaries(
        {
            "time_us": st.sampled_from([1_000, 2_000, 3_000]),  # few times: many ties
            "dataset": st.sampled_from(DATASETS),
            "operation": st.sampled_from(["merge"] * 6 + ["create", "delete"]),
            "attributes": st.lists(
                st.tuples(st.sampled_from(POINTERS), st.integers(0, 3)),
                max_size=3,
                unique_by=lambda a: a[0],
            ),
        }
    )


def fold(records, policy):
    state = merge.ProfileState()
    for record in records:
        key = merge.order_key(record["time_us"], record["dataset"], record)
        if not merge.is_deleted_before(state, key):
            merge.apply(state, key, record["dataset"], record["operation"], record["attributes"])
    return state


def profile(state, policy):
    return (
        {p: (c.value, c.dataset) for p, c in state.winners(policy).items()},
        state.reset,
        state.deleted,
    )


def reference(records, policy):
    """The definition, computed from the set: replay in order-key order."""
    unique = {merge.order_key(r["time_us"], r["dataset"], r): r for r in records}
    resets = [key for key, r in unique.items() if r["operation"] != "merge"]
    last_reset = max(resets) if resets else None
    deletes = [key for key, r in unique.items() if r["operation"] == "delete"]
    last_delete = max(deletes) if deletes else None
    live = {
        key: r
        for key, r in unique.items()
        if r["operation"] != "delete" and (last_reset is None or key >= last_reset)
    }
    winners = {}
    for key, record in live.items():
        for pointer, value in record["attributes"]:
            candidate = merge.Candidate(key, record["dataset"], value)
            if pointer not in winners or policy.rank(candidate) > policy.rank(winners[pointer]):
                winners[pointer] = candidate
    return (
        {p: (c.value, c.dataset) for p, c in winners.items()},
        last_reset,
        last_delete,
    )


POLICIES = [merge.MergePolicy(), merge.MergePolicy(("loyalty", "crm"))]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(record_strategy(), min_size=1, max_size=12), st.randoms(), st.sampled_from(POLICIES)
)
def test_any_order_and_any_redelivery_give_the_same_profile(records, rng, policy):
    shuffled = records + [rng.choice(records) for _ in range(len(records) // 2)]
    rng.shuffle(shuffled)
    assert profile(fold(shuffled, policy), policy) == profile(fold(records, policy), policy)


@settings(max_examples=300, deadline=None)
@given(st.lists(record_strategy(), min_size=1, max_size=12), st.sampled_from(POLICIES))
def test_the_fold_matches_the_definition(records, policy):
    assert profile(fold(records, policy), policy) == reference(records, policy)


def test_equal_times_are_broken_by_content_not_by_arrival():
    a = {
        "time_us": 5,
        "dataset": "crm",
        "operation": "merge",
        "attributes": [("/tier", "a")],
    }
    b = {**a, "attributes": [("/tier", "b")]}
    policy = merge.MergePolicy()
    assert profile(fold([a, b], policy), policy) == profile(fold([b, a], policy), policy)


def test_dataset_precedence_beats_a_newer_value_from_a_less_trusted_dataset():
    older_loyalty = {
        "time_us": 1,
        "dataset": "loyalty",
        "operation": "merge",
        "attributes": [("/tier", "gold")],
    }
    newer_web = {
        **older_loyalty,
        "time_us": 9,
        "dataset": "web",
        "attributes": [("/tier", "bronze")],
    }
    by_time, by_precedence = merge.MergePolicy(), merge.MergePolicy(("loyalty",))
    records = [older_loyalty, newer_web]
    assert profile(fold(records, by_time), by_time)[0] == {"/tier": ("bronze", "web")}
    assert profile(fold(records, by_precedence), by_precedence)[0] == {"/tier": ("gold", "loyalty")}


# json_codec's canonical bytes, as the stdlib writes them: built here, not taken from the
# code under test.
REFERENCE = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False
)


def test_order_key_hashes_the_bytes_json_makes():
    entity = {"b": [1.5, 1e-05, None], "a": "\u00e9", "n": 2**70}
    expected = hashlib.sha256(REFERENCE.encode(["web-events", entity]).encode("utf-8"))
    assert merge.order_key(7, "web-events", entity) == (7, expected.hexdigest())
    plain = {"b": [1.5, 2], "a": "\u00e9"}
    expected = hashlib.sha256(REFERENCE.encode(["web-events", plain]).encode("utf-8"))
    assert merge.order_key(7, "web-events", plain) == (7, expected.hexdigest())


def test_order_key_hashes_the_operation_too_unless_it_is_merge():
    """An upsert and a delete of the same entity at the same time are two records: a
    non-merge operation is hashed with the dataset and the entity; a merge is hashed as
    before, so that the order keys of merges (and the columns written) do not change."""
    entity = {"b": [1.5, 1e-05, None], "a": "\u00e9", "n": 2**70}
    merged = hashlib.sha256(REFERENCE.encode(["crm", entity]).encode("utf-8")).hexdigest()
    assert merge.order_key(7, "crm", entity, "merge") == (7, merged)
    assert merge.order_key(7, "crm", entity) == (7, merged)  # merge is the default
    keys = {"merge": merged}
    for operation in ("create", "delete"):
        document = ["crm", operation, entity]
        expected = hashlib.sha256(REFERENCE.encode(document).encode("utf-8")).hexdigest()
        assert merge.order_key(7, "crm", entity, operation) == (7, expected), operation
        keys[operation] = expected
    assert len(set(keys.values())) == 3  # three operations, three records
    # The operation is not confused with the dataset or the entity.
    assert merge.order_key(7, "crm", ["delete", entity]) != merge.order_key(
        7, "crm", entity, "delete"
    )
