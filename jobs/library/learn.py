"""``riverflink.learn``: riverflink's learning inside a PyFlink program of your own."""

from __future__ import annotations

import sys

from riverflink.config.settings import DEFAULT_DRIFT
from riverflink.library.options import learn_options
from riverflink.pipeline import Learned, learn_stream

__all__ = ["Learned", "learn"]


def learn(
    lines,
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
) -> Learned:
    """One River learner per key over a stream of JSON lines: predict, then learn.

    The same learning as ``riverflink run``, as a step of your own PyFlink job: read
    lines from any source (Kafka, files, a collection), send the outputs to any sink.

    Parameters
    ----------
    lines
        A ``DataStream`` of JSON lines (``str``), one record each, as ``riverflink run``
        reads them from a file.
    model, drift, on_drift, metric, key, id, target, features, label_ttl, state_ttl, profile,
        pseudo_label, init_model, init_models, schema, feature_drift
        The flags of ``riverflink run`` that shape the learning, with underscores, and
        their defaults: ``model``, ``drift``, ``on_drift``, ``metric``, ``key``, ``id``,
        ``target``, ``features`` (a list, or ``"f1,f2"``), ``label_ttl``, ``state_ttl``
        and ``profile`` (``"latency"`` unless given).

    Returns
    -------
    Learned
        ``.predictions``, ``.alerts``, ``.outcomes`` and ``.rejected``: each a
        ``DataStream`` of JSON lines with exactly the fields ``riverflink run`` writes.

    Raises
    ------
    ValueError
        For a bad option, with the message ``riverflink run`` gives, before the job runs.

    Every key's model is in Flink keyed state, under the same operator uids as
    ``riverflink run``'s: a checkpoint or savepoint of your job holds them all, and a
    job restored from it carries every model on, at any parallelism. Call it once per
    job (the uids are fixed).

    Examples
    --------

    >>> from pyflink.common import Types
    >>> from pyflink.datastream import StreamExecutionEnvironment
    >>> import riverflink

    >>> env = StreamExecutionEnvironment.get_execution_environment()
    >>> env.set_parallelism(1)
    <pyflink.datastream.stream_execution_environment.StreamExecutionEnvironment object at ...>
    >>> lines = env.from_collection(
    ...     ['{"key": "a", "x": 1.0, "y": true}', '{"key": "a", "x": 2.0, "y": true}'],
    ...     type_info=Types.STRING(),
    ... )
    >>> learned = riverflink.learn(lines, model="linear_model.LogisticRegression()")
    >>> with learned.predictions.execute_and_collect() as predictions:
    ...     for line in predictions:
    ...         print(line)
    {"key": "a", "id": null, "y_pred": false, "y_true": true, "n": 0}
    {"key": "a", "id": null, "y_pred": true, "y_true": true, "n": 1}

    Bad options are refused before anything runs:

    >>> riverflink.learn(lines, on_drift="retrain")
    Traceback (most recent call last):
    ...
    riverflink.config.settings.SettingsError: --on-drift must be 'alert' or 'reset', not 'retrain'
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
    _local_python(lines)
    return learn_stream(lines, options)


def _local_python(lines) -> None:
    """On the local mini-cluster, run the Python workers with this program's Python, which
    has River and riverflink, unless the program chose one (``python.executable``).

    Without it PyFlink starts them with ``python`` from the PATH: another Python, unless
    this one's virtual environment is active. Under ``flink run``, ``-pyexec`` decides.
    """
    from pyflink.util.java_utils import get_j_env_configuration

    from riverflink.config.target import under_flink_run

    if under_flink_run():
        return
    conf = get_j_env_configuration(lines._j_data_stream.getExecutionEnvironment())
    local = conf.getString("execution.target", "local") in ("local", "minicluster")
    if local and not conf.getString("python.executable", ""):
        conf.setString("python.executable", sys.executable)
