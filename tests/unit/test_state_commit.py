"""The end-of-bundle state commit: every change sent, then every answer awaited."""

from __future__ import annotations

from pyflink.fn_execution import state_impl

from jobs.accel.state_commit import pipeline_commits


class _Future:
    def __init__(self, log, name):
        self.log, self.name = log, name

    def get(self):
        self.log.append(("wait", self.name))


class _Handler:
    """Stands in for PyFlink's CachingMapStateHandler: records what reaches the JVM."""

    def __init__(self, log):
        self.log = log

    def extend(self, state_key, items, key_encoder, value_encoder):
        self.log.append(("send", state_key, tuple(items)))
        return _Future(self.log, state_key)

    def clear(self, state_key):
        self.log.append(("clear", state_key))
        return _Future(self.log, state_key)


def _map_state(handler, name, writes, cleared=False):
    state = object.__new__(state_impl.InternalSynchronousMapRuntimeState)
    state._map_state_handler = handler
    state._state_key = name
    state._map_key_encoder = state._map_value_encoder = None
    state._write_cache = dict(writes)
    state._cleared = cleared
    state._mod_count = 0
    return state


def _backend(states):
    backend = object.__new__(state_impl.RemoteKeyedStateBackend)
    backend._internal_state_cache = list(states)
    backend._all_states = {}
    backend._encoded_current_key = b""
    return backend


def test_applies_to_the_installed_pyflink():
    assert pipeline_commits() is True
    assert pipeline_commits() is True  # idempotent
    assert getattr(state_impl.RemoteKeyedStateBackend.commit, "riverflink", False)


def test_sends_every_bucket_before_waiting_and_waits_for_all():
    pipeline_commits()
    log = []
    handler = _Handler(log)
    h = state_impl.CachingMapStateHandler
    one = _map_state(handler, "bucket-1", {"a": (True, b"A"), "b": (False, None)})
    two = _map_state(handler, "bucket-2", {"c": (True, None)})
    untouched = _map_state(handler, "bucket-3", {})
    _backend([one, two, untouched, None]).commit()

    assert log == [
        ("send", "bucket-1", ((h.SET_VALUE, "a", b"A"), (h.DELETE, "b", None))),
        ("send", "bucket-2", ((h.SET_NONE, "c", None),)),
        ("wait", "bucket-1"),
        ("wait", "bucket-2"),
    ]
    assert one._write_cache == {} and two._write_cache == {}
    assert (one._mod_count, two._mod_count, untouched._mod_count) == (1, 1, 1)


def test_a_cleared_map_is_cleared_before_its_new_entries():
    pipeline_commits()
    log = []
    state = _map_state(_Handler(log), "bucket-1", {"a": (True, b"A")}, cleared=True)
    _backend([state]).commit()
    assert [entry[0] for entry in log] == ["clear", "send", "wait"]
    assert state._cleared is False
