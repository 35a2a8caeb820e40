"""The end-of-bundle state commit (jobs/accel/state_commit.py): every change sent, then
every answer awaited.

The state objects are PyFlink's and Beam's own (``tests/compat/pyflink_state.py``);
only the JVM's end of the state channel is a stand-in, which answers once requests stop
coming. The commit of a fresh, unpatched copy of PyFlink's module is the reference.
"""

from __future__ import annotations

import sys

import pytest

import riverflink.accel as accel
from riverflink.accel import state_commit
from riverflink.accel.state_commit import pipeline_commits
from riverflink.state.descriptors import key_state_descriptor
from tests.compat.pyflink_state import StateService, Worker
from tests.compat.support import fresh_module

STATE_IMPL = "pyflink.fn_execution.state_impl"
QUIET = 0.1  # seconds without a request before the stand-in JVM answers


@pytest.fixture(autouse=True)
def switched_on(monkeypatch):
    """The accelerator on, whatever the environment, and not turned off by another test."""
    monkeypatch.delenv(accel.ACCELERATE, raising=False)
    monkeypatch.delenv(accel.SWITCHES["state_commit"], raising=False)
    monkeypatch.setattr(accel, "_turned_off", {})


@pytest.fixture(scope="module")
def pyflinks():
    """PyFlink's state module as installed: its own commit."""
    return fresh_module(STATE_IMPL)


@pytest.fixture(scope="module")
def riverflinks():
    """PyFlink's state module with riverflink's commit."""
    module = fresh_module(STATE_IMPL)
    state_commit._patch(module)
    return module


def _bundle_of_three_buckets(state_impl, service) -> None:
    """A bundle that touches three buckets' model maps, and its commit."""
    worker = Worker(state_impl, service)
    try:
        models = worker.map_state(key_state_descriptor())
        with worker.bundle():
            for bucket in (1, 2, 3):
                worker.key(bucket)
                models.put(f"key-{bucket}", {"model": bucket})
            worker.backend.commit()
    finally:
        worker.close()


def test_applies_to_the_installed_pyflink():
    from pyflink.fn_execution import state_impl

    assert pipeline_commits() is True
    assert pipeline_commits() is True  # idempotent
    assert getattr(state_impl.RemoteKeyedStateBackend.commit, "riverflink", False)


def test_every_bucket_is_sent_before_any_answer_is_awaited(pyflinks, riverflinks):
    theirs, ours = StateService(QUIET), StateService(QUIET)
    _bundle_of_three_buckets(pyflinks, theirs)
    _bundle_of_three_buckets(riverflinks, ours)
    assert theirs.most_in_flight == 1  # PyFlink: one round trip per bucket
    assert ours.most_in_flight == 3  # riverflink: all three in flight at once
    assert ours.requests() == theirs.requests()


@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "last-first"])
def test_the_bundle_ends_only_once_every_write_is_answered(riverflinks, reverse):
    """The answers come one by one (in the order sent, or the last sent first): the
    commit returns after the last of them, not after the one it sent first or last."""
    service = StateService(QUIET, gap=0.05, reverse=reverse)
    _bundle_of_three_buckets(riverflinks, service)
    assert service.answered == len(service.received) == 3


def test_a_cleared_map_is_cleared_before_its_new_entries(riverflinks):
    worker = Worker(riverflinks)
    try:
        models = worker.map_state(key_state_descriptor())
        with worker.bundle():
            worker.key(1)
            models.put("old", 1)
            models.clear()
            models.put("new", 2)
            internal = models.get_internal_state()
            worker.backend.commit()
        requests = worker.service.requests()
        assert [kind for kind, _, _ in requests] == ["clear", "append"]
        assert requests[0][1] == requests[1][1]  # the same map
        assert b"new" in requests[1][2] and b"old" not in requests[1][2]
        assert internal._cleared is False and internal._write_cache == {}
    finally:
        worker.close()


def test_a_bundle_without_changes_sends_nothing(riverflinks):
    worker = Worker(riverflinks)
    try:
        worker.map_state(key_state_descriptor())
        with worker.bundle():
            worker.key(1)
            worker.key(2)  # maps created for both keys, nothing written to them
            worker.backend.commit()
        assert worker.service.requests() == []
    finally:
        worker.close()


def test_switched_off_pyflinks_commit_stays(monkeypatch, capsys):
    for variable in (accel.SWITCHES["state_commit"], accel.ACCELERATE):
        monkeypatch.setenv(variable, "0")
        assert pipeline_commits() is False
        monkeypatch.delenv(variable)
    assert capsys.readouterr().err == ""  # off by choice: no warning


def test_an_unknown_pyflink_is_left_alone_with_one_warning(monkeypatch, capsys):
    import pyflink.fn_execution

    unknown = fresh_module(STATE_IMPL)
    del unknown.CachingMapStateHandler.SET_NONE  # say a PyFlink that renamed a flag
    original = unknown.RemoteKeyedStateBackend.commit
    monkeypatch.setattr(pyflink.fn_execution, "state_impl", unknown)
    monkeypatch.setitem(sys.modules, STATE_IMPL, unknown)
    assert pipeline_commits() is False
    assert pipeline_commits() is False
    assert unknown.RemoteKeyedStateBackend.commit is original
    err = capsys.readouterr().err
    assert err.count("state commit accelerator off") == 1
    assert "RIVERFLINK_STATE_COMMIT=0" in err
