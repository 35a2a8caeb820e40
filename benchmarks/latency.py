"""Latency: how long from a line sent on a socket to its prediction printed on stdout.

    python -m benchmarks.latency [--rate 2000] [--seconds 20] [--profile latency]

Starts ``riverflink run --source socket://127.0.0.1:PORT --output -`` (default model
and drift detector), feeds it
generated records at a steady rate from one thread, and timestamps every
prediction line as it appears on the job's stdout. Latency is receive time minus
send time per record id; the first seconds (start-up, JIT warm-up) are left out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _records(keys: int, seed: int = 3):
    rng = random.Random(seed)
    weights = [[rng.uniform(-1, 1) for _ in range(10)] for _ in range(keys)]
    i = 0
    while True:
        k = rng.randrange(keys)
        x = [round(rng.gauss(0, 1), 5) for _ in range(10)]
        y = sum(w * v for w, v in zip(weights[k], x)) > 0
        fields = {f"x{j}": v for j, v in enumerate(x)}
        yield i, json.dumps({"key": f"k{k}", "id": i, **fields, "y": y}) + "\n"
        i += 1


def measure(
    *, rate: int, seconds: float, profile: str, keys: int = 1000, warmup: float = 2.0
) -> dict:
    """Run one feed; return latency percentiles in milliseconds."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "riverflink.cli",
        "run",
        "--source",
        f"socket://127.0.0.1:{port}",
        "--output",
        "-",
        "--profile",
        profile,
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    job = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    received: dict = {}

    def read():
        for line in job.stdout:
            now = time.perf_counter()
            if '"prediction"' in line:
                try:
                    received[json.loads(line)["id"]] = now
                except (ValueError, KeyError):
                    pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    server.settimeout(120)
    conn, _ = server.accept()
    sent: dict = {}
    records = _records(keys)
    # Wait until the job answers (its Python workers start after the socket connects),
    # so what is measured is the steady state, not the start-up backlog.
    deadline = time.perf_counter() + 120
    while not received:
        if time.perf_counter() > deadline:
            raise SystemExit("the job printed no prediction within 120 s")
        conn.sendall(next(records)[1].encode())
        time.sleep(0.1)
    first = next(records)[0]
    started = time.perf_counter()
    total = int(rate * seconds)
    for i, line in records:
        if i - first >= total:
            break
        due = started + (i - first) / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent[i] = time.perf_counter()
        conn.sendall(line.encode())
    time.sleep(2)  # let the tail arrive before the source ends
    conn.close()
    server.close()
    job.wait(timeout=120)
    reader.join(timeout=10)
    measured = [
        (received[i] - sent[i]) * 1000
        for i in sent
        if i in received and sent[i] - started >= warmup
    ]
    lost = sum(1 for i in sent if i not in received)
    if not measured:
        raise SystemExit("no predictions came back")
    measured.sort()
    return {
        "profile": profile,
        "sent": len(sent),
        "received": len(sent) - lost,
        "median_ms": statistics.median(measured),
        "p99_ms": measured[int(0.99 * (len(measured) - 1))],
        "max_ms": measured[-1],
    }


def report(result: dict) -> None:
    print(
        f"latency, --profile {result['profile']:<10} {result['received']:>7,} of "
        f"{result['sent']:,} predictions; median {result['median_ms']:.0f} ms, "
        f"p99 {result['p99_ms']:.0f} ms, max {result['max_ms']:.0f} ms",
        flush=True,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=2000, help="records per second (2000)")
    parser.add_argument("--seconds", type=float, default=20.0, help="feed duration (20)")
    parser.add_argument("--profile", action="append", choices=["latency", "throughput"])
    args = parser.parse_args(argv)
    print(f"socket feed at {args.rate:,} records/s for {args.seconds:.0f} s, --output -")
    for profile in args.profile or ["latency", "throughput"]:
        report(measure(rate=args.rate, seconds=args.seconds, profile=profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
