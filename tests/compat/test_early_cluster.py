"""Flink's local execution, as ``jobs/accel/early_cluster.py`` and
``jobs/accel/java/riverflink/EarlyMiniCluster.java`` rely on it.

Switch: ``RIVERFLINK_EARLY_CLUSTER``. ``EarlyMiniCluster`` subclasses Flink's
``MiniCluster``, starts it while the job is built, with the shape Flink's local executor
would ask for, and submits the job through Flink's ``LocalExecutor``, whose factory
hands it this cluster. It reads private fields by reflection and loads Flink's RPC
system the way Flink's own loader does. The Python side calls PyFlink's private
``_generate_stream_graph``.
"""

from __future__ import annotations

import inspect
import io
import zipfile
from pathlib import Path

import pytest

from riverflink.accel import early_cluster
from tests.compat.support import (
    class_array,
    java_class,
    javap,
    method_code,
    object_array,
    riverflink_loader,
)

pytestmark = pytest.mark.compat

MINI_CLUSTER = "org.apache.flink.runtime.minicluster.MiniCluster"
ENVIRONMENT = "org.apache.flink.streaming.api.environment.StreamExecutionEnvironment"
PER_JOB_FACTORY = "org.apache.flink.client.program.PerJobMiniClusterFactory"
LOCAL_EXECUTOR = "org.apache.flink.client.deployment.executors.LocalExecutor"
RPC_SYSTEM = "org.apache.flink.runtime.rpc.RpcSystem"
PEKKO_LOADER = "org.apache.flink.runtime.rpc.pekko.PekkoRpcSystemLoader"
#: The resource EarlyMiniCluster.RPC_JAR names.
RPC_JAR = "flink-rpc-akka.jar"


def _jar_of(cls) -> Path:
    """The jar the JVM loaded ``cls`` (a ``java.lang.Class``) from."""
    return Path(str(cls.getProtectionDomain().getCodeSource().getLocation().toURI().getPath()))


@pytest.fixture(scope="module")
def bytecode(gateway, javap_executable):
    """``javap -c`` of the Flink classes whose code the early cluster relies on."""
    classes = [LOCAL_EXECUTOR, PER_JOB_FACTORY, PEKKO_LOADER]
    jar = _jar_of(java_class(gateway, LOCAL_EXECUTOR))
    assert all(_jar_of(java_class(gateway, name)) == jar for name in classes)
    return javap(jar, classes, javap_executable)


def test_the_private_fields_exist_with_the_types_the_java_side_casts_to(gateway, new_env):
    """Contact: ``MiniCluster.taskManagers`` (``List<TaskExecutor>``),
    ``StreamExecutionEnvironment.configuration`` (a ``Configuration``) and
    ``.userClassloader`` (a ``ClassLoader``), read by reflection on a real environment.
    Relied on by: ``EarlyMiniCluster.java`` (``taskManagers()``, ``field()``), checked
    beforehand by ``riverflink.accel.early_cluster.PRIVATE_FIELDS``."""
    assert {(c, f) for c, f in early_cluster.PRIVATE_FIELDS} == {
        (MINI_CLUSTER, "taskManagers"),
        (ENVIRONMENT, "configuration"),
        (ENVIRONMENT, "userClassloader"),
    }
    task_managers = java_class(gateway, MINI_CLUSTER).getDeclaredField("taskManagers")
    assert task_managers.getGenericType().toString() == (
        "java.util.List<org.apache.flink.runtime.taskexecutor.TaskExecutor>"
    )
    j_env = new_env()._j_stream_execution_environment
    expected = {
        "configuration": java_class(gateway, "org.apache.flink.configuration.Configuration"),
        "userClassloader": java_class(gateway, "java.lang.ClassLoader"),
    }
    for name, cls in expected.items():
        field = java_class(gateway, ENVIRONMENT).getDeclaredField(name)
        field.setAccessible(True)
        assert cls.isInstance(field.get(j_env)), name


def test_missing_internals_finds_nothing_missing(gateway):
    """Contact: all of the above, through the accelerator's own check.
    Relied on by: ``riverflink.accel.early_cluster.missing_internals`` (anything missing turns
    the accelerator off)."""
    assert early_cluster.missing_internals() is None


def test_generate_stream_graph_keeps_the_job_for_the_usual_way(gateway, new_env):
    """Contact: PyFlink's private ``StreamExecutionEnvironment._generate_stream_graph(
    clear_transformations=False, job_name=...)`` returns the job's Java ``StreamGraph`` (a
    ``Pipeline``, what ``EarlyMiniCluster.execute`` takes) named ``job_name``, and keeps
    the transformations, so ``env.execute_async`` can still run the job if the early
    cluster refuses it.
    Relied on by: ``riverflink.accel.early_cluster.EarlyCluster.execute_async``."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.util.java_utils import get_field_value

    parameters = inspect.signature(StreamExecutionEnvironment._generate_stream_graph).parameters
    assert {"clear_transformations", "job_name"} <= set(parameters)
    env = new_env()
    env._j_stream_execution_environment.fromSequence(1, 3).print()
    j_graph = env._generate_stream_graph(clear_transformations=False, job_name="riverflink")
    assert java_class(gateway, "org.apache.flink.api.dag.Pipeline").isInstance(j_graph)
    assert j_graph.getJobName() == "riverflink"
    assert get_field_value(env._j_stream_execution_environment, "transformations").size() > 0


def _conf(gateway, settings: dict):
    conf = gateway.jvm.org.apache.flink.configuration.Configuration()
    for key, value in settings.items():
        conf.setString(key, value)
    return conf


def _shape(config) -> tuple:
    """What ``EarlyMiniCluster.suits`` compares (task managers, slots), and the rest."""
    options = config.getConfiguration()
    return (
        config.getNumTaskManagers(),
        options.toMap().get("taskmanager.numberOfTaskSlots"),
        str(config.getRpcServiceSharing().toString()),
        dict(options.toMap()),
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"taskmanager.numberOfTaskSlots": "4"},
        {"minicluster.number-of-taskmanagers": "2"},
        {"rest.bind-port": "8089"},
        {"pipeline.jobvertex-parallelism-overrides": "a0b1:3"},
    ],
)
def test_the_early_cluster_has_the_shape_flinks_local_executor_asks_for(
    gateway, riverflink_jar, settings
):
    """Contact: ``PerJobMiniClusterFactory.getMiniClusterConfig(int)`` (private), the
    cluster configuration Flink's local executor asks its factory for: task managers,
    slots, RPC service sharing and configuration equal to what
    ``EarlyMiniCluster.clusterConfiguration`` builds for the same parallelism.
    Relied on by: ``EarlyMiniCluster.java`` (``clusterConfiguration``, ``suits``: a
    cluster of another shape is replaced, and the early start is wasted)."""
    jvm = gateway.jvm
    integer = jvm.java.lang.Integer
    conf_class = java_class(gateway, "org.apache.flink.configuration.Configuration")
    flinks = java_class(gateway, PER_JOB_FACTORY).getDeclaredMethod(
        "getMiniClusterConfig", class_array(gateway, integer.TYPE)
    )
    flinks.setAccessible(True)
    early_class = riverflink_loader(gateway, riverflink_jar).loadClass(early_cluster.CLASS_NAME)
    riverflinks = early_class.getDeclaredMethod(
        "clusterConfiguration", class_array(gateway, conf_class, integer.TYPE)
    )
    riverflinks.setAccessible(True)
    for parallelism in (1, 2, 3):
        conf = _conf(gateway, settings)
        factory = jvm.org.apache.flink.client.program.PerJobMiniClusterFactory.createWithFactory(
            conf, None
        )
        wanted = flinks.invoke(factory, object_array(gateway, integer(parallelism)))
        ours = riverflinks.invoke(None, object_array(gateway, conf, integer(parallelism)))
        assert _shape(ours) == _shape(wanted), (settings, parallelism)


def test_the_local_executor_takes_its_cluster_from_the_factory_and_starts_it(bytecode):
    """Contact: ``LocalExecutor.execute`` runs the job through
    ``PerJobMiniClusterFactory.createWithFactory(configuration, its factory)``, whose
    ``submitJob`` asks the factory for a cluster of ``getMiniClusterConfig(the job's
    maximum parallelism)``, calls ``MiniCluster.start()`` on it (``EarlyMiniCluster``
    overrides it to wait for the early start) and closes it with ``closeAsync()`` when the
    job ends (overridden to stop replacing task managers).
    Relied on by: ``EarlyMiniCluster.java`` (``execute``, ``start``, ``closeAsync``)."""
    execute = method_code(bytecode[LOCAL_EXECUTOR], "execute")
    factory = "org/apache/flink/client/program/PerJobMiniClusterFactory"
    assert "Field miniClusterFactory:Ljava/util/function/Function;" in execute
    assert any(c.startswith(f"Method {factory}.createWithFactory:") for c in execute)
    assert any(c.startswith(f"Method {factory}.submitJob:") for c in execute)
    submit = method_code(bytecode[PER_JOB_FACTORY], "submitJob")
    mini = "org/apache/flink/runtime/minicluster/MiniCluster"
    in_order = [
        "InterfaceMethod org/apache/flink/streaming/api/graph/ExecutionPlan.getMaximumParallelism",
        "Method getMiniClusterConfig:(I)",
        "InterfaceMethod java/util/function/Function.apply:",
        f"Method {mini}.start:()V",
        f"Method {mini}.submitJob:",
    ]
    positions = [next(i for i, c in enumerate(submit) if c.startswith(p)) for p in in_order]
    assert positions == sorted(positions)
    shut_down = method_code(bytecode[PER_JOB_FACTORY], "shutDownCluster")
    assert f"Method {mini}.closeAsync:()Ljava/util/concurrent/CompletableFuture;" in shut_down


def test_the_mini_cluster_can_be_extended_as_riverflink_does(gateway, riverflink_jar):
    """Contact: ``MiniCluster`` is not final, has the public constructor
    ``(MiniClusterConfiguration, Supplier<Reference<RpcSystem>>)``, and its ``start``,
    ``closeAsync``, ``closeAsyncWithoutCleaningHighAvailabilityData``,
    ``startTaskManager``, ``isRunning`` and ``getRestAddress`` are public and not final;
    riverflink's class, compiled against the installed Flink, loads over Flink's loader
    with the one constructor ``EarlyCluster.start`` calls: ``(Configuration, int)``.
    Relied on by: ``EarlyMiniCluster.java``, ``riverflink.accel.early_cluster.EarlyCluster``."""
    modifier = gateway.jvm.java.lang.reflect.Modifier
    mini = java_class(gateway, MINI_CLUSTER)
    assert not modifier.isFinal(mini.getModifiers())
    constructor = mini.getConstructor(
        class_array(
            gateway,
            java_class(gateway, "org.apache.flink.runtime.minicluster.MiniClusterConfiguration"),
            java_class(gateway, "java.util.function.Supplier"),
        )
    )
    assert "Supplier<org.apache.flink.util.Reference<org.apache.flink.runtime.rpc.RpcSystem>>" in (
        constructor.toGenericString()
    )
    for name in (
        "start",
        "closeAsync",
        "closeAsyncWithoutCleaningHighAvailabilityData",
        "startTaskManager",
        "isRunning",
        "getRestAddress",
    ):
        method = mini.getMethod(name, class_array(gateway))
        assert modifier.isPublic(method.getModifiers()), name
        assert not modifier.isFinal(method.getModifiers()), name
    early = riverflink_loader(gateway, riverflink_jar).loadClass(early_cluster.CLASS_NAME)
    assert early.getSuperclass().getName() == MINI_CLUSTER
    constructors = early.getConstructors()
    assert len(constructors) == 1
    assert [c.getName() for c in constructors[0].getParameterTypes()] == [
        "org.apache.flink.configuration.Configuration",
        "int",
    ]
    assert len(early.getDeclaredMethods()) > 0  # every signature resolves in this Flink


def test_flinks_rpc_system_is_where_the_early_cluster_reads_it(gateway, bytecode):
    """Contact: Flink's RPC system is the resource ``flink-rpc-akka.jar`` of
    ``RpcSystem``'s class loader, a jar that declares its ``RpcSystem`` service, and
    Flink's own loader (``PekkoRpcSystemLoader``) loads it as ``EarlyMiniCluster``
    copies: that resource, a ``SubmoduleClassLoader(URL[], ClassLoader)``,
    ``ServiceLoader.load(RpcSystem)`` and ``CleanupOnCloseRpcSystem(system, loader,
    path)``.
    Relied on by: ``EarlyMiniCluster.java`` (``rpcSystem``, ``rpcJar``: any change there
    falls back to Flink's way, a 24 MB copy per run)."""
    rpc_system = java_class(gateway, RPC_SYSTEM)
    assert rpc_system.getClassLoader().getResource(RPC_JAR) is not None
    jar = _jar_of(rpc_system)
    with zipfile.ZipFile(jar) as dist:
        inner = io.BytesIO(dist.read(RPC_JAR))
    with zipfile.ZipFile(inner) as rpc:
        assert f"META-INF/services/{RPC_SYSTEM}" in rpc.namelist()
    loads = method_code(bytecode[PEKKO_LOADER], "loadRpcSystem")
    for expected in (
        f"String {RPC_JAR}",
        "Method java/lang/ClassLoader.getResourceAsStream:(Ljava/lang/String;)",
        'Method org/apache/flink/core/classloading/SubmoduleClassLoader."<init>":'
        "([Ljava/net/URL;Ljava/lang/ClassLoader;)V",
        "Method java/util/ServiceLoader.load:(Ljava/lang/Class;Ljava/lang/ClassLoader;)",
        'Method org/apache/flink/runtime/rpc/CleanupOnCloseRpcSystem."<init>":'
        "(Lorg/apache/flink/runtime/rpc/RpcSystem;"
        "Lorg/apache/flink/core/classloading/SubmoduleClassLoader;Ljava/nio/file/Path;)V",
    ):
        assert any(c.startswith(expected) for c in loads), expected
