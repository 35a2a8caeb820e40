"""Delayed labels on the real mini-cluster: predictions, outcomes and alerts equal plain River,
through parallelism 2, a failure, a savepoint resumed at another parallelism, and expiry.

The core cases also run with every accelerator off (``RIVERFLINK_ACCELERATE=0``).
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
from river import metrics

from tests.integration.conftest import (
    SocketFeed,
    river_rows,
    run_job,
    run_ok,
    stdout_rows,
    write_jsonl,
)
from tests.streams import delayed_label_stream

KEYS = tuple(f"m{i}" for i in range(6))


def _order(rows: list) -> list:
    """Per key, in a stable order: the job keeps order per key, not across keys."""
    return sorted(
        rows, key=lambda r: (json.dumps(r["key"]), r.get("n", -1), json.dumps(r.get("id")))
    )


def assert_matches_river(out: dict, records: list, make_metric=None) -> None:
    want = river_rows(records, make_metric=make_metric)
    assert Counter(p["id"] for p in out["predictions"]) == Counter(
        p["id"] for p in want["predictions"]
    ), "every record with features predicted exactly once"
    assert _order(out["predictions"]) == _order(want["predictions"])
    assert _order(out["alerts"]) == _order(want["alerts"])
    outcomes = [{k: v for k, v in o.items() if k != "delay_s"} for o in out["outcomes"]]
    assert _order(outcomes) == _order(want["outcomes"])
    assert all(o["delay_s"] >= 0 for o in out["outcomes"])
    rejected = Counter(json.loads(r["raw"])["id"] for r in out["rejected"])
    assert rejected == Counter(r["id"] for r in want["rejected"])
    assert all("no pending prediction" in r["error"] for r in out["rejected"])


@pytest.mark.parametrize(
    "profile, metric, accelerate",
    [("throughput", None, "on"), ("latency", "metrics.F1()", "on"), ("throughput", None, "off")],
    indirect=["accelerate"],
)
def test_delayed_labels_match_river_at_parallelism_2(tmp_path, profile, metric, accelerate):
    records = delayed_label_stream(6000, keys=KEYS, seed=13, drift_key="m2", max_delay=40)
    out = run_job(
        write_jsonl(tmp_path / "in.jsonl", records),
        tmp_path / "out",
        *("--parallelism", "2", "--profile", profile),
        *(["--metric", metric] if metric else []),
    ).out
    assert_matches_river(out, records, metrics.F1 if metric else None)
    assert all(isinstance(a["metric"], float) for a in out["alerts"])
    assert len(out["outcomes"]) > 3000
    assert any(a["key"] == "m2" for a in out["alerts"]), "the drifting key raises alerts"
    assert len(out["rejected"]) == 10  # 5 labels for unknown ids, 5 labelled twice
    assert list(out["outcomes"][0]) == ["key", "id", "y_pred", "y_true", "delay_s"]


def test_failure_while_predictions_wait_recovers_exactly_once(tmp_path):
    records = delayed_label_stream(24_000, keys=KEYS, seed=17, drift_key="m1")
    marker = tmp_path / "failed-once"
    out = run_job(
        write_jsonl(tmp_path / "in.jsonl", records),
        tmp_path / "out",
        *("--parallelism", "2", "--checkpoint-interval", "1"),
        *("--checkpoint-dir", str(tmp_path / "ckpt")),
        env={"RIVERFLINK_FAIL_ONCE": f"9000:{marker}"},
    ).out
    assert marker.exists(), "the injected failure must have happened"
    assert_matches_river(out, records)


def test_pending_predictions_survive_a_savepoint_and_rescaling(tmp_path):
    records = delayed_label_stream(
        6000, keys=KEYS, seed=19, drift_key=None, orphans=0, max_delay=400
    )
    cut = len(records) // 2
    first, second = records[:cut], records[cut:]
    waiting = {r["id"] for r in first if r.get("y", 0) is None} - {
        r["id"] for r in first if "f0" not in r
    }
    assert len(waiting) > 50, "the savepoint is taken while many predictions wait"

    day1 = run_job(
        write_jsonl(tmp_path / "day1.jsonl", first),
        tmp_path / "out1",
        *("--parallelism", "2", "--savepoint-on-exit", str(tmp_path / "savepoints")),
    )
    day2 = run_job(
        write_jsonl(tmp_path / "day2.jsonl", second),
        tmp_path / "out2",
        *("--parallelism", "3", "--restore", day1.last_line),
    )

    one, two = day1.out, day2.out
    both = {name: one[name] + two[name] for name in one}
    assert_matches_river(both, records)
    assert waiting <= {o["id"] for o in two["outcomes"]}, "labels met predictions made before"


def _feed_socket(lines_then_pause, label_ttl: str) -> list:
    """Run the job on a socket; send each batch after its pause; return the output rows."""
    with SocketFeed("--label-ttl", label_ttl) as feed:
        for batch, wait_for, pause in lines_then_pause:
            feed.send(batch)
            # the job has answered: from now on time counts
            feed.read_until(lambda rows, wait_for=wait_for: len(rows) >= wait_for)
            time.sleep(pause)
        return feed.finish()


def test_predictions_waiting_past_the_label_ttl_are_dropped(tmp_path):
    features = [{"key": k, "id": i, "f0": 0.5 * i} for i in range(3) for k in ("a", "b")]
    labels = [{"key": k, "id": i, "y": True} for i in range(3) for k in ("a", "b")]
    fresh = [{"key": "a", "id": 10, "f0": 1.0}, {"key": "a", "id": 10, "y": False}]
    rows = _feed_socket(
        [(features, len(features), 4.0), (labels + fresh, len(features) + 8, 0)], label_ttl="1"
    )
    by_kind = Counter(r["kind"] for r in rows)
    assert by_kind == {"prediction": 7, "rejected": 6, "outcome": 1}
    assert all("no pending prediction" in r["error"] for r in rows if r["kind"] == "rejected")
    outcome = next(r for r in rows if r["kind"] == "outcome")
    assert (outcome["key"], outcome["id"], outcome["y_true"]) == ("a", 10, False)
    assert 0 <= outcome["delay_s"] < 1


def test_label_only_records_on_stdout_are_outcomes(tmp_path):
    records = [{"key": "a", "id": 1, "f0": 1.0}, {"key": "a", "id": 1, "y": True}]
    result = run_ok("--source", str(write_jsonl(tmp_path / "in.jsonl", records)), "--output", "-")
    rows = stdout_rows(result.stdout)
    # stdout merges the outputs: order holds within a kind, not across kinds
    by_kind = {r["kind"]: r for r in rows}
    assert sorted(by_kind) == ["outcome", "prediction"] and len(rows) == 2
    assert by_kind["outcome"]["y_pred"] == by_kind["prediction"]["y_pred"]
    assert by_kind["outcome"]["y_true"] is True
