"""The job's script: ``riverflink run``'s options, for ``python -m`` and ``flink run -py``.

    python -m riverflink.online_learning --source data.jsonl --output out/
    flink run -py jobs/online_learning.py -pyfs riverflink.zip --source ... --output ...

Both are ``riverflink run ARGS``. Started by Flink's CLI, the job runs on the cluster
Flink's CLI names (:mod:`riverflink.config.target`); started by ``python``, on the local
mini-cluster. The run itself is :func:`riverflink.runtime.local.run_job`.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    from riverflink.cli import exit_with, main

    exit_with(main(["run", *sys.argv[1:]]))
