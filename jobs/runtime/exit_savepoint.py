"""``--savepoint-on-exit``: carry every key's model from one bounded run to the next.

A bounded Flink job that finishes normally discards its checkpoints, and its
finished tasks hold no state, so the models cannot be taken from the end of a
run. Instead the job keeps its tasks alive (the file source runs in continuous
mode over exactly the files present at start), riverflink waits until every
input line has its committed output (each non-blank line yields exactly one
prediction or one rejected line), then stops the job with a savepoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from riverflink.config.inputs import flink_uri, local_path

__all__ = ["CommitCounter", "stop_with_savepoint", "wait_for_output"]


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
    """Block until ``total`` lines are committed; raise if the job stops first.

    The job's result is asked for at once: once a job has failed, its local cluster is
    gone, and with it any other way to learn why.
    """
    result = job_client.get_job_execution_result()
    while counter.count() < total:
        if result.done():
            result.result()  # raises the job's failure
            raise RuntimeError("the job ended before all input was processed")
        time.sleep(poll)


def stop_with_savepoint(
    job_client, directory: str, *, timeout: float = 120.0, poll: float = 0.5
) -> str:
    """Stop the job with a savepoint in ``directory``; returns the savepoint path.

    PyFlink 2.3's ``JobClient.stop_with_savepoint`` fails on a Py4J signature error, so
    this calls the Java client underneath.
    """
    from pyflink.java_gateway import get_gateway

    gateway = get_gateway()
    canonical = gateway.jvm.org.apache.flink.core.execution.SavepointFormatType.CANONICAL
    uri = flink_uri(directory)
    deadline = time.monotonic() + timeout
    while True:
        try:
            path = str(job_client._j_job_client.stopWithSavepoint(False, uri, canonical).get())
            return local_path(path)
        except Exception as failure:  # noqa: BLE001 - Py4J wraps Flink's exceptions
            # An empty input has nothing to wait for: the savepoint may be asked for before
            # every task runs (the Python worker is still starting). Flink refuses it then,
            # and the job runs on: ask again.
            if time.monotonic() > deadline or not any(
                reason in str(failure) for reason in _NOT_RUNNING_YET
            ):
                raise
            time.sleep(poll)


#: How Flink refuses a savepoint while some task of the job has not started yet.
_NOT_RUNNING_YET = (
    "is not being executed at the moment",
    "Not all required tasks are currently running",
)
