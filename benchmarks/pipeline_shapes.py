"""How much of the job's time is Flink's Java/Python crossings? Two pipeline shapes, same work.

    python -m benchmarks.pipeline_shapes [FILE]   (default: out/bench/input.jsonl from make bench)

- ``two``: what the job does today: a Python operator parses each line and
  extracts the key, Flink shuffles by key, a keyed Python operator runs.
- ``one``: the key is extracted in Java (Flink SQL ``JSON_QUERY``, which tells
  ``7`` from ``"7"`` through its array wrapper) and keyed with PyFlink's own
  Java ``KeyByKeySelector``, so each record crosses into Python once.

Both keyed functions only parse the line and emit one JSON line: what is
measured is the framework, not River. Wall time includes start-up.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build(env, shape: str, source: str, output: Path) -> None:
    from pyflink.common import Types, WatermarkStrategy
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.connectors.file_system import FileSource, StreamFormat
    from pyflink.datastream.data_stream import KeyedStream
    from pyflink.java_gateway import get_gateway
    from pyflink.table import StreamTableEnvironment

    from riverflink.pipeline.sinks import file_sink

    class Emit(KeyedProcessFunction):
        def process_element(self, value, ctx):
            record = json.loads(value if isinstance(value, str) else value[1])
            yield json.dumps({"key": record["key"], "id": record.get("id")})

    files = FileSource.for_record_stream_format(StreamFormat.text_line_format(), source)
    lines = env.from_source(
        files.process_static_file_set().build(), WatermarkStrategy.no_watermarks(), "files"
    )
    row = Types.ROW([Types.STRING(), Types.STRING()])
    if shape == "two":
        pair = Types.TUPLE([Types.STRING(), Types.STRING()])
        pairs = lines.map(lambda line: (json.loads(line)["key"], line), output_type=pair)
        keyed = pairs.key_by(lambda pair: pair[0], key_type=Types.STRING())
    else:
        t_env = StreamTableEnvironment.create(env)
        t_env.create_temporary_view("lines", t_env.from_data_stream(lines))
        table = t_env.sql_query(
            "SELECT COALESCE(JSON_QUERY(f0, '$.key' WITH CONDITIONAL ARRAY WRAPPER), '') "
            "AS k, f0 AS line FROM lines"
        )
        pairs = t_env.to_append_stream(table, row)
        selector = get_gateway().jvm.org.apache.flink.streaming.api.functions.python
        keyed = KeyedStream(
            pairs._j_data_stream.keyBy(selector.KeyByKeySelector()), Types.STRING(), pairs
        )
    keyed.process(Emit(), output_type=Types.STRING()).sink_to(file_sink(output))


def run(shape: str, source: str) -> float:
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    from riverflink.config.flink_conf import flink_settings

    conf = Configuration()
    for key, value in flink_settings().items():
        if key.startswith("python."):
            conf.set_string(key, value)
    conf.set_string("python.executable", sys.executable)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(1)
    output = REPO / "out" / "bench" / f"shape-{shape}"
    build(env, shape, source, output)
    started = time.perf_counter()
    env.execute(f"shape {shape}")
    return time.perf_counter() - started


def main() -> int:
    from riverflink.config.flink_conf import use_project_conf_dir

    use_project_conf_dir()
    os.environ.setdefault("_python_worker_execution_mode", "process")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )
    source = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "out" / "bench" / "input.jsonl")
    records = sum(1 for _ in open(source, "rb"))
    shape = sys.argv[2] if len(sys.argv) > 2 else None
    if shape is None:  # each shape in its own process: one JVM, one job each
        import subprocess

        for name in ("two", "one"):
            subprocess.run(
                [sys.executable, "-m", "benchmarks.pipeline_shapes", source, name],
                cwd=REPO,
                check=True,
            )
        return 0
    seconds = run(shape, source)
    print(
        f"{shape} crossing(s) per record: {seconds:.1f} s, {records / seconds:,.0f} rec/s "
        f"({records:,} records, start-up included)",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
