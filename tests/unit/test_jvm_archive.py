"""The JVM class archive: flags only when the archive exists, never twice, never for warm-up."""

from __future__ import annotations

import os

import pytest

from riverflink.accel import jvm_archive


@pytest.fixture
def archive(tmp_path, monkeypatch):
    path = tmp_path / "flink-classes.jsa"
    monkeypatch.setattr(jvm_archive, "archive_path", lambda: path)
    monkeypatch.setenv("JVM_ARGS", "")  # recorded: restored (unset) after the test
    monkeypatch.delenv("JVM_ARGS")
    return path


def test_no_archive_no_flags(archive, monkeypatch):
    assert jvm_archive.use_archive() is False
    assert "JVM_ARGS" not in os.environ


def test_archive_flags_added_once_after_the_users_own(archive, monkeypatch):
    archive.write_bytes(b"x")
    monkeypatch.setenv("JVM_ARGS", "-Xmx2g")
    assert jvm_archive.use_archive() is True
    assert jvm_archive.use_archive() is True
    args = os.environ["JVM_ARGS"].split()
    assert args[0] == "-Xmx2g"
    assert args.count(f"-XX:SharedArchiveFile={archive}") == 1
    assert "-Xlog:cds=off" in args  # its messages would land on stdout, among JSON lines
    assert "-XX:+AllowArchivingWithJavaAgent" in args  # written with the agent, read with it


def test_the_warm_up_jvm_writes_the_archive_and_does_not_read_one(archive, monkeypatch):
    archive.write_bytes(b"x")
    monkeypatch.setenv("JVM_ARGS", "-XX:ArchiveClassesAtExit=/tmp/new.jsa")
    assert jvm_archive.use_archive() is False
    assert "SharedArchiveFile" not in os.environ["JVM_ARGS"]


def test_the_archive_lives_in_this_environment_named_by_flink_version():
    import sys

    from pyflink.version import __version__

    path = jvm_archive.archive_path()
    assert path.is_relative_to(sys.prefix)
    assert __version__ in path.name


def test_lean_flags_added_once(monkeypatch):
    monkeypatch.setenv("JVM_ARGS", "-Xmx2g")
    assert jvm_archive.use_lean_flags() == list(jvm_archive.LEAN_FLAGS)
    assert jvm_archive.use_lean_flags() == []
    assert os.environ["JVM_ARGS"].split() == ["-Xmx2g", *jvm_archive.LEAN_FLAGS]


@pytest.mark.parametrize(
    ("own", "kept"),
    [
        ("-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"),
        ("-XX:+UseParallelGC -Xmx1g", "-XX:TieredStopAtLevel=1"),
        ("-XX:TieredStopAtLevel=4", "-XX:+UseSerialGC"),
        ("-XX:-TieredCompilation", "-XX:+UseSerialGC"),
    ],
)
def test_the_users_own_compiler_or_collector_wins(monkeypatch, own, kept):
    monkeypatch.setenv("JVM_ARGS", own)
    assert jvm_archive.use_lean_flags() == [kept]
    assert os.environ["JVM_ARGS"].split() == [*own.split(), kept]
