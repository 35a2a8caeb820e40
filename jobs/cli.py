"""The ``riverflink`` command line.

    riverflink run --source data.jsonl --output out/
    riverflink cluster start && riverflink submit --source in/ --follow --output out/
    riverflink stop JOB_ID --savepoint-dir savepoints/
    riverflink report out/ --html report.html

Bad settings end with one line on stderr and exit code 2, before Flink starts;
a job that fails ends with the cause on one line and exit code 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from jobs.settings import SettingsError, add_run_arguments, settings_from_args

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line, not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"riverflink: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="riverflink",
        description="Online machine learning on Apache Flink: one River learner per key.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    run = commands.add_parser(
        "run",
        help="run the job on the local Flink mini-cluster",
        description="Run the online-learning job (local mini-cluster).",
    )
    add_run_arguments(run)
    run.add_argument(
        "--quiet", action="store_true", help="no progress line (the end-of-run summary stays)"
    )
    _add_cluster_commands(commands)
    report = commands.add_parser(
        "report",
        help="learning curves, drift alerts and rejections of an output directory",
        description="Read a riverflink output directory; draw the learning curves (overall and "
        "the busiest keys) with drift alerts, and rejected lines by reason; print a summary.",
    )
    report.add_argument("out_dir", metavar="OUT_DIR", help="a riverflink --output directory")
    report.add_argument("--keys", type=int, default=6, metavar="K", help="busiest keys drawn (6)")
    where = report.add_mutually_exclusive_group()
    where.add_argument(
        "--html", metavar="FILE", help="one self-contained page (OUT_DIR/report.html)"
    )
    where.add_argument("--png", metavar="DIR", help="PNG figures into DIR instead")
    commands.add_parser(
        "warm-up",
        help="build the router and the JVM class archive that starts local runs faster",
        description="Compile riverflink's Java router (needs a JDK's javac), then run a small "
        "job once so that its JVM writes a class-data archive into this Python environment "
        "(about 100 MB); local runs then start faster. Run it again after upgrading Java or "
        "apache-flink.",
    )
    return parser


def _add_cluster_commands(commands) -> None:
    """``cluster start|stop``, ``submit``, ``stop``: the job on a standalone Flink cluster."""
    cluster = commands.add_parser(
        "cluster",
        help="start or stop a local standalone Flink cluster",
        description="A local standalone Flink cluster (JobManager + TaskManagers) on localhost.",
    )
    actions = cluster.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    start = actions.add_parser("start", help="start a JobManager and TaskManagers")
    start.add_argument("--slots", type=int, default=2, help="task slots per TaskManager (2)")
    start.add_argument("--taskmanagers", type=int, default=1, help="number of TaskManagers (1)")
    start.add_argument("--port", type=int, help="REST API and web UI port (8081)")
    start.add_argument("--rpc-port", type=int, help="JobManager RPC port (6123)")
    stop_cluster = actions.add_parser("stop", help="stop the cluster started by `cluster start`")
    for parser in (start, stop_cluster):
        parser.add_argument(
            "--dir", metavar="DIR", help="configuration, logs, pids (.riverflink/cluster)"
        )
    submit = commands.add_parser(
        "submit",
        help="submit the job to a Flink cluster (detached); prints the JobID",
        description="Submit the online-learning job to a Flink cluster; the options of run "
        "but --savepoint-on-exit (stop the job with a savepoint: riverflink stop).",
    )
    add_run_arguments(submit, exit_savepoint=False)
    stop = commands.add_parser(
        "stop",
        help="stop a submitted job with a savepoint; prints the savepoint path",
        description="Stop a job with a savepoint; resume it with submit --restore PATH.",
    )
    stop.add_argument("job_id", metavar="JOB_ID")
    stop.add_argument("--savepoint-dir", metavar="DIR", help="where to write it (./savepoints)")
    for parser in (submit, stop):
        parser.add_argument(
            "--jobmanager", metavar="HOST:PORT", help="REST address (flink-conf: localhost:8081)"
        )


_PY_ERROR = re.compile(r"^\s*((?:[\w.]+\.)?\w*(?:Error|Exception)): (.+)$", re.MULTILINE)


def job_failure_reason(exc: BaseException) -> str:
    """The most useful line of a failed job's (Java + Python) error."""
    text = str(exc)
    for line in text.splitlines():  # our own errors, raised inside the Python worker
        match = re.search(r"(StateFormatError|SpecError|SettingsError): (.+)", line)
        if match:
            return f"{match.group(1)}: {match.group(2).strip()}"
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1][len("Caused by: ") :]
    matches = _PY_ERROR.findall(text)
    if matches:
        return ": ".join(matches[-1])
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _total_lines(settings) -> int | None:
    """Lines of a bounded file input (the progress line's total), else None."""
    if settings.unbounded or settings.is_socket:
        return None
    from jobs.exit_savepoint import UnreadableInput, input_files
    from jobs.progress import count_lines

    try:
        return count_lines(input_files(settings.source))
    except UnreadableInput:
        return None  # Flink reads it; the progress line goes without a total


def _run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    line = None

    def progress(port: int):
        nonlocal line
        from jobs.progress import ProgressLine

        line = ProgressLine(
            port,
            total=lambda: _total_lines(settings),
            # printed lines and a redrawn line cannot share one terminal
            quiet=args.quiet or (settings.output == "-" and sys.stdout.isatty()),
            live=live,
        ).start()
        return line

    with contextlib.ExitStack() as cleanup:
        interrupted, zygote, settings = False, None, None
        jvm_args = os.environ.get("JVM_ARGS")  # the user's (a local run adds its own)
        live = None  # the directory of the workers' live counts (operators/live_counts.py)
        if "PYFLINK_GATEWAY_PORT" not in os.environ:  # a local run: its workers are ours
            from operators.live_counts import ENV as LIVE_COUNTS_ENV

            live = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="riverflink-counts-"))
            os.environ[LIVE_COUNTS_ENV] = live  # the JVM and its workers inherit it
        try:
            settings = settings_from_args(args)
            restored = _restored_checkpoint(settings)
            from jobs.online_learning import run_job, warm_workers

            zygote = warm_workers(settings)  # it also computes the summary: it has River
            if zygote is not None:
                cleanup.callback(zygote.close)
                if settings.output != "-" and not settings.unbounded:
                    zygote.watch(settings.output)  # it reads output committed meanwhile
            savepoint = run_job(settings, progress=progress, zygote=zygote)
        except (SettingsError, ValueError) as exc:
            print(f"riverflink: error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("riverflink: interrupted; the job was cancelled", file=sys.stderr)
            interrupted, savepoint = True, None
        except Exception as exc:  # the job failed inside Flink
            reason = job_failure_reason(exc)
            if settings is not None and settings.is_socket and "ConnectException" in reason:
                host, port = settings.socket_address
                reason += f" (riverflink connects to {host}:{port} as a client: start the sender"
                reason += " first)"
            if "gateway process exited" in reason and jvm_args:
                reason += f" (the JVM did not start: check JVM_ARGS={jvm_args!r})"
            print(f"riverflink: job failed: {reason}", file=sys.stderr)
            return 1
        if "PYFLINK_GATEWAY_PORT" not in os.environ:  # not under `flink run` (submit)
            _summary(settings, line, time.monotonic() - started, zygote, live)
    if interrupted:
        return 130
    if "PYFLINK_GATEWAY_PORT" in os.environ:  # under `flink run`, which may have detached
        return 0
    if restored is not None and not settings.unbounded:
        _remove_finished(restored, Path(settings.checkpoint_dir))
    if settings.output != "-":
        output = Path(settings.output).resolve()
        output.mkdir(parents=True, exist_ok=True)  # an input without lines wrote nothing
        print(f"riverflink: done; output in {output}", file=sys.stderr)
    if savepoint:
        print(f"riverflink: models saved; resume with --restore {savepoint}", file=sys.stderr)
        print(savepoint)  # last line on stdout: the savepoint path, for scripts
    return 0


def _restored_checkpoint(settings) -> Path | None:
    """The checkpoint that ``--restore latest`` resumes reading the same input from (None
    for any other start: another input leaves that job's checkpoints its own)."""
    if settings.restore != "latest" or not settings.checkpoint_dir or settings.is_socket:
        return None
    from jobs.checkpoints import holds_operator, latest_checkpoint
    from jobs.online_learning import UIDS, _file_source_uid

    found = latest_checkpoint(settings.checkpoint_dir)
    uids = (_file_source_uid(settings.source, settings.follow), UIDS["source"])
    if found is None or not any(holds_operator(str(found), uid) for uid in uids):
        return None
    return found


def _remove_finished(checkpoint: Path, checkpoint_dir: Path) -> None:
    """Remove the checkpoints of the job that a finished run took over from.

    A bounded job that finishes deletes its own checkpoints, but those of the killed job it
    resumed stayed: running the same ``--restore latest`` again would answer the input's
    tail a second time, appending duplicates to the output.
    """
    import shutil

    job = checkpoint.parent  # DIR/<job id>/chk-<n>
    if job.parent.resolve() != checkpoint_dir.resolve() or not any(job.glob("chk-*")):
        return  # not Flink's layout: leave it
    shutil.rmtree(job, ignore_errors=True)
    print(
        f"riverflink: this run finished what the checkpoints in {job} had begun; removed them",
        file=sys.stderr,
    )


def _summary(settings, line, elapsed: float, zygote=None, live=None) -> None:
    """The end-of-run lines: what the committed output holds (or, on stdout, the counts).

    ``zygote``: the run's warm process (:mod:`jobs.worker_fork`), which computes them.
    ``live``: the directory of the workers' live counts, exact once the job has ended.
    """
    from jobs.progress import format_elapsed

    if settings.output == "-":
        from operators.live_counts import read_live_counts

        counted = read_live_counts(live) if live is not None else None
        source = "lines processed, replays after a restart included"
        if counted is None:
            counted = line.last if line is not None else {}
            source = "Flink's counters at their last report"
        print(
            f"riverflink: {counted.get('lines', 0):,} lines in {format_elapsed(elapsed)}: "
            f"{counted.get('predictions', 0):,} predictions, "
            f"{counted.get('outcomes', 0):,} delayed labels learned, "
            f"{counted.get('alerts', 0):,} alerts, {counted.get('rejected', 0):,} rejected "
            f"({source})",
            file=sys.stderr,
        )
        return
    from jobs.outputs import job_summary

    options = dict(model_spec=settings.model, metric_spec=settings.metric, elapsed=elapsed)
    try:
        if zygote is None:
            raise OSError("no warm process")
        summary = zygote.summary(settings.output, **options)  # River is imported there
    except OSError:
        try:
            summary = job_summary(settings.output, **options)
        except FileNotFoundError:
            summary = None
    if summary is not None:  # else nothing was committed
        print(summary, file=sys.stderr)


def _cluster(args: argparse.Namespace) -> int:
    from jobs import cluster

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


def _submit(args: argparse.Namespace) -> int:
    from jobs.cluster import ClusterError, default_jobmanager
    from jobs.submit import FlinkCliError, submit_job

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
    from jobs.cluster import rest_get

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


def _stop(args: argparse.Namespace) -> int:
    from jobs.cluster import ClusterError, default_jobmanager
    from jobs.submit import FlinkCliError, stop_job

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


def _report(args: argparse.Namespace) -> int:
    from jobs.report import write_report

    try:
        table, written = write_report(
            args.out_dir, keys=args.keys, html_path=args.html, png_dir=args.png
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    for path in written:
        print(f"riverflink: wrote {path}", file=sys.stderr)
    return 0


def _warm_up() -> int:
    from jobs.java_router import build_jar, jar_path
    from jobs.jvm_archive import build_archive

    path = jar_path()
    if not path.is_file():
        try:
            build_jar(path)
            print(f"riverflink: built the router {path}", file=sys.stderr)
        except (RuntimeError, OSError) as exc:
            print(
                f"riverflink: could not build the router, so jobs route in Flink SQL "
                f"(slower): {exc}",
                file=sys.stderr,
            )
    try:
        path, took = build_archive()
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"riverflink: warm-up failed; runs start the slow way: {exc}", file=sys.stderr)
        return 1
    size = path.stat().st_size / 1e6
    print(f"riverflink: wrote {path} ({size:,.0f} MB) in {took:.0f} s", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "report":
        return _report(args)
    if args.command == "run":
        return _run(args)
    if args.command == "cluster":
        return _cluster(args)
    if args.command == "submit":
        return _submit(args)
    if args.command == "stop":
        return _stop(args)
    if args.command == "warm-up":
        return _warm_up()
    return 2  # pragma: no cover - argparse rejects unknown commands


def exit_with(code: int) -> None:
    """Exit with ``code``; after a job, without tearing the interpreter down.

    Once a command has run a job, everything it owes is written and flushed, and the JVM
    it started stops by itself when this process ends. Python's own shut-down (freeing
    River, pandas, Beam and PyFlink module by module) would add about half a second to
    every run, so a process that started a JVM leaves at once.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    gateway = sys.modules.get("pyflink.java_gateway")
    if gateway is not None and getattr(gateway, "_gateway", None) is not None:
        early_cluster = sys.modules.get("jobs.early_cluster")
        if early_cluster is not None:
            early_cluster.halt_jvm()  # it would stop by itself, 0.3 s later
        os._exit(code)
    sys.exit(code)


def entry() -> None:
    """The ``riverflink`` console script."""
    exit_with(main())


if __name__ == "__main__":
    exit_with(main())
