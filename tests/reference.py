"""Plain River, one model per key: the output riverflink should produce, computed without it.

Written apart from ``operators/learner.py`` on purpose (it imports nothing from
``operators`` or ``state``), so that a test comparing the two compares riverflink
with River itself, not with a copy of riverflink. Models and detectors come from
callables the test writes in Python, not from spec strings.

Input records are assumed valid (already-decoded JSON objects); rejection is
someone else's business. The output dicts have the same fields, in the same
order, as riverflink's prediction and alert lines, so ``json.loads`` of those
lines compares equal to them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["reference_predictions", "reference_run"]

KINDS = ("classifier", "regressor", "anomaly", "clusterer")


def _json_safe(value: Any) -> Any:
    """numpy scalars become Python numbers; NaN and infinities become null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes, dict, list, tuple)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reference_predictions(records: list, make_model: Callable[[], Any], **options) -> tuple:
    """Return ``(predictions, alerts)``: see :func:`reference_run` for the options."""
    out = reference_run(records, make_model, **options)
    return out["predictions"], out["alerts"]


def reference_run(
    records: list,
    make_model: Callable[[], Any],
    *,
    make_detector: Callable[[], Any] | None = None,
    on_drift: str = "alert",
    key: str = "key",
    id: str = "id",
    target: str = "y",
    kind: str = "classifier",
    features: tuple | None = None,
    detector_spec: str | None = None,
    make_metric: Callable[[], Any] | None = None,
    pseudo_label: float | None = None,
    make_feature_detector: Callable[[], Any] | None = None,
    feature_detector_spec: str | None = None,
) -> dict:
    """Return ``{"predictions", "alerts", "outcomes", "rejected"}`` for records in input order.

    Per key: predict (``score_one`` for anomaly detectors) with the model as it
    stands, then for a labeled record of a supervised model update the detector
    with the error (0/1 for classifiers, ``|y_pred - y|`` for regressors) unless
    the prediction is None, alert on drift (and with ``on_drift="reset"`` start
    over from ``make_model()``), and learn. Unsupervised models learn from
    every record. ``n`` counts the key's earlier predictions. ``detector_spec``
    is what alerts report as ``detector``: pass the spec text given to
    riverflink; it defaults to the detector's class name.

    Each key of a supervised model also keeps ``make_metric()`` (default: River's
    ``metrics.Accuracy()`` for classifiers, ``metrics.MAE()`` for regressors),
    updated with every labeled prediction that is not None before the detector;
    each alert reports its value as ``metric``.

    Delayed labels, for supervised models: a record with features, an id and no
    label is predicted and remembered under its id. A record with a label and no
    features labels that id: the remembered prediction is scored as above, the
    model learns the remembered features with this label, and an outcome
    ``{"key", "id", "y_pred", "y_true"}`` is produced (riverflink adds
    ``delay_s``, a processing time). A label for an id not waiting, a label for
    an unsupervised model, and features for an id already waiting are rejected:
    those records come back in ``rejected``, untouched. Nothing expires here.

    ``pseudo_label=P`` (classifiers): a record with features, no label and no id is
    learned with its prediction as label when ``predict_proba_one`` gives that class at
    least ``P``; its prediction gets ``"pseudo": True``. No metric, no detector.

    ``make_feature_detector`` (``--feature-drift``): each key keeps one detector per
    feature with a number value (int or float, not bool), made at its first value and fed
    the raw value of every record predicted, labeled or not, in record order. On drift,
    right after the record's prediction: ``{"key", "id", "n", "detector", "action":
    "alert", "feature"}`` (``detector``: ``feature_detector_spec``). The error-drift
    alerts then say ``"feature": None``. Resets never touch these detectors.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if on_drift not in ("alert", "reset"):
        raise ValueError(f"on_drift must be 'alert' or 'reset', not {on_drift!r}")
    supervised = kind in ("classifier", "regressor")
    if make_metric is None and supervised:
        from river import metrics

        make_metric = metrics.Accuracy if kind == "classifier" else metrics.MAE
    scores: dict = {}  # key slot -> metric
    models: dict = {}
    detectors: dict = {}
    seen: dict = {}
    watching: dict = {}  # (key slot, feature) -> feature drift detector
    waiting: dict = {}  # (key slot, id as JSON) -> (x, y_pred)
    predictions: list = []
    alerts: list = []
    outcomes: list = []
    rejected: list = []

    def score(slot, k, record_id, y_pred, y):
        if y_pred is None:
            return
        scores[slot].update(y, y_pred)
        detector = detectors[slot]
        if detector is None:
            return
        error = (0.0 if y_pred == y else 1.0) if kind == "classifier" else abs(y_pred - y)
        detector.update(error)
        if detector.drift_detected:
            name = detector_spec or type(detector).__name__
            alerts.append(
                {
                    "key": k,
                    "id": record_id,
                    "n": seen[slot],
                    "detector": name,
                    "action": on_drift,
                    "metric": _json_safe(scores[slot].get()),
                }
            )
            if make_feature_detector is not None:
                alerts[-1]["feature"] = None
            if on_drift == "reset":
                models[slot] = make_model()

    for record in records:
        k = record[key]
        # Keys are told apart by their JSON text, as Flink does: 7 and "7" are two keys.
        slot = json.dumps(k)
        names = (
            features
            if features is not None
            else [name for name in record if name not in (key, id, target)]
        )
        x = {name: record[name] for name in names if record.get(name) is not None}
        y = record.get(target)
        record_id = record.get(id)
        ticket = (slot, json.dumps(record_id))

        if y is not None and not x:  # a late label
            if not supervised or record_id is None or ticket not in waiting:
                rejected.append(record)
                continue
            x_then, y_then = waiting.pop(ticket)
            score(slot, k, record_id, y_then, y)
            models[slot].learn_one(x_then, y)
            outcomes.append({"key": k, "id": record_id, "y_pred": _json_safe(y_then), "y_true": y})
            continue
        if supervised and y is None and record_id is not None and ticket in waiting:
            rejected.append(record)  # features twice for one id
            continue

        if slot not in models:
            models[slot] = make_model()
            wants_detector = make_detector is not None and supervised
            detectors[slot] = make_detector() if wants_detector else None
            scores[slot] = make_metric() if supervised else None
            seen[slot] = 0
        model, n = models[slot], seen[slot]

        y_pred = model.score_one(x) if kind == "anomaly" else model.predict_one(x)
        predictions.append(
            {"key": k, "id": record_id, "y_pred": _json_safe(y_pred), "y_true": y, "n": n}
        )
        if make_feature_detector is not None:
            for name, value in x.items():
                if type(value) not in (int, float):
                    continue
                watcher = watching.get((slot, name))
                if watcher is None:
                    watcher = watching[(slot, name)] = make_feature_detector()
                watcher.update(value)
                if watcher.drift_detected:
                    alerts.append(
                        {
                            "key": k,
                            "id": record_id,
                            "n": n,
                            "detector": feature_detector_spec or type(watcher).__name__,
                            "action": "alert",
                            "feature": name,
                        }
                    )

        if supervised:
            if y is not None:
                score(slot, k, record_id, y_pred, y)
                models[slot].learn_one(x, y)
            elif record_id is not None:
                waiting[ticket] = (x, y_pred)
            elif (
                pseudo_label is not None
                and y_pred is not None
                and models[slot].predict_proba_one(x).get(y_pred, 0.0) >= pseudo_label
            ):
                models[slot].learn_one(x, y_pred)
                predictions[-1]["pseudo"] = True
        else:
            model.learn_one(x)
        seen[slot] = n + 1

    return {
        "predictions": predictions,
        "alerts": alerts,
        "outcomes": outcomes,
        "rejected": rejected,
    }
