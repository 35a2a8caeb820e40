"""Data quality as a user runs it: --schema and --feature-drift together on the real
mini-cluster, at parallelism 2, stopped with a savepoint and resumed at parallelism 1,
compared with the ``jsonschema`` library and plain River detectors."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from river import drift

from tests.integration.conftest import assert_like_river, run_job, write_jsonl

pytestmark = pytest.mark.integration

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["key", "f0"],
    "properties": {
        "key": {"type": "string"},
        "f0": {"type": "number", "minimum": -10, "maximum": 10},
        "f1": {"type": "number"},
        "f2": {"type": "integer", "minimum": 0},
        "y": {"type": "boolean"},
    },
}


def _records(n: int, seed: int) -> list:
    """Four keys; f0 shifts for every key at 70%, f2 (an integer) for key k1; some
    records break the schema."""
    rng = random.Random(seed)
    weights = {f"k{i}": [rng.uniform(-2, 2) for _ in range(2)] for i in range(4)}
    records = []
    for i in range(n):
        key = f"k{i % 4}"
        late = i > n * 7 // 10
        record = {
            "key": key,
            "f0": round(rng.gauss(3.0 if late else 0.0, 1.0), 4),
            "f1": round(rng.gauss(0, 1), 4),
            "f2": rng.randint(0, 4) + (6 if late and key == "k1" else 0),
        }
        score = sum(w * record[f] for w, f in zip(weights[key], ("f0", "f1")))
        record["y"] = score + rng.gauss(0, 0.3) > 0
        if i % 53 == 4:
            record["f0"] = 25.5  # above the maximum
        elif i % 61 == 6:
            record["f2"] = -1  # below the minimum
        elif i % 67 == 8:
            del record["f0"]  # required
        elif i % 71 == 9:
            record["y"] = "yes"  # not a boolean
        records.append(record)
    return records


def test_schema_and_feature_drift_at_parallelism_2_then_resumed_at_1(tmp_path):
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    records = _records(4000, seed=11)
    first, rest = records[:2400], records[2400:]
    flags = ("--schema", str(schema), "--feature-drift", "drift.ADWIN()")
    before = run_job(
        write_jsonl(tmp_path / "first.jsonl", first),
        tmp_path / "out1",
        *flags,
        "--parallelism",
        "2",
        "--savepoint-on-exit",
        "sp",
        cwd=tmp_path,
    )
    after = run_job(
        write_jsonl(tmp_path / "rest.jsonl", rest),
        tmp_path / "out2",
        *flags,
        "--parallelism",
        "1",
        "--restore",
        before.last_line,
        cwd=tmp_path,
    )
    out = {kind: before.out[kind] + after.out[kind] for kind in before.out}

    checker = jsonschema.Draft202012Validator(SCHEMA)
    valid = [r for r in records if checker.is_valid(r)]
    invalid = [r for r in records if not checker.is_valid(r)]
    # Every violation is in rejected/ with its reason: the JSON path and the rule.
    got = [(json.loads(r["raw"]), r["error"]) for r in out["rejected"]]
    assert sorted(json.dumps(r, sort_keys=True) for r, _ in got) == sorted(
        json.dumps(r, sort_keys=True) for r in invalid
    )
    for record, error in got:
        places = {f"schema: {e.json_path}: " for e in checker.iter_errors(record)}
        assert any(error.startswith(place) for place in places), (error, places)
    assert any(error == "schema: $.f0: 25.5 is greater than the maximum of 10" for _, error in got)

    # The rest learn as plain River over the valid records only, and the feature
    # detectors, carried through the savepoint, alert as plain detectors do.
    want = assert_like_river(
        out,
        valid,
        make_feature_detector=drift.ADWIN,
        feature_detector_spec="drift.ADWIN()",
    )
    features = {a["feature"] for a in want["alerts"]}
    assert {"f0", "f2"} <= features  # the shifts are found; the data exercise the test
    assert any(a["feature"] == "f0" and a["n"] > 600 for a in after.out["alerts"])
    assert "on features" in after.stdout + after.stderr
