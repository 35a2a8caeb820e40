"""The JVM's flags, as ``jobs/accel/jvm_archive.py`` relies on them.

Switches: ``RIVERFLINK_CLASS_ARCHIVE`` (the class-data archive: ``-XX:SharedArchiveFile``
with ``-Xshare:auto``, its messages off, ``-XX:+AllowArchivingWithJavaAgent``) and
``RIVERFLINK_LEAN_JVM`` (``-XX:TieredStopAtLevel=1 -XX:+UseSerialGC``). The JVM is the
one PyFlink starts for a local run; the flags are the ones the module puts in
``JVM_ARGS``.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from riverflink.accel import jvm_archive

pytestmark = pytest.mark.compat


def _run_flags(monkeypatch, archive) -> list:
    """What ``riverflink.runtime.local.run_job`` puts in ``JVM_ARGS`` (the agent aside)."""
    monkeypatch.setattr(jvm_archive, "archive_path", lambda: archive)
    monkeypatch.setenv("JVM_ARGS", "")  # recorded: restored (unset) after the test
    monkeypatch.delenv("JVM_ARGS")
    assert jvm_archive.use_archive()
    assert jvm_archive.use_lean_flags() == list(jvm_archive.LEAN_FLAGS)
    flags = os.environ["JVM_ARGS"].split()
    assert f"-XX:SharedArchiveFile={archive}" in flags and "-Xshare:auto" in flags
    return flags


def _java(java_executable: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [java_executable, *args, "-version"], capture_output=True, text=True, timeout=120
    )


def test_the_jvm_starts_with_local_runs_flags_and_an_archive_it_cannot_use(
    java_executable, accelerators_on, monkeypatch, tmp_path
):
    """Contact: the JVM accepts ``-XX:SharedArchiveFile`` with ``-Xshare:auto``,
    ``-Xlog:cds=off``, ``-Xlog:cds+dynamic=off``, ``-XX:+UnlockDiagnosticVMOptions
    -XX:+AllowArchivingWithJavaAgent``, ``-XX:TieredStopAtLevel=1`` and
    ``-XX:+UseSerialGC``, and starts the usual way, silently (nothing on stdout, where
    ``--output -`` writes), from an archive it cannot map (another JDK or Flink wrote it).
    Relied on by: ``riverflink.accel.jvm_archive`` (``use_archive``, ``use_lean_flags``)."""
    stale = tmp_path / "flink-classes.jsa"
    stale.write_bytes(b"not an archive of this JVM")
    done = _java(java_executable, *_run_flags(monkeypatch, stale))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_the_jvm_starts_with_local_runs_flags_and_the_installed_archive(
    java_executable, accelerators_on, monkeypatch
):
    """Contact: the same flags with the archive ``riverflink warm-up`` wrote into this
    environment: the JVM starts, with nothing on stdout.
    Relied on by: ``riverflink.accel.jvm_archive.use_archive``."""
    installed = jvm_archive.archive_path()
    if not installed.is_file():
        pytest.skip(f"no archive at {installed} (riverflink warm-up writes it)")
    done = _java(java_executable, *_run_flags(monkeypatch, installed))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


def test_the_jvm_writes_an_archive_with_warm_ups_flags(java_executable, tmp_path):
    """Contact: ``-XX:ArchiveClassesAtExit`` with ``-XX:+UnlockDiagnosticVMOptions
    -XX:+AllowArchivingWithJavaAgent`` and ``-Xlog:cds=off``: the JVM writes a dynamic
    archive when it exits, silently.
    Relied on by: ``riverflink.accel.jvm_archive.build_archive`` (``riverflink warm-up``)."""
    archive = tmp_path / "written.jsa"
    flags = [*jvm_archive._WITH_AGENT, f"-XX:ArchiveClassesAtExit={archive}", "-Xlog:cds=off"]
    done = _java(java_executable, *flags)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert archive.is_file() and archive.stat().st_size > 0
