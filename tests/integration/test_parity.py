"""The job on the real mini-cluster gives, per key, exactly plain River's predictions.

The core case also runs with every accelerator off (``RIVERFLINK_ACCELERATE=0``).
"""

from __future__ import annotations

import pytest
from river import anomaly, drift, linear_model, preprocessing

from tests.integration.conftest import (
    assert_like_river,
    drifting_stream,
    flink_conf,
    run_job,
    write_jsonl,
)


@pytest.mark.parametrize(
    "on_drift, accelerate",
    [("alert", "on"), ("reset", "on"), ("alert", "off")],
    indirect=["accelerate"],
)
def test_classifier_with_drift_matches_river_at_parallelism_2(tmp_path, on_drift, accelerate):
    records = drifting_stream(4000)
    source = write_jsonl(tmp_path / "in.jsonl", records)
    out = run_job(source, tmp_path / "out", "--parallelism", "2", "--on-drift", on_drift).out

    assert len(out["predictions"]) == len(records)
    want = assert_like_river(out, records, on_drift=on_drift)
    assert want["alerts"], "the drifting key must trigger at least one alert"
    assert {a["key"] for a in out["alerts"]} >= {"a"}
    assert all(a["action"] == on_drift for a in out["alerts"])
    assert out["rejected"] == []


def test_regressor_matches_river(tmp_path):
    records = drifting_stream(2000, regression=True)
    source = write_jsonl(tmp_path / "in.jsonl", records)
    out = run_job(
        source,
        tmp_path / "out",
        "--parallelism",
        "2",
        "--model",
        "preprocessing.StandardScaler() | linear_model.LinearRegression()",
        "--drift",
        "drift.PageHinkley(threshold=20)",
    ).out

    want = assert_like_river(
        out,
        records,
        lambda: preprocessing.StandardScaler() | linear_model.LinearRegression(),
        make_detector=lambda: drift.PageHinkley(threshold=20),
        detector_spec="drift.PageHinkley(threshold=20)",
        kind="regressor",
    )
    assert want["alerts"]
    assert out["alerts"][0]["detector"] == "drift.PageHinkley(threshold=20)"


def test_anomaly_detector_scores_every_record(tmp_path):
    records = drifting_stream(1500)
    for r in records[::3]:
        del r["y"]  # anomaly detectors learn from labeled and unlabeled records alike
    source = write_jsonl(tmp_path / "in.jsonl", records)
    spec = "preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42, n_trees=5)"
    out = run_job(source, tmp_path / "out", "--parallelism", "2", "--model", spec).out

    assert_like_river(
        out,
        records,
        lambda: preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=42, n_trees=5),
        kinds=["predictions"],
        kind="anomaly",
    )
    assert any(p["y_pred"] > 0 for p in out["predictions"])
    assert out["alerts"] == []


@pytest.mark.parametrize(
    "profile, pickled", [("latency", "0"), ("throughput", "0"), ("throughput", "2gb")]
)
def test_keys_dropped_from_memory_are_read_back_from_state(tmp_path, profile, pickled):
    """With room for 3 live models, most records find their key's model elsewhere: in
    Flink state (no pickled memory), or kept pickled in the worker."""
    three_live = flink_conf(
        tmp_path / "conf",
        {"live-keys: 20000": "live-keys: 3", "pickled-memory: 2gb": f"pickled-memory: {pickled}"},
    )
    keys = tuple(f"k{i}" for i in range(12))
    records = drifting_stream(2400, keys=keys, seed=5)
    out = run_job(
        write_jsonl(tmp_path / "in.jsonl", records),
        tmp_path / "out",
        *("--parallelism", "2", "--profile", profile),
        env=three_live,
    ).out
    assert_like_river(out, records)
