"""transforms/per_process.py: one object per process for every copy of a handle, made
once, and kept between bundles."""

import gc
import pickle
import threading

from apache_beam.internal import pickler

from transforms.per_process import PerProcess


class Client:
    """What a DoFn makes once per process: a client, a compiled parser."""


def counting_maker():
    made = []

    def make():
        made.append(Client())
        return made[-1]

    return make, made


def test_every_pickled_copy_of_a_handle_gets_the_one_object():
    handle = PerProcess()
    make, made = counting_maker()
    copies = [
        handle,
        pickle.loads(pickle.dumps(handle)),
        pickler.loads(pickler.dumps(handle)),
        pickle.loads(pickle.dumps(pickle.loads(pickle.dumps(handle)))),
    ]
    objects = [copy.acquire(make) for copy in copies]
    assert len(made) == 1 and all(o is made[0] for o in objects)


def test_the_object_outlives_every_reference_to_it():
    # Beam's Shared alone keeps only the last object acquired alive: with another handle
    # acquired in between (another DoFn's), a bundle's new DoFn would make it anew.
    handle = PerProcess()
    make, made = counting_maker()
    handle.acquire(make)
    made.clear()  # nothing of the test holds it now
    for _ in range(3):
        PerProcess().acquire(Client)
        gc.collect()
        pickle.loads(pickle.dumps(handle)).acquire(make)
    assert made == []


def test_two_handles_have_two_objects():
    make, made = counting_maker()
    first, second = PerProcess(), PerProcess()
    assert first.acquire(make) is not second.acquire(make)
    assert len(made) == 2
    assert first.acquire(make) is made[0] and second.acquire(make) is made[1]


def test_threads_racing_to_a_handle_get_one_object():
    handle = PerProcess()
    make, made = counting_maker()
    start, got = threading.Barrier(8), []

    def acquire():
        start.wait()
        got.append(pickle.loads(pickle.dumps(handle)).acquire(make))

    threads = [threading.Thread(target=acquire) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(got) == 8 and all(o is made[0] for o in got)
