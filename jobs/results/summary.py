"""What a run's committed output says, in words: the end-of-run summary and its table.

Scores are prequential (see :mod:`riverflink.results.outputs`); per-key metrics are River's
own, fed the same pairs in the same order as the run's learner fed its metric.
"""

from __future__ import annotations

import copy
import json

import numpy as np

from riverflink.results.keyed import segment_sums
from riverflink.results.outputs import OutputReader, OutputSummary, _without_gc

__all__ = ["job_summary", "key_metrics", "readable_key", "run_summary", "summary_table"]


def summary_table(summary: OutputSummary, *, keys: int = 10) -> str:
    """The text summary: totals, the busiest keys, the best and worst keys, rejections."""
    c = summary.counts
    lines = [
        f"riverflink output {summary.directory}: {c['predictions']:,} predictions, "
        f"{c['outcomes']:,} delayed labels learned, {c['alerts']:,} alerts"
        + (f" ({c['feature_alerts']:,} on features), " if c["feature_alerts"] else ", ")
        + f"{c['rejected']:,} rejected; {_count(len(summary.keys), 'key')}",
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
    ends = summary.best_and_worst()
    if ends:
        best, worst = ends
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
    positions, values = _key_values(summary, metric)
    if isinstance(values, np.ndarray):
        values = values.tolist()
    return {slot: value for (slot, _), value in zip(summary.named(positions), values)}


def _key_values(summary: OutputSummary, metric) -> tuple:
    """(positions of the keys with labeled predictions, ``metric``'s value for each)."""
    with _without_gc():
        if _fresh_accuracy(metric):
            accuracies = _accuracies(summary)
            if accuracies is not None:
                return accuracies
        return _river_values(summary, metric)


def _river_values(summary: OutputSummary, metric) -> tuple:
    """River's own ``metric``, a copy per key fed the key's pairs in order of ``n``."""
    pairs = summary.keyed.pairs
    starts = pairs.starts
    positions = np.flatnonzero(np.diff(starts))
    # The keys whose pairs are not in order of n already (a delayed label's comes after
    # later predictions' pairs; files are read in the order of their names).
    later = np.flatnonzero(pairs.ns[1:] < pairs.ns[:-1]) + 1  # rows with a smaller n ...
    later = later[~np.isin(later, starts)]  # ... than the row before, of the same key
    unsorted = np.zeros(len(starts), bool)
    unsorted[np.searchsorted(starts, later, "right") - 1] = True
    true, pred = pairs.y_true.decoder(pairs.values), pairs.y_pred.decoder(pairs.values)
    ns, starts = memoryview(pairs.ns), memoryview(starts)
    values = []
    for position in positions.tolist():
        rows = range(starts[position], starts[position + 1])
        if unsorted[position]:
            rows = sorted(rows, key=ns.__getitem__)
        per_key = copy.deepcopy(metric)  # not clone(): utils.Rolling's clone drops the window
        for row in rows:
            y_pred = pred(row)
            if y_pred is not None:
                per_key.update(true(row), y_pred)
        values.append(per_key.get())
    return positions, values


def _fresh_accuracy(metric) -> bool:
    """Whether ``metric`` is a ``metrics.Accuracy`` that has seen nothing (the default)."""
    from river import metrics

    return type(metric) is metrics.Accuracy and not metric.cm.total_weight


#: Labels whose equality is plain ``==`` (no NaN, hashable): River's confusion matrix,
#: which keys its counts by label, counts a right answer exactly when ``y_pred == y_true``.
_PLAIN_LABELS = (str, bool, int)


def _accuracies(summary: OutputSummary) -> tuple | None:
    """Each key's ``metrics.Accuracy()`` over its labeled predictions, counted directly.

    What River's metric gives (right answers over answers, ``None`` predictions skipped,
    0.0 without answers; both counts are sums of ones, exact in floating point), without
    a metric object and a confusion-matrix update per label: the bulk of the end-of-run
    summary of a big run. None where a label is not a string, bool or integer.
    """
    pairs = summary.keyed.pairs
    table = pairs.values
    plain = table.flags(lambda value: value.__class__ in _PLAIN_LABELS)
    answered = ~table.flags(lambda value: value is None)[pairs.y_pred.codes]
    if (answered & ~(plain[pairs.y_true.codes] & plain[pairs.y_pred.codes])).any():
        return None
    answers = segment_sums(answered, pairs.starts)
    rights = segment_sums(answered & pairs.equal(), pairs.starts)
    positions = np.flatnonzero(np.diff(pairs.starts))
    answers, rights = answers[positions], rights[positions]
    with np.errstate(invalid="ignore"):
        return positions, np.where(answers > 0, rights / answers, 0.0)


def run_summary(
    directory, *, metric=None, metric_name: str = "", elapsed=None, reader=None, scored=True
) -> str:
    """The end-of-run lines of ``riverflink run``: totals, and the best and worst keys.

    ``metric`` is the run's River metric (``--metric``, named ``metric_name``), else the
    report's accuracy/MAE. ``reader``: an :class:`OutputReader` of ``directory`` that has
    read part of it already. ``scored``: False for a model that predicts no label (an
    anomaly detector's score, a clusterer's cluster): no metric then.
    """
    from riverflink.results.progress import format_elapsed

    summary = (reader or OutputReader(directory)).summary()
    c = summary.counts
    done = c["predictions"] + c["outcomes"] + c["rejected"]  # one per input line
    took = f"done in {format_elapsed(elapsed)}; " if elapsed else ""
    lines = [
        f"riverflink: {took}the output answers {done:,} input lines: "
        f"{c['predictions']:,} predictions, {c['outcomes']:,} delayed labels learned, "
        f"{c['rejected']:,} rejected; {c['alerts']:,} drift alerts"
        + (f" ({c['feature_alerts']:,} on features); " if c["feature_alerts"] else "; ")
        + (f"{c['pseudo']:,} pseudo-labels learned; " if c["pseudo"] else "")
        + f"{_count(len(summary.keys), 'key')}"
    ]
    if metric is not None:
        positions, values = _key_values(summary, metric)
        name = metric_name or type(metric).__name__
        better = metric.bigger_is_better
    else:
        positions = np.flatnonzero(summary.keyed.scores.counts())
        values = summary.metrics()[positions]
        name, better = summary.metric_name, summary.higher_is_better
    ends = summary.extremes(positions, values, better) if scored else None
    if ends:
        (best, best_value), (worst, worst_value), valued = ends
        lines.append(
            f"riverflink: {name} per key: best {_shown(summary.slot(best))} {best_value:.4f}, "
            f"worst {_shown(summary.slot(worst))} {worst_value:.4f} "
            f"(over {_count(valued, 'key')} with labels)"
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
    directory,
    *,
    model_spec: str | None,
    metric_spec: str | None,
    init_model: str | None = None,
    elapsed=None,
    reader=None,
) -> str:
    """:func:`run_summary` with the run's ``--metric``, built from its specs as the job
    builds it (this imports River); ``init_model``: the path of ``--init-model``."""
    from riverflink.operators.learner import OnlineLearner

    learner = OnlineLearner(
        model_spec=model_spec, drift_spec="none", metric_spec=metric_spec, init_model=init_model
    )
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
