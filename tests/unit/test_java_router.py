"""Finding and building riverflink's Java router (compiling it is covered by the routing tests)."""

from __future__ import annotations

import os
import shutil

import pytest

from riverflink.pipeline import router_jar as java_router


def test_the_jar_name_follows_the_sources(tmp_path, monkeypatch):
    source = tmp_path / "riverflink" / "RouteLines.java"
    source.parent.mkdir()
    source.write_text("class A {}")
    monkeypatch.setattr(java_router, "_sources", lambda: [source])
    first = java_router.jar_path()
    source.write_text("class A { int changed; }")
    assert java_router.jar_path() != first  # an edited router is built anew, never stale
    assert first.name.startswith("riverflink-router-") and first.suffix == ".jar"


def test_without_javac_the_build_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="openjdk-17-jdk-headless"):
        java_router.build_jar(tmp_path / "router.jar")


def test_without_javac_jobs_route_in_sql(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(java_router, "jar_path", lambda: tmp_path / "missing.jar")
    assert java_router.router_jar() is None


def test_sql_routing_can_be_chosen(monkeypatch):
    monkeypatch.setenv("RIVERFLINK_ROUTER", "sql")
    assert java_router.router_jar() is None


def test_a_built_router_is_used_as_it_is(tmp_path, monkeypatch):
    jar = tmp_path / "router.jar"
    jar.write_bytes(b"PK")
    monkeypatch.delenv("RIVERFLINK_ROUTER", raising=False)
    monkeypatch.setattr(java_router, "jar_path", lambda: jar)
    assert java_router.router_jar() == jar


@pytest.mark.skipif(shutil.which("javac") is None, reason="no JDK")
def test_a_new_build_removes_all_but_the_newest_builds(tmp_path, monkeypatch):
    source = tmp_path / "src" / "riverflink" / "A.java"
    source.parent.mkdir(parents=True)
    source.write_text("package riverflink; class A {}")
    monkeypatch.setattr(java_router, "_sources", lambda: [source])
    share = tmp_path / "share"
    share.mkdir()
    (share / "flink-2.3.0-classes.jsa").write_bytes(b"")
    for age in range(java_router.KEPT_BUILDS + 1):  # 0: the newest
        for suffix in ("", "-rpc"):
            made = share / f"riverflink-router-{age}{suffix}.jar"
            made.write_bytes(b"PK")
            os.utime(made, (1e9 - age, 1e9 - age))
    java_router.build_jar(share / "riverflink-router-new.jar")
    kept = ["new", *(str(age) for age in range(java_router.KEPT_BUILDS - 1))]  # newest first
    assert sorted(path.name for path in share.iterdir()) == sorted(
        ["flink-2.3.0-classes.jsa"]
        + [f"riverflink-router-{build}.jar" for build in kept]
        + [f"riverflink-router-{build}-rpc.jar" for build in kept if build != "new"]
    )


def test_an_unknown_router_choice_is_refused(monkeypatch):
    from riverflink.config.settings import SettingsError

    monkeypatch.setenv("RIVERFLINK_ROUTER", "fast")
    with pytest.raises(SettingsError, match="RIVERFLINK_ROUTER='fast': java .* or sql"):
        java_router.router_jar()
