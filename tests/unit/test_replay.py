"""riverflink.replay: the job's output lines in plain Python, compared with plain River."""

from __future__ import annotations

import json

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
