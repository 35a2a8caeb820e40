"""The job's input: lines of files (read once, or a directory followed) or of a socket.

Each source hands on raw lines as ``str`` whose characters are the bytes (ISO-8859-1),
so the learner can reject invalid UTF-8 instead of silently replacing it.
"""

from __future__ import annotations

from pathlib import Path

from riverflink.config.settings import DISCOVERY_INTERVAL, JobSettings, SettingsError
from riverflink.pipeline.uids import UIDS, file_source_uid

__all__ = ["lines_of", "restore_path", "source_uid", "use_jar"]


def use_jar(env, jar: Path) -> None:
    """Ship riverflink's jar with the job and load classes from it (once per job)."""
    j_conf = env._j_stream_execution_environment.getConfiguration()
    if jar.as_uri() not in (j_conf.getString("pipeline.jars", "") or ""):
        env.add_jars(jar.as_uri())


def _socket_lines(env, host: str, port: int, retries: int):
    """The lines of ``socket://HOST:PORT`` (a Java ``DataStream``): riverflink's source
    (``jobs/pipeline/java/riverflink/SocketLines.java``), or Flink's where it cannot be built.

    Flink's keeps an unterminated last line across a reconnect and glues it to the next
    connection's first line; riverflink's ends it with its connection.
    """
    from pyflink.common import Types
    from pyflink.java_gateway import get_gateway

    from riverflink.pipeline.router_jar import SOCKET_CLASS_NAME, router_jar

    j_env = env._j_stream_execution_environment
    jar = router_jar()
    if jar is None:
        # Flink counts connections, not reconnects: N reconnects = N + 1 connections.
        return j_env.socketTextStream(host, port, "\n", retries + 1 if retries else 0)
    use_jar(env, jar)
    gateway = get_gateway()
    loader = gateway.jvm.Thread.currentThread().getContextClassLoader()
    args = gateway.new_array(gateway.jvm.java.lang.Object, 3)
    args[0], args[1] = host, gateway.jvm.java.lang.Integer(port)
    args[2] = gateway.jvm.java.lang.Long(retries + 1)
    source = loader.loadClass(SOCKET_CLASS_NAME).getConstructors()[0].newInstance(args)
    return j_env.addSource(source, f"socket {host}:{port}", Types.STRING().get_java_type_info())


def lines_of(env, settings: JobSettings):
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
        from riverflink.config.inputs import input_files

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
        source_uid(settings, restore_path(env, settings))
    )


def source_uid(settings: JobSettings, restore: str | None) -> str:
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
    from riverflink.config.checkpoints import holds_operator

    if settings.savepoint_on_exit:
        import uuid

        return f"{UIDS['source']}-exit-{uuid.uuid4().hex[:12]}"
    uid = file_source_uid(settings.source, settings.follow)
    if restore is None or holds_operator(restore, uid) is not False:
        return uid  # nothing to resume, or this input's position (or unknown: a remote path)
    if holds_operator(restore, file_source_uid(settings.source, not settings.follow)):
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


def restore_path(env, settings: JobSettings | None) -> str | None:
    """The checkpoint or savepoint the job starts from (--restore, or `flink run -s`), if any.

    ``settings`` None: a program's job, which only Flink's own configuration restores."""
    j_conf = env._j_stream_execution_environment.getConfiguration()
    for key in ("execution.state-recovery.path", "execution.savepoint.path"):
        value = j_conf.getString(key, "")
        if value:
            from riverflink.config.inputs import local_path

            return local_path(value)
    return None if settings is None else settings.restore
