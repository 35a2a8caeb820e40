"""One model over a whole history, keys ignored: what ``riverflink pretrain`` learns.

Transfer learning starts from a model that has already seen the past ("model A").
:class:`Pretraining` trains that model on every labeled record of a history, in
order, whatever its key, the way a plain River loop would, and keeps the counts a
user needs to trust it:

- each line is parsed exactly as the job parses it (:func:`parse_line`); a line the
  job would reject is skipped and counted by reason, and so is a record the model
  raises on;
- a record without a label, and a late label (key, id and label, no feature), teach
  nothing here and are counted apart;
- every other record is predicted, then learned: the prequential metric is the one
  the job keeps per key (Accuracy for a classifier, MAE for a regressor), over the
  predictions that are not None (a classifier that knows no class yet has none).

Only classifiers and regressors learn from labels, so other models are refused. The
model is plain River: pickled, it loads wherever River is installed.

Unlike the job, which rolls a key back, a record the model raises on while *learning*
(after predicting it) may leave a trace: what the model learned of it before raising,
such as a pipeline's scaler updated before its classifier refused the label. Such
records are counted apart (``half_learned``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from riverflink.operators.records import Fields, Rejected, parse_line, with_imputed
from riverflink.state.spec import (
    default_metric,
    imputed_features,
    model_kind,
    parse_metric,
    parse_model,
)

__all__ = ["Pretraining"]

_KIND_WORDS = {"anomaly": "an anomaly detector", "clusterer": "a clusterer"}


def _head(error: str) -> str:
    """A rejection reason without its particulars after the first ': '."""
    return error.split(": ", 1)[0]


class Pretraining:
    """One River model trained on the labeled records of many lines, in order.

    ``fields`` names the key, id, target and feature fields as for the job (whether the
    target must be a number follows from the model). ``group`` turns a rejection's
    reason into what :attr:`rejected` counts it under.

    >>> pre = Pretraining("linear_model.LinearRegression()")
    >>> pre.feed([
    ...     b'{"key": "a", "x": 1.0, "y": 2.0}',
    ...     b'{"key": "b", "x": 2.0, "y": 4.0}',
    ...     b'{"key": "b", "x": 3.0}',
    ...     b'{"key": "a", "id": 7, "y": 5.0}',
    ...     b'{"key": "a", "x": NaN, "y": 1.0}',
    ...     b'{"x": 1.0, "y": 2.0}',
    ... ])
    >>> pre.records, pre.learned, pre.unlabeled, pre.label_only
    (6, 2, 1, 1)
    >>> sorted(pre.rejected.items())
    [("key field 'key' is missing or null", 1), ('non-finite number NaN is not allowed', 1)]
    >>> pre.metric  # |0.0 - 2.0| and |0.12 - 4.0|: predicted before learned
    MAE: 2.94
    >>> pre.model.predict_one({"x": 2.0}) > 0
    True
    >>> Pretraining("anomaly.HalfSpaceTrees()")
    Traceback (most recent call last):
    ...
    ValueError: model spec 'anomaly.HalfSpaceTrees()' is an anomaly detector, which learns ...
    """

    def __init__(
        self,
        model_spec: str,
        fields: Fields | None = None,
        *,
        group: Callable[[str], str] = _head,
    ):
        self.model = parse_model(model_spec)  # a SpecError (a ValueError) for a bad spec
        self.kind = model_kind(self.model)
        if self.kind not in ("classifier", "regressor"):
            raise ValueError(
                f"model spec {model_spec.strip()!r} is {_KIND_WORDS[self.kind]}, which learns "
                "without labels; pretrain trains a classifier or a regressor"
            )
        self.imputed = imputed_features(self.model)
        self.fields = replace(
            fields or Fields(), numeric_target=self.kind == "regressor", imputed=self.imputed
        )
        self.metric = parse_metric(default_metric(self.kind), self.model)
        self.group = group
        self.records = 0  # lines that are not blank
        self.learned = 0
        self.scored = 0  # learned records whose prediction the metric counts (not None)
        self.unlabeled = 0
        self.label_only = 0
        self.half_learned = 0  # rejected: the model raised while learning them
        self.rejected: Counter = Counter()  # reason group -> lines

    def feed(self, lines: Iterable[bytes | str]) -> None:
        """Learn from ``lines`` (raw lines, bytes as read from a file), in order."""
        fields, group, rejected, imputed = self.fields, self.group, self.rejected, self.imputed
        predict, learn, update = self.model.predict_one, self.model.learn_one, self.metric.update
        records = learned = scored = unlabeled = label_only = 0
        try:
            for line in lines:
                record = parse_line(line, fields)
                if record is None:
                    continue
                records += 1
                if record.__class__ is Rejected:
                    rejected[group(record.error)] += 1
                    continue
                x, y = record.x, record.y
                if y is None:
                    unlabeled += 1
                    continue
                if not x:
                    label_only += 1
                    continue
                if imputed:
                    x = with_imputed(x, imputed)
                try:
                    y_pred = predict(x)
                except Exception as exc:
                    rejected[group(_raised(exc))] += 1
                    continue
                try:
                    learn(x, y)
                except Exception as exc:
                    # Not rolled back: that needs snapshots, and on Python 3.11 pickling a
                    # live River model leaves its objects' attributes in plain dicts,
                    # which made every later record about 11% slower to learn.
                    rejected[group(_raised(exc))] += 1
                    self.half_learned += 1
                    continue
                learned += 1
                if y_pred is not None:
                    update(y, y_pred)
                    scored += 1
        finally:
            self.records += records
            self.learned += learned
            self.scored += scored
            self.unlabeled += unlabeled
            self.label_only += label_only

    @property
    def skipped(self) -> int:
        """Valid records that taught nothing: unlabeled ones and late labels."""
        return self.unlabeled + self.label_only


def _raised(exc: Exception) -> str:
    return f"the model raised {type(exc).__name__}: {exc}"
