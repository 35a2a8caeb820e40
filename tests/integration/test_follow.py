"""--follow: an unbounded job on a directory commits output within seconds of a new file."""

from __future__ import annotations

import subprocess
import time

from tests.integration.conftest import (
    by_key,
    drifting_stream,
    read_lines,
    river_rows,
    run_cli,
    run_job,
    running,
    wait_for_rows,
    write_jsonl,
)


def test_follow_directory_commits_each_new_file(tmp_path):
    watched = tmp_path / "incoming"
    watched.mkdir()
    out = tmp_path / "out"
    records = drifting_stream(1200, seed=21)
    first, second = records[:700], records[700:]
    with running(
        *("--source", str(watched), "--follow", "--discovery-interval", "0.5"),
        *("--output", str(out), "--parallelism", "2"),
        stdout=subprocess.DEVNULL,
    ) as proc:
        # write elsewhere, then move in: the watcher must never see half a file
        write_jsonl(tmp_path / "one.jsonl", first).rename(watched / "one.jsonl")
        wait_for_rows(out / "predictions", len(first), proc)
        write_jsonl(tmp_path / "two.jsonl", second).rename(watched / "two.jsonl")
        rows = wait_for_rows(out / "predictions", len(records), proc)
        time.sleep(3)  # nothing more may arrive: each record is predicted once
        rows = read_lines(out / "predictions")
        assert proc.poll() is None, "a --follow job keeps running"
    later = [dict(r, id=10_000 + r["id"]) for r in drifting_stream(400, seed=22)]
    expected = river_rows(records + later)["predictions"]
    assert by_key(rows) == by_key(expected[: len(records)])

    # Its checkpoint, restored on another input read once: the models carry on, and the
    # new file is read from its start (the followed directory's position is not its own).
    checkpoints = str(out / "_checkpoints")
    rows = run_job(
        write_jsonl(tmp_path / "later.jsonl", later),
        tmp_path / "out-later",
        *("--parallelism", "2", "--restore", "latest", "--checkpoint-dir", checkpoints),
    ).out["predictions"]
    assert by_key(rows) == by_key(expected[len(records) :])

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
