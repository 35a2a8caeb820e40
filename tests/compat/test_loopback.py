"""Beam's gRPC server factory in Flink's jars, as ``jobs/accel/loopback.py`` and
``jobs/accel/java/riverflink/LoopbackAgent.java`` rely on it.

Switch: ``RIVERFLINK_LOOPBACK``. The agent rewrites one call in
``org.apache.beam.sdk.fn.server.ServerFactory$InetSocketAddressServerFactory``:
``NettyServerBuilder.forPort(address.getPort())`` becomes
``forAddress(LoopbackAgent.address(address))``, so the Python workers' services listen
on localhost. Local runs load it as ``-javaagent:JAR`` (the class is redefined at start,
``riverflink.grpc.loopback`` says how it went); ``riverflink cluster`` TaskManagers as
``-javaagent:JAR=transform`` (the class is changed as a job's class loader loads it).
"""

from __future__ import annotations

import subprocess

import pytest

from riverflink.accel.loopback import LOOPBACK_PROPERTY
from tests.compat.support import class_array, java_class

pytestmark = pytest.mark.compat

#: LoopbackAgent.TARGET
TARGET = "org.apache.beam.sdk.fn.server.ServerFactory$InetSocketAddressServerFactory"

#: Creates a gRPC server as Beam's services for Flink's Python workers are created
#: (``ServerFactory.createDefault().allocateAddressAndCreate``) and says where it listens.
#: Reflection only: no version-specific class name of Beam's vendored gRPC.
PROBE = """
import java.lang.reflect.Method;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

public class LoopbackProbe {
    public static void main(String[] args) throws Exception {
        Class<?> factories = Class.forName("org.apache.beam.sdk.fn.server.ServerFactory");
        Object factory = factories.getMethod("createDefault").invoke(null);
        System.out.println("factory " + factory.getClass().getName());
        Object builder = Class.forName(
                "org.apache.beam.model.pipeline.v1.Endpoints$ApiServiceDescriptor")
            .getMethod("newBuilder").invoke(null);
        Object server = factories.getMethod("allocateAddressAndCreate", List.class,
            builder.getClass()).invoke(factory, new ArrayList<>(), builder);
        try {
            Method sockets = server.getClass().getMethod("getListenSockets");
            sockets.setAccessible(true);
            for (Object address : (List<?>) sockets.invoke(server)) {
                InetSocketAddress socket = (InetSocketAddress) address;
                System.out.println("listens " + socket.getAddress().isLoopbackAddress());
            }
            System.out.println("url " + builder.getClass().getMethod("getUrl").invoke(builder));
        } finally {
            Method stop = server.getClass().getMethod("shutdownNow");
            stop.setAccessible(true);
            stop.invoke(server);
        }
    }
}
"""


@pytest.fixture(scope="module")
def local_class_path(gateway) -> str:
    """The class path of the JVM PyFlink starts for a local run."""
    return str(gateway.jvm.java.lang.System.getProperty("java.class.path"))


def test_the_local_jvm_has_the_class_on_its_class_path(gateway):
    """Contact: ``ServerFactory$InetSocketAddressServerFactory`` is a class file on the
    class path of the JVM PyFlink starts (``flink-python`` in ``pyflink/opt``), which the
    system class loader finds and loads.
    Relied on by: ``LoopbackAgent.patch`` (else: "unchanged: no ...", and a warning)."""
    loader = gateway.jvm.java.lang.ClassLoader.getSystemClassLoader()
    assert loader.getResource(TARGET.replace(".", "/") + ".class") is not None
    assert java_class(gateway, TARGET, loader).getName() == TARGET


def test_flinks_python_workers_are_served_by_the_default_server_factory(gateway):
    """Contact: Beam's ``ServerFactory.createDefault()`` is an
    ``InetSocketAddressServerFactory``, and the process environment that Flink's Python
    operators start their workers in (``ProcessEnvironmentFactory.Provider``) keeps the
    default ``getServerFactory()``, which returns it.
    Relied on by: ``LoopbackAgent.java`` (``TARGET``: the one class it changes)."""
    factory = gateway.jvm.org.apache.beam.sdk.fn.server.ServerFactory.createDefault()
    assert factory.getClass().getName() == TARGET
    provider = java_class(
        gateway,
        "org.apache.beam.runners.fnexecution.environment.ProcessEnvironmentFactory$Provider",
    )
    method = provider.getMethod("getServerFactory", class_array(gateway))
    assert method.getDeclaringClass().getName() == (
        "org.apache.beam.runners.fnexecution.environment.EnvironmentFactory$Provider"
    )
    assert method.isDefault()


def test_the_agent_patches_the_class_in_a_local_jvm(
    java_executable, riverflink_jar, local_class_path
):
    """Contact: the class's bytecode: one ``InetSocketAddress.getPort()`` call right
    before ``NettyServerBuilder.forPort(int)`` (Beam's vendored gRPC), a builder with
    ``forAddress(SocketAddress)``, and a redefinition the JVM accepts: a JVM started as a
    local run starts (the agent, PyFlink's class path) reports ``patched``.
    Relied on by: ``LoopbackAgent.bindToAddress`` and ``patch``; the outcome is read by
    ``riverflink.accel.loopback.loopback_problem``."""
    done = subprocess.run(
        [
            java_executable,
            f"-javaagent:{riverflink_jar}",
            "-cp",
            local_class_path,
            "-XshowSettings:properties",
            "-version",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"{LOOPBACK_PROPERTY} = patched" in done.stderr, done.stderr


def test_the_changed_class_serves_on_localhost_only(
    java_executable, riverflink_jar, local_class_path, tmp_path
):
    """Contact: what the change does at run time: a server that Beam's default factory
    creates for Flink's Python workers, its class changed by the agent as it loads
    (``riverflink cluster``'s ``transform`` mode; a local run's redefinition makes the same
    class), listens on the loopback address only, and is announced as ``localhost:PORT``.
    Relied on by: ``LoopbackAgent.java`` (``address``, ``bindToAddress``)."""
    probe = tmp_path / "LoopbackProbe.java"
    probe.write_text(PROBE)
    done = subprocess.run(
        [
            java_executable,
            f"-javaagent:{riverflink_jar}=transform",
            "-XX:TieredStopAtLevel=1",  # a quick start: the probe runs for a second
            "-cp",
            local_class_path,
            str(probe),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert f"factory {TARGET}" in lines
    listens = [line for line in lines if line.startswith("listens ")]
    assert listens and all(line == "listens true" for line in listens), lines
    assert any(line.startswith("url localhost:") for line in lines), lines
