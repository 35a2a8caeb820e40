"""The riverflink pipeline: JSON lines in, one River learner per key, predictions out.

:func:`build_job` adds it to a PyFlink execution environment as one linear chain;
each step's comment gives the shape of its items.
"""

from __future__ import annotations

from pathlib import Path

from riverflink.config.flink_conf import flink_settings
from riverflink.config.settings import JobSettings
from riverflink.config.target import under_flink_run
from riverflink.pipeline.routing import routed
from riverflink.pipeline.sinks import file_sink
from riverflink.pipeline.sources import lines_of, restore_path
from riverflink.pipeline.uids import UIDS

__all__ = ["UIDS", "build_job"]


def build_job(env, settings: JobSettings, *, on_open=None) -> None:
    """Add the riverflink pipeline to ``env``: source, routing, learn per key, sinks.

    The specs are not checked here (that imports River): callers check them first
    (:func:`riverflink.config.specs.check_specs`), or beside, as a local run does.
    ``on_open``: a picklable function each Python worker calls as the learning operator
    opens (the runtime passes :func:`riverflink.accel.worker.worker_setup_for_job`).
    """
    from pyflink.common import Types
    from riverflink.operators.functions import (
        ALERTS,
        OUTCOMES,
        REJECTED,
        WRITE_AT_CHECKPOINTS,
        WRITE_EACH_ELEMENT,
        WRITE_ON_EVICTION,
        LearnPerKey,
    )
    from riverflink.operators.records import Fields

    # Whether labels must be numbers (regressors) is up to the learner, in each worker.
    fields = Fields(
        key=settings.key, id=settings.id, target=settings.target, features=settings.features
    )
    to_stdout = settings.output == "-"

    lines = lines_of(env, settings)
    # str: one raw input line (bytes as ISO-8859-1 characters)
    state_read = _state_is_read(env, settings)
    keyed, markers, routing = routed(env, lines, settings, markers=state_read and _aligned(env))
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
                restoring=restore_path(env, settings) is not None,
                writes=WRITE_AT_CHECKPOINTS
                if markers
                else (WRITE_EACH_ELEMENT if state_read else WRITE_ON_EVICTION),
                routing=routing,
                on_open=on_open,
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
        stream.sink_to(file_sink(out / name)).name(name).uid(UIDS[name])


def _state_is_read(env, settings: JobSettings) -> bool:
    """Whether anything but the learning operator itself may read the job's state.

    Checkpoints and savepoints do; a local run of a bounded input without checkpoints
    takes neither (a failure ends it), so its models need not reach Flink state until
    they leave the worker's memory.
    """
    if under_flink_run() or settings.unbounded or settings.savepoint_on_exit:
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
