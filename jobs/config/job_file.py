"""Job settings from where users write them: flags, and a YAML job file (``--config``).

Flags override the job file; the job file overrides the defaults. A job file's values
are checked for their type here; what they mean is checked by ``JobSettings``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os

from riverflink.config.settings import DEFAULT_MODEL, JobSettings, SettingsError, is_whole

__all__ = ["settings_from_args"]


_FIELDS = {f.name for f in dataclasses.fields(JobSettings)}


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(JobSettings)}
_DEFAULTS["model"] = DEFAULT_MODEL  # None in the settings only to tell it from --init-model


#: What a job file may give for each setting (flags are typed by argparse).
_BOOLS = {"follow"}


_WHOLE = {"socket_retries", "parallelism"}


_SECONDS = {"discovery_interval", "checkpoint_interval", "state_ttl", "label_ttl"}


_NUMBERS = {"pseudo_label"}


def _check_job_value(path: str, name: str, field: str, value) -> None:
    """A job file's value of the type the setting takes, or a SettingsError saying so."""
    if value is None:
        return
    if field in _BOOLS:
        ok, want = isinstance(value, bool), "true or false"
    elif field in _WHOLE:
        ok, want = is_whole(value), "a whole number"
    elif field in _SECONDS or field in _NUMBERS:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        want = "a number of seconds" if field in _SECONDS else "a number"
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
        "init_model",
        "init_models",
        "schema",
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
    for name in (*_SECONDS, *_NUMBERS):
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
