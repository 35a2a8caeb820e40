"""What the learner emits: predictions, drift alerts and outcomes of delayed labels.

Frozen dataclasses, each with its JSON line. Free of River (and of Flink), so that
modules which only name these (the Flink functions, the job's client) import fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LABEL_TTL",
    "DriftAlert",
    "FeatureDriftAlert",
    "Outcome",
    "Prediction",
    "json_text",
    "jsonable",
]

#: Seconds a prediction waits for its label (``--label-ttl``): one day.
DEFAULT_LABEL_TTL = 86400.0


def jsonable(value: Any) -> Any:
    """River may answer with numpy scalars or non-finite floats; JSON wants neither."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalar
        return jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)


def json_text(value: Any) -> str:
    r"""``json.dumps(value)`` for a JSON value, without the encoder's set-up for the
    scalars riverflink writes on every line (plain ASCII strings, booleans, integers,
    finite floats); anything else goes to ``json.dumps``.

    >>> [json_text(v) for v in ("k1", True, None, 7, 0.25, "é", float("inf"))]
    ['"k1"', 'true', 'null', '7', '0.25', '"\\u00e9"', 'Infinity']
    """
    cls = value.__class__
    if cls is bool:
        return "true" if value else "false"
    if cls is str:
        if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
            return f'"{value}"'
    elif cls is int:
        return int.__repr__(value)
    elif value is None:
        return "null"
    elif cls is float and value - value == 0.0:  # finite
        return float.__repr__(value)
    return json.dumps(value)


@dataclass  # not frozen: one is made per record, and a frozen one takes 4x as long to make
class Prediction:
    key: Any
    id: Any
    y_pred: Any
    y_true: Any
    n: int
    pseudo: bool = False  # learned with its own prediction as label (--pseudo-label)

    def to_json(self, kind: bool = False) -> str:
        if not kind and not self.pseudo:  # the line of almost every record: put together
            return (
                f'{{"key": {json_text(self.key)}, "id": {json_text(self.id)}, '
                f'"y_pred": {json_text(jsonable(self.y_pred))}, '
                f'"y_true": {json_text(self.y_true)}, "n": {int.__repr__(self.n)}}}'
            )
        out = {"kind": "prediction"} if kind else {}
        out.update(
            key=self.key, id=self.id, y_pred=jsonable(self.y_pred), y_true=self.y_true, n=self.n
        )
        if self.pseudo:
            out["pseudo"] = True
        return json.dumps(out)


@dataclass(frozen=True)
class DriftAlert:
    key: Any
    id: Any
    n: int
    detector: str
    action: str
    metric: Any = None  # the key's --metric value, this record's prediction included
    features_watched: bool = False  # --feature-drift is on: the line says "feature": null

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "alert"} if kind else {}
        out.update(
            key=self.key,
            id=self.id,
            n=self.n,
            detector=self.detector,
            action=self.action,
            metric=jsonable(self.metric),
        )
        if self.features_watched:
            out["feature"] = None
        return json.dumps(out)


@dataclass(frozen=True)
class FeatureDriftAlert:
    """The values of one numeric feature of a key drifted (``--feature-drift``); ``n`` is
    that of the record's prediction."""

    key: Any
    id: Any
    n: int
    detector: str
    feature: str

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "alert"} if kind else {}
        out.update(
            key=self.key,
            id=self.id,
            n=self.n,
            detector=self.detector,
            action="alert",
            feature=self.feature,
        )
        return json.dumps(out)


@dataclass(frozen=True)
class Outcome:
    """A delayed label met its prediction: ``y_pred`` was made when the features arrived."""

    key: Any
    id: Any
    y_pred: Any
    y_true: Any
    delay_s: float

    def to_json(self, kind: bool = False) -> str:
        out = {"kind": "outcome"} if kind else {}
        out.update(
            key=self.key,
            id=self.id,
            y_pred=jsonable(self.y_pred),
            y_true=self.y_true,
            delay_s=round(self.delay_s, 3),
        )
        return json.dumps(out)
