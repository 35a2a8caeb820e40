"""The learner's counters as they change, for the progress line of local runs.

Flink hears a Python operator's counters when a bundle of records ends. With
``--profile throughput`` a whole input file can be one bundle, so the progress line
would stand still until the very end, and a run that prints to stdout (``--output
-``) could end before its counters ever reached Flink. So where ``riverflink run``
asks for them (:data:`ENV` names a directory), each subtask's worker also keeps its
totals in a small JSON file there, rewritten twice a second while they change and
once more when the worker closes. Each attempt of a subtask (after a restart) writes
a file of its own: the sum counts every line processed, replays included.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

__all__ = ["ENV", "LiveCounts", "read_live_counts"]

#: The directory the workers write their counts to (unset: they write none).
ENV = "RIVERFLINK_COUNTS_DIR"

#: Seconds between rewrites of a worker's file while its counts change.
INTERVAL = 0.5


class LiveCounts:
    """One worker's running totals, written to ``path`` in the background.

    >>> import tempfile
    >>> directory = tempfile.mkdtemp()
    >>> counts = LiveCounts(Path(directory) / "subtask-0-attempt-0.json", ("lines", "alerts"))
    >>> counts.add({"lines": 3, "alerts": 0})
    >>> counts.add({"lines": 2})
    >>> counts.close()
    >>> read_live_counts(directory)
    {'lines': 5, 'alerts': 0}
    """

    def __init__(self, path: Path, names, *, interval: float = INTERVAL):
        self.path = Path(path)
        self.totals = dict.fromkeys(names, 0)
        self._changes = 0  # add() calls so far; the writer compares
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(interval,), name="riverflink-live-counts", daemon=True
        )
        self._thread.start()

    @classmethod
    def for_subtask(cls, subtask: int, attempt: int, names) -> LiveCounts | None:
        """The counts of this subtask's attempt, where the run asked for them; else None."""
        directory = os.environ.get(ENV)
        if not directory or not os.path.isdir(directory):
            return None
        return cls(Path(directory) / f"subtask-{subtask}-attempt-{attempt}.json", names)

    def add(self, counts: dict) -> None:
        totals = self.totals
        for name, count in counts.items():
            if count:
                totals[name] = totals.get(name, 0) + count
        self._changes += 1

    def close(self) -> None:
        """Stop the writer and write the final totals."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._write()

    def _run(self, interval: float) -> None:
        written = 0
        while not self._stop.wait(interval):
            changes = self._changes
            if changes != written:
                self._write()
                written = changes

    def _write(self) -> None:
        partial = self.path.with_name(f".{self.path.name}.partial")
        try:
            partial.write_text(json.dumps(dict(self.totals)))
            os.replace(partial, self.path)  # readers see the old totals or the new
        except OSError:
            pass  # the run ended and took the directory: nobody reads any more


def read_live_counts(directory) -> dict | None:
    """The totals over every worker's file in ``directory``; None before the first."""
    totals: dict = {}
    found = False
    try:
        paths = sorted(Path(directory).glob("subtask-*.json"))
    except OSError:
        return None
    for path in paths:
        try:
            counts = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # replaced while read: the next read gets it
        found = True
        for name, count in counts.items():
            totals[name] = totals.get(name, 0) + count
    return totals if found else None
