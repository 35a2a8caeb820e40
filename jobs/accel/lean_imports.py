"""PyFlink's job-graph messages for the client, without all of Apache Beam.

Building a Python operator needs ``pyflink.fn_execution.flink_fn_execution_pb2``, a
plain protobuf module. Importing it runs its package's ``__init__``, which imports
Beam's coders and PyFlink's compiled operators, and with them most of Beam, pandas
and numpy: about a second of CPU, paid while the JVM and the warm worker process
start on the same cores. The client never runs an operator, so
:func:`import_job_messages` registers the package without running that
``__init__`` and imports the messages alone. The package stays whole for anyone
who needs more of it: the first attribute it lacks runs the real ``__init__``
in place (PEP 562's module ``__getattr__``), so ``fn_execution.PYFLINK_CYTHON_ENABLED``
and ``from pyflink.fn_execution import coders`` work as before.

``RIVERFLINK_LEAN_IMPORTS=0`` (or ``RIVERFLINK_ACCELERATE=0``) imports the messages the
usual way; so does any failure of the lean way, with one warning line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types

from riverflink.accel import enabled, turn_off

__all__ = ["import_job_messages"]

PACKAGE = "pyflink.fn_execution"
MESSAGES = PACKAGE + ".flink_fn_execution_pb2"


def import_job_messages() -> types.ModuleType:
    """``flink_fn_execution_pb2``, imported without its package's ``__init__`` if that
    has not run yet in this process."""
    if enabled("lean_imports") and PACKAGE not in sys.modules:
        try:
            spec = importlib.util.find_spec(PACKAGE)
            if spec is not None and spec.loader is not None:
                sys.modules[PACKAGE] = _deferred_package(spec)
            return importlib.import_module(MESSAGES)
        except Exception as exc:  # noqa: BLE001 - an accelerator never fails a run
            sys.modules.pop(MESSAGES, None)
            sys.modules.pop(PACKAGE, None)
            turn_off("lean_imports", exc)
    return importlib.import_module(MESSAGES)


def _deferred_package(spec) -> types.ModuleType:
    """The package's module object with its ``__path__`` (so submodules import) but its
    ``__init__`` not run: the first attribute looked up and not found runs it."""
    package = importlib.util.module_from_spec(spec)
    loaded = False

    def __getattr__(name: str):
        nonlocal loaded
        if not loaded:
            loaded = True
            del package.__getattr__  # the real __init__ may define its own names only
            spec.loader.exec_module(package)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")

    package.__getattr__ = __getattr__
    return package
