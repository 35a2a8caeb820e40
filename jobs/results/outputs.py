"""Reading a riverflink output directory back: per-key learning curves, counts, a summary.

Only committed part files count (in-progress files start with a dot), so the
output of a run that was killed and restored reads as one exactly-once run.
Scores are prequential: each labeled prediction, made before the model learned
that label, scores 1/0 (classifiers: right or wrong) or ``|y_pred - y|``
(regressors). A delayed label's score is that of the prediction it labels,
placed at that prediction's ``n``.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from riverflink.results.part_files import committed_parts, part_rows

__all__ = [
    "KeyCurve",
    "OutputSummary",
    "read_output_dir",
    "reason_group",
]

KINDS = ("predictions", "alerts", "outcomes", "rejected")


def reason_group(error: str) -> str:
    """A rejection reason without its particulars: what to count rejected lines by.

    >>> reason_group("invalid JSON: Expecting value: line 1 column 1 (char 0)")
    'invalid JSON'
    >>> reason_group("key field 'user' is missing or null")
    'key field … is missing or null'
    >>> reason_group("no pending prediction for id 9 of key 'a': it was never predicted")
    'no pending prediction for id … of key …'
    """
    head = error.split(": ", 1)[0]
    head = re.sub(r"'[^']*'|\"[^\"]*\"|(?<![\w-])-?\d+(\.\d+)?\b", "…", head)
    return head.strip()[:80]


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


@dataclass
class OutputSummary:
    directory: Path
    task: str  # "classification", "regression" or "unsupervised"
    keys: dict  # key JSON -> KeyCurve
    counts: Counter  # lines per output kind
    rejected: Counter  # reason group -> lines

    @property
    def metric_name(self) -> str:
        return {"classification": "accuracy", "regression": "MAE"}.get(self.task, "")

    @property
    def higher_is_better(self) -> bool:
        return self.task == "classification"

    def busiest(self, k: int) -> list:
        return sorted(self.keys.values(), key=lambda c: (-c.records, json.dumps(c.key)))[:k]

    def ranked(self) -> list:
        """Keys with a metric, best first."""
        scored = [c for c in self.keys.values() if c.metric() is not None]
        sign = -1 if self.higher_is_better else 1
        return sorted(scored, key=lambda c: (sign * c.metric(), json.dumps(c.key)))

    def overall(self) -> float | None:
        scores = [s for c in self.keys.values() for _, s in c.scores]
        return sum(scores) / len(scores) if scores else None


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _score(task: str, y_pred, y_true) -> float:
    if task == "regression":
        return abs(y_pred - y_true) if _is_number(y_pred) else math.nan
    return 1.0 if y_pred == y_true else 0.0


@contextmanager
def _without_gc():
    """Python's cycle collector off for a while: reading a big output creates hundreds of
    thousands of rows and tuples, none in a cycle, and the collector scanned them again and
    again (a third of the end-of-run summary's time at 300,000 lines)."""
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
    it was read (it should not: committed files are final) is read again.
    """

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        #: kind -> {path: ((size, mtime, inode), what it holds)}, in the order of the paths
        self._parts: dict = {kind: {} for kind in KINDS}

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
                    rows = part_rows(part)
                    now[part] = (
                        seen,
                        _read_predictions(rows) if kind == "predictions" else list(rows),
                    )
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
            return self._summary()

    def _held(self, kind: str) -> list:
        """What the committed files of ``kind`` hold, in the order of their paths."""
        return [held for _, held in self._parts[kind].values()]

    def _summary(self) -> OutputSummary:
        counts: Counter = Counter()
        keys: dict = {}  # key JSON -> KeyCurve
        labeled: list = []  # (KeyCurve, [(n, y_true, y_pred)], [(n, score)] if classified)
        waiting: dict = {}  # (key JSON, id JSON) -> (n, y_pred) of predictions without a label
        numbers_only = True  # every label a number: a regressor's
        scored = False  # some labeled prediction a float: a regressor's, or a score

        def curve(key, slot=None) -> KeyCurve:
            slot = json.dumps(key) if slot is None else slot
            key_curve = keys.get(slot)
            if key_curve is None:
                key_curve = keys[slot] = KeyCurve(key)
            return key_curve

        for part in self._held("predictions"):
            counts["predictions"] += part.lines
            if part.pseudo:
                counts["pseudo"] += part.pseudo
            for key, slot, records, pairs, scores in part.keys.values():
                key_curve = curve(key, slot)
                if records > key_curve.records:
                    key_curve.records = records
                if pairs:
                    labeled.append((key_curve, pairs, scores))
            waiting.update(part.waiting)
            numbers_only = numbers_only and part.numbers_only
            scored = scored or part.scored
        late = []  # (KeyCurve, n, y_pred, y_true) of delayed labels
        for rows in self._held("outcomes"):
            for row in rows:
                counts["outcomes"] += 1
                slot = json.dumps(row["key"])
                key_curve = curve(row["key"], slot)
                key_curve.delayed += 1
                n, _ = waiting.get((slot, json.dumps(row["id"])), (None, None))
                if n is not None:
                    late.append((key_curve, n, row["y_pred"], row["y_true"]))
                    numbers_only = numbers_only and _is_number(row["y_true"])
                    scored = scored or row["y_pred"].__class__ is float
        for rows in self._held("alerts"):
            for row in rows:
                counts["alerts"] += 1
                feature = row.get("feature")
                if feature is None:
                    curve(row["key"]).alerts.append(row["n"])
                else:  # --feature-drift
                    counts["feature_alerts"] += 1
                    curve(row["key"]).feature_alerts.setdefault(feature, []).append(row["n"])
        rejected: Counter = Counter()
        for rows in self._held("rejected"):
            for row in rows:
                counts["rejected"] += 1
                rejected[reason_group(row.get("error", ""))] += 1

        # Classifiers predict labels (booleans, strings, integers: 0 and 1 are labels too),
        # regressors numbers in floating point; a float against labels that are not numbers
        # is no prediction of them (an anomaly score), and has no accuracy.
        if not labeled and not late:
            task = "unsupervised"
        elif scored:
            task = "regression" if numbers_only else "unsupervised"
        else:
            task = "classification"
        for key_curve, pairs, scores in labeled:
            key_curve.pairs += pairs
            if task == "classification":
                key_curve.scores += scores
            else:
                _add_scores(task, key_curve, pairs)
        for key_curve, n, y_pred, y_true in late:
            key_curve.pairs.append((n, y_true, y_pred))
            if task == "classification":
                key_curve.scores.append((n, 1.0 if y_pred == y_true else 0.0))
            else:
                _add_scores(task, key_curve, [(n, y_true, y_pred)])
        return OutputSummary(self.directory, task, keys, counts, rejected)


def _add_scores(task: str, key_curve: KeyCurve, pairs: list) -> None:
    for n, y_true, y_pred in pairs:
        score = _score(task, y_pred, y_true)
        if not math.isnan(score):
            key_curve.scores.append((n, score))


@dataclass
class _Predictions:
    """What one committed file of predictions holds, put together per key."""

    lines: int
    #: (type, key) -> [key, key JSON, records (n of the next), [(n, y_true, y_pred)],
    #: [(n, 1.0 or 0.0)]] per labeled prediction, in order; 1, 1.0 and True are three keys
    keys: dict
    waiting: dict  # (key JSON, id JSON) -> (n, y_pred) of predictions without a label
    numbers_only: bool  # every label a number
    scored: bool  # some labeled prediction a float
    pseudo: int = 0  # predictions learned as pseudo-labels (--pseudo-label)


def _read_predictions(rows) -> _Predictions:
    keys: dict = {}
    waiting: dict = {}
    numbers_only = True
    scored = False
    lines = 0
    pseudo = 0
    # Tight loop, locals only: the end-of-run summary of a big run reads every line.
    for row in rows:
        lines += 1
        key = row["key"]
        entry = keys.get((key.__class__, key))
        if entry is None:
            entry = keys[key.__class__, key] = [key, json.dumps(key), 0, [], []]
        n = row["n"]
        if n >= entry[2]:
            entry[2] = n + 1
        y_true = row["y_true"]
        if y_true is not None:
            y_pred = row["y_pred"]
            entry[3].append((n, y_true, y_pred))
            entry[4].append((n, 1.0 if y_pred == y_true else 0.0))
            if numbers_only and not _is_number(y_true):
                numbers_only = False
            if y_pred.__class__ is float:
                scored = True
        elif row["id"] is not None:
            waiting[entry[1], json.dumps(row["id"])] = (n, row["y_pred"])
        elif "pseudo" in row:
            pseudo += 1
    return _Predictions(lines, keys, waiting, numbers_only, scored, pseudo)
