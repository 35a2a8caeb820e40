"""What a new key starts from besides a spec: an init model, or a key's exported model.

``--init-model FILE.pkl`` gives every new key an independent copy of one River
estimator (model A of transfer learning, e.g. from ``riverflink pretrain``).
``--init-models DIR`` (a directory ``riverflink export`` wrote) gives each key listed
there its own exported model. Both are pickles: loading one runs code chosen by
whoever wrote it, so they must come from a place you trust, as checkpoints do.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

from river import base

from riverflink.state.relaid import relaid
from riverflink.state.spec import SpecError, model_kind

__all__ = [
    "MODELS_FILE",
    "Exported",
    "InitModel",
    "is_init_spec",
    "read_exported",
    "read_init_model",
]

#: The index of an export directory: one JSON line per key.
MODELS_FILE = "models.jsonl"
#: How an envelope names a model that started from an init model (with its digest).
INIT_PREFIX = "init-model sha256:"


@dataclass(frozen=True)
class InitModel:
    """An init model, checked: its pickle, the estimator, its kind and its name in state."""

    blob: bytes
    estimator: base.Estimator
    kind: str
    spec: str  # INIT_PREFIX + the first 16 hex digits of the pickle's SHA-256

    def copy(self) -> base.Estimator:
        """An independent copy: every key learns on its own."""
        return relaid(pickle.loads(self.blob))


def is_init_spec(spec: str) -> bool:
    """Whether a key's ``model_spec`` names an init model rather than a spec.

    >>> is_init_spec("init-model sha256:0123456789abcdef")
    True
    >>> is_init_spec("linear_model.LinearRegression()")
    False
    """
    return spec.startswith(INIT_PREFIX)


def read_init_model(source: str | bytes, flag: str = "--init-model") -> InitModel:
    """Read and check an init model: a file's path, or its bytes. Raises ``SpecError``
    (a ``ValueError``) saying what is wrong: missing, not a pickle, not a River
    estimator, or not a kind riverflink runs.

    >>> import pickle
    >>> from river import linear_model
    >>> init = read_init_model(pickle.dumps(linear_model.LinearRegression()))
    >>> init.kind, init.spec[:18], init.copy() is not init.copy()
    ('regressor', 'init-model sha256:', True)
    >>> read_init_model(b"not a pickle")
    Traceback (most recent call last):
    ...
    riverflink.state.spec.SpecError: --init-model: not a pickle of a River estimator (...)
    """
    where = flag
    if isinstance(source, str):
        where = f"{flag} {source}"
        try:
            blob = Path(source).read_bytes()
        except OSError as exc:
            raise SpecError(f"{where}: {exc.strerror or exc}") from exc
    else:
        blob = bytes(source)
    try:
        estimator = pickle.loads(blob)
    except Exception as exc:  # any pickle can fail in its own way
        raise SpecError(
            f"{where}: not a pickle of a River estimator ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(estimator, base.Estimator):
        raise SpecError(
            f"{where}: holds a {type(estimator).__module__}.{type(estimator).__name__}, "
            "not a River estimator"
        )
    try:
        kind = model_kind(estimator)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from exc
    digest = hashlib.sha256(blob).hexdigest()[:16]
    return InitModel(blob, estimator, kind, INIT_PREFIX + digest)


@dataclass(frozen=True)
class Exported:
    """One key of an export directory: its model's file, ``n`` and spec."""

    path: Path
    n: int
    spec: str

    def load(self) -> base.Estimator:
        with open(self.path, "rb") as fh:
            return relaid(pickle.load(fh))


def read_exported(directory: str, flag: str = "--init-models") -> dict:
    """The keys of an export directory: key id (the key's JSON text) -> :class:`Exported`.

    Raises ``SpecError`` for a directory that ``riverflink export`` did not write.
    """
    index = Path(directory) / MODELS_FILE
    if not index.is_file():
        raise SpecError(
            f"{flag} {directory}: no {MODELS_FILE} in it; give a directory that "
            "`riverflink export` wrote"
        )
    out: dict = {}
    with open(index, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                key_id = json.dumps(entry["key"])
                out[key_id] = Exported(
                    Path(directory) / entry["file"], int(entry["n"]), str(entry["model"])
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise SpecError(
                    f"{flag} {directory}: {MODELS_FILE} line {number} is not an export "
                    f"entry ({type(exc).__name__}: {exc})"
                ) from exc
    return out
