"""--state-ttl: a key idle for longer than the TTL starts over with a fresh model."""

from __future__ import annotations

import time

from tests.integration.conftest import SocketFeed


def record(key, i):
    return {"key": key, "id": i, "f0": i % 3, "y": i % 2 == 0}


def test_idle_key_expires_and_returns_fresh():
    def seen(key, count):
        return lambda rows: sum(r["key"] == key for r in rows) >= count

    with SocketFeed("--state-ttl", "3") as feed:
        feed.send([record("idle", i) for i in range(5)])
        feed.send([record("busy", i) for i in range(5)])
        feed.read_until(seen("idle", 5))  # the job is running: from now on time counts
        for step in range(12):  # "busy" is seen every 0.5 s, "idle" not for 6 s
            time.sleep(0.5)
            feed.send([record("busy", 100 + step)])
        feed.read_until(seen("busy", 17))
        feed.send([record("idle", 200 + i) for i in range(3)])
        rows = feed.finish()
    n = {(r["key"], r["id"]): r["n"] for r in rows if r["kind"] == "prediction"}
    assert [n["idle", i] for i in range(5)] == [0, 1, 2, 3, 4]
    assert [n["idle", 200 + i] for i in range(3)] == [0, 1, 2], "expired: a fresh model"
    assert [n["busy", 100 + s] for s in range(12)] == list(range(5, 17)), "kept while active"
