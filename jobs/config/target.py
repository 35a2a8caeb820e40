"""Where a run executes: on riverflink's own local mini-cluster, or under ``flink run``.

``riverflink run`` (and ``python -m riverflink.online_learning``) start a JVM of their own and
run the job on Flink's embedded mini-cluster: riverflink owns its processes, ports and
Python workers. ``riverflink submit`` hands the same script to Flink's CLI, ``flink run
-py``, which starts it with a gateway to the client JVM it already runs
(``PYFLINK_GATEWAY_PORT``): there the cluster decides workers, ports and Python, and a
job may be stopped with a savepoint at any time.

Every choice that differs between the two asks :func:`under_flink_run`; nothing else
looks at the environment for it.
"""

from __future__ import annotations

import os

__all__ = ["is_local", "under_flink_run"]

#: Set by Flink's CLI for the Python program it starts (``flink run -py``).
GATEWAY_ENV = "PYFLINK_GATEWAY_PORT"


def under_flink_run() -> bool:
    """Whether this process was started by Flink's CLI (``flink run -py``, as ``submit``)."""
    return GATEWAY_ENV in os.environ


def is_local() -> bool:
    """Whether this run starts its own JVM and mini-cluster (``riverflink run``)."""
    return not under_flink_run()
