"""Job settings: one typed, validated object, read from flags and a YAML job file.

Everything a user can get wrong is checked here, before Flink starts, with a
message that says what to do. Flags override the job file; the job file
overrides the defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JobSettings", "LearnOptions", "SettingsError"]

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
#: process the lines that waited for the previous one; what the timer adds after a
#: bundle ends recurs in every cycle, so short timers keep the latency low.)
#: throughput: the router (riverflink.pipeline.router_jar) gathers lines per routing bucket and
#: sends a bucket's on at 256 lines, every 500 ms, and, when it holds 4,096 in all, the fullest
#: bucket's; each batch crosses into Python as one element. Bundles end every 5 s (or at
#: a checkpoint); the progress line's counters move at each bundle's end.
#: With checkpoints, a bundle also ends after 40 batches (at most about 10,000 lines): a
#: checkpoint waits until Python has worked through every line sent to it before the
#: barrier, and Python's bundle and the router's read-ahead are most of those: both
#: bounds keep a checkpoint's wait to seconds.
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


#: The most subtasks that get keys: ``riverflink.state.descriptors.ROUTING_BUCKETS`` (not imported
#: here, where the client checks its flags before it has imported PyFlink).
MAX_PARALLELISM = 128


class SettingsError(ValueError):
    """A setting that cannot work; the message says which and why."""


#: The text settings of the learning, and their flags.
_TEXT = {
    "key": "--key",
    "id": "--id",
    "target": "--target",
    "model": "--model",
    "drift": "--drift",
    "on_drift": "--on-drift",
    "feature_drift": "--feature-drift",
}


@dataclass(frozen=True, kw_only=True)
class LearnOptions:
    """What the learning itself needs: the record's fields, the model, drift detection,
    the metric, how long state lives, and the profile. Checked as they are built.

    ``riverflink.learn`` and ``riverflink.replay`` take exactly these; a job's
    :class:`JobSettings` adds where lines come from and where output goes.

    >>> LearnOptions(on_drift="retrain")
    Traceback (most recent call last):
    ...
    riverflink.config.settings.SettingsError: --on-drift must be 'alert' or 'reset', not 'retrain'
    """

    key: str = "key"
    id: str = "id"
    target: str = "y"
    features: tuple[str, ...] | None = None
    model: str | None = None  # None: DEFAULT_MODEL, unless init_model gives the model
    drift: str = DEFAULT_DRIFT
    on_drift: str = "alert"
    state_ttl: float | None = None
    label_ttl: float = 86400.0
    metric: str | None = None  # None: metrics.Accuracy() / metrics.MAE() by model kind
    profile: str | None = None  # None: by source, see PROFILES
    pseudo_label: float | None = None  # learn confident predictions of unlabelable records
    init_model: str | None = None  # a pickled River estimator: every new key's first model
    init_models: str | None = None  # an export directory: listed keys start from theirs
    schema: str | None = None  # a JSON Schema file (JSON or YAML) every record must satisfy
    feature_drift: str = "none"  # a River drift detector spec, one per key and numeric feature

    def __post_init__(self):
        self._check_learning()

    def _check_learning(self) -> None:
        if self.model is None and self.init_model is None:
            object.__setattr__(self, "model", DEFAULT_MODEL)
        elif self.model is not None and self.init_model is not None:
            raise SettingsError(
                "--init-model gives every new key its model, so --model cannot be given as "
                "well: leave one out"
            )
        for name in ("init_model", "init_models", "schema"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise SettingsError(f"--{name.replace('_', '-')} needs a path, not {value!r}")
        if self.init_model is not None and not Path(self.init_model).is_file():
            raise SettingsError(f"--init-model {self.init_model}: no such file")
        if self.init_models is not None and not Path(self.init_models).is_dir():
            raise SettingsError(
                f"--init-models {self.init_models}: no such directory (give one that "
                "`riverflink export` wrote)"
            )
        if self.schema is not None:
            from riverflink.operators.schema import SchemaError, read_schema

            try:
                read_schema(self.schema)
            except SchemaError as exc:
                raise SettingsError(str(exc)) from None
        for name, flag in _TEXT.items():
            if name == "model" and self.model is None:
                continue
            value = getattr(self, name)
            if not isinstance(value, str):
                raise SettingsError(f"{flag} must be text, not {value!r}")
        for name in ("metric", "profile"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise SettingsError(f"--{name} must be text, not {value!r}")
        if self.features is not None and (
            not isinstance(self.features, tuple)
            or not all(isinstance(f, str) for f in self.features)
        ):
            raise SettingsError(f"--features needs a list of field names, not {self.features!r}")
        if self.state_ttl is not None:
            _positive("--state-ttl", self.state_ttl)
        _positive("--label-ttl", self.label_ttl)
        if self.pseudo_label is not None and (
            not isinstance(self.pseudo_label, (int, float))
            or isinstance(self.pseudo_label, bool)
            or not 0 < self.pseudo_label <= 1
        ):
            raise SettingsError(
                f"--pseudo-label must be a probability > 0 and <= 1, not {self.pseudo_label!r}"
            )
        self._check_fields_and_choices()

    def _check_fields_and_choices(self) -> None:
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

    @property
    def tuning(self) -> dict:
        """The --profile in effect (see PROFILES); "latency" unless given: a stream that
        a program hands over may be live."""
        return PROFILES[self.profile or "latency"]


@dataclass(frozen=True, kw_only=True)
class JobSettings(LearnOptions):
    """A whole job: :class:`LearnOptions`, where lines come from, where output goes, and
    how the job runs."""

    source: str
    output: str
    follow: bool = False
    discovery_interval: float | None = None  # None: DISCOVERY_INTERVAL, with --follow
    socket_retries: int = 0
    parallelism: int = 1
    checkpoint_dir: str | None = None
    checkpoint_interval: float | None = None
    restore: str | None = None
    state_backend: str | None = None
    savepoint_on_exit: str | None = None

    def __post_init__(self):
        if isinstance(self.restore, str) and self.restore.startswith("file:"):
            from riverflink.config.inputs import local_path

            object.__setattr__(self, "restore", local_path(self.restore))
        self._check_source()
        self._check_output()
        self._check_numbers()
        self._check_learning()
        self._check_choices()
        self._check_state()

    def _check_source(self) -> None:
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
            from riverflink.config.inputs import REFUSED_COMPRESSION, input_files

            for file in input_files(self.source):
                if file.suffix in REFUSED_COMPRESSION:
                    raise SettingsError(
                        f"--source {self.source}: {file}: {REFUSED_COMPRESSION[file.suffix]}"
                    )

    def _check_output(self) -> None:
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

    def _check_numbers(self) -> None:
        """Seconds, counts and parallelism, and the flags that need another one."""
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
        if not is_whole(self.socket_retries) or self.socket_retries < 0:
            raise SettingsError(
                f"--socket-retries must be a whole number >= 0, not {self.socket_retries!r}"
            )
        if self.socket_retries and not self.is_socket:
            raise SettingsError(
                "--socket-retries sets how often a socket source reconnects; "
                f"--source {self.source} is not a socket"
            )
        if not is_whole(self.parallelism) or self.parallelism < 1:
            raise SettingsError(
                f"--parallelism must be a whole number >= 1, not {self.parallelism!r}"
            )
        if self.parallelism > MAX_PARALLELISM:
            raise SettingsError(
                f"--parallelism {self.parallelism}: keys go to {MAX_PARALLELISM} buckets, so "
                f"at most {MAX_PARALLELISM} subtasks would get any; use {MAX_PARALLELISM} or fewer"
            )

    def _check_choices(self) -> None:
        if self.state_backend not in (None, "hashmap", "rocksdb"):
            raise SettingsError(
                f"--state-backend must be 'hashmap' or 'rocksdb', not {self.state_backend!r}"
            )

    def _check_state(self) -> None:
        """Savepoints, restores, and output an earlier run left."""
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
    from riverflink.config.checkpoints import latest_checkpoint

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
    from riverflink.config.checkpoints import latest_checkpoint

    if path.is_dir() and latest_checkpoint(str(path)) is not None:
        raise SettingsError(
            f"--restore {restore} holds checkpoints, not one checkpoint: use --restore latest "
            f"--checkpoint-dir {restore}, or name one (a chk-N directory in it)"
        )
    raise SettingsError(
        f"--restore {restore} is not a checkpoint or savepoint (a directory holding a "
        "_metadata file, as --savepoint-on-exit prints it or as chk-N under --checkpoint-dir)"
    )


def is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(flag: str, value) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not 0 < value < float("inf")
    ):
        raise SettingsError(f"{flag} must be a number of seconds > 0, not {value!r}")
