"""Cluster and submit helpers without a JVM: generated configuration, flags, paths, code zip."""

from __future__ import annotations

import argparse
import zipfile

import pytest
import yaml

from riverflink.cli.flags import add_run_arguments
from riverflink.cluster import standalone as cluster
from riverflink.cluster import submit
from riverflink.config.job_file import settings_from_args
from riverflink.config.settings import JobSettings, SettingsError


def parse(argv) -> JobSettings:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    return settings_from_args(parser.parse_args(argv))


@pytest.fixture
def incoming(tmp_path):
    (tmp_path / "in").mkdir()
    return tmp_path / "in"


def test_run_flags_reproduce_the_settings(incoming, tmp_path):
    settings = JobSettings(
        source=str(incoming),
        output=str(tmp_path / "out"),
        follow=True,
        discovery_interval=0.5,
        features=("a", "b"),
        model="linear_model.LogisticRegression(l2=0.01)",
        drift="none",
        on_drift="reset",
        parallelism=3,
        state_ttl=60.0,
        state_backend="rocksdb",
    )
    flags = submit.run_flags(settings)
    assert parse(flags) == settings
    assert "--key" not in flags  # defaults are left out


def test_paths_become_absolute(incoming, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sp").mkdir()
    (tmp_path / "sp" / "_metadata").write_bytes(b"meta")  # a savepoint
    relative = parse(
        ["--source", "in", "--output", "out", "--checkpoint-dir", "ck", "--restore", "sp"]
    )
    absolute = submit.absolute_paths(relative)
    assert absolute.source == str(incoming)
    assert absolute.output == str(tmp_path / "out")
    assert absolute.checkpoint_dir == str(tmp_path / "ck")
    assert absolute.restore == str(tmp_path / "sp")
    sockets = parse(["--source", "socket://localhost:9", "--output", "-"])
    assert submit.absolute_paths(sockets) == sockets


def test_savepoint_on_exit_is_refused_before_flink(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"key": 1, "y": true}\n')
    settings = parse(["--source", str(data), "--output", "out", "--savepoint-on-exit", "sp"])
    with pytest.raises(SettingsError, match="detached"):
        submit.submit_job(settings, "localhost:1")


def test_code_archive_holds_the_packages_at_its_root(tmp_path):
    names = zipfile.ZipFile(submit.code_archive(tmp_path / "code.zip")).namelist()
    for module in (
        "riverflink/online_learning.py",
        "riverflink/operators/functions.py",
        "riverflink/state/envelope.py",
        "riverflink/operators/java/riverflink/RouteLines.java",
    ):
        assert module in names
    assert {name.split("/")[0] for name in names} == {"riverflink"}
    assert not any("__pycache__" in name for name in names)


def test_code_archive_finds_the_same_router_jar(tmp_path):
    """The submitted job is built from the unpacked archive: it must name the router jar that
    warm-up built (the digest of the Java sources), or the job routes in Flink SQL."""
    import subprocess
    import sys

    from riverflink.pipeline.router_jar import jar_path

    zipfile.ZipFile(submit.code_archive(tmp_path / "code.zip")).extractall(tmp_path / "code")
    unpacked = subprocess.run(
        [
            sys.executable,
            "-c",
            "import riverflink; from riverflink.pipeline.router_jar import jar_path; "
            "print(riverflink.__file__); print(jar_path())",
        ],
        cwd=tmp_path / "code",
        env={"PYTHONPATH": str(tmp_path / "code"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    package, jar = unpacked.stdout.split()
    assert package == str(tmp_path / "code" / "riverflink" / "__init__.py")
    assert jar == str(jar_path())


def test_generated_conf_overrides_slots_ports_and_python(tmp_path, monkeypatch):
    monkeypatch.setattr("riverflink.pipeline.router_jar.router_jar", lambda: tmp_path / "r.jar")
    conf_dir = cluster.write_conf(tmp_path, slots=3, rest_port=18081, rpc_port=16123)
    conf = yaml.safe_load((conf_dir / "config.yaml").read_text())
    assert conf["taskmanager.numberOfTaskSlots"] == 3
    assert conf["rest.port"] == 18081 and conf["rest.bind-address"] == "localhost"
    assert conf["jobmanager.rpc.port"] == 16123
    assert conf["python.executable"]
    assert "-Dfile.encoding=ISO-8859-1" in conf["env.java.opts.all"]
    assert conf["python.execution-mode"] == "process"  # the rest of flink-conf/config.yaml
    assert (conf_dir / "log4j.properties").exists()
    # the workers' services on localhost (jobs/accel/java/riverflink/LoopbackAgent.java)
    assert conf["env.java.opts.taskmanager"] == f"-javaagent:{tmp_path / 'r.jar'}=transform"


def test_stop_and_start_refuse_what_is_not_theirs(tmp_path):
    assert cluster.stop_cluster(tmp_path) == []  # nothing started: nothing stopped
    (tmp_path / "pid").mkdir()
    (tmp_path / "pid" / "flink-riverflink-taskexecutor.pid").write_text("1\n")
    assert cluster.running_pids(tmp_path) == {"taskexecutor": []}  # pid 1 is not ours
    with pytest.raises(cluster.ClusterError, match="at least 1"):
        cluster.start_cluster(slots=0, directory=tmp_path)


def test_the_default_jobmanager_is_the_running_clusters(tmp_path, monkeypatch):
    """After `cluster start --port 8082`, submit and stop find it without --jobmanager."""
    monkeypatch.setattr(cluster, "default_cluster_dir", lambda: tmp_path)
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "config.yaml").write_text("rest.address: localhost\nrest.port: 8082\n")
    monkeypatch.setattr(cluster, "running_pids", lambda directory: {"jobmanager": [4242]})
    assert cluster.default_jobmanager() == "localhost:8082"
    monkeypatch.setattr(cluster, "running_pids", lambda directory: {"jobmanager": []})
    assert cluster.default_jobmanager() == "localhost:8081"  # flink-conf/config.yaml's
