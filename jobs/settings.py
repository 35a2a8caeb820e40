"""Job settings: one typed, validated object, read from flags and a YAML job file.

Everything a user can get wrong is checked here, before Flink starts, with a
message that says what to do. Flags override the job file; the job file
overrides the defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SettingsError", "JobSettings", "add_run_arguments", "settings_from_args"]

DEFAULT_MODEL = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
DEFAULT_DRIFT = "drift.ADWIN()"
#: Seconds between scans of a --follow directory, unless --discovery-interval says.
DISCOVERY_INTERVAL = 2.0

#: How often unbounded runs without --checkpoint-dir commit their output.
UNBOUNDED_COMMIT_INTERVAL = 2.0

#: --profile: what Flink trades for what. The default follows the source: a live feed
#: (socket, --follow) gets "latency", a bounded file run, where only the total time
#: counts, gets "throughput".
#: latency: each line crosses into Python alone; Python bundles end every 5 ms, network
#: buffers flush every millisecond. (A busy worker's bundles last as long as it takes to
#: process the lines that waited for the previous one; what the timer adds, 5 to 10 ms
#: after a bundle ends, recurs in every cycle: at 2,000 records/s, 20 ms bundles and
#: 5 ms buffers measured a median latency of 190 to 314 ms, these 116 and 129 ms.)
#: throughput: the router (jobs.java_router) gathers lines per routing bucket and sends
#: a bucket's on at 256 lines, every 500 ms, and, when it holds 4,096 in all, the fullest
#: bucket's; each batch crosses into Python as one element. Bundles end every 5 s (or at
#: a checkpoint); the progress line's counters move at each bundle's end.
#: With checkpoints, a bundle also ends after 40 batches (at most about 10,000 lines): a
#: checkpoint waits until Python has worked through every line sent to it before the
#: barrier, and Python's bundle and the router's read-ahead are most of those. 100,000
#: keys, a checkpoint every 2 s: median 2.0 s, longest 5.1 s; without both bounds 16
#: to 18 s.
PROFILES = {
    "latency": {
        "batch_ms": 0,
        "batch_lines": 1,
        "held_lines": 1,
        "bundle_size": 100_000,
        "bundle_ms": 5,
        "buffer_ms": 1,
    },
    "throughput": {
        "batch_ms": 500,
        "batch_lines": 256,
        "held_lines": 4096,
        "bundle_size": 100_000,
        "checkpointed_bundle_size": 40,
        "bundle_ms": 5000,
        "buffer_ms": 100,
    },
}


#: The most subtasks that get keys: ``state.descriptors.ROUTING_BUCKETS`` (not imported
#: here, where the client checks its flags before it has imported PyFlink).
MAX_PARALLELISM = 128


class SettingsError(ValueError):
    """A setting that cannot work; the message says which and why."""


@dataclass(frozen=True)
class JobSettings:
    source: str
    output: str
    follow: bool = False
    discovery_interval: float | None = None  # None: DISCOVERY_INTERVAL, with --follow
    socket_retries: int = 0
    key: str = "key"
    id: str = "id"
    target: str = "y"
    features: tuple[str, ...] | None = None
    model: str = DEFAULT_MODEL
    drift: str = DEFAULT_DRIFT
    on_drift: str = "alert"
    parallelism: int = 1
    checkpoint_dir: str | None = None
    checkpoint_interval: float | None = None
    restore: str | None = None
    state_ttl: float | None = None
    label_ttl: float = 86400.0
    metric: str | None = None  # None: metrics.Accuracy() / metrics.MAE() by model kind
    state_backend: str | None = None
    savepoint_on_exit: str | None = None
    profile: str | None = None  # None: by source, see PROFILES

    def __post_init__(self):
        if isinstance(self.restore, str) and self.restore.startswith("file:"):
            from jobs.exit_savepoint import local_path

            object.__setattr__(self, "restore", local_path(self.restore))
        if not self.source:
            raise SettingsError("--source is required: a file, a directory or socket://HOST:PORT")
        if self.is_socket:
            _ = self.socket_address  # validates HOST:PORT
            if self.follow:
                raise SettingsError("--follow watches a directory; it cannot be used with a socket")
        else:
            path = Path(self.source)
            if not path.exists():
                raise SettingsError(f"--source {self.source}: no such file or directory")
            if self.follow and not path.is_dir():
                raise SettingsError(f"--follow needs a directory to watch; {self.source} is a file")
            from jobs.exit_savepoint import REFUSED_COMPRESSION, input_files

            for file in input_files(self.source):
                if file.suffix in REFUSED_COMPRESSION:
                    raise SettingsError(
                        f"--source {self.source}: {file}: {REFUSED_COMPRESSION[file.suffix]}"
                    )
        if not self.output:
            raise SettingsError("--output is required: a directory, or - for stdout")
        if self.output != "-" and Path(self.output).exists() and not Path(self.output).is_dir():
            raise SettingsError(f"--output {self.output} exists and is not a directory")
        if not self.is_socket and self.output != "-" and Path(self.source).is_dir():
            source, output = Path(self.source).resolve(), Path(self.output).resolve()
            inside = output == source or source in output.parents
            if inside and not any(  # Flink's file source skips what is named . or _
                part.startswith((".", "_")) for part in output.relative_to(source).parts
            ):
                raise SettingsError(
                    f"--output {self.output} is inside --source {self.source}: the job would "
                    "read its own output as input; write it elsewhere, or under a name starting "
                    "with _ (the source skips those)"
                )
        if self.discovery_interval is not None:
            _positive("--discovery-interval", self.discovery_interval)
            if not self.follow:
                raise SettingsError(
                    "--discovery-interval sets how often --follow looks for new files; "
                    "without --follow the source is read once"
                )
        if self.checkpoint_interval is not None:
            _positive("--checkpoint-interval", self.checkpoint_interval)
            if not (self.checkpoint_dir or self.unbounded or self.savepoint_on_exit):
                raise SettingsError(
                    "--checkpoint-interval needs --checkpoint-dir here: a bounded run "
                    "without it takes no checkpoints"
                )
        if self.state_ttl is not None:
            _positive("--state-ttl", self.state_ttl)
        _positive("--label-ttl", self.label_ttl)
        if not _whole(self.socket_retries) or self.socket_retries < 0:
            raise SettingsError(
                f"--socket-retries must be a whole number >= 0, not {self.socket_retries!r}"
            )
        if self.socket_retries and not self.is_socket:
            raise SettingsError(
                "--socket-retries sets how often a socket source reconnects; "
                f"--source {self.source} is not a socket"
            )
        if not _whole(self.parallelism) or self.parallelism < 1:
            raise SettingsError(
                f"--parallelism must be a whole number >= 1, not {self.parallelism!r}"
            )
        if self.parallelism > MAX_PARALLELISM:
            raise SettingsError(
                f"--parallelism {self.parallelism}: keys go to {MAX_PARALLELISM} buckets, so "
                f"at most {MAX_PARALLELISM} subtasks would get any; use {MAX_PARALLELISM} or fewer"
            )
        if self.on_drift not in ("alert", "reset"):
            raise SettingsError(f"--on-drift must be 'alert' or 'reset', not {self.on_drift!r}")
        roles = {"--key": self.key, "--id": self.id, "--target": self.target}
        for flag, name in roles.items():
            if not name:
                raise SettingsError(f"{flag} needs a field name")
        if len(set(roles.values())) < 3:
            raise SettingsError(f"--key, --id and --target must name different fields: {roles}")
        if self.features is not None:
            if not self.features or any(not f for f in self.features):
                raise SettingsError("--features needs a comma-separated list of field names")
            clash = set(self.features) & set(roles.values())
            if clash:
                raise SettingsError(
                    f"--features cannot include the key, id or target: {sorted(clash)}"
                )
        if self.profile is not None and self.profile not in PROFILES:
            raise SettingsError(
                f"--profile must be 'latency' or 'throughput', not {self.profile!r}"
            )
        if self.state_backend not in (None, "hashmap", "rocksdb"):
            raise SettingsError(
                f"--state-backend must be 'hashmap' or 'rocksdb', not {self.state_backend!r}"
            )
        if self.savepoint_on_exit is not None:
            if self.unbounded:
                raise SettingsError(
                    "--savepoint-on-exit needs a bounded source (a file or a directory without "
                    "--follow); stop unbounded jobs with a savepoint instead"
                )
            if self.output == "-":
                raise SettingsError(
                    "--savepoint-on-exit needs --output DIR (it waits for the "
                    "committed output before it stops the job)"
                )
            if Path(self.savepoint_on_exit).exists() and not Path(self.savepoint_on_exit).is_dir():
                raise SettingsError(
                    f"--savepoint-on-exit {self.savepoint_on_exit} is not a directory"
                )
        if self.restore == "latest" and not self.checkpoint_dir:
            raise SettingsError("--restore latest looks under --checkpoint-dir; give that too")
        if self.restore not in (None, "latest"):
            _check_restore_path(self.restore)
        if self.restore is None and self.output != "-":
            _check_fresh_output(self.output)

    @property
    def is_socket(self) -> bool:
        return self.source.startswith("socket://")

    @property
    def socket_address(self) -> tuple[str, int]:
        rest = self.source[len("socket://") :]
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"--source {self.source}: expected socket://HOST:PORT")
        return host, int(port)

    @property
    def unbounded(self) -> bool:
        return self.follow or self.is_socket

    @property
    def tuning(self) -> dict:
        """The --profile in effect (see PROFILES), chosen by source when not given."""
        if self.profile is not None:
            return PROFILES[self.profile]
        return PROFILES["latency" if self.unbounded else "throughput"]

    def with_changes(self, **changes) -> JobSettings:
        return dataclasses.replace(self, **changes)


#: The output directories of a run (``--output DIR``), each with its part files.
OUTPUT_KINDS = ("predictions", "alerts", "outcomes", "rejected")


def _check_fresh_output(output: str) -> None:
    """A run that starts new models writes where no earlier run's output is.

    Appending silently mixed two runs: the summary, ``riverflink report`` and anyone
    reading the directory saw both as one. A run that continues models (``--restore``)
    may append: that is what resuming means.
    """
    root = Path(output)
    earlier = [p for kind in OUTPUT_KINDS for p in (root / kind).glob("part*")]
    if not earlier:
        return
    hint = "choose a new --output or remove this one"
    from jobs.checkpoints import latest_checkpoint

    if latest_checkpoint(str(root / "_checkpoints")) is not None:
        hint += (
            f", or continue that run with --restore latest --checkpoint-dir {root / '_checkpoints'}"
        )
    else:
        hint += ", or continue its models with --restore"
    files = f"{len(earlier)} part file" + ("s" if len(earlier) != 1 else "")
    raise SettingsError(
        f"--output {output} already holds an earlier run's output ({files}); {hint}"
    )


def _check_restore_path(restore: str) -> None:
    """A checkpoint or savepoint directory (holding ``_metadata``) or its ``_metadata`` file.

    Anything else failed inside Flink, with Flink's advice rather than riverflink's.
    """
    path = Path(restore)
    if not path.exists():
        raise SettingsError(f"--restore {restore}: no such checkpoint or savepoint")
    if path.is_file() and path.name == "_metadata" or (path / "_metadata").is_file():
        return
    from jobs.checkpoints import latest_checkpoint

    if path.is_dir() and latest_checkpoint(str(path)) is not None:
        raise SettingsError(
            f"--restore {restore} holds checkpoints, not one checkpoint: use --restore latest "
            f"--checkpoint-dir {restore}, or name one (a chk-N directory in it)"
        )
    raise SettingsError(
        f"--restore {restore} is not a checkpoint or savepoint (a directory holding a "
        "_metadata file, as --savepoint-on-exit prints it or as chk-N under --checkpoint-dir)"
    )


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(flag: str, value) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not 0 < value < float("inf")
    ):
        raise SettingsError(f"{flag} must be a number of seconds > 0, not {value!r}")


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
    a("--drift", metavar="SPEC", help=f"River drift detector spec or none ({DEFAULT_DRIFT})")
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


_FIELDS = {f.name for f in dataclasses.fields(JobSettings)}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(JobSettings)}

#: What a job file may give for each setting (flags are typed by argparse).
_BOOLS = {"follow"}
_WHOLE = {"socket_retries", "parallelism"}
_SECONDS = {"discovery_interval", "checkpoint_interval", "state_ttl", "label_ttl"}


def _check_job_value(path: str, name: str, field: str, value) -> None:
    """A job file's value of the type the setting takes, or a SettingsError saying so."""
    if value is None:
        return
    if field in _BOOLS:
        ok, want = isinstance(value, bool), "true or false"
    elif field in _WHOLE:
        ok, want = _whole(value), "a whole number"
    elif field in _SECONDS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number of seconds"
    elif field == "features":
        ok = isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(f, str) for f in value)
        )
        want = "a list of field names"
    else:
        ok, want = isinstance(value, str), "text (in quotes if YAML reads it otherwise)"
    if not ok:
        raise SettingsError(f"--config {path}: {name} must be {want}, not {value!r}")


def _read_job_file(path: str) -> dict:
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
    except OSError as exc:
        raise SettingsError(f"--config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(f"--config {path}: not valid YAML{at}: {problem}") from exc
    if not isinstance(data, dict):
        raise SettingsError(
            f"--config {path}: expected a mapping of settings, got {type(data).__name__}"
        )
    out = {}
    for name, value in data.items():
        field = str(name).replace("-", "_")
        if field not in _FIELDS:
            hint = ""
            if isinstance(name, bool):
                hint = " (YAML reads yes, no, on and off as true or false)"
            raise SettingsError(
                f"--config {path}: unknown setting {name!r}{hint}; known: "
                + ", ".join(sorted(f.replace("_", "-") for f in _FIELDS))
            )
        if value is None:  # `model:` with nothing after it: the default, if there is one
            if _DEFAULTS.get(field) is not None:
                raise SettingsError(
                    f"--config {path}: {name} is empty; give it a value"
                    + (" (none turns drift detection off)" if field == "drift" else "")
                    + ", or leave the line out for the default"
                )
            continue
        _check_job_value(path, str(name), field, value)
        out[field] = value
    base = os.path.dirname(os.path.abspath(path))
    for field in (
        "source",
        "output",
        "checkpoint_dir",
        "restore",
        "savepoint_on_exit",
    ):  # relative to the job file
        value = out.get(field)
        if (
            isinstance(value, str)
            and value not in ("-", "latest")
            and not value.startswith("socket://")
            and not os.path.isabs(value)
        ):
            out[field] = os.path.join(base, value)
    return out


def settings_from_args(args: argparse.Namespace) -> JobSettings:
    values = _read_job_file(args.config) if getattr(args, "config", None) else {}
    for name in _FIELDS:
        flag = getattr(args, name, None)
        if flag is not None:
            values[name] = flag
    features = values.get("features")
    if isinstance(features, str):
        values["features"] = tuple(f.strip() for f in features.split(","))
    elif isinstance(features, list):
        values["features"] = tuple(str(f) for f in features)
    for name in ("discovery_interval", "checkpoint_interval", "state_ttl", "label_ttl"):
        if isinstance(values.get(name), int) and not isinstance(values.get(name), bool):
            values[name] = float(values[name])
    for name in ("source", "output"):
        if not values.get(name):
            raise SettingsError(
                f"--{name} is required"
                + (
                    ": a file, a directory or socket://HOST:PORT"
                    if name == "source"
                    else ": a directory, or - for stdout"
                )
            )
    try:
        return JobSettings(**values)
    except TypeError as exc:
        raise SettingsError(str(exc)) from exc
