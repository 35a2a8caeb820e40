"""Run one job in this process and end its task manager once a checkpoint completed.

    python -m tests.task_manager_probe RUN_FLAGS...

What a task manager that fails fatally looks like to the job (see
``jobs/accel/java/riverflink/EarlyMiniCluster.java``): its slots are gone, and the job,
restarting, needs new ones. Exits 0 once the job has finished; 3 when no checkpoint
came; 4 when the cluster was not started early (nothing to probe).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

from riverflink.accel import early_cluster
from riverflink.cli.flags import add_run_arguments
from riverflink.config.job_file import settings_from_args
from riverflink.runtime.local import run_job


def main(argv: list) -> int:
    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    settings = settings_from_args(parser.parse_args(argv))
    outcome: dict = {}

    def run():
        try:
            run_job(settings)
            outcome["done"] = True
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    job = threading.Thread(target=run, daemon=True)
    job.start()
    checkpoints = Path(settings.checkpoint_dir)
    deadline = time.monotonic() + 120
    while not any(checkpoints.glob("*/chk-*/_metadata")):
        if time.monotonic() > deadline or not job.is_alive():
            print("no checkpoint came", outcome, file=sys.stderr)
            return 3
        time.sleep(0.05)
    if not early_cluster._STARTED:
        return 4
    early_cluster._STARTED[-1]._j_cluster.terminateTaskManager(0).get()
    print("task manager 0 ended", file=sys.stderr, flush=True)
    job.join()
    if "error" in outcome:
        raise outcome["error"]
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    from riverflink.cli import exit_with

    exit_with(code)
