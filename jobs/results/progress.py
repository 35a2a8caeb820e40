"""What a running job is doing, on one line of stderr; and what it did, when it ends.

:class:`ProgressLine` reads the workers' live counts (``operators/live_counts.py``)
every second, or where there are none the learning operator's counters from Flink's
REST API (served by the local mini-cluster on a free localhost port), and redraws one
line: lines done (of the input's total for files), records/s, elapsed time,
predictions, alerts, rejected. On a terminal the line is redrawn in place; otherwise
(a log file, CI) a new line is written every 2 seconds. The end-of-run summary is
printed either way, also with ``--quiet``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path

from riverflink.operators.live_counts import read_live_counts

__all__ = ["ProgressLine", "count_lines", "format_elapsed", "format_progress", "free_port"]

#: Counters of the learning operator shown on the line (see riverflink.operators.functions.METRICS).
SHOWN = ("lines", "predictions", "outcomes", "alerts", "rejected")


def free_port() -> int:
    """A TCP port free on localhost now (for the mini-cluster's REST API)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def count_lines(paths) -> int:
    """Non-blank lines in ``paths``, read in binary blocks (fast: about 1 GB/s).

    Compressed files count as Flink reads them, decompressed
    (``riverflink.config.inputs.read_input``; it raises ``UnreadableInput`` for what Flink
    cannot read here).
    """
    from riverflink.config.inputs import _DECOMPRESS, REFUSED_COMPRESSION, read_input

    total = 0
    for path in paths:
        if Path(path).suffix in (*_DECOMPRESS, *REFUSED_COMPRESSION):
            total += sum(1 for line in read_input(path).split(b"\n") if line.strip())
            continue
        with open(path, "rb") as fh:
            pending = b""
            while block := fh.read(1 << 20):
                chunk = pending + block
                lines = chunk.split(b"\n")
                pending = lines.pop()
                total += sum(1 for line in lines if line.strip())
            if pending.strip():
                total += 1
    return total


def format_elapsed(seconds: float) -> str:
    """``0:07``, ``12:30``, ``1:02:03``.

    >>> format_elapsed(7.4), format_elapsed(750), format_elapsed(3723)
    ('0:07', '12:30', '1:02:03')
    """
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_progress(
    counts: dict,
    *,
    total: int | None,
    elapsed: float,
    rate: float | None,
    status: str | None = None,
) -> str:
    """The progress line; ``status`` says why it does not move (the job is not running).

    >>> counts = {"lines": 1500, "predictions": 1490, "alerts": 2, "rejected": 10}
    >>> format_progress(counts, total=6000, elapsed=12.2, rate=812.4).split(" | ")
    ... # doctest: +NORMALIZE_WHITESPACE
    ['riverflink: 1,500/6,000 lines (25%)', '812 rec/s', '0:12', '1,490 predictions',
     '2 alerts', '10 rejected']
    >>> format_progress({}, total=None, elapsed=3, rate=None)
    'riverflink: 0 lines | - rec/s | 0:03 | 0 predictions | 0 alerts | 0 rejected'
    >>> format_progress({}, total=10, elapsed=3, rate=None, status="job restarting")[-38:]
    '0 alerts | 0 rejected | job restarting'
    """
    done = counts.get("lines", 0)
    if total:
        read = f"{done:,}/{total:,} lines ({min(100, int(100 * done / total))}%)"
    else:
        read = f"{done:,} lines"
    parts = [
        read,
        f"{rate:,.0f} rec/s" if rate is not None else "- rec/s",
        format_elapsed(elapsed),
        f"{counts.get('predictions', 0):,} predictions",
    ]
    if counts.get("outcomes"):
        parts.append(f"{counts['outcomes']:,} delayed labels")
    parts += [f"{counts.get('alerts', 0):,} alerts", f"{counts.get('rejected', 0):,} rejected"]
    if status:
        parts.append(status)
    return "riverflink: " + " | ".join(parts)


class _Rest:
    """The few REST calls the progress line needs, against one mini-cluster."""

    def __init__(self, port: int, timeout: float = 2.0):
        self.base = f"http://127.0.0.1:{port}"
        self.timeout = timeout
        self.vertex: tuple | None = None  # (job id, vertex id, metric id prefix)
        self.ids: list = []  # metric ids of the SHOWN counters that Flink reports
        self.listed_at = -1e9

    def _get(self, path: str):
        with urllib.request.urlopen(self.base + path, timeout=self.timeout) as response:
            return json.load(response)

    def job_state(self) -> str | None:
        """The state of the mini-cluster's job (``RUNNING``, ``RESTARTING``...), None before."""
        jobs = self._get("/jobs/overview").get("jobs", [])
        return jobs[0].get("state") if jobs else None

    def _find_learner(self) -> tuple | None:
        """(job id, vertex id, metric id prefix) of the learning operator, once it reports."""
        jobs = self._get("/jobs/overview").get("jobs", [])
        running = [j for j in jobs if j.get("state") == "RUNNING"]
        if not running:
            return None
        job_id = running[0]["jid"]
        for vertex in self._get(f"/jobs/{job_id}").get("vertices", []):
            if "learn per key" not in vertex.get("name", ""):
                continue
            available = self._get(f"/jobs/{job_id}/vertices/{vertex['id']}/subtasks/metrics")
            for metric in available:  # counters show up after their first increment
                if metric["id"].endswith(".riverflink_lines"):
                    return job_id, vertex["id"], metric["id"][: -len("riverflink_lines")]
        return None

    def _available(self) -> list:
        """The ids of the learner's shown counters that Flink reports (yet)."""
        job_id, vertex_id, prefix = self.vertex
        listed = self._get(f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics")
        wanted = {f"{prefix}riverflink_{name}" for name in SHOWN}
        return sorted(metric["id"] for metric in listed if metric["id"] in wanted)

    def counts(self) -> dict | None:
        """The learner's counters summed over subtasks, or None when not known (yet)."""
        if self.vertex is None:
            self.vertex = self._find_learner()
            if self.vertex is None:
                return None
        now = time.monotonic()
        # A request naming a counter Flink does not report yet answers nothing at all, so
        # ask only for those listed; look again now and then for counters that appear late.
        if len(self.ids) < len(SHOWN) and now - self.listed_at > 5:
            self.ids, self.listed_at = self._available(), now
        job_id, vertex_id, _ = self.vertex
        rows = self._get(
            f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics?get={','.join(self.ids)}&agg=sum"
        )
        by_name = {row["id"].rsplit("riverflink_", 1)[-1]: row.get("sum", 0) for row in rows}
        return {name: int(by_name.get(name, 0)) for name in SHOWN}


class ProgressLine:
    """A background thread that redraws the progress line until :meth:`stop`."""

    def __init__(self, port: int, *, total, stream=None, quiet: bool = False, live=None):
        """``total``: the input's lines (None: unknown), or a function that counts them,
        called in the background so the job need not wait for the count. ``live``: the
        directory of the workers' live counts (``operators/live_counts.py``), read in
        preference to Flink's counters, which move only when a bundle of records ends."""
        self.rest = _Rest(port)
        self.live = live
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.started = time.monotonic()
        self.last: dict = {}  # the latest counters seen
        self._job_seen = False  # Flink has answered about the job at least once
        self._history: deque = deque(maxlen=6)  # (time, lines) for the recent rate
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="riverflink-progress", daemon=True)
        self._drawn = False

    def start(self) -> ProgressLine:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._drawn and self.tty:  # its last counts are stale: the summary follows
            self.stream.write("\r\x1b[K")
            self.stream.flush()

    def _width(self) -> int:
        """The terminal's columns: a longer line would wrap, and ``\\r`` redraw only its
        last row."""
        try:
            return os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return 80

    def rate(self) -> float | None:
        if len(self._history) < 2:
            return None
        (t0, n0), (t1, n1) = self._history[0], self._history[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else None

    def _status(self) -> str | None:
        """Why the numbers do not move yet (start-up, a restart), or None while running."""
        try:
            state = self.rest.job_state()
        except (OSError, ValueError, KeyError, http.client.HTTPException):
            state = None
        if state is None:  # no answer: Flink is not up yet, or it is shutting down
            return "Flink stopping" if self._job_seen else "starting Flink"
        self._job_seen = True
        if state == "RUNNING":
            return None if self.last else "job running, no counts yet"
        return f"job {state.lower()}"

    def _loop(self) -> None:
        if callable(self.total) and not self.quiet:  # a quiet line shows no total
            try:
                self.total = self.total()
            except OSError:  # an input that went away: the line shows no total
                self.total = None
        last_print = 0.0
        while not self._stop.wait(1.0):
            counts = None
            if self.live is not None:
                counts = read_live_counts(self.live)
            if counts is None:
                try:
                    counts = self.rest.counts()
                except (OSError, ValueError, KeyError, http.client.HTTPException):
                    counts = None  # not up yet, or shutting down
            now = time.monotonic()
            if counts is not None:
                self.last = counts
                self._history.append((now, counts.get("lines", 0)))
            if self.quiet:
                continue
            line = format_progress(
                self.last,
                total=self.total,
                elapsed=now - self.started,
                rate=self.rate(),
                status=self._status(),
            )
            if self.tty:
                self.stream.write("\r" + line[: max(self._width() - 1, 10)] + "\x1b[K")
            elif now - last_print >= 2.0:
                self.stream.write(line + "\n")
            else:
                continue
            last_print = now
            self._drawn = True
            self.stream.flush()
