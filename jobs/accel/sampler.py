"""End a Python bundle without waiting for Beam's state sampler to wake up.

During every bundle, Beam's SDK harness runs a sampling thread that measures the
time spent in each step (for Beam's own msecs counters and "lull" reports, which
PyFlink shows nowhere). Between samples it sleeps, 2 ms at first and a fifth longer
each time, up to 200 ms, and at the end of the bundle the harness joins it: the
bundle ends only when the thread next wakes. A bundle that ran half a second ends
about 50 ms late on average. riverflink's bundles end at every checkpoint, every 40
batches with checkpoints on, and every 5 ms with ``--profile latency``; the JVM
waits for each end, and so does the worker's next record.

:func:`shorten_sampling` caps the sampler's sleep at :data:`SAMPLING_PERIOD_MS` for
the samplers created after it: in local runs, the warm process calls it before it
forks the workers (``riverflink.accel.worker_fork``). Workers that a Flink cluster starts itself
create their first sampler before riverflink's code runs and keep Beam's for it.
The thread then wakes 200 times a second during a long bundle (a lock and a clock
read each time, nothing that takes the GIL). It changes a default argument of Beam's
``StateSampler``, so it checks that the installed Beam has the one it was written
against, and otherwise leaves Beam alone with one warning line.
``RIVERFLINK_SAMPLER=0`` (or ``RIVERFLINK_ACCELERATE=0``) keeps Beam's default.
"""

from __future__ import annotations

from riverflink.accel import enabled, turn_off

__all__ = ["SAMPLING_PERIOD_MS", "shorten_sampling"]

#: The longest the state sampler sleeps between samples (Beam's default: 200 ms).
SAMPLING_PERIOD_MS = 5

_BEAMS_DEFAULT_MS = 200


def shorten_sampling() -> bool:
    """Cap the sleep of Beam state samplers created from now on (idempotent).

    False where it is switched off, or this Beam's ``StateSampler`` is not the one
    riverflink knows (then with one warning line).
    """
    if not enabled("sampler"):
        return False
    try:
        from apache_beam.runners.worker import statesampler

        return _cap(statesampler)
    except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
        turn_off("sampler", exc)
        return False


def _cap(statesampler) -> bool:
    init = statesampler.StateSampler.__init__
    if init.__defaults__ == (SAMPLING_PERIOD_MS,):
        return True
    if (
        init.__defaults__ != (_BEAMS_DEFAULT_MS,)
        or init.__code__.co_varnames[: init.__code__.co_argcount][-1] != "sampling_period_ms"
        or getattr(statesampler, "DEFAULT_SAMPLING_PERIOD_MS", None) != _BEAMS_DEFAULT_MS
    ):
        turn_off("sampler", "Beam's StateSampler is not the one riverflink knows")
        return False
    init.__defaults__ = (SAMPLING_PERIOD_MS,)
    return True
