"""riverflink: online machine learning on Apache Flink, one River learner per key.

In your own PyFlink job, :func:`learn` turns a stream of JSON lines into streams of
predictions, drift alerts, outcomes and rejected lines; :func:`replay` gives the same
output lines in plain Python, without Flink. The ``riverflink`` command runs the same
pipeline on files and sockets.

>>> import riverflink
>>> riverflink.__version__
'0.2.0'

The package, by role:

- ``riverflink.library``: :func:`learn` and :func:`replay`, the functions for your own code.
- ``riverflink.cli``: the ``riverflink`` command (imported by nothing).
- ``riverflink.runtime``: runs the job, on the local mini-cluster or under ``flink run``.
- ``riverflink.pipeline``: the DataStream graph, as one function.
- ``riverflink.config``: settings, spec checks, inputs; local or ``flink run``.
- ``riverflink.accel``: start-up accelerators and runtime patches, each behind a switch.
- ``riverflink.cluster``: a standalone cluster, submit and stop.
- ``riverflink.results``: reading output back: summary, progress line, report.
- ``riverflink.operators``: the Flink functions and the per-key logic they call.
- ``riverflink.state``: state descriptors, the model envelope, model specs.
"""

__version__ = "0.2.0"

__all__ = ["Learned", "__version__", "learn", "load_models", "replay"]


def __getattr__(name: str):
    # The public functions import River or PyFlink; `import riverflink` stays light.
    if name in ("learn", "replay", "load_models", "Learned"):
        from riverflink import library

        return getattr(library, name)
    raise AttributeError(f"module 'riverflink' has no attribute {name!r}")
