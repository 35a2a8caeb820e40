"""Flink functions: thin adapters between Flink and the pure per-key logic.

Each function keeps only small, picklable configuration in ``__init__``; the
learner and the state handle are built in ``open()``. Outputs leave as JSON
text: predictions on the main output, alerts and rejected lines on side
outputs.
"""

from __future__ import annotations

import ast
import os
import time
from collections import OrderedDict

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, ProcessFunction, RuntimeContext

from operators.learner import DriftAlert, OnlineLearner, Prediction
from operators.records import Fields, Record, Rejected, parse_line
from state import envelope
from state.descriptors import key_state_descriptor

__all__ = ["ALERTS", "REJECTED", "WIRE_TYPE", "LearnPerKey", "ParseLines"]

#: Flink counters of the learning operator (web UI / REST: ``riverflink_<name>``).
METRICS = ("records_in", "predictions", "learned", "alerts", "rejected", "keys_seen")

ALERTS = OutputTag("alerts", Types.STRING())
REJECTED = OutputTag("rejected", Types.STRING())


#: What the parser hands to the learner: (key as JSON text, ``Record.to_wire()`` bytes).
WIRE_TYPE = Types.TUPLE([Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE())])


class ParseLines(ProcessFunction):
    """Raw line -> (key_id, record bytes) (main output) or a rejected JSON line (side output)."""

    def __init__(self, fields: Fields, *, tag_outputs: bool = False):
        self.fields = fields
        self.tag_outputs = tag_outputs

    def open(self, runtime_context: RuntimeContext):
        self.rejected = runtime_context.get_metrics_group().counter("riverflink_rejected")

    def process_element(self, value, ctx):
        parsed = parse_line(value, self.fields)
        if parsed is None:
            return
        if isinstance(parsed, Rejected):
            self.rejected.inc()
            yield REJECTED, parsed.to_json(self.tag_outputs)
        else:
            yield parsed.key_id, parsed.to_wire()


def _canonical(spec: str) -> str:
    """Specs that differ only in spacing are the same spec."""
    try:
        return ast.dump(ast.parse(spec.strip(), mode="eval"))
    except SyntaxError:
        return spec.strip()


def _injected_failure():
    """``RIVERFLINK_FAIL_ONCE=N:PATH``: fail once after N records, remembered in file PATH.

    A fault-injection switch for testing recovery, off unless the variable is set.
    """
    spec = os.environ.get("RIVERFLINK_FAIL_ONCE")
    if not spec:
        return None, None
    after, _, marker = spec.partition(":")
    return int(after), marker


class LearnPerKey(KeyedProcessFunction):
    """Per key: read the envelope, run one learning step, write the envelope back, emit."""

    def __init__(
        self,
        *,
        model_spec: str,
        drift_spec: str,
        on_drift: str,
        ttl_seconds: float | None = None,
        tag_outputs: bool = False,
        live_keys: int = 10_000,
        restoring: bool = True,
    ):
        self.model_spec = model_spec
        self.drift_spec = drift_spec
        self.on_drift = on_drift
        self.ttl_seconds = ttl_seconds
        self.tag_outputs = tag_outputs
        self.live_keys = live_keys
        self.restoring = restoring

    def open(self, runtime_context: RuntimeContext):
        self.learner = OnlineLearner(
            model_spec=self.model_spec, drift_spec=self.drift_spec, on_drift=self.on_drift
        )
        self.state = runtime_context.get_state(key_state_descriptor(ttl_seconds=self.ttl_seconds))
        # The models of recently seen keys, live between records. Flink state stays the
        # source of truth: every change is written to it, and a key not in here is read
        # from it. (A restart or rescale calls open() again, with an empty dict.)
        self.live: OrderedDict = OrderedDict()
        # Reading a key's state costs a round trip to the JVM. A key can only have state
        # if the job restored a checkpoint (or restarted after a failure), or if this
        # instance wrote it and let it go from ``live``; otherwise it is new: skip the read.
        self.restored = self.restoring or runtime_context.get_attempt_number() > 0
        self.evicted: set = set()
        self._known_specs = {self.model_spec}
        self._canonical_spec = _canonical(self.model_spec)
        self._seen = 0
        self._fail_after, self._fail_marker = _injected_failure()
        metrics = runtime_context.get_metrics_group()
        self.metrics = {name: metrics.counter(f"riverflink_{name}") for name in METRICS}

    def _maybe_fail(self) -> None:
        """Recovery tests crash the operator once, mid-stream (see ``_injected_failure``)."""
        self._seen += 1
        if self._seen > self._fail_after and not os.path.exists(self._fail_marker):
            with open(self._fail_marker, "w") as fh:
                fh.write(f"failed after {self._fail_after} records\n")
            raise RuntimeError(f"riverflink: injected failure after {self._fail_after} records")

    def _check_spec(self, key_state, record) -> envelope.KeyState | None:
        if key_state is None or key_state.model_spec in self._known_specs:
            return key_state
        if _canonical(key_state.model_spec) != self._canonical_spec:
            raise envelope.StateFormatError(
                f"key {record.key!r} was learned with model spec {key_state.model_spec!r}, "
                f"but this job runs {self.model_spec!r}. Restore with the same --model, "
                "or start without --restore to train new models."
            )
        self._known_specs.add(key_state.model_spec)
        return key_state

    def process_element(self, value, ctx):
        record = Record.from_wire(value[1])
        if self._fail_after is not None:
            self._maybe_fail()
        live = self.live
        key_state = live.get(record.key_id)
        if key_state is not None:
            live.move_to_end(record.key_id)
        elif self.restored or record.key_id in self.evicted:
            key_state = self._check_spec(self.state.value(), record)
        now = time.time()
        if (
            key_state is not None
            and self.ttl_seconds
            and now - key_state.last_seen > self.ttl_seconds
        ):
            # Expired. Flink's TTL also drops it from the backend, but PyFlink's Python-side
            # state cache can still hand out an expired value, so the envelope decides.
            key_state = None
        metrics = self.metrics
        metrics["records_in"].inc()
        learned_before = key_state.learned if key_state is not None else 0
        new_state, outputs = self.learner.step(key_state, record)
        if new_state is not None:
            if key_state is None:
                metrics["keys_seen"].inc()
            if new_state.learned != learned_before:
                metrics["learned"].inc()
            new_state.last_seen = now
            new_state.remember(record)
            self._keep(record.key_id, new_state)
        elif key_state is not None:
            # The model raised on this record and may be half-updated: rebuild the key.
            self._keep(record.key_id, envelope.rollback(key_state, self._replay))
        tag = self.tag_outputs
        for out in outputs:
            if isinstance(out, Prediction):
                metrics["predictions"].inc()
                yield out.to_json(tag)
            elif isinstance(out, DriftAlert):
                metrics["alerts"].inc()
                yield ALERTS, out.to_json(tag)
            else:
                metrics["rejected"].inc()
                yield REJECTED, out.to_json(tag)

    def _keep(self, key_id: str, key_state: envelope.KeyState) -> None:
        """Write the key's state (flushed to Flink at the end of the bundle) and keep it live.

        Written on every record: skipping writes after the first one in a bundle loses
        updates in savepoints (measured), so Flink must be told each time.
        """
        self.state.update(key_state)
        self.live[key_id] = key_state
        if len(self.live) > self.live_keys:
            evicted, _ = self.live.popitem(last=False)
            if not self.restored:
                self.evicted.add(evicted)

    def _replay(self, key_state, record):
        new_state, _ = self.learner.step(key_state, record)
        return new_state
