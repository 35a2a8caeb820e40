"""The ``riverflink`` command line.

    riverflink run --source data.jsonl --output out/

Bad settings end with one line on stderr and exit code 2, before Flink starts;
a job that fails ends with the cause on one line and exit code 1.
"""

from __future__ import annotations

import argparse
import re
import sys
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
    return parser


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


def _run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from_args(args)
        from jobs.online_learning import run_job

        savepoint = run_job(settings)
    except (SettingsError, ValueError) as exc:
        print(f"riverflink: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("riverflink: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the job failed inside Flink
        print(f"riverflink: job failed: {job_failure_reason(exc)}", file=sys.stderr)
        return 1
    if settings.output != "-":
        print(f"riverflink: done; output in {Path(settings.output).resolve()}", file=sys.stderr)
    if savepoint:
        print(f"riverflink: models saved; resume with --restore {savepoint}", file=sys.stderr)
        print(savepoint)  # last line on stdout: the savepoint path, for scripts
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
