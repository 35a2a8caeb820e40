"""The one check of a job's model, drift and metric specs, for every command.

``run``, ``submit`` and the ``flink run`` entry point all call :func:`check_specs`
before Flink starts: a spec that cannot be built ends the command with its reason,
instead of failing every subtask once the job runs.
"""

from __future__ import annotations

from riverflink.config.settings import JobSettings, LearnOptions

__all__ = ["check_specs", "learner_options", "record_fields"]


def learner_options(settings: LearnOptions) -> dict:
    """The keyword arguments of ``riverflink.operators.learner.OnlineLearner`` for this job."""
    return dict(
        model_spec=settings.model,
        drift_spec=settings.drift,
        on_drift=settings.on_drift,
        label_ttl=settings.label_ttl,
        metric_spec=settings.metric,
        pseudo_label=settings.pseudo_label,
        init_model=settings.init_model,
        init_models=settings.init_models,
        feature_drift_spec=settings.feature_drift,
    )


def record_fields(options: LearnOptions):
    """Which fields of a record play which role, and the schema records must satisfy
    (``riverflink.operators.records.Fields``). Whether labels must be numbers
    (regressors) is up to the learner."""
    from riverflink.operators.records import Fields
    from riverflink.operators.schema import read_schema

    return Fields(
        key=options.key,
        id=options.id,
        target=options.target,
        features=options.features,
        schema=None if options.schema is None else read_schema(options.schema),
    )


def check_specs(settings: JobSettings) -> str:
    """Build the specs once (this imports River); raise ``SpecError`` (a ``ValueError``)
    for one that cannot be built. Returns the model's kind ("classifier", ...)."""
    from riverflink.operators.learner import OnlineLearner

    return OnlineLearner(**learner_options(settings)).kind
