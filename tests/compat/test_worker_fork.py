"""How Flink starts a Python worker, as ``jobs/accel/worker_fork.py`` relies on it.

Switch: ``RIVERFLINK_FORK``. Flink's worker command (``python.executable``) becomes a
launcher that hands ``-m pyflink.fn_execution.beam.beam_boot ARGS`` to a warm process,
which forks and runs that module in the fork; anything else runs the real interpreter.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import subprocess
import sys

import pytest

from riverflink.accel.worker_fork import (
    LAUNCHER,
    RUNNER_DIR_ENV,
    SOCKET_ENV,
    WORKER_MODULE,
    _runner_dir,
)

pytestmark = pytest.mark.compat

#: What ``riverflink.accel.worker_fork._preload`` imports into the warm process.
PRELOADED = (
    "pyflink.fn_execution.beam.beam_boot",
    "pyflink.fn_execution.beam.beam_operations",
    "pyflink.fn_execution.beam.beam_sdk_worker_main",
    "pyflink.fn_execution.datastream.process.operations",
)


def _launcher(directory, python: str = sys.executable) -> str:
    """riverflink's launcher, as ``Zygote.start`` writes it."""
    path = directory / "python"
    path.write_text(LAUNCHER.format(python=python, env=SOCKET_ENV, module=WORKER_MODULE))
    path.chmod(0o700)
    return str(path)


def test_flink_finds_its_runner_script_through_the_launcher(gateway, pyflink_home, tmp_path):
    """Contact: Flink's ``PythonEnvironmentManagerUtils.getPythonUdfRunnerScript`` runs
    ``python.executable -c ...`` (here riverflink's launcher, which hands that to the
    real interpreter) to find the runner script: the installed
    ``pyflink/bin/pyflink-udf-runner.sh``.
    Relied on by: ``riverflink.accel.worker_fork`` (``LAUNCHER``'s pass-through)."""
    utils = gateway.jvm.org.apache.flink.python.util.PythonEnvironmentManagerUtils
    env = gateway.jvm.java.util.HashMap()  # no PYFLINK_UDF_RUNNER_DIR: Flink asks Python
    script = utils.getPythonUdfRunnerScript(_launcher(tmp_path), env)
    assert script == str(pyflink_home / "bin" / "pyflink-udf-runner.sh")


def test_flink_takes_the_runner_dir_from_the_environment_without_asking_python(
    gateway, pyflink_home, tmp_path
):
    """Contact: ``getPythonUdfRunnerScript`` reads ``PYFLINK_UDF_RUNNER_DIR`` from the
    worker's environment (the JVM's, plus Flink's additions) before it asks
    ``python.executable``; here that executable does not exist, so only the variable
    can answer, and riverflink's answer is the one Flink's question would get.
    Relied on by: ``riverflink.accel.worker_fork`` (``RUNNER_DIR_ENV``, ``_runner_dir``)."""
    utils = gateway.jvm.org.apache.flink.python.util.PythonEnvironmentManagerUtils
    env = gateway.jvm.java.util.HashMap()
    env.put(RUNNER_DIR_ENV, _runner_dir())
    script = utils.getPythonUdfRunnerScript(str(tmp_path / "no-such-python"), env)
    assert script == str(pyflink_home / "bin" / "pyflink-udf-runner.sh")


def test_the_runner_script_runs_the_worker_module_with_dash_m(pyflink_home, tmp_path):
    """Contact: ``pyflink/bin/pyflink-udf-runner.sh`` runs ``${python} -m
    pyflink.fn_execution.beam.beam_boot ARGS``, ``python`` being Flink's
    ``python.executable``: the launcher forks a warm worker only for
    ``sys.argv[1:3] == ["-m", WORKER_MODULE]``.
    Relied on by: ``riverflink.accel.worker_fork`` (``WORKER_MODULE``, ``LAUNCHER``)."""
    probe = tmp_path / "probe-python"
    probe.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    probe.chmod(0o700)
    env = dict(os.environ, python=str(probe), BOOT_LOG_DIR=str(tmp_path))
    env.pop("_PYTHON_WORKING_DIR", None)
    env.pop("FLINK_TESTING", None)
    args = ["--id=1-1", "--provision_endpoint=localhost:1", "--semi_persist_dir=/tmp"]
    done = subprocess.run(
        ["bash", str(pyflink_home / "bin" / "pyflink-udf-runner.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == ["-m", WORKER_MODULE, *args]


def test_the_worker_module_runs_the_sdk_harness_in_its_own_process():
    """Contact: ``beam_boot`` run as ``__main__`` (``runpy.run_module`` in the fork)
    starts Beam's SDK harness in the same process (``beam_sdk_worker_main.main()``), not
    in a new interpreter: the modules imported before the fork are the worker's.
    Relied on by: ``riverflink.accel.worker_fork`` (``_become_worker``, ``_preload``)."""
    boot = importlib.import_module(WORKER_MODULE)
    tree = ast.parse(inspect.getsource(boot))
    main = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
    ]
    assert len(main) == 1
    calls = {ast.unparse(n.func) for n in ast.walk(main[0]) if isinstance(n, ast.Call)}
    assert "beam_sdk_worker_main.main" in calls
    spawns = {
        call
        for call in calls
        if call in ("call", "check_call", "run", "Popen")
        or call.startswith(("subprocess.", "os.exec", "os.spawn", "os.system"))
    }
    assert not spawns


@pytest.mark.parametrize("module", PRELOADED)
def test_the_preloaded_modules_exist(module):
    """Contact: the PyFlink modules a worker imports before its first record.
    Relied on by: ``riverflink.accel.worker_fork._preload`` (a missing one fails the warm
    process: workers then start cold)."""
    assert importlib.import_module(module).__name__ == module
