"""The state sampler's sleep is capped, so a bundle's end does not wait for it."""

from __future__ import annotations

import time

import pytest
from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

from jobs.accel.sampler import SAMPLING_PERIOD_MS, shorten_sampling


@pytest.fixture
def beams_default(monkeypatch):
    """Beam's own default, put back after the test."""
    monkeypatch.setattr(statesampler.StateSampler.__init__, "__defaults__", (200,))


def test_samplers_created_after_it_sleep_at_most_the_short_period(beams_default):
    before = statesampler.StateSampler("before", CounterFactory())
    assert shorten_sampling()
    after = statesampler.StateSampler("after", CounterFactory())
    assert (before.sampling_period_ms, after.sampling_period_ms) == (200, SAMPLING_PERIOD_MS)
    assert shorten_sampling()  # idempotent
    assert statesampler.StateSampler("again", CounterFactory()).sampling_period_ms == 5


def test_a_sampler_with_the_short_period_samples_and_stops(beams_default):
    shorten_sampling()
    sampler = statesampler.StateSampler("step", CounterFactory())
    state = sampler.scoped_state("learn per key", "process")
    sampler.start()
    with state:
        time.sleep(0.1)
    sampler.stop()
    sampler.commit_counters()
    assert sampler.finished
    assert state.counter.value() >= 10  # msecs: Beam's time accounting still works


def test_an_unknown_beam_is_left_alone(monkeypatch):
    monkeypatch.setattr(statesampler.StateSampler.__init__, "__defaults__", (100,))
    assert not shorten_sampling()
    assert statesampler.StateSampler.__init__.__defaults__ == (100,)
