"""``riverflink cluster start|stop``, ``submit`` and ``stop``: the job on a Flink cluster."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from riverflink.cli.run import job_failure_reason
from riverflink.config.job_file import settings_from_args
from riverflink.config.settings import SettingsError

__all__ = ["cluster_command", "stop_command", "submit_command"]


def cluster_command(args: argparse.Namespace) -> int:
    from riverflink.cluster import standalone as cluster

    directory = Path(args.dir).resolve() if args.dir else cluster.default_cluster_dir()
    try:
        if args.action == "start":
            started = time.monotonic()
            jobmanager = cluster.start_cluster(
                slots=args.slots,
                taskmanagers=args.taskmanagers,
                rest_port=args.port,
                rpc_port=args.rpc_port,
                directory=directory,
            )
            print(
                f"riverflink: cluster up in {time.monotonic() - started:.0f} s: "
                f"{args.taskmanagers} TaskManager(s) x {args.slots} slots; "
                f"web UI http://{jobmanager}; logs in {directory / 'log'}",
                file=sys.stderr,
            )
            print(jobmanager)
        else:
            stopped = cluster.stop_cluster(directory)
            if stopped:
                print(f"riverflink: cluster stopped (pids {stopped})", file=sys.stderr)
            else:
                print(f"riverflink: no cluster running from {directory}", file=sys.stderr)
    except cluster.ClusterError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def _flink_failure(exc) -> str:
    """One line: our own error from the job's client, else the deepest cause."""
    for line in exc.output.splitlines():
        if line.startswith("riverflink: error:"):
            return line[len("riverflink: error: ") :]
    return f"{exc}: {job_failure_reason(RuntimeError(exc.output))}" if exc.output else str(exc)


def submit_command(args: argparse.Namespace) -> int:
    from riverflink.cluster.standalone import ClusterError, default_jobmanager
    from riverflink.cluster.submit import FlinkCliError, submit_job

    jobmanager = args.jobmanager or default_jobmanager()
    try:
        settings = settings_from_args(args)
        job_id = submit_job(settings, jobmanager)
    except (SettingsError, ValueError) as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    except FlinkCliError as exc:
        print(f"riverflink: submit failed: {_flink_failure(exc)}", file=sys.stderr)
        return 1
    except ClusterError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 1
    _warn_if_short_of_slots(jobmanager, settings.parallelism)
    where = (
        "the TaskManagers' stdout" if settings.output == "-" else Path(settings.output).resolve()
    )
    print(
        f"riverflink: submitted job {job_id} to {jobmanager} (web UI http://{jobmanager}); "
        f"output in {where}; stop it with: riverflink stop {job_id}"
        + (f" --jobmanager {jobmanager}" if args.jobmanager else ""),
        file=sys.stderr,
    )
    print(job_id)  # last line on stdout: the JobID, for scripts
    return 0


def _warn_if_short_of_slots(jobmanager: str, parallelism: int) -> None:
    """A job wider than the cluster waits for slots (a cluster that adds TaskManagers on
    demand gives them; a standalone one never does), and cannot be stopped with a savepoint."""
    from riverflink.cluster.standalone import rest_get

    try:
        slots = int(rest_get(jobmanager, "/overview")["slots-total"])
    except (OSError, ValueError, KeyError, TypeError):
        return
    if slots < parallelism:
        print(
            f"riverflink: warning: the cluster has {slots} task slot(s) and the job needs "
            f"{parallelism}: its tasks wait until there are enough (riverflink cluster start "
            "--slots N --taskmanagers M; or cancel it in the web UI, as it cannot stop with a "
            "savepoint before it runs)",
            file=sys.stderr,
        )


def stop_command(args: argparse.Namespace) -> int:
    from riverflink.cluster.standalone import ClusterError, default_jobmanager
    from riverflink.cluster.submit import FlinkCliError, stop_job

    jobmanager = args.jobmanager or default_jobmanager()
    try:
        savepoint = stop_job(args.job_id, jobmanager, args.savepoint_dir)
    except FlinkCliError as exc:
        print(f"riverflink: stop failed: {_flink_failure(exc)}", file=sys.stderr)
        return 1
    except ClusterError as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 1
    print(f"riverflink: job stopped; resume with submit --restore {savepoint}", file=sys.stderr)
    print(savepoint)  # last line on stdout: the savepoint path, for scripts
    return 0
