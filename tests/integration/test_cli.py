"""CLI: bad settings fail fast with one clear line; job files and stdout output work."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest

from tests.integration.conftest import (
    drifting_stream,
    part_writers,
    read_lines,
    run_cli,
    run_ok,
    write_jsonl,
)


@pytest.fixture
def source(tmp_path):
    return write_jsonl(tmp_path / "in.jsonl", drifting_stream(200))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "linear_model.NoSuchModel()"], "NoSuchModel"),
        (["--model", "__import__('os').system('true')"], "model spec"),
        (["--drift", "drift.NoSuchDetector()"], "NoSuchDetector"),
        (["--parallelism", "0"], "--parallelism"),
        (["--parallelism", "two"], "invalid int value"),
        (["--on-drift", "panic"], "invalid choice"),
        (["--checkpoint-interval", "-1"], "--checkpoint-interval"),
        (["--follow"], "--follow needs a directory"),
        (["--restore", "latest"], "--checkpoint-dir"),
        (["--key", "y"], "different fields"),
        (["--metric", "metrics.MAE()"], "does not apply to a classifier"),
        (["--metric", "metrics.ROCAUC()"], "scores probabilities"),
        (["--label-ttl", "0"], "--label-ttl"),
        (
            [
                "--model",
                "preprocessing.StandardScaler() | linear_model.LinearRegression()",
                "--drift",
                "drift.binary.DDM()",
            ],
            "0/1 errors",
        ),
    ],
)
def test_bad_settings_fail_before_flink_starts(tmp_path, source, args, message):
    result = run_cli("--source", str(source), "--output", str(tmp_path / "out"), *args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_source_and_output(tmp_path):
    result = run_cli("--source", str(tmp_path / "nope.jsonl"), "--output", "-", timeout=60)
    assert result.returncode == 2
    assert "no such file or directory" in result.stderr
    result = run_cli("--output", "-", timeout=60)
    assert result.returncode == 2 and "--source is required" in result.stderr


def test_job_file_with_flag_override_and_custom_fields(tmp_path):
    users = ("ann", "bob", "cy")  # routed to both subtasks at parallelism 2: bob to the first
    records = [
        {"user": users[i % 3], "event": i, "a": i % 7, "b": -i, "noise": 1.0, "clicked": i % 2 == 0}
        for i in range(300)
    ]
    write_jsonl(tmp_path / "events.jsonl", records)
    (tmp_path / "job.yaml").write_text(
        "source: events.jsonl\n"
        "output: out\n"
        "key: user\n"
        "id: event\n"
        "target: clicked\n"
        "features: [a, b]\n"
        "drift: none\n"
        "parallelism: 1\n"
        "model: tree.HoeffdingTreeClassifier()\n"
    )
    log = tmp_path / "log"
    run_ok(
        *("--config", str(tmp_path / "job.yaml"), "--parallelism", "2"),
        cwd=tmp_path,
        env={"FLINK_LOG_DIR": str(log)},
    )
    rows = read_lines(tmp_path / "out" / "predictions")
    assert len(rows) == 300
    assert {r["key"] for r in rows} == set(users)
    assert sorted(r["id"] for r in rows) == list(range(300))
    first = [r for r in rows if r["n"] == 0]
    assert len(first) == 3 and all(r["y_pred"] is None for r in first)
    assert json.loads(json.dumps(rows[0]))["y_true"] in (True, False)
    # --parallelism 2 won over the job file's 1: the learning operator ran as two
    # subtasks, and both wrote predictions, each to part files of its own
    logged = "".join(path.read_text() for path in log.glob("*.log"))
    finished = re.findall(r"learn per key .* \((\d+)/(\d+)\).* to FINISHED", logged)
    assert set(finished) == {("1", "2"), ("2", "2")}, finished
    assert len(part_writers(tmp_path / "out" / "predictions")) == 2


def test_a_run_copies_no_rpc_system_to_the_temporary_directory(tmp_path):
    # Flink copies its RPC system (a 24 MB jar) into java.io.tmpdir for each cluster it
    # starts, and a killed run leaves it there; riverflink's cluster reads one kept copy.
    from riverflink.accel.early_cluster import EarlyCluster
    from riverflink.pipeline.router_jar import router_jar

    if not EarlyCluster.possible():
        pytest.skip("no JDK: the run starts Flink's own mini-cluster")
    java_tmp = tmp_path / "java-tmp"
    java_tmp.mkdir()
    source = write_jsonl(tmp_path / "in.jsonl", drifting_stream(n=50, keys=("a", "b")))
    seen: set = set()
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.update(path.name for path in java_tmp.glob("flink-rpc-*"))
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_ok(
            *("--source", str(source), "--output", str(tmp_path / "out"), "--quiet"),
            env={"JVM_ARGS": f"-Djava.io.tmpdir={java_tmp}"},
        )
    finally:
        stop.set()
        watcher.join()
    assert len(read_lines(tmp_path / "out" / "predictions")) == 50
    assert seen == set()
    jar = router_jar()
    assert jar.with_name(jar.stem + "-rpc.jar").is_file()


def test_a_run_maps_flinks_classes_from_the_warm_up_archive(tmp_path):
    """`make setup` runs `riverflink warm-up`, which writes the class archive with
    riverflink's agent loaded; runs, which load the agent too, must still read it (Java
    drops an archive silently when its flags do not match the run's)."""
    from riverflink.accel.jvm_archive import archive_path

    assert archive_path().is_file(), "no class archive: run `riverflink warm-up`"
    source = write_jsonl(tmp_path / "in.jsonl", drifting_stream(50))
    log = tmp_path / "classes.log"
    run_ok(
        "--source", str(source), "--output", str(tmp_path / "out"),
        env={"JVM_ARGS": f"-Xlog:class+load:file={log}"},
    )  # fmt: skip
    loaded = log.read_text().splitlines()
    from_archive = [line for line in loaded if "source: shared objects file (top)" in line]
    assert len(from_archive) > len(loaded) // 2, (len(from_archive), len(loaded))
