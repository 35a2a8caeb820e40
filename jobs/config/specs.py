"""The one check of a job's model, drift and metric specs, for every command.

``run``, ``submit`` and the ``flink run`` entry point all call :func:`check_specs`
before Flink starts: a spec that cannot be built ends the command with its reason,
instead of failing every subtask once the job runs.
"""

from __future__ import annotations

from riverflink.config.settings import JobSettings

__all__ = ["check_specs", "learner_options"]


def learner_options(settings: JobSettings) -> dict:
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
    )


def check_specs(settings: JobSettings) -> str:
    """Build the specs once (this imports River); raise ``SpecError`` (a ``ValueError``)
    for one that cannot be built. Returns the model's kind ("classifier", ...)."""
    from riverflink.operators.learner import OnlineLearner

    return OnlineLearner(**learner_options(settings)).kind
