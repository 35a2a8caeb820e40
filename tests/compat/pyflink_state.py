"""PyFlink's keyed state backend as a Python worker builds it, down to Beam's gRPC client.

Everything is the installed code: PyFlink's ``RemoteKeyedStateBackend`` and its map
states, Beam's ``GlobalCachingStateHandler`` and ``GrpcStateHandler``. Only the gRPC
stub, the JVM's end of the state channel, is a stand-in (:class:`StateService`).
Used by ``tests/compat/test_state_commit.py`` and ``tests/unit/test_state_commit.py``.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time

from apache_beam.portability.api import beam_fn_api_pb2
from apache_beam.runners.worker import sdk_worker, statecache
from pyflink.common import Row, Types
from pyflink.fn_execution.coders import from_type_info

#: PyFlink's defaults: python.state.cache-size, python.map-state.read-cache-size and
#: python.map-state.write-cache-size (riverflink's flink-conf sets none of them).
CACHE_SIZE = 1000

_END = object()


class StateService:
    """Stands in for Beam's ``BeamFnStateStub``: the JVM's state service.

    It answers (``answer``: request -> response; by default an empty one) only once no
    new request has come for ``quiet`` seconds, then all unanswered requests (``gap``
    seconds apart; last first if ``reverse``), so a caller
    that waits for each answer before its next request sends one at a time, and one that
    sends first and waits after has them all in flight together. It records every request
    in order (:attr:`received`), the most it held unanswered at once
    (:attr:`most_in_flight`) and how many it has answered (:attr:`answered`).
    """

    def __init__(self, quiet: float = 0.1, *, gap: float = 0.0, reverse: bool = False, answer=None):
        self.quiet = quiet
        self.answer = answer or _answer  # request -> StateResponse
        self.gap = gap
        self.reverse = reverse
        self.received: list = []
        self.most_in_flight = 0
        self.answered = 0

    def State(self, requests):  # noqa: N802 - gRPC's method name
        inbox: queue.Queue = queue.Queue()

        def pull():
            for request in requests:
                inbox.put(request)
            inbox.put(_END)

        threading.Thread(target=pull, name="state-service-inbox", daemon=True).start()

        def answers():
            pending = []
            while True:
                try:
                    request = inbox.get(timeout=self.quiet if pending else None)
                except queue.Empty:
                    self.most_in_flight = max(self.most_in_flight, len(pending))
                    for i, unanswered in enumerate(pending[::-1] if self.reverse else pending):
                        if i and self.gap:
                            time.sleep(self.gap)
                        self.answered += 1
                        yield self.answer(unanswered)
                    pending = []
                    continue
                if request is _END:
                    return
                self.received.append(request)
                pending.append(request)

        return answers()

    def requests(self) -> list:
        """What reached the JVM: (kind, state key, payload), in order."""
        return [
            (
                request.WhichOneof("request"),
                request.state_key.SerializeToString(),
                request.append.data if request.HasField("append") else b"",
            )
            for request in self.received
        ]


def _answer(request):
    response = beam_fn_api_pb2.StateResponse(id=request.id)
    getattr(response, request.WhichOneof("request")).SetInParent()
    return response


class Worker:
    """One Python worker's keyed state: ``state_impl``'s backend over Beam's handlers."""

    def __init__(self, state_impl, service: StateService | None = None):
        self.service = service or StateService()
        self._grpc = sdk_worker.GrpcStateHandler(self.service)
        self._handler = sdk_worker.GlobalCachingStateHandler(
            statecache.StateCache(1 << 20), self._grpc
        )
        # What PyFlink's keyed operations key by: Row(bucket).
        key_coder = from_type_info(Types.ROW([Types.INT()]))
        self.backend = state_impl.RemoteKeyedStateBackend(
            self._handler, key_coder, None, CACHE_SIZE, CACHE_SIZE, CACHE_SIZE
        )

    def map_state(self, descriptor):
        """``runtime_context.get_map_state(descriptor)`` as PyFlink's runtime context does it."""
        map_coder = from_type_info(descriptor.type_info)
        return self.backend.get_map_state(
            descriptor.name, map_coder._key_coder, map_coder._value_coder, descriptor._ttl_config
        )

    def value_state(self, name: str):
        return self.backend.get_value_state(name, from_type_info(Types.PICKLED_BYTE_ARRAY()))

    @contextlib.contextmanager
    def bundle(self, bundle_id: str = "bundle-1"):
        with self._handler.process_instruction_id(bundle_id, []):
            yield

    def key(self, bucket: int) -> None:
        self.backend.set_current_key(Row(bucket))

    def close(self) -> None:
        self._grpc.done()
