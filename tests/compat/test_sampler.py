"""Beam's state sampler, as ``jobs/accel/sampler.py`` relies on it.

Switch: ``RIVERFLINK_SAMPLER``. The accelerator changes the default of
``StateSampler.__init__``'s ``sampling_period_ms`` (Beam's: 200 ms) to 5 ms, for the
samplers that Beam's bundle processors create after it.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest

from riverflink.accel import sampler
from tests.compat.support import fresh_module

pytestmark = pytest.mark.compat

STATESAMPLER = "apache_beam.runners.worker.statesampler"


@pytest.fixture(scope="module")
def installed():
    """Beam's ``statesampler`` as installed (not capped by this process)."""
    return fresh_module(STATESAMPLER)


def test_the_sampler_default_is_the_one_riverflink_replaces(installed):
    """Contact: ``StateSampler.__init__(self, prefix, counter_factory,
    sampling_period_ms=DEFAULT_SAMPLING_PERIOD_MS)``, its only default, 200 ms, and the
    module constant ``DEFAULT_SAMPLING_PERIOD_MS`` = 200.
    Relied on by: ``riverflink.accel.sampler._cap`` (anything else turns it off)."""
    init = installed.StateSampler.__init__
    parameters = inspect.signature(init).parameters
    assert list(parameters) == ["self", "prefix", "counter_factory", "sampling_period_ms"]
    assert init.__defaults__ == (sampler._BEAMS_DEFAULT_MS,) == (200,)
    assert installed.DEFAULT_SAMPLING_PERIOD_MS == 200
    assert init.__code__.co_varnames[: init.__code__.co_argcount][-1] == "sampling_period_ms"


def test_the_cap_takes_on_the_installed_beam(installed, accelerators_on):
    """Contact: the same, through the accelerator's own check: ``_cap`` accepts the
    installed ``StateSampler`` and a sampler created after it sleeps at most 5 ms.
    Relied on by: ``riverflink.accel.sampler.shorten_sampling``."""
    from apache_beam.utils.counters import CounterFactory

    assert sampler._cap(installed) is True
    created = installed.StateSampler("compat", CounterFactory())
    assert created.sampling_period_ms == sampler.SAMPLING_PERIOD_MS == 5


def test_bundle_processors_create_their_sampler_with_the_default_period():
    """Contact: Beam's ``BundleProcessor.__init__`` creates its sampler as
    ``statesampler.StateSampler(prefix, counter_factory)``, without a period: so the
    changed default reaches every bundle processor a worker creates.
    Relied on by: ``riverflink.accel.sampler`` (called by ``riverflink.accel.worker_fork._preload``
    and ``riverflink.accel.worker.worker_setup``)."""
    from apache_beam.runners.worker import bundle_processor

    tree = ast.parse(textwrap.dedent(inspect.getsource(bundle_processor.BundleProcessor.__init__)))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "statesampler.StateSampler"
    ]
    assert len(calls) == 1
    assert len(calls[0].args) == 2 and calls[0].keywords == []


def test_the_period_is_the_samplers_longest_sleep(installed):
    """Contact: Beam's compiled sampler takes ``sampling_period_ms`` as the longest sleep
    of its thread (the first at a hundredth of it, at least 1 ms, each next a fifth
    longer, up to the period), so a sampler created with 5 ms stops within a few ms of
    ``stop()``; with Beam's 200 ms, one that has run a second sleeps about 200 ms at a
    time, and ``stop()`` waits for the sleep to end.
    Relied on by: ``riverflink.accel.sampler`` (what the cap buys: a bundle's end does not wait
    for a 200 ms sleep)."""
    import time

    from apache_beam.utils.counters import CounterFactory

    created = installed.StateSampler("compat", CounterFactory(), sampling_period_ms=5)
    created.start()
    time.sleep(1.0)  # Beam's default would sleep about 200 ms at a time by now
    started = time.monotonic()
    created.stop()
    assert time.monotonic() - started < 0.05
