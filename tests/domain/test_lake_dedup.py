"""domain/lake_dedup.py: a message's key, and the keys that hold its copies back."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from domain.lake_dedup import SeenKeys, message_key


def test_a_message_key_is_its_dataset_and_payload():
    key = message_key("crm", b'{"_id": "a"}')
    assert key == message_key("crm", b'{"_id": "a"}')  # a redelivery, a client's retry
    assert key != message_key("crm", b'{"_id": "a", "n": 2}')  # another record, same _id
    assert key != message_key("web", b'{"_id": "a"}')
    assert 0 <= key < 2**64
    assert message_key("\ud800", None) == message_key("\ud800", b"")  # never raises


def test_the_first_copy_in_rows_and_files_is_kept():
    seen = SeenKeys(horizon_seconds=600)
    assert seen.first_copies([7, 3, 7, 9, 3]).tolist() == [0, 1, 3]
    seen.add("a.parquet", 1000, [9, 7, 3])
    assert seen.known("a.parquet") and not seen.known("b.parquet")
    assert seen.first_copies([9, 4, 4, 7]).tolist() == [1]
    assert seen.first_copies([]).tolist() == []


def test_a_file_is_forgotten_once_its_window_is_past_the_horizon():
    seen = SeenKeys(horizon_seconds=600)
    seen.add("old.parquet", 1000, [5])
    seen.expire(1600)
    assert seen.first_copies([5]).tolist() == []  # 600 s: still within
    seen.expire(1601)
    assert seen.first_copies([5]).tolist() == [0]
    assert not seen.known("old.parquet")


@given(
    st.lists(st.lists(st.integers(0, 40), max_size=30), max_size=8),
)
def test_written_batch_by_batch_each_key_is_kept_once_the_first_time(batches):
    seen, written = SeenKeys(horizon_seconds=10**9), []
    for number, batch in enumerate(batches):
        kept = seen.first_copies(np.array(batch, dtype=np.uint64))
        kept_keys = [batch[i] for i in kept]
        seen.add(f"{number}.parquet", number, kept_keys)
        written.extend(kept_keys)
    every = [key for batch in batches for key in batch]
    assert written == list(dict.fromkeys(every))
