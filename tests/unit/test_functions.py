"""The learning operator's adapter with an in-memory state fake: what reaches Flink state.

Every touched key is written at the end of each element, or a bucket's changed keys at
the router's checkpoint marker for it, or (local bounded runs without checkpoints) only
keys leaving memory. Either way the predictions are River's own, rollbacks included.
"""

from __future__ import annotations

import json
import pickle

import pytest
from river import linear_model, preprocessing

from riverflink.operators import live_models
from riverflink.operators.functions import (
    WRITE_AT_CHECKPOINTS,
    WRITE_EACH_ELEMENT,
    WRITE_ON_EVICTION,
    LearnPerKey,
)
from riverflink.operators.live_counts import ENV as LIVE_COUNTS_ENV
from riverflink.operators.live_counts import read_live_counts
from riverflink.operators.records import Fields, parse_line, route_bucket, spread_bucket
from riverflink.state import envelope
from riverflink.state.descriptors import HASH, ROUTING_BUCKETS, ROUTINGS, SPREAD, SPREAD_KEYS
from tests.reference import reference_predictions

MODEL = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"


class _Counter:
    def inc(self, n=1):
        pass


class _Metrics:
    def counter(self, name):
        return _Counter()

    def gauge(self, name, fn):
        pass


class _MapState:
    """Flink map state as PyFlink's Python side shows it: one map per current key (bucket).

    Values are pickled as they are put; with ``deferred`` they wait in a write cache, as
    objects handed back by ``get``, until ``end_bundle`` pickles them, as PyFlink does.
    """

    deferred = False

    def __init__(self, context):
        self.context = context
        self.maps: dict = {}
        self.written: dict = {}  # (bucket, key) -> object put, not pickled yet
        self.writes = 0
        self.reads = 0

    def _map(self) -> dict:
        return self.maps.setdefault(self.context.key, {})

    def put(self, key, value):
        self.writes += 1
        if self.deferred:
            self.written[(self.context.key, key)] = value
        else:
            self._map()[key] = pickle.dumps(value)

    def end_bundle(self):
        for (bucket, key), value in self.written.items():
            self.maps.setdefault(bucket, {})[key] = pickle.dumps(value)
        self.written.clear()

    def get(self, key):
        self.reads += 1
        waiting = self.written.get((self.context.key, key))
        if waiting is not None:
            return waiting
        blob = self._map().get(key)
        return None if blob is None else pickle.loads(blob)

    def remove(self, key):
        self._map().pop(key, None)

    def keys_by_bucket(self) -> dict:
        return {bucket: set(entries) for bucket, entries in self.maps.items() if entries}


class _Context:
    """Runtime context (open) and element context (process_element) in one."""

    def __init__(self):
        self.states = {}
        self.key = None

    def get_map_state(self, descriptor):
        return self.states.setdefault(descriptor.name, _MapState(self))

    def get_metrics_group(self):
        return _Metrics()

    def get_attempt_number(self):
        return 0

    def get_index_of_this_subtask(self):
        return 0

    def get_current_key(self):
        return self.key

    def timer_service(self):
        return self

    def register_processing_time_timer(self, at):
        self.timers = [*getattr(self, "timers", []), at]


def _records(n=3000, keys=12, bad_every=97):
    """Labeled records over ``keys`` keys; every ``bad_every``-th also comes with a label
    the model raises on (half-way through learning: a rollback)."""
    import random

    rng = random.Random(4)
    records, lines = [], []
    for i in range(n):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        record = {"key": f"k{i % keys}", "id": i, **x, "y": x["f0"] - x["f1"] > 0}
        records.append(record)
        lines.append(json.dumps(record))
        if i % bad_every == 5:
            lines.append(json.dumps({**record, "id": f"bad-{i}", "y": "cat"}))
    return records, lines


def _element(lines: list, framing: str):
    """A batch of lines as it reaches the learner: joined into bytes (riverflink's router)
    or a list of str (SQL routing)."""
    return b"\n".join(line.encode("utf-8") for line in lines) if framing == "bytes" else lines


def _run(
    lines,
    *,
    writes,
    live_keys=1000,
    batch=7,
    on_batch=None,
    routing=SPREAD,
    framing="list",
    on_open=None,
    restoring=False,
    pickled_bytes=0,
    bundle=0,
):
    """Run ``lines`` through the learner in per-bucket batches of ``batch`` lines; with
    ``bundle``, PyFlink's bundle ends (its write cache is pickled) every ``bundle`` batches."""
    function = LearnPerKey(
        routing=routing,
        fields=Fields(),
        model_spec=MODEL,
        drift_spec="none",
        on_drift="alert",
        live_keys=live_keys,
        restoring=restoring,
        writes=writes,
        on_open=on_open,
        pickled_bytes=pickled_bytes,
    )
    context = _Context()
    function.open(context)
    state = context.states[ROUTINGS[routing]]
    state.deferred = bool(bundle)
    batches = 0
    outputs = []
    by_bucket: dict = {}
    for line in lines:
        record = parse_line(line)
        by_bucket.setdefault(_bucket(record.key_id, routing), []).append(line)
        if sum(map(len, by_bucket.values())) >= batch:  # lines cross in per-bucket batches
            for bucket, batch_lines in by_bucket.items():
                context.key = bucket
                outputs.extend(function.process_element(_element(batch_lines, framing), context))
            by_bucket.clear()
            batches += 1
            if bundle and batches % bundle == 0:
                state.end_bundle()
            if on_batch is not None:
                on_batch(function, context)
    for bucket, batch_lines in by_bucket.items():
        context.key = bucket
        outputs.extend(function.process_element(_element(batch_lines, framing), context))
    state.end_bundle()
    predictions = [
        json.loads(row) for out in outputs if isinstance(out, str) for row in out.split("\n")
    ]
    rejected = [out for out in outputs if not isinstance(out, str)]
    return predictions, rejected, context.states[ROUTINGS[routing]], function


def _expected(records):
    expected, _ = reference_predictions(
        records, lambda: preprocessing.StandardScaler() | linear_model.LogisticRegression()
    )
    return sorted(json.dumps(p, sort_keys=True) for p in expected)


def _sorted(predictions):
    return sorted(json.dumps(p, sort_keys=True) for p in predictions)


@pytest.mark.parametrize("routing", [SPREAD, HASH])
def test_write_through_writes_every_touched_key(routing):
    records, lines = _records()
    predictions, rejected, state, _ = _run(lines, writes=WRITE_EACH_ELEMENT, routing=routing)
    assert _sorted(predictions) == _expected(records)
    assert len(rejected) == len(lines) - len(records)
    written = state.keys_by_bucket()
    assert set().union(*written.values()) == {json.dumps(f"k{i}") for i in range(12)}
    for bucket, key_ids in written.items():  # each key under its own routing bucket
        assert all(_bucket(key_id, routing) == bucket for key_id in key_ids)


@pytest.mark.parametrize("routing", [SPREAD, HASH])
def test_a_key_in_another_routings_bucket_is_rejected_not_learned(routing):
    other = HASH if routing == SPREAD else SPREAD
    _, lines = _records(keys=40)
    moved = next(line for line in lines if _line_bucket(line, routing) != _line_bucket(line, other))
    function = LearnPerKey(
        fields=Fields(), model_spec=MODEL, drift_spec="none", on_drift="alert", routing=routing
    )
    context = _Context()
    function.open(context)
    context.key = _line_bucket(moved, other)
    ((tag, rejected),) = function.process_element([moved], context)
    assert tag.tag_id == "rejected"
    assert "reached routing bucket" in json.loads(rejected)["error"]
    assert function.models.live == {}


@pytest.mark.parametrize("framing", ["list", "bytes"])
@pytest.mark.parametrize("notes, budget", [(256, 200_000), (3, 200_000), (256, 10)])
def test_without_checkpoints_nothing_is_written_and_predictions_stay_rivers(
    monkeypatch, notes, budget, framing
):
    monkeypatch.setattr(live_models, "ROLLBACK_NOTES", notes)
    monkeypatch.setattr(live_models, "ROLLBACK_BUDGET", budget)
    records, lines = _records()
    predictions, rejected, state, function = _run(lines, writes=WRITE_ON_EVICTION, framing=framing)
    assert _sorted(predictions) == _expected(records)  # rollbacks replay onto the right base
    assert len(rejected) == len(lines) - len(records)
    assert state.writes == 0
    longest = max(len(s.__dict__.get("since_flush", ())) for s in function.models.live.values())
    assert longest < min(notes, budget + 1)


@pytest.mark.parametrize("writes", [WRITE_ON_EVICTION, WRITE_AT_CHECKPOINTS])
def test_keys_leaving_memory_are_written_and_read_back(writes):
    records, lines = _records(keys=12)
    predictions, _, state, function = _run(lines, writes=writes, live_keys=5, batch=1)
    assert _sorted(predictions) == _expected(records)
    written = state.keys_by_bucket()
    assert state.writes > 0
    for bucket, key_ids in written.items():  # each key under its own routing bucket
        assert all(_bucket(key_id) == bucket for key_id in key_ids)


class _ReadAhead:
    """A worker set-up offering ``read_many`` over the fake state, recording each batch and
    checking that every key read ahead is then used with exactly what Flink held."""

    def __init__(self):
        self.batches: list = []
        self.elements = 0

    def __call__(self):
        return {"read_many": self.read_many, "after_element": self.after_element}

    def after_element(self):
        self.elements += 1

    def read_many(self, state, key_ids):
        self.batches.append(list(key_ids))
        return {key_id: state.get(key_id) for key_id in key_ids}


@pytest.mark.parametrize("restoring", [False, True])
@pytest.mark.parametrize("writes", [WRITE_EACH_ELEMENT, WRITE_ON_EVICTION, WRITE_AT_CHECKPOINTS])
def test_cold_keys_read_ahead_per_element_give_rivers_predictions(writes, restoring):
    """Keys leaving memory and coming back, several per element: read in one batch per
    element, and the predictions (rollbacks included) are River's."""
    records, lines = _records(keys=40)
    reader = _ReadAhead()
    predictions, rejected, state, function = _run(
        lines, writes=writes, live_keys=5, batch=60, on_open=reader, restoring=restoring
    )
    assert _sorted(predictions) == _expected(records)
    assert len(rejected) == len(lines) - len(records)
    assert max(map(len, reader.batches)) > 2
    assert all(len(set(batch)) == len(batch) for batch in reader.batches)
    assert sum(map(len, reader.batches)) > len(records) // 10
    assert reader.elements >= len(lines) // 60  # called after every element
    assert function.models.prefetched == {}


def _holds_pickled(function, state) -> int:
    """Every key kept pickled is exactly what Flink holds for it (once its bucket is current
    and its write done); the number of keys checked."""
    models = function.models
    assert not set(models.pickled) & set(models.live)  # never live and pickled at once
    assert models.pickled_size == sum(
        len(packed) + live_models.PICKLED_ENTRY for packed in models.pickled.values()
    )
    assert models.pickled_size <= models.pickled_budget
    for key_id, packed in models.pickled.items():
        blob = models.pickled_envelope(key_id)
        assert len(packed) < len(blob) / 2  # compressed against another key
        state.context.key = _bucket(key_id)
        models.enter(state.context.key)
        assert envelope.opened(state.get(key_id)).__dict__["flushed"] == blob, key_id
    return len(models.pickled)


@pytest.mark.parametrize("bundle", [0, 3])
@pytest.mark.parametrize("pickled_bytes", [10**9, 6_000])
@pytest.mark.parametrize("restoring", [False, True])
@pytest.mark.parametrize("writes", [WRITE_EACH_ELEMENT, WRITE_ON_EVICTION, WRITE_AT_CHECKPOINTS])
def test_keys_kept_pickled_come_back_with_rivers_predictions(
    writes, restoring, pickled_bytes, bundle
):
    """Keys leaving memory kept pickled, up to a budget, whether PyFlink pickles its writes
    as they come or at the bundle's end: each comes back as Flink holds it, and the
    predictions (rollbacks included) are River's."""
    records, lines = _records(keys=40)
    reader = _ReadAhead()
    predictions, rejected, state, function = _run(
        lines,
        writes=writes,
        live_keys=5,
        batch=60,
        on_open=reader,
        restoring=restoring,
        pickled_bytes=pickled_bytes,
        bundle=bundle,
    )
    assert _sorted(predictions) == _expected(records)
    assert len(rejected) == len(lines) - len(records)
    reads = state.reads + sum(map(len, reader.batches))
    kept = _holds_pickled(function, state)
    if pickled_bytes == 10**9:
        assert kept == 40 - 5
        if not restoring and not bundle:  # every key that came back came from memory
            assert reads == 0
    else:
        assert 0 < kept < 30 and reads > 0


def test_a_key_written_ahead_of_its_pickling_is_read_back_whole():
    """A key that leaves memory with its write still in PyFlink's write cache, then comes
    back once its pickled copy is gone: the read hands back the sealed envelope, opened."""
    records, lines = _records(keys=40)
    predictions, _, state, function = _run(
        lines, writes=WRITE_ON_EVICTION, live_keys=5, batch=60, pickled_bytes=1, bundle=1000
    )
    assert _sorted(predictions) == _expected(records)
    assert function.models.pickled == {} and state.reads > len(records) // 10


def test_a_key_read_ahead_and_written_in_the_same_element_is_read_again_from_state():
    """Keys of one bucket read ahead, learned, pushed out of memory and seen again in the
    same element: each later record finds the model the earlier one left, not the value
    read ahead."""
    import random

    target = _bucket(json.dumps("u0"))
    same = [k for k in (f"u{i}" for i in range(5000)) if _bucket(json.dumps(k)) == target][:3]
    rng = random.Random(5)
    records = []
    for i in range(300):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        records.append({"key": same[i % 3], "id": i, **x, "y": x["f0"] > x["f1"]})
    lines = [json.dumps(r) for r in records]
    reader = _ReadAhead()
    predictions, _, _, _ = _run(
        lines, writes=WRITE_EACH_ELEMENT, live_keys=1, batch=30, on_open=reader, restoring=True
    )
    assert _sorted(predictions) == _expected(records)
    # every element: the two keys not live (the last one of the element before stays live)
    assert len(reader.batches) == 10 and all(len(b) == 2 for b in reader.batches[1:])


def _bucket(key_id: str, routing: str = SPREAD) -> int:
    if routing == SPREAD:
        return spread_bucket(json.loads(key_id), key_id, SPREAD_KEYS)
    return route_bucket(json.loads(key_id), key_id, ROUTING_BUCKETS)


def _line_bucket(line: str, routing: str) -> int:
    return _bucket(parse_line(line).key_id, routing)


@pytest.mark.parametrize("pickled_bytes", [0, 10**9])
@pytest.mark.parametrize("framing", ["list", "bytes"])
@pytest.mark.parametrize("live_keys", [1000, 5])
def test_at_each_checkpoint_marker_the_bucket_holds_every_change_before_it(
    live_keys, framing, pickled_bytes
):
    """The router sends every bucket an empty batch right ahead of each barrier; what Flink
    holds for each key then must count every record of that key that came before."""
    records, lines = _records()
    checked = []

    def checkpoint(function, context):
        for bucket in SPREAD_KEYS:  # the markers, then the barrier
            context.key = bucket
            assert list(function.process_element(_element([], framing), context)) == []
        state = context.states[ROUTINGS[SPREAD]]
        for bucket, entries in state.maps.items():
            context.key = bucket
            for key_id in entries:
                expected = function.models.live.get(key_id)
                if expected is not None:
                    assert state.get(key_id).n == expected.n, key_id
                    checked.append(key_id)

    predictions, _, state, function = _run(
        lines,
        writes=WRITE_AT_CHECKPOINTS,
        live_keys=live_keys,
        batch=50,
        on_batch=checkpoint,
        framing=framing,
        pickled_bytes=pickled_bytes,
    )
    assert _sorted(predictions) == _expected(records)
    assert len(checked) > 100
    if pickled_bytes and live_keys == 5:
        assert _holds_pickled(function, state) == 12 - 5
    if live_keys == 1000:  # nothing leaves memory: only the markers write
        assert state.writes <= 12 * (len(lines) // 50 + 1)


def test_the_live_counts_of_a_local_run_equal_flinks_counters(tmp_path, monkeypatch):
    monkeypatch.setenv(LIVE_COUNTS_ENV, str(tmp_path))
    records, lines = _records(n=600)
    predictions, rejected, _, function = _run(lines, writes=WRITE_ON_EVICTION)
    function.close()
    assert [p.name for p in tmp_path.iterdir()] == ["subtask-0-attempt-0.json"]
    counts = read_live_counts(tmp_path)
    assert counts["lines"] == len(lines)
    assert counts["predictions"] == len(predictions) == len(records)
    assert counts["rejected"] == len(lines) - len(records)
    assert counts["keys_seen"] == 12


def test_without_the_directory_no_counts_are_written(tmp_path, monkeypatch):
    monkeypatch.delenv(LIVE_COUNTS_ENV, raising=False)
    _, lines = _records(n=50)
    *_, function = _run(lines, writes=WRITE_ON_EVICTION)
    assert function.live_counts is None
    function.close()


def test_with_kinds_tagged_every_line_leaves_in_the_order_of_events():
    """``--output -``: predictions, outcomes and rejections of one batch in input order."""
    function = LearnPerKey(
        fields=Fields(),
        model_spec=MODEL,
        drift_spec="none",
        on_drift="alert",
        tag_outputs=True,
        routing=SPREAD,
    )
    context = _Context()
    function.open(context)
    lines = [
        '{"key": "k", "id": 1, "f0": 0.5}',  # a prediction, its label to come
        '{"key": "k", "id": 1, "y": true}',  # the delayed label: an outcome
        "not json",  # rejected
        '{"key": "k", "id": 2, "f0": 1.5, "y": false}',  # a labeled prediction
    ]
    context.key = _bucket(json.dumps("k"), SPREAD)
    outputs = list(function.process_element(lines, context))
    assert all(isinstance(out, str) for out in outputs)  # no side output
    kinds = [json.loads(row)["kind"] for out in outputs for row in out.split("\n")]
    assert kinds == ["prediction", "outcome", "rejected", "prediction"]


def test_keys_written_at_markers_do_not_count_towards_the_rollback_budget(monkeypatch):
    """Keys written at each checkpoint marker start their notes anew as PyFlink pickles them:
    only changes Flink has not been sent count towards the budget, so a job with
    checkpoints never pickles every live key to bound its notes."""
    monkeypatch.setattr(live_models, "ROLLBACK_BUDGET", 300)
    marked = []
    monkeypatch.setattr(envelope.KeyState, "mark_flushed", lambda self: marked.append(self))
    records, lines = _records(n=1500)

    def checkpoint(function, context):
        for bucket in SPREAD_KEYS:
            context.key = bucket
            list(function.process_element([], context))
        context.states[ROUTINGS[SPREAD]].end_bundle()

    predictions, _, _, function = _run(
        lines, writes=WRITE_AT_CHECKPOINTS, batch=50, on_batch=checkpoint, bundle=10**9
    )
    assert _sorted(predictions) == _expected(records)
    assert marked == [] and function.models._unflushed < 100
