"""PyFlink's keyed state backend, as ``jobs/accel/state_commit.py`` relies on it.

Switch: ``RIVERFLINK_STATE_COMMIT``. The accelerator replaces
``RemoteKeyedStateBackend.commit`` (``pyflink.fn_execution.state_impl``) with one that
sends every map state's changes first and waits for the answers after; it reads and
writes private fields of PyFlink's state classes to do exactly what
``InternalSynchronousMapRuntimeState.commit`` does, minus the wait.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest
from apache_beam.portability.api import beam_fn_api_pb2

from riverflink.accel import state_commit
from tests.compat.pyflink_state import Worker
from tests.compat.support import fresh_module

pytestmark = pytest.mark.compat

STATE_IMPL = "pyflink.fn_execution.state_impl"


@pytest.fixture(scope="module")
def installed():
    """``pyflink.fn_execution.state_impl`` as installed (not patched by this process)."""
    return fresh_module(STATE_IMPL)


def _ast(source: str) -> str:
    return ast.dump(ast.parse(textwrap.dedent(source)))


# PyFlink 2.3's code that riverflink's commit reproduces, as reviewed against
# jobs/accel/state_commit.py. Any change to it in a new PyFlink fails the test below:
# compare it with _send and _patch's commit before updating these copies.
PYFLINK_MAP_COMMIT = """
def commit(self):
    to_await = None
    if self._cleared:
        to_await = self._map_state_handler.clear(self._state_key)
    if self._write_cache:
        append_items = []
        for map_key, (exists, value) in self._write_cache.items():
            if exists:
                if value is not None:
                    append_items.append(
                        (CachingMapStateHandler.SET_VALUE, map_key, value))
                else:
                    append_items.append((CachingMapStateHandler.SET_NONE, map_key, None))
            else:
                append_items.append((CachingMapStateHandler.DELETE, map_key, None))
        self._write_cache.clear()
        to_await = self._map_state_handler.extend(
            self._state_key, append_items, self._map_key_encoder, self._map_value_encoder)
    if to_await:
        to_await.get()
    self._write_cache.clear()
    self._cleared = False
    self._mod_count += 1
"""

PYFLINK_BACKEND_COMMIT = """
def commit(self):
    for internal_state in self._internal_state_cache:
        self.commit_internal_state(internal_state)
    for name, state in self._all_states.items():
        if (name, self._encoded_current_key, self._encode_namespace(state.namespace)) \\
                not in self._internal_state_cache:
            self.commit_internal_state(state._internal_state)
"""

PYFLINK_COMMIT_INTERNAL_STATE = """
@staticmethod
def commit_internal_state(internal_state):
    if internal_state is not None:
        internal_state.commit()
    # reset the status of the internal state to reuse the object cross bundle
    if isinstance(internal_state, SynchronousBagRuntimeState):
        internal_state._cleared = False
        internal_state._added_elements = []
"""


@pytest.mark.parametrize(
    ("method", "reviewed"),
    [
        ("InternalSynchronousMapRuntimeState.commit", PYFLINK_MAP_COMMIT),
        ("RemoteKeyedStateBackend.commit", PYFLINK_BACKEND_COMMIT),
        ("RemoteKeyedStateBackend.commit_internal_state", PYFLINK_COMMIT_INTERNAL_STATE),
    ],
    ids=["map-state-commit", "backend-commit", "commit-internal-state"],
)
def test_pyflinks_commit_code_is_the_one_riverflinks_commit_reproduces(installed, method, reviewed):
    """Contact: the code of ``InternalSynchronousMapRuntimeState.commit`` (what ``_send``
    does, minus the wait), ``RemoteKeyedStateBackend.commit`` (the method replaced: which
    states it commits, in which order) and ``commit_internal_state`` (for a map state it
    only calls ``commit()``: the replacement calls ``_send`` instead).
    Relied on by: ``riverflink.accel.state_commit`` (``_send``, ``_patch``)."""
    cls_name, name = method.split(".")
    member = vars(getattr(installed, cls_name))[name]
    source = inspect.getsource(getattr(member, "__func__", member))  # decorators included
    assert _ast(source) == _ast(reviewed), (
        f"PyFlink's {method} changed: review jobs/accel/state_commit.py against it"
    )


def _handler_calls(function, receiver: str) -> set:
    """Names of the methods called on ``<x>.<receiver>`` in ``function``'s code."""
    calls = set()
    for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Attribute)
            and node.func.value.attr == receiver
        ):
            calls.add(node.func.attr)
    return calls


def _flags(function) -> set:
    names = {"SET_VALUE", "SET_NONE", "DELETE"}
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in names}


def test_send_makes_the_handler_calls_of_pyflinks_map_commit(installed):
    """Contact: ``InternalSynchronousMapRuntimeState.commit`` talks to its
    ``_map_state_handler`` through ``clear`` and ``extend`` only, with the flags
    ``SET_VALUE``, ``SET_NONE`` and ``DELETE``; ``_send`` makes the same calls.
    Relied on by: ``riverflink.accel.state_commit._send``."""
    pyflink = installed.InternalSynchronousMapRuntimeState.commit
    assert _handler_calls(pyflink, "_map_state_handler") == {"clear", "extend"}
    assert _handler_calls(state_commit._send, "_map_state_handler") == {"clear", "extend"}
    assert _flags(pyflink) == _flags(state_commit._send) == {"SET_VALUE", "SET_NONE", "DELETE"}


def test_the_internals_check_passes_on_the_installed_pyflink(installed):
    """Contact: the classes ``RemoteKeyedStateBackend``,
    ``InternalSynchronousMapRuntimeState`` and ``CachingMapStateHandler``, the fields
    their constructors set and the members riverflink's commit uses.
    Relied on by: ``riverflink.accel.state_commit._has_expected_internals`` (False turns the
    accelerator off)."""
    import pyflink.fn_execution.state_impl as registered

    assert state_commit._has_expected_internals(installed)
    assert state_commit._has_expected_internals(registered)  # patched or not


def test_the_handler_takes_what_send_gives_it(installed):
    """Contact: ``CachingMapStateHandler.extend(state_key, items, map_key_encoder,
    map_value_encoder)`` with ``items`` of ``(flag, map_key, value)``, ``clear(state_key)``
    (both return what ``commit`` awaits with ``.get()``), and its class attributes
    ``DELETE``, ``SET_NONE``, ``SET_VALUE``.
    Relied on by: ``riverflink.accel.state_commit._send`` (``_has_expected_internals`` checks
    ``extend`` and the flags, not ``clear``)."""
    handler = installed.CachingMapStateHandler
    extend = inspect.signature(handler.extend)
    assert list(extend.parameters) == [
        "self",
        "state_key",
        "items",
        "map_key_encoder",
        "map_value_encoder",
    ]
    assert list(inspect.signature(handler.clear).parameters) == ["self", "state_key"]
    assert all(isinstance(getattr(handler, f), int) for f in ("DELETE", "SET_NONE", "SET_VALUE"))


def test_the_private_fields_hold_what_riverflinks_commit_reads(installed):
    """Contact: on real state objects, ``RemoteKeyedStateBackend._internal_state_cache``
    (iterates over internal states, holds ``(name, encoded key, encoded namespace)``),
    ``_all_states`` (name -> state with ``namespace`` and ``_internal_state``),
    ``_encoded_current_key``, ``_encode_namespace``; and the map state's ``_cleared``,
    ``_write_cache`` (map key -> (exists, value)), ``_map_state_handler``, ``_state_key``,
    ``_map_key_encoder``, ``_map_value_encoder``, ``_mod_count``.
    Relied on by: ``riverflink.accel.state_commit`` (``_send`` and the replaced commit)."""
    from riverflink.state.descriptors import key_state_descriptor

    worker = Worker(installed)
    try:
        descriptor = key_state_descriptor()
        models = worker.map_state(descriptor)
        with worker.bundle():
            worker.key(1)
            models.put("a", {"model": 1})
            first = models.get_internal_state()
            first_key = worker.backend._encoded_current_key
            worker.key(2)  # the first key's internal state moves to the cache
            models.put("b", None)
            models.remove("c")
            current = models.get_internal_state()
            backend = worker.backend
            assert isinstance(first_key, bytes) and first_key != backend._encoded_current_key
            assert backend._encode_namespace(None) == b""
            assert first in list(backend._internal_state_cache)
            assert (descriptor.name, first_key, b"") in backend._internal_state_cache
            assert backend._all_states == {descriptor.name: models}
            assert models.namespace is None and models._internal_state is current
            assert isinstance(current, installed.InternalSynchronousMapRuntimeState)
            assert current._write_cache == {"b": (True, None), "c": (False, None)}
            assert current._cleared is False and isinstance(current._mod_count, int)
            assert isinstance(current._map_state_handler, installed.CachingMapStateHandler)
            assert isinstance(current._state_key, beam_fn_api_pb2.StateKey)
            assert callable(current._map_key_encoder) and callable(current._map_value_encoder)
            worker.backend.commit()
    finally:
        worker.close()


def test_the_bundle_end_calls_the_backends_commit():
    """Contact: a keyed Python operator ends its bundle with
    ``self.keyed_state_backend.commit()`` (``StatefulOperation.finish``), the method
    riverflink replaces on the class.
    Relied on by: ``riverflink.accel.state_commit._patch``."""
    from pyflink.fn_execution.datastream.process.operations import StatefulOperation

    tree = ast.parse(textwrap.dedent(inspect.getsource(StatefulOperation.finish)))
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    ]
    assert "self.keyed_state_backend.commit" in calls


def test_riverflinks_commit_sends_the_requests_pyflinks_sends(installed):
    """Contact: the state requests PyFlink's own commit sends at the end of a bundle
    (their kind, state key and bytes, in order); riverflink's sends the same ones.
    Relied on by: ``riverflink.accel.state_commit`` (its promise: only the waiting changes)."""
    patched = fresh_module(STATE_IMPL)
    state_commit._patch(patched)

    def bundle(state_impl):
        from riverflink.state.descriptors import HASH, key_state_descriptor, label_timers_descriptor

        worker = Worker(state_impl)
        try:
            models = worker.map_state(key_state_descriptor())
            # --state-ttl: no write cache, each put is written at once (by PyFlink's code)
            expiring = worker.map_state(key_state_descriptor(routing=HASH, ttl_seconds=60))
            timers = worker.map_state(label_timers_descriptor())
            counts = worker.value_state("counts")
            with worker.bundle():
                for bucket in (3, 1, 2):
                    worker.key(bucket)
                    models.put(f"key-{bucket}", {"model": bucket})
                    models.put("none", None)  # SET_NONE
                    models.remove("gone")  # DELETE
                    expiring.put(f"key-{bucket}", {"model": bucket})
                worker.key(1)
                timers.put(1000, ["key-1"])
                counts.update(7)
                worker.key(4)
                models.clear()  # cleared, then a new entry
                models.put("after", 1)
                worker.key(5)
                models.clear()  # cleared only
                worker.backend.commit()
            final = [
                (s._write_cache, s._cleared, s._mod_count)
                for s in worker.backend._internal_state_cache
                if isinstance(s, state_impl.InternalSynchronousMapRuntimeState)
            ]
            return worker.service.requests(), final
        finally:
            worker.close()

    pyflinks, riverflinks = bundle(installed), bundle(patched)
    assert riverflinks == pyflinks
    # Every case reached the JVM: 5 buckets' models (2 of them cleared), 3 expiring ones,
    # a timer map, a value state (a bag: cleared, then appended).
    kinds = [kind for kind, _, _ in pyflinks[0]]
    assert (kinds.count("append"), kinds.count("clear")) == (9, 3)


def test_pipeline_commits_patches_the_installed_backend(accelerators_on):
    """Contact: ``pyflink.fn_execution.state_impl.RemoteKeyedStateBackend.commit`` may be
    replaced on the class (every worker's backend then uses riverflink's).
    Relied on by: ``riverflink.accel.state_commit.pipeline_commits``."""
    from pyflink.fn_execution import state_impl

    assert state_commit.pipeline_commits() is True
    assert getattr(state_impl.RemoteKeyedStateBackend.commit, "riverflink", False)
