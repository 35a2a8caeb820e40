"""Runtime settings for Flink, read from the project's ``flink-conf/`` directory.

Flink's own launcher reads ``config.yaml`` from ``FLINK_CONF_DIR``; PyFlink's
local gateway does too (for JVM options and logging). riverflink points
``FLINK_CONF_DIR`` at ``flink-conf/`` unless the user already set it, and also
applies the file's settings to the job's configuration, so the mini-cluster
and a real cluster run with the same state backend, checkpoint retention,
restart strategy and Python execution mode.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

__all__ = ["conf_dir", "flink_settings", "memory_size", "use_project_conf_dir"]

_UNITS = {
    "": 1,
    "b": 1,
    "bytes": 1,
    "k": 2**10,
    "kb": 2**10,
    "kibibytes": 2**10,
    "m": 2**20,
    "mb": 2**20,
    "mebibytes": 2**20,
    "g": 2**30,
    "gb": 2**30,
    "gibibytes": 2**30,
    "t": 2**40,
    "tb": 2**40,
    "tebibytes": 2**40,
}


def conf_dir() -> Path:
    """``$FLINK_CONF_DIR`` if set, else riverflink's own: the checkout's ``flink-conf/``,
    or the copy installed with the package."""
    env = os.environ.get("FLINK_CONF_DIR")
    if env:
        return Path(env)
    from riverflink.config.paths import conf_files_dir

    return conf_files_dir()


def use_project_conf_dir() -> Path:
    """Make PyFlink's gateway (started on first use) read our ``config.yaml``."""
    path = conf_dir()
    os.environ.setdefault("FLINK_CONF_DIR", str(path))
    return path


def _flatten(prefix: str, value, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif isinstance(value, list):
        out[prefix] = ";".join(str(v) for v in value)
    elif value is not None:
        out[prefix] = str(value)


def flink_settings() -> dict[str, str]:
    """``config.yaml`` as flat ``{"state.backend.type": "hashmap", ...}``."""
    path = conf_dir() / "config.yaml"
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    out: dict[str, str] = {}
    _flatten("", data, out)
    return out


def memory_size(value, setting: str) -> int:
    """A memory size written as Flink writes them (``2gb``, ``512 mb``, ``1048576``), in
    bytes; a clear error naming ``setting`` otherwise."""
    text = str(value).strip().lower()
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(text.rstrip("abcdefghijklmnopqrstuvwxyz")) :].strip()
    try:
        amount = int(number)
    except ValueError:
        amount = -1
    if amount < 0 or unit not in _UNITS:
        raise ValueError(
            f"{setting} in config.yaml must be a memory size such as 2gb, 512mb or 0, not {value!r}"
        )
    return amount * _UNITS[unit]
