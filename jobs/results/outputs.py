"""Reading a riverflink output directory back: per-key learning curves, counts, a summary.

Only committed part files count (in-progress files start with a dot), so the
output of a run that was killed and restored reads as one exactly-once run.
Scores are prequential: each labeled prediction, made before the model learned
that label, scores 1/0 (classifiers: right or wrong) or ``|y_pred - y|``
(regressors). A delayed label's score is that of the prediction it labels,
placed at that prediction's ``n``.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from jobs.results.part_files import committed_parts, part_rows

__all__ = [
    "KeyCurve",
    "OutputSummary",
    "job_summary",
    "key_metrics",
    "read_output_dir",
    "reason_group",
    "readable_key",
    "run_summary",
    "summary_table",
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
    alerts: list = field(default_factory=list)  # n of each alert
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
                curve(row["key"]).alerts.append(row["n"])
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


def _read_predictions(rows) -> _Predictions:
    keys: dict = {}
    waiting: dict = {}
    numbers_only = True
    scored = False
    lines = 0
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
    return _Predictions(lines, keys, waiting, numbers_only, scored)


def summary_table(summary: OutputSummary, *, keys: int = 10) -> str:
    """The text summary: totals, the busiest keys, the best and worst keys, rejections."""
    c = summary.counts
    lines = [
        f"riverflink output {summary.directory}: {c['predictions']:,} predictions, "
        f"{c['outcomes']:,} delayed labels learned, {c['alerts']:,} alerts, "
        f"{c['rejected']:,} rejected; {_count(len(summary.keys), 'key')}",
    ]
    name = summary.metric_name
    overall = summary.overall() if name else None
    if overall is not None:
        lines.append(f"{name} over all labeled predictions (prequential): {overall:.4f}")
    header = f"{'key':<24} {'records':>9} {'labeled':>9} {name or 'metric':>9} {'alerts':>7}"
    lines += ["", header, "-" * len(header)]
    for key_curve in summary.busiest(keys):
        metric = key_curve.metric()
        lines.append(
            f"{readable_key(key_curve.key)[:24]:<24} {key_curve.records:>9,} "
            f"{key_curve.labeled:>9,} {'-' if metric is None else f'{metric:.4f}':>9} "
            f"{len(key_curve.alerts):>7,}"
        )
    if len(summary.keys) > keys:
        lines.append(f"... and {len(summary.keys) - keys:,} more keys")
    ranked = summary.ranked()
    if ranked:
        best, worst = ranked[0], ranked[-1]
        lines += [
            "",
            f"best key:  {_shown(json.dumps(best.key))} ({name} {best.metric():.4f}, "
            f"{best.labeled:,} labeled)",
            f"worst key: {_shown(json.dumps(worst.key))} ({name} {worst.metric():.4f}, "
            f"{worst.labeled:,} labeled)",
        ]
    if summary.rejected:
        lines += ["", "rejected by reason:"]
        for reason, count in summary.rejected.most_common():
            lines.append(f"  {count:>8,}  {reason}")
    return "\n".join(lines)


def key_metrics(summary: OutputSummary, metric) -> dict:
    """key JSON -> value of a River ``metric`` (cloned per key) over its labeled predictions.

    ``metric`` must not have been updated. Predictions of ``None`` are skipped, as River's
    progressive validation does.
    """
    with _without_gc():
        return _key_metrics(summary, metric)


def _key_metrics(summary: OutputSummary, metric) -> dict:
    if _fresh_accuracy(metric):
        accuracies = _accuracies(summary)
        if accuracies is not None:
            return accuracies
    values = {}
    for slot, key_curve in summary.keys.items():
        if not key_curve.pairs:
            continue
        per_key = copy.deepcopy(metric)  # not clone(): utils.Rolling's clone drops the window
        for _, y_true, y_pred in sorted(key_curve.pairs, key=lambda p: p[0]):
            if y_pred is not None:
                per_key.update(y_true, y_pred)
        values[slot] = per_key.get()
    return values


def _fresh_accuracy(metric) -> bool:
    """Whether ``metric`` is a ``metrics.Accuracy`` that has seen nothing (the default)."""
    from river import metrics

    return type(metric) is metrics.Accuracy and not metric.cm.total_weight


#: Labels whose equality is plain ``==`` (no NaN, hashable): River's confusion matrix,
#: which keys its counts by label, counts a right answer exactly when ``y_pred == y_true``.
_PLAIN_LABELS = (str, bool, int)


def _accuracies(summary: OutputSummary) -> dict | None:
    """Each key's ``metrics.Accuracy()`` over its labeled predictions, counted directly.

    What River's metric gives (right answers over answers, ``None`` predictions skipped,
    0.0 without answers; both counts are sums of ones, exact in floating point), without
    a metric object and a confusion-matrix update per label: the bulk of the end-of-run
    summary of a big run. None where a label is not a string, bool or integer.
    """
    values = {}
    for slot, key_curve in summary.keys.items():
        if not key_curve.pairs:
            continue
        right = answered = 0
        for _, y_true, y_pred in key_curve.pairs:
            if y_pred is None:
                continue
            if y_true.__class__ not in _PLAIN_LABELS or y_pred.__class__ not in _PLAIN_LABELS:
                return None
            answered += 1
            if y_pred == y_true:
                right += 1
        values[slot] = right / answered if answered else 0.0
    return values


def run_summary(
    directory, *, metric=None, metric_name: str = "", elapsed=None, reader=None, scored=True
) -> str:
    """The end-of-run lines of ``riverflink run``: totals, and the best and worst keys.

    ``metric`` is the run's River metric (``--metric``, named ``metric_name``), else the
    report's accuracy/MAE. ``reader``: an :class:`OutputReader` of ``directory`` that has
    read part of it already. ``scored``: False for a model that predicts no label (an
    anomaly detector's score, a clusterer's cluster): no metric then.
    """
    from jobs.results.progress import format_elapsed

    summary = (reader or OutputReader(directory)).summary()
    c = summary.counts
    done = c["predictions"] + c["outcomes"] + c["rejected"]  # one per input line
    took = f"done in {format_elapsed(elapsed)}; " if elapsed else ""
    lines = [
        f"riverflink: {took}the output answers {done:,} input lines: "
        f"{c['predictions']:,} predictions, {c['outcomes']:,} delayed labels learned, "
        f"{c['rejected']:,} rejected; {c['alerts']:,} drift alerts; "
        f"{_count(len(summary.keys), 'key')}"
    ]
    if metric is not None:
        values = key_metrics(summary, metric)
        name = metric_name or type(metric).__name__
        better = metric.bigger_is_better
    else:
        values = {slot: k.metric() for slot, k in summary.keys.items() if k.scores}
        name, better = summary.metric_name, summary.higher_is_better
    values = {slot: v for slot, v in values.items() if v is not None and not math.isnan(v)}
    if values and scored:
        ranked = sorted(values, key=lambda slot: (-values[slot] if better else values[slot], slot))
        best, worst = ranked[0], ranked[-1]
        lines.append(
            f"riverflink: {name} per key: best {_shown(best)} {values[best]:.4f}, "
            f"worst {_shown(worst)} {values[worst]:.4f} (over {_count(len(values), 'key')} "
            "with labels)"
        )
    return "\n".join(lines)


#: The longest key text a summary line shows (keys can be megabytes long).
SHOWN_KEY_CHARS = 60


def _shown(key_text: str) -> str:
    """A key's JSON text for a summary line: its characters as they are (not ``\\u``
    escapes), cut short with "..." when longer than :data:`SHOWN_KEY_CHARS`.

    >>> _shown('"k1"'), _shown('"' + "x" * 100 + '"')[-12:], _shown('"\\u00e9"')
    ('"k1"', 'xxxxxxxxx...', '"é"')
    """
    key_text = readable_key(json.loads(key_text))
    if len(key_text) <= SHOWN_KEY_CHARS:
        return key_text
    return key_text[: SHOWN_KEY_CHARS - 3] + "..."


def _count(n: int, word: str) -> str:
    """A count and its noun.

    >>> _count(1, "key"), _count(1000, "key")
    ('1 key', '1,000 keys')
    """
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def readable_key(key) -> str:
    """A key as JSON with its characters as they are; escaped (all of them) only where
    they cannot be printed (a lone surrogate).

    >>> readable_key("ü"), readable_key("\\ud83d"), readable_key(7)
    ('"ü"', '"\\\\ud83d"', '7')
    """
    text = json.dumps(key, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(key)
    return text


def job_summary(
    directory, *, model_spec: str, metric_spec: str | None, elapsed=None, reader=None
) -> str:
    """:func:`run_summary` with the run's ``--metric``, built from its specs as the job
    builds it (this imports River)."""
    from operators.learner import OnlineLearner

    learner = OnlineLearner(model_spec=model_spec, drift_spec="none", metric_spec=metric_spec)
    return run_summary(
        directory,
        metric=learner.metric_prototype,
        metric_name=learner.metric_spec,
        elapsed=elapsed,
        reader=reader,
        scored=learner.metric_prototype is not None or learner.kind in SCORED_KINDS,
    )


#: The models whose predictions are scored against labels without a --metric.
SCORED_KINDS = ("classifier", "regressor")
