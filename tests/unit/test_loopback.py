"""The loopback agent: loaded once from the router jar, its failure reported, its switch."""

from __future__ import annotations

import os

from riverflink.accel import loopback


class _Gateway:
    """What loopback_problem reads of py4j's gateway: one system property."""

    def __init__(self, outcome):
        system = type("System", (), {"getProperty": staticmethod(lambda name: outcome)})
        self.jvm = type("JVM", (), {"java": type("java", (), {"lang": type("lang", (), {})})})
        self.jvm.java.lang.System = system


def test_the_agent_comes_from_the_router_jar_once(monkeypatch, tmp_path):
    jar = tmp_path / "riverflink-router-x.jar"
    monkeypatch.setattr("riverflink.pipeline.router_jar.router_jar", lambda: jar)
    monkeypatch.setenv("JVM_ARGS", "-Xmx2g")
    assert loopback.use_loopback_agent() is True
    assert loopback.use_loopback_agent() is True
    assert os.environ["JVM_ARGS"].split() == ["-Xmx2g", f"-javaagent:{jar}"]


def test_no_jar_no_agent(monkeypatch):
    monkeypatch.setattr("riverflink.pipeline.router_jar.router_jar", lambda: None)
    monkeypatch.setenv("JVM_ARGS", "")  # recorded: restored (unset) after the test
    monkeypatch.delenv("JVM_ARGS")
    assert loopback.use_loopback_agent() is False
    assert "JVM_ARGS" not in os.environ


def test_an_agent_that_could_not_patch_is_reported(monkeypatch, tmp_path):
    monkeypatch.setenv("JVM_ARGS", f"-javaagent:{tmp_path}/r.jar")
    assert loopback.loopback_problem(_Gateway("patched")) is None
    problem = loopback.loopback_problem(_Gateway("unchanged: no such class"))
    assert "every network interface" in problem and "unchanged: no such class" in problem
    assert "listen" in loopback.loopback_problem(_Gateway(None))  # agent never ran


def test_without_the_agent_nothing_is_reported(monkeypatch):
    monkeypatch.setenv("JVM_ARGS", "")  # recorded: restored (unset) after the test
    monkeypatch.delenv("JVM_ARGS")  # `flink run`, or no JDK
    assert loopback.loopback_problem(_Gateway(None)) is None


def test_switched_off_no_agent(monkeypatch, tmp_path):
    monkeypatch.setattr("riverflink.pipeline.router_jar.router_jar", lambda: tmp_path / "r.jar")
    monkeypatch.setenv("JVM_ARGS", "")  # recorded: restored (unset) after the test
    monkeypatch.delenv("JVM_ARGS")
    for variable in ("RIVERFLINK_LOOPBACK", "RIVERFLINK_ACCELERATE"):
        monkeypatch.setenv(variable, "0")
        assert loopback.use_loopback_agent() is False
        assert "JVM_ARGS" not in os.environ
        monkeypatch.delenv(variable)
