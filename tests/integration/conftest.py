"""Helpers for integration tests: run the real CLI (real mini-cluster), read its output."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def run_cli(
    *args: str, timeout: float = 240, cwd: Path = REPO, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``python -m jobs.online_learning ARGS`` as a user would run it.

    Each run logs Flink to its own directory. A run that outlives ``timeout`` fails the
    test with what it was doing: the JVM's thread dump (``kill -3``) and the log's tail.
    """
    log_dir = Path(tempfile.mkdtemp(prefix="riverflink-flink-log-"))
    env = dict(os.environ, PYTHONPATH=str(REPO), FLINK_LOG_DIR=str(log_dir), **(env or {}))
    command = [sys.executable, "-m", "jobs.online_learning", *args]
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(_hang_report(proc, timeout, log_dir), pytrace=False)
    shutil.rmtree(log_dir, ignore_errors=True)
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def session_pids(session: int) -> list:
    """The processes of the session ``session`` (a run started in a new session)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            pids.append(int(stat.parent.name))
    return pids


def listening_addresses(pids) -> list:
    """The addresses that ``pids`` listen on for TCP connections (Linux ``/proc``)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                addresses.append(_ip_port(fields[1]))
    return addresses


def _ip_port(hex_address: str) -> str:
    """``0100007F:1F90`` (as /proc/net/tcp writes it) -> ``127.0.0.1:8080``."""
    import ipaddress

    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    # each 32-bit word in host order (little-endian on the machines this runs on)
    raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return f"{ip}:{int(port, 16)}"


def on_loopback(address: str) -> bool:
    import ipaddress

    return ipaddress.ip_address(address.rsplit(":", 1)[0]).is_loopback


def _hang_report(proc: subprocess.Popen, timeout: float, log_dir: Path) -> str:
    """Thread dumps of the run's JVMs, then the run killed; what it printed and logged."""
    for pid in session_pids(proc.pid):
        try:
            if Path(f"/proc/{pid}/exe").resolve().name == "java":
                os.kill(pid, signal.SIGQUIT)  # the JVM prints its threads to its stdout
        except OSError:
            pass
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate()
    logs = "".join(
        path.read_text(errors="replace")[-12_000:] for path in sorted(log_dir.glob("*.log"))
    )
    threads = [
        block
        for block in stdout.split("\n\n")
        if any(word in block for word in ("learn per key", "Aggregate", "Source:", "Python"))
    ]
    return "\n".join(
        [
            f"the job ran for over {timeout:.0f} s: {' '.join(proc.args)}",
            "--- stderr",
            stderr[-3000:],
            "--- Flink log (tail)",
            logs[-8000:],
            "--- JVM threads of the operators",
            "\n\n".join(threads)[-12_000:],
        ]
    )


def read_lines(directory: Path) -> list:
    """Committed JSON lines under ``directory`` (in-progress files start with a dot)."""
    out = []
    for part in sorted(Path(directory).glob("part*")):
        with open(part, encoding="utf-8") as fh:
            out.extend(json.loads(line) for line in fh if line.strip())
    return out


def read_output(directory: Path) -> dict:
    return {
        name: read_lines(Path(directory) / name)
        for name in ("predictions", "alerts", "outcomes", "rejected")
    }


def by_key(rows: list) -> list:
    """Order rows per key by n: the job guarantees order per key, not across keys."""
    return sorted(rows, key=lambda r: (json.dumps(r["key"]), r["n"]))


def jsonable(rows: list) -> list:
    """What the reference rows look like after a trip through JSON, as the job's do."""
    return [json.loads(json.dumps(r)) for r in rows]


def drifting_stream(
    n: int = 3000, keys=("a", "b", "c", "d"), *, seed: int = 3, drift_key="a", regression=False
) -> list:
    """Records whose concept flips (or shifts) halfway for ``drift_key``."""
    rng = random.Random(seed)
    weights = {k: [rng.uniform(-2, 2) for _ in range(3)] for k in keys}
    records = []
    for i in range(n):
        key = keys[i % len(keys)]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        score = sum(w * v for w, v in zip(weights[key], x.values()))
        if regression:
            y = score + rng.gauss(0, 0.1) + (25.0 if key == drift_key and i > n // 2 else 0.0)
        else:
            y = score + rng.gauss(0, 0.3) > 0
            if key == drift_key and i > n // 2:
                y = not y
        records.append({"key": key, "id": i, **x, "y": y})
    return records


def write_jsonl(path: Path, records: list, extra_lines=()) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")
    return path
