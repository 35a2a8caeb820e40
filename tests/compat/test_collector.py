"""CPython's cycle collector, as ``jobs/accel/collector.py`` relies on it.

Switch: ``RIVERFLINK_GC``. The accelerator raises the third threshold of
``gc.set_threshold`` so that CPython never starts a full collection on its own, and runs
them itself on a time budget.
"""

from __future__ import annotations

import gc

import pytest

from riverflink.accel import collector

pytestmark = pytest.mark.compat


@pytest.fixture
def thresholds():
    """The collector's thresholds as they were, restored after the test."""
    saved = gc.get_threshold()
    yield saved
    gc.set_threshold(*saved)


def _collections(run) -> dict:
    """{generation: collections} while ``run()`` runs."""
    seen: dict = {0: 0, 1: 0, 2: 0}

    def callback(phase, info):
        if phase == "stop":
            seen[info["generation"]] += 1

    gc.callbacks.append(callback)
    try:
        run()
    finally:
        gc.callbacks.remove(callback)
    return seen


def _cycles(n: int = 300_000) -> None:
    """Allocate ``n`` two-object cycles, a tenth of them kept until the end."""
    kept = []
    for i in range(n):
        a: list = []
        a.append([a])
        if i % 10 == 0:
            kept.append(a)


def test_the_third_threshold_stops_automatic_full_collections(thresholds, accelerators_on):
    """Contact: ``gc.set_threshold(young, middle, third)``: CPython starts a full
    collection only after ``third`` collections of generation 1; the young generations are
    still collected on their own.
    Relied on by: ``riverflink.accel.collector.budget_full_collections``."""
    gc.set_threshold(700, 10, 1)
    assert _collections(_cycles)[2] > 0  # the control: CPython's own full collections
    assert collector.budget_full_collections() is not None
    assert gc.get_threshold() == (700, 10, collector.NEVER)
    seen = _collections(_cycles)
    assert seen[0] > 100 and seen[1] > 10
    assert seen[2] == 0


def test_full_collections_run_when_due(thresholds, accelerators_on, monkeypatch):
    """Contact: ``gc.collect()`` runs a full collection. The function runs one only when
    the budget allows, and never when switched off.
    Relied on by: ``riverflink.accel.collector``."""
    clock = [1000.0]
    monkeypatch.setattr(collector.time, "monotonic", lambda: clock[0])
    after_element = collector.budget_full_collections()
    assert _collections(after_element)[2] == 0  # not due yet
    clock[0] += collector.MIN_WAIT + 1
    assert _collections(after_element)[2] == 1
    assert _collections(after_element)[2] == 0  # the next one waits again
    monkeypatch.setenv("RIVERFLINK_GC", "0")
    assert collector.budget_full_collections() is None
