"""The per-key learning step, free of Flink: ``(state, record) -> (state, outputs)``.

Semantics (per key, in input order): predict with the current model, then, for
a labeled record, feed the prediction error to the drift detector (alert, and
with ``on_drift="reset"`` swap in a fresh clone of the spec), then learn.
Anomaly detectors and clusterers learn from every record; their score or
cluster is reported as ``y_pred``.

The step is all-or-nothing: if the model raises on a record, the caller gets a
``Rejected`` output and ``None`` as state, meaning "keep what you had". The
model object may have been half-updated, so callers must drop it and reload the
stored state (the Flink adapter always does).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from operators.records import Record, Rejected
from state.envelope import KeyState
from state.spec import is_binary_detector, model_kind, parse_detector, parse_model

__all__ = ["DriftAlert", "OnlineLearner", "Prediction"]


def _jsonable(value: Any) -> Any:
    """River may answer with numpy scalars or non-finite floats; JSON wants neither."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return _jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


@dataclass(frozen=True)
class Prediction:
    key: Any
    id: Any
    y_pred: Any
    y_true: Any
    n: int

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "prediction"} if kind else {}
        out.update(
            key=self.key, id=self.id, y_pred=_jsonable(self.y_pred), y_true=self.y_true, n=self.n
        )
        return json.dumps(out)


@dataclass(frozen=True)
class DriftAlert:
    key: Any
    id: Any
    n: int
    detector: str
    action: str

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "alert"} if kind else {}
        out.update(key=self.key, id=self.id, n=self.n, detector=self.detector, action=self.action)
        return json.dumps(out)


class OnlineLearner:
    """One spec, many keys: builds fresh key states and advances them record by record.

    >>> learner = OnlineLearner(model_spec="linear_model.LinearRegression()", drift_spec="none")
    >>> from operators.records import parse_line
    >>> state, outs = learner.step(None, parse_line('{"key": "a", "x": 1.0, "y": 2.0}'))
    >>> outs[0]
    Prediction(key='a', id=None, y_pred=0.0, y_true=2.0, n=0)
    >>> state.n, state.learned
    (1, 1)
    """

    def __init__(self, *, model_spec: str, drift_spec: str = "none", on_drift: str = "alert"):
        if on_drift not in ("alert", "reset"):
            raise ValueError(f"on_drift must be 'alert' or 'reset', not {on_drift!r}")
        self.model_spec = model_spec
        self.drift_spec = drift_spec
        self.on_drift = on_drift
        self.prototype = parse_model(model_spec)
        self.kind = model_kind(self.prototype)
        self.supervised = self.kind in ("classifier", "regressor")
        detector = parse_detector(drift_spec)
        if detector is not None and not self.supervised:
            detector = None  # drift is measured on prediction errors, which need a label
        if detector is not None and self.kind == "regressor" and is_binary_detector(detector):
            raise ValueError(
                f"drift detector {drift_spec!r} expects 0/1 errors, but a regressor's error is "
                "|y_pred - y|; pick a non-binary detector such as drift.ADWIN() or "
                "drift.PageHinkley()"
            )
        self.detector_prototype = detector

    def new_state(self) -> KeyState:
        detector = None if self.detector_prototype is None else self.detector_prototype.clone()
        return KeyState(
            model=self.prototype.clone(),
            detector=detector,
            model_spec=self.model_spec,
            drift_spec=self.drift_spec,
        )

    def step(self, state: KeyState | None, record: Record) -> tuple[KeyState | None, list[Any]]:
        """Advance one key by one record; ``(None, [Rejected])`` leaves the key untouched."""
        if state is None:
            state = self.new_state()
        try:
            return state, self._advance(state, record)
        except Exception as exc:
            reason = f"the model raised {type(exc).__name__}: {exc}"
            return None, [Rejected(record.raw, reason)]

    def _advance(self, state: KeyState, record: Record) -> list[Any]:
        model, x, y = state.model, record.x, record.y
        if self.kind == "anomaly":
            y_pred = model.score_one(x)
        else:
            y_pred = model.predict_one(x)
        outputs: list[Any] = [Prediction(record.key, record.id, y_pred, y, state.n)]
        if self.supervised and y is not None:
            if state.detector is not None and y_pred is not None:
                error = float(y_pred != y) if self.kind == "classifier" else abs(y_pred - y)
                state.detector.update(error)
                if state.detector.drift_detected:
                    outputs.append(
                        DriftAlert(record.key, record.id, state.n, self.drift_spec, self.on_drift)
                    )
                    state.alerts += 1
                    if self.on_drift == "reset":
                        model = state.model = self.prototype.clone()
            model.learn_one(x, y)
            state.learned += 1
        elif not self.supervised:
            model.learn_one(x)
            state.learned += 1
        state.n += 1
        return outputs
