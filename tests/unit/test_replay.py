"""riverflink.replay: the job's output lines in plain Python, compared with plain River."""

from __future__ import annotations

import json
import re

import pytest
from river import drift, linear_model, preprocessing

import riverflink
from riverflink.config.settings import JobSettings, SettingsError
from tests.reference import reference_run
from tests.streams import delayed_label_stream

CLASSIFIER = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
KINDS = {"prediction": "predictions", "alert": "alerts", "outcome": "outcomes"}


def make_classifier():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def by_kind(rows) -> dict:
    out = {"predictions": [], "alerts": [], "outcomes": [], "rejected": []}
    for row in rows:
        kind = row.pop("kind")
        out[KINDS.get(kind, "rejected")].append(row)
    return out


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_replay_equals_plain_river_with_delayed_labels(on_drift):
    records = delayed_label_stream(3000, max_delay=40)
    out = by_kind(riverflink.replay(records, model=CLASSIFIER, on_drift=on_drift))
    want = reference_run(
        records,
        make_classifier,
        make_detector=drift.ADWIN,
        on_drift=on_drift,
        detector_spec="drift.ADWIN()",
    )
    assert out["predictions"] == want["predictions"]
    assert out["alerts"] == want["alerts"] and out["alerts"]
    assert [{k: v for k, v in o.items() if k != "delay_s"} for o in out["outcomes"]] == want[
        "outcomes"
    ]
    assert [json.loads(r["raw"]) for r in out["rejected"]] == want["rejected"]
    assert len(want["rejected"]) == 10 and len(want["outcomes"]) > 1500


def test_kind_comes_first_and_lines_keep_their_order():
    lines = [
        '{"key": "a", "id": 1, "x": 1.0}',
        "not json",
        '{"key": "a", "id": 1, "y": 2.0}',
        '{"key": "a", "x": 3.0, "y": 1.0}',
    ]
    rows = list(riverflink.replay(lines, model="linear_model.LinearRegression()", drift="none"))
    assert [next(iter(row)) for row in rows] == ["kind"] * 4
    assert [row["kind"] for row in rows] == ["prediction", "rejected", "outcome", "prediction"]
    assert rows[1] == {
        "kind": "rejected",
        "raw": "not json",
        "error": "invalid JSON: Expecting value: line 1 column 1 (char 0)",
    }
    assert rows[3]["n"] == 1


def test_str_bytes_and_dicts_give_the_same_lines():
    records = [{"key": "ü€", "x": i * 0.5, "y": i % 2 == 0} for i in range(40)]
    as_text = [json.dumps(r, ensure_ascii=False) for r in records]
    as_bytes = [line.encode() for line in as_text]
    one_text = "\r\n".join(as_text) + "\n"  # a whole file's text at once
    results = [
        list(riverflink.replay(items, model="linear_model.LogisticRegression()"))
        for items in (records, as_text, as_bytes, [one_text])
    ]
    assert len(results[0]) == 40
    assert all(result == results[0] for result in results[1:])
    assert results[0][0]["key"] == "ü€"


def test_what_the_job_would_reject_is_rejected_with_its_reason():
    rows = list(
        riverflink.replay(
            [
                b'{"key": "a", "x": 1.0, "y": \xff}',  # not UTF-8
                {"key": "a", "x": float("nan"), "y": True},
                {"key": "a", "x": object()},
            ]
        )
    )
    assert [row["kind"] for row in rows] == ["rejected"] * 3
    assert "UTF-8" in rows[0]["error"]
    assert rows[1]["error"] == "non-finite number NaN is not allowed"
    assert rows[2]["error"].startswith("not a JSON record: Object of type object")


def test_bad_options_raise_the_clis_message_at_once():
    with pytest.raises(ValueError) as replayed:
        riverflink.replay([], on_drift="retrain")  # before any line is asked for
    with pytest.raises(SettingsError) as cli:
        JobSettings(source=".", output="-", on_drift="retrain")
    assert str(replayed.value) == str(cli.value)
    with pytest.raises(ValueError, match="linear_model.Nope"):
        riverflink.replay([], model="linear_model.Nope()")
    with pytest.raises(ValueError, match="--label-ttl"):
        riverflink.replay([], label_ttl=0)
    with pytest.raises(ValueError, match="--features"):
        riverflink.replay([], features=["key"])
    with pytest.raises(TypeError, match="unexpected keyword argument 'modle'"):
        riverflink.replay([], modle="x")


def test_learn_checks_its_options_before_it_touches_the_stream():
    """``lines`` is never looked at when an option is bad: no JVM is needed to find out."""
    with pytest.raises(ValueError, match="--key, --id and --target must name different"):
        riverflink.learn(None, key="id")
    with pytest.raises(ValueError, match="--profile"):
        riverflink.learn(None, profile="fast")


def test_anything_else_is_a_type_error():
    with pytest.raises(TypeError, match="JSON lines .str or bytes. or dicts, not int"):
        list(riverflink.replay([1]))


def test_features_the_state_ttl_and_fields_are_the_clis():
    lines = [{"user": "u1", "event": 5, "a": 1.0, "b": 100.0, "label": True}] * 3
    rows = list(
        riverflink.replay(lines, key="user", id="event", target="label", features="a", drift="none")
    )
    assert [(r["key"], r["id"], r["n"]) for r in rows] == [("u1", 5, 0), ("u1", 5, 1), ("u1", 5, 2)]
    plain = linear_model.LogisticRegression()
    for row in rows:
        assert row["y_pred"] == plain.predict_one({"a": 1.0})
        plain.learn_one({"a": 1.0}, True)


def _semi_supervised(n: int = 3000) -> list:
    """Labeled records, and records with neither label nor id (nothing can label them)."""
    import random

    rng = random.Random(17)
    out = []
    for i in range(n):
        key = ("a", "b", "c")[i % 3]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        y = 4 * x["f0"] + x["f1"] > 0  # separable: the model grows confident
        out.append({"key": key, **x, "y": y} if rng.random() < 0.2 else {"key": key, **x})
    return out


CONFIDENT = "preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.5))"


def make_confident():
    from river import optim

    return preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.5))


@pytest.mark.parametrize("threshold", [0.9, 0.7])
def test_pseudo_labels_follow_the_rule_prediction_by_prediction(threshold):
    records = _semi_supervised()
    rows = by_kind(riverflink.replay(records, model=CONFIDENT, pseudo_label=threshold))
    want = reference_run(
        records,
        make_confident,
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
        pseudo_label=threshold,
    )
    assert rows["predictions"] == want["predictions"]
    assert rows["alerts"] == want["alerts"]
    pseudo = [r for r in rows["predictions"] if r.get("pseudo")]
    assert 100 < len(pseudo) < len([r for r in records if "y" not in r])
    assert all(r["y_true"] is None and r["id"] is None for r in pseudo)
    # without the flag, the same records teach nothing and no line says "pseudo"
    plain = by_kind(riverflink.replay(records, model=CONFIDENT))
    assert not any("pseudo" in r for r in plain["predictions"])
    assert plain["predictions"] != rows["predictions"]


def test_pseudo_labels_touch_neither_metric_nor_detector():
    from riverflink.operators.learner import OnlineLearner
    from riverflink.operators.records import parse_line

    learner = OnlineLearner(model_spec=CLASSIFIER, drift_spec="drift.ADWIN()", pseudo_label=0.5)
    state, _ = learner.step(None, parse_line('{"key": "a", "x": 1.0, "y": true}'))
    for _ in range(20):
        state, outs = learner.step(state, parse_line('{"key": "a", "x": 1.0}'))
    assert outs[0].pseudo and state.learned == 21
    assert state.metric.cm.total_weight == 1  # only the labeled record was scored
    assert state.detector.n_detections == 0 and learner.pseudo_label == 0.5


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pseudo_label": 0}, "--pseudo-label must be a probability > 0 and <= 1, not 0"),
        ({"pseudo_label": 1.5}, "--pseudo-label must be a probability"),
        (
            {"pseudo_label": 0.9, "model": "linear_model.LinearRegression()"},
            "--pseudo-label learns from a classifier's confident predictions, but the model "
            "is a regressor",
        ),
        (
            {"pseudo_label": 0.9, "model": "anomaly.HalfSpaceTrees()"},
            "the model is an anomaly detector",
        ),
    ],
)
def test_pseudo_labels_are_refused_where_they_cannot_work(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        riverflink.replay([], **options)
