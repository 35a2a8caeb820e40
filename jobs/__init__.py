"""riverflink's job: the command line, the pipeline and how it runs, by role.

- ``jobs.cli``: the ``riverflink`` command (imported by nothing).
- ``jobs.runtime``: runs the job, on the local mini-cluster or under ``flink run``.
- ``jobs.pipeline``: the DataStream graph, as one function.
- ``jobs.config``: settings, spec checks, inputs; local or ``flink run``.
- ``jobs.accel``: start-up accelerators and runtime patches, each behind a switch.
- ``jobs.cluster``: a standalone cluster, submit and stop.
- ``jobs.results``: reading output back: summary, progress line, report.
"""
