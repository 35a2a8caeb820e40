"""Lines keyed by routing bucket: riverflink's Java router, or Flink SQL without a JDK.

Every input line needs its routing bucket (``riverflink.state.descriptors``) before it can reach its
key's model, and that is work for Java, where the lines already are.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from riverflink.config.settings import JobSettings, LearnOptions, SettingsError
from riverflink.pipeline.sources import restore_path, use_jar
from riverflink.pipeline.uids import UIDS

__all__ = ["key_text_sql", "routed"]


def routed(env, lines, options: LearnOptions, *, job: JobSettings | None, markers: bool = False):
    """Lines keyed by routing bucket, one by one or batched (``--profile``), all in Java.

    ``job`` None: ``lines`` is a program's stream of text, not a source's raw lines (bytes
    as ISO-8859-1 characters); the router encodes it as UTF-8 first, so that both reach
    the learner alike and a key goes to the same bucket from either.

    riverflink's own operator does it (:mod:`riverflink.pipeline.router_jar`), or Flink SQL where
    that cannot be built. Returns ``(keyed stream, markers, routing)``: with ``markers``
    asked for and the router in use, each bucket gets an empty list right before each
    checkpoint barrier; ``routing`` (``riverflink.state.descriptors``) is ``spread`` unless the
    restored state was written with ``hash`` routing or only Flink SQL can route.
    """
    from riverflink.config.checkpoints import execution_mode_of
    from riverflink.pipeline.router_jar import router_jar
    from riverflink.state.descriptors import HASH, HASH_STATE_NAME, KEY_STATE_NAME, SPREAD

    restore = restore_path(env, job)
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
            from riverflink.config.checkpoints import holds_sql_windows

            if holds_sql_windows(restore):
                print(
                    f"riverflink: {restore} was written while lines were routed in Flink "
                    "SQL; routing in SQL again, so that the lines it gathered are not lost",
                    file=sys.stderr,
                )
                return _routed_sql(env, lines, options, job), False, HASH
    jar = router_jar()
    if jar is None:
        if restore is not None and execution_mode_of(restore, KEY_STATE_NAME) is not None:
            raise SettingsError(
                f"--restore {restore}: its models were spread over buckets by riverflink's "
                "router, which needs a JDK to be built (javac; on Debian and Ubuntu: "
                "apt-get install openjdk-17-jdk-headless); without it lines would reach the "
                "wrong buckets. Install one and run again."
            )
        return _routed_sql(env, lines, options, job), False, HASH
    return _routed_java(env, lines, options, job, jar, markers, routing), markers, routing


def _routed_java(env, lines, options, job, jar: Path, markers: bool, routing: str):
    """Lines keyed by routing bucket, by riverflink's router (``operators/java``)."""
    from pyflink.common import Types
    from pyflink.datastream import DataStream
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway

    from riverflink.pipeline.router_jar import CLASS_NAME
    from riverflink.state.descriptors import ROUTING_BUCKETS, SPREAD, SPREAD_KEYS

    use_jar(env, jar)
    tuning = options.tuning
    batch_lines = tuning["batch_lines"] if tuning["batch_ms"] else 1
    gateway = get_gateway()
    router = gateway.jvm.Thread.currentThread().getContextClassLoader().loadClass(CLASS_NAME)
    args = gateway.new_array(gateway.jvm.java.lang.Object, 8)
    args[0], args[1] = options.key, gateway.jvm.java.lang.Integer(ROUTING_BUCKETS)
    args[2] = gateway.jvm.java.lang.Integer(batch_lines)
    args[3] = gateway.jvm.java.lang.Long(tuning["batch_ms"])
    args[4] = gateway.jvm.java.lang.Integer(tuning["held_lines"])
    args[5] = gateway.jvm.java.lang.Boolean(markers)
    spread_keys = SPREAD_KEYS if routing == SPREAD else ()
    args[6] = gateway.new_array(gateway.jvm.int, len(spread_keys))
    for i, key in enumerate(spread_keys):
        args[6][i] = key
    args[7] = gateway.jvm.java.lang.Boolean(job is None)  # text, not raw lines
    operator = router.getConstructors()[0].newInstance(args)
    row_type = Types.ROW([Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    j_rows = lines._j_data_stream.transform("route lines", row_type.get_java_type_info(), operator)
    j_rows.uid(UIDS["route"])
    if job is None:  # beside its input, which keeps each key's lines in their order
        j_rows.setParallelism(_parallelism_of(env, lines))
    elif job.is_socket:
        j_rows.setParallelism(1)  # chained to the socket source, which reads alone
    rows = DataStream(j_rows)
    selector = gateway.jvm.org.apache.flink.streaming.api.functions.python
    j_keyed = j_rows.keyBy(selector.KeyByKeySelector())
    return KeyedStream(j_keyed, Types.INT(), rows)


def _routed_sql(env, lines, options: LearnOptions, job: JobSettings | None):
    """Lines keyed by routing bucket, by Flink SQL (where the router cannot be built).

    The bucket comes from Flink SQL: the key field's text (``JSON_VALUE`` of the line,
    decoded as UTF-8) hashed into ``ROUTING_BUCKETS``. ``riverflink.operators.records.route_bucket``
    is the same function in Python; the learner checks every key it meets against it.
    """
    from pyflink.common import Types
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway
    from pyflink.table import DataTypes, Schema, StreamTableEnvironment

    from riverflink.state.descriptors import ROUTING_BUCKETS

    batch_ms = options.tuning["batch_ms"]
    socket = job is not None and job.is_socket
    if socket:
        batch_ms = 0  # a socket's last lines would wait for a window that never closes
    t_env = StreamTableEnvironment.create(env)
    t_env.get_config().set(
        "table.exec.resource.default-parallelism",
        str(1 if socket else (job.parallelism if job else _parallelism_of(env, lines))),
    )
    schema = Schema.new_builder().column("f0", DataTypes.STRING())
    bounded = job is not None and not (job.unbounded or job.savepoint_on_exit)
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
    # The raw line: a program's text as its UTF-8 bytes, one ISO-8859-1 character each.
    raw = "f0" if job is not None else "DECODE(ENCODE(f0, 'UTF-8'), 'ISO-8859-1')"
    bucket = f"MOD(HASH_CODE({key_text_sql(options.key, raw)}), {ROUTING_BUCKETS})"
    if not batch_ms:
        query = f"SELECT {bucket} AS b, {raw} AS line FROM riverflink_lines"
    else:
        t_env.execute_sql(
            "CREATE TEMPORARY VIEW riverflink_keyed AS "
            f"SELECT {bucket} AS b, {raw} AS f0, t FROM riverflink_lines"
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


def _parallelism_of(env, lines) -> int:
    """The parallelism of a program's stream: routed at the same, each subtask's lines go
    on in their order (a rebalance would interleave one key's lines from two subtasks)."""
    parallelism = lines._j_data_stream.getParallelism()
    return parallelism if parallelism > 0 else env.get_parallelism()


def key_text_sql(field: str, raw: str = "f0") -> str:
    """SQL for the key field's text, as ``JSON_VALUE`` gives it ('' when there is none).

    Parsing JSON in Flink costs more per line than anything else in Java, so a line that
    starts with the key field holding a plain ASCII string (``{"key": "u42", ...``) has
    it cut out by a regular expression; every other line is parsed. Both give the same
    text, which ``riverflink.operators.records.route_text`` gives in Python.
    """
    # ``raw``: the line's bytes as ISO-8859-1 characters (see riverflink.pipeline.sources)
    bom = "CHR(239) || CHR(187) || CHR(191)"
    unbommed = f"CASE WHEN SUBSTRING({raw}, 1, 3) = {bom} THEN SUBSTRING({raw}, 4) ELSE {raw} END"
    text = f"DECODE(ENCODE({unbommed}, 'ISO-8859-1'), 'UTF-8')"
    parsed = f"JSON_VALUE({text}, {_json_path(field)})"
    if not (field.isascii() and field.replace("_", "a").isalnum()):
        return f"COALESCE({parsed}, '')"
    fast = r"^\{\s*\"" + field + r"\"\s*:\s*\"([\x20\x21\x23-\x5b\x5d-\x7e]*)\"\s*[,}]"
    return f"COALESCE(REGEXP_EXTRACT({raw}, '{fast}', 1), {parsed}, '')"


def _json_path(field: str) -> str:
    """The JSON path of a top-level field, as a SQL string literal."""
    if field.isidentifier() and field.isascii():
        path = f"$.{field}"
    else:
        path = "$['" + field.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return "'" + path.replace("'", "''") + "'"
