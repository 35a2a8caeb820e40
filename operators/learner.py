"""The per-key learning step, free of Flink: ``(state, record) -> (state, outputs)``.

Semantics (per key, in input order): predict with the current model, then, for
a labeled record, feed the prediction error to the drift detector (alert, and
with ``on_drift="reset"`` swap in a fresh model of the spec), then learn.
Anomaly detectors and clusterers learn from every record; their score or
cluster is reported as ``y_pred``.

Delayed labels (supervised models): a record with features, an id and no label
is predicted and its features and prediction wait in the key's state, pending.
A later record with the same key and id, a label and no features scores that
prediction (drift detector, alert), teaches the model the stored features with
this label, and yields an ``Outcome``. Pending predictions older than the label
TTL are dropped by :meth:`OnlineLearner.expire`.

Pseudo-labels (``pseudo_label=P``, classifiers): a record with features and neither
a label nor an id, which nothing can label later, is learned with its own
prediction when the model gives that class a probability of at least ``P``. Its
prediction says so (``pseudo``); the metric and the drift detector never see it.

The step is all-or-nothing: if the model raises on a record, the caller gets a
``Rejected`` output and ``None`` as state, meaning "keep what you had". The
model object may have been half-updated, so callers must drop it and reload the
stored state (the Flink adapter always does).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

from riverflink.operators.records import Fields, Record, Rejected, with_imputed
from riverflink.operators.results import (
    DEFAULT_LABEL_TTL,
    DriftAlert,
    FeatureDriftAlert,
    Outcome,
    Prediction,
)
from riverflink.state.envelope import KeyState
from riverflink.state.initial import is_init_spec, read_exported, read_init_model
from riverflink.state.spec import (
    SpecError,
    builder,
    default_metric,
    imputed_features,
    is_binary_detector,
    model_kind,
    parse_detector,
    parse_metric,
    parse_model,
)

__all__ = ["DEFAULT_LABEL_TTL", "DriftAlert", "OnlineLearner", "Outcome", "Prediction"]


class OnlineLearner:
    """One spec, many keys: builds fresh key states and advances them record by record.

    >>> learner = OnlineLearner(model_spec="linear_model.LinearRegression()", drift_spec="none")
    >>> from riverflink.operators.records import parse_line
    >>> state, outs = learner.step(None, parse_line('{"key": "a", "x": 1.0, "y": 2.0}'))
    >>> outs[0]
    Prediction(key='a', id=None, y_pred=0.0, y_true=2.0, n=0, pseudo=False)
    >>> state.n, state.learned
    (1, 1)
    """

    def __init__(
        self,
        *,
        model_spec: str | None = None,
        drift_spec: str = "none",
        on_drift: str = "alert",
        label_ttl: float = DEFAULT_LABEL_TTL,
        metric_spec: str | None = None,
        pseudo_label: float | None = None,
        init_model: str | bytes | None = None,
        init_models: str | None = None,
        feature_drift_spec: str = "none",
    ):
        if on_drift not in ("alert", "reset"):
            raise ValueError(f"on_drift must be 'alert' or 'reset', not {on_drift!r}")
        if not label_ttl > 0:
            raise ValueError(f"label_ttl must be a positive number of seconds, not {label_ttl!r}")
        self.label_ttl = float(label_ttl)
        self.drift_spec = drift_spec
        self.on_drift = on_drift
        if init_model is not None:  # a copy of one River estimator: --init-model
            init = read_init_model(init_model)
            self.model_spec, self.prototype, self.kind = init.spec, init.estimator, init.kind
        elif model_spec is not None:
            self.model_spec, self.prototype = model_spec, parse_model(model_spec)
            self.kind = model_kind(self.prototype)
        else:
            raise ValueError("a model spec or an init model is needed")
        #: Keys that start from their exported model (--init-models): key id -> Exported.
        self.exported = read_exported(init_models) if init_models else {}
        for entry in list(self.exported.values())[:1]:  # the job's kind of model, or refused
            kind = model_kind(entry.load())
            if kind != self.kind:
                raise SpecError(
                    f"--init-models {init_models}: its models are {kind}s, but this job's "
                    f"model is a {self.kind}"
                )
        self.supervised = self.kind in ("classifier", "regressor")
        self.pseudo_label = _check_pseudo_label(pseudo_label, self.prototype, self.kind)
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
        #: Features a StatImputer of the model fills in: given to it as None where missing.
        self.imputed = imputed_features(self.prototype)
        self.feature_drift_spec = feature_drift_spec
        self._new_feature_detector = _feature_detectors(feature_drift_spec)
        if metric_spec is None:
            metric_spec = default_metric(self.kind)
        self.metric_spec = metric_spec or ""
        # Validated against the model; never updated itself: each key gets its own, built
        # from the spec (River's utils.Rolling.clone() would drop the window).
        self.metric_prototype = parse_metric(metric_spec, self.prototype) if metric_spec else None
        # A new key's model, detector and metric are built from the specs, as River's
        # clone() of the prototypes would, without its signature inspection: five times
        # faster, which is most of what a new key costs. (Unpickling a copy is faster
        # still, but objects that did not go through __init__ keep their attributes in a
        # plain dict, where Python reads them more slowly: learning ran 7-12% slower.)
        self._new_model = init.copy if init_model is not None else builder(model_spec, "model")
        self._new_detector = None if detector is None else builder(drift_spec, "drift detector")
        self._new_metric = builder(self.metric_spec, "metric") if metric_spec else lambda: None

    def fields_for(self, fields: Fields | None = None) -> Fields:
        """``fields`` as this model reads records: numbers as labels for a regressor, and
        null features kept for its StatImputer."""
        return replace(
            fields or Fields(), numeric_target=self.kind == "regressor", imputed=self.imputed
        )

    @property
    def starts_from_files(self) -> bool:
        """Whether new keys start from init models, whose keys a restore keeps whatever
        they started from."""
        return bool(self.exported) or is_init_spec(self.model_spec)

    def new_state(self, key_id: str | None = None) -> KeyState:
        """A new key's state: its exported model (``init_models``) if it has one, else a
        fresh model of the spec or a copy of the init model."""
        exported = self.exported.get(key_id) if self.exported else None
        return KeyState(
            model=self._new_model() if exported is None else exported.load(),
            detector=None if self._new_detector is None else self._new_detector(),
            model_spec=self.model_spec if exported is None else exported.spec,
            drift_spec=self.drift_spec,
            metric=self._new_metric(),
            metric_spec=self.metric_spec,
            n=0 if exported is None else exported.n,
        )

    def refuse(self, state: KeyState | None, record: Record) -> Rejected | None:
        """Why ``record`` cannot be applied to this key at all (nothing changes), or None."""
        if record.label_only:
            if not self.supervised:
                return Rejected(
                    record.raw,
                    f"a label without features, but the model ({self.kind}) learns without "
                    "labels: nothing to learn",
                )
            if record.id is None:
                return Rejected(
                    record.raw,
                    "a label without features needs an id to find the prediction it labels",
                )
            if state is None or json.dumps(record.id) not in state.pending:
                return Rejected(
                    record.raw,
                    f"no pending prediction for id {record.id!r} of key {record.key!r}: it was "
                    "never predicted, is already labeled, or expired after --label-ttl",
                )
        elif (
            self.supervised
            and record.y is None
            and record.id is not None
            and state is not None
            and json.dumps(record.id) in state.pending
        ):
            return Rejected(
                record.raw,
                f"id {record.id!r} of key {record.key!r} is already waiting for its label: "
                "features arrived twice for one id",
            )
        return None

    def step(
        self, state: KeyState | None, record: Record, now: float = 0.0
    ) -> tuple[KeyState | None, list[Any]]:
        """Advance one key by one record at processing time ``now`` (epoch seconds).

        ``(None, [Rejected])`` leaves the key untouched. Call :meth:`refuse` first.
        """
        if state is None:
            state = self.new_state(record.key_id)
        elif state.metric_spec != self.metric_spec:
            # Written before metrics existed, or with another --metric: measure from here on.
            state.metric, state.metric_spec = self._new_metric(), self.metric_spec
        try:
            if record.label_only:
                return state, self._resolve(state, record, now)
            return state, self._advance(state, record, now)
        except Exception as exc:
            reason = f"the model raised {type(exc).__name__}: {exc}"
            return None, [Rejected(record.raw, reason)]

    def expire(self, state: KeyState, now: float) -> int:
        """Drop the key's pending predictions older than the label TTL; how many went.

        Also moves ``state.expiry_timer`` to when the oldest remaining one is due (or None).
        """
        pending, ttl, dropped = state.pending, self.label_ttl, 0
        for id_text, (_, _, arrived) in list(pending.items()):
            if arrived + ttl > now:
                break  # oldest first: the rest are younger
            del pending[id_text]
            dropped += 1
        state.expired += dropped
        state.expiry_timer = self._timer_for(next(iter(pending.values()))) if pending else None
        return dropped

    def _timer_for(self, entry: tuple) -> int:
        """When to look at a pending prediction again: its deadline, rounded up to a second.

        Rounding lets one Flink timer serve every key of a bucket due in the same second.
        """
        return math.ceil(entry[2] + self.label_ttl) * 1000

    def _score(self, state: KeyState, record: Record, y_pred: Any, y: Any) -> list[Any]:
        """Update the key's metric; feed the error to the detector; on drift, alert (and
        maybe reset). A prediction of None (a model that knows no class yet) is not scored."""
        if y_pred is None:
            return []
        if state.metric is not None:
            state.metric.update(y, y_pred)
        if state.detector is None:
            return []
        error = float(y_pred != y) if self.kind == "classifier" else abs(y_pred - y)
        state.detector.update(error)
        if not state.detector.drift_detected:
            return []
        state.alerts += 1
        if self.on_drift == "reset":
            state.model = self._new_model()
        metric = None if state.metric is None else state.metric.get()
        watched = self._new_feature_detector is not None
        spec = self.drift_spec
        return [DriftAlert(record.key, record.id, state.n, spec, self.on_drift, metric, watched)]

    def _watch_features(self, state: KeyState, record: Record) -> list[Any]:
        """Feed each numeric feature's raw value to the key's detector for that feature
        (made at its first value); an alert for each that drifts."""
        alerts = []
        detectors = state.feature_detectors
        for name, value in record.x.items():
            cls = value.__class__
            if cls is not float and cls is not int:  # strings, and booleans (not numbers here)
                continue
            detector = detectors.get(name)
            if detector is None:
                detector = detectors[name] = self._new_feature_detector()
            detector.update(value)
            if detector.drift_detected:
                spec = self.feature_drift_spec
                alerts.append(FeatureDriftAlert(record.key, record.id, state.n, spec, name))
        return alerts

    def _advance(self, state: KeyState, record: Record, now: float) -> list[Any]:
        model, x, y = state.model, record.x, record.y
        if self.imputed:
            x = with_imputed(x, self.imputed)
        if self.kind == "anomaly":
            y_pred = model.score_one(x)
        else:
            y_pred = model.predict_one(x)
        outputs: list[Any] = [Prediction(record.key, record.id, y_pred, y, state.n)]
        if self._new_feature_detector is not None:
            outputs += self._watch_features(state, record)
        if self.supervised and y is not None:
            outputs += self._score(state, record, y_pred, y)
            state.model.learn_one(x, y)
            state.learned += 1
        elif self.supervised:
            if record.id is not None:  # its label may come later: keep what it will need
                entry = (x, y_pred, now)
                state.pending[json.dumps(record.id)] = entry
                if state.expiry_timer is None:
                    state.expiry_timer = self._timer_for(entry)
            elif (
                self.pseudo_label is not None
                and y_pred is not None
                and model.predict_proba_one(x).get(y_pred, 0.0) >= self.pseudo_label
            ):
                model.learn_one(x, y_pred)
                state.learned += 1
                outputs[0] = Prediction(record.key, record.id, y_pred, y, state.n, pseudo=True)
        else:
            model.learn_one(x)
            state.learned += 1
        state.n += 1
        return outputs

    def _resolve(self, state: KeyState, record: Record, now: float) -> list[Any]:
        """A late label: score and learn the prediction it labels, then let it go."""
        x, y_pred, arrived = state.pending.pop(json.dumps(record.id))
        outputs = self._score(state, record, y_pred, record.y)
        state.model.learn_one(x, record.y)
        state.learned += 1
        outputs.append(Outcome(record.key, record.id, y_pred, record.y, max(0.0, now - arrived)))
        return outputs


def _feature_detectors(spec: str):
    """What builds a new ``--feature-drift`` detector, or None for ``none``; a detector of
    0/1 errors is refused, feature values are real numbers."""
    try:
        detector = parse_detector(spec)
    except SpecError as exc:
        raise SpecError(f"--feature-drift: {exc}") from None
    if detector is None:
        return None
    if is_binary_detector(detector):
        raise SpecError(
            f"--feature-drift {spec!r} expects 0/1 errors, but it watches feature values; "
            "pick a detector of real values such as drift.ADWIN() or drift.PageHinkley()"
        )
    return builder(spec, "feature drift detector")


def _check_pseudo_label(pseudo_label, model, kind: str) -> float | None:
    """``--pseudo-label P``: a probability in (0, 1], for a classifier that gives them."""
    if pseudo_label is None:
        return None
    if (
        not isinstance(pseudo_label, (int, float))
        or isinstance(pseudo_label, bool)
        or not 0 < pseudo_label <= 1
    ):
        raise ValueError(f"--pseudo-label must be a probability > 0 and <= 1, not {pseudo_label!r}")
    if kind != "classifier" or not hasattr(model, "predict_proba_one"):
        what = {
            "classifier": "a classifier without predict_proba_one",
            "anomaly": "an anomaly detector",
        }.get(kind, f"a {kind}")
        raise ValueError(
            "--pseudo-label learns from a classifier's confident predictions, but the model "
            f"is {what}: leave --pseudo-label out"
        )
    return float(pseudo_label)
