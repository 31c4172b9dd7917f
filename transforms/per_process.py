"""One object per worker process, for the DoFns that need a client or a compiled parser.

Beam's `Shared` makes the object once even when a worker's threads race to it, but it
holds only a weak reference and keeps just the last object acquired alive: the
DirectRunner makes a DoFn anew for every bundle, so between bundles nothing else would
hold the object and it would be built again and again. So what it makes is kept here,
for the life of the process.
"""

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
