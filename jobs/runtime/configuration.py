"""Flink's configuration for one run: ``flink-conf/config.yaml`` plus the job's settings.

Also where a restore is checked against what this run can read, before Flink starts:
state of another execution mode or backend would restore into nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

from riverflink.config.flink_conf import flink_settings
from riverflink.config.inputs import flink_uri
from riverflink.config.settings import UNBOUNDED_COMMIT_INTERVAL, JobSettings, SettingsError
from riverflink.config.target import under_flink_run

__all__ = ["flink_configuration"]


def flink_configuration(settings: JobSettings):
    """Flink's configuration for this job: ``flink-conf/config.yaml`` + job settings."""
    from pyflink.common import Configuration

    from riverflink.config.checkpoints import latest_checkpoint

    conf = Configuration()
    for key, value in flink_settings().items():
        if not key.startswith(("env.java", "jobmanager.", "taskmanager.", "rest.")):
            conf.set_string(key, value)
    if not under_flink_run():
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
            conf.set_string("execution.checkpointing.dir", flink_uri(checkpoint_dir))
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
        conf.set_string("execution.state-recovery.path", flink_uri(restore))
        # The source's read position is dropped when the input changed (source_uid).
        conf.set_string("execution.state-recovery.ignore-unclaimed-state", "true")
    return conf


def _check_execution_mode(restore: str, mode: str) -> None:
    """Refuse a restore whose models this job could not see (they would restart from scratch)."""
    from riverflink.config.checkpoints import execution_mode_of
    from riverflink.state.descriptors import KEY_STATE_NAME, OLD_STATE_NAMES, ROUTINGS

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
    from riverflink.config.checkpoints import backend_of

    written = backend_of(restore)
    if written is not None and written != backend.strip().lower():
        raise SettingsError(
            f"--restore {restore}: a checkpoint of the {written} state backend, and this job "
            f"runs {backend} (--state-backend, or state.backend.type in "
            "flink-conf/config.yaml). A checkpoint restores only into the backend that wrote "
            f"it: run with --state-backend {written}, or carry the models over in a savepoint "
            "(--savepoint-on-exit, riverflink stop), which either backend reads."
        )
