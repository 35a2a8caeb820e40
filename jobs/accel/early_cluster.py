"""The local mini-cluster, started while the job is still being built.

``env.execute_async`` starts the mini-cluster only once the job is complete: on a cold
JVM most of a second of Java work after the job is built. riverflink starts it as soon
as the execution environment exists, in a JVM thread of its own
(``jobs/accel/java/riverflink/EarlyMiniCluster.java``), so it comes up while the client
builds the job and the warm worker process checks the model spec. The job then goes
through Flink's own local executor, which is handed this cluster instead of starting
one: same configuration, same submission, same shutdown when the job ends.

The cluster also replaces a task manager that ends while it runs. The mini-cluster
closes a task manager on any fatal error and never starts another, so a job that then
restarts waits for slots forever; one such error comes from Flink's own Python
operators (Beam's shared Python resources, released twice while a failed task cleans
up: "Reference count must not be negative").

It also reads Flink's RPC system (Pekko, a 24 MB jar inside flink-dist) from one copy
kept beside riverflink's jar, where Flink would copy it into a new temporary file for
each cluster: the cluster starts sooner, and a run that is killed leaves no such file
in ``/tmp``.

Only local runs do this (not under ``flink run``), and only where riverflink's Java
classes are built (:mod:`riverflink.pipeline.router_jar`); ``RIVERFLINK_EARLY_CLUSTER=0`` (or
``RIVERFLINK_ACCELERATE=0``) turns it off. It reads three private fields by reflection
(:data:`PRIVATE_FIELDS`) and PyFlink's ``_generate_stream_graph``; it checks them before
it starts, and anything unexpected on the way falls back to ``env.execute_async`` with
one warning line.
"""

from __future__ import annotations

import os
import signal

from riverflink.accel import enabled, turn_off
from riverflink.config.target import under_flink_run

__all__ = ["CLASS_NAME", "EarlyCluster", "halt_jvm"]

#: The Java class, in the jar of :mod:`riverflink.pipeline.router_jar`.
CLASS_NAME = "riverflink.EarlyMiniCluster"


class EarlyCluster:
    """A mini-cluster starting in the JVM for the job ``env`` is about to hold."""

    def __init__(self, j_cluster):
        self._j_cluster = j_cluster
        self.ran_job = False

    @staticmethod
    def possible() -> bool:
        """Whether :meth:`start` will try (a local run with riverflink's Java classes)."""
        if not enabled("early_cluster"):
            return False
        if under_flink_run():  # the cluster exists already
            return False
        from riverflink.pipeline.router_jar import router_jar

        return router_jar() is not None

    @classmethod
    def start(cls, env, parallelism: int) -> EarlyCluster | None:
        """Start the cluster now; None where it cannot (then execute as usual)."""
        if not cls.possible():
            return None
        from py4j.protocol import Py4JError
        from pyflink.java_gateway import get_gateway
        from pyflink.util.java_utils import get_j_env_configuration, load_java_class

        from riverflink.pipeline.router_jar import router_jar

        jar = router_jar()
        problem = missing_internals()
        if problem is not None:
            turn_off("early_cluster", problem)
            return None
        try:
            gateway = get_gateway()
            jvm = gateway.jvm
            flink = load_java_class("org.apache.flink.runtime.minicluster.MiniCluster")
            urls = gateway.new_array(jvm.java.net.URL, 1)
            urls[0] = jvm.java.net.URL(jar.as_uri())
            loader = jvm.java.net.URLClassLoader(urls, flink.getClassLoader())
            args = gateway.new_array(jvm.java.lang.Object, 2)
            args[0] = get_j_env_configuration(env._j_stream_execution_environment)
            args[1] = jvm.java.lang.Integer(parallelism)
            constructor = loader.loadClass(CLASS_NAME).getConstructors()[0]
            cluster = cls(constructor.newInstance(args))
        except Exception as exc:  # noqa: BLE001 - the usual start never depends on it
            turn_off("early_cluster", exc if isinstance(exc, Py4JError) else repr(exc))
            return None
        _STARTED.append(cluster)
        return cluster

    def rest_port(self) -> int:
        """The port its REST API listens on, once it has started (it may pick any free
        port: ``rest.port`` 0)."""
        return int(self._j_cluster.restPort())

    def execute_async(self, env, job_name: str):
        """``env.execute_async(job_name)``, on this cluster: the job's client, once submitted."""
        from py4j.protocol import Py4JJavaError
        from pyflink.common.job_client import JobClient

        # The transformations stay: should this cluster refuse the job, the usual way runs it.
        j_graph = env._generate_stream_graph(clear_transformations=False, job_name=job_name)
        try:
            j_client = self._j_cluster.execute(env._j_stream_execution_environment, j_graph)
        except Py4JJavaError as exc:
            if "NoSuchField" not in str(exc) and "IllegalAccess" not in str(exc):
                raise  # the job itself could not be submitted: as env.execute_async would
            turn_off("early_cluster", exc.java_exception.toString())
            self.discard()
            return env.execute_async(job_name)
        self.ran_job = True
        return JobClient(j_client)

    def discard(self) -> None:
        """Close the cluster if no job was given to it (the job failed to build)."""
        try:
            self._j_cluster.discard()
        except Exception:  # noqa: BLE001 - the JVM may be gone already; nothing to close
            pass


#: The private fields the Java side reads by reflection: (class, field).
PRIVATE_FIELDS = (
    ("org.apache.flink.runtime.minicluster.MiniCluster", "taskManagers"),
    ("org.apache.flink.streaming.api.environment.StreamExecutionEnvironment", "configuration"),
    ("org.apache.flink.streaming.api.environment.StreamExecutionEnvironment", "userClassloader"),
)


def missing_internals() -> str | None:
    """What the early cluster needs and this Flink lacks, or None when all is there."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.util.java_utils import load_java_class

    if not callable(getattr(StreamExecutionEnvironment, "_generate_stream_graph", None)):
        return "PyFlink's StreamExecutionEnvironment has no _generate_stream_graph"
    for class_name, field in PRIVATE_FIELDS:
        try:
            load_java_class(class_name).getDeclaredField(field)
        except Exception:  # noqa: BLE001 - Py4JJavaError: NoSuchFieldException
            return f"Flink's {class_name.rsplit('.', 1)[-1]} has no field {field!r}"
    return None


#: The clusters started in this process (:func:`halt_jvm` waits for them to close).
_STARTED: list = []


def halt_jvm(timeout: float = 2.0) -> bool:
    """Stop this process's JVM now, once every cluster it started has shut down.

    Left to itself, the JVM stops when this process ends (its stdin closes), running its
    shutdown hooks first: about 0.3 s, during which it holds the run's stdout and stderr
    open, so a script piping them waits. Once the clusters have closed (their files
    committed, their temporary directories removed), nothing is left for the hooks to
    do. Returns False, and leaves the JVM alone, when a cluster is still closing after
    ``timeout`` seconds, when none was started, when one never ran a job (the run
    failed before: it may still be starting), or when the JVM writes a class-data
    archive at exit (``riverflink warm-up``).
    """
    if not _STARTED or not all(cluster.ran_job for cluster in _STARTED):
        return False
    if "ArchiveClassesAtExit" in os.environ.get("JVM_ARGS", ""):
        return False
    from py4j.protocol import Py4JError
    from pyflink.java_gateway import get_gateway

    try:
        if not all(cluster._j_cluster.closeWithin(int(timeout * 1000)) for cluster in _STARTED):
            return False
        pid = int(get_gateway().jvm.java.lang.ProcessHandle.current().pid())
    except Py4JError:
        return False
    os.kill(pid, signal.SIGKILL)  # as Runtime.halt: no shutdown hooks
    return True
