"""``riverflink run``: the job on the local mini-cluster, with a progress line and a summary.

Bad settings end with one line on stderr and exit code 2, before Flink starts; a job
that fails ends with the cause on one line and exit code 1. Ctrl-C, SIGTERM and SIGHUP
cancel the job, print the summary of what it committed and end with exit code 130, 143
and 129: the JVM and the Python workers end with it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from riverflink.config.job_file import settings_from_args
from riverflink.config.settings import SettingsError
from riverflink.config.target import under_flink_run

__all__ = ["job_failure_reason", "run_command"]


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


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a service manager, ``kill``, a closed terminal): the run stops as
    on Ctrl-C. Without this, the process would end at once and leave its JVM behind, busy
    for good with the job's Python workers gone."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _stop_on_signals() -> contextlib.AbstractContextManager:
    """While in it, SIGTERM and SIGHUP raise :class:`Stopped` in the main thread, unless
    they are ignored (``nohup`` ignores SIGHUP) or handled already."""

    def stop(signum, frame):
        raise Stopped(signum)

    stack = contextlib.ExitStack()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            if signal.getsignal(signum) is signal.SIG_DFL:
                stack.callback(signal.signal, signum, signal.signal(signum, stop))
    return stack


def _total_lines(settings) -> int | None:
    """Lines of a bounded file input (the progress line's total), else None."""
    if settings.unbounded or settings.is_socket:
        return None
    from riverflink.config.inputs import UnreadableInput, input_files
    from riverflink.results.progress import count_lines

    try:
        return count_lines(input_files(settings.source))
    except UnreadableInput:
        return None  # Flink reads it; the progress line goes without a total


def run_command(args: argparse.Namespace) -> int:
    started = time.monotonic()
    line = None

    def progress(port: int):
        nonlocal line
        from riverflink.results.progress import ProgressLine

        line = ProgressLine(
            port,
            total=lambda: _total_lines(settings),
            # printed lines and a redrawn line cannot share one terminal
            quiet=args.quiet or (settings.output == "-" and sys.stdout.isatty()),
            live=live,
        ).start()
        return line

    with contextlib.ExitStack() as cleanup:
        interrupted, zygote, settings = 0, None, None  # interrupted: the exit code
        cleanup.enter_context(_stop_on_signals())
        jvm_args = os.environ.get("JVM_ARGS")  # the user's (a local run adds its own)
        live = None  # the directory of the workers' live counts (operators/live_counts.py)
        if not under_flink_run():  # a local run: its workers are ours
            from riverflink.operators.live_counts import ENV as LIVE_COUNTS_ENV

            live = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="riverflink-counts-"))
            os.environ[LIVE_COUNTS_ENV] = live  # the JVM and its workers inherit it
        try:
            settings = settings_from_args(args)
            restored = _restored_checkpoint(settings)
            from riverflink.runtime.local import run_job, warm_workers

            zygote = warm_workers(settings)  # it also computes the summary: it has River
            if zygote is not None:
                cleanup.callback(zygote.close)
                if settings.output != "-" and not settings.unbounded:
                    zygote.watch(settings.output)  # it reads output committed meanwhile
            savepoint = run_job(settings, progress=progress, zygote=zygote)
        except (SettingsError, ValueError) as exc:
            print(f"riverflink: error: {exc}", file=sys.stderr)
            return 2
        except Stopped as stop:
            print(f"riverflink: stopped by {stop}; the job was cancelled", file=sys.stderr)
            interrupted, savepoint = 128 + stop.signum, None
        except KeyboardInterrupt:
            print("riverflink: interrupted; the job was cancelled", file=sys.stderr)
            interrupted, savepoint = 130, None
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
        if not under_flink_run():  # not under `flink run` (submit)
            _summary(settings, line, time.monotonic() - started, zygote, live)
    if interrupted:
        return interrupted
    if under_flink_run():  # under `flink run`, which may have detached
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
    from riverflink.config.checkpoints import holds_operator, latest_checkpoint
    from riverflink.pipeline.uids import UIDS, file_source_uid

    found = latest_checkpoint(settings.checkpoint_dir)
    uids = (file_source_uid(settings.source, settings.follow), UIDS["source"])
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

    ``zygote``: the run's warm process (:mod:`riverflink.accel.worker_fork`), which computes them.
    ``live``: the directory of the workers' live counts, exact once the job has ended.
    """
    from riverflink.results.progress import format_elapsed

    if settings.output == "-":
        from riverflink.operators.live_counts import read_live_counts

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
    from riverflink.results.summary import job_summary

    options = dict(
        model_spec=settings.model,
        metric_spec=settings.metric,
        init_model=settings.init_model and str(Path(settings.init_model).resolve()),
        elapsed=elapsed,
    )
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
