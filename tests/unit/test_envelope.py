"""The state envelope: header + pickle, a faithful round trip, and loud failures."""

from __future__ import annotations

import json
import pickle
import random
import re

import pytest
import river
from river import drift, linear_model, metrics

from riverflink.config.settings import DEFAULT_DRIFT, DEFAULT_MODEL
from riverflink.operators.learner import OnlineLearner
from riverflink.operators.records import Fields, parse_line
from riverflink.state.envelope import (
    FORMAT_VERSION,
    KeyState,
    StateFormatError,
    dumps,
    loads,
    read_header,
)

MODELS = [
    (DEFAULT_MODEL, "classifier"),
    ("tree.HoeffdingTreeClassifier()", "classifier"),
    ("linear_model.LinearRegression()", "regressor"),
    ("anomaly.HalfSpaceTrees(seed=42)", "unsupervised"),
    ("cluster.KMeans(n_clusters=2, seed=1)", "unsupervised"),
]


def records(kind: str, n: int, seed: int = 5) -> list:
    rng = random.Random(seed)
    fields = Fields(numeric_target=kind == "regressor")
    out = []
    for i in range(n):
        x1, x2 = rng.random(), rng.random()
        row = {"key": "k", "id": i, "x1": x1, "x2": x2}
        if kind == "classifier":
            row["y"] = (x1 > x2) != (i > n // 2)  # the concept flips: the detector has work
        elif kind == "regressor":
            row["y"] = 4 * x1 - x2 if i < n // 2 else -6 * x1
        out.append(parse_line(json.dumps(row), fields))
    return out


def outputs_as_json(learner, state, stream):
    texts = []
    for record in stream:
        state, outs = learner.step(state, record)
        texts += [out.to_json() for out in outs]
    return state, texts


@pytest.mark.parametrize("spec, kind", MODELS, ids=[spec for spec, _ in MODELS])
def test_round_trip_gives_identical_predictions(spec, kind):
    drift_spec = DEFAULT_DRIFT if kind != "regressor" else "drift.PageHinkley()"
    learner = OnlineLearner(model_spec=spec, drift_spec=drift_spec)
    stream = records(kind, 600)
    state, _ = outputs_as_json(learner, None, stream[:300])

    restored = loads(dumps(state))

    assert (restored.n, restored.learned, restored.alerts) == (state.n, state.learned, state.alerts)
    assert (restored.model_spec, restored.drift_spec) == (spec, drift_spec)
    assert restored.model is not state.model
    _, original_out = outputs_as_json(learner, state, stream[300:])
    _, restored_out = outputs_as_json(learner, restored, stream[300:])
    assert restored_out == original_out
    assert len(original_out) >= 300


def test_detector_state_is_preserved():
    learner = OnlineLearner(model_spec=DEFAULT_MODEL, drift_spec="drift.ADWIN()")
    stream = records("classifier", 1000)
    state, _ = outputs_as_json(learner, None, stream[:400])
    assert state.detector.width > 0

    restored = loads(dumps(state))

    for attr in ("width", "estimation", "variance", "n_detections", "total"):
        assert getattr(restored.detector, attr) == getattr(state.detector, attr), attr
    state, original = outputs_as_json(learner, state, stream[400:])
    restored, after_restore = outputs_as_json(learner, restored, stream[400:])
    assert after_restore == original
    assert any('"detector": "drift.ADWIN()"' in line for line in original)  # it did fire
    assert restored.alerts == state.alerts > 0


def test_a_plain_detector_round_trips_on_its_own():
    detector = drift.ADWIN(delta=0.01)
    for i in range(500):
        detector.update(float(i % 3 == 0) + (i > 250))
    state = KeyState(linear_model.LinearRegression(), detector, "m", "d", n=500, learned=500)
    restored = loads(dumps(state)).detector
    assert (restored.delta, restored.width, restored.estimation) == (
        0.01,
        detector.width,
        detector.estimation,
    )


def test_header_is_readable_without_unpickling():
    state = KeyState(
        linear_model.LinearRegression(), None, "linear_model.LinearRegression()", "none", n=3
    )
    state.metric, state.metric_spec = metrics.MAE(), "metrics.MAE()"
    blob = dumps(state)
    assert blob.startswith(b"RFLK")
    assert read_header(blob) == {
        "format": FORMAT_VERSION,
        "river": river.__version__,
        "model": "linear_model.LinearRegression()",
        "drift": "none",
        "metric": "metrics.MAE()",
    }
    back = loads(blob)
    assert (back.metric_spec, type(back.metric)) == ("metrics.MAE()", metrics.MAE)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_loads_accepts_any_bytes_like(wrap):
    blob = dumps(KeyState(linear_model.LinearRegression(), None, "lr", "none", n=2, alerts=1))
    state = loads(wrap(blob))
    assert (state.n, state.learned, state.alerts, state.model_spec) == (2, 0, 1, "lr")


# --- failures ---------------------------------------------------------------------------------


def _blob(header: dict, payload: bytes) -> bytes:
    return b"RFLK" + json.dumps(header).encode() + b"\n" + payload


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"RFLK",
        b"XXXX" + dumps(KeyState(None, None, "m", "d"))[4:],
        pickle.dumps((None, None, 0, 0, 0)),
        b'{"format": 1}\n',
        b"RFLK{not json}\nrest",
    ],
    ids=["empty", "magic-only", "wrong-magic", "bare-pickle", "no-magic", "bad-header"],
)
def test_foreign_bytes_are_refused(blob):
    with pytest.raises(StateFormatError):
        loads(blob)


def test_wrong_magic_says_it_is_not_an_envelope():
    with pytest.raises(StateFormatError, match="not a riverflink state envelope"):
        read_header(b"PK\x03\x04 something else\n")


def test_a_newer_format_is_refused_naming_both_versions():
    payload = pickle.dumps((None, None, 0, 0, 0))
    blob = _blob({"format": 4, "river": "9.9.9", "model": "m", "drift": "d"}, payload)
    with pytest.raises(StateFormatError) as info:
        loads(blob)
    message = str(info.value)
    assert re.search(r"format\D*\b4\b", message), message
    assert re.search(r"formats 1, 2, 3\b", message), message
    assert "9.9.9" in message


def test_format_2_is_read_with_no_feature_detectors():
    """State written before --feature-drift existed resumes with every field it had."""
    model = linear_model.LinearRegression()
    model.learn_one({"x": 1.0}, 2.0)
    payload = pickle.dumps((model, None, 7, 6, 1, 123.5, {"1": ({}, 0.5, 9.0)}, 2, 10_000, None))
    blob = _blob({"format": 2, "river": river.__version__, "model": "m", "drift": "d"}, payload)
    state = loads(blob)
    assert (state.n, state.learned, state.alerts, state.expired, state.expiry_timer) == (
        7,
        6,
        1,
        2,
        10_000,
    )
    assert state.pending == {"1": ({}, 0.5, 9.0)}
    assert state.feature_detectors == {}
    assert state.model.predict_one({"x": 1.0}) == model.predict_one({"x": 1.0})


def test_format_1_is_read_with_no_pending_labels():
    """State written before delayed labels existed resumes as it was, with nothing pending."""
    model = linear_model.LinearRegression()
    model.learn_one({"x": 1.0}, 2.0)
    payload = pickle.dumps((model, None, 7, 6, 1, 123.5))
    blob = _blob({"format": 1, "river": river.__version__, "model": "m", "drift": "d"}, payload)
    state = loads(blob)
    assert (state.n, state.learned, state.alerts, state.last_seen) == (7, 6, 1, 123.5)
    assert (state.pending, state.expired, state.expiry_timer) == ({}, 0, None)
    assert state.feature_detectors == {}
    assert state.model.predict_one({"x": 1.0}) == model.predict_one({"x": 1.0})


def test_pending_labels_survive_the_round_trip():
    state = KeyState(linear_model.LinearRegression(), None, "m", "d", n=2, expired=3)
    state.pending = {"1": ({"x": 1.0}, 0.0, 10.0), '"b"': ({"x": 2.0}, 0.5, 11.0)}
    state.expiry_timer = 96_411_000
    back = loads(dumps(state))
    assert back.pending == state.pending
    assert list(back.pending) == ["1", '"b"']  # oldest first
    assert (back.expired, back.expiry_timer) == (3, 96_411_000)


@pytest.mark.parametrize("payload", [b"garbage", b"\x80\x05garbage", pickle.dumps((1, 2))])
def test_a_corrupt_pickle_is_refused_naming_river_versions(payload):
    blob = _blob({"format": FORMAT_VERSION, "river": "0.19.0", "model": "m", "drift": "d"}, payload)
    with pytest.raises(StateFormatError) as info:
        loads(blob)
    message = str(info.value)
    assert "0.19.0" in message
    assert river.__version__ in message


def test_a_truncated_envelope_is_refused():
    blob = dumps(KeyState(linear_model.LinearRegression(), drift.ADWIN(), "m", "d"))
    with pytest.raises(StateFormatError):
        loads(blob[: len(blob) - 20])


def test_pickling_a_key_state_writes_the_versioned_envelope():
    """Flink pickles the state object itself; what lands in the checkpoint is the envelope."""

    from riverflink.state.envelope import rollback

    learner = OnlineLearner(model_spec=DEFAULT_MODEL, drift_spec=DEFAULT_DRIFT)
    state = None
    records = [parse_line(json.dumps({"key": "a", "x": i % 5, "y": i % 2 == 0})) for i in range(30)]
    for record in records[:20]:
        state, _ = learner.step(state, record)
    blob = pickle.dumps(state)
    assert b"RFLK" in blob
    restored = pickle.loads(blob)
    assert restored.n == 20 and restored.flushed.startswith(b"RFLK")

    # records after the flush are remembered; rollback replays them onto the flushed state
    for record in records[20:25]:
        state, _ = learner.step(state, record)
        state.remember(record)
    again = rollback(state, lambda s, r: learner.step(s, r)[0])
    assert again.n == 25
    probe = {"x": 3}
    assert again.model.predict_proba_one(probe) == state.model.predict_proba_one(probe)


def test_a_sealed_envelope_is_stored_as_the_key_state_itself():
    """A key written as its envelope made ahead gives Flink the very bytes the KeyState
    would, and reads back as the same key."""
    from riverflink.state.envelope import Sealed, current, opened, sealed

    model = linear_model.LogisticRegression()
    model.learn_one({"a": 1.0}, True)
    state = KeyState(model, None, "linear_model.LogisticRegression()", "none", n=4, learned=3)
    state.remember("line")
    assert current(state) is None  # changed since its envelope was last made
    wrapped = sealed(state)
    assert current(state) == wrapped.blob and current(state) == dumps(state)
    assert pickle.dumps(wrapped) == pickle.dumps(state)
    back = pickle.loads(pickle.dumps(wrapped))
    assert (back.n, back.learned, back.model.weights) == (4, 3, model.weights)
    assert opened(Sealed(wrapped.blob)).n == 4 and opened(state) is state and opened(None) is None
    state.remember("another")
    assert current(state) is None
