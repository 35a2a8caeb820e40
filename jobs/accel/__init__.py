"""Start-up accelerators and runtime patches: everything that leans on private internals.

riverflink is correct without any of them. Each one makes a run start sooner or a
worker spend less time waiting, and each relies on something PyFlink, Beam, Flink or
the JVM do not promise to keep. So every one of them:

- has its own switch, an environment variable (``0`` turns it off), and
  ``RIVERFLINK_ACCELERATE=0`` turns them all off;
- checks what it relies on before use, and on any mismatch or failure turns itself
  off for the rest of the process with one warning line on stderr: a run never fails
  because of an accelerator;
- has a compat test against the installed classes in ``tests/compat/``.

========================  ============================  =====================================
accelerator               switch                        module
========================  ============================  =====================================
warm worker fork          ``RIVERFLINK_FORK``           :mod:`riverflink.accel.worker_fork`
early mini-cluster        ``RIVERFLINK_EARLY_CLUSTER``  :mod:`riverflink.accel.early_cluster`
JVM class-data archive    ``RIVERFLINK_CLASS_ARCHIVE``  :mod:`riverflink.accel.jvm_archive`
lean JVM flags            ``RIVERFLINK_LEAN_JVM``       :mod:`riverflink.accel.jvm_archive`
gRPC on loopback          ``RIVERFLINK_LOOPBACK``       :mod:`riverflink.accel.loopback`
lean client imports       ``RIVERFLINK_LEAN_IMPORTS``   :mod:`riverflink.accel.lean_imports`
pipelined state commit    ``RIVERFLINK_STATE_COMMIT``   :mod:`riverflink.accel.state_commit`
state-sampler cap         ``RIVERFLINK_SAMPLER``        :mod:`riverflink.accel.sampler`
batched cold-key reads    ``RIVERFLINK_PREFETCH``       :mod:`riverflink.accel.state_prefetch`
budgeted full collections ``RIVERFLINK_GC``             :mod:`riverflink.accel.collector`
========================  ============================  =====================================

The switches are read from the environment of the process that uses the accelerator;
a local run's JVM and Python workers inherit the client's.
"""

from __future__ import annotations

import os
import sys

__all__ = ["ACCELERATE", "SWITCHES", "enabled", "turn_off"]

#: The master switch: ``RIVERFLINK_ACCELERATE=0`` turns every accelerator off.
ACCELERATE = "RIVERFLINK_ACCELERATE"

#: Each accelerator's own switch.
SWITCHES = {
    "fork": "RIVERFLINK_FORK",
    "early_cluster": "RIVERFLINK_EARLY_CLUSTER",
    "class_archive": "RIVERFLINK_CLASS_ARCHIVE",
    "lean_jvm": "RIVERFLINK_LEAN_JVM",
    "loopback": "RIVERFLINK_LOOPBACK",
    "lean_imports": "RIVERFLINK_LEAN_IMPORTS",
    "state_commit": "RIVERFLINK_STATE_COMMIT",
    "sampler": "RIVERFLINK_SAMPLER",
    "prefetch": "RIVERFLINK_PREFETCH",
    "gc": "RIVERFLINK_GC",
}

_OFF_VALUES = ("0", "false", "no", "off")
_turned_off: dict = {}  # name -> reason, for this process


def _off(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in _OFF_VALUES


def enabled(name: str) -> bool:
    """Whether accelerator ``name`` may be used in this process."""
    if name not in SWITCHES:
        raise KeyError(f"no accelerator {name!r}; known: {', '.join(SWITCHES)}")
    return not (_off(ACCELERATE) or _off(SWITCHES[name]) or name in _turned_off)


def turn_off(name: str, reason: object) -> None:
    """Turn ``name`` off for the rest of this process, with one warning line on stderr."""
    if name in _turned_off:
        return
    _turned_off[name] = str(reason)
    text = str(reason).strip().splitlines()
    print(
        f"riverflink: warning: {name.replace('_', ' ')} accelerator off "
        f"({SWITCHES[name]}=0 silences this): {text[0] if text else type(reason).__name__}",
        file=sys.stderr,
    )
