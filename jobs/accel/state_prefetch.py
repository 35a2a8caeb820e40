"""Read the keys an element needs from Flink state in one go instead of one round trip each.

A key whose model is not live in the worker (it left the live cache, or the job was
restored) is read from Flink state when its next record comes. PyFlink's map state
reads one entry per request and waits for the JVM's answer before the next one, so
a worker whose keys come back from state (a million keys, most of them cold) spends
most of its time waiting: one round trip through gRPC, the JVM and RocksDB per record.

:func:`reader` gives the learning operator a function that reads every cold key of an
element (the lines of one routing bucket) with all the requests sent first and the
answers awaited after. Each request, its bytes and the handling of each answer
(PyFlink's read cache included) are exactly those of PyFlink's own
``InternalSynchronousMapRuntimeState.get``; only the waiting changes. It reads private
fields of PyFlink's map state and Beam's state channel, so it checks that the
installed versions have them, and otherwise leaves the reads to PyFlink (correct, only
slower) with one warning line.

``RIVERFLINK_PREFETCH=0`` (or ``RIVERFLINK_ACCELERATE=0``) reads one key at a time, as
PyFlink does. The switch of the process that builds the job travels with it to a
cluster's workers (``riverflink.accel.worker.worker_setup_for_job``).
"""

from __future__ import annotations

from riverflink.accel import enabled, turn_off

__all__ = ["read_each", "reader"]

_MAP_STATE_FIELDS = (
    "_is_empty",
    "_write_cache",
    "_cleared",
    "_map_state_handler",
    "_state_key",
    "_map_key_encoder",
    "_map_value_decoder",
)
_HANDLER_MEMBERS = (
    "GET_FLAG",
    "EXIST_FLAG",
    "IS_NONE_FLAG",
    "NOT_EXIST_FLAG",
    "_get_cache_token",
    "_convert_to_cache_key",
)
_HANDLER_FIELDS = ("_state_cache", "_underlying", "_max_cached_map_key_entries")
_CHANNEL_FIELDS = ("_requests", "_responses_by_id", "_context", "_exception")  # + _done


def read_each(state, key_ids) -> dict:
    """PyFlink's way, the fallback: ``{key_id: value or None}``, one round trip per key."""
    return {key_id: state.get(key_id) for key_id in key_ids}


def _has_expected_internals(state_impl, sdk_worker) -> bool:
    map_cls = getattr(state_impl, "InternalSynchronousMapRuntimeState", None)
    handler_cls = getattr(state_impl, "CachingMapStateHandler", None)
    channel_cls = getattr(sdk_worker, "GrpcStateHandler", None)
    if map_cls is None or handler_cls is None or channel_cls is None:
        return False
    if not all(hasattr(state_impl, name) for name in ("CachedMapState", "coder_impl")):
        return False
    return (
        set(_MAP_STATE_FIELDS) <= set(map_cls.__init__.__code__.co_names)
        and set(_HANDLER_FIELDS) <= set(handler_cls.__init__.__code__.co_names)
        and all(hasattr(handler_cls, name) for name in _HANDLER_MEMBERS)
        and set(_CHANNEL_FIELDS) <= set(channel_cls.__init__.__code__.co_names)
        and "_done" in channel_cls.start.__code__.co_names
        and callable(getattr(channel_cls, "_request", None))
    )


def reader():
    """``read_many(state, key_ids) -> {key_id: value or None}`` for a PyFlink map state under
    the current Flink key, every read in flight at once; None where switched off or this
    PyFlink is not the one riverflink knows (then with one warning line)."""
    if not enabled("prefetch"):
        return None
    try:
        from apache_beam.runners.worker import sdk_worker
        from pyflink.fn_execution import state_impl

        if not _has_expected_internals(state_impl, sdk_worker):
            turn_off(
                "prefetch",
                "PyFlink's map state is not the one riverflink knows; "
                "keys are read from state one at a time, as PyFlink does",
            )
            return None
    except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
        turn_off("prefetch", exc)
        return None

    def read_many(state, key_ids) -> dict:
        if not enabled("prefetch"):
            return read_each(state, key_ids)
        try:
            internal = state.get_internal_state()
            if not isinstance(internal._map_state_handler._underlying, sdk_worker.GrpcStateHandler):
                return read_each(state, key_ids)  # not Beam's gRPC channel: PyFlink's way
            return _read_many(state_impl, internal, key_ids)
        except Exception as exc:  # noqa: BLE001 - read again the plain way: it raises if real
            turn_off("prefetch", exc)
            return read_each(state, key_ids)

    return read_many


def _read_many(state_impl, internal, key_ids) -> dict:
    """PyFlink's ``InternalSynchronousMapRuntimeState.get`` for many keys, all sent first."""
    if internal._is_empty:
        return dict.fromkeys(key_ids)
    found: dict = {}
    handler = internal._map_state_handler
    token = handler._get_cache_token()
    cache_key = handler._convert_to_cache_key(internal._state_key) if token else None
    sent = []
    for key_id in key_ids:
        if key_id in internal._write_cache:
            exists, value = internal._write_cache[key_id]
            found[key_id] = value if exists else None
            continue
        if internal._cleared:
            found[key_id] = None
            continue
        if token:  # CachingMapStateHandler.blocking_get: its read cache first
            cached_map = handler._state_cache.peek((cache_key, token))
            if cached_map is not None:
                cached = cached_map.get(key_id)
                if cached is not None or cached_map.is_all_data_cached():
                    exists, value = cached if cached is not None else (False, None)
                    found[key_id] = value if exists else None
                    continue
        sent.append((key_id, _send_get(state_impl, handler, internal, key_id)))
    for key_id, future in sent:
        exists, value = _receive(state_impl, handler, internal, future)
        if token:  # and what blocking_get keeps in it after a remote read
            cached_map = handler._state_cache.peek((cache_key, token))
            if cached_map is None:
                cached_map = state_impl.CachedMapState(handler._max_cached_map_key_entries)
                handler._state_cache.put((cache_key, token), cached_map)
            cached_map.put(key_id, (exists, value))
        found[key_id] = value if exists else None
    return found


def _send_get(state_impl, handler, internal, key_id):
    """``CachingMapStateHandler._get_raw``'s request, sent without waiting: its future."""
    from apache_beam.portability.api import beam_fn_api_pb2

    stream = state_impl.coder_impl.create_OutputStream()
    stream.write_byte(handler.GET_FLAG)
    internal._map_key_encoder(key_id, stream)
    return handler._underlying._request(
        beam_fn_api_pb2.StateRequest(
            state_key=internal._state_key,
            get=beam_fn_api_pb2.StateGetRequest(continuation_token=stream.get()),
        )
    )


def _receive(state_impl, handler, internal, future) -> tuple:
    """The answer to one request, as ``GrpcStateHandler._blocking_request`` waits for it and
    ``_get_raw`` decodes it: ``(exists, value)``."""
    channel = handler._underlying
    while not future.wait(timeout=1):
        if channel._exception:
            raise channel._exception
        if channel._done:
            raise RuntimeError("Flink's state channel closed while reading a key")
    response = future.get()
    if response.error:
        raise RuntimeError(response.error)
    stream = state_impl.coder_impl.create_InputStream(response.get.data)
    flag = stream.read_byte()
    if flag == handler.EXIST_FLAG:
        return True, internal._map_value_decoder(stream)
    if flag == handler.IS_NONE_FLAG:
        return True, None
    if flag == handler.NOT_EXIST_FLAG:
        return False, None
    raise RuntimeError(f"unknown flag {flag} in Flink's answer to a state read")
