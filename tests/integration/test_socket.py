"""The socket source: the job connects as a client and finishes when the peer closes."""

from __future__ import annotations

import json
import subprocess
import threading

from tests.integration.conftest import (
    SocketFeed,
    assert_like_river,
    drifting_stream,
    line_server,
    listening_addresses,
    on_loopback,
    read_output,
    run_ok,
    session_pids,
    stdout_output,
)


def serve(*payloads: bytes):
    """A line server on 127.0.0.1 that sends each payload to a connection of its own, in
    chunks (lines split across them), then closes it; returns (port, thread)."""
    server = line_server()

    def send():
        with server:
            for payload in payloads:
                conn, _ = server.accept()
                with conn:
                    for start in range(0, len(payload), 4096):
                        conn.sendall(payload[start : start + 4096])

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_socket_feed_to_stdout_matches_river(tmp_path):
    records = drifting_stream(2000, keys=("a", "b", "ü-key"), seed=5, drift_key="b")
    payload = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)
    payload += b'{"key": "a", "f0": 1}\xff\n\n{"broken"\n'
    port, thread = serve(payload)

    result = run_ok("--source", f"socket://127.0.0.1:{port}", "--output", "-", "--parallelism", "2")
    thread.join(timeout=5)

    out = stdout_output(result.stdout)
    assert_like_river(out, records)
    errors = sorted(r["error"].split(":")[0] for r in out["rejected"])
    assert errors == ["invalid JSON", "invalid UTF-8 at byte 21"]


def test_socket_retries_reconnect_after_the_peer_closes(tmp_path):
    """Each connection's last line has no line break: Flink's own socket source glued it
    to the next connection's first line, and both were rejected as one invalid line."""
    records = drifting_stream(900, seed=8)
    halves = [records[:400], records[400:]]
    breaks = [b"\n", b"\r\n"]
    payloads = [b.join(json.dumps(r).encode() for r in half) for half, b in zip(halves, breaks)]
    port, thread = serve(*payloads)  # it reconnects after the close
    run_ok(
        "--source",
        f"socket://127.0.0.1:{port}",
        "--socket-retries",
        "1",
        "--output",
        str(tmp_path / "out"),
    )
    thread.join(timeout=5)
    assert_like_river(read_output(tmp_path / "out"), records, kinds=["predictions"])
    assert not (tmp_path / "out" / "rejected").exists()


def test_a_running_job_listens_on_localhost_only():
    """Flink's Python operators serve their workers on free ports, and Flink binds those to
    every interface; riverflink's agent keeps them, like the rest of the run, on localhost."""
    records = drifting_stream(300, seed=9)
    with SocketFeed("--quiet", stderr=subprocess.PIPE) as feed:
        feed.send(records[:1])
        feed.read_until(lambda rows: len(rows) == 1)  # its prediction: the workers are connected
        addresses = listening_addresses(session_pids(feed.proc.pid))
        feed.send(records[1:])
        feed.finish()
    assert len(addresses) >= 6, addresses  # the REST API, py4j, the workers' five services
    assert [a for a in addresses if not on_loopback(a)] == [], addresses
    assert "listen on every" not in feed.stderr
