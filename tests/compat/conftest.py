"""Compat tests: every private contact point of riverflink, against the installed classes.

Each test names, in its docstring, the contact point (a private PyFlink/Beam attribute,
a Flink class reached by reflection, a JVM flag...) and the riverflink module that
relies on it, and asserts exactly what that module relies on. After an upgrade of
PyFlink, Flink, Beam or the JDK, a failure here says which accelerator (or which piece
of the pipeline's Java interop) to review: the accelerators turn themselves off on a
mismatch (slower, still correct), the pipeline's interop does not.

The tests run in the default ``pytest -q``; ``-m compat`` runs them alone. Those that
need the JVM share one: PyFlink's gateway, started once for the session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "compat: a private contact point with the installed PyFlink, Beam, Flink or JVM "
        "(tests/compat/; a failure names the accelerator or module to review)",
    )


@pytest.fixture
def accelerators_on(monkeypatch):
    """Every accelerator switched on, and none turned off earlier in this process."""
    import riverflink.accel as accel

    monkeypatch.delenv(accel.ACCELERATE, raising=False)
    for variable in accel.SWITCHES.values():
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setattr(accel, "_turned_off", {})


@pytest.fixture(scope="session")
def pyflink_home() -> Path:
    import pyflink

    return Path(pyflink.__file__).resolve().parent


@pytest.fixture(scope="session")
def gateway():
    """PyFlink's gateway to its JVM (started once, as a local run starts it)."""
    from pyflink.java_gateway import get_gateway

    return get_gateway()


@pytest.fixture(scope="session")
def riverflink_jar() -> Path:
    """riverflink's jar (router, early mini-cluster, loopback agent, socket source),
    compiled against the installed Flink jars if not built yet; a failed build fails.

    Skipped without a JDK: then none of riverflink's Java classes is used (jobs route
    in Flink SQL; no early cluster, no loopback agent).
    """
    from riverflink.pipeline.router_jar import build_jar, jar_path

    path = jar_path()  # named after PyFlink's version and the sources: built for this Flink
    if path.is_file():
        return path
    if shutil.which("javac") is None:
        pytest.skip("no javac: riverflink's Java classes are not built, nothing uses them")
    return build_jar(path)  # raises with javac's errors


@pytest.fixture(scope="session")
def java_executable() -> str:
    """The ``java`` that PyFlink starts for a local run."""
    from pyflink.pyflink_gateway_server import find_java_executable

    found = shutil.which(find_java_executable())
    assert found, f"PyFlink's java ({find_java_executable()}) is not there"
    return found


@pytest.fixture(scope="session")
def javap_executable(gateway) -> str:
    """The JDK's ``javap``, to read the bytecode of Flink's classes (skipped without it)."""
    home = Path(str(gateway.jvm.java.lang.System.getProperty("java.home")))
    found = shutil.which(str(home / "bin" / "javap")) or shutil.which("javap")
    if found is None:
        pytest.skip("no javap (a JRE without the JDK tools)")
    return found


@pytest.fixture
def new_env(gateway):
    """A new PyFlink ``StreamExecutionEnvironment`` (empty), in local runs' worker mode.

    ``_python_worker_execution_mode=process`` (``riverflink.runtime.local``) also keeps PyFlink
    from starting its loopback worker server inside this test process.
    """
    from pyflink.datastream import StreamExecutionEnvironment

    def make():
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("_python_worker_execution_mode", "process")
            return StreamExecutionEnvironment.get_execution_environment()

    return make
