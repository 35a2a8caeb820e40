"""The client's lean import of PyFlink's job-graph messages (jobs/accel/lean_imports.py).

Each case runs in a fresh interpreter: what a process has imported cannot be undone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_messages_come_without_beam():
    out = _run(
        "import sys\n"
        "from riverflink.accel.lean_imports import import_job_messages\n"
        "pb2 = import_job_messages()\n"
        "from pyflink.fn_execution import flink_fn_execution_pb2\n"
        "assert flink_fn_execution_pb2 is pb2\n"
        "print(pb2.UserDefinedDataStreamFunction.__name__,"
        " sorted(m for m in ('apache_beam', 'pandas', 'numpy') if m in sys.modules))"
    )
    assert out == "UserDefinedDataStreamFunction []"


def test_a_job_builds_with_the_lean_package():
    # What build_job asks of the package: a Python operator's messages and state descriptors.
    out = _run(
        "import sys\n"
        "from riverflink.accel.lean_imports import import_job_messages\n"
        "import_job_messages()\n"
        "from pyflink.datastream.state import MapStateDescriptor\n"
        "from pyflink.common import Types\n"
        "d = MapStateDescriptor('m', Types.STRING(), Types.PICKLED_BYTE_ARRAY())\n"
        "print(d.get_name(), 'apache_beam' in sys.modules)"
    )
    assert out == "m False"


def test_the_rest_of_the_package_loads_on_first_use():
    out = _run(
        "from riverflink.accel.lean_imports import import_job_messages\n"
        "import_job_messages()\n"
        "import pyflink.fn_execution as fe\n"
        "enabled = fe.PYFLINK_CYTHON_ENABLED\n"  # defined by the real __init__ only
        "from pyflink.fn_execution import coders\n"
        "print(enabled in (True, False), coders.PickleCoder.__name__)\n"
        "try:\n"
        "    fe.no_such_name\n"
        "except AttributeError as exc:\n"
        "    print(exc)"
    )
    assert out.splitlines() == [
        "True PickleCoder",
        "module 'pyflink.fn_execution' has no attribute 'no_such_name'",
    ]


def test_a_package_already_imported_is_left_as_it_is():
    out = _run(
        "import pyflink.fn_execution as fe\n"
        "from riverflink.accel.lean_imports import import_job_messages\n"
        "import_job_messages()\n"
        "import sys\n"
        "print(sys.modules['pyflink.fn_execution'] is fe, 'apache_beam' in sys.modules)"
    )
    assert out == "True True"
