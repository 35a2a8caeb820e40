"""``--savepoint-on-exit``: carry every key's model from one bounded run to the next.

A bounded Flink job that finishes normally discards its checkpoints, and its
finished tasks hold no state, so the models cannot be taken from the end of a
run. Instead the job keeps its tasks alive (the file source runs in continuous
mode over exactly the files present at start), riverflink waits until every
input line has its committed output (each non-blank line yields exactly one
prediction or one rejected line), then stops the job with a savepoint.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from pathlib import Path

from operators.records import is_blank

__all__ = ["input_files", "count_records", "CommitCounter", "stop_with_savepoint"]

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")  # how Java's BufferedReader splits lines


def input_files(source: str) -> list[Path]:
    """The files Flink's file source reads under ``source`` (hidden and _ files skipped)."""
    root = Path(source)
    if root.is_file():
        return [root]
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def count_records(files: Iterable[Path]) -> int:
    """Lines the job will answer: every line that is not blank, valid or not."""
    total = 0
    for path in files:
        data = path.read_bytes()
        lines = _LINE_BREAK.split(data)
        if lines and lines[-1] == b"":
            lines.pop()
        total += sum(1 for line in lines if not is_blank(line))
    return total


class CommitCounter:
    """Counts committed output lines written after it was created (part files are immutable)."""

    def __init__(self, directories: Iterable[Path]):
        self.directories = list(directories)
        self.baseline = {p for d in self.directories for p in d.glob("part*")}
        self.counted: dict = {}

    def count(self) -> int:
        for directory in self.directories:
            for part in directory.glob("part*"):
                if part not in self.baseline and part not in self.counted:
                    with open(part, "rb") as fh:
                        self.counted[part] = sum(1 for line in fh if line.strip())
        return sum(self.counted.values())


def wait_for_output(job_client, counter: CommitCounter, total: int, poll: float = 0.5) -> None:
    """Block until ``total`` lines are committed; raise if the job stops first."""
    while counter.count() < total:
        status = str(job_client.get_job_status().result())
        if status in ("FAILED", "CANCELED", "FINISHED"):
            job_client.get_job_execution_result().result()  # raises the failure
            raise RuntimeError(f"the job ended ({status}) before all input was processed")
        time.sleep(poll)


def stop_with_savepoint(job_client, directory: str) -> str:
    """Stop the job with a savepoint in ``directory``; returns the savepoint path.

    PyFlink 2.3's ``JobClient.stop_with_savepoint`` fails on a Py4J signature error, so
    this calls the Java client underneath.
    """
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    canonical = gateway.jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    uri = Path(directory).resolve().as_uri()
    path = str(job_client._j_job_client.stopWithSavepoint(False, uri, canonical).get())
    return local_path(path)


def local_path(path: str) -> str:
    """``file:/a/b`` or ``file:///a/b`` (as Flink reports paths) -> ``/a/b``."""
    if path.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(path).path)
    return path
