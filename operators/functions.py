"""Flink functions: thin adapters between Flink and the pure per-key logic.

Lines arrive keyed by routing bucket (``state.descriptors``): one line at a time
(``--profile latency``) or several joined by newlines (``--profile throughput``,
batched in Java so that many lines cross into Python at once). Each function
keeps only small, picklable configuration in ``__init__``; the learner and the
state handle are built in ``open()``. Outputs leave as JSON lines, joined the
same way: predictions on the main output, alerts and rejected lines on side
outputs.
"""

from __future__ import annotations

import ast
import os
import time
from collections import OrderedDict

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext

from operators.learner import DriftAlert, OnlineLearner, Prediction
from operators.records import Fields, Rejected, parse_line, route_bucket
from state import envelope
from state.descriptors import ROUTING_BUCKETS, key_state_descriptor

__all__ = ["ALERTS", "REJECTED", "LearnPerKey"]

#: Flink counters of the learning operator (web UI / REST: ``riverflink_<name>``).
METRICS = ("records_in", "predictions", "learned", "alerts", "rejected", "keys_seen")

ALERTS = OutputTag("alerts", Types.STRING())
REJECTED = OutputTag("rejected", Types.STRING())


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
    """Per line: parse, find the key's model, run one learning step, write it back, emit."""

    def __init__(
        self,
        *,
        fields: Fields,
        model_spec: str,
        drift_spec: str,
        on_drift: str,
        ttl_seconds: float | None = None,
        tag_outputs: bool = False,
        live_keys: int = 10_000,
        restoring: bool = True,
    ):
        self.fields = fields
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
        self.state = runtime_context.get_map_state(
            key_state_descriptor(ttl_seconds=self.ttl_seconds)
        )
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
        bucket = ctx.get_current_key()
        tag = self.tag_outputs
        now = time.time()
        predictions, alerts, rejected = [], [], []
        touched: dict = {}  # key_id -> KeyState, written to Flink once per element
        counts = dict.fromkeys(METRICS, 0)
        for line in value.split("\n"):
            record = parse_line(line, self.fields)
            if record is None:
                continue
            if isinstance(record, Rejected):
                counts["rejected"] += 1
                rejected.append(record.to_json(tag))
                continue
            if self._fail_after is not None:
                self._maybe_fail()
            counts["records_in"] += 1
            key_state = self._lookup(record, bucket, now)
            if isinstance(key_state, Rejected):
                counts["rejected"] += 1
                rejected.append(key_state.to_json(tag))
                continue
            learned_before = key_state.learned if key_state is not None else 0
            new_state, outputs = self.learner.step(key_state, record)
            if new_state is not None:
                if key_state is None:
                    counts["keys_seen"] += 1
                if new_state.learned != learned_before:
                    counts["learned"] += 1
                new_state.last_seen = now
                new_state.remember(record)
                self._keep(record.key_id, new_state, touched)
            elif key_state is not None:
                # The model raised on this record and may be half-updated: rebuild the key.
                self._keep(record.key_id, envelope.rollback(key_state, self._replay), touched)
            for out in outputs:
                if isinstance(out, Prediction):
                    counts["predictions"] += 1
                    predictions.append(out.to_json(tag))
                elif isinstance(out, DriftAlert):
                    counts["alerts"] += 1
                    alerts.append(out.to_json(tag))
                else:
                    counts["rejected"] += 1
                    rejected.append(out.to_json(tag))
        state = self.state
        for key_id, key_state in touched.items():
            state.put(key_id, key_state)
        for name, count in counts.items():
            if count:
                self.metrics[name].inc(count)
        if predictions:
            yield "\n".join(predictions)
        if alerts:
            yield ALERTS, "\n".join(alerts)
        if rejected:
            yield REJECTED, "\n".join(rejected)

    def _lookup(self, record, bucket, now):
        """The key's current state (None for a new or expired key), or Rejected."""
        key_id = record.key_id
        key_state = self.live.get(key_id)
        if key_state is not None:
            self.live.move_to_end(key_id)
        else:
            expected = route_bucket(record.key, key_id, ROUTING_BUCKETS)
            if expected != bucket:
                return Rejected(
                    record.raw,
                    f"key {record.key!r} reached routing bucket {bucket}, not its bucket "
                    f"{expected}: Flink and riverflink read the key differently, so its "
                    "model could be split. Please report this line.",
                )
            if self.restored or key_id in self.evicted:
                key_state = self._check_spec(self.state.get(key_id), record)
        if (
            key_state is not None
            and self.ttl_seconds
            and now - key_state.last_seen > self.ttl_seconds
        ):
            # Expired. Flink's TTL also drops it from the backend, but PyFlink's Python-side
            # state cache can still hand out an expired value, so the envelope decides.
            key_state = None
        return key_state

    def _keep(self, key_id: str, key_state: envelope.KeyState, touched: dict) -> None:
        """Keep the key live and mark it for writing to Flink at the end of the element.

        PyFlink holds written map entries in its write cache and pickles each once, at
        the end of the bundle (a checkpoint ends the bundle first).
        """
        touched[key_id] = key_state
        self.live[key_id] = key_state
        if len(self.live) > self.live_keys:
            evicted, _ = self.live.popitem(last=False)
            if evicted in touched:  # written now, so a later line of this element reads it
                self.state.put(evicted, touched.pop(evicted))
            if not self.restored:
                self.evicted.add(evicted)

    def _replay(self, key_state, record):
        new_state, _ = self.learner.step(key_state, record)
        return new_state
