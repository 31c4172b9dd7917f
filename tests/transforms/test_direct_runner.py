"""transforms/direct_runner.py: the DoFn specs kept per class, and empty bundles left out,
on the BundleBasedDirectRunner, each installed for one test only (monkeypatch); and
transforms/per_process.py's PinnedDict, the DoFns' schemas unpickled once a process."""

import pickle
import threading

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.internal import pickler
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms import userstate
from apache_beam.transforms.window import FixedWindows, TimestampedValue

from transforms import direct_runner
from transforms.per_process import PinnedDict

STARTED = {}  # DoFn key -> bundles started, in this process (the runner runs DoFns here)
LOCK = threading.Lock()


@pytest.fixture
def sped_up(monkeypatch):
    for owner, name, ours in direct_runner.REPLACEMENTS:
        monkeypatch.setattr(owner, name, ours)


class _Stateful(beam.DoFn):
    COUNT = userstate.CombiningValueStateSpec("count", combine_fn=sum)
    FLUSH = userstate.TimerSpec("flush", userstate.TimeDomain.WATERMARK)

    def process(
        self, element, count=beam.DoFn.StateParam(COUNT), flush=beam.DoFn.TimerParam(FLUSH)
    ):
        count.add(1)
        yield element

    @userstate.on_timer(FLUSH)
    def flush(self):
        yield "flushed"


class _Stateless(beam.DoFn):
    def process(self, element):
        yield element


class _HoldsABoundMethod(beam.DoFn):
    def __init__(self, other):
        self.other_process = other.process  # in the instance dict: asked every time

    def process(self, element):
        yield element


def test_the_specs_kept_per_class_are_beams_own():
    for dofn in (_Stateful(), _Stateless(), _HoldsABoundMethod(_Stateful())):
        assert direct_runner.get_dofn_specs(dofn) == direct_runner._beams_get_dofn_specs(dofn)
        assert direct_runner.get_dofn_specs(dofn) == direct_runner._beams_get_dofn_specs(dofn)
    state, timers = direct_runner.get_dofn_specs(_Stateful())
    assert {s.name for s in state} == {"count"} and {t.name for t in timers} == {"ts-flush"}
    assert direct_runner.get_dofn_specs(_Stateless()) == (set(), set())


def test_a_caller_changing_the_specs_it_got_changes_nothing_kept():
    state, _ = direct_runner.get_dofn_specs(_Stateful())
    state.clear()
    assert direct_runner.get_dofn_specs(_Stateful())[0]


def test_a_class_is_inspected_once(monkeypatch):
    asked = []
    beams = direct_runner._beams_get_dofn_specs

    def counting(dofn):
        asked.append(type(dofn))
        return beams(dofn)

    monkeypatch.setattr(direct_runner, "_beams_get_dofn_specs", counting)
    monkeypatch.setattr(direct_runner, "_specs_by_class", {})
    for _ in range(5):
        direct_runner.get_dofn_specs(_Stateless())
        direct_runner.get_dofn_specs(_HoldsABoundMethod(_Stateless()))
    assert asked.count(_Stateless) == 1
    assert asked.count(_HoldsABoundMethod) == 5


class _CountBundles(beam.DoFn):
    def __init__(self, key):
        self.key = key

    def start_bundle(self):
        with LOCK:
            STARTED[self.key] = STARTED.get(self.key, 0) + 1

    def process(self, element):
        yield element


def _split(n):
    if n < 0:
        yield beam.pvalue.TaggedOutput("negative", n)
    else:
        yield n


def run_split(key):
    with TestPipeline(runner="BundleBasedDirectRunner") as pipeline:
        outputs = (
            pipeline
            | beam.Create(list(range(20)))
            | beam.FlatMap(_split).with_outputs("negative", main="positive")
        )
        _ = outputs.negative | "OnNothing" >> beam.ParDo(_CountBundles(key + "-negative"))
        totals = (
            outputs.positive
            | beam.ParDo(_CountBundles(key + "-positive"))
            | beam.Map(lambda n: TimestampedValue(("all", n), n))
            | beam.WindowInto(FixedWindows(10))
            | beam.CombinePerKey(sum)
            | beam.Map(lambda kv: kv[1])
        )
        assert_that(totals, equal_to([sum(range(10)), sum(range(10, 20))]))


def test_a_step_whose_input_stays_empty_is_not_run(sped_up):
    run_split("sped-up")
    assert STARTED.get("sped-up-negative", 0) == 0
    assert STARTED["sped-up-positive"] >= 1


def test_without_it_the_runner_runs_the_step_on_empty_bundles():
    run_split("plain")  # the test above can fail: this is what it changes
    assert STARTED["plain-negative"] >= 1


SCHEMAS = {"web-events": pa.schema([("a", pa.int64()), ("b", pa.string())])}


def test_a_pinned_dict_comes_back_equal_and_the_same_object_within_a_process():
    pinned = PinnedDict(SCHEMAS)
    first = pickle.loads(pickle.dumps(pinned))
    second = pickle.loads(pickle.dumps(pinned))
    assert first == SCHEMAS and first is second
    assert pickler.roundtrip(first) is first  # Beam's own pickler, as the runner uses it


def test_dicts_pinned_apart_stay_apart():
    one = pickle.loads(pickle.dumps(PinnedDict({"x": 1})))
    other = pickle.loads(pickle.dumps(PinnedDict({"x": 2})))
    assert one == {"x": 1} and other == {"x": 2}
