"""Reading a riverflink output directory back: per-key learning curves, counts, a summary.

Only committed part files count (in-progress files start with a dot), so the
output of a run that was killed and restored reads as one exactly-once run.
Scores are prequential: each labeled prediction, made before the model learned
that label, scores 1/0 (classifiers: right or wrong) or ``|y_pred - y|``
(regressors). A delayed label's score is that of the prediction it labels,
placed at that prediction's ``n``.

A big output is held in a few bytes a line (see :mod:`riverflink.results.columns`): the
summary of 2,000,000 predictions over 1,000,000 keys once took 1.9 GB as tuples and dicts
per key. A key's :class:`KeyCurve` is put together from those columns when asked for.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections.abc import ItemsView, Mapping, ValuesView
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from riverflink.results.columns import Tables, read_part, reason_group
from riverflink.results.keyed import Keyed, assemble
from riverflink.results.part_files import committed_parts, part_rows

__all__ = [
    "KeyCurve",
    "OutputSummary",
    "read_output_dir",
    "reason_group",
]

KINDS = ("predictions", "alerts", "outcomes", "rejected")


@dataclass
class KeyCurve:
    """One key: its prequential scores in order of ``n``, and where its alerts were."""

    key: object
    records: int = 0  # predictions made (n of the next record)
    scores: list = field(default_factory=list)  # (n, score) per labeled prediction
    pairs: list = field(default_factory=list)  # (n, y_true, y_pred) per labeled prediction
    alerts: list = field(default_factory=list)  # n of each alert of the error's drift
    feature_alerts: dict = field(default_factory=dict)  # feature -> n of each of its alerts
    delayed: int = 0  # labels that came late (outcomes)

    @property
    def labeled(self) -> int:
        return len(self.scores)

    def metric(self) -> float | None:
        """Accuracy (classifiers) or MAE (regressors) over every labeled prediction."""
        if not self.scores:
            return None
        return sum(score for _, score in self.scores) / len(self.scores)

    def rolling(self, window: int) -> tuple:
        """(n, mean score of the last ``window`` labeled predictions), in order of n."""
        ordered = sorted(self.scores)
        xs, ys, total = [], [], 0.0
        for i, (n, score) in enumerate(ordered):
            total += score
            if i >= window:
                total -= ordered[i - window][1]
            xs.append(n)
            ys.append(total / min(i + 1, window))
        return xs, ys


class OutputSummary:
    """What one output's committed lines say: totals, and per key (``keys``: key JSON ->
    :class:`KeyCurve`, in the order keys were first met) its records, scores and alerts.

    Whatever looks at every key (the busiest, the best and the worst, the overall score)
    is computed over the columns; only the keys it names become :class:`KeyCurve`.
    """

    def __init__(self, directory: Path, keyed: Keyed) -> None:
        self.directory = directory
        self.task = keyed.task  # "classification", "regression" or "unsupervised"
        self.counts = keyed.counts  # lines per output kind
        self.rejected = keyed.rejected  # reason group -> lines
        self.keyed = keyed
        self.keys = KeyCurves(self)
        self._metrics = None

    @property
    def metric_name(self) -> str:
        return {"classification": "accuracy", "regression": "MAE"}.get(self.task, "")

    @property
    def higher_is_better(self) -> bool:
        return self.task == "classification"

    def __len__(self) -> int:
        return len(self.keyed.numbers)

    def slot(self, position: int) -> str:
        """The JSON text of the key at ``position``: what the summary names it by."""
        return self.keyed.keys.text(self.keyed.numbers[position])

    def position(self, slot: str) -> int | None:
        """Where the key named ``slot`` is, if in this output."""
        number = self.keyed.keys.find(slot)
        if number is None or number >= len(self.keyed.positions):
            return None
        position = int(self.keyed.positions[number])
        return position if position >= 0 else None

    def curve(self, position: int) -> KeyCurve:
        """The key at ``position``, put together."""
        keyed = self.keyed
        alerts, feature_alerts = keyed.alerts.of(position)
        return KeyCurve(
            keyed.keys.key(keyed.numbers[position]),
            records=int(keyed.records[position]),
            scores=keyed.scores.of(position),
            pairs=keyed.pairs.of(position),
            alerts=alerts,
            feature_alerts=feature_alerts,
            delayed=0 if keyed.delayed is None else int(keyed.delayed[position]),
        )

    def metrics(self) -> np.ndarray:
        """Each key's :meth:`KeyCurve.metric` by position (NaN: None, no labeled prediction)."""
        if self._metrics is None:
            self._metrics = self.keyed.scores.means()
        return self._metrics

    def busiest(self, k: int) -> list:
        """The ``k`` keys with the most records, ties by their JSON text (``k`` < 0: all
        but the last ``-k``, as a slice ``[:k]`` of them all)."""
        records = self.keyed.records
        if k < 0:
            k = max(len(records) + k, 0)
        if k == 0:
            return []
        if k >= len(records):
            chosen = np.arange(len(records))
        else:  # the k-th most records, and as many of the keys with that many as needed
            least = np.partition(records, len(records) - k)[len(records) - k]
            above = np.flatnonzero(records > least)
            tied = heapq.nsmallest(k - len(above), self.named(np.flatnonzero(records == least)))
            chosen = np.concatenate([above, np.array([p for _, p in tied], np.int64)])
        ranked = sorted(self.named(chosen), key=lambda item: (-int(records[item[1]]), item[0]))
        return [self.curve(position) for _, position in ranked[:k]]

    def ranked(self) -> list:
        """Keys with a metric, best first (every key made a :class:`KeyCurve`: for small
        outputs; :meth:`best_and_worst` for the ends)."""
        metrics = self.metrics()
        sign = -1 if self.higher_is_better else 1
        scored = [(sign * metrics[p], slot, p) for slot, p in self.named(_valued(metrics))]
        return [self.curve(p) for _, _, p in sorted(scored)]

    def best_and_worst(self) -> tuple | None:
        """The first and the last key of :meth:`ranked`, or None without a metric."""
        metrics = self.metrics()
        positions = _valued(metrics)
        ends = self.extremes(positions, metrics[positions], self.higher_is_better)
        return ends and (self.curve(ends[0][0]), self.curve(ends[1][0]))

    def extremes(self, positions: np.ndarray, values, higher_is_better: bool) -> tuple | None:
        """The best and the worst of the keys at ``positions`` by their ``values`` (None
        or NaN: left out), as sorting them by (value, best first; JSON text) ranks them:
        ((position, value) of the best, (position, value) of the worst, keys with a value),
        or None if no key has one. Only the keys tied at either end are named."""
        if isinstance(values, np.ndarray):
            kept = np.flatnonzero(~np.isnan(values))
            if not len(kept):
                return None
            signed = -values[kept] if higher_is_better else values[kept]
            best, worst = kept[signed == signed.min()], kept[signed == signed.max()]
        else:
            kept = [i for i, v in enumerate(values) if v is not None and not math.isnan(v)]
            if not kept:
                return None
            signed = [-values[i] if higher_is_better else values[i] for i in kept]
            low, high = min(signed), max(signed)
            best = [i for i, s in zip(kept, signed) if s == low]
            worst = [i for i, s in zip(kept, signed) if s == high]
        return (
            self._pick(positions, values, best, min),
            self._pick(positions, values, worst, max),
            len(kept),
        )

    def _pick(self, positions: np.ndarray, values, rows, choose) -> tuple:
        """(position, value) of the key whose JSON text ``choose`` picks among ``rows``."""
        rows = np.ascontiguousarray(rows, np.int64)
        (_, position), row = choose(zip(self.named(positions[rows]), memoryview(rows)))
        value = values[row]
        return position, value.item() if isinstance(value, np.generic) else value

    def overall(self) -> float | None:
        """The mean score of every labeled prediction, or None without any."""
        return self.keyed.scores.mean()

    def named(self, positions: np.ndarray):
        """(JSON text, position) of each key at ``positions``."""
        text = self.keyed.keys.text
        positions = np.ascontiguousarray(positions, np.int64)
        numbers = memoryview(np.ascontiguousarray(self.keyed.numbers[positions]))
        return zip(map(text, numbers), memoryview(positions))


def _valued(values: np.ndarray) -> np.ndarray:
    return np.flatnonzero(~np.isnan(values))


class KeyCurves(Mapping):
    """Key JSON -> :class:`KeyCurve` of an :class:`OutputSummary`, each put together when
    looked up (a million keys are a million curves nobody reads)."""

    def __init__(self, summary: OutputSummary) -> None:
        self._summary = summary

    def __len__(self) -> int:
        return len(self._summary)

    def __iter__(self):
        return (slot for slot, _ in self._summary.named(np.arange(len(self._summary))))

    def __contains__(self, slot) -> bool:
        return isinstance(slot, str) and self._summary.position(slot) is not None

    def __getitem__(self, slot: str) -> KeyCurve:
        position = self._summary.position(slot) if isinstance(slot, str) else None
        if position is None:
            raise KeyError(slot)
        return self._summary.curve(position)

    def values(self) -> ValuesView:
        return _Curves(self)

    def items(self) -> ItemsView:
        return _NamedCurves(self)


class _Curves(ValuesView):
    def __iter__(self):
        summary = self._mapping._summary
        return (summary.curve(position) for position in range(len(summary)))


class _NamedCurves(ItemsView):
    def __iter__(self):
        summary = self._mapping._summary
        return ((slot, summary.curve(p)) for slot, p in summary.named(np.arange(len(summary))))


@contextmanager
def _without_gc():
    """Python's cycle collector off for a while: reading a big output creates hundreds of
    thousands of rows, none in a cycle, and the collector scanned them again and again
    (a third of the end-of-run summary's time at 300,000 lines)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def read_output_dir(directory) -> OutputSummary:
    """Read ``predictions/``, ``alerts/``, ``outcomes/`` and ``rejected/`` of one output."""
    return OutputReader(directory).summary()


class OutputReader:
    """One output directory, read a committed part file at a time, each file once.

    :meth:`read_new` reads what was committed since its last call, so the end-of-run
    summary can read the part files of the subtasks that finished first while the last
    one still works (at parallelism 2 about half the output, before the job ends);
    :meth:`summary` reads the rest and puts it all together. A file that changed after
    it was read (it should not: committed files are final) is read again. Each file is
    held in columns (:mod:`riverflink.results.columns`) that share the reader's tables of
    keys and values.
    """

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        #: kind -> {path: ((size, mtime, inode), what it holds)}, in the order of the paths
        self._parts: dict = {kind: {} for kind in KINDS}
        self._tables = Tables.new()

    def read_new(self) -> int:
        """Read the committed part files not read yet; how many were read."""
        read = 0
        with _without_gc():
            for kind in KINDS:
                known, now = self._parts[kind], {}
                for part in committed_parts(self.directory / kind):
                    try:
                        stat = part.stat()
                    except OSError:
                        continue  # gone since it was listed
                    seen = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
                    if part in known and known[part][0] == seen:
                        now[part] = known[part]
                        continue
                    now[part] = (seen, read_part(kind, part_rows(part), self._tables))
                    read += 1
                self._parts[kind] = now
        return read

    def summary(self) -> OutputSummary:
        """Everything committed now, put together as :func:`read_output_dir` gives it."""
        directory = self.directory
        if directory.exists() and not directory.is_dir():
            raise FileNotFoundError(
                f"{directory}: a file, not an output directory (name the directory a run "
                "wrote with --output)"
            )
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory}: no such output directory")
        if not any((directory / kind).is_dir() for kind in KINDS):
            raise FileNotFoundError(
                f"{directory}: not a riverflink output directory (no predictions/, alerts/, "
                "outcomes/ or rejected/ in it)"
            )
        self.read_new()
        with _without_gc():
            held = {kind: [h for _, h in self._parts[kind].values()] for kind in KINDS}
            keyed = assemble(
                self._tables,
                held["predictions"],
                held["outcomes"],
                held["alerts"],
                held["rejected"],
            )
            return OutputSummary(self.directory, keyed)
