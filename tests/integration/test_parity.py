"""The job on the real mini-cluster gives, per key, exactly plain River's predictions."""

from __future__ import annotations

import shutil

import pytest
from river import anomaly, drift, linear_model, preprocessing

from tests.integration.conftest import (
    REPO,
    by_key,
    drifting_stream,
    jsonable,
    read_output,
    run_cli,
    write_jsonl,
)
from tests.reference import reference_predictions


def default_model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_classifier_with_drift_matches_river_at_parallelism_2(tmp_path, on_drift):
    records = drifting_stream(4000)
    source = write_jsonl(tmp_path / "in.jsonl", records)
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--parallelism",
        "2",
        "--on-drift",
        on_drift,
    )
    assert result.returncode == 0, result.stderr

    out = read_output(tmp_path / "out")
    expected, expected_alerts = reference_predictions(
        records,
        default_model,
        make_detector=drift.ADWIN,
        on_drift=on_drift,
        detector_spec="drift.ADWIN()",
    )
    assert len(out["predictions"]) == len(records)
    assert by_key(out["predictions"]) == by_key(jsonable(expected))
    assert expected_alerts, "the drifting key must trigger at least one alert"
    assert by_key(out["alerts"]) == by_key(jsonable(expected_alerts))
    assert {a["key"] for a in out["alerts"]} >= {"a"}
    assert all(a["action"] == on_drift for a in out["alerts"])
    assert out["rejected"] == []


def test_regressor_matches_river(tmp_path):
    records = drifting_stream(2000, regression=True)
    source = write_jsonl(tmp_path / "in.jsonl", records)
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--parallelism",
        "2",
        "--model",
        "preprocessing.StandardScaler() | linear_model.LinearRegression()",
        "--drift",
        "drift.PageHinkley(threshold=20)",
    )
    assert result.returncode == 0, result.stderr

    out = read_output(tmp_path / "out")
    expected, expected_alerts = reference_predictions(
        records,
        lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
        make_detector=lambda: drift.PageHinkley(threshold=20),
        detector_spec="drift.PageHinkley(threshold=20)",
        kind="regressor",
    )
    assert by_key(out["predictions"]) == by_key(jsonable(expected))
    assert expected_alerts
    assert by_key(out["alerts"]) == by_key(jsonable(expected_alerts))
    assert out["alerts"][0]["detector"] == "drift.PageHinkley(threshold=20)"


def test_anomaly_detector_scores_every_record(tmp_path):
    records = drifting_stream(1500)
    for r in records[::3]:
        del r["y"]  # anomaly detectors learn from labeled and unlabeled records alike
    source = write_jsonl(tmp_path / "in.jsonl", records)
    spec = "preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42, n_trees=5)"
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--parallelism",
        "2",
        "--model",
        spec,
    )
    assert result.returncode == 0, result.stderr

    out = read_output(tmp_path / "out")
    expected, _ = reference_predictions(
        records,
        lambda: preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42, n_trees=5),
        kind="anomaly",
    )
    assert by_key(out["predictions"]) == by_key(jsonable(expected))
    assert any(p["y_pred"] > 0 for p in out["predictions"])
    assert out["alerts"] == []


@pytest.mark.parametrize("profile", ["latency", "throughput"])
def test_keys_dropped_from_memory_are_read_back_from_state(tmp_path, profile):
    """With room for 3 live models, most records find their key's model in Flink state."""
    conf = tmp_path / "conf"
    shutil.copytree(REPO / "flink-conf", conf)
    text = (conf / "config.yaml").read_text()
    assert "live-keys: 100000" in text
    (conf / "config.yaml").write_text(text.replace("live-keys: 100000", "live-keys: 3"))
    keys = tuple(f"k{i}" for i in range(12))
    records = drifting_stream(2400, keys=keys, seed=5)
    source = write_jsonl(tmp_path / "in.jsonl", records)
    result = run_cli(
        "--source",
        str(source),
        "--output",
        str(tmp_path / "out"),
        "--parallelism",
        "2",
        "--profile",
        profile,
        env={"FLINK_CONF_DIR": str(conf)},
    )
    assert result.returncode == 0, result.stderr
    out = read_output(tmp_path / "out")
    expected, expected_alerts = reference_predictions(
        records, default_model, make_detector=drift.ADWIN, detector_spec="drift.ADWIN()"
    )
    assert by_key(out["predictions"]) == by_key(jsonable(expected))
    assert by_key(out["alerts"]) == by_key(jsonable(expected_alerts))
