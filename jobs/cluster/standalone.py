"""A local standalone Flink cluster: one JobManager, M TaskManagers, on loopback.

    riverflink cluster start --slots 2 --taskmanagers 1
    riverflink cluster stop

The ``apache-flink`` wheel carries Flink's own launch scripts (``bin/jobmanager.sh``,
``bin/taskmanager.sh``); this module runs them with a configuration generated
from ``flink-conf/config.yaml`` and keeps everything it creates (configuration,
logs, pid files) in one directory, the per-user state directory
(``~/.local/state/riverflink/cluster/``, see :func:`riverflink.config.paths.state_dir`)
by default. It stops only the processes it started, by the pids in that
directory.

The daemons run with that directory as their working directory and without
``PYTHONPATH``, so a job's Python code reaches them only when it is shipped
with the job (``riverflink submit`` does), as on a real cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from riverflink.config.flink_conf import conf_dir, flink_settings
from riverflink.config.paths import state_dir

__all__ = [
    "ClusterError",
    "default_cluster_dir",
    "default_jobmanager",
    "flink_home",
    "rest_get",
    "start_cluster",
    "stop_cluster",
]

IDENT = "riverflink"  # FLINK_IDENT_STRING: names the pid and log files
DAEMONS = ("taskexecutor", "standalonesession")  # stop order: TaskManagers first


class ClusterError(RuntimeError):
    """The cluster could not be started or stopped; the message says why."""


def default_cluster_dir() -> Path:
    return state_dir() / "cluster"


def flink_home() -> Path:
    """The Flink distribution inside the installed ``apache-flink`` wheel."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def default_jobmanager() -> str:
    """The REST address of the cluster that ``riverflink cluster start`` runs, if one runs
    (its ``--port``), else ``rest.address:rest.port`` of ``flink-conf/config.yaml``
    (localhost:8081)."""
    conf = flink_settings()
    directory = default_cluster_dir()
    generated = directory / "conf" / "config.yaml"
    if generated.is_file() and any(running_pids(directory).values()):
        with open(generated, encoding="utf-8") as fh:
            conf = {**conf, **(yaml.safe_load(fh) or {})}
    return f"{conf.get('rest.address', 'localhost')}:{conf.get('rest.port', '8081')}"


def rest_get(jobmanager: str, path: str, timeout: float = 5.0):
    """GET ``http://JOBMANAGER/PATH`` of Flink's REST API, as parsed JSON."""
    with urllib.request.urlopen(f"http://{jobmanager}{path}", timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def _daemon_env(directory: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        FLINK_HOME=str(flink_home()),
        FLINK_CONF_DIR=str(directory / "conf"),
        FLINK_LOG_DIR=str(directory / "log"),
        FLINK_PID_DIR=str(directory / "pid"),
        FLINK_IDENT_STRING=IDENT,
    )
    return env


def _pid_file(directory: Path, daemon: str) -> Path:
    return directory / "pid" / f"flink-{IDENT}-{daemon}.pid"


def _is_ours(pid: int, directory: Path) -> bool:
    """Alive, and a Flink daemon started with this directory's configuration."""
    if not _alive(pid):
        return False
    try:
        command = (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except FileNotFoundError:  # gone, or no /proc (macOS)
        command = subprocess.run(
            ["ps", "-ww", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    return f"--configDir {directory / 'conf'}" in command


def running_pids(directory: Path) -> dict[str, list[int]]:
    """The daemons of the cluster in ``directory`` that are still running."""
    out: dict[str, list[int]] = {}
    for daemon in DAEMONS:
        path = _pid_file(directory, daemon)
        if path.exists():
            pids = [int(p) for p in path.read_text().split() if p.strip().isdigit()]
            out[daemon] = [p for p in pids if _is_ours(p, directory)]
    return out


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def write_conf(directory: Path, *, slots: int, rest_port: int, rpc_port: int) -> Path:
    """``flink-conf/`` plus this cluster's slots, ports and Python, into ``directory/conf``."""
    conf = dict(flink_settings())
    conf.update(
        {
            "taskmanager.numberOfTaskSlots": slots,
            "rest.address": "localhost",
            "rest.bind-address": "localhost",
            "rest.port": rest_port,
            "jobmanager.rpc.address": "localhost",
            "jobmanager.rpc.port": rpc_port,
            "jobmanager.bind-host": "localhost",
            "taskmanager.bind-host": "localhost",
            "taskmanager.host": "localhost",
            # The Python that runs riverflink has River; the TaskManagers' workers use it too.
            "python.executable": sys.executable,
        }
    )
    from riverflink.accel import enabled
    from riverflink.pipeline.router_jar import router_jar

    jar = router_jar()
    if jar is not None and enabled("loopback"):
        # The TaskManagers' Python workers are served on localhost only (jobs/accel/loopback.py).
        opts = str(conf.get("env.java.opts.taskmanager", ""))
        conf["env.java.opts.taskmanager"] = f"{opts} -javaagent:{jar}=transform".strip()
    target = directory / "conf"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / "config.yaml", "w", encoding="utf-8") as fh:
        fh.write("# Generated by `riverflink cluster start` from flink-conf/config.yaml.\n")
        yaml.safe_dump(conf, fh, sort_keys=True, width=1_000_000)
    for name in ("log4j.properties", "log4j-cli.properties"):
        source = conf_dir() / name
        if not source.exists():
            source = flink_home() / "conf" / name
        shutil.copyfile(source, target / name)
    return target


def start_cluster(
    *,
    slots: int = 2,
    taskmanagers: int = 1,
    rest_port: int | None = None,
    rpc_port: int | None = None,
    directory: Path | None = None,
    timeout: float = 120.0,
) -> str:
    """Start the daemons; return the REST address once every slot is registered."""
    if slots < 1 or taskmanagers < 1:
        raise ClusterError("--slots and --taskmanagers must be at least 1")
    directory = Path(directory or default_cluster_dir()).resolve()
    settings = flink_settings()
    rest_port = rest_port or int(settings.get("rest.port", 8081))
    rpc_port = rpc_port or int(settings.get("jobmanager.rpc.port", 6123))
    running = {d: p for d, p in running_pids(directory).items() if p}
    if running:
        pids = ", ".join(str(p) for ps in running.values() for p in ps)
        raise ClusterError(
            f"a riverflink cluster is already running from {directory} (pids {pids}); "
            "stop it with `riverflink cluster stop` first"
        )
    for flag, port in (("--port", rest_port), ("--rpc-port", rpc_port)):
        if _port_taken(port):
            raise ClusterError(
                f"port {port} on localhost is in use (another Flink cluster?); stop what "
                f"listens there or pick another port with {flag}"
            )
    shutil.rmtree(directory / "pid", ignore_errors=True)  # stale pids of a dead cluster
    for sub in ("log", "pid"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    write_conf(directory, slots=slots, rest_port=rest_port, rpc_port=rpc_port)
    env = _daemon_env(directory)
    bin_dir = flink_home() / "bin"
    scripts = [bin_dir / "jobmanager.sh"] + [bin_dir / "taskmanager.sh"] * taskmanagers
    try:
        for script in scripts:
            result = subprocess.run(
                ["bash", str(script), "start"],
                cwd=directory,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise ClusterError(
                    f"{script.name} start failed: {(result.stdout + result.stderr).strip()}"
                )
        jobmanager = f"localhost:{rest_port}"
        _wait_for_slots(jobmanager, directory, taskmanagers, slots * taskmanagers, timeout)
    except BaseException:
        stop_cluster(directory)
        raise
    return jobmanager


def _wait_for_slots(
    jobmanager: str, directory: Path, taskmanagers: int, slots: int, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        started = [p for pids in running_pids(directory).values() for p in pids]
        if len(started) < taskmanagers + 1:
            raise ClusterError(
                f"a Flink daemon exited during start-up; see the logs in {directory / 'log'}"
            )
        try:
            seen = rest_get(jobmanager, "/overview", timeout=2.0)
            if seen.get("slots-total", 0) >= slots and seen.get("taskmanagers", 0) >= taskmanagers:
                return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.5)
    raise ClusterError(
        f"the cluster did not register {slots} slots within {timeout:.0f} s (last overview: "
        f"{seen}); see the logs in {directory / 'log'}"
    )


def stop_cluster(directory: Path | None = None, timeout: float = 30.0) -> list[int]:
    """Stop the daemons started from ``directory``, by their pids; return the pids stopped."""
    directory = Path(directory or default_cluster_dir()).resolve()
    stopped: list[int] = []
    for daemon in DAEMONS:
        pids = running_pids(directory).get(daemon, [])
        # A TaskManager's Python workers can outlive it: note them before it goes.
        workers = [child for pid in pids for child in _descendants(pid)]
        for pid in pids:
            _signal(pid, signal.SIGTERM)
        if not _wait_gone(pids, timeout):
            for pid in pids:
                _signal(pid, signal.SIGKILL)
            _wait_gone(pids, 10.0)
        for pid in workers:
            _signal(pid, signal.SIGKILL)
        stopped.extend(pids)
        _pid_file(directory, daemon).unlink(missing_ok=True)
    return stopped


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc (empty where /proc is not available)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    result = subprocess.run(
        ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    )
    state = result.stdout.strip()
    return bool(state) and not state.startswith("Z")


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
