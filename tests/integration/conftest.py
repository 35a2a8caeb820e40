"""Helpers for integration tests: run the real CLI (real mini-cluster), read its output."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
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
    """``python -m jobs.online_learning ARGS`` as a user would run it."""
    env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "jobs.online_learning", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
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
