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
from itertools import islice
from pathlib import Path

import orjson

__all__ = [
    "KeyCurve",
    "OutputSummary",
    "job_summary",
    "key_metrics",
    "read_output_dir",
    "reason_group",
    "run_summary",
    "summary_table",
]

KINDS = ("predictions", "alerts", "outcomes", "rejected")


#: Lines decoded per call of the JSON parser (see :func:`committed_lines`).
_CHUNK = 10_000


#: Every byte of a chunk as "0" (an ASCII digit) or " " (anything else), and a run of 19
#: digits: orjson reads an integer beyond 64 bits as a float without a word, so a chunk
#: with a run that long goes to Python's parser (30 ms to look for one in 300,000 lines).
_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_RUN = b"0" * 19


def committed_lines(directory: Path):
    """JSON objects from the committed part files under ``directory``, file by file.

    Lines are decoded a chunk at a time, as one JSON array, by orjson: one call of a fast
    parser per chunk instead of one call of Python's per line (300,000 lines: 0.66 s ->
    0.1 s). A chunk orjson cannot read as exactly one object per line (blank lines, or
    what only Python's parser accepts: ``NaN``, integers beyond 64 bits) is decoded by
    Python's parser, line by line where need be, so values and errors are Python's; so is
    a chunk with a run of 19 digits, which may be an integer orjson would read as a float.
    """
    if not directory.is_dir():
        return
    for part in sorted(directory.rglob("part*")):
        if part.name.startswith(".") or not part.is_file():
            continue
        with open(part, "rb") as fh:
            while True:
                lines = list(islice(fh, _CHUNK))
                if not lines:
                    break
                text = b"[" + b",".join(lines) + b"]"
                try:
                    rows = None if _LONG_RUN in text.translate(_DIGITS) else orjson.loads(text)
                except orjson.JSONDecodeError:
                    rows = None
                if rows is None or len(rows) != len(lines):
                    rows = _python_decoded(lines)
                yield from rows


def _python_decoded(lines: list) -> list:
    """Python's parser on the non-blank ``lines`` (bytes): a chunk at once if it can."""
    chunk = [line.decode("utf-8") for line in lines if line.strip()]
    if not chunk:
        return []
    try:
        rows = json.loads("[" + ",".join(chunk) + "]")
    except ValueError:
        rows = None
    if rows is None or len(rows) != len(chunk):
        rows = [json.loads(line) for line in chunk]  # a bad line fails with its own error
    return rows


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
    with _without_gc():
        return _read_output_dir(Path(directory))


def _read_output_dir(directory: Path) -> OutputSummary:
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such output directory")
    if not any((directory / kind).is_dir() for kind in KINDS):
        raise FileNotFoundError(
            f"{directory}: not a riverflink output directory (no predictions/, alerts/, "
            "outcomes/ or rejected/ in it)"
        )
    counts: Counter = Counter()
    keys: dict = {}  # key JSON -> KeyCurve
    labeled: list = []  # (KeyCurve, n, y_pred, y_true)
    waiting: dict = {}  # (key JSON, id JSON) -> (n, y_pred) of predictions without a label
    seen: dict = {}  # (type, key) -> (key JSON, KeyCurve): 1, 1.0 and True are three keys

    def entry(key) -> tuple:
        memo = (key.__class__, key)
        hit = seen.get(memo)
        if hit is None:
            slot = json.dumps(key)
            key_curve = keys.get(slot)
            if key_curve is None:
                key_curve = keys[slot] = KeyCurve(key)
            hit = seen[memo] = (slot, key_curve)
        return hit

    # Tight loops, locals only: the end-of-run summary of a big run reads every line.
    lines = 0
    for row in committed_lines(directory / "predictions"):
        lines += 1
        key = row["key"]
        hit = seen.get((key.__class__, key)) or entry(key)
        n = row["n"]
        key_curve = hit[1]
        if n >= key_curve.records:
            key_curve.records = n + 1
        y_true = row["y_true"]
        if y_true is not None:
            labeled.append((key_curve, n, row["y_pred"], y_true))
        elif row["id"] is not None:
            waiting[hit[0], json.dumps(row["id"])] = (n, row["y_pred"])
    counts["predictions"] = lines
    for row in committed_lines(directory / "outcomes"):
        counts["outcomes"] += 1
        slot, key_curve = entry(row["key"])
        key_curve.delayed += 1
        n, _ = waiting.get((slot, json.dumps(row["id"])), (None, None))
        if n is not None:
            labeled.append((key_curve, n, row["y_pred"], row["y_true"]))
    for row in committed_lines(directory / "alerts"):
        counts["alerts"] += 1
        entry(row["key"])[1].alerts.append(row["n"])
    rejected: Counter = Counter()
    for row in committed_lines(directory / "rejected"):
        counts["rejected"] += 1
        rejected[reason_group(row.get("error", ""))] += 1

    if not labeled:
        task = "unsupervised"
    elif all(_is_number(y) for _, _, _, y in labeled):
        task = "regression"
    else:
        task = "classification"
    if task == "classification":
        for key_curve, n, y_pred, y_true in labeled:
            key_curve.pairs.append((n, y_true, y_pred))
            key_curve.scores.append((n, 1.0 if y_pred == y_true else 0.0))
    else:
        for key_curve, n, y_pred, y_true in labeled:
            key_curve.pairs.append((n, y_true, y_pred))
            score = _score(task, y_pred, y_true)
            if not math.isnan(score):
                key_curve.scores.append((n, score))
    return OutputSummary(directory, task, keys, counts, rejected)


def summary_table(summary: OutputSummary, *, keys: int = 10) -> str:
    """The text summary: totals, the busiest keys, the best and worst keys, rejections."""
    c = summary.counts
    lines = [
        f"riverflink output {summary.directory}: {c['predictions']:,} predictions, "
        f"{c['outcomes']:,} delayed labels learned, {c['alerts']:,} alerts, "
        f"{c['rejected']:,} rejected; {len(summary.keys):,} keys",
    ]
    name = summary.metric_name
    if name:
        overall = summary.overall()
        lines.append(f"{name} over all labeled predictions (prequential): {overall:.4f}")
    header = f"{'key':<24} {'records':>9} {'labeled':>9} {name or 'metric':>9} {'alerts':>7}"
    lines += ["", header, "-" * len(header)]
    for key_curve in summary.busiest(keys):
        metric = key_curve.metric()
        lines.append(
            f"{json.dumps(key_curve.key)[:24]:<24} {key_curve.records:>9,} "
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
            f"best key:  {json.dumps(best.key)} ({name} {best.metric():.4f}, "
            f"{best.labeled:,} labeled)",
            f"worst key: {json.dumps(worst.key)} ({name} {worst.metric():.4f}, "
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


def run_summary(directory, *, metric=None, metric_name: str = "", elapsed=None) -> str:
    """The end-of-run lines of ``riverflink run``: totals, and the best and worst keys.

    ``metric`` is the run's River metric (``--metric``, named ``metric_name``), else the
    report's accuracy/MAE.
    """
    from jobs.progress import format_elapsed

    summary = read_output_dir(directory)
    c = summary.counts
    done = c["predictions"] + c["outcomes"] + c["rejected"]  # one per input line
    took = f"done in {format_elapsed(elapsed)}; " if elapsed else ""
    lines = [
        f"riverflink: {took}the output holds {done:,} lines: {c['predictions']:,} predictions, "
        f"{c['outcomes']:,} delayed labels learned, {c['alerts']:,} alerts, "
        f"{c['rejected']:,} rejected; {len(summary.keys):,} keys"
    ]
    if metric is not None:
        values = key_metrics(summary, metric)
        name = metric_name or type(metric).__name__
        better = metric.bigger_is_better
    else:
        values = {slot: k.metric() for slot, k in summary.keys.items() if k.scores}
        name, better = summary.metric_name, summary.higher_is_better
    values = {slot: v for slot, v in values.items() if v is not None and not math.isnan(v)}
    if values:
        ranked = sorted(values, key=lambda slot: (-values[slot] if better else values[slot], slot))
        best, worst = ranked[0], ranked[-1]
        lines.append(
            f"riverflink: {name} per key: best {best} {values[best]:.4f}, "
            f"worst {worst} {values[worst]:.4f} (over {len(values):,} keys with labels)"
        )
    return "\n".join(lines)


def job_summary(directory, *, model_spec: str, metric_spec: str | None, elapsed=None) -> str:
    """:func:`run_summary` with the run's ``--metric``, built from its specs as the job
    builds it (this imports River)."""
    from operators.learner import OnlineLearner

    learner = OnlineLearner(model_spec=model_spec, drift_spec="none", metric_spec=metric_spec)
    return run_summary(
        directory,
        metric=learner.metric_prototype,
        metric_name=learner.metric_spec,
        elapsed=elapsed,
    )
