"""The flags of ``riverflink run`` and ``riverflink submit``: one setting each.

Their defaults are None, so that a job file (``--config``) can fill the gaps; the
defaults a run gets are ``JobSettings``'s, named in each flag's help.
"""

from __future__ import annotations

import argparse

from riverflink.config.settings import DEFAULT_DRIFT, DEFAULT_MODEL, PROFILES

__all__ = ["add_run_arguments"]


def add_run_arguments(parser: argparse.ArgumentParser, *, exit_savepoint: bool = True) -> None:
    """The `riverflink run` flags. Defaults are None so the job file can fill the gaps.

    ``exit_savepoint``: list --savepoint-on-exit in the help (not for `submit`, whose job
    outlives it: there it is only taken to say so).
    """
    a = parser.add_argument
    a("--config", metavar="FILE", help="YAML job file with the same settings; flags override it")
    a("--source", metavar="SRC", help="file, directory, or socket://HOST:PORT")
    a("--follow", action="store_true", default=None, help="keep watching a directory (unbounded)")
    a(
        "--discovery-interval",
        type=float,
        metavar="S",
        help="seconds between scans with --follow (2)",
    )
    a("--socket-retries", type=int, metavar="N", help="reconnect attempts when the peer closes (0)")
    a("--key", metavar="F", help="key field (key)")
    a("--id", metavar="F", help="record id field (id)")
    a("--target", metavar="F", help="label field (y)")
    a("--features", metavar="F1,F2", help="feature fields (default: all other fields)")
    a("--model", metavar="SPEC", help=f"River estimator spec ({DEFAULT_MODEL})")
    a(
        "--init-model",
        metavar="FILE.pkl",
        help="new keys start from a copy of this pickled River estimator (instead of --model)",
    )
    a(
        "--init-models",
        metavar="DIR",
        help="keys listed in this `riverflink export` directory start from their own model",
    )
    a("--drift", metavar="SPEC", help=f"River drift detector spec or none ({DEFAULT_DRIFT})")
    a(
        "--feature-drift",
        metavar="SPEC",
        help="River drift detector spec watching each numeric feature of each key, or none (none)",
    )
    a(
        "--schema",
        metavar="FILE",
        help="JSON Schema (draft 2020-12, JSON or YAML) every record must satisfy; "
        "violations go to rejected/ (off)",
    )
    a(
        "--metric",
        metavar="SPEC",
        help="River metric kept per key and reported in alerts "
        "(metrics.Accuracy() for classifiers, metrics.MAE() for regressors)",
    )
    a(
        "--on-drift",
        choices=["alert", "reset"],
        help="on drift: alert only, or also reset the model",
    )
    a(
        "--pseudo-label",
        type=float,
        metavar="P",
        help="learn an unlabeled record without id from its own prediction when the "
        "classifier gives it probability >= P (off)",
    )
    a("--output", metavar="DIR", help="output directory, or - for stdout")
    a("--parallelism", type=int, metavar="N", help="operator parallelism (1)")
    a("--checkpoint-dir", metavar="DIR", help="enable checkpoints into DIR")
    a("--checkpoint-interval", type=float, metavar="S", help="seconds between checkpoints (10)")
    a("--restore", metavar="PATH|latest", help="start from a checkpoint or savepoint")
    a("--state-ttl", type=float, metavar="SECONDS", help="forget keys idle this long (off)")
    a(
        "--label-ttl",
        type=float,
        metavar="SECONDS",
        help="how long a prediction waits for its delayed label (86400)",
    )
    a(
        "--state-backend",
        choices=["hashmap", "rocksdb"],
        help="state backend (default from flink-conf/config.yaml: hashmap)",
    )
    a(
        "--profile",
        choices=sorted(PROFILES),
        help="latency: each line predicted as it comes (default for socket and --follow); "
        "throughput: lines batched for up to 0.5 s, several times the records/s (default "
        "for files)",
    )
    a(
        "--savepoint-on-exit",
        metavar="DIR",
        help="bounded runs: after the last record, stop with a savepoint in DIR and print its path"
        if exit_savepoint
        else argparse.SUPPRESS,
    )
