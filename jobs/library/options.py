"""The keyword options of ``riverflink.learn`` and ``riverflink.replay``: the flags of
``riverflink run`` that shape the learning, with underscores, and their defaults."""

from __future__ import annotations

import os

from riverflink.config.settings import DEFAULT_DRIFT, LearnOptions

__all__ = ["learn_options"]


def learn_options(
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
) -> LearnOptions:
    """The options, checked, and the specs built once (River is imported): raises
    ``ValueError`` with the message ``riverflink run`` gives for the same flags.

    ``features``: a list of field names, or one comma-separated string, as ``--features``.

    >>> learn_options(features="a, b").features
    ('a', 'b')
    >>> learn_options(model="linear_model.Nope()")
    Traceback (most recent call last):
    ...
    riverflink.state.spec.SpecError: ...
    """
    from riverflink.config.specs import check_specs

    if isinstance(features, str):
        features = tuple(f.strip() for f in features.split(","))
    elif isinstance(features, (list, tuple)):
        features = tuple(features)
    options = LearnOptions(
        model=model,
        drift=drift,
        on_drift=on_drift,
        metric=metric,
        key=key,
        id=id,
        target=target,
        features=features,
        label_ttl=_seconds(label_ttl),
        state_ttl=_seconds(state_ttl),
        profile=profile,
        pseudo_label=pseudo_label,
        init_model=init_model,
        init_models=init_models,
        schema=os.fspath(schema) if isinstance(schema, os.PathLike) else schema,
        feature_drift=feature_drift,
    )
    check_specs(options)
    return options


def _seconds(value):
    """Whole seconds as the float the settings hold (a bool stays, to be refused)."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
