"""OnlineLearner.step: per key, predict first, then drift check, then learn."""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from river import anomaly, cluster, drift, linear_model, metrics, preprocessing, tree

from riverflink.operators.learner import DriftAlert, OnlineLearner, Prediction
from riverflink.operators.records import Fields, Record, Rejected, parse_line
from tests.reference import reference_predictions

CLASSIFIER = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
REGRESSOR = "preprocessing.StandardScaler() | linear_model.LinearRegression()"
DEFAULT_FIELDS = Fields()


def rec(key="a", y=None, id=None, **x) -> Record:
    return Record(key=key, key_id=json.dumps(key), id=id, x=x, y=y, raw=json.dumps(x))


def run(learner: OnlineLearner, lines, fields: Fields = DEFAULT_FIELDS):
    """Feed JSON lines through parse_line and step, one state per key; outputs as JSON dicts."""
    states, predictions, alerts = {}, [], []
    for line in lines:
        record = parse_line(line, fields)
        assert isinstance(record, Record), record
        state, outputs = learner.step(states.get(record.key_id), record)
        assert state is not None, outputs
        states[record.key_id] = state
        for out in outputs:
            assert isinstance(out, (Prediction, DriftAlert)), out
            target = predictions if isinstance(out, Prediction) else alerts
            target.append(json.loads(out.to_json()))
    return states, predictions, alerts


# --- streams ----------------------------------------------------------------------------------


def classification_stream(n=2000, flip_key="a", seed=7):
    """Two interleaved keys; the label of ``flip_key`` flips halfway through."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        key = rng.choice("ab")
        x1, x2 = rng.uniform(-1, 1), rng.uniform(-1, 1)
        y = x1 + 0.5 * x2 > 0
        if key == flip_key and i >= n // 2:
            y = not y
        lines.append(json.dumps({"key": key, "id": i, "x1": x1, "x2": x2, "y": y}))
    return lines


def regression_stream(n=2000, shift_key="b", seed=11):
    """Two interleaved keys; ``shift_key`` changes its target function halfway through."""
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        key = rng.choice("ab")
        x1, x2 = rng.uniform(0, 1), rng.uniform(0, 1)
        y = 3 * x1 - 2 * x2 + rng.gauss(0, 0.05)
        if key == shift_key and i >= n // 2:
            y = -8 * x1 + 10 + rng.gauss(0, 0.05)
        lines.append(json.dumps({"key": key, "id": i, "x1": x1, "x2": x2, "y": y}))
    return lines


def unit_box_stream(n=400, seed=3):
    rng = random.Random(seed)
    return [
        json.dumps(
            {"key": rng.choice(["a", 7, "7"]), "id": i, "x1": rng.random(), "x2": rng.random()}
        )
        for i in range(n)
    ]


# --- against plain River ----------------------------------------------------------------------


def make_classifier():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def make_regressor():
    return preprocessing.StandardScaler() | linear_model.LinearRegression()


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_classifier_with_adwin_matches_plain_river(on_drift):
    lines = classification_stream()
    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", on_drift=on_drift)
    states, predictions, alerts = run(learner, lines)

    expected = reference_predictions(
        [json.loads(line) for line in lines],
        make_classifier,
        make_detector=drift.ADWIN,
        on_drift=on_drift,
        detector_spec="drift.ADWIN()",
    )
    assert (predictions, alerts) == expected
    assert len(predictions) == len(lines)
    # The flip is detected on the key whose labels flipped, after the flip.
    assert any(a["key"] == "a" and a["id"] >= len(lines) // 2 for a in alerts)
    assert all(a["action"] == on_drift and a["detector"] == "drift.ADWIN()" for a in alerts)
    assert states['"a"'].alerts == sum(a["key"] == "a" for a in alerts)


def test_reset_changes_what_follows_a_drift():
    lines = classification_stream()
    runs = {
        on_drift: run(
            OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", on_drift=on_drift),
            lines,
        )
        for on_drift in ("alert", "reset")
    }
    first_alert = runs["alert"][2][0]
    assert runs["reset"][2][0] == {**first_alert, "action": "reset"}
    # Up to and including the first alert both runs agree; afterwards the reset model differs.
    cut = first_alert["id"] + 1
    assert runs["alert"][1][:cut] == runs["reset"][1][:cut]
    assert runs["alert"][1][cut:] != runs["reset"][1][cut:]


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_regressor_with_page_hinkley_matches_plain_river(on_drift):
    lines = regression_stream()
    learner = OnlineLearner(
        model_spec=REGRESSOR, drift_spec="drift.PageHinkley()", on_drift=on_drift
    )
    _, predictions, alerts = run(learner, lines, Fields(numeric_target=True))

    expected = reference_predictions(
        [json.loads(line) for line in lines],
        make_regressor,
        make_detector=drift.PageHinkley,
        on_drift=on_drift,
        kind="regressor",
        detector_spec="drift.PageHinkley()",
    )
    assert (predictions, alerts) == expected
    assert any(a["key"] == "b" and a["id"] >= len(lines) // 2 for a in alerts)


@pytest.mark.parametrize(
    "spec, make_model, kind",
    [
        ("anomaly.HalfSpaceTrees(seed=42)", lambda: anomaly.HalfSpaceTrees(seed=42), "anomaly"),
        (
            "cluster.KMeans(n_clusters=2, seed=1)",
            lambda: cluster.KMeans(n_clusters=2, seed=1),
            "clusterer",
        ),
    ],
)
def test_unsupervised_models_match_plain_river(spec, make_model, kind):
    lines = unit_box_stream()
    states, predictions, alerts = run(
        OnlineLearner(model_spec=spec, drift_spec="drift.ADWIN()"), lines
    )
    expected = reference_predictions(
        [json.loads(line) for line in lines], make_model, make_detector=drift.ADWIN, kind=kind
    )
    assert (predictions, alerts) == expected
    assert alerts == []
    # 7 and "7" are two keys, each with its own model.
    assert set(states) == {'"a"', "7", '"7"'}
    for state in states.values():
        assert state.detector is None  # drift needs labels
        assert state.learned == state.n > 0


# --- step semantics ---------------------------------------------------------------------------


def test_prediction_comes_before_learning():
    learner = OnlineLearner(model_spec="linear_model.LinearRegression()")
    state, outs = learner.step(None, rec(x=1.0, y=2.0))
    assert outs == [Prediction("a", None, 0.0, 2.0, 0)]
    state, outs = learner.step(state, rec(x=1.0, y=2.0))
    assert outs[0].y_pred > 0.0
    assert (state.n, state.learned) == (2, 2)


def test_n_counts_earlier_records_of_the_key():
    learner = OnlineLearner(model_spec=CLASSIFIER)
    state = None
    for i in range(5):
        state, outs = learner.step(state, rec(id=i, x=float(i), y=i % 2 == 0))
        assert outs[0].n == i and outs[0].id == i
    assert state.n == 5


def test_unlabeled_records_are_predicted_but_not_learned():
    learner = OnlineLearner(
        model_spec="linear_model.LinearRegression()", drift_spec="drift.ADWIN()"
    )
    state, _ = learner.step(None, rec(x=1.0, y=4.0))
    before = state.model.predict_one({"x": 1.0})
    detector_width = state.detector.width
    state, outs = learner.step(state, rec(x=1.0))
    assert outs == [Prediction("a", None, before, None, 1)]
    assert state.model.predict_one({"x": 1.0}) == before
    assert state.detector.width == detector_width
    assert (state.n, state.learned) == (2, 1)


def test_each_key_state_starts_from_an_untrained_clone():
    learner = OnlineLearner(model_spec="linear_model.LinearRegression()")
    a, _ = learner.step(None, rec("a", x=1.0, y=5.0))
    a, _ = learner.step(a, rec("a", x=1.0, y=5.0))
    b, outs = learner.step(None, rec("b", x=1.0, y=5.0))
    assert outs[0].y_pred == 0.0 and outs[0].n == 0
    assert a.model is not b.model is not learner.prototype
    assert learner.prototype.predict_one({"x": 1.0}) == 0.0


def test_detector_is_not_fed_when_the_prediction_is_none():
    learner = OnlineLearner(model_spec="tree.HoeffdingTreeClassifier()", drift_spec="drift.ADWIN()")
    state, outs = learner.step(None, rec(x=1.0, y="cat"))
    assert outs[0].y_pred is None
    assert state.detector.width == 0
    state, outs = learner.step(state, rec(x=1.0, y="cat"))
    assert outs[0].y_pred == "cat"
    assert state.detector.width == 1


@pytest.mark.parametrize("y, error", [("cat", 0.0), ("dog", 1.0)])
def test_classifier_error_is_zero_or_one(y, error):
    learner = OnlineLearner(model_spec="tree.HoeffdingTreeClassifier()", drift_spec="drift.ADWIN()")
    state, _ = learner.step(None, rec(x=1.0, y="cat"))
    state, _ = learner.step(state, rec(x=1.0, y=y))
    assert state.detector.estimation == error


def test_regressor_error_is_absolute_difference():
    learner = OnlineLearner(
        model_spec="linear_model.LinearRegression()", drift_spec="drift.ADWIN()"
    )
    state, outs = learner.step(None, rec(x=1.0, y=-3.0))
    assert outs[0].y_pred == 0.0
    assert state.detector.estimation == 3.0


class _DriftOnSecondUpdate:
    """Stands in for a detector: drift on the second error it sees."""

    def __init__(self):
        self.errors = []

    def update(self, error):
        self.errors.append(error)

    @property
    def drift_detected(self):
        return len(self.errors) == 2


def test_reset_swaps_in_a_fresh_clone_that_learns_the_drifting_record():
    learner = OnlineLearner(
        model_spec="linear_model.LinearRegression()", drift_spec="drift.ADWIN()", on_drift="reset"
    )
    state = learner.new_state()
    state.detector = _DriftOnSecondUpdate()
    state, _ = learner.step(state, rec(id=1, x=1.0, y=10.0))
    old_model = state.model
    state, outs = learner.step(state, rec(id=2, x=2.0, y=-1.0))
    mae = metrics.MAE()
    mae.update(10.0, 0.0)
    mae.update(-1.0, outs[0].y_pred)
    assert outs[1] == DriftAlert("a", 2, 1, "drift.ADWIN()", "reset", mae.get())
    assert state.model is not old_model
    fresh = linear_model.LinearRegression()
    fresh.learn_one({"x": 2.0}, -1.0)
    assert state.model.predict_one({"x": 3.0}) == fresh.predict_one({"x": 3.0})
    assert (state.n, state.learned, state.alerts) == (2, 2, 1)


def test_alert_only_keeps_the_model():
    learner = OnlineLearner(
        model_spec="linear_model.LinearRegression()", drift_spec="drift.ADWIN()", on_drift="alert"
    )
    state = learner.new_state()
    state.detector = _DriftOnSecondUpdate()
    state, _ = learner.step(state, rec(id=1, x=1.0, y=10.0))
    old_model = state.model
    state, outs = learner.step(state, rec(id=2, x=2.0, y=-1.0))
    mae = metrics.MAE()
    mae.update(10.0, 0.0)
    mae.update(-1.0, outs[0].y_pred)
    assert outs[1] == DriftAlert("a", 2, 1, "drift.ADWIN()", "alert", mae.get())
    assert state.model is old_model


@pytest.mark.parametrize(
    "spec", ["anomaly.HalfSpaceTrees(seed=42)", "cluster.KMeans(n_clusters=2, seed=1)"]
)
def test_unsupervised_models_learn_from_every_record(spec):
    learner = OnlineLearner(model_spec=spec, drift_spec="drift.ADWIN()")
    state = None
    for i in range(3):
        state, outs = learner.step(state, rec(x=0.5, y=1 if i else None))
        assert outs[0].y_true == (1 if i else None)
    assert outs[0].n == 2
    assert (state.n, state.learned, state.detector) == (3, 3, None)


def test_anomaly_detector_reports_score_one():
    learner = OnlineLearner(model_spec="anomaly.HalfSpaceTrees(seed=42)")
    plain = anomaly.HalfSpaceTrees(seed=42)
    state = None
    rng = random.Random(0)
    for _ in range(300):
        x = {"x": rng.random()}
        state, outs = learner.step(state, rec(**x))
        assert outs[0].y_pred == plain.score_one(x)
        plain.learn_one(x)
    assert outs[0].y_pred > 0


# --- failures ---------------------------------------------------------------------------------


def test_a_record_the_model_raises_on_is_rejected_and_leaves_the_key_untouched():
    learner = OnlineLearner(model_spec="linear_model.LinearRegression()")
    state, _ = learner.step(None, rec(x=1.0, y=2.0))
    bad = parse_line('{"key": "a", "x": "abc", "y": 2.0}', Fields(numeric_target=True))
    new_state, outs = learner.step(state, bad)
    assert new_state is None
    assert len(outs) == 1 and isinstance(outs[0], Rejected)
    assert outs[0].raw == '{"key": "a", "x": "abc", "y": 2.0}'
    assert "TypeError" in outs[0].error
    assert "can't multiply sequence" in outs[0].error
    assert (state.n, state.learned) == (1, 1)


def test_a_regressor_given_a_string_label_is_rejected():
    learner = OnlineLearner(
        model_spec="linear_model.LinearRegression()", drift_spec="drift.ADWIN()"
    )
    state, outs = learner.step(None, rec(x=1.0, y="high"))
    assert state is None and isinstance(outs[0], Rejected)
    assert "model raised" in outs[0].error


def test_binary_detector_with_a_regressor_is_refused():
    with pytest.raises(ValueError, match="0/1"):
        OnlineLearner(model_spec="linear_model.LinearRegression()", drift_spec="drift.binary.DDM()")


def test_binary_detector_with_a_classifier_is_fine():
    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.binary.DDM()")
    state, _ = learner.step(None, rec(x=1.0, y=True))
    assert state.detector is not None


def test_on_drift_must_be_alert_or_reset():
    with pytest.raises(ValueError, match="on_drift"):
        OnlineLearner(model_spec=CLASSIFIER, on_drift="retrain")


# --- JSON output ------------------------------------------------------------------------------


def test_prediction_json_fields():
    out = Prediction("a", 3, 0.25, 1.0, 4)
    assert list(json.loads(out.to_json())) == ["key", "id", "y_pred", "y_true", "n"]
    tagged = json.loads(out.to_json(kind=True))
    assert tagged == {
        "kind": "prediction",
        "key": "a",
        "id": 3,
        "y_pred": 0.25,
        "y_true": 1.0,
        "n": 4,
    }
    assert list(tagged)[0] == "kind"


def test_alert_json_fields():
    out = DriftAlert(7, "e1", 12, "drift.ADWIN()", "reset", 0.75)
    assert json.loads(out.to_json()) == {
        "key": 7,
        "id": "e1",
        "n": 12,
        "detector": "drift.ADWIN()",
        "action": "reset",
        "metric": 0.75,
    }
    assert list(json.loads(out.to_json())) == ["key", "id", "n", "detector", "action", "metric"]
    assert list(json.loads(out.to_json(kind=True))) == [
        "kind",
        "key",
        "id",
        "n",
        "detector",
        "action",
        "metric",
    ]
    assert json.loads(out.to_json(kind=True))["kind"] == "alert"


@pytest.mark.parametrize(
    "y_pred, expected",
    [
        (np.float64(0.5), 0.5),
        (np.float32(0.25), 0.25),
        (np.int64(3), 3),
        (np.bool_(True), True),
        (float("nan"), None),
        (float("inf"), None),
        (float("-inf"), None),
        (np.float64("nan"), None),
        ({"a": np.float64(0.5), True: 0.5}, {"a": 0.5, "True": 0.5}),
        (None, None),
        ("label", "label"),
    ],
)
def test_prediction_json_is_safe(y_pred, expected):
    text = Prediction("a", None, y_pred, None, 0).to_json()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in {text}"))
    assert json.loads(text)["y_pred"] == expected
    if isinstance(expected, float):
        assert math.isfinite(json.loads(text)["y_pred"])


def test_the_hoeffding_tree_runs_through_the_learner_too():
    lines = classification_stream(n=400)
    _, predictions, _ = run(
        OnlineLearner(model_spec="tree.HoeffdingTreeClassifier()", drift_spec="drift.ADWIN()"),
        lines,
    )
    expected, _ = reference_predictions(
        [json.loads(line) for line in lines],
        tree.HoeffdingTreeClassifier,
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
    )
    assert predictions == expected


@pytest.mark.parametrize(
    "spec",
    [CLASSIFIER, "forest.ARFClassifier(n_models=3, seed=3)", "anomaly.HalfSpaceTrees(seed=42)"],
)
def test_new_keys_get_independent_models_that_act_as_fresh_clones(spec):
    """A new key's parts are built from the specs: as River's clone() builds them, faster."""
    learner = OnlineLearner(model_spec=spec, drift_spec="drift.ADWIN()")
    first, second = learner.new_state(), learner.new_state()
    assert first.model is not second.model
    clone = learner.prototype.clone()
    rng = random.Random(4)
    for _ in range(300):
        x = {"x1": rng.random(), "x2": rng.random()}
        if learner.kind == "anomaly":
            assert first.model.score_one(x) == clone.score_one(x)
            first.model.learn_one(x)
            clone.learn_one(x)
        else:
            assert first.model.predict_one(x) == clone.predict_one(x)
            first.model.learn_one(x, x["x1"] > x["x2"])
            clone.learn_one(x, x["x1"] > x["x2"])
    x = {"x1": 0.3, "x2": 0.9}  # the other key learned nothing
    if learner.kind == "anomaly":
        assert second.model.score_one(x) == learner.prototype.clone().score_one(x)
    else:
        assert second.model.predict_one(x) == learner.prototype.clone().predict_one(x)


def test_new_keys_get_their_own_detector_and_metric():
    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()")
    first, second = learner.new_state(), learner.new_state()
    detections = 0
    for i in range(2000):
        first.detector.update(float(i > 1000))
        detections += first.detector.drift_detected
        first.metric.update(True, i % 2 == 0)
    assert detections > 0 and first.detector.width > 0
    assert second.detector.width == learner.detector_prototype.width == 0
    assert first.metric.get() == 0.5
    assert second.metric.get() == learner.metric_prototype.get() == 0.0


def test_prediction_lines_are_the_json_encoders_own():
    import math
    import random

    from riverflink.operators.results import Prediction, json_text, jsonable

    rng = random.Random(3)
    values = [
        "k1", "", 'a"b', "a\\b", "é", "\x00", "\x7f", "日本", 0, -5, 2**70, True, False, None,
        0.1, -0.0, 1e-320, 1.7976931348623157e308, math.inf, -math.inf, math.nan,
    ]  # fmt: skip
    for value in values:
        assert json_text(value) == json.dumps(value)
    for _ in range(3000):
        prediction = Prediction(*(rng.choice(values) for _ in range(4)), n=rng.randint(0, 10**9))
        expected = json.dumps(
            {
                "key": prediction.key,
                "id": prediction.id,
                "y_pred": jsonable(prediction.y_pred),
                "y_true": prediction.y_true,
                "n": prediction.n,
            }
        )
        assert prediction.to_json() == expected
