"""Delayed labels in the pure learner: predict when features arrive, learn when the label does."""

from __future__ import annotations

import json

import pytest
from river import drift, linear_model, preprocessing

from riverflink.operators.learner import OnlineLearner, Outcome, Prediction
from riverflink.operators.records import Record, Rejected, parse_line
from riverflink.state.envelope import dumps, loads
from tests.reference import reference_run
from tests.streams import delayed_label_stream

CLASSIFIER = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"


def make_classifier():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def run(learner, records, *, clock=lambda i: float(i)):
    """Feed records through refuse + step (one state per key); outputs as JSON dicts."""
    states: dict = {}
    out = {"predictions": [], "alerts": [], "outcomes": [], "rejected": []}
    for i, data in enumerate(records):
        record = parse_line(json.dumps(data))
        assert isinstance(record, Record), record
        state = states.get(record.key_id)
        refused = learner.refuse(state, record)
        if refused is not None:
            out["rejected"].append((data, refused.error))
            continue
        state, outputs = learner.step(state, record, clock(i))
        assert state is not None, outputs
        states[record.key_id] = state
        for item in outputs:
            kind = {Prediction: "predictions", Outcome: "outcomes"}.get(type(item), "alerts")
            out[kind].append(json.loads(item.to_json()))
    return states, out


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_delayed_labels_match_plain_river(on_drift):
    records = delayed_label_stream(3000, max_delay=40)
    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", on_drift=on_drift)
    states, out = run(learner, records)

    expected = reference_run(
        records,
        make_classifier,
        make_detector=drift.ADWIN,
        on_drift=on_drift,
        detector_spec="drift.ADWIN()",
    )
    assert out["predictions"] == expected["predictions"]
    assert out["alerts"] == expected["alerts"]
    assert [{k: o[k] for k in o if k != "delay_s"} for o in out["outcomes"]] == expected["outcomes"]
    assert [data for data, _ in out["rejected"]] == expected["rejected"]
    # The stream exercises every path.
    assert len(expected["outcomes"]) > 1500
    assert len(expected["rejected"]) == 10
    assert any(a["key"] == "a" for a in out["alerts"])
    # delay_s is processing time between features and label (here: positions in the stream).
    assert all(0 <= o["delay_s"] <= 80 for o in out["outcomes"])


def test_a_pending_prediction_does_not_count_as_learned():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    features = parse_line('{"key": "a", "id": 1, "x": 1.0}')
    state, outputs = learner.step(None, features, 100.0)
    assert outputs == [Prediction("a", 1, False, None, 0)]
    assert (state.n, state.learned, list(state.pending)) == (1, 0, ["1"])

    label = parse_line('{"key": "a", "id": 1, "y": true}')
    assert label.label_only
    state, outputs = learner.step(state, label, 102.5)
    assert outputs == [Outcome("a", 1, False, True, 2.5)]
    assert (state.n, state.learned, state.pending) == (1, 1, {})


def test_the_label_teaches_the_stored_features():
    learner = OnlineLearner(model_spec="linear_model.LinearRegression()")
    state, _ = learner.step(None, parse_line('{"key": "a", "id": "t1", "x": 2.0}'), 0.0)
    state, _ = learner.step(state, parse_line('{"key": "a", "id": "t1", "y": 3.0}'), 1.0)

    model = linear_model.LinearRegression()
    model.learn_one({"x": 2.0}, 3.0)
    assert state.model.weights == model.weights


def test_the_drift_detector_scores_the_earlier_prediction():
    class Counting:
        errors: list = []

        def update(self, error):
            self.errors.append(error)

        drift_detected = False

    learner = OnlineLearner(model_spec=CLASSIFIER)
    state = learner.new_state()
    state.detector = Counting()
    state, _ = learner.step(state, parse_line('{"key": "a", "id": 1, "x": 1.0}'), 0.0)
    state, _ = learner.step(state, parse_line('{"key": "a", "id": 1, "y": true}'), 0.0)
    assert state.detector.errors == [1.0]  # predicted False, labeled True


@pytest.mark.parametrize(
    "line, reason",
    [
        ('{"key": "a", "id": 9, "y": true}', "no pending prediction for id 9 of key 'a'"),
        ('{"key": "a", "y": true}', "needs an id"),
        ('{"key": "a", "id": 1, "x": 3.0}', "already waiting for its label"),
    ],
)
def test_labels_that_cannot_be_matched_are_refused(line, reason):
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 1, "x": 1.0}'), 0.0)
    before = dumps(state)
    refused = learner.refuse(state, parse_line(line))
    assert isinstance(refused, Rejected)
    assert reason in refused.error
    assert dumps(state) == before


def test_a_label_for_a_new_key_is_refused_without_creating_it():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    refused = learner.refuse(None, parse_line('{"key": "z", "id": 1, "y": false}'))
    assert "never predicted, is already labeled, or expired" in refused.error


def test_a_second_label_for_the_same_id_is_refused():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 1, "x": 1.0}'), 0.0)
    label = parse_line('{"key": "a", "id": 1, "y": true}')
    state, _ = learner.step(state, label, 1.0)
    assert learner.refuse(state, label) is not None


def test_unsupervised_models_refuse_labels_and_keep_nothing_pending():
    learner = OnlineLearner(model_spec="anomaly.HalfSpaceTrees(seed=1)")
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 1, "x": 0.5}'), 0.0)
    assert state.pending == {} and state.learned == 1
    refused = learner.refuse(state, parse_line('{"key": "a", "id": 1, "y": true}'))
    assert "learns without labels" in refused.error


def test_ids_are_matched_by_their_json_text():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 7, "x": 1.0}'), 0.0)
    assert learner.refuse(state, parse_line('{"key": "a", "id": "7", "y": true}')) is not None
    assert learner.refuse(state, parse_line('{"key": "a", "id": 7, "y": true}')) is None


def test_features_without_an_id_are_predicted_and_not_kept():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state, outputs = learner.step(None, parse_line('{"key": "a", "x": 1.0}'), 0.0)
    assert len(outputs) == 1 and state.pending == {} and state.expiry_timer is None


def test_a_record_with_only_null_features_and_a_label_is_a_late_label():
    assert parse_line('{"key": "a", "id": 1, "x": null, "y": true}').label_only
    assert not parse_line('{"key": "a", "id": 1, "x": 0, "y": true}').label_only
    assert not parse_line('{"key": "a", "id": 1, "x": 1}').label_only


def test_expiry_drops_the_old_and_moves_the_timer():
    learner = OnlineLearner(model_spec=CLASSIFIER, label_ttl=10)
    state = None
    for i, t in enumerate([100.2, 103.0, 109.5]):
        state, _ = learner.step(state, parse_line(f'{{"key": "a", "id": {i}, "x": 1.0}}'), t)
    assert state.expiry_timer == 111_000  # the oldest is due at 110.2, rounded up

    assert learner.expire(state, 110.1) == 0
    assert learner.expire(state, 111.0) == 1
    assert list(state.pending) == ["1", "2"] and state.expiry_timer == 113_000
    assert learner.expire(state, 200.0) == 2
    assert (state.pending, state.expired, state.expiry_timer) == ({}, 3, None)


def test_a_label_within_the_ttl_is_learned_and_one_after_expiry_is_refused():
    learner = OnlineLearner(model_spec=CLASSIFIER, label_ttl=5)
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 1, "x": 1.0}'), 0.0)
    state, _ = learner.step(state, parse_line('{"key": "a", "id": 2, "x": 1.0}'), 4.0)
    learner.expire(state, 6.0)
    assert learner.refuse(state, parse_line('{"key": "a", "id": 1, "y": true}')) is not None
    assert learner.refuse(state, parse_line('{"key": "a", "id": 2, "y": true}')) is None


def test_pending_predictions_survive_the_envelope():
    learner = OnlineLearner(model_spec=CLASSIFIER, label_ttl=60)
    state, _ = learner.step(None, parse_line('{"key": "a", "id": 1, "x": 1.0}'), 5.0)
    state = loads(dumps(state))
    state, outputs = learner.step(state, parse_line('{"key": "a", "id": 1, "y": true}'), 6.0)
    assert outputs == [Outcome("a", 1, False, True, 1.0)]


def test_outcome_json_fields():
    line = Outcome("a", 3, 0.25, 1.0, 12.34567).to_json()
    assert list(json.loads(line)) == ["key", "id", "y_pred", "y_true", "delay_s"]
    assert json.loads(line)["delay_s"] == 12.346
    assert json.loads(Outcome("a", 3, True, True, 0.0).to_json(kind=True))["kind"] == "outcome"


def test_label_ttl_must_be_positive():
    with pytest.raises(ValueError, match="label_ttl"):
        OnlineLearner(model_spec=CLASSIFIER, label_ttl=0)
