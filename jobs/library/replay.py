"""``riverflink.replay``: riverflink's learning in plain Python, without Flink or a JVM."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator

from riverflink.config.settings import DEFAULT_DRIFT
from riverflink.library.options import learn_options

__all__ = ["replay"]

#: Where a file's lines end, as Flink's text source reads them.
_LINE_END = re.compile(rb"\r\n|\r|\n")


def replay(
    lines: Iterable,
    *,
    model: str | None = None,
    drift: str = DEFAULT_DRIFT,
    on_drift: str = "alert",
    metric: str | None = None,
    key: str = "key",
    id: str = "id",
    target: str = "y",
    features=None,
    label_ttl: float = 86400.0,
    state_ttl: float | None = None,
    profile: str | None = None,
    pseudo_label: float | None = None,
    init_model: str | None = None,
    init_models: str | None = None,
    schema: str | None = None,
    feature_drift: str = "none",
) -> Iterator[dict]:
    """The output lines riverflink's job gives for ``lines``, computed in this process.

    The same learning, line for line, as ``riverflink run`` and :func:`riverflink.learn`:
    for a notebook, a unit test, a backfill, or trying a spec on a sample before
    deploying it. Nothing is kept when it ends: models live in this call only.

    Parameters
    ----------
    lines
        JSON lines (``str`` or ``bytes``; one item may hold several, as a file's text
        does), or records as ``dict``, in the order the job would read them.
    model, drift, on_drift, metric, key, id, target, features, label_ttl, state_ttl, profile,
        pseudo_label, init_model, init_models, schema, feature_drift
        As for :func:`riverflink.learn`: the flags of ``riverflink run``, with underscores.

    Returns
    -------
    Iterator[dict]
        One dict per output line, ``"kind"`` first (``prediction``, ``alert``,
        ``outcome`` or ``rejected``), exactly as ``riverflink run --output -`` prints
        them, in the order they happen.

    Raises
    ------
    ValueError
        For a bad option, with the message ``riverflink run`` gives, at once.

    Examples
    --------

    >>> import riverflink
    >>> lines = [
    ...     '{"key": "a", "x": 1.0, "y": true}',
    ...     {"key": "a", "x": 2.0, "y": True},
    ...     b'{"key": "b", "x": [1, 2]}',
    ... ]
    >>> for out in riverflink.replay(lines, model="linear_model.LogisticRegression()"):
    ...     print(out)
    {'kind': 'prediction', 'key': 'a', 'id': None, 'y_pred': False, 'y_true': True, 'n': 0}
    {'kind': 'prediction', 'key': 'a', 'id': None, 'y_pred': True, 'y_true': True, 'n': 1}
    {'kind': 'rejected', 'raw': '{"key": "b", "x": [1, 2]}', 'error': ...}

    A label that arrives later (delayed labels) is matched by key and id:

    >>> lines = ['{"key": "a", "id": 7, "x": 1.0}', '{"key": "a", "id": 7, "y": 1.5}']
    >>> for out in riverflink.replay(lines, model="linear_model.LinearRegression()"):
    ...     print(out["kind"], out["y_pred"], out["y_true"])
    prediction 0.0 None
    outcome 0.0 1.5
    """
    options = learn_options(
        model=model,
        drift=drift,
        on_drift=on_drift,
        metric=metric,
        key=key,
        id=id,
        target=target,
        features=features,
        label_ttl=label_ttl,
        state_ttl=state_ttl,
        profile=profile,
        pseudo_label=pseudo_label,
        init_model=init_model,
        init_models=init_models,
        schema=schema,
        feature_drift=feature_drift,
    )
    from riverflink.config.specs import learner_options, record_fields
    from riverflink.operators.learner import OnlineLearner
    from riverflink.operators.plain import PlainKeys

    fields = record_fields(options)
    keys = PlainKeys(OnlineLearner(**learner_options(options)), fields, state_ttl=options.state_ttl)
    return _outputs(keys, lines)


def _outputs(keys, items: Iterable) -> Iterator[dict]:
    from riverflink.operators.records import Rejected

    for item in items:
        for line in _lines_of(item):
            outputs = [line] if isinstance(line, Rejected) else keys.feed(line)
            for output in outputs:
                yield json.loads(output.to_json(True))


def _lines_of(item) -> list:
    """An item's lines, as bytes; for a dict, its JSON line (or why it has none)."""
    if isinstance(item, str):
        item = item.encode("utf-8", "surrogatepass")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return _LINE_END.split(bytes(item))
    if isinstance(item, dict):
        try:
            return [json.dumps(item, ensure_ascii=False).encode("utf-8", "surrogatepass")]
        except (TypeError, ValueError) as exc:  # a value JSON has no form for
            from riverflink.operators.records import Rejected

            return [Rejected(repr(item), f"not a JSON record: {exc}")]
    raise TypeError(
        f"riverflink.replay takes JSON lines (str or bytes) or dicts, not {type(item).__name__}"
    )
