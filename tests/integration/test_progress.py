"""The progress line while a bounded run works, and the summary at its end."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter

import pytest

from tests.integration.conftest import (
    drifting_stream,
    run_ok,
    running,
    session_pids,
    stdout_rows,
    wait_for_rows,
    write_jsonl,
)

PROGRESS = re.compile(
    r"^riverflink: [\d,]+/30,000 lines \(\d+%\) \| (-|[\d,]+) rec/s \| \d+:\d\d \| "
    r"[\d,]+ predictions \| [\d,]+ alerts \| [\d,]+ rejected$"
)


def test_progress_lines_then_a_summary_naming_best_and_worst_keys(tmp_path):
    source = write_jsonl(
        tmp_path / "in.jsonl", drifting_stream(30_000, keys=("a", "b", "c"), drift_key="a")
    )
    result = run_ok(
        "--source", str(source), "--output", str(tmp_path / "out"), "--profile", "latency"
    )
    lines = result.stderr.splitlines()
    progress = [line for line in lines if PROGRESS.match(line)]
    assert progress, result.stderr  # not a terminal: a new line every 2 s
    done = [int(line.split("/")[0].split()[-1].replace(",", "")) for line in progress]
    assert done == sorted(done) and done[-1] <= 30_000
    summary = "\n".join(lines[-4:])
    assert re.search(r"riverflink: done in \d+:\d\d; the output answers 30,000 input", summary)
    assert "30,000 predictions, 0 delayed labels learned" in summary
    assert re.search(r'metrics.Accuracy\(\) per key: best "[bc]" 0\.\d{4}, worst "a"', summary)


def test_quiet_keeps_only_the_summary(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", drifting_stream(3000))
    result = run_ok("--source", str(source), "--output", str(tmp_path / "out"), "--quiet")
    riverflink = [line for line in result.stderr.splitlines() if line.startswith("riverflink:")]
    assert not any(" rec/s | " in line for line in riverflink)
    assert any("the output answers 3,000 input lines" in line for line in riverflink)


@pytest.mark.parametrize("profile", ["throughput", "latency"])
def test_a_run_on_stdout_ends_with_exact_counts(tmp_path, profile):
    # With --output - nothing is committed to count; Flink's own counters of a Python
    # operator arrive only at the end of a bundle (a whole file with --profile throughput),
    # so the summary adds up the workers' live counts.
    records = drifting_stream(3000)
    lines = [json.dumps(r) for r in records] + ["not json"] * 7 + [""]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = run_ok(
        "--source", str(source), "--output", "-", "--parallelism", "2", "--profile", profile
    )
    printed = Counter(row["kind"] for row in stdout_rows(result.stdout))
    assert (printed["prediction"], printed["rejected"], printed["outcome"]) == (3000, 7, 0)
    summary = result.stderr.splitlines()[-1]
    assert re.fullmatch(
        r"riverflink: 3,007 lines in \d+:\d\d: 3,000 predictions, 0 delayed labels learned, "
        r"\d+ alerts, 7 rejected \(lines processed, replays after a restart included\)",
        summary,
    ), summary
    alerts = int(summary.split(" alerts")[0].rsplit(" ", 1)[-1])
    assert alerts == printed.get("alert", 0)


def test_ctrl_c_stops_an_unbounded_run_with_a_summary(tmp_path):
    incoming = tmp_path / "incoming"
    write_jsonl(incoming / "a.jsonl", drifting_stream(2000))
    out = tmp_path / "out"
    with running(
        *("run", "--source", str(incoming), "--follow", "--output", str(out)),
        module="riverflink.cli",
        stdout=subprocess.DEVNULL,
        # as from a terminal: a background launch (`make test &`) would pass SIGINT on ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as proc:
        wait_for_rows(out / "predictions", 2000, proc)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "riverflink: interrupted; the job was cancelled" in err
    assert "the output answers 2,000 input lines: 2,000 predictions" in err
    assert "per key: best" in err


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_or_sighup_stops_a_run_and_leaves_no_process_behind(tmp_path, signum, code):
    """A service manager or ``kill`` signals riverflink's process alone; the run stops as
    on Ctrl-C, and its JVM and workers end with it (left alone, the JVM stayed, busy)."""
    incoming = tmp_path / "incoming"
    write_jsonl(incoming / "a.jsonl", drifting_stream(2000))
    out = tmp_path / "out"
    with running(
        *("run", "--source", str(incoming), "--follow", "--output", str(out)),
        module="riverflink.cli",
        stdout=subprocess.DEVNULL,
        # as from a terminal or a service manager: under nohup (`nohup make test`) the
        # signal would come ignored, and riverflink leaves an ignored signal ignored
        preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL),
    ) as proc:
        wait_for_rows(out / "predictions", 2000, proc)
        assert len(session_pids(proc.pid)) > 2  # riverflink, its JVM, its workers
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 30
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = session_pids(proc.pid)
    assert proc.returncode == code, err
    assert f"riverflink: stopped by {signal.Signals(signum).name}; the job was cancelled" in err
    assert "the output answers 2,000 input lines: 2,000 predictions" in err
    assert left == [], f"processes of the run still there: {left}"


def test_a_run_killed_with_sigkill_mid_job_leaves_no_process_behind(tmp_path):
    """``kill -9`` (or the OOM killer) ends riverflink's process alone while lines flow:
    its JVM and workers end too, within the grace its JVM is given. (Left alone, the
    JVM hung in Beam's shutdown hook, for good.)"""
    from riverflink.runtime.local import JVM_GRACE

    source = tmp_path / "in.jsonl"  # lines enough to keep the JVM sending when it is killed
    features = ", ".join(f'"f{j}": {j}.5' for j in range(40))
    with open(source, "w") as out:
        for i in range(200_000):
            out.write(f'{{"key": "k{i % 1000}", "id": {i}, {features}, "y": {i % 2}}}\n')
    with running(
        *("run", "--source", str(source), "--output", str(tmp_path / "out")),
        module="riverflink.cli",
        stdout=subprocess.DEVNULL,
    ) as proc:
        for line in proc.stderr:  # the progress line, every 2 s
            if re.search(r"\| [1-9][\d,]* predictions \|", line):
                break  # lines flow
        time.sleep(2)
        assert proc.poll() is None, "the run ended before it could be killed mid-job"
        assert len(session_pids(proc.pid)) > 2  # riverflink, its JVM, its workers
        proc.kill()
        deadline = time.monotonic() + JVM_GRACE + 30
        while session_pids(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = session_pids(proc.pid)
    assert left == [], f"processes of the run still there: {left}"
