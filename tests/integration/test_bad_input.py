"""Bad lines are rejected with a reason; valid records around them are unaffected."""

from __future__ import annotations

import json

from tests.integration.conftest import assert_like_river, drifting_stream, run_job

BAD = [
    (b"this is not json", "invalid JSON"),
    (b'{"key": "a", "f0": 1.0', "invalid JSON"),
    (b"[1, 2, 3]", "must be a JSON object"),
    (b'"just a string"', "must be a JSON object"),
    (b'{"f0": 1.0, "y": true}', "missing or null"),
    (b'{"key": null, "f0": 1.0}', "missing or null"),
    (b'{"key": [1], "f0": 1.0}', "key field"),
    (b'{"key": "a", "f0": NaN, "y": true}', "non-finite"),
    (b'{"key": "a", "f0": Infinity, "y": true}', "non-finite"),
    (b'{"key": "a", "f0": 1e999, "y": true}', "not finite"),
    (b'{"key": "a", "f0": {"nested": 1}, "y": true}', "not a JSON object"),
    (b'{"key": "a", "f0": [1, 2], "y": true}', "not a JSON list"),
    (b'{"key": "a", "f0": 1.0, "y": [true]}', "target field"),
    (b'{"key": "\xff\xfe", "f0": 1.0}', "invalid UTF-8"),
    (b'{"key": "a", "pad": "' + b"x" * 300_000 + b'", "f0": ', "invalid JSON"),
]


def test_bad_lines_rejected_and_valid_records_untouched(tmp_path):
    records = drifting_stream(1200, seed=11)
    records[9]["key"] = "été"  # non-ASCII keys pass through
    lines = [json.dumps(r).encode() for r in records]
    lines[7] = lines[7].replace(b", ", b"," + b" " * 200_000, 1)  # a valid 200 kB line
    mixed = []
    for i, line in enumerate(lines):
        mixed.append(line)
        if i % 80 == 5:
            mixed.append(BAD[(i // 80) % len(BAD)][0])
        if i % 200 == 0:
            mixed.append(b"   ")  # blank lines are skipped, not rejected
    for bad, _ in BAD:
        mixed.append(bad)
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(mixed) + b"\n")

    out = run_job(source, tmp_path / "out", "--parallelism", "2").out

    rejected = out["rejected"]
    assert_like_river(out, records, kinds=["predictions"])
    n_bad = sum(1 for i in range(len(lines)) if i % 80 == 5) + len(BAD)
    assert len(rejected) == n_bad
    for row in rejected:
        assert set(row) == {"raw", "error"}
        assert len(row["raw"]) <= 1000
        assert row["error"]
    for bad, reason in BAD:
        raw = bad.decode("utf-8", errors="replace")[:1000]
        matches = [r for r in rejected if r["raw"] == raw]
        assert matches, f"no rejection for {bad[:60]!r}"
        assert reason in matches[0]["error"], matches[0]["error"]


def test_a_record_the_model_raises_on_leaves_the_key_untouched(tmp_path):
    """A string label makes the default pipeline raise half-way through learning (the
    scaler has already learned); the key must be exactly as if the record never came."""
    records = drifting_stream(30_000, seed=12)
    bad_at = set(range(150, 30_000, 1100))
    lines = []
    for i, record in enumerate(records):
        lines.append(json.dumps(record))
        if i in bad_at:
            lines.append(json.dumps({**record, "id": f"bad-{i}", "y": "cat"}))
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")

    # checkpoints every second: rollbacks happen both before and after state flushes
    out = run_job(
        source,
        tmp_path / "out",
        *("--parallelism", "2", "--checkpoint-interval", "1"),
        *("--checkpoint-dir", str(tmp_path / "ckpt")),
    ).out

    rejected = out["rejected"]
    assert len(rejected) == len(bad_at)
    assert all("the model raised ValueError" in r["error"] for r in rejected)
    assert_like_river(out, records, kinds=["predictions"])
