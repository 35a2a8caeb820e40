"""PyFlink's map state reads and Beam's state channel, as ``jobs/accel/state_prefetch.py``
relies on them.

Switch: ``RIVERFLINK_PREFETCH``. The accelerator reads many keys of a map state with
every request sent before any answer is awaited: it reproduces
``InternalSynchronousMapRuntimeState.get`` (write cache, read cache, request, decoding)
with private fields of PyFlink's state classes and ``GrpcStateHandler._request``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap

import pytest
from apache_beam.coders import coder_impl
from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker import sdk_worker

import riverflink.accel as accel
from riverflink.accel import state_prefetch
from riverflink.state.descriptors import key_state_descriptor
from tests.compat.pyflink_state import StateService, Worker
from tests.compat.support import fresh_module

pytestmark = pytest.mark.compat

STATE_IMPL = "pyflink.fn_execution.state_impl"


@pytest.fixture(scope="module")
def installed():
    return fresh_module(STATE_IMPL)


def _ast(source: str) -> str:
    return ast.dump(ast.parse(textwrap.dedent(source)))


# PyFlink 2.3's and Beam 2.61's code that the accelerator reproduces, as reviewed against
# jobs/accel/state_prefetch.py. A change in a new release fails the test below: compare it
# with _read_many, _send_get and _receive before updating these copies.
REVIEWED = {
    "InternalSynchronousMapRuntimeState.get": """
    def get(self, map_key):
        if self._is_empty:
            return None
        if map_key in self._write_cache:
            exists, value = self._write_cache[map_key]
            if exists:
                return value
            else:
                return None
        if self._cleared:
            return None
        exists, value = self._map_state_handler.blocking_get(
            self._state_key, map_key, self._map_key_encoder, self._map_value_decoder)
        if exists:
            return value
        else:
            return None
    """,
    "CachingMapStateHandler.blocking_get": """
    def blocking_get(self, state_key, map_key, map_key_encoder, map_value_decoder):
        cache_token = self._get_cache_token()
        if not cache_token:
            return self._get_raw(state_key, map_key, map_key_encoder, map_value_decoder)
        cache_state_key = self._convert_to_cache_key(state_key)
        cached_map_state = self._state_cache.peek((cache_state_key, cache_token))
        if cached_map_state is None:
            exists, value = self._get_raw(state_key, map_key, map_key_encoder, map_value_decoder)
            cached_map_state = CachedMapState(self._max_cached_map_key_entries)
            cached_map_state.put(map_key, (exists, value))
            self._state_cache.put((cache_state_key, cache_token), cached_map_state)
            return exists, value
        else:
            cached_value = cached_map_state.get(map_key)
            if cached_value is None:
                if cached_map_state.is_all_data_cached():
                    return False, None
                exists, value = self._get_raw(
                    state_key, map_key, map_key_encoder, map_value_decoder)
                cached_map_state.put(map_key, (exists, value))
                return exists, value
            else:
                return cached_value
    """,
    "CachingMapStateHandler._get_raw": """
    def _get_raw(self, state_key, map_key, map_key_encoder, map_value_decoder):
        output_stream = coder_impl.create_OutputStream()
        output_stream.write_byte(self.GET_FLAG)
        map_key_encoder(map_key, output_stream)
        continuation_token = output_stream.get()
        data, response_token = self._underlying.get_raw(state_key, continuation_token)
        input_stream = coder_impl.create_InputStream(data)
        result_flag = input_stream.read_byte()
        if result_flag == self.EXIST_FLAG:
            return True, map_value_decoder(input_stream)
        elif result_flag == self.IS_NONE_FLAG:
            return True, None
        elif result_flag == self.NOT_EXIST_FLAG:
            return False, None
        else:
            raise Exception("Unknown response flag: " + str(result_flag))
    """,
    "GrpcStateHandler.get_raw": """
    def get_raw(self, state_key, continuation_token=None):
        response = self._blocking_request(
            beam_fn_api_pb2.StateRequest(
                state_key=state_key,
                get=beam_fn_api_pb2.StateGetRequest(
                    continuation_token=continuation_token)))
        return response.get.data, response.get.continuation_token
    """,
    "GrpcStateHandler._blocking_request": """
    def _blocking_request(self, request):
        req_future = self._request(request)
        while not req_future.wait(timeout=1):
            if self._exception:
                raise self._exception
            elif self._done:
                raise RuntimeError()
        response = req_future.get()
        if response.error:
            raise RuntimeError(response.error)
        else:
            return response
    """,
}


@pytest.mark.parametrize("method", sorted(REVIEWED))
def test_the_read_path_is_the_one_the_accelerator_reproduces(installed, method):
    """Contact: PyFlink's map ``get`` down to Beam's blocking request: the write cache, the
    read cache (what it answers, what a remote read puts in it), the request's bytes, the
    wait and its errors, the answer's flags.
    Relied on by: ``riverflink.accel.state_prefetch`` (``_read_many``, ``_send_get``,
    ``_receive``)."""
    cls_name, name = method.split(".")
    owner = sdk_worker if cls_name == "GrpcStateHandler" else installed
    source = inspect.getsource(vars(getattr(owner, cls_name))[name])
    assert _ast(source) == _ast(REVIEWED[method]), (
        f"{method} changed: review jobs/accel/state_prefetch.py against it"
    )


def test_the_internals_check_passes_on_the_installed_pyflink(installed):
    """Contact: the fields and members ``_has_expected_internals`` looks for.
    Relied on by: ``riverflink.accel.state_prefetch.reader`` (False turns it off)."""
    assert state_prefetch._has_expected_internals(installed, sdk_worker)


STORED = {'"a"': {"model": 1}, '"b"': None, '"c"': [1, 2, 3], '"d"': {"model": 4}}
ABSENT = ['"x"', '"y"']


def _serving(stored: dict, worker_box: list):
    """A state service that answers gets from ``stored`` (what the JVM holds)."""

    def answer(request):
        response = beam_fn_api_pb2.StateResponse(id=request.id)
        kind = request.WhichOneof("request")
        if kind != "get":
            getattr(response, kind).SetInParent()
            return response
        internal = worker_box[0].models.get_internal_state()
        handler = internal._map_state_handler
        stream = coder_impl.create_InputStream(request.get.continuation_token)
        assert stream.read_byte() == handler.GET_FLAG
        key = internal._map_key_decoder(stream)
        out = coder_impl.create_OutputStream()
        if key not in stored:
            out.write_byte(handler.NOT_EXIST_FLAG)
        elif stored[key] is None:
            out.write_byte(handler.IS_NONE_FLAG)
        else:
            out.write_byte(handler.EXIST_FLAG)
            internal._map_value_encoder(stored[key], out)
        response.get.data = out.get()
        return response

    return answer


class _Reading:
    def __init__(self, state_impl):
        box: list = []
        self.service = StateService(0.05, answer=_serving(STORED, box))
        self.worker = Worker(state_impl, self.service)
        self.models = self.worker.map_state(key_state_descriptor())
        box.append(self)

    def gets(self) -> list:
        return [
            (r.state_key.SerializeToString(), r.get.continuation_token)
            for r in self.service.received
            if r.WhichOneof("request") == "get"
        ]


def _read_twice(state_impl, read) -> tuple:
    reading = _Reading(state_impl)
    try:
        with reading.worker.bundle():
            reading.worker.key(1)
            reading.models.put('"d"', {"model": 5})  # in the write cache: not read remotely
            keys = [*STORED, *ABSENT]
            first = read(reading.models, keys)
            again = read(reading.models, keys)  # from PyFlink's read cache: no requests
        return first, again, reading.gets(), reading.service.most_in_flight
    finally:
        reading.worker.close()


def test_read_many_reads_what_pyflinks_get_reads_with_every_request_in_flight(
    installed, accelerators_on
):
    """Contact: reading map entries through PyFlink's ``get`` and through the accelerator
    gives the same values (stored, stored as None, absent, in the write cache), sends the
    same requests (state key, bytes) and leaves PyFlink's read cache answering the same
    way; PyFlink has one request in flight at a time, the accelerator all of them.
    Relied on by: ``riverflink.accel.state_prefetch`` (its promise: only the waiting
    changes)."""
    read_many = state_prefetch.reader()
    assert read_many is not None

    def pyflink(models, keys):
        return {key: models.get(key) for key in keys}

    theirs = _read_twice(installed, pyflink)
    ours = _read_twice(installed, read_many)
    expected = {**STORED, '"d"': {"model": 5}, **dict.fromkeys(ABSENT)}
    assert theirs[0] == theirs[1] == expected
    assert ours[0] == ours[1] == expected
    assert ours[2] == theirs[2] and len(ours[2]) == len(STORED) - 1 + len(ABSENT)
    assert theirs[3] == 1
    assert ours[3] == len(ours[2])


def test_switched_off_or_failing_it_reads_as_pyflink_does(installed, accelerators_on, monkeypatch):
    """Contact: none (the fallback): ``RIVERFLINK_PREFETCH=0`` gives no reader, and a reader
    whose internals fail turns itself off and reads one key at a time.
    Relied on by: ``riverflink.accel.state_prefetch.reader``."""
    monkeypatch.setenv("RIVERFLINK_PREFETCH", "0")
    assert state_prefetch.reader() is None
    monkeypatch.delenv("RIVERFLINK_PREFETCH")
    read_many = state_prefetch.reader()

    class Broken:
        def get_internal_state(self):
            raise AttributeError("_map_state_handler")

        def get(self, key):
            return STORED.get(key)

    assert read_many(Broken(), list(STORED)) == STORED
    assert "prefetch" in accel._turned_off
    assert read_many(Broken(), ['"a"']) == {'"a"': STORED['"a"']}  # off: PyFlink's way
