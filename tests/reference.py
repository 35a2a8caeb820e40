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
from typing import Any, Callable

__all__ = ["reference_predictions"]

KINDS = ("classifier", "regressor", "anomaly", "clusterer")


def _json_safe(value: Any) -> Any:
    """numpy scalars become Python numbers; NaN and infinities become null."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes, dict, list, tuple)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def reference_predictions(
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
) -> tuple:
    """Return ``(predictions, alerts)`` as lists of dicts, for records given in input order.

    Per key: predict (``score_one`` for anomaly detectors) with the model as it
    stands, then for a labeled record of a supervised model update the detector
    with the error (0/1 for classifiers, ``|y_pred - y|`` for regressors) unless
    the prediction is None, alert on drift (and with ``on_drift="reset"`` start
    over from ``make_model()``), and learn. Unsupervised models learn from
    every record; supervised ones skip unlabeled records. ``n`` counts the
    key's earlier records. ``detector_spec`` is what alerts report as
    ``detector``: pass the spec text given to riverflink; it defaults to the
    detector's class name.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if on_drift not in ("alert", "reset"):
        raise ValueError(f"on_drift must be 'alert' or 'reset', not {on_drift!r}")
    supervised = kind in ("classifier", "regressor")
    models: dict = {}
    detectors: dict = {}
    seen: dict = {}
    predictions: list = []
    alerts: list = []

    for record in records:
        k = record[key]
        # Keys are told apart by their JSON text, as Flink does: 7 and "7" are two keys.
        slot = json.dumps(k)
        if slot not in models:
            models[slot] = make_model()
            wants_detector = make_detector is not None and supervised
            detectors[slot] = make_detector() if wants_detector else None
            seen[slot] = 0
        model, detector, n = models[slot], detectors[slot], seen[slot]

        names = (
            features
            if features is not None
            else [name for name in record if name not in (key, id, target)]
        )
        x = {name: record[name] for name in names if record.get(name) is not None}
        y = record.get(target)
        record_id = record.get(id)

        y_pred = model.score_one(x) if kind == "anomaly" else model.predict_one(x)
        predictions.append(
            {"key": k, "id": record_id, "y_pred": _json_safe(y_pred), "y_true": y, "n": n}
        )

        if supervised:
            if y is not None:
                if detector is not None and y_pred is not None:
                    if kind == "classifier":
                        error = 0.0 if y_pred == y else 1.0
                    else:
                        error = abs(y_pred - y)
                    detector.update(error)
                    if detector.drift_detected:
                        name = detector_spec or type(detector).__name__
                        alerts.append(
                            {
                                "key": k,
                                "id": record_id,
                                "n": n,
                                "detector": name,
                                "action": on_drift,
                            }
                        )
                        if on_drift == "reset":
                            model = models[slot] = make_model()
                model.learn_one(x, y)
        else:
            model.learn_one(x)
        seen[slot] = n + 1

    return predictions, alerts
