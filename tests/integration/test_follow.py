"""--follow: an unbounded job on a directory commits output within seconds of a new file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from river import drift

from tests.integration.conftest import (
    REPO,
    by_key,
    drifting_stream,
    jsonable,
    read_lines,
    run_cli,
    write_jsonl,
)
from tests.integration.test_parity import default_model
from tests.reference import reference_predictions


def wait_for_rows(directory, count, proc, timeout=120):
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        rows = read_lines(directory)
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"{len(rows)} of {count} rows committed after {timeout} s")


def test_follow_directory_commits_each_new_file(tmp_path):
    watched = tmp_path / "incoming"
    watched.mkdir()
    out = tmp_path / "out"
    records = drifting_stream(1200, seed=21)
    first, second = records[:700], records[700:]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.online_learning",
            "--source",
            str(watched),
            "--follow",
            "--discovery-interval",
            "0.5",
            "--output",
            str(out),
            "--parallelism",
            "2",
        ],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # write elsewhere, then move in: the watcher must never see half a file
        write_jsonl(tmp_path / "one.jsonl", first).rename(watched / "one.jsonl")
        wait_for_rows(out / "predictions", len(first), proc)
        write_jsonl(tmp_path / "two.jsonl", second).rename(watched / "two.jsonl")
        rows = wait_for_rows(out / "predictions", len(records), proc)
        time.sleep(3)  # nothing more may arrive: each record is predicted once
        rows = read_lines(out / "predictions")
        assert proc.poll() is None, "a --follow job keeps running"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    later = [dict(r, id=10_000 + r["id"]) for r in drifting_stream(400, seed=22)]
    expected, _ = reference_predictions(
        records + later, default_model, make_detector=drift.ADWIN, detector_spec="drift.ADWIN()"
    )
    assert by_key(rows) == by_key(jsonable(expected[: len(records)]))

    # Its checkpoint, restored on another input read once: the models carry on, and the
    # new file is read from its start (the followed directory's position is not its own).
    checkpoints = str(out / "_checkpoints")
    restored = run_cli(
        *("--source", str(write_jsonl(tmp_path / "later.jsonl", later))),
        *("--output", str(tmp_path / "out-later"), "--parallelism", "2"),
        *("--restore", "latest", "--checkpoint-dir", checkpoints),
    )
    assert restored.returncode == 0, restored.stderr
    rows = read_lines(tmp_path / "out-later" / "predictions")
    assert by_key(rows) == by_key(jsonable(expected[len(records) :]))

    # The same directory read once would resume only the files listed when it was followed:
    # refused before Flink starts.
    write_jsonl(watched / "three.jsonl", later)
    refused = run_cli(
        *("--source", str(watched), "--output", str(tmp_path / "out-refused")),
        *("--restore", "latest", "--checkpoint-dir", checkpoints),
    )
    assert refused.returncode == 2, refused.stderr
    assert f"that run followed {watched} (--follow)" in refused.stderr
    assert "Restore with --follow" in refused.stderr
