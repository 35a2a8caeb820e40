"""``riverflink export``: every key's model out of a checkpoint or savepoint.

A small job on the local mini-cluster restores the snapshot into an operator with the
learning operator's uid and state (:class:`riverflink.operators.exporting.ExportKeys`),
visits every routing bucket, and writes each key's River estimator as a pickle, with
``models.jsonl`` as the index. Loading a model needs River only.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from riverflink.config.flink_conf import flink_settings, use_project_conf_dir
from riverflink.config.inputs import flink_uri
from riverflink.config.settings import SettingsError
from riverflink.pipeline.uids import UIDS

__all__ = ["export_models", "snapshot_path"]

#: Where a serializer snapshot names Flink's state time-to-live (riverflink's --state-ttl).
_TTL_MARK = b"TtlSerializer"


def snapshot_path(path: str, checkpoint_dir: str | None = None) -> Path:
    """The checkpoint or savepoint directory ``path`` names (``latest``: the newest under
    ``checkpoint_dir``); raises ``SettingsError`` saying what to give instead."""
    from riverflink.config.checkpoints import latest_checkpoint
    from riverflink.config.inputs import local_path

    if path == "latest":
        if not checkpoint_dir:
            raise SettingsError("export latest looks under --checkpoint-dir; give that too")
        found = latest_checkpoint(checkpoint_dir)
        if found is None:
            raise SettingsError(f"export latest: no completed checkpoint under {checkpoint_dir}")
        return found
    root = Path(local_path(path))
    if root.is_file() and root.name == "_metadata":
        root = root.parent
    if not (root / "_metadata").is_file():
        raise SettingsError(
            f"{path} is not a checkpoint or savepoint (a directory holding _metadata, as "
            "--savepoint-on-exit and riverflink stop print it, or chk-N under --checkpoint-dir)"
        )
    return root


def export_models(path: Path, output: str, keys=None) -> int:
    """Export every key's model (or those of ``keys``, as they appear in the outputs)
    from the snapshot at ``path`` into ``output``; returns how many were written."""
    from riverflink.config.checkpoints import backend_of, execution_mode_of
    from riverflink.operators.exporting import INDEX_PARTS
    from riverflink.state.descriptors import HASH, KEY_STATE_NAME, ROUTINGS, SPREAD

    modes = {r: execution_mode_of(str(path), name) for r, name in ROUTINGS.items()}
    routing = HASH if modes[HASH] is not None else SPREAD
    mode = modes[routing]
    if mode is None or mode == "mixed":
        raise SettingsError(
            f"{path} holds no riverflink models (no {KEY_STATE_NAME} state): give a "
            "checkpoint or savepoint of a riverflink job"
        )
    out = Path(output)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SettingsError(f"--output {output} is not an empty directory: name a new one")
    out.mkdir(parents=True, exist_ok=True)
    try:
        written = _run(path, out, routing, mode, backend_of(str(path)), keys)
        lines = _join_index(out / INDEX_PARTS)
        if len(lines) != written:
            raise RuntimeError(
                f"export: the job wrote {written} models but indexed {len(lines)}; nothing "
                "was exported, try again"
            )
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # nothing half-written is left as an export
        raise
    with open(out / "models.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(line + "\n" for _, line in lines)
    shutil.rmtree(out / INDEX_PARTS)
    return len(lines)


def _join_index(parts: Path) -> list:
    """The index lines the export's subtasks wrote, sorted by key: ``[(sort key, line)]``."""
    lines = []
    for part in sorted(parts.glob("*.jsonl")):
        with open(part, encoding="utf-8") as fh:
            for line in fh:
                line = line.rstrip("\n")
                lines.append((json.dumps(json.loads(line)["key"]), line))
    lines.sort()
    return lines


def _run(path: Path, out: Path, routing: str, mode: str, backend, keys) -> int:
    """Run the export job; returns how many models its subtasks wrote."""
    from riverflink.accel.worker_fork import Zygote
    from riverflink.runtime.local import _use_worker_processes

    use_project_conf_dir()
    _use_worker_processes()  # one Python process per subtask, not threads in this one
    # Workers forked from a warm process that has imported Beam and River (as a local run's
    # are): started before the JVM, which hands its address on to the workers.
    zygote = Zygote.start(_preload_specs(path))
    try:
        return _execute(path, out, routing, mode, backend, keys, zygote)
    finally:
        if zygote is not None:
            zygote.close()


def _execute(path: Path, out: Path, routing, mode, backend, keys, zygote) -> int:
    from pyflink.common import Configuration, Row, Types
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway

    from riverflink.accel.jvm_archive import use_archive, use_lean_flags
    from riverflink.accel.loopback import use_loopback_agent, warn_if_exposed
    from riverflink.operators.exporting import ExportKeys
    from riverflink.state.descriptors import ROUTING_BUCKETS, SPREAD, SPREAD_KEYS

    # The JVM as a local run starts it: fast, and its workers' ports on localhost.
    use_archive()
    use_lean_flags()
    use_loopback_agent()
    conf = Configuration()
    for key, value in flink_settings().items():
        if not key.startswith(("env.java", "jobmanager.", "taskmanager.", "rest.")):
            conf.set_string(key, value)
    conf.set_string("python.executable", sys.executable if zygote is None else zygote.launcher)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("python.execution-mode", mode)
    if backend is not None:  # a checkpoint restores only into the backend that wrote it
        conf.set_string("state.backend.type", backend)
    parallelism = _parallelism()
    conf.set_string("parallelism.default", str(parallelism))
    conf.set_string("restart-strategy.type", "none")
    conf.set_string("execution.state-recovery.path", flink_uri(str(path)))
    conf.set_string("execution.state-recovery.ignore-unclaimed-state", "true")
    conf.set_string("jobmanager.bind-host", "localhost")
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    warn_if_exposed()
    env.set_parallelism(parallelism)

    buckets = SPREAD_KEYS if routing == SPREAD else range(ROUTING_BUCKETS)
    row_type = Types.ROW([Types.INT(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    rows = env.from_collection([Row(int(b), b"") for b in buckets], type_info=row_type)
    selector = get_gateway().jvm.org.apache.flink.streaming.api.functions.python
    j_keyed = rows._j_data_stream.keyBy(selector.KeyByKeySelector())
    keyed = KeyedStream(j_keyed, Types.INT(), rows)
    ttl = _has_ttl(path)
    exported = keyed.process(
        ExportKeys(str(out.resolve()), routing, keys=keys, ttl=ttl), output_type=Types.STRING()
    ).uid(UIDS["learn"])
    written = 0
    with exported.execute_and_collect("riverflink export") as results:
        for count in results:
            written += int(count)
    return written


def _preload_specs(path: Path) -> dict:
    """The specs a warm worker process builds to import River's modules of the models: those
    in the first model's header in the snapshot, or the defaults where none is readable
    there (RocksDB's compressed files)."""
    from riverflink.config.checkpoints import state_heads
    from riverflink.config.settings import DEFAULT_DRIFT, DEFAULT_MODEL
    from riverflink.state.envelope import MAGIC

    decoder = json.JSONDecoder()
    for head in state_heads(path):
        start = head.find(MAGIC + b"{")
        if start == -1:
            continue
        try:
            header, _ = decoder.raw_decode(head[start + len(MAGIC) :].decode("utf-8", "replace"))
            return {"model_spec": str(header["model"]), "drift_spec": str(header["drift"])}
        except (ValueError, KeyError, TypeError):
            continue
    return {"model_spec": DEFAULT_MODEL, "drift_spec": DEFAULT_DRIFT}


def _parallelism() -> int:
    """One export worker per core, up to 4: unpickling and writing the models is the work."""
    import os

    return max(1, min(4, os.cpu_count() or 1))


def _has_ttl(path: Path) -> bool:
    """Whether the models' state was written with a time-to-live (--state-ttl)."""
    from riverflink.config.checkpoints import mentions

    return mentions(str(path), _TTL_MARK)
