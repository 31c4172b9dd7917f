"""Two costs the DirectRunner pays for every bundle of every step, taken out of a local run.

Empty bundles. Each step hands every one of its outputs on as a bundle, empty or not,
and the runner runs every consumer of each: a bundle of valid records alone still runs
the dead letter's steps on nothing, each with the full cost of a bundle. The runner's
own watermark manager already leaves empty bundles out ("they do not impact watermarks
and should not trigger downstream execution", watermark_manager.py), so its executor is
made to leave them out too. Timers are fired through empty bundles made apart from this
(`_fire_timers`), which still run.

DoFn specs. The runner makes a DoFn anew for each bundle of each step, and each time asks Beam's
`userstate.get_dofn_specs` for its state and timer specs: that inspects the signature of
every method of the DoFn, dozens of them, several times a bundle. Measured under load on
the local stack, it was half of the runner's thread. The answer depends only on the
methods' parameter defaults, which belong to the class, so it is kept per class; a DoFn
holding bound methods of its own (in its instance dict) is asked every time, as before.
Nothing here is used on Dataflow, whose workers build a DoFn's signature once.
"""

import threading
import types

from apache_beam.runners.direct import transform_evaluator
from apache_beam.runners.direct.executor import _ExecutorServiceParallelExecutor
from apache_beam.transforms import userstate

_beams_get_dofn_specs = userstate.get_dofn_specs
_specs_by_class = {}
_lock = threading.Lock()


def get_dofn_specs(dofn):
    """`userstate.get_dofn_specs`, kept per DoFn class."""
    instance_methods = any(
        isinstance(value, types.MethodType) for value in getattr(dofn, "__dict__", {}).values()
    )
    if instance_methods:
        return _beams_get_dofn_specs(dofn)
    kind = type(dofn)
    with _lock:
        specs = _specs_by_class.get(kind)
    if specs is None:
        specs = _beams_get_dofn_specs(dofn)
        with _lock:
            _specs_by_class[kind] = specs
    state_specs, timer_specs = specs
    return set(state_specs), set(timer_specs)


_beams_schedule_consumers = _ExecutorServiceParallelExecutor.schedule_consumers


def schedule_consumers(executor, committed_bundle):
    """The executor's `schedule_consumers`, for bundles that hold elements only."""
    if committed_bundle.has_elements():
        _beams_schedule_consumers(executor, committed_bundle)


# Where Beam's DirectRunner and DoFn runner look them up: (owner, name, ours).
REPLACEMENTS = (
    (userstate, "get_dofn_specs", get_dofn_specs),  # is_stateful_dofn, common.py, core.py
    (transform_evaluator, "get_dofn_specs", get_dofn_specs),  # imported there by name
    (_ExecutorServiceParallelExecutor, "schedule_consumers", schedule_consumers),
)


def speed_up_direct_runner():
    """Installs both, for the rest of the process."""
    for owner, name, ours in REPLACEMENTS:
        setattr(owner, name, ours)
