"""The lake's dedup: a message is written once within a horizon, across windows, panes
and restarts.

A message's key is 64 bits of a BLAKE2b digest of its dataset and payload bytes: a Pub/Sub
redelivery (the same message id) and a client's retry (a new message id, the same bytes)
share it; two different records that share an `_id` do not. Every lake file holds its
rows' keys (the `_message_key` column), so the lake itself is the dedup's state: a writer
that starts (a restart, a Dataflow worker new to a shard) reads the keys of the files of
the horizon, and a key is never forgotten by a crash. SeenKeys holds them per dataset and
shard, a sorted array per file, and drops a file's once its window is past the horizon.
"""

import hashlib

import numpy as np

KEY_COLUMN = "_message_key"


def message_key(dataset, payload):
    """The key of a message of `dataset` whose payload is `payload` (bytes), a uint64."""
    digest = hashlib.blake2b(dataset.encode("utf-8", "surrogatepass"), digest_size=8)
    digest.update(b"\0")
    digest.update(payload if isinstance(payload, bytes) else b"")
    return int.from_bytes(digest.digest(), "little")


class SeenKeys:
    """The keys written to the files of one dataset and shard within the horizon."""

    def __init__(self, horizon_seconds):
        self.horizon_seconds = horizon_seconds
        self.files = {}  # path -> (window start, seconds since the epoch; sorted uint64 keys)

    def known(self, path):
        return path in self.files

    def add(self, path, window_start, keys):
        self.files[path] = (window_start, np.sort(np.asarray(keys, dtype=np.uint64)))

    def expire(self, window_start):
        """Forgets the files whose window started more than the horizon before
        `window_start`: their keys no longer hold a copy back."""
        oldest = window_start - self.horizon_seconds
        self.files = {p: entry for p, entry in self.files.items() if entry[0] >= oldest}

    def first_copies(self, keys):
        """Row indices, ascending, of the keys (in row order) neither seen in a file of the
        horizon nor earlier in these rows."""
        keys = np.asarray(keys, dtype=np.uint64)
        _, first = np.unique(keys, return_index=True)
        first.sort()
        candidates = keys[first]
        found = np.zeros(len(candidates), dtype=bool)
        for _, known in self.files.values():
            if len(known):
                at = np.minimum(np.searchsorted(known, candidates), len(known) - 1)
                found |= known[at] == candidates
        return first[~found]
