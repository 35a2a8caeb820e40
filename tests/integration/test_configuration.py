"""The Flink configuration a job gets from its settings (a JVM, no job)."""

from __future__ import annotations

import json

from riverflink.config.settings import PROFILES, JobSettings
from riverflink.runtime.configuration import flink_configuration


def _bundle(conf) -> tuple:
    return (
        conf.get_string("python.fn-execution.bundle.size", ""),
        conf.get_string("python.fn-execution.bundle.time", ""),
    )


def test_checkpointed_throughput_runs_bound_python_bundles(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"key": "a", "x": 1, "y": True}) + "\n")
    plain = JobSettings(source=str(source), output=str(tmp_path / "out"))
    checkpointed = plain.with_changes(checkpoint_dir=str(tmp_path / "ckpt"))
    throughput = PROFILES["throughput"]

    assert _bundle(flink_configuration(plain)) == (
        str(throughput["bundle_size"]),
        str(throughput["bundle_ms"]),
    )
    assert _bundle(flink_configuration(checkpointed)) == (
        str(throughput["checkpointed_bundle_size"]),
        str(throughput["bundle_ms"]),
    )
    latency = checkpointed.with_changes(profile="latency")
    assert _bundle(flink_configuration(latency))[0] == str(PROFILES["latency"]["bundle_size"])
