"""Write a bundle's map-state changes to Flink in one go instead of one bucket at a time.

At the end of every bundle PyFlink's Python worker sends each touched key's map
state to the JVM and waits for the answer before sending the next. riverflink
touches one map per routing bucket, so a bundle of ``--profile latency``
can wait for dozens of round trips in a row, and a worker fed 2,000 records/s
spends much of its time waiting for them.

:func:`pipeline_commits` makes the end of a bundle send every change first and
then wait for all the answers. The requests, their order and their content are
exactly PyFlink's; the bundle still ends only when Flink has acknowledged every
write, so a checkpoint (which ends the bundle first) holds every update. It
replaces one method of PyFlink's Python state backend, so it checks that the
installed PyFlink has the internals it was written against, and otherwise leaves
PyFlink alone (correct, only slower) with one warning line.

``RIVERFLINK_STATE_COMMIT=0`` (or ``RIVERFLINK_ACCELERATE=0``) leaves PyFlink's commit
as it is. The switch of the process that builds the job travels with it, to a
cluster's workers too (``riverflink.accel.worker.worker_setup_for_job``).
"""

from __future__ import annotations

from riverflink.accel import enabled, turn_off

__all__ = ["pipeline_commits"]

_MAP_STATE_FIELDS = (
    "_cleared",
    "_write_cache",
    "_map_state_handler",
    "_state_key",
    "_map_key_encoder",
    "_map_value_encoder",
    "_mod_count",
)
_BACKEND_FIELDS = ("_internal_state_cache", "_all_states", "_encoded_current_key")


def _send(map_state, handler_cls):
    """PyFlink's ``InternalSynchronousMapRuntimeState.commit`` without the wait: the future."""
    to_await = None
    if map_state._cleared:
        to_await = map_state._map_state_handler.clear(map_state._state_key)
    if map_state._write_cache:
        items = []
        for map_key, (exists, value) in map_state._write_cache.items():
            if not exists:
                items.append((handler_cls.DELETE, map_key, None))
            elif value is None:
                items.append((handler_cls.SET_NONE, map_key, None))
            else:
                items.append((handler_cls.SET_VALUE, map_key, value))
        map_state._write_cache.clear()
        to_await = map_state._map_state_handler.extend(
            map_state._state_key, items, map_state._map_key_encoder, map_state._map_value_encoder
        )
    map_state._cleared = False
    map_state._mod_count += 1
    return to_await


def _has_expected_internals(state_impl) -> bool:
    if getattr(state_impl, "SynchronousKvRuntimeState", None) is None:
        return False  # the class of the states in ``_all_states``
    map_cls = getattr(state_impl, "InternalSynchronousMapRuntimeState", None)
    backend_cls = getattr(state_impl, "RemoteKeyedStateBackend", None)
    handler_cls = getattr(state_impl, "CachingMapStateHandler", None)
    if map_cls is None or backend_cls is None or handler_cls is None:
        return False
    # The attributes this module reads are the ones those constructors set.
    return (
        set(_MAP_STATE_FIELDS) <= set(map_cls.__init__.__code__.co_names)
        and set(_BACKEND_FIELDS) <= set(backend_cls.__init__.__code__.co_names)
        and all(
            hasattr(handler_cls, op)
            for op in ("SET_VALUE", "SET_NONE", "DELETE", "extend", "clear")
        )
        and {"namespace", "_internal_state"}
        <= set(state_impl.SynchronousKvRuntimeState.__init__.__code__.co_names)
        and hasattr(backend_cls, "_encode_namespace")
        and hasattr(backend_cls, "commit_internal_state")
    )


def pipeline_commits() -> bool:
    """Patch PyFlink's keyed state backend (idempotent); False where it is switched off or
    this PyFlink is not the one riverflink knows (then with one warning line)."""
    if not enabled("state_commit"):
        return False
    try:
        from pyflink.fn_execution import state_impl

        backend_cls = state_impl.RemoteKeyedStateBackend
        if getattr(backend_cls.commit, "riverflink", False):
            return True
        if not _has_expected_internals(state_impl):
            turn_off(
                "state_commit",
                "PyFlink's keyed state backend is not the one riverflink knows; "
                "its bundles commit state one map at a time, as PyFlink does",
            )
            return False
        _patch(state_impl)
    except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
        turn_off("state_commit", exc)
        return False
    return True


def _patch(state_impl) -> None:
    backend_cls = state_impl.RemoteKeyedStateBackend
    map_cls = state_impl.InternalSynchronousMapRuntimeState
    handler_cls = state_impl.CachingMapStateHandler

    def commit(self):
        pending = []

        def one(internal_state):
            if isinstance(internal_state, map_cls):
                future = _send(internal_state, handler_cls)
                if future:
                    pending.append(future)
            else:
                self.commit_internal_state(internal_state)

        for internal_state in self._internal_state_cache:
            one(internal_state)
        for name, state in self._all_states.items():
            cache_key = (name, self._encoded_current_key, self._encode_namespace(state.namespace))
            if cache_key not in self._internal_state_cache:
                one(state._internal_state)
        for future in pending:
            future.get()

    commit.riverflink = True
    backend_cls.commit = commit
