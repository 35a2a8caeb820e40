"""PyFlink's ``pyflink.fn_execution`` package, as ``jobs/accel/lean_imports.py`` relies on it.

Switch: ``RIVERFLINK_LEAN_IMPORTS``. The accelerator registers the package without
running its ``__init__`` (which imports Beam, pandas and numpy), imports
``flink_fn_execution_pb2`` alone, and runs the real ``__init__`` into the same module
object on first use of anything else. Each case runs in a fresh, isolated interpreter
(``-I``): what a process has imported cannot be undone.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from riverflink.accel.lean_imports import MESSAGES, PACKAGE

pytestmark = pytest.mark.compat

HEAVY = ("apache_beam", "pandas", "numpy")


def _run(code: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_messages_import_without_the_packages_init():
    """Contact: ``pyflink.fn_execution`` has a spec with a loader and a ``__path__``, and
    ``flink_fn_execution_pb2`` imports with the package registered but its ``__init__``
    not run, without Beam, pandas or numpy, and holds the messages a job is built from.
    Relied on by: ``riverflink.accel.lean_imports.import_job_messages``."""
    out = _run(
        f"""
import importlib, importlib.util, json, sys
spec = importlib.util.find_spec({PACKAGE!r})
package = importlib.util.module_from_spec(spec)
sys.modules[{PACKAGE!r}] = package
pb2 = importlib.import_module({MESSAGES!r})
print(json.dumps({{
    "loader": spec.loader is not None,
    "path": bool(spec.submodule_search_locations),
    "init_ran": hasattr(package, "PYFLINK_CYTHON_ENABLED"),
    "heavy": sorted(m for m in {HEAVY!r} if m in sys.modules),
    "keyed_process": pb2.UserDefinedDataStreamFunction.KEYED_PROCESS,
    "state_descriptor": pb2.StateDescriptor.__name__,
}}))
"""
    )
    assert out["loader"] and out["path"]
    assert out["init_ran"] is False
    assert out["heavy"] == []
    assert out["state_descriptor"] == "StateDescriptor"


def test_the_packages_init_runs_later_into_the_same_module():
    """Contact: the package's ``__init__`` can run after its submodule was imported, into
    the module object already registered (``spec.loader.exec_module(package)``), and
    defines ``PYFLINK_CYTHON_ENABLED``; the submodule stays the one imported first.
    Relied on by: ``riverflink.accel.lean_imports._deferred_package``."""
    out = _run(
        f"""
import importlib, importlib.util, json, sys
spec = importlib.util.find_spec({PACKAGE!r})
package = importlib.util.module_from_spec(spec)
sys.modules[{PACKAGE!r}] = package
pb2 = importlib.import_module({MESSAGES!r})
spec.loader.exec_module(package)
from pyflink.fn_execution import coders
print(json.dumps({{
    "same_package": sys.modules[{PACKAGE!r}] is package,
    "same_messages": package.flink_fn_execution_pb2 is pb2,
    "cython": package.PYFLINK_CYTHON_ENABLED in (True, False),
    "coders": coders.PickleCoder.__name__,
}}))
"""
    )
    assert out == {
        "same_package": True,
        "same_messages": True,
        "cython": True,
        "coders": "PickleCoder",
    }


def test_pyflinks_client_modules_leave_the_package_for_later():
    """Contact: the PyFlink modules a local run's client imports (``pyflink.datastream``,
    ``pyflink.common``, ``pyflink.java_gateway``, ``pyflink.util.java_utils``, the file
    connectors, ``pyflink.table``) import ``pyflink.fn_execution`` only inside functions,
    so the lean package is still in time when the client asks for the messages (the JVM's
    thread imports them meanwhile, ``riverflink.runtime.local._environment``).
    Relied on by: ``riverflink.accel.lean_imports`` (a package already imported is left as is:
    no accelerator)."""
    out = _run(
        f"""
import json, sys
import pyflink.common, pyflink.datastream, pyflink.java_gateway, pyflink.util.java_utils
import pyflink.datastream.connectors.file_system, pyflink.datastream.state, pyflink.table
print(json.dumps({{"imported": {PACKAGE!r} in sys.modules}}))
"""
    )
    assert out == {"imported": False}
