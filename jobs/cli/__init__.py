"""The ``riverflink`` command line: argparse and the commands. Imported by nothing.

    riverflink run --source data.jsonl --output out/
    riverflink cluster start && riverflink submit --source in/ --follow --output out/
    riverflink stop JOB_ID --savepoint-dir savepoints/
    riverflink report out/ --html report.html

Bad settings end with one line on stderr and exit code 2, before Flink starts;
a job that fails ends with the cause on one line and exit code 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from riverflink.cli.flags import add_run_arguments

__all__ = ["entry", "exit_with", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line, not a usage dump."""

    def error(self, message: str):
        self.exit(2, f"riverflink: error: {message} (see '{self.prog} --help')\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="riverflink",
        description="Online machine learning on Apache Flink: one River learner per key.",
    )
    from riverflink import __version__

    parser.add_argument("--version", action="version", version=f"riverflink {__version__}")
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
    export = commands.add_parser(
        "export",
        help="write every key's model in a checkpoint or savepoint to a directory",
        description="Write each key's River estimator, as it stands in a checkpoint or "
        "savepoint, as a pickle in DIR, with DIR/models.jsonl as the index. Loading one "
        "needs River only (riverflink.load_models(DIR) loads them all).",
    )
    export.add_argument("path", metavar="PATH", help="a savepoint or checkpoint, or latest")
    export.add_argument("--output", metavar="DIR", required=True, help="a new directory")
    export.add_argument("--keys", metavar="K1,K2", help="only these keys (default: every key)")
    export.add_argument("--checkpoint-dir", metavar="DIR", help="where latest looks")
    package = commands.add_parser(
        "package",
        help="zip riverflink's code for flink run -pyfs; prints the zip's path",
        description="Write the riverflink package, as installed here, into a zip for Flink's "
        "-pyfs: a cluster's TaskManagers then import riverflink from what the job ships.",
    )
    package.add_argument("zip", metavar="FILE.zip", help="where to write it (not overwritten)")
    _add_pretrain_command(commands)
    return parser


def _add_pretrain_command(commands) -> None:
    """``pretrain``: one model over every labeled record of a history, keys ignored."""
    pretrain = commands.add_parser(
        "pretrain",
        help="train one model on a history's labeled records (no Flink); save it as a pickle",
        description="Train one model on every labeled record of SRC in file order, keys "
        "ignored (transfer learning's model A), in plain Python; print its prequential "
        "metric and the counts, and pickle the River estimator to FILE.pkl. Lines are "
        "parsed as the job parses them; bad ones are skipped and counted.",
    )
    a = pretrain.add_argument
    a("--source", required=True, metavar="SRC", help="a JSON-lines file or a directory of them")
    a("--output", required=True, metavar="FILE.pkl", help="where to write it (not overwritten)")
    a("--model", required=True, metavar="SPEC", help="a River classifier or regressor spec")
    a("--target", metavar="F", help="label field (y)")
    a("--features", metavar="F1,F2", help="feature fields (default: all other fields)")
    a("--key", metavar="F", help="key field (key): a record needs one, as in the job")
    a("--id", metavar="F", help="record id field (id): never a feature")


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
            "--dir",
            metavar="DIR",
            help="configuration, logs, pids (~/.local/state/riverflink/cluster)",
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        from riverflink.cli.run import run_command

        return run_command(args)
    if args.command == "report":
        from riverflink.cli.tools import report_command

        return report_command(args)
    if args.command == "export":
        from riverflink.cli.models import export_command

        return export_command(args)
    if args.command == "package":
        from riverflink.cli.tools import package_command

        return package_command(args)
    if args.command == "pretrain":
        from riverflink.cli.pretrain import pretrain_command

        return pretrain_command(args)
    if args.command == "warm-up":
        from riverflink.cli.tools import warm_up_command

        return warm_up_command()
    from riverflink.cli import cluster

    if args.command == "cluster":
        return cluster.cluster_command(args)
    if args.command == "submit":
        return cluster.submit_command(args)
    if args.command == "stop":
        return cluster.stop_command(args)
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
        early_cluster = sys.modules.get("riverflink.accel.early_cluster")
        if early_cluster is not None:
            early_cluster.halt_jvm()  # it would stop by itself, 0.3 s later
        os._exit(code)
    sys.exit(code)


def entry() -> None:
    """The ``riverflink`` console script."""
    exit_with(main())
