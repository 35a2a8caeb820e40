"""PyFlink internals that the pipeline and the runtime use: no accelerator, no switch.

The pipeline builds part of the job in Java (``jobs/pipeline/routing.py``,
``jobs/pipeline/sources.py``) through private attributes of PyFlink's Python wrappers
and Java classes reached through Py4J; the runtime sets an environment variable PyFlink
reads, and reads PyFlink's gateway and job-client internals. A failure here is not a
slower run but a failed one: these have no fallback.
"""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from tests.compat.support import class_array, java_class, object_array

pytestmark = pytest.mark.compat

KEY_BY_KEY_SELECTOR = "org.apache.flink.streaming.api.functions.python.KeyByKeySelector"


def _row(gateway, *fields):
    return gateway.jvm.org.apache.flink.types.Row.of(object_array(gateway, *fields))


def test_the_python_wrappers_hold_their_java_objects(gateway, new_env):
    """Contact: ``StreamExecutionEnvironment._j_stream_execution_environment`` (the Java
    environment) and ``DataStream._j_data_stream`` (the Java stream), set by
    ``DataStream(j_data_stream)``.
    Relied on by: ``riverflink.pipeline.routing``, ``riverflink.pipeline.sources``,
    ``riverflink.pipeline._aligned``, ``riverflink.runtime.local._environment``,
    ``riverflink.accel.early_cluster``."""
    from pyflink.datastream import DataStream

    env = new_env()
    j_env = env._j_stream_execution_environment
    environment = java_class(
        gateway, "org.apache.flink.streaming.api.environment.StreamExecutionEnvironment"
    )
    assert environment.isInstance(j_env)
    j_stream = j_env.fromSequence(1, 3)
    assert DataStream(j_stream)._j_data_stream is j_stream
    stream = env.from_collection([1, 2])
    assert java_class(gateway, "org.apache.flink.streaming.api.datastream.DataStream").isInstance(
        stream._j_data_stream
    )


def test_the_environments_configuration_reads_and_writes_strings(gateway, new_env):
    """Contact: ``_j_stream_execution_environment.getConfiguration().getString(key,
    default)`` (the restore path, unaligned checkpoints) and PyFlink's
    ``pyflink.util.java_utils.get_j_env_configuration(j_env).setString(key, value)``
    (the REST port of a cluster started the usual way).
    Relied on by: ``riverflink.pipeline.sources.restore_path``, ``riverflink.pipeline._aligned``,
    ``riverflink.runtime.local._environment``,
    ``riverflink.accel.early_cluster.EarlyCluster.start``."""
    from pyflink.util.java_utils import get_j_env_configuration

    env = new_env()
    j_env = env._j_stream_execution_environment
    get_j_env_configuration(j_env).setString("rest.port", "8765")
    assert j_env.getConfiguration().getString("rest.port", "") == "8765"
    assert j_env.getConfiguration().getString("execution.state-recovery.path", "") == ""


def test_key_by_key_selector_keys_a_row_by_its_first_field(gateway):
    """Contact: ``org.apache.flink.streaming.api.functions.python.KeyByKeySelector``: a
    public no-argument constructor, and ``getKey(Row(bucket, lines))`` is
    ``Row(bucket)``: PyFlink's keyed operators then see the bucket as their key (and
    Flink hashes ``Row(bucket)`` into key groups: ``riverflink.state.descriptors.SPREAD_KEYS``).
    Relied on by: ``riverflink.pipeline.routing`` (``_routed_java``, ``_routed_sql``)."""
    jvm = gateway.jvm
    selector = jvm.org.apache.flink.streaming.api.functions.python.KeyByKeySelector()
    key = selector.getKey(_row(gateway, jvm.java.lang.Integer(7), "a line"))
    assert key.equals(_row(gateway, jvm.java.lang.Integer(7)))
    assert key.getArity() == 1


def test_a_keyed_stream_built_in_java_takes_pyflinks_keyed_process(gateway, new_env):
    """Contact: a Java stream of ``Row(INT, bytes)`` keyed by
    ``.keyBy(KeyByKeySelector())``, wrapped as PyFlink's ``KeyedStream(j_keyed_stream,
    original_data_type_info, origin_stream)`` (a private constructor), takes
    ``.process(KeyedProcessFunction, output_type)``: PyFlink's keyed Python operator.
    Relied on by: ``riverflink.pipeline.routing`` (and ``riverflink.pipeline.build_job``)."""
    from pyflink.common import Row, Types
    from pyflink.datastream import DataStream, KeyedProcessFunction
    from pyflink.datastream.data_stream import KeyedStream

    parameters = inspect.signature(KeyedStream.__init__).parameters
    assert list(parameters) == [
        "self",
        "j_keyed_stream",
        "original_data_type_info",
        "origin_stream",
    ]
    env = new_env()
    row_type = Types.ROW([Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    rows = env.from_collection([Row(1, b"a line")], type_info=row_type)
    selector = gateway.jvm.org.apache.flink.streaming.api.functions.python
    j_keyed = rows._j_data_stream.keyBy(selector.KeyByKeySelector())
    keyed = KeyedStream(j_keyed, Types.INT(), rows)

    class Learn(KeyedProcessFunction):
        def process_element(self, value, ctx):
            yield str(value)

    learned = keyed.process(Learn(), output_type=Types.STRING())
    assert isinstance(learned, DataStream)
    operator = learned._j_data_stream.getTransformation().getOperatorFactory().getOperator()
    assert operator.getClass().getSimpleName() == "ExternalPythonKeyedProcessOperator"


#: (class, method, parameter types) of the Java methods called through Py4J.
PY4J_METHODS = [
    (
        "org.apache.flink.streaming.api.environment.StreamExecutionEnvironment",
        "socketTextStream",
        ["java.lang.String", "int", "java.lang.String", "long"],
    ),
    (
        "org.apache.flink.streaming.api.environment.StreamExecutionEnvironment",
        "addSource",
        [
            "org.apache.flink.streaming.api.functions.source.legacy.SourceFunction",
            "java.lang.String",
            "org.apache.flink.api.common.typeinfo.TypeInformation",
        ],
    ),
    (
        "org.apache.flink.streaming.api.datastream.DataStream",
        "transform",
        [
            "java.lang.String",
            "org.apache.flink.api.common.typeinfo.TypeInformation",
            "org.apache.flink.streaming.api.operators.OneInputStreamOperator",
        ],
    ),
    (
        "org.apache.flink.streaming.api.datastream.DataStream",
        "keyBy",
        ["org.apache.flink.api.java.functions.KeySelector"],
    ),
    (
        "org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator",
        "uid",
        ["java.lang.String"],
    ),
    (
        "org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator",
        "setParallelism",
        ["int"],
    ),
    (
        "org.apache.flink.configuration.Configuration",
        "getString",
        ["java.lang.String", "java.lang.String"],
    ),
    (
        "org.apache.flink.configuration.Configuration",
        "setString",
        ["java.lang.String", "java.lang.String"],
    ),
    (
        "org.apache.flink.core.execution.JobClient",
        "stopWithSavepoint",
        ["boolean", "java.lang.String", "org.apache.flink.core.execution.SavepointFormatType"],
    ),
]


@pytest.mark.parametrize(
    ("class_name", "method", "parameters"),
    PY4J_METHODS,
    ids=[f"{c.rsplit('.', 1)[-1]}.{m}" for c, m, _ in PY4J_METHODS],
)
def test_the_java_methods_called_through_py4j_exist(gateway, class_name, method, parameters):
    """Contact: Java methods the pipeline and runtime call through Py4J (resolved only
    when called: a removed one fails the run): the socket sources
    (``socketTextStream``, ``addSource``), the router (``transform``, ``keyBy``, ``uid``,
    ``setParallelism``), the configuration (``getString``, ``setString``), the final
    savepoint (``JobClient.stopWithSavepoint(boolean, String, SavepointFormatType)``).
    Relied on by: ``riverflink.pipeline.sources``, ``riverflink.pipeline.routing``,
    ``riverflink.pipeline._aligned``, ``riverflink.runtime.local``,
    ``riverflink.runtime.exit_savepoint``."""
    types = []
    for name in parameters:
        primitive = {"int": "Integer", "long": "Long", "boolean": "Boolean"}.get(name)
        types.append(
            getattr(gateway.jvm.java.lang, primitive).TYPE
            if primitive
            else java_class(gateway, name)
        )
    found = java_class(gateway, class_name).getMethod(method, class_array(gateway, *types))
    assert gateway.jvm.java.lang.reflect.Modifier.isPublic(found.getModifiers())


def test_the_canonical_savepoint_format_exists(gateway):
    """Contact: ``org.apache.flink.core.execution.SavepointFormatType.CANONICAL``.
    Relied on by: ``riverflink.runtime.exit_savepoint.stop_with_savepoint``."""
    canonical = gateway.jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    assert canonical.name() == "CANONICAL"


def test_pyflinks_job_client_holds_the_java_client():
    """Contact: PyFlink's ``JobClient(j_job_client)`` keeps the Java client as
    ``_j_job_client``.
    Relied on by: ``riverflink.runtime.exit_savepoint.stop_with_savepoint`` (it calls the Java
    client's ``stopWithSavepoint``) and ``riverflink.accel.early_cluster`` (it wraps the Java
    client it gets)."""
    from pyflink.common.job_client import JobClient

    assert list(inspect.signature(JobClient.__init__).parameters) == ["self", "j_job_client"]
    java_client = object()
    assert JobClient(java_client)._j_job_client is java_client


def test_pyflink_reads_the_worker_execution_mode_from_the_environment(monkeypatch, gateway):
    """Contact: the environment variable ``_python_worker_execution_mode``, read by
    PyFlink's ``StreamExecutionEnvironment._open`` (and ``TableEnvironment._open``) as the
    environment is created: ``process`` runs each subtask's Python in a worker process
    (no loopback server in the client); any other value but ``loopback`` is refused.
    Relied on by: ``riverflink.runtime.local._use_worker_processes``."""
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.table import TableEnvironment
    from pyflink.util.java_utils import get_j_env_configuration

    monkeypatch.setenv("_python_worker_execution_mode", "process")
    env = StreamExecutionEnvironment.get_execution_environment()
    conf = get_j_env_configuration(env._j_stream_execution_environment)
    assert conf.getString("python.loopback-server.address", "") == ""
    monkeypatch.setenv("_python_worker_execution_mode", "no such mode")
    with pytest.raises(ValueError, match="no such mode"):
        StreamExecutionEnvironment.get_execution_environment()
    assert "_python_worker_execution_mode" in inspect.getsource(TableEnvironment._open)


def test_the_gateway_module_holds_the_gateway_once_started(gateway):
    """Contact: ``pyflink.java_gateway._gateway``: None until this process starts (or
    connects to) a JVM, then the gateway ``get_gateway()`` returns.
    Relied on by: ``riverflink.cli.exit_with`` (a process with a JVM exits at once)."""
    import pyflink.java_gateway

    assert pyflink.java_gateway._gateway is gateway
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            "import pyflink.java_gateway as g; print(g._gateway is None)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "True", done.stderr


def test_add_jars_makes_riverflinks_classes_loadable_from_the_context_loader(
    gateway, new_env, riverflink_jar
):
    """Contact: PyFlink's ``env.add_jars(uri)`` adds the jar to the context class loader
    of the gateway's thread for this Python thread, from which the pipeline loads
    riverflink's operator and source classes.
    Relied on by: ``riverflink.pipeline.sources.use_jar``, ``riverflink.pipeline.routing``
    (``_routed_java``), ``riverflink.pipeline.sources._socket_lines``."""
    from riverflink.pipeline.router_jar import CLASS_NAME, SOCKET_CLASS_NAME

    new_env().add_jars(riverflink_jar.as_uri())
    loader = gateway.jvm.Thread.currentThread().getContextClassLoader()
    for name in (CLASS_NAME, SOCKET_CLASS_NAME):
        assert loader.loadClass(name).getName() == name
