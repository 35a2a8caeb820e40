"""An output put together per key, from the columns of its part files (see ``columns``).

Keys are listed in the order they are first met: in the predictions (part files in the
order of their paths, lines in order), then in the delayed labels, then in the alerts; a
key's *position* is its place in that list. Each key's labeled predictions keep the order
the summary has always taken them in: files in order, lines in order, then the delayed
labels in the order learned, each at the ``n`` of the prediction it labels. Its scores
follow the same order, so that sums of floats add up in the same order, bit for bit.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from riverflink.results.columns import (
    FLOAT,
    Codes,
    KeyTable,
    Tables,
    ValueTable,
    _is_number,
    narrow,
)

__all__ = ["Alerts", "Keyed", "Pairs", "Scores", "assemble", "segment_sums"]


@dataclass
class Pairs:
    """Every labeled prediction, ``(n, y_true, y_pred)``, grouped by key: key position
    ``p``'s are rows ``starts[p]`` to ``starts[p + 1]``."""

    starts: np.ndarray
    ns: np.ndarray
    y_true: Codes
    y_pred: Codes
    values: ValueTable

    def of(self, position: int) -> list:
        start, stop = int(self.starts[position]), int(self.starts[position + 1])
        true, pred = self.y_true.decoder(self.values), self.y_pred.decoder(self.values)
        ns = self.ns[start:stop].tolist()
        return [(n, true(row), pred(row)) for n, row in zip(ns, range(start, stop))]

    def equal(self) -> np.ndarray:
        """``y_pred == y_true`` per pair, as Python's ``==`` tells it (``1 == True``,
        ``NaN != NaN``)."""
        true, pred = self.y_true, self.y_pred
        true_float, pred_float = true.codes == FLOAT, pred.codes == FLOAT
        out = np.zeros(len(true), bool)
        both = true_float & pred_float
        if both.any():
            out[both] = true.floats[both] == pred.floats[both]
        coded = ~(true_float | pred_float)
        if coded.any():
            out[coded] = _equal_codes(self.values.values, true.codes[coded], pred.codes[coded])
        mixed = np.flatnonzero(true_float ^ pred_float)
        if len(mixed):
            t, p = true.decoder(self.values), pred.decoder(self.values)
            out[mixed] = [p(row) == t(row) for row in mixed.tolist()]
        return out

    def errors(self) -> tuple:
        """A regressor's scores, ``abs(y_pred - y_true)`` per pair (NaN: no score, as for
        a prediction that is no number), as floats; and {row: score} of the scores that
        are not floats (an integer predicted for an integer label), if any."""
        true, pred = self.y_true, self.y_pred
        # A label's value as a float, where numpy subtracts it as Python does: floats, and
        # integers that are floats exactly (Python turns them into floats to subtract).
        exact = [float(v) if v.__class__ is int and abs(v) <= 2**53 else math.nan
                 for v in self.values.values]  # fmt: skip
        out = np.array(exact)[true.codes]  # the labels, then the errors, in place
        if true.floats is not None:
            np.copyto(out, true.floats, where=true.codes == FLOAT)
        fast = (pred.codes == FLOAT) & ~np.isnan(out)
        if fast.any():
            with np.errstate(invalid="ignore"):  # inf - inf: NaN, no score, as in Python
                np.subtract(pred.floats, out, out=out, where=fast)
            np.abs(out, out=out)
        out[~fast] = math.nan
        others: dict = {}
        t, p = true.decoder(self.values), pred.decoder(self.values)
        for row in np.flatnonzero(~fast).tolist():
            y_pred, y_true = p(row), t(row)
            score = abs(y_pred - y_true) if _is_number(y_pred) else math.nan
            if score.__class__ is float:
                out[row] = score
            else:
                others[row] = score
        return out, others


def _equal_codes(values: list, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """``values[pred] == values[true]`` per row, each distinct pair of codes compared once."""
    size = len(values)
    pairs = true.astype(np.int64) * size + pred
    if size * size <= 1 << 20:  # the usual few labels: the pairs met, counted
        met = np.flatnonzero(np.bincount(pairs, minlength=size * size))
    else:
        met = np.unique(pairs)
    same = np.array([values[pair % size] == values[pair // size] for pair in met.tolist()], bool)
    return same[np.searchsorted(met, pairs)]


@dataclass
class Scores:
    """Each labeled prediction's prequential score, grouped by key as the pairs are, but
    without the pairs that have none: 1.0 or 0.0 (right or wrong) kept as booleans, a
    regressor's absolute error as floats (or, for a regressor that predicts integers,
    as the Python numbers they are)."""

    starts: np.ndarray
    ns: np.ndarray
    values: object  # a numpy array of bools or floats, or a list

    def of(self, position: int) -> list:
        start, stop = int(self.starts[position]), int(self.starts[position + 1])
        scores = self.values[start:stop]
        if isinstance(scores, np.ndarray):
            scores = scores.astype(float).tolist()
        return list(zip(self.ns[start:stop].tolist(), scores))

    def counts(self) -> np.ndarray:
        """How many labeled predictions each key has a score for."""
        return np.diff(self.starts)

    def means(self) -> np.ndarray:
        """Each key's mean score (accuracy or MAE), NaN for a key without: as
        ``sum(scores) / len(scores)`` gives it, sums in the same order."""
        counts = self.counts()
        if self._right_or_wrong():
            right = segment_sums(self.values, self.starts)  # of 1.0s: exact in any order
            with np.errstate(invalid="ignore"):
                return right / counts
        values = memoryview(self.values) if isinstance(self.values, np.ndarray) else self.values
        starts = memoryview(self.starts)
        means = np.full(len(counts), math.nan)
        for position in np.flatnonzero(counts).tolist():
            start, stop = starts[position], starts[position + 1]
            means[position] = sum(values[start:stop]) / (stop - start)
        return means

    def mean(self) -> float | None:
        """The mean of every score, or None without any."""
        if not len(self.values):
            return None
        if self._right_or_wrong():
            return float(np.count_nonzero(self.values)) / len(self.values)
        values = memoryview(self.values) if isinstance(self.values, np.ndarray) else self.values
        return sum(values) / len(values)

    def by_n(self) -> dict:
        """n -> (sum, count) of the scores at n across keys, summed key by key in order;
        ns in the order first met."""
        if not isinstance(self.values, np.ndarray):
            by_n: dict = {}
            for n, score in zip(self.ns.tolist(), self.values):
                total, count = by_n.get(n, (0.0, 0))
                by_n[n] = (total + score, count + 1)
            return by_n
        distinct, first, inverse = np.unique(self.ns, return_index=True, return_inverse=True)
        # bincount adds each bin's weights one after the other, in order, from 0.0
        totals = np.bincount(inverse, weights=self.values, minlength=len(distinct))
        counts = np.bincount(inverse, minlength=len(distinct))
        met = np.argsort(first)
        sums = zip(totals[met].tolist(), counts[met].tolist())
        return dict(zip(distinct[met].tolist(), sums))

    def _right_or_wrong(self) -> bool:
        return isinstance(self.values, np.ndarray) and self.values.dtype == bool


@dataclass
class Alerts:
    """The drift alerts, sorted by key position (alerts of a key in order): the ``n`` of
    each, and the feature that drifted (0: the model's error drifted)."""

    positions: np.ndarray
    ns: np.ndarray
    features: np.ndarray
    names: list  # feature number -> name

    def of(self, position: int) -> tuple:
        """The key's alerts of its error's drift, and {feature: alerts} of its features'."""
        start, stop = np.searchsorted(self.positions, [position, position + 1])
        return self._split(self.ns[start:stop], self.features[start:stop])

    def error_ns(self) -> list:
        """n of every alert of an error's drift, in order of n."""
        return np.sort(self.ns[self.features == 0]).tolist()

    def feature_ns(self) -> dict:
        """{feature: n of each of its alerts}, keys in order."""
        return self._split(self.ns, self.features)[1]

    def _split(self, ns, features) -> tuple:
        errors, by_feature = [], {}
        for n, feature in zip(ns.tolist(), features.tolist()):
            if feature:
                by_feature.setdefault(self.names[feature], []).append(n)
            else:
                errors.append(n)
        return errors, by_feature


@dataclass
class Keyed:
    """An output put together per key."""

    task: str  # "classification", "regression" or "unsupervised"
    counts: Counter  # lines per output kind (and "pseudo", "feature_alerts")
    rejected: Counter  # reason group -> lines
    keys: KeyTable
    numbers: np.ndarray  # key position -> the key's number
    positions: np.ndarray  # key number -> its position (-1: not in this output)
    records: np.ndarray  # per key position: predictions made (n of the next record)
    delayed: np.ndarray | None  # per key position: labels that came late (outcomes)
    pairs: Pairs
    alerts: Alerts
    _scores: Scores | None = None

    @property
    def scores(self) -> Scores:
        """The pairs' prequential scores, computed when first asked for (a run summary
        with the run's --metric needs none)."""
        if self._scores is None:
            self._scores = _scores(self.task, self.pairs)
        return self._scores


def assemble(tables: Tables, predictions: list, outcomes: list, alerts: list, rejected: list):
    """The parts read (each kind's files in the order of their paths), put together."""
    counts: Counter = Counter()
    positions, numbers = _positions(len(tables.keys), predictions + outcomes + alerts)
    size = len(numbers)

    records = np.zeros(size, np.int64)
    numbers_only, scored = True, False
    labeled, ns, y_true, y_pred = [], [], [], []
    for part in predictions:
        counts["predictions"] += part.lines
        if part.pseudo:
            counts["pseudo"] += part.pseudo
        np.maximum.at(records, positions[part.numbers], part.ns.astype(np.int64) + 1)
        labeled.append(positions[part.numbers[part.labeled]])
        ns.append(part.ns[part.labeled])
        y_true.append(part.y_true)
        y_pred.append(part.y_pred)
        numbers_only = numbers_only and part.numbers_only
        scored = scored or part.scored

    # Delayed labels: each learned one scores the prediction it labels, at its n.
    delayed = None
    if sum(len(part.numbers) for part in outcomes):
        told = np.concatenate([part.numbers for part in outcomes])
        counts["outcomes"] += len(told)
        delayed = narrow(np.bincount(positions[told], minlength=size))
        late_ns = _late_ns(predictions, outcomes, told)
        late = late_ns >= 0
        labeled.append(positions[told[late]])
        ns.append(narrow(late_ns[late]))
        y_true.append(Codes.joined([part.y_true for part in outcomes]).take(late))
        y_pred.append(Codes.joined([part.y_pred for part in outcomes]).take(late))
        numbers_only = numbers_only and tables.values.flags(_is_number)[y_true[-1].codes].all()
        is_float = tables.values.flags(lambda value: value.__class__ is float)
        scored = scored or is_float[y_pred[-1].codes].any()

    # Classifiers predict labels (booleans, strings, integers: 0 and 1 are labels too),
    # regressors numbers in floating point; a float against labels that are not numbers
    # is no prediction of them (an anomaly score), and has no accuracy.
    if not sum(len(rows) for rows in labeled):
        task = "unsupervised"
    elif scored:
        task = "regression" if numbers_only else "unsupervised"
    else:
        task = "classification"

    labeled = np.concatenate(labeled) if labeled else np.empty(0, np.int32)
    order = np.argsort(labeled, kind="stable")  # by key, in the order met
    labeled = labeled[order]
    pairs = Pairs(
        _starts(labeled, size),
        np.concatenate(ns)[order] if ns else np.empty(0, np.uint8),
        Codes.joined(y_true).take(order),
        Codes.joined(y_pred).take(order),
        tables.values,
    )
    del order, ns, y_true, y_pred
    return Keyed(
        task,
        counts,
        _rejected(rejected, counts),
        tables.keys,
        numbers,
        positions,
        narrow(records),
        delayed,
        pairs,
        _alerts(alerts, positions, tables.feature_names, counts),
    )


def _positions(known: int, parts: list) -> tuple:
    """(key number -> position or -1, position -> key number): positions in the order
    the ``parts``' rows meet the keys."""
    positions = np.full(known, -1, np.int32)
    size = 0
    for part in parts:
        if len(part.numbers):  # keys not met before get the next positions, in order met
            distinct, first = np.unique(part.numbers, return_index=True)
            new = distinct[np.argsort(first)]
            new = new[positions[new] < 0]
            positions[new] = np.arange(size, size + len(new))
            size += len(new)
    numbers = np.empty(size, np.uint32)
    met = np.flatnonzero(positions >= 0)
    numbers[positions[met]] = met
    return positions, numbers


def _late_ns(predictions: list, outcomes: list, told: np.ndarray) -> np.ndarray:
    """For each delayed label learned (outcome lines, files in order), the n of the
    prediction it labels: the last prediction line without a label (files in order) of
    its key and id; -1 for none."""
    waiting = [(p.numbers[p.waiting], p.waiting_ids, p.ns[p.waiting]) for p in predictions]
    if not sum(len(w[0]) for w in waiting):
        return np.full(len(told), -1, np.int64)
    numbers, ids, ns = (np.concatenate(column) for column in zip(*waiting))
    order = np.lexsort((ids, numbers))  # stable: of equal ones, the last met is last
    waited = _keyed_ids(numbers[order], ids[order])
    ns = ns[order].astype(np.int64)
    last = np.append(waited[1:] != waited[:-1], True)
    waited, ns = waited[last], ns[last]
    wanted = _keyed_ids(told, np.concatenate([p.ids for p in outcomes]))
    at = np.searchsorted(waited, wanted).clip(max=len(waited) - 1)
    return np.where(waited[at] == wanted, ns[at], -1)


def _keyed_ids(numbers: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(key number, id) pairs, ordered by key then id."""
    out = np.empty(len(numbers), [("number", np.int64), ("id", np.int64)])
    out["number"], out["id"] = numbers, ids
    return out


def segment_sums(flags: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """How many of ``flags`` are true in each key's rows."""
    running = np.zeros(len(flags) + 1, np.int64)
    np.cumsum(flags, out=running[1:])
    return running[starts[1:]] - running[starts[:-1]]


def _starts(positions: np.ndarray, size: int) -> np.ndarray:
    """Where each key's rows start among ``positions`` (sorted), and where the last ends."""
    starts = np.zeros(size + 1, np.int64)
    np.cumsum(np.bincount(positions, minlength=size), out=starts[1:])
    return narrow(starts)


def _scores(task: str, pairs: Pairs) -> Scores:
    """The pairs' prequential scores: right or wrong, or a regressor's absolute error."""
    if task != "regression":
        return Scores(pairs.starts, pairs.ns, pairs.equal())
    errors, others = pairs.errors()
    kept = ~np.isnan(errors)
    for row, score in others.items():
        kept[row] = not math.isnan(score)
    values = errors[kept]
    if others:  # not all floats: Python's numbers, to add up as Python adds them
        merged = errors.tolist()
        for row, score in others.items():
            merged[row] = score
        values = [score for score, keep in zip(merged, kept.tolist()) if keep]
    if kept.all():
        return Scores(pairs.starts, pairs.ns, values)
    starts = np.zeros(len(pairs.starts), np.int64)
    np.cumsum(segment_sums(kept, pairs.starts), out=starts[1:])
    return Scores(narrow(starts), pairs.ns[kept], values)


def _alerts(parts: list, positions: np.ndarray, names: list, counts: Counter) -> Alerts:
    keys = np.concatenate([positions[p.numbers] for p in parts] or [np.empty(0, np.int32)])
    ns = np.concatenate([p.ns for p in parts] or [np.empty(0, np.uint8)])
    features = np.concatenate([p.features for p in parts] or [np.empty(0, np.uint8)])
    if len(keys):
        counts["alerts"] += len(keys)
    if np.count_nonzero(features):
        counts["feature_alerts"] += int(np.count_nonzero(features))
    order = np.argsort(keys, kind="stable")
    return Alerts(keys[order], ns[order], features[order], names)


def _rejected(parts: list, counts: Counter) -> Counter:
    rejected: Counter = Counter()
    for part in parts:
        for reason, lines in part.items():
            rejected[reason] += lines
            counts["rejected"] += lines
    return rejected
