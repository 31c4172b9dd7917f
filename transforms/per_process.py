"""One object per worker process, for the DoFns that need a client or a compiled parser.

Beam's `Shared` makes the object once even when a worker's threads race to it, but it
holds only a weak reference and keeps just the last object acquired alive: the
DirectRunner makes a DoFn anew for every bundle, so between bundles nothing else would
hold the object and it would be built again and again. So what it makes is kept here,
for the life of the process.
"""

import hashlib
import pickle
import threading

from apache_beam.utils.shared import Shared

_KEPT = {}
_LOCK = threading.Lock()


class PerProcess:
    """A picklable handle; `acquire(make)` gives every copy of it in a process one object."""

    def __init__(self):
        self._shared = Shared()

    def acquire(self, make):
        made = self._shared.acquire(make)
        with _LOCK:
            _KEPT.setdefault(id(made), made)
        return made


class PinnedDict(dict):
    """A dict of values a DoFn only reads (schemas, say) that is unpickled once per process.

    The DirectRunner pickles each step's DoFn and unpickles it again for every bundle, and
    pyarrow schemas, for one, cost milliseconds to unpickle. This dict is pickled once, as
    its digest and bytes; unpickling it where a copy of those bytes already came back gives
    that same dict, without reading them again. Do not change it once it is pickled.
    """

    _pickled = None

    def __reduce__(self):
        if self._pickled is None:
            payload = pickle.dumps(dict(self), protocol=pickle.HIGHEST_PROTOCOL)
            self._pickled = (hashlib.sha256(payload).hexdigest(), payload)
        return (_unpinned, self._pickled)


_PINNED = {}


def _unpinned(digest, payload):
    with _LOCK:
        found = _PINNED.get(digest)
    if found is None:
        found = PinnedDict(pickle.loads(payload))
        found._pickled = (digest, payload)
        with _LOCK:
            found = _PINNED.setdefault(digest, found)
    return found
