"""The versioned envelope around one key's learning state.

Flink keeps each key's state as opaque bytes. Those bytes outlive the process
that wrote them: they sit in checkpoints and savepoints that are restored days
later, perhaps by another riverflink or River release. So the bytes start with
a small, readable header (format version, River version, model and drift specs)
before the pickled payload. A reader checks the header first and fails with a
message naming both versions instead of unpickling something it cannot trust,
and it never silently replaces a model with a fresh one.

Security: the payload is a pickle. Restore checkpoints and savepoints only from
places you trust, as you would any pickle.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import river

__all__ = [
    "FORMAT_VERSION",
    "KeyState",
    "Sealed",
    "StateFormatError",
    "current",
    "dumps",
    "loads",
    "opened",
    "read_header",
    "rollback",
    "sealed",
]

#: Bumped whenever the layout of the header or of the pickled payload changes.
#: 1: model, detector, counters, last_seen. 2: adds the pending predictions of delayed labels
#: and the key's metric. 3: adds the detectors of --feature-drift.
FORMAT_VERSION = 3
#: Formats this release reads: older ones are upgraded on load.
READABLE_FORMATS = (1, 2, 3)
MAGIC = b"RFLK"


class StateFormatError(RuntimeError):
    """Stored state that this riverflink cannot read; the models are kept, the job stops."""


@dataclass
class KeyState:
    """Everything riverflink remembers about one key.

    ``n`` counts the records of the key that were predicted, ``learned`` those
    the model learned from and ``alerts`` the drifts signalled; ``last_seen`` is
    when the key's state was last written.

    ``pending`` holds the predictions still waiting for their label, oldest first:
    ``{id as JSON: (features, y_pred, arrival time)}``. ``expired`` counts those
    dropped after ``--label-ttl``, and ``expiry_timer`` is the processing time
    (epoch milliseconds) of the Flink timer that will next look at them.
    ``metric`` is the key's ``--metric``, updated with every labeled prediction.
    ``feature_detectors`` maps each numeric feature to its ``--feature-drift`` detector.
    """

    model: Any
    detector: Any
    model_spec: str
    drift_spec: str
    n: int = 0
    learned: int = 0
    alerts: int = 0
    last_seen: float = 0.0  # processing time (epoch seconds) of the last update, for --state-ttl
    pending: dict = field(default_factory=dict)
    expired: int = 0
    expiry_timer: int | None = None
    metric: Any = None  # the key's prequential --metric (classifiers and regressors)
    metric_spec: str = ""
    feature_detectors: dict = field(default_factory=dict)  # feature name -> drift detector

    def __reduce__(self):
        """Pickle as the versioned envelope, whoever pickles (Flink's state coder included).

        Flink stores this object in keyed state and pickles it only when it flushes the
        state, once per key per bundle, not once per record. The envelope written then is
        remembered in ``flushed``: the last version of this key that Flink holds, from
        which :func:`rollback` rebuilds the key when a record must be undone.
        """
        blob = dumps(self)
        self.__dict__["flushed"] = blob
        self.__dict__["since_flush"] = []
        return (_restore, (blob,))

    def remember(self, record) -> int:
        """Note a change applied since the last flush (replayed by :func:`rollback`).

        Returns how many changes are noted now.
        """
        log = self.__dict__.get("since_flush")
        if log is None:
            log = self.__dict__["since_flush"] = []
        log.append(record)
        return len(log)

    def mark_flushed(self) -> None:
        """Make the key as it is now the base of :func:`rollback`, as a flush to Flink does.

        For keys that Flink does not flush (see ``LearnPerKey``'s ``write_through``):
        it bounds the changes kept for a rollback.
        """
        self.__reduce__()


class Sealed:
    """A key's envelope made ahead (:func:`dumps`), put in Flink state as it is.

    It pickles to exactly the bytes Flink's state coder makes of the ``KeyState`` it came
    from, and reads back as that ``KeyState``; only PyFlink's own caches can hand this
    wrapper back before the bytes reach Flink (see :func:`opened`).
    """

    __slots__ = ("blob",)

    def __init__(self, blob: bytes):
        self.blob = blob

    def __reduce__(self):
        return (_restore, (self.blob,))


def opened(stored):
    """A value read from Flink state: the ``KeyState`` (or None), never a :class:`Sealed`."""
    return _restore(stored.blob) if type(stored) is Sealed else stored


def current(state: KeyState) -> bytes | None:
    """The envelope last made of ``state`` if nothing changed it since (see ``remember``),
    else None."""
    flushed = state.__dict__.get("flushed")
    if flushed is None or state.__dict__.get("since_flush"):
        return None
    return flushed


def sealed(state: KeyState) -> Sealed:
    """``state`` as it is now, its envelope made once (reused if nothing changed it)."""
    blob = current(state)
    if blob is None:
        state.__reduce__()  # makes the envelope and starts the key's notes anew, as a flush
        blob = state.__dict__["flushed"]
    return Sealed(blob)


def dumps(state: KeyState) -> bytes:
    """Serialize ``state`` as header line + pickle.

    >>> from river import linear_model
    >>> blob = dumps(KeyState(linear_model.LinearRegression(), None, "lr", "none", n=3))
    >>> blob[:4], read_header(blob)["format"]
    (b'RFLK', 3)
    >>> loads(blob).n
    3
    """
    payload = (
        state.model,
        state.detector,
        state.n,
        state.learned,
        state.alerts,
        state.last_seen,
        state.pending,
        state.expired,
        state.expiry_timer,
        state.metric,
        state.feature_detectors,
    )
    head = _header(state.model_spec, state.drift_spec, state.metric_spec)
    return head + pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)


@lru_cache(maxsize=64)
def _header(model_spec: str, drift_spec: str, metric_spec: str) -> bytes:
    """Magic, header line and newline: the same bytes for every key of a job, built once."""
    header = {
        "format": FORMAT_VERSION,
        "river": river.__version__,
        "model": model_spec,
        "drift": drift_spec,
        "metric": metric_spec,
    }
    return MAGIC + json.dumps(header, separators=(",", ":")).encode() + b"\n"


def _restore(blob: bytes) -> KeyState:
    state = loads(blob)
    state.__dict__["flushed"] = bytes(blob)
    state.__dict__["since_flush"] = []
    return state


def rollback(state: KeyState, replay) -> KeyState | None:
    """This key as it was before the current record: the last flushed envelope (or nothing,
    for a key not flushed yet) with the records since then applied again by ``replay``.

    River models are deterministic given their pickled state (random generators included),
    so replaying gives exactly the state the live object had before the current record.
    """
    flushed = state.__dict__.get("flushed")
    base = _restore(flushed) if flushed is not None else None
    for record in state.__dict__.get("since_flush", ()):
        base = replay(base, record)
        base.remember(record)
    return base


def read_header(blob: bytes) -> dict:
    """The header of a stored state, without touching the pickled payload."""
    return dict(_parsed_header(bytes(blob))[0])


def _parsed_header(blob: bytes) -> tuple:
    """(header, where the pickled payload starts) of an envelope."""
    end = blob.find(b"\n")
    if not blob.startswith(MAGIC) or end < 0:
        raise StateFormatError(
            "stored key state is not a riverflink state envelope (no header); it was written "
            f"by another program or an unknown format. This riverflink writes format "
            f"{FORMAT_VERSION} with River {river.__version__}."
        )
    return _header_fields(blob[len(MAGIC) : end]), end + 1


@lru_cache(maxsize=64)
def _header_fields(head: bytes) -> dict:
    """A header line's fields, parsed once per distinct line (every key of a job has the
    same): not to be changed by the caller."""
    try:
        return json.loads(head)
    except ValueError as exc:
        raise StateFormatError(
            f"stored key state has an unreadable header: {head[:200]!r}"
        ) from exc


def loads(blob: bytes) -> KeyState:
    """Read a state written by :func:`dumps`, refusing formats this release cannot read."""
    blob = bytes(blob)
    header, start = _parsed_header(blob)
    version = header.get("format")
    if version not in READABLE_FORMATS:
        raise StateFormatError(
            f"stored key state has format version {version!r} (written with River "
            f"{header.get('river')}), but this riverflink reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))} (River {river.__version__}). Resume it "
            "with the riverflink release that wrote it."
        )
    try:
        payload = pickle.loads(memoryview(blob)[start:])
        if version == 1:
            payload = (*payload, {}, 0, None, None)  # no delayed labels or metric yet
        if version <= 2:
            payload = (*payload, {})  # no feature detectors yet
        model, detector, n, learned, alerts, last_seen, pending, expired, timer = payload[:9]
        metric, features = payload[9:]
    except Exception as exc:
        raise StateFormatError(
            f"cannot unpickle a key's model written with River {header.get('river')} "
            f"(this is River {river.__version__}, format {FORMAT_VERSION}): {exc}. Install the "
            "River version that wrote the checkpoint to resume it."
        ) from exc
    return KeyState(
        model=model,
        detector=detector,
        model_spec=header.get("model", ""),
        drift_spec=header.get("drift", ""),
        n=n,
        learned=learned,
        alerts=alerts,
        last_seen=last_seen,
        pending=pending,
        expired=expired,
        expiry_timer=timer,
        metric=metric,
        metric_spec=header.get("metric", "") if metric is not None else "",
        feature_detectors=features,
    )
