"""A real standalone cluster on loopback: submit, stop with a savepoint, resume at another
parallelism; every key's model carries on, and the job's metrics show in the REST API.

The CLI runs from a temporary directory (never the repository) with a Python that
has River and PyFlink but not riverflink's own packages (no editable install), so
the TaskManagers can only run the job if ``riverflink submit`` ships its code.
"""

from __future__ import annotations

import json
import os
import re
import signal
import site
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from riverflink.cluster import submit
from tests.integration.conftest import (
    assert_like_river,
    drifting_stream,
    job_env,
    listening_addresses,
    on_loopback,
    read_lines,
    run_cli,
    write_jsonl,
)

KEYS = tuple(f"m{i}" for i in range(6))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _python_without_riverflink(directory: Path) -> str:
    """A venv that sees this interpreter's packages, but not riverflink's editable install.

    A path listed in a ``.pth`` file goes on ``sys.path`` without its own ``.pth``
    files being run, so the editable-install finder for ``riverflink`` never loads.
    """
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True, timeout=60
    )
    (purelib,) = Path(directory, "lib").glob("python3*/site-packages")
    (purelib / "shared.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    python = str(directory / "bin" / "python")
    probe = subprocess.run(
        [python, "-c", "import river, pyflink; import riverflink"],
        cwd=directory,
        capture_output=True,
        text=True,
    )
    assert "No module named 'riverflink'" in probe.stderr, probe.stderr
    return python


def _unpacked_code(directory: Path) -> Path:
    """riverflink's code as an installed copy, for the client's ``PYTHONPATH`` only: the
    cluster's daemons run without it, so its workers see only what a job ships."""
    archive = submit.code_archive(directory.with_suffix(".zip"))
    zipfile.ZipFile(archive).extractall(directory)
    return directory


class Cluster:
    def __init__(self, tmp: Path, python: str, code: Path):
        self.tmp, self.python, self.code = tmp, python, code
        self.directory = tmp / "cluster"
        self.port, self.rpc_port = _free_port(), _free_port()
        self.jobmanager = f"localhost:{self.port}"

    def cli(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        """``python -m riverflink.cli ARGS`` from the temporary directory, not the repository."""
        return subprocess.run(
            [self.python, "-m", "riverflink.cli", *args],
            cwd=self.tmp,
            env={**job_env(), "PYTHONPATH": str(self.code)},
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def rest(self, path: str):
        with urllib.request.urlopen(f"http://{self.jobmanager}{path}", timeout=5) as response:
            return json.loads(response.read())

    def pids(self) -> list[int]:
        return [
            int(p)
            for pid_file in (self.directory / "pid").glob("*.pid")
            for p in pid_file.read_text().split()
        ]


@pytest.fixture
def cluster(tmp_path):
    """Two slots on loopback; always stopped, also when the test fails."""
    c = Cluster(
        tmp_path, _python_without_riverflink(tmp_path / "venv"), _unpacked_code(tmp_path / "code")
    )
    started = []
    try:
        result = c.cli(
            "cluster",
            "start",
            "--slots",
            "2",
            "--port",
            str(c.port),
            "--rpc-port",
            str(c.rpc_port),
            "--dir",
            str(c.directory),
        )
        started = c.pids()
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip().splitlines()[-1] == c.jobmanager
        assert c.rest("/overview")["slots-total"] == 2
        yield c
    finally:
        started = started or c.pids()
        stop = c.cli("cluster", "stop", "--dir", str(c.directory), timeout=120)
        for pid in started:  # whatever `cluster stop` could not stop
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert stop.returncode == 0, stop.stderr


def _wait_for_rows(cluster: Cluster, job_id: str, directory: Path, count: int, timeout=120):
    deadline = time.monotonic() + timeout
    rows = []
    while time.monotonic() < deadline:
        state = cluster.rest(f"/jobs/{job_id}")["state"]
        if state != "RUNNING":
            entries = cluster.rest(f"/jobs/{job_id}/exceptions")["exceptionHistory"]["entries"]
            trace = entries[0]["stacktrace"] if entries else ""
            causes = [line for line in trace.splitlines() if re.search(r"(Error|Exception):", line)]
            raise AssertionError(f"job {state}: " + "\n".join(causes[-5:]))
        rows = read_lines(directory)
        if len(rows) >= count:
            return rows
        time.sleep(0.5)
    raise AssertionError(f"{len(rows)} of {count} rows committed after {timeout} s")


def _learn_vertex(cluster: Cluster, job_id: str) -> dict:
    (vertex,) = [
        v for v in cluster.rest(f"/jobs/{job_id}")["vertices"] if "learn per key" in v["name"]
    ]
    return vertex


def _metric_total(cluster: Cluster, job_id: str, vertex_id: str, name: str) -> int:
    """The sum over subtasks of ``<subtask>.<operator>.<name>`` (0 until reported)."""
    path = f"/jobs/{job_id}/vertices/{vertex_id}/metrics"
    ids = [m["id"] for m in cluster.rest(path) if m["id"].endswith(f".{name}")]
    if not ids:
        return 0
    values = cluster.rest(f"{path}?get={','.join(ids)}")
    return sum(int(float(v["value"])) for v in values)


def _wait_for_metric(cluster, job_id, name, expected, timeout=60) -> None:
    vertex_id = _learn_vertex(cluster, job_id)["id"]
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = _metric_total(cluster, job_id, vertex_id, name)
        if seen == expected:
            return
        time.sleep(1)
    raise AssertionError(f"metric {name}: {seen}, expected {expected} after {timeout} s")


def _job_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), result.stdout
    return job_id


def test_submit_stop_with_savepoint_resume_at_another_parallelism(cluster):
    tmp = cluster.tmp
    records = drifting_stream(2000, keys=KEYS, seed=57, drift_key="m2")
    first, second = records[:1100], records[1100:]
    (tmp / "incoming").mkdir()
    run = ["--source", "incoming", "--follow", "--discovery-interval", "0.5", "--output", "out"]
    jm = ["--jobmanager", cluster.jobmanager]

    # relative paths: resolved against the CLI's working directory before submission
    job1 = _job_id(cluster.cli("submit", *run, "--parallelism", "2", *jm))
    assert _learn_vertex(cluster, job1)["parallelism"] == 2
    write_jsonl(tmp / "one.jsonl", first).rename(tmp / "incoming" / "one.jsonl")
    _wait_for_rows(cluster, job1, tmp / "out" / "predictions", len(first))
    # Flink binds the Python workers' services to every interface; the agent: localhost.
    addresses = listening_addresses(cluster.pids())
    assert len(addresses) >= 2 + 2 * 5, addresses  # the job's two workers' five services each
    assert [a for a in addresses if not on_loopback(a)] == [], addresses
    _wait_for_metric(cluster, job1, "riverflink_predictions", len(first))
    _wait_for_metric(cluster, job1, "riverflink_lines", len(first))
    # every record falls in the processing-time histogram's last (cumulative) bucket
    _wait_for_metric(cluster, job1, "riverflink_record_us_le_inf", len(first))
    vertex = _learn_vertex(cluster, job1)["id"]
    assert _metric_total(cluster, job1, vertex, "riverflink_keys_seen") == len(KEYS)
    assert _metric_total(cluster, job1, vertex, "riverflink_keys_live") == len(KEYS)  # a gauge
    fast = _metric_total(cluster, job1, vertex, "riverflink_record_us_le_1000")
    assert 0 < fast <= len(first)
    assert _metric_total(cluster, job1, vertex, "riverflink_record_us_sum") > 0

    stopped = cluster.cli("stop", job1, "--savepoint-dir", "savepoints", *jm)
    assert stopped.returncode == 0, stopped.stderr
    savepoint = stopped.stdout.strip().splitlines()[-1]
    assert Path(savepoint).is_dir() and Path(savepoint).parent == tmp / "savepoints", savepoint
    # the savepoint is complete when `stop` returns; the job finishes right after
    deadline = time.monotonic() + 30
    while cluster.rest(f"/jobs/{job1}")["state"] != "FINISHED" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster.rest(f"/jobs/{job1}")["state"] == "FINISHED"

    job2 = _job_id(cluster.cli("submit", *run, "--parallelism", "1", "--restore", savepoint, *jm))
    assert _learn_vertex(cluster, job2)["parallelism"] == 1
    write_jsonl(tmp / "two.jsonl", second).rename(tmp / "incoming" / "two.jsonl")
    _wait_for_rows(cluster, job2, tmp / "out" / "predictions", len(records))
    time.sleep(3)  # nothing more may arrive: the first file is not read again
    rows = read_lines(tmp / "out" / "predictions")

    assert len(rows) == len(records)
    assert_like_river({"predictions": rows}, records, kinds=["predictions"])


def test_submit_rejects_bad_settings_before_flink(tmp_path):
    """One line and exit 2, before any cluster is contacted (none runs here)."""
    source = write_jsonl(tmp_path / "in.jsonl", drifting_stream(10))
    for args, message in [
        (["--savepoint-on-exit", "sp"], "detached"),
        (["--model", "linear_model.Nope()"], "linear_model.Nope"),
        (["--parallelism", "0"], "--parallelism"),
    ]:
        result = run_cli(
            *("submit", "--jobmanager", "localhost:1", "--source", str(source)),
            *("--output", "out", *args),
            module="riverflink.cli",
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr


#: A program of a user's own: a directory in, riverflink.learn, files out.
USERS_PROGRAM = """
import sys

from pyflink.common import Duration, Encoder, WatermarkStrategy
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors.file_system import (
    BucketAssigner,
    FileSink,
    FileSource,
    RollingPolicy,
    StreamFormat,
)

import riverflink

incoming, out = sys.argv[1], sys.argv[2]
env = StreamExecutionEnvironment.get_execution_environment()
env.enable_checkpointing(1000)
source = (
    FileSource.for_record_stream_format(StreamFormat.text_line_format(), incoming)
    .monitor_continuously(Duration.of_millis(500))
    .build()
)
lines = env.from_source(source, WatermarkStrategy.no_watermarks(), "incoming").uid("my-source")
learned = riverflink.learn(lines, drift="drift.ADWIN()")
sink = (
    FileSink.for_row_format(out, Encoder.simple_string_encoder())
    .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
    .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
    .build()
)
learned.predictions.sink_to(sink).uid("my-predictions")
env.execute("my own job")
"""


def test_a_users_program_under_flink_run_stops_with_a_savepoint_and_resumes(cluster):
    """``flink run -py my_job.py`` with riverflink shipped as ``riverflink package`` writes
    it: its models go into the savepoint and on at another parallelism."""
    tmp = cluster.tmp
    records = drifting_stream(1600, keys=KEYS, seed=23, drift_key="m1")
    first, second = records[:900], records[900:]
    (tmp / "incoming").mkdir()
    program = tmp / "my_job.py"
    program.write_text(USERS_PROGRAM)
    code = cluster.cli("package", str(tmp / "riverflink.zip"))
    assert code.returncode == 0, code.stderr

    def flink_run(*options: str) -> str:
        output = submit._flink(
            [
                "run",
                "--detached",
                "-m",
                cluster.jobmanager,
                *options,
                "-py",
                str(program),
                "-pyfs",
                str(tmp / "riverflink.zip"),
                "-pyclientexec",
                cluster.python,
                "-pyexec",
                cluster.python,
                str(tmp / "incoming"),
                str(tmp / "out"),
            ],
            timeout=300,
        )
        return submit._JOB_ID.search(output).group(1)

    job1 = flink_run("-p", "2")
    assert _learn_vertex(cluster, job1)["parallelism"] == 2
    write_jsonl(tmp / "one.jsonl", first).rename(tmp / "incoming" / "one.jsonl")
    _wait_for_rows(cluster, job1, tmp / "out", len(first))
    jm = ["--jobmanager", cluster.jobmanager]
    stopped = cluster.cli("stop", job1, "--savepoint-dir", "savepoints", *jm)
    assert stopped.returncode == 0, stopped.stderr
    savepoint = stopped.stdout.strip().splitlines()[-1]

    job2 = flink_run("-p", "1", "-s", savepoint)
    assert _learn_vertex(cluster, job2)["parallelism"] == 1
    write_jsonl(tmp / "two.jsonl", second).rename(tmp / "incoming" / "two.jsonl")
    _wait_for_rows(cluster, job2, tmp / "out", len(records))
    time.sleep(3)  # nothing more may arrive: the first file is not read again
    rows = read_lines(tmp / "out")
    assert len(rows) == len(records)
    assert_like_river({"predictions": rows}, records, kinds=["predictions"])
