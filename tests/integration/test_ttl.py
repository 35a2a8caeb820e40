"""--state-ttl: a key idle for longer than the TTL starts over with a fresh model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from tests.integration.conftest import REPO


def record(key, i):
    return json.dumps({"key": key, "id": i, "f0": i % 3, "y": i % 2 == 0}).encode() + b"\n"


def test_idle_key_expires_and_returns_fresh():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(120)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jobs.online_learning",
            "--output",
            "-",
            "--state-ttl",
            "3",
            "--source",
            f"socket://127.0.0.1:{server.getsockname()[1]}",
        ],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    rows = []

    def read_until(key, count):
        while sum(r["key"] == key for r in rows) < count:
            line = proc.stdout.readline()
            assert line, "the job ended early"
            rows.append(json.loads(line))

    try:
        conn, _ = server.accept()
        conn.sendall(b"".join(record("idle", i) for i in range(5)))
        conn.sendall(b"".join(record("busy", i) for i in range(5)))
        read_until("idle", 5)  # the job is running: from now on time counts
        for step in range(12):  # "busy" is seen every 0.5 s, "idle" not for 6 s
            time.sleep(0.5)
            conn.sendall(record("busy", 100 + step))
        read_until("busy", 17)
        conn.sendall(b"".join(record("idle", 200 + i) for i in range(3)))
        conn.close()
        rest, _ = proc.communicate(timeout=120)
        rows.extend(json.loads(line) for line in rest.splitlines())
    finally:
        server.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    n = {(r["key"], r["id"]): r["n"] for r in rows if r["kind"] == "prediction"}
    assert [n["idle", i] for i in range(5)] == [0, 1, 2, 3, 4]
    assert [n["idle", 200 + i] for i in range(3)] == [0, 1, 2], "expired: a fresh model"
    assert [n["busy", 100 + s] for s in range(12)] == list(range(5, 17)), "kept while active"
