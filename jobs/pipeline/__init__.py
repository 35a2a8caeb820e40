"""The riverflink pipeline: JSON lines in, one River learner per key, predictions out.

:func:`learn_stream` is the learning: a stream of lines in, a :class:`Learned` of four
streams out. ``riverflink.learn`` hands it a program's stream; :func:`build_job` puts a
source before it and sinks after it, for ``riverflink run`` and ``submit``. Each step's
comment gives the shape of its items.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from riverflink.config.flink_conf import flink_settings, memory_size
from riverflink.config.settings import JobSettings, LearnOptions
from riverflink.config.target import under_flink_run
from riverflink.pipeline.routing import routed
from riverflink.pipeline.sinks import file_sink
from riverflink.pipeline.sources import lines_of, restore_path
from riverflink.pipeline.uids import UIDS

__all__ = ["UIDS", "Learned", "build_job", "learn_stream"]


@dataclass(frozen=True)
class Learned:
    """The output of the learning, as four streams of JSON lines (``str``), each line
    with exactly the fields ``riverflink run`` writes to the directory of that name.

    >>> import dataclasses, riverflink
    >>> [field.name for field in dataclasses.fields(riverflink.Learned)]
    ['predictions', 'alerts', 'outcomes', 'rejected']
    """

    predictions: object  #: DataStream: one line per record predicted
    alerts: object  #: DataStream: concept-drift alerts
    outcomes: object  #: DataStream: delayed labels matched to their predictions
    rejected: object  #: DataStream: lines that taught nothing, with the reason


def build_job(env, settings: JobSettings, *, on_open=None) -> None:
    """Add the riverflink job to ``env``: source, :func:`learn_stream`, sinks.

    The specs are not checked here (that imports River): callers check them first
    (:func:`riverflink.config.specs.check_specs`), or beside, as a local run does.
    ``on_open``: a picklable function each Python worker calls as the learning operator
    opens (the runtime passes :func:`riverflink.accel.worker.worker_setup_for_job`).
    """
    lines = lines_of(env, settings)
    # str: one raw input line (bytes as ISO-8859-1 characters)
    learned = learn_stream(lines, settings, job=settings, on_open=on_open)
    if settings.output == "-":  # every kind in one stream, "kind" first in each line
        every = learned.predictions.union(learned.alerts, learned.outcomes, learned.rejected)
        every.print().name("stdout").uid(UIDS["stdout"]).set_parallelism(1)
        return
    out = Path(settings.output).resolve()
    for name in ("predictions", "alerts", "outcomes", "rejected"):
        stream = getattr(learned, name)
        stream.sink_to(file_sink(out / name)).name(name).uid(UIDS[name])


def learn_stream(
    lines, options: LearnOptions, *, job: JobSettings | None = None, on_open=None
) -> Learned:
    """Key ``lines`` by routing bucket and run each key's learner: :class:`Learned`.

    ``job``: the settings of a riverflink job, whose source hands on raw lines (bytes as
    ISO-8859-1 characters) and whose state anything may read. Without it, ``lines`` is a
    program's stream of text (``str``), which may be stopped with a savepoint at any time.
    """
    from pyflink.common import Types

    from riverflink.config.specs import record_fields
    from riverflink.operators.functions import (
        ALERTS,
        OUTCOMES,
        REJECTED,
        WRITE_AT_CHECKPOINTS,
        WRITE_EACH_ELEMENT,
        WRITE_ON_EVICTION,
        LearnPerKey,
    )

    env = lines.get_execution_environment()
    conf = flink_settings()
    fields = record_fields(options)
    to_stdout = job is not None and job.output == "-"
    state_read = _state_is_read(env, job)
    keyed, markers, routing = routed(
        env, lines, options, job=job, markers=state_read and _aligned(env)
    )
    # (bucket, bytes): lines of one bucket, joined by newlines; or (SQL routing) (bucket,
    # str) or (bucket, [str])
    learned = (
        keyed.process(
            LearnPerKey(
                fields=fields,
                model_spec=options.model,
                drift_spec=options.drift,
                on_drift=options.on_drift,
                ttl_seconds=options.state_ttl,
                label_ttl=options.label_ttl,
                metric_spec=options.metric,
                pseudo_label=options.pseudo_label,
                init_model=_read(options.init_model),
                init_models=_absolute(options.init_models),
                feature_drift_spec=options.feature_drift,
                tag_outputs=to_stdout,
                live_keys=int(conf.get("riverflink.live-keys", 20_000)),
                pickled_bytes=memory_size(
                    conf.get("riverflink.pickled-memory", "2gb"), "riverflink.pickled-memory"
                ),
                restoring=restore_path(env, job) is not None,
                writes=WRITE_AT_CHECKPOINTS
                if markers
                else (WRITE_EACH_ELEMENT if state_read else WRITE_ON_EVICTION),
                routing=routing,
                on_open=on_open,
                joined=job is not None,  # a program's sinks get one line per element
            ),
            output_type=Types.STRING(),
        )
        .name("learn per key")
        .uid(UIDS["learn"])
    )
    # str: prediction JSON lines (to stdout: every kind); the rest on side outputs
    return Learned(
        predictions=learned,
        alerts=learned.get_side_output(ALERTS),
        outcomes=learned.get_side_output(OUTCOMES),
        rejected=learned.get_side_output(REJECTED),
    )


def _state_is_read(env, job: JobSettings | None) -> bool:
    """Whether anything but the learning operator itself may read the job's state.

    Checkpoints and savepoints do; a local run of a bounded input without checkpoints
    takes neither (a failure ends it), so its models need not reach Flink state until
    they leave the worker's memory. A program's own stream may be stopped with a
    savepoint at any time.
    """
    if job is None or under_flink_run() or job.unbounded or job.savepoint_on_exit:
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


def _read(path: str | None) -> bytes | None:
    """An init model's pickle, read here: it travels with the job, to any cluster."""
    return None if path is None else Path(path).read_bytes()


def _absolute(path: str | None) -> str | None:
    """An export directory, read by every worker when it opens: a path they all see."""
    return None if path is None else str(Path(path).resolve())
