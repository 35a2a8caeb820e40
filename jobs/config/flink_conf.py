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

__all__ = ["conf_dir", "flink_settings", "use_project_conf_dir"]


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
