"""Where riverflink keeps its files: its own code, and the runtime files of a user.

An installed riverflink never writes beside its code (site-packages may be shared or
read-only): the local cluster's configuration, pid files and logs go to a per-user
state directory.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["build_dir", "code_root", "conf_files_dir", "package_dirs", "state_dir"]


def state_dir() -> Path:
    """``$RIVERFLINK_STATE_DIR``, else ``$XDG_STATE_HOME/riverflink``, else
    ``~/.local/state/riverflink``: the local cluster's files, the Flink client's logs.

    >>> import os
    >>> os.environ["RIVERFLINK_STATE_DIR"] = "/tmp/rf-state"
    >>> str(state_dir())
    '/tmp/rf-state'
    >>> del os.environ["RIVERFLINK_STATE_DIR"]
    """
    explicit = os.environ.get("RIVERFLINK_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "riverflink"


def build_dir() -> Path:
    """Where ``riverflink warm-up`` builds (the router jar, the JVM class archive): this
    Python environment's ``share/riverflink/``, or, where that cannot be written (a
    system-wide Python), ``$XDG_CACHE_HOME/riverflink`` (``~/.cache/riverflink``)."""
    import sys

    shared = Path(sys.prefix) / "share" / "riverflink"
    writable = shared if shared.exists() else Path(sys.prefix)
    if os.access(writable, os.W_OK):
        return shared
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "riverflink"


def package_dirs() -> dict[str, Path]:
    """Each top package of riverflink and the folder it is read from.

    Installed from a wheel, they nest (``riverflink/operators/``); installed from a
    checkout in editable mode, they are the checkout's ``jobs/``, ``operators/`` and
    ``state/``.
    """
    import riverflink.operators
    import riverflink.state

    return {
        "riverflink": Path(__file__).resolve().parents[1],  # riverflink/config/paths.py
        **{
            module.__name__: Path(module.__file__).resolve().parent
            for module in (riverflink.operators, riverflink.state)
        },
    }


def conf_files_dir() -> Path:
    """riverflink's own Flink configuration (``config.yaml``): the checkout's
    ``flink-conf/``, or the copy installed inside the package (``riverflink/flink_conf/``)."""
    root = package_dirs()["riverflink"]
    return root / "flink_conf" if root.name == "riverflink" else root.parent / "flink-conf"


def code_root() -> Path | None:
    """The folder holding the ``riverflink`` package, for a process's ``PYTHONPATH``;
    None for an editable install, which Python finds by its own hook."""
    root = package_dirs()["riverflink"]
    return root.parent if root.name == "riverflink" else None
