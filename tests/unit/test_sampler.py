"""The state sampler's sleep is capped, so a bundle's end does not wait for it."""

from __future__ import annotations

import time

import pytest
from apache_beam.runners.worker import statesampler
from apache_beam.utils.counters import CounterFactory

import riverflink.accel as accel
from riverflink.accel.sampler import SAMPLING_PERIOD_MS, shorten_sampling


@pytest.fixture(autouse=True)
def switched_on(monkeypatch):
    """The accelerator on, whatever the environment; an accelerator turned off by a test
    (an unknown Beam) stays off for that test only, not for the rest of the process."""
    monkeypatch.delenv(accel.ACCELERATE, raising=False)
    monkeypatch.delenv(accel.SWITCHES["sampler"], raising=False)
    monkeypatch.setattr(accel, "_turned_off", {})


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


def test_an_unknown_beam_is_left_alone(monkeypatch, capsys):
    monkeypatch.setattr(statesampler.StateSampler.__init__, "__defaults__", (100,))
    assert not shorten_sampling()
    assert not shorten_sampling()
    assert statesampler.StateSampler.__init__.__defaults__ == (100,)
    err = capsys.readouterr().err
    assert err.count("sampler accelerator off") == 1  # one warning line, naming its switch
    assert "RIVERFLINK_SAMPLER=0" in err


def test_switched_off_beams_default_stays(beams_default, monkeypatch, capsys):
    for variable in (accel.SWITCHES["sampler"], accel.ACCELERATE):
        monkeypatch.setenv(variable, "0")
        assert not shorten_sampling()
        assert statesampler.StateSampler.__init__.__defaults__ == (200,)
        monkeypatch.delenv(variable)
    assert capsys.readouterr().err == ""  # off by choice: no warning
