"""The workers' live counts (operators/live_counts.py), read as the progress line reads them."""

from __future__ import annotations

import time

from riverflink.operators.live_counts import LiveCounts, read_live_counts

NAMES = ("lines", "predictions", "alerts")


def _wait_for(directory, wanted: dict, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_live_counts(directory) == wanted:
            return True
        time.sleep(0.02)
    return False


def test_counts_reach_the_file_while_the_worker_runs(tmp_path):
    counts = LiveCounts(tmp_path / "subtask-0-attempt-0.json", NAMES, interval=0.05)
    try:
        assert read_live_counts(tmp_path) is None  # nothing counted, nothing written
        counts.add({"lines": 10, "predictions": 9})
        assert _wait_for(tmp_path, {"lines": 10, "predictions": 9, "alerts": 0})
        counts.add({"lines": 5, "predictions": 5, "alerts": 1})
        assert _wait_for(tmp_path, {"lines": 15, "predictions": 14, "alerts": 1})
    finally:
        counts.close()


def test_every_subtask_and_attempt_adds_up(tmp_path):
    for subtask, attempt, lines in ((0, 0, 7), (1, 0, 4), (0, 1, 3)):
        counts = LiveCounts(tmp_path / f"subtask-{subtask}-attempt-{attempt}.json", NAMES)
        counts.add({"lines": lines})
        counts.close()
    assert read_live_counts(tmp_path) == {"lines": 14, "predictions": 0, "alerts": 0}


def test_unreadable_files_and_missing_directories_count_nothing(tmp_path):
    (tmp_path / "subtask-0-attempt-0.json").write_text('{"lines": ')  # cut short
    assert read_live_counts(tmp_path) is None
    assert read_live_counts(tmp_path / "gone") is None


def test_a_directory_removed_under_a_worker_does_not_stop_it(tmp_path):
    directory = tmp_path / "counts"
    directory.mkdir()
    counts = LiveCounts(directory / "subtask-0-attempt-0.json", NAMES, interval=0.01)
    counts.add({"lines": 1})
    for path in directory.iterdir():
        path.unlink()
    directory.rmdir()  # the run ended first
    counts.add({"lines": 1})
    counts.close()  # no error
    assert counts.totals["lines"] == 2
