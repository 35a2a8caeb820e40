"""Exactly-once recovery: a failure mid-stream or a kill -9 changes nothing in the output.

The core cases also run with every accelerator off (``RIVERFLINK_ACCELERATE=0``).
"""

from __future__ import annotations

import subprocess
from collections import Counter

import pytest

from riverflink.config.checkpoints import execution_mode_of, latest_checkpoint
from riverflink.results.outputs import read_output_dir
from riverflink.state.descriptors import HASH_STATE_NAME, KEY_STATE_NAME
from tests.integration.conftest import (
    assert_like_river,
    by_key,
    drifting_stream,
    read_output,
    run_cli,
    run_job,
    run_ok,
    running,
    wait_until,
    write_jsonl,
)

KEYS = tuple(f"k{i}" for i in range(8))


def assert_exactly_once(out, records):
    ids = Counter(p["id"] for p in out["predictions"])
    assert ids == Counter(r["id"] for r in records), "every id predicted exactly once"
    assert_like_river(out, records)


@pytest.mark.parametrize("accelerate", ["on", "off"], indirect=True)
def test_task_failure_restarts_from_checkpoint_with_identical_output(tmp_path, accelerate):
    records = drifting_stream(24_000, keys=KEYS, seed=31, drift_key="k1")
    source = write_jsonl(tmp_path / "in.jsonl", records)
    common = ["--parallelism", "2", "--checkpoint-interval", "1"]

    clean = run_job(
        source, tmp_path / "clean", *common, "--checkpoint-dir", str(tmp_path / "ckpt-clean")
    ).out

    marker = tmp_path / "failed-once"
    # the failing run uses RocksDB with incremental checkpoints: same output expected
    failed = run_job(
        source,
        tmp_path / "failed",
        *common,
        *("--state-backend", "rocksdb", "--checkpoint-dir", str(tmp_path / "ckpt-failed")),
        env={"RIVERFLINK_FAIL_ONCE": f"7000:{marker}"},
    ).out
    assert marker.exists(), "the injected failure must have happened"

    assert by_key(failed["predictions"]) == by_key(clean["predictions"])
    assert by_key(failed["alerts"]) == by_key(clean["alerts"])
    assert failed["alerts"], "the drifting key raises alerts"
    assert_exactly_once(failed, records)


def test_a_task_manager_lost_mid_run_is_replaced_and_the_output_stays_exact(tmp_path):
    # A fatal error in the task manager (Beam's shared Python resources can raise one while
    # a failed task cleans up) closes it; the mini-cluster never replaced it, and the job
    # waited for slots forever. tests/task_manager_probe.py ends it on purpose.
    records = drifting_stream(24_000, keys=KEYS, seed=33, drift_key="k1")
    source = write_jsonl(tmp_path / "in.jsonl", records)
    probe = run_cli(
        *("--source", str(source), "--output", str(tmp_path / "out"), "--parallelism", "2"),
        *("--profile", "latency", "--checkpoint-interval", "1"),
        *("--checkpoint-dir", str(tmp_path / "ckpt")),
        module="tests.task_manager_probe",
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    assert "task manager 0 ended" in probe.stderr
    assert_exactly_once(read_output(tmp_path / "out"), records)


@pytest.mark.parametrize("first_router", ["java", "sql", "sql-latency"])
def test_kill_9_then_restore_latest_gives_identical_output(tmp_path, first_router):
    """Also across routers: a checkpoint of SQL routing (riverflink before its Java router,
    or without a JDK) holds lines in SQL windows; the resumed run must route in SQL again.
    Without windows (``--profile latency``) it holds only models in ``hash`` buckets, as
    riverflink before the ``spread`` routing wrote them: the router must route the same way."""
    records = drifting_stream(200_000, keys=KEYS, seed=32, drift_key="k2")
    source = write_jsonl(tmp_path / "in.jsonl", records)
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    args = [
        *("--source", str(source), "--output", str(out), "--parallelism", "2"),
        *("--checkpoint-dir", str(ckpt), "--checkpoint-interval", "1"),
    ]
    first = [*args, "--profile", "latency"] if first_router == "sql-latency" else args
    written_as = KEY_STATE_NAME if first_router == "java" else HASH_STATE_NAME

    def holds_models():  # the newest checkpoint holds models, in the first run's routing
        latest = latest_checkpoint(str(ckpt))
        return latest is not None and execution_mode_of(str(latest), written_as) is not None

    router = {"RIVERFLINK_ROUTER": first_router.split("-")[0]}
    with running(*first, env=router, stdout=subprocess.DEVNULL) as proc:
        assert wait_until(holds_models, proc, interval=0.2), "no checkpoint with models completed"
    # killed: kill -9 of the run's whole session
    partial = read_output(out)["predictions"]
    assert len(partial) < len(records), "killed mid-stream"

    resumed = run_ok(*args, "--restore", "latest", env={"RIVERFLINK_ROUTER": ""})
    assert ("routed in Flink SQL; routing in SQL again" in resumed.stderr) == (
        first_router == "sql"
    )
    assert ("keys are routed to them the same way" in resumed.stderr) == (first_router != "java")
    assert_exactly_once(read_output(out), records)
    # the killed run left in-progress files behind; the report reads the output as one run
    summary = read_output_dir(out)
    assert summary.counts["predictions"] == len(records)
    assert sum(k.labeled for k in summary.keys.values()) == len(records)
    assert f"the output answers {len(records):,} input lines" in resumed.stderr
    # The finished run took over the killed one: its checkpoints go, so the same command
    # run again cannot answer the input's tail a second time.
    assert "removed them" in resumed.stderr
    again = run_cli(*args, "--restore", "latest")
    assert again.returncode == 2 and "no completed checkpoint" in again.stderr
    assert_exactly_once(read_output(out), records)
