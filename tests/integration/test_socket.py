"""The socket source: the job connects as a client and finishes when the peer closes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

from river import drift

from tests.integration.conftest import (
    REPO,
    by_key,
    drifting_stream,
    jsonable,
    listening_addresses,
    on_loopback,
    read_lines,
    run_cli,
    session_pids,
)
from tests.integration.test_parity import default_model
from tests.reference import reference_predictions


def serve_once(payload: bytes):
    """A one-shot line server on 127.0.0.1; returns (port, thread)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(120)

    def send():
        with server:
            conn, _ = server.accept()
            with conn:
                for start in range(0, len(payload), 4096):  # in chunks, lines split across
                    conn.sendall(payload[start : start + 4096])

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_socket_feed_to_stdout_matches_river(tmp_path):
    records = drifting_stream(2000, keys=("a", "b", "ü-key"), seed=5, drift_key="b")
    payload = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    payload += b'{"key": "a", "f0": 1}\xff\n\n{"broken"\n'
    port, thread = serve_once(payload)

    result = run_cli(
        "--source", f"socket://127.0.0.1:{port}", "--output", "-", "--parallelism", "2"
    )
    thread.join(timeout=5)
    assert result.returncode == 0, result.stderr

    rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    kinds = {}
    for row in rows:
        kinds.setdefault(row.pop("kind"), []).append(row)
    expected, expected_alerts = reference_predictions(
        records, default_model, make_detector=drift.ADWIN, detector_spec="drift.ADWIN()"
    )
    assert by_key(kinds["prediction"]) == by_key(jsonable(expected))
    assert by_key(kinds.get("alert", [])) == by_key(jsonable(expected_alerts))
    errors = sorted(r["error"].split(":")[0] for r in kinds["rejected"])
    assert errors == ["invalid JSON", "invalid UTF-8 at byte 21"]


def test_socket_retries_reconnect_after_the_peer_closes(tmp_path):
    """Each connection's last line has no line break: Flink's own socket source glued it
    to the next connection's first line, and both were rejected as one invalid line."""
    records = drifting_stream(900, seed=8)
    halves = [records[:400], records[400:]]
    breaks = [b"\n", b"\r\n"]
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(120)

    def serve_twice():
        with server:
            for half, line_break in zip(halves, breaks):  # it reconnects after the close
                conn, _ = server.accept()
                with conn:
                    conn.sendall(line_break.join(json.dumps(r).encode() for r in half))

    thread = threading.Thread(target=serve_twice, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    result = run_cli(
        "--source",
        f"socket://127.0.0.1:{port}",
        "--socket-retries",
        "1",
        "--output",
        str(tmp_path / "out"),
    )
    thread.join(timeout=5)
    assert result.returncode == 0, result.stderr
    rows = read_lines(tmp_path / "out" / "predictions")
    expected, _ = reference_predictions(records, default_model)
    assert by_key(rows) == by_key(jsonable(expected))
    assert not (tmp_path / "out" / "rejected").exists()


def test_a_running_job_listens_on_localhost_only():
    """Flink's Python operators serve their workers on free ports, and Flink binds those to
    every interface; riverflink's agent keeps them, like the rest of the run, on localhost."""
    records = drifting_stream(300, seed=9)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(120)
    command = [sys.executable, "-m", "jobs.online_learning", "--output", "-", "--quiet"]
    command += ["--source", f"socket://127.0.0.1:{server.getsockname()[1]}"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(json.dumps(records[0]).encode() + b"\n")
                assert run.stdout.readline()  # its prediction: the workers are connected
                addresses = listening_addresses(session_pids(run.pid))
                conn.sendall(b"".join(json.dumps(r).encode() + b"\n" for r in records[1:]))
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, stderr
    assert len(addresses) >= 6, addresses  # the REST API, py4j, the workers' five services
    assert [a for a in addresses if not on_loopback(a)] == [], addresses
    assert b"listen on every" not in stderr
