"""Executing the job: on the local mini-cluster (``riverflink run``), or on the cluster
that ``flink run`` gave this process (``riverflink submit``).

:func:`run_job` is the whole run: Flink's configuration, the execution environment, the
pipeline (:func:`riverflink.pipeline.build_job`), execution, and for ``--savepoint-on-exit``
the final savepoint. Start-up accelerators (:mod:`riverflink.accel`) join in where they are on.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

from riverflink.accel.worker import worker_setup_for_job
from riverflink.config.flink_conf import flink_settings, use_project_conf_dir
from riverflink.config.settings import JobSettings
from riverflink.config.specs import check_specs, learner_options
from riverflink.config.target import under_flink_run
from riverflink.pipeline import build_job
from riverflink.runtime.configuration import flink_configuration

__all__ = ["CANCEL_TIMEOUT", "run_job", "wait_for", "warm_workers"]


def _use_worker_processes() -> None:
    """On the mini-cluster, run each subtask's Python in its own worker process.

    PyFlink's default for local runs ("loopback") executes every Python function inside
    this client process, so all subtasks share one interpreter lock and parallelism 2 is
    slower than 1. Worker processes scale with cores (about 1.4x on 2 cores). They import
    riverflink like any Python program: make sure they find this one.
    """
    if under_flink_run():  # the cluster decides
        return
    os.environ.setdefault("_python_worker_execution_mode", "process")
    from riverflink.config.paths import code_root

    root = code_root()
    paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    if root is not None and str(root) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, paths)])


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


#: Seconds the JVM of a local run may outlive riverflink's process before it is killed.
JVM_GRACE = 15

#: The JVM's watcher: a shell whose stdin is a pipe held by riverflink's process. When
#: that process ends, however it ends, ``read`` returns; the shell then waits for the JVM
#: (``$1``) to end, for at most ``$2`` tenths of a second, then kills it.
_JVM_WATCH = """
trap '' INT HUP
read _
i=0
while kill -0 "$1" 2>/dev/null; do
  if [ "$i" -ge "$2" ]; then exec kill -9 "$1"; fi
  i=$((i + 1))
  sleep 0.1
done
"""

_watchers: dict = {}  # JVM pid -> its watcher: its stdin stays open while this process lives


def _end_jvm_with_this_process() -> None:
    """Kill this process's JVM if it outlives this process by :data:`JVM_GRACE` seconds.

    PyFlink's JVM exits when the process that started it ends (its stdin closes). When
    that process is killed while a job runs (``kill -9``, the OOM killer), Beam's shutdown
    hook in the JVM waits for good on a data stream that the job's task thread holds
    while it sends to workers gone with it: the JVM stayed, busy, holding its memory.
    """
    from pyflink.java_gateway import get_gateway

    pid = int(get_gateway().jvm.java.lang.ProcessHandle.current().pid())
    if pid in _watchers or pid == os.getpid():
        return
    command = ["sh", "-c", _JVM_WATCH, "riverflink-jvm-watch", str(pid), str(JVM_GRACE * 10)]
    try:
        _watchers[pid] = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    except OSError:  # no shell: the run goes on without the watch
        pass


def _environment(settings: JobSettings, port: int | None, worker: str | None):
    """PyFlink's JVM (started on first use), then ``(env, early, port)``: the job's
    execution environment, its local mini-cluster started early (None if not, see
    :mod:`riverflink.accel.early_cluster`) and the port of the cluster's REST API (None: no API; 0:
    any free port, which the early cluster reports once it has started).

    ``worker``: the command that starts Python workers (see :mod:`riverflink.accel.worker_fork`).
    """
    from pyflink.datastream import StreamExecutionEnvironment

    from riverflink.accel.early_cluster import EarlyCluster
    from riverflink.accel.loopback import warn_if_exposed

    conf = flink_configuration(settings)
    if worker is not None:
        conf.set_string("python.executable", worker)
    if port is not None:
        # The mini-cluster's REST API, for the progress line: this machine only.
        conf.set_string("rest.port", str(port))
        conf.set_string("rest.address", "127.0.0.1")
        conf.set_string("rest.bind-address", "127.0.0.1")
        conf.set_string("metrics.fetcher.update-interval", "1000")
    # The local cluster's BLOB server (it hands the job's jars to its tasks) listens
    # where the job manager binds: this machine only. (Beam's ports: riverflink.accel.loopback.)
    conf.set_string("jobmanager.bind-host", "localhost")
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    _end_jvm_with_this_process()
    warn_if_exposed()
    early = EarlyCluster.start(env, settings.parallelism)
    if early is None and port == 0:  # started the usual way after all: pick a free port for it
        from pyflink.util.java_utils import get_j_env_configuration

        from riverflink.results.progress import free_port

        port = free_port()
        get_j_env_configuration(env._j_stream_execution_environment).setString(
            "rest.port", str(port)
        )
    return env, early, port


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
    """The warm process that forks this run's Python workers (:mod:`riverflink.accel.worker_fork`),
    started now; None where workers start otherwise (``flink run``, a ``python.executable``
    in config.yaml, ``RIVERFLINK_FORK=0``). The caller closes it."""
    use_project_conf_dir()
    _use_worker_processes()  # the zygote's environment: that of the workers
    if under_flink_run() or "python.executable" in flink_settings():
        return None
    from riverflink.accel.worker_fork import Zygote

    return Zygote.start(learner_options(settings))


#: ``run_job(zygote=...)``'s default: start a warm process for this run, close it after.
_OWN = object()


def run_job(settings: JobSettings, *, progress=None, zygote=_OWN) -> str | None:
    """Build and execute the job (mini-cluster, or the cluster PyFlink was given).

    ``progress`` is called with the REST port of the local mini-cluster before the job
    starts and returns a started :class:`riverflink.results.progress.ProgressLine` (or None); it is
    stopped when the job ends. ``zygote``: the run's :func:`warm_workers` (or None), if
    the caller started it. Returns the savepoint path with ``--savepoint-on-exit``,
    else None.
    """
    if under_flink_run():
        _run_under_flink(settings)
        return None
    if zygote is _OWN:
        zygote = warm_workers(settings)
        try:
            return run_job(settings, progress=progress, zygote=zygote)
        finally:
            if zygote is not None:
                zygote.close()
    use_project_conf_dir()
    _use_worker_processes()
    from riverflink.accel.early_cluster import EarlyCluster
    from riverflink.accel.jvm_archive import use_archive, use_lean_flags
    from riverflink.accel.loopback import use_loopback_agent

    # The JVM this process starts: fast, and its workers' ports on localhost.
    use_archive()
    use_lean_flags()
    use_loopback_agent()
    port = None  # of the mini-cluster's REST API, for the progress line
    if progress is not None:
        from riverflink.results.progress import free_port

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
        from riverflink.accel.lean_imports import import_job_messages

        import_job_messages()
        env, early, port = environment()
        env.set_parallelism(settings.parallelism)
        build_job(env, settings, on_open=worker_setup_for_job())
        if zygote is None or zygote.model_kind() is None:
            check_specs(settings)
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


def _run_under_flink(settings: JobSettings) -> None:
    """Under ``flink run`` (``riverflink submit``): the cluster decides workers, ports and
    Python; Flink's CLI decides whether to wait (a detached submit returns at once)."""
    from pyflink.datastream import StreamExecutionEnvironment

    check_specs(settings)
    use_project_conf_dir()
    env = StreamExecutionEnvironment.get_execution_environment(flink_configuration(settings))
    env.set_parallelism(settings.parallelism)
    build_job(env, settings, on_open=worker_setup_for_job())
    env.execute("riverflink")


def _execute(env, early, settings: JobSettings, progress, port: int | None) -> str | None:
    """Run the job built in ``env`` (see :func:`run_job`); ``early``: its mini-cluster,
    started already (:mod:`riverflink.accel.early_cluster`), or None."""

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
    from riverflink.config.inputs import count_records, input_files
    from riverflink.runtime import exit_savepoint

    total = count_records(input_files(settings.source))
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
