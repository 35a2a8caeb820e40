"""The riverflink job: JSON lines in, one River learner per key, predictions out.

    python -m jobs.online_learning --source data.jsonl --output out/

The job is one linear chain; each step's comment gives the shape of its items.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from jobs.flink_config import flink_settings, use_project_conf_dir
from jobs.settings import DISCOVERY_INTERVAL, UNBOUNDED_COMMIT_INTERVAL, JobSettings, SettingsError

__all__ = ["build_job", "run_job", "main"]

UIDS = {
    "source": "riverflink-source",
    "route": "riverflink-route",
    "learn": "riverflink-learn-per-key",
    "predictions": "riverflink-sink-predictions",
    "alerts": "riverflink-sink-alerts",
    "outcomes": "riverflink-sink-outcomes",
    "rejected": "riverflink-sink-rejected",
    "stdout": "riverflink-sink-stdout",
}


def _uri(path: str) -> str:
    from jobs.exit_savepoint import flink_uri

    return flink_uri(path)


def flink_configuration(settings: JobSettings):
    """Flink's configuration for this job: ``flink-conf/config.yaml`` + job settings."""
    from pyflink.common import Configuration

    from jobs.checkpoints import latest_checkpoint

    conf = Configuration()
    for key, value in flink_settings().items():
        if not key.startswith(("env.java", "jobmanager.", "taskmanager.", "rest.")):
            conf.set_string(key, value)
    if "PYFLINK_GATEWAY_PORT" not in os.environ:
        if not conf.contains_key("python.executable"):
            conf.set_string("python.executable", sys.executable)
        conf.set_string("python.client.executable", sys.executable)
    # else: started by `flink run`, whose -pyexec / -pyarch / config.yaml pick the workers'
    # Python (this configuration would override them: it is stacked on top of the CLI's).
    conf.set_string("parallelism.default", str(settings.parallelism))

    if settings.state_backend:
        conf.set_string("state.backend.type", settings.state_backend)
    if conf.get_string("state.backend.type", "hashmap") == "rocksdb":
        conf.set_string("execution.checkpointing.incremental", "true")

    checkpoint_dir, interval = settings.checkpoint_dir, settings.checkpoint_interval
    if checkpoint_dir is None and (settings.unbounded or settings.savepoint_on_exit):
        # Unbounded output is committed at checkpoints: without them nothing would appear.
        if settings.output != "-":
            checkpoint_dir = str(Path(settings.output) / "_checkpoints")
        interval = interval or UNBOUNDED_COMMIT_INTERVAL
    if settings.savepoint_on_exit and settings.checkpoint_interval is None:
        interval = 1.0  # the run ends once its output is committed: commit often
    if checkpoint_dir is not None or (settings.unbounded and settings.output == "-"):
        conf.set_string("execution.checkpointing.interval", f"{int((interval or 10) * 1000)} ms")
        if checkpoint_dir is not None:
            conf.set_string("execution.checkpointing.dir", _uri(checkpoint_dir))
    else:
        conf.set_string("restart-strategy.type", "none")

    profile = settings.tuning
    bundle_size = profile["bundle_size"]
    if conf.contains_key("execution.checkpointing.interval"):
        bundle_size = profile.get("checkpointed_bundle_size", bundle_size)
    for key, value in (
        ("python.fn-execution.bundle.size", str(bundle_size)),
        ("python.fn-execution.bundle.time", str(profile["bundle_ms"])),
        ("execution.buffer-timeout.interval", f"{profile['buffer_ms']} ms"),
    ):
        if not conf.contains_key(key):  # flink-conf/config.yaml may pin them
            conf.set_string(key, value)

    restore = settings.restore
    if restore == "latest":
        found = latest_checkpoint(settings.checkpoint_dir)
        if found is None:
            raise SettingsError(
                f"--restore latest: no completed checkpoint under {settings.checkpoint_dir}"
            )
        restore = str(found)
    if restore:
        _check_execution_mode(restore, conf.get_string("python.execution-mode", "process"))
        _check_backend(restore, conf.get_string("state.backend.type", "hashmap"))
        conf.set_string("execution.state-recovery.path", _uri(restore))
        # The source's read position is dropped when the input changed (_source_uid).
        conf.set_string("execution.state-recovery.ignore-unclaimed-state", "true")
    return conf


def _check_execution_mode(restore: str, mode: str) -> None:
    """Refuse a restore whose models this job could not see (they would restart from scratch)."""
    from jobs.checkpoints import execution_mode_of
    from state.descriptors import KEY_STATE_NAME, OLD_STATE_NAMES, ROUTINGS

    for old_name in OLD_STATE_NAMES:
        if execution_mode_of(restore, old_name) is not None:
            raise SettingsError(
                f"--restore {restore}: its models were written by an earlier riverflink, "
                f"as Flink state {old_name!r}; this one keeps them as {KEY_STATE_NAME!r} "
                "(keys grouped in routing buckets) and cannot read them. Restoring would "
                "start every model from scratch, so riverflink refuses. Run the earlier "
                "riverflink to finish that job, or start without --restore."
            )
    written = {execution_mode_of(restore, name) for name in ROUTINGS.values()} - {None}
    written = written.pop() if len(written) == 1 else None
    if written in ("process", "thread") and written != mode:
        raise SettingsError(
            f"--restore {restore}: its models were written in PyFlink's {written!r} execution "
            f"mode, but this job runs in {mode!r} mode (python.execution-mode in "
            "flink-conf/config.yaml). Python state of one mode is invisible to the other, so "
            f"every model would start from scratch. Set python.execution-mode: {written} to "
            "resume it."
        )


def _check_backend(restore: str, backend: str) -> None:
    """Refuse a checkpoint of another state backend: Flink fails on it deep in the restore."""
    from jobs.checkpoints import backend_of

    written = backend_of(restore)
    if written is not None and written != backend.strip().lower():
        raise SettingsError(
            f"--restore {restore}: a checkpoint of the {written} state backend, and this job "
            f"runs {backend} (--state-backend, or state.backend.type in "
            "flink-conf/config.yaml). A checkpoint restores only into the backend that wrote "
            f"it: run with --state-backend {written}, or carry the models over in a savepoint "
            "(--savepoint-on-exit, riverflink stop), which either backend reads."
        )


def _source_uid(settings: JobSettings, restore: str | None) -> str:
    """The file source's uid decides what a restore resumes of its reading.

    The uid names the input (its resolved path) and how it is read (once, or followed),
    so a restore resumes the read position of that same input read the same way, and
    reads any other input from its start; the models carry on either way. A
    --savepoint-on-exit run has read everything, so its source gets a uid no later run
    claims. A checkpoint of the same input read the other way is refused: Flink would
    resume a followed directory's reading as a one-time read of the files it had listed
    (nothing that arrived since), or a one-time read as following from scratch (what was
    read, learned twice).
    """
    from jobs.checkpoints import holds_operator

    if settings.savepoint_on_exit:
        import uuid

        return f"{UIDS['source']}-exit-{uuid.uuid4().hex[:12]}"
    uid = _file_source_uid(settings.source, settings.follow)
    if restore is None or holds_operator(restore, uid) is not False:
        return uid  # nothing to resume, or this input's position (or unknown: a remote path)
    if holds_operator(restore, _file_source_uid(settings.source, not settings.follow)):
        if settings.follow:
            raise SettingsError(
                f"--restore {restore}: that run read {settings.source} once (without "
                "--follow); following it now would read its files again from the start and "
                "the models would learn them twice. Restore without --follow to finish that "
                "read (with --savepoint-on-exit to carry the models on), then follow a "
                "directory that holds only new files."
            )
        raise SettingsError(
            f"--restore {restore}: that run followed {settings.source} (--follow); read "
            "once, the restored source would take only the files it had listed then, and "
            "none that arrived since. Restore with --follow to carry on where it stood, or "
            "read another file or directory once."
        )
    if holds_operator(restore, UIDS["source"]):
        return UIDS["source"]  # an earlier riverflink's uid, which named no input: as then
    return uid


def _file_source_uid(source: str, follow: bool) -> str:
    import hashlib

    path = str(Path(source).resolve()).encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(path).hexdigest()[:16]
    return f"{UIDS['source']}-{'follow' if follow else 'files'}-{digest}"


def _file_sink(path: Path):
    from pyflink.common.serialization import Encoder
    from pyflink.datastream.connectors.file_system import (
        BucketAssigner,
        FileSink,
        OutputFileConfig,
        RollingPolicy,
    )

    return (
        FileSink.for_row_format(str(path), Encoder.simple_string_encoder())
        .with_bucket_assigner(BucketAssigner.base_path_bucket_assigner())
        .with_rolling_policy(RollingPolicy.on_checkpoint_rolling_policy())
        .with_output_file_config(
            OutputFileConfig.builder().with_part_prefix("part").with_part_suffix(".jsonl").build()
        )
        .build()
    )


def _use_jar(env, jar: Path) -> None:
    """Ship riverflink's jar with the job and load classes from it (once per job)."""
    added = env.__dict__.setdefault("_riverflink_jars", set())
    if jar not in added:
        env.add_jars(jar.as_uri())
        added.add(jar)


def _socket_lines(env, host: str, port: int, retries: int):
    """The lines of ``socket://HOST:PORT`` (a Java ``DataStream``): riverflink's source
    (``jobs/java/riverflink/SocketLines.java``), or Flink's where it cannot be built.

    Flink's keeps an unterminated last line across a reconnect and glues it to the next
    connection's first line; riverflink's ends it with its connection.
    """
    from pyflink.common import Types
    from pyflink.java_gateway import get_gateway

    from jobs.java_router import SOCKET_CLASS_NAME, router_jar

    j_env = env._j_stream_execution_environment
    jar = router_jar()
    if jar is None:
        # Flink counts connections, not reconnects: N reconnects = N + 1 connections.
        return j_env.socketTextStream(host, port, "\n", retries + 1 if retries else 0)
    _use_jar(env, jar)
    gateway = get_gateway()
    loader = gateway.jvm.Thread.currentThread().getContextClassLoader()
    args = gateway.new_array(gateway.jvm.java.lang.Object, 3)
    args[0], args[1] = host, gateway.jvm.java.lang.Integer(port)
    args[2] = gateway.jvm.java.lang.Long(retries + 1)
    source = loader.loadClass(SOCKET_CLASS_NAME).getConstructors()[0].newInstance(args)
    return j_env.addSource(source, f"socket {host}:{port}", Types.STRING().get_java_type_info())


def _source(env, settings: JobSettings):
    from pyflink.common import Duration, WatermarkStrategy
    from pyflink.datastream import DataStream
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat

    if settings.is_socket:
        host, port = settings.socket_address
        return (
            DataStream(_socket_lines(env, host, port, settings.socket_retries))
            .name(f"socket {host}:{port}")
            .uid(UIDS["source"])
        )
    # ISO-8859-1 hands every byte through as one character; Python decodes UTF-8 strictly.
    fmt = StreamFormat.text_line_format("ISO-8859-1")
    if settings.savepoint_on_exit:
        # Tasks must stay alive for the final savepoint: read exactly today's files, never finish.
        from jobs.exit_savepoint import input_files

        paths = [str(p.resolve()) for p in input_files(settings.source)]
        builder = FileSource.for_record_stream_format(fmt, *paths).monitor_continuously(
            Duration.of_millis(500)
        )
    elif settings.follow:
        builder = FileSource.for_record_stream_format(fmt, str(Path(settings.source).resolve()))
        builder = builder.monitor_continuously(
            Duration.of_millis(int((settings.discovery_interval or DISCOVERY_INTERVAL) * 1000))
        )
    else:
        builder = FileSource.for_record_stream_format(fmt, str(Path(settings.source).resolve()))
        builder = builder.process_static_file_set()
    return env.from_source(builder.build(), WatermarkStrategy.no_watermarks(), "files").uid(
        _source_uid(settings, _restore_path(env, settings))
    )


def _restore_path(env, settings: JobSettings) -> str | None:
    """The checkpoint or savepoint the job starts from (--restore, or `flink run -s`), if any."""
    j_conf = env._j_stream_execution_environment.getConfiguration()
    for key in ("execution.state-recovery.path", "execution.savepoint.path"):
        value = j_conf.getString(key, "")
        if value:
            from jobs.exit_savepoint import local_path

            return local_path(value)
    return settings.restore


def _state_is_read(env, settings: JobSettings) -> bool:
    """Whether anything but the learning operator itself may read the job's state.

    Checkpoints and savepoints do; a local run of a bounded input without checkpoints
    takes neither (a failure ends it), so its models need not reach Flink state until
    they leave the worker's memory.
    """
    if "PYFLINK_GATEWAY_PORT" in os.environ or settings.unbounded or settings.savepoint_on_exit:
        return True  # a cluster's job can be stopped with a savepoint at any time
    return bool(env.get_checkpoint_config().is_checkpointing_enabled())


def _aligned(env) -> bool:
    """Whether checkpoint barriers wait behind the lines sent before them (not unaligned).

    Only then does the router's checkpoint marker reach the learner before the barrier.
    """
    j_conf = env._j_stream_execution_environment.getConfiguration()
    return not any(
        j_conf.getString(key, "false").strip().lower() == "true"
        for key in (
            "execution.checkpointing.unaligned.enabled",
            "execution.checkpointing.unaligned",
        )
    )


def _restoring(env, settings: JobSettings) -> bool:
    """Whether the job starts from a checkpoint or savepoint (--restore, or `flink run -s`)."""
    return _restore_path(env, settings) is not None


def _json_path(field: str) -> str:
    """The JSON path of a top-level field, as a SQL string literal."""
    if field.isidentifier() and field.isascii():
        path = f"$.{field}"
    else:
        path = "$['" + field.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return "'" + path.replace("'", "''") + "'"


def _key_text_sql(field: str) -> str:
    """SQL for the key field's text, as ``JSON_VALUE`` gives it ('' when there is none).

    Parsing JSON in Flink costs more per line than anything else in Java, so a line that
    starts with the key field holding a plain ASCII string (``{"key": "u42", ...``) has
    it cut out by a regular expression; every other line is parsed. Both give the same
    text, which ``operators.records.route_text`` gives in Python.
    """
    raw = "f0"  # raw bytes as ISO-8859-1 characters (see _source)
    bom = "CHR(239) || CHR(187) || CHR(191)"
    unbommed = f"CASE WHEN SUBSTRING({raw}, 1, 3) = {bom} THEN SUBSTRING({raw}, 4) ELSE {raw} END"
    text = f"DECODE(ENCODE({unbommed}, 'ISO-8859-1'), 'UTF-8')"
    parsed = f"JSON_VALUE({text}, {_json_path(field)})"
    if not (field.isascii() and field.replace("_", "a").isalnum()):
        return f"COALESCE({parsed}, '')"
    fast = r"^\{\s*\"" + field + r"\"\s*:\s*\"([\x20\x21\x23-\x5b\x5d-\x7e]*)\"\s*[,}]"
    return f"COALESCE(REGEXP_EXTRACT({raw}, '{fast}', 1), {parsed}, '')"


def _routed(env, lines, settings: JobSettings, *, markers: bool = False):
    """Lines keyed by routing bucket, one by one or batched (``--profile``), all in Java.

    riverflink's own operator does it (:mod:`jobs.java_router`), or Flink SQL where
    that cannot be built. Returns ``(keyed stream, markers, routing)``: with ``markers``
    asked for and the router in use, each bucket gets an empty list right before each
    checkpoint barrier; ``routing`` (``state.descriptors``) is ``spread`` unless the
    restored state was written with ``hash`` routing or only Flink SQL can route.
    """
    from jobs.checkpoints import execution_mode_of
    from jobs.java_router import router_jar
    from state.descriptors import HASH, HASH_STATE_NAME, KEY_STATE_NAME, SPREAD

    restore = _restore_path(env, settings)
    routing = SPREAD
    if restore is not None:
        if execution_mode_of(restore, HASH_STATE_NAME) is not None:
            routing = HASH
            print(
                f"riverflink: {restore} holds models in buckets of an earlier riverflink "
                f"({HASH_STATE_NAME}); keys are routed to them the same way",
                file=sys.stderr,
            )
        if os.environ.get("RIVERFLINK_ROUTER", "") != "java":
            from jobs.checkpoints import holds_sql_windows

            if holds_sql_windows(restore):
                print(
                    f"riverflink: {restore} was written while lines were routed in Flink "
                    "SQL; routing in SQL again, so that the lines it gathered are not lost",
                    file=sys.stderr,
                )
                return _routed_sql(env, lines, settings), False, HASH
    jar = router_jar()
    if jar is None:
        if restore is not None and execution_mode_of(restore, KEY_STATE_NAME) is not None:
            raise SettingsError(
                f"--restore {restore}: its models were spread over buckets by riverflink's "
                "router, which needs a JDK to be built (javac; on Debian and Ubuntu: "
                "apt-get install openjdk-17-jdk-headless); without it lines would reach the "
                "wrong buckets. Install one and run again."
            )
        return _routed_sql(env, lines, settings), False, HASH
    return _routed_java(env, lines, settings, jar, markers, routing), markers, routing


def _routed_java(env, lines, settings: JobSettings, jar: Path, markers: bool, routing: str):
    """Lines keyed by routing bucket, by riverflink's router (``operators/java``)."""
    from pyflink.common import Types
    from pyflink.datastream import DataStream
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway

    from jobs.java_router import CLASS_NAME
    from state.descriptors import ROUTING_BUCKETS, SPREAD, SPREAD_KEYS

    _use_jar(env, jar)
    tuning = settings.tuning
    batch_lines = tuning["batch_lines"] if tuning["batch_ms"] else 1
    gateway = get_gateway()
    router = gateway.jvm.Thread.currentThread().getContextClassLoader().loadClass(CLASS_NAME)
    args = gateway.new_array(gateway.jvm.java.lang.Object, 7)
    args[0], args[1] = settings.key, gateway.jvm.java.lang.Integer(ROUTING_BUCKETS)
    args[2] = gateway.jvm.java.lang.Integer(batch_lines)
    args[3] = gateway.jvm.java.lang.Long(tuning["batch_ms"])
    args[4] = gateway.jvm.java.lang.Integer(tuning["held_lines"])
    args[5] = gateway.jvm.java.lang.Boolean(markers)
    spread_keys = SPREAD_KEYS if routing == SPREAD else ()
    args[6] = gateway.new_array(gateway.jvm.int, len(spread_keys))
    for i, key in enumerate(spread_keys):
        args[6][i] = key
    operator = router.getConstructors()[0].newInstance(args)
    row_type = Types.ROW([Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    j_rows = lines._j_data_stream.transform("route lines", row_type.get_java_type_info(), operator)
    j_rows.uid(UIDS["route"])
    if settings.is_socket:
        j_rows.setParallelism(1)  # chained to the socket source, which reads alone
    rows = DataStream(j_rows)
    selector = gateway.jvm.org.apache.flink.streaming.api.functions.python
    j_keyed = j_rows.keyBy(selector.KeyByKeySelector())
    return KeyedStream(j_keyed, Types.INT(), rows)


def _routed_sql(env, lines, settings: JobSettings):
    """Lines keyed by routing bucket, by Flink SQL (where the router cannot be built).

    The bucket comes from Flink SQL: the key field's text (``JSON_VALUE`` of the line,
    decoded as UTF-8) hashed into ``ROUTING_BUCKETS``. ``operators.records.route_bucket``
    is the same function in Python; the learner checks every key it meets against it.
    """
    from pyflink.common import Types
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway
    from pyflink.table import DataTypes, Schema, StreamTableEnvironment

    from state.descriptors import ROUTING_BUCKETS

    batch_ms = settings.tuning["batch_ms"]
    if settings.is_socket:
        batch_ms = 0  # a socket's last lines would wait for a window that never closes
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set(
        "table.exec.resource.default-parallelism",
        str(1 if settings.is_socket else settings.parallelism),
    )
    schema = Schema.new_builder().column("f0", DataTypes.STRING())
    bounded = not (settings.unbounded or settings.savepoint_on_exit)
    if batch_ms and bounded:
        # Event time = arrival time, so the end of the input fires the last window
        # (processing-time windows would drop it). The watermark trails by 1 s: a line
        # behind the watermark would be dropped as late, and many lines share a
        # millisecond (or the clock may step back).
        schema = schema.column_by_expression("t", "CAST(CURRENT_TIMESTAMP AS TIMESTAMP_LTZ(3))")
        schema = schema.watermark("t", "t - INTERVAL '1' SECOND")
    elif batch_ms:
        schema = schema.column_by_expression("t", "PROCTIME()")
    t_env.create_temporary_view("riverflink_lines", t_env.from_data_stream(lines, schema.build()))
    bucket = f"MOD(HASH_CODE({_key_text_sql(settings.key)}), {ROUTING_BUCKETS})"
    if not batch_ms:
        query = f"SELECT {bucket} AS b, f0 AS line FROM riverflink_lines"
    else:
        t_env.execute_sql(
            "CREATE TEMPORARY VIEW riverflink_keyed AS "
            f"SELECT {bucket} AS b, f0, t FROM riverflink_lines"
        )
        query = (
            "SELECT b, ARRAY_AGG(f0) AS line FROM TABLE(TUMBLE(TABLE riverflink_keyed, "
            f"DESCRIPTOR(t), INTERVAL '{batch_ms / 1000}' SECOND)) "
            "GROUP BY window_start, window_end, b"
        )
    line_type = Types.BASIC_ARRAY(Types.STRING()) if batch_ms else Types.STRING()
    rows = t_env.to_append_stream(t_env.sql_query(query), Types.ROW([Types.INT(), line_type]))
    selector = get_gateway().jvm.org.apache.flink.streaming.api.functions.python
    j_keyed = rows._j_data_stream.keyBy(selector.KeyByKeySelector())
    return KeyedStream(j_keyed, Types.INT(), rows)


def _specs(settings: JobSettings) -> dict:
    """The keyword arguments of ``OnlineLearner`` for this job."""
    return dict(
        model_spec=settings.model,
        drift_spec=settings.drift,
        on_drift=settings.on_drift,
        label_ttl=settings.label_ttl,
        metric_spec=settings.metric,
    )


def build_job(env, settings: JobSettings, *, check_specs: bool = True) -> None:
    """Add the riverflink pipeline to ``env``.

    ``check_specs``: build the specs here, which checks them (this imports River);
    :func:`run_job` checks them beside, in the warm worker process, while it builds.
    """
    from pyflink.common import Types

    from operators.functions import (
        ALERTS,
        OUTCOMES,
        REJECTED,
        WRITE_AT_CHECKPOINTS,
        WRITE_EACH_ELEMENT,
        WRITE_ON_EVICTION,
        LearnPerKey,
    )
    from operators.records import Fields

    if check_specs:
        from operators.learner import OnlineLearner

        OnlineLearner(**_specs(settings))  # a bad spec fails here, before start-up
    # Whether labels must be numbers (regressors) is up to the learner, in each worker.
    fields = Fields(
        key=settings.key, id=settings.id, target=settings.target, features=settings.features
    )
    to_stdout = settings.output == "-"

    lines = _source(env, settings)
    # str: one raw input line (bytes as ISO-8859-1 characters)
    state_read = _state_is_read(env, settings)
    keyed, markers, routing = _routed(env, lines, settings, markers=state_read and _aligned(env))
    # (bucket, str): one line; or (--profile throughput) (bucket, [str]): lines of one bucket
    learned = (
        keyed.process(
            LearnPerKey(
                fields=fields,
                model_spec=settings.model,
                drift_spec=settings.drift,
                on_drift=settings.on_drift,
                ttl_seconds=settings.state_ttl,
                label_ttl=settings.label_ttl,
                metric_spec=settings.metric,
                tag_outputs=to_stdout,
                live_keys=int(flink_settings().get("riverflink.live-keys", 100_000)),
                restoring=_restoring(env, settings),
                writes=WRITE_AT_CHECKPOINTS
                if markers
                else (WRITE_EACH_ELEMENT if state_read else WRITE_ON_EVICTION),
                routing=routing,
            ),
            output_type=Types.STRING(),
        )
        .name("learn per key")
        .uid(UIDS["learn"])
    )
    # str: prediction JSON lines; alerts, outcomes and rejected lines on side outputs
    predictions = learned
    alerts = learned.get_side_output(ALERTS)
    outcomes = learned.get_side_output(OUTCOMES)
    rejected = learned.get_side_output(REJECTED)

    if to_stdout:
        predictions.union(alerts, outcomes, rejected).print().name("stdout").uid(
            UIDS["stdout"]
        ).set_parallelism(1)
        return
    out = Path(settings.output).resolve()
    sinks = {
        "predictions": predictions,
        "alerts": alerts,
        "outcomes": outcomes,
        "rejected": rejected,
    }
    for name, stream in sinks.items():
        stream.sink_to(_file_sink(out / name)).name(name).uid(UIDS[name])


def _use_worker_processes() -> None:
    """On the mini-cluster, run each subtask's Python in its own worker process.

    PyFlink's default for local runs ("loopback") executes every Python function inside
    this client process, so all subtasks share one interpreter lock and parallelism 2 is
    slower than 1. Worker processes scale with cores (about 1.4x on 2 cores). They import
    riverflink's packages like any Python program: make sure they find this checkout.
    """
    if "PYFLINK_GATEWAY_PORT" in os.environ:  # started by `flink run`: the cluster decides
        return
    os.environ.setdefault("_python_worker_execution_mode", "process")
    root = str(Path(__file__).resolve().parent.parent)
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *filter(None, paths)])


#: Seconds Ctrl-C waits for Flink to take the cancellation before riverflink exits anyway.
CANCEL_TIMEOUT = 10.0


def wait_for(future, *, timeout: float | None = None, poll: float = 0.05):
    """``future.result()`` of a PyFlink future, waited for in short sleeps.

    A thread blocked inside a call to the JVM can hold Ctrl-C back for as long as the call
    lasts; sleeping between quick ``done()`` checks lets it through at once. Raises
    ``TimeoutError`` after ``timeout`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while not future.done():
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"Flink did not answer within {timeout:g} s")
        time.sleep(poll)
    return future.result()


def _environment(settings: JobSettings, port: int | None, worker: str | None):
    """PyFlink's JVM (started on first use), then ``(env, early, port)``: the job's
    execution environment, its local mini-cluster started early (None if not, see
    :mod:`jobs.early_cluster`) and the port of the cluster's REST API (None: no API; 0:
    any free port, which the early cluster reports once it has started).

    ``worker``: the command that starts Python workers (see :mod:`jobs.worker_fork`).
    """
    from pyflink.datastream import StreamExecutionEnvironment

    from jobs.early_cluster import EarlyCluster

    conf = flink_configuration(settings)
    if worker is not None:
        conf.set_string("python.executable", worker)
    if port is not None:
        # The mini-cluster's REST API, for the progress line: this machine only.
        conf.set_string("rest.port", str(port))
        conf.set_string("rest.address", "127.0.0.1")
        conf.set_string("rest.bind-address", "127.0.0.1")
        conf.set_string("metrics.fetcher.update-interval", "1000")
    if "PYFLINK_GATEWAY_PORT" not in os.environ:
        # The local cluster's BLOB server (it hands the job's jars to its tasks) listens
        # where the job manager binds: this machine only. (Beam's ports: jobs.jvm_archive.)
        conf.set_string("jobmanager.bind-host", "localhost")
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    _warn_if_exposed()
    early = EarlyCluster.start(env, settings.parallelism)
    if early is None and port == 0:  # started the usual way after all: pick a free port for it
        from pyflink.util.java_utils import get_j_env_configuration

        from jobs.progress import free_port

        port = free_port()
        get_j_env_configuration(env._j_stream_execution_environment).setString(
            "rest.port", str(port)
        )
    return env, early, port


def _warn_if_exposed() -> None:
    from pyflink.java_gateway import get_gateway

    from jobs.jvm_archive import loopback_problem

    problem = loopback_problem(get_gateway())
    if problem is not None:
        print(f"riverflink: {problem}", file=sys.stderr)


def _in_background(target, *args):
    """Run ``target(*args)`` in a thread; the returned function waits and gives its result
    (or raises its exception)."""
    outcome: dict = {}

    def run():
        try:
            outcome["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - raised again by the waiting side
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"riverflink-{target.__name__}", daemon=True)
    thread.start()

    def result():
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    return result


def warm_workers(settings: JobSettings):
    """The warm process that forks this run's Python workers (:mod:`jobs.worker_fork`),
    started now; None where workers start otherwise (``flink run``, a ``python.executable``
    in config.yaml, ``RIVERFLINK_FORK=0``). The caller closes it."""
    use_project_conf_dir()
    _use_worker_processes()  # the zygote's environment: that of the workers
    if "PYFLINK_GATEWAY_PORT" in os.environ or "python.executable" in flink_settings():
        return None
    from jobs.worker_fork import Zygote

    return Zygote.start(_specs(settings))


#: ``run_job(zygote=...)``'s default: start a warm process for this run, close it after.
_OWN = object()


def run_job(settings: JobSettings, *, progress=None, zygote=_OWN) -> str | None:
    """Build and execute the job (mini-cluster, or the cluster PyFlink was given).

    ``progress`` is called with the REST port of the local mini-cluster before the job
    starts and returns a started :class:`jobs.progress.ProgressLine` (or None); it is
    stopped when the job ends. ``zygote``: the run's :func:`warm_workers` (or None), if
    the caller started it. Returns the savepoint path with ``--savepoint-on-exit``,
    else None.
    """
    if zygote is _OWN:
        zygote = warm_workers(settings)
        try:
            return run_job(settings, progress=progress, zygote=zygote)
        finally:
            if zygote is not None:
                zygote.close()
    use_project_conf_dir()
    _use_worker_processes()
    if "PYFLINK_GATEWAY_PORT" not in os.environ:  # a JVM of our own: start it fast
        from jobs.jvm_archive import use_archive, use_lean_flags, use_loopback_agent

        use_archive()
        use_lean_flags()
        use_loopback_agent()
    port = None  # of the mini-cluster's REST API, for the progress line
    if "PYFLINK_GATEWAY_PORT" not in os.environ and progress is not None:
        from jobs.early_cluster import EarlyCluster
        from jobs.progress import free_port

        # A cluster started early reports the free port it bound (no other process can
        # take it between a check and the bind); else choose one now.
        port = 0 if EarlyCluster.possible() else free_port()
    # The JVM starts, builds the environment and starts the mini-cluster (1 to 2 s of
    # mostly Java work) while this thread imports what building the job needs; the job is
    # built while the zygote checks the specs (it builds them first thing, so this process
    # never imports River); without a zygote, this process checks them.
    environment = _in_background(_environment, settings, port, zygote and zygote.launcher)
    env = early = None
    try:
        from jobs.lean_imports import import_job_messages

        import_job_messages()
        env, early, port = environment()
        env.set_parallelism(settings.parallelism)
        build_job(env, settings, check_specs=False)
        if zygote is None or zygote.model_kind() is None:
            from operators.learner import OnlineLearner

            OnlineLearner(**_specs(settings))  # a bad spec fails here
    except BaseException:
        if env is None:
            try:  # a JVM left half-started would print its own complaint after we exit
                env, early, port = environment()
            except BaseException:  # noqa: BLE001 - the first error is the one to report
                pass
        if early is not None:
            early.discard()
        raise
    return _execute(env, early, settings, progress, port)


def _execute(env, early, settings: JobSettings, progress, port: int | None) -> str | None:
    """Run the job built in ``env`` (see :func:`run_job`); ``early``: its mini-cluster,
    started already (:mod:`jobs.early_cluster`), or None."""

    def submit():
        if early is None:
            return env.execute_async("riverflink")
        return early.execute_async(env, "riverflink")

    if port == 0:
        port = early.rest_port()
    line = progress(port) if port is not None else None
    try:
        if settings.savepoint_on_exit:
            return _run_to_savepoint(submit, settings)
        if "PYFLINK_GATEWAY_PORT" in os.environ:
            # Started by `flink run`: the CLI decides (detached `submit` returns at once).
            env.execute("riverflink")
            return None
        job_client = submit()
        try:
            wait_for(job_client.get_job_execution_result())  # raises the job's failure
        except KeyboardInterrupt:
            try:  # Ctrl-C may have stopped the JVM too; then there is nothing to cancel
                wait_for(job_client.cancel(), timeout=CANCEL_TIMEOUT)
            except Exception:  # noqa: BLE001
                pass
            raise
        return None
    finally:
        if line is not None:
            line.stop()
        if early is not None:
            early.discard()  # only if the job never reached it


def _run_to_savepoint(submit, settings: JobSettings) -> str:
    """Run until every input line has committed output, then stop with a savepoint.

    ``submit()`` submits the job and returns its client."""
    from jobs import exit_savepoint

    total = exit_savepoint.count_records(exit_savepoint.input_files(settings.source))
    out = Path(settings.output)
    # Every input line ends as exactly one prediction, outcome (a late label) or rejection.
    counter = exit_savepoint.CommitCounter(
        [out / "predictions", out / "outcomes", out / "rejected"]
    )
    job_client = submit()
    try:
        exit_savepoint.wait_for_output(job_client, counter, total)
        return exit_savepoint.stop_with_savepoint(job_client, settings.savepoint_on_exit)
    except BaseException:
        try:  # the job may have failed, and its cluster gone with it: then nothing to cancel
            status = str(job_client.get_job_status().result())
            if status not in ("FAILED", "CANCELED", "FINISHED"):
                wait_for(job_client.cancel(), timeout=CANCEL_TIMEOUT)
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass
        raise


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.cli import main as cli_main

    return cli_main(["run", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    from jobs.cli import exit_with

    exit_with(main())
