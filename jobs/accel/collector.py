"""Full cycle collections in a learning worker on a time budget instead of CPython's schedule.

A worker with a hundred thousand live models holds tens of millions of Python objects,
almost all of them long-lived and free of reference cycles (a model dies by reference
counting when it leaves the live cache). CPython still walks all of them in every full
(generation 2) collection, and schedules one whenever the objects promoted since the
last one reach a quarter of the old ones: with a million keys passing through the live
cache, that is a collection of one to three seconds every few seconds, a fifth to a
third of the worker's time (measured on the million-key benchmark).

:func:`budget_full_collections` leaves generations 0 and 1 to CPython (young cyclic
garbage is collected as before) and takes generation 2 over: the learning operator
calls the returned function after every element, and it runs a full collection when
enough time has passed for the last one's duration to be at most ``share`` of it (and
at least ``MIN_WAIT`` seconds). Cyclic garbage that reached generation 2 is still
collected, only later.

It relies on CPython's collector honouring ``gc.set_threshold``'s third threshold (no
automatic full collection while fewer generation-1 collections than it have run), which
a compat test checks. ``RIVERFLINK_GC=0`` (or ``RIVERFLINK_ACCELERATE=0``) leaves the
collector as CPython schedules it.
"""

from __future__ import annotations

import gc
import time

from riverflink.accel import enabled, turn_off

__all__ = ["budget_full_collections"]

#: The largest share of a worker's time spent in full collections.
SHARE = 0.05
#: Seconds between full collections at least (the first one comes this long after open).
MIN_WAIT = 10.0
#: Generation-1 collections before CPython would start a full one on its own: never, in
#: practice (one comes every few thousand net allocations).
NEVER = 1 << 30


def budget_full_collections(share: float = SHARE):
    """Take over the full collections of this process; the function to call after each
    element, or None where switched off."""
    if not enabled("gc"):
        return None
    try:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NEVER)
    except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
        turn_off("gc", exc)
        return None
    due = [time.monotonic() + MIN_WAIT]

    def after_element() -> None:
        now = time.monotonic()
        if now < due[0]:
            return
        started = time.perf_counter()
        gc.collect()
        took = time.perf_counter() - started
        due[0] = time.monotonic() + max(MIN_WAIT, took / share)

    return after_element
