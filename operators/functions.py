"""Flink functions: thin adapters between Flink and the pure per-key logic.

Lines arrive keyed by routing bucket (``riverflink.state.descriptors``): one line at a time
(``--profile latency``) or a list of lines (``--profile throughput``, batched in
Java so that many lines cross into Python at once). Each function keeps only
small, picklable configuration in ``__init__``; the learner and the state handle
are built in ``open()``. Outputs leave as JSON lines, joined by newlines:
predictions on the main output, alerts, outcomes of delayed labels and rejected
lines on side outputs.

Pending predictions (delayed labels) live in each key's envelope. A Flink
processing-time timer per bucket, registered for the second the oldest one of a
key is due, drops the expired ones (``on_timer``); the label-timers map says
which keys each timer is for.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left

from pyflink.common import Types
from pyflink.datastream import KeyedProcessFunction, OutputTag, RuntimeContext

from riverflink.operators.live_counts import LiveCounts
from riverflink.operators.live_models import (
    WRITE_AT_CHECKPOINTS,
    WRITE_EACH_ELEMENT,
    WRITE_ON_EVICTION,
    LiveModels,
)
from riverflink.operators.records import Fields, Record, Rejected, parse_line
from riverflink.operators.results import (
    DEFAULT_LABEL_TTL,
    DriftAlert,
    FeatureDriftAlert,
    Outcome,
    Prediction,
)
from riverflink.state import envelope
from riverflink.state.descriptors import (
    ROUTINGS,
    SPREAD,
    key_state_descriptor,
    label_timers_descriptor,
)

__all__ = [
    "ALERTS",
    "OUTCOMES",
    "REJECTED",
    "WRITE_AT_CHECKPOINTS",
    "WRITE_EACH_ELEMENT",
    "WRITE_ON_EVICTION",
    "LearnPerKey",
]

#: Flink counters of the learning operator (web UI / REST: ``riverflink_<name>``).
METRICS = (
    "lines",
    "records_in",
    "predictions",
    "learned",
    "alerts",
    "rejected",
    "keys_seen",
    "outcomes",
    "labels_expired",
    "pseudo_labels",
    "feature_drift_alerts",
)

#: Upper bounds (microseconds) of the per-record processing-time histogram: counters
#: ``riverflink_record_us_le_<bound>`` count records that took at most that long (cumulative,
#: as Prometheus histograms), ``riverflink_record_us_sum`` the total time.
TIME_BUCKETS_US = (50, 100, 250, 500, 1000, 2500, 10000, 100000)

#: Which counter each kind of output adds to.
_COUNTED = {
    Prediction: "predictions",
    DriftAlert: "alerts",
    FeatureDriftAlert: "alerts",  # and feature_drift_alerts
    Outcome: "outcomes",
    Rejected: "rejected",
}

ALERTS = OutputTag("alerts", Types.STRING())
OUTCOMES = OutputTag("outcomes", Types.STRING())
REJECTED = OutputTag("rejected", Types.STRING())


def _injected_failure():
    """``RIVERFLINK_FAIL_ONCE=N:PATH``: fail once after N records, remembered in file PATH.

    A fault-injection switch for testing recovery, off unless the variable is set.
    """
    spec = os.environ.get("RIVERFLINK_FAIL_ONCE")
    if not spec:
        return None, None
    after, _, marker = spec.partition(":")
    return int(after), marker


def _nothing() -> None:
    pass


def _lines(value) -> list:
    """The lines of one element: bytes joined by newlines (the Java router), or one line
    (``str``) or a list of lines (SQL routing).

    An element of ASCII bytes is decoded at once (``parse_line`` would decode each of its
    lines the same way); any other stays bytes, each line checked as UTF-8 on its own.
    """
    if value.__class__ is bytes:
        if value.isascii():
            return value.decode("ascii").split("\n")
        return value.split(b"\n")
    if isinstance(value, (bytes, str)):
        return value.split(b"\n" if isinstance(value, bytes) else "\n")
    return value


class LearnPerKey(KeyedProcessFunction):
    """Per line: parse, find the key's model, run one learning step, write it back, emit.

    ``writes`` says when a key's model goes to Flink state (pickled by PyFlink at the end
    of the bundle), so that every checkpoint and savepoint holds every model:

    - ``WRITE_EACH_ELEMENT`` (the default): every key an element touched, at its end.
    - ``WRITE_AT_CHECKPOINTS``: the changed keys of a bucket when the router's checkpoint
      marker for that bucket arrives (an empty list of lines, sent right ahead of each
      barrier; aligned checkpoints only), and changed keys leaving memory (``live_keys``).
    - ``WRITE_ON_EVICTION``: only keys leaving memory. For a local run of a bounded input
      without checkpoints, whose state no one reads but this worker.

    ``pickled_bytes``: memory for keys that left the ``live_keys`` kept pickled in the
    worker (see ``LiveModels``), so that they come back without a read from Flink.

    ``routing`` is how the job sends keys to buckets (``riverflink.state.descriptors``): it names
    the state the models live in, and every key new to this instance is checked against it.

    ``on_open``: a picklable function of no arguments, called in the worker as the
    operator opens, before anything else (the job's worker set-up). It may return a dict
    of what it offers: ``read_many`` (see ``LiveModels``) and ``after_element`` (called
    after each element).

    ``joined``: an element's output lines of each kind leave as one string, joined by
    newlines (fewer, larger elements, for riverflink's own sinks); otherwise one each.
    """

    def __init__(
        self,
        *,
        fields: Fields,
        model_spec: str | None,
        drift_spec: str,
        on_drift: str,
        ttl_seconds: float | None = None,
        label_ttl: float = DEFAULT_LABEL_TTL,
        metric_spec: str | None = None,
        pseudo_label: float | None = None,
        init_model: bytes | None = None,
        init_models: str | None = None,
        feature_drift_spec: str = "none",
        tag_outputs: bool = False,
        live_keys: int = 10_000,
        pickled_bytes: int = 0,
        restoring: bool = True,
        writes: str = "element",
        routing: str = SPREAD,
        on_open=None,
        joined: bool = True,
    ):
        if routing not in ROUTINGS:
            raise ValueError(f"routing must be one of {', '.join(ROUTINGS)}: {routing!r}")
        self.routing = routing
        self.fields = fields
        self.model_spec = model_spec
        self.drift_spec = drift_spec
        self.on_drift = on_drift
        self.ttl_seconds = ttl_seconds
        self.label_ttl = label_ttl
        self.metric_spec = metric_spec
        self.pseudo_label = pseudo_label
        self.init_model = init_model
        self.init_models = init_models
        self.feature_drift_spec = feature_drift_spec
        self.tag_outputs = tag_outputs
        self.live_keys = live_keys
        self.pickled_bytes = pickled_bytes
        self.restoring = restoring
        if writes not in (WRITE_EACH_ELEMENT, WRITE_AT_CHECKPOINTS, WRITE_ON_EVICTION):
            raise ValueError(f"writes must be one of element, checkpoint, eviction: {writes!r}")
        self.writes = writes
        self.on_open = on_open
        self.joined = joined

    def open(self, runtime_context: RuntimeContext):
        # River is imported here, in the worker, not where the job is built: the client
        # that only builds the job never needs it (it takes about 1 s to import).
        from riverflink.operators.learner import OnlineLearner

        # The job's worker set-up (riverflink.accel.worker), and what it offers the operator.
        offered = (self.on_open() if self.on_open is not None else None) or {}
        self.learner = OnlineLearner(
            model_spec=self.model_spec,
            drift_spec=self.drift_spec,
            on_drift=self.on_drift,
            label_ttl=self.label_ttl,
            metric_spec=self.metric_spec,
            pseudo_label=self.pseudo_label,
            init_model=self.init_model,
            init_models=self.init_models,
            feature_drift_spec=self.feature_drift_spec,
        )
        # Regressors need numbers as labels; the learner knows its model's kind.
        self.fields = self.learner.fields_for(self.fields)
        state = runtime_context.get_map_state(
            key_state_descriptor(routing=self.routing, ttl_seconds=self.ttl_seconds)
        )
        self.label_timers = runtime_context.get_map_state(label_timers_descriptor())
        # Reading a key's state costs a round trip to the JVM. A key can only have state
        # if the job restored a checkpoint (or restarted after a failure), or if this
        # instance wrote it and let it go from memory; otherwise it is new: skip the read.
        # (A restart or rescale calls open() again, with nothing live.)
        self.models = LiveModels(
            state,
            model_spec=self.learner.model_spec,
            routing=self.routing,
            ttl_seconds=self.ttl_seconds,
            live_keys=self.live_keys,
            writes=self.writes,
            restored=self.restoring or runtime_context.get_attempt_number() > 0,
            any_spec=self.learner.starts_from_files,
            read_many=offered.get("read_many"),
            pickled_bytes=self.pickled_bytes,
        )
        self._after_element = offered.get("after_element") or _nothing
        self._seen = 0
        self._fail_after, self._fail_marker = _injected_failure()
        metrics = runtime_context.get_metrics_group()
        self.metrics = {name: metrics.counter(f"riverflink_{name}") for name in METRICS}
        metrics.gauge("riverflink_keys_live", lambda: len(self.models.live))
        metrics.gauge("riverflink_keys_pickled", lambda: len(self.models.pickled))
        self.time_counters = [
            metrics.counter(f"riverflink_record_us_le_{bound}") for bound in TIME_BUCKETS_US
        ] + [metrics.counter("riverflink_record_us_le_inf")]
        self.time_sum = metrics.counter("riverflink_record_us_sum")
        # The same counts for the progress line of a local run, as they change.
        self.live_counts = LiveCounts.for_subtask(
            runtime_context.get_index_of_this_subtask(),
            runtime_context.get_attempt_number(),
            METRICS,
        )

    def close(self):
        if getattr(self, "live_counts", None) is not None:
            self.live_counts.close()

    def _maybe_fail(self) -> None:
        """Recovery tests crash the operator once, mid-stream (see ``_injected_failure``)."""
        self._seen += 1
        if self._seen > self._fail_after and not os.path.exists(self._fail_marker):
            with open(self._fail_marker, "w") as fh:
                fh.write(f"failed after {self._fail_after} records\n")
            raise RuntimeError(f"riverflink: injected failure after {self._fail_after} records")

    def process_element(self, value, ctx):
        bucket = ctx.get_current_key()
        self.models.enter(bucket)
        if not value:  # the router's checkpoint marker: the barrier follows
            self.models.write_marked(bucket)
            return
        now = time.time()
        if self.tag_outputs:  # one stream, "kind" in each line: kept in the order of events
            out = dict.fromkeys((Prediction, DriftAlert, FeatureDriftAlert, Outcome, Rejected), [])
        else:  # JSON lines per kind, for the side outputs
            out = {Prediction: [], DriftAlert: [], Outcome: [], Rejected: []}
            out[FeatureDriftAlert] = out[DriftAlert]  # both go to alerts/
        touched: dict = {}  # key_id -> KeyState, written to Flink once per element
        timers: dict = {}  # epoch ms -> key_ids whose pending labels start waiting
        counts = dict.fromkeys(METRICS, 0)
        timings = [0] * (len(TIME_BUCKETS_US) + 1)  # records per time bucket
        total_us = 0.0
        clock = time.perf_counter
        fields = self.fields
        parsed = []  # (line, record, seconds to parse it)
        started = clock()  # each line's time: from the end of the one before
        for line in _lines(value):
            record = parse_line(line, fields)
            ended = clock()
            parsed.append((line, record, ended - started))
            started = ended
        # Every key of the element that must come from Flink state, read in one go.
        self.models.prefetch([r.key_id for _, r, _ in parsed if r.__class__ is Record])
        started = clock()
        for line, record, parsing in parsed:
            counted = self._line(line, record, bucket, now, out, touched, timers, counts)
            ended = clock()
            if counted:
                took = (ended - started + parsing) * 1e6
                timings[bisect_left(TIME_BUCKETS_US, took)] += 1
                total_us += took
            started = ended
        self.models.prefetched = {}
        self._after_element()
        self._flush(touched, timers, ctx, counts)
        cumulative = 0
        for counter, count in zip(self.time_counters, timings):
            cumulative += count
            if cumulative:
                counter.inc(cumulative)
        self.time_sum.inc(int(total_us))
        if self.tag_outputs:
            if out[Prediction]:
                yield "\n".join(out[Prediction])  # every kind: one shared list
            return
        if not self.joined:  # one line per element
            yield from out[Prediction]
            for kind, tag in ((DriftAlert, ALERTS), (Outcome, OUTCOMES), (Rejected, REJECTED)):
                for line in out[kind]:
                    yield tag, line
            return
        if out[Prediction]:
            yield "\n".join(out[Prediction])
        if out[DriftAlert]:
            yield ALERTS, "\n".join(out[DriftAlert])
        if out[Outcome]:
            yield OUTCOMES, "\n".join(out[Outcome])
        if out[Rejected]:
            yield REJECTED, "\n".join(out[Rejected])

    def _line(self, line, record, bucket, now, out, touched, timers, counts) -> bool:
        """One input line (and what ``parse_line`` made of it) through the learner; False
        for a blank line (skipped)."""
        tag = self.tag_outputs
        if record is None:
            return False
        counts["lines"] += 1
        if isinstance(record, Rejected):
            counts["rejected"] += 1
            out[Rejected].append(record.to_json(tag))
            return True
        if self._fail_after is not None:
            self._maybe_fail()
        counts["records_in"] += 1
        key_state = self.models.lookup(record, bucket, now)
        if not isinstance(key_state, Rejected):
            key_state = self.learner.refuse(key_state, record) or key_state
        if isinstance(key_state, Rejected):
            counts["rejected"] += 1
            out[Rejected].append(key_state.to_json(tag))
            return True
        learned_before = key_state.learned if key_state is not None else 0
        timer_before = key_state.expiry_timer if key_state is not None else None
        new_state, outputs = self.learner.step(key_state, record, now)
        if new_state is not None:
            if key_state is None:
                counts["keys_seen"] += 1
            if new_state.learned != learned_before:
                counts["learned"] += 1
            if new_state.expiry_timer not in (None, timer_before):
                timers.setdefault(new_state.expiry_timer, []).append(record.key_id)
            new_state.last_seen = now
            self.models.note(new_state, (line, now))  # the text: one untracked object per record
            self.models.keep(record.key_id, new_state, touched)
        elif key_state is not None:
            # The model raised on this record and may be half-updated: rebuild the key.
            self.models.keep(record.key_id, envelope.rollback(key_state, self._replay), touched)
        for item in outputs:
            kind = type(item)
            counts[_COUNTED[kind]] += 1
            if kind is Prediction and item.pseudo:
                counts["pseudo_labels"] += 1
            elif kind is FeatureDriftAlert:
                counts["feature_drift_alerts"] += 1
            out[kind].append(item.to_json(tag))
        return True

    def on_timer(self, timestamp: int, ctx):
        """Drop the pending predictions of this bucket's keys that waited past --label-ttl."""
        self.models.enter(ctx.get_current_key())
        key_ids = self.label_timers.get(timestamp)
        if key_ids is None:
            return iter(())
        self.label_timers.remove(timestamp)
        now = max(time.time(), timestamp / 1000)
        touched: dict = {}
        timers: dict = {}
        counts = dict.fromkeys(METRICS, 0)
        for key_id in dict.fromkeys(key_ids):
            key_state = self.models.load(key_id, now)
            if key_state is None or key_state.expiry_timer != timestamp:
                continue  # gone (--state-ttl), or its labels came and a later timer took over
            counts["labels_expired"] += self.learner.expire(key_state, now)
            if key_state.expiry_timer is not None:
                timers.setdefault(key_state.expiry_timer, []).append(key_id)
            self.models.note(key_state, (None, now))
            self.models.keep(key_id, key_state, touched)
        self._flush(touched, timers, ctx, counts)
        return iter(())

    def _flush(self, touched: dict, timers: dict, ctx, counts: dict) -> None:
        """Write the touched keys, register the new label timers, count."""
        state = self.models.state
        for key_id, key_state in touched.items():
            state.put(key_id, key_state)
        for at, key_ids in timers.items():
            ctx.timer_service().register_processing_time_timer(at)
            waiting = self.label_timers.get(at)
            self.label_timers.put(at, key_ids if waiting is None else waiting + key_ids)
        for name, count in counts.items():
            if count:
                self.metrics[name].inc(count)
        if self.live_counts is not None:
            self.live_counts.add(counts)

    def _replay(self, key_state, change):
        """Apply again a change noted by ``remember``: a line, or (None) an expiry.

        Lines are kept as text, not parsed records: a string is one object the garbage
        collector never scans, where a record is several, and the collector's scans of
        kept records slow the learner down. Parsing is deterministic, so the replayed
        record is the one first applied.
        """
        line, now = change
        if line is None:
            if key_state is not None:
                self.learner.expire(key_state, now)
            return key_state
        new_state, _ = self.learner.step(key_state, parse_line(line, self.fields), now)
        return new_state
