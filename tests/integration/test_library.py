"""riverflink as a library: ``riverflink.learn`` in a program of one's own, on the real
mini-cluster, and ``riverflink.replay`` against the Flink job it stands for."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import riverflink
from tests.integration.conftest import (
    REPO,
    assert_like_river,
    by_key,
    drifting_stream,
    run_job,
    write_jsonl,
)
from tests.streams import delayed_label_stream

pytestmark = pytest.mark.integration

CLASSIFIER = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"


def readme_example() -> str:
    """The program of the README's section on your own PyFlink program."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Your own PyFlink job") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_program(path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python my_job.py ARGS``, as its author starts it: no riverflink code on the path
    but the installed package, and no virtual environment on the PATH."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, str(path), *args],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_the_readme_program_at_parallelism_2_equals_plain_river(tmp_path):
    keys = ("sensor-1", "sensor-2", "ünïcode-€", "4")
    records = drifting_stream(3000, keys=keys, seed=11, drift_key="sensor-1")
    records[5]["key"] = 4  # a number key is a key of its own, apart from "4"
    source = write_jsonl(tmp_path / "records.jsonl", records, extra_lines=["not json"])
    program = tmp_path / "my_job.py"
    program.write_text(readme_example(), encoding="utf-8")
    assert "set_parallelism(2)" in program.read_text()

    printed = run_program(program, str(source)).stdout
    out: dict = {"predictions": [], "alerts": [], "rejected": []}
    for line in printed.splitlines():
        match = re.fullmatch(r"(prediction|alert|rejected)(?::\d+)?> (\{.*\})", line)
        if match:  # one JSON object per element, each with the fields riverflink writes
            out[match.group(1) + ("s" if match.group(1) != "rejected" else "")].append(
                json.loads(match.group(2))
            )
    assert len(out["predictions"]) == len(records)
    want = assert_like_river(out, records)
    assert want["alerts"], "the stream drifts: plain River raises alerts"
    assert [r["raw"] for r in out["rejected"]] == ["not json"]


def test_replay_equals_the_flink_job_with_delayed_labels_and_rejections(tmp_path):
    records = delayed_label_stream(2500, keys=("a", "b", "c", "d"), max_delay=30)
    bad = ['{"key": "a", "f0": "high"}', "[1, 2]", '{"key": "b", "f0": NaN}']
    source = write_jsonl(tmp_path / "in.jsonl", records, extra_lines=bad)
    job = run_job(source, tmp_path / "out", "--parallelism", "2", "--model", CLASSIFIER)

    replayed: dict = {"predictions": [], "alerts": [], "outcomes": [], "rejected": []}
    names = {"prediction": "predictions", "alert": "alerts", "outcome": "outcomes"}
    lines = source.read_bytes().splitlines()
    for row in riverflink.replay(lines, model=CLASSIFIER):
        replayed[names.get(row.pop("kind"), "rejected")].append(row)

    assert by_key(job.out["predictions"]) == by_key(replayed["predictions"])
    assert by_key(job.out["alerts"]) == by_key(replayed["alerts"]) and replayed["alerts"]

    def without_delay(rows):  # processing time between features and label
        return sorted(
            ({k: v for k, v in r.items() if k != "delay_s"} for r in rows),
            key=lambda r: (r["key"], r["id"]),
        )

    assert without_delay(job.out["outcomes"]) == without_delay(replayed["outcomes"])
    assert len(replayed["outcomes"]) > 1000

    def rejections(rows):
        return sorted((r["raw"], r["error"]) for r in rows)

    assert rejections(job.out["rejected"]) == rejections(replayed["rejected"])
    assert len(replayed["rejected"]) == 10 + len(bad)  # orphan and twice-given labels
