"""Models in and out, as a user goes through them: export a savepoint's models, start new
keys from a pretrained model or from exported ones, learn from pseudo-labels. Each step
is compared with a plain River loop."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import pytest
from river import linear_model, optim, preprocessing

import riverflink
from tests.integration.conftest import (
    assert_like_river,
    by_key,
    drifting_stream,
    river_rows,
    run_cli,
    run_job,
    running,
    stop_job,
    wait_for_rows,
    write_jsonl,
)

pytestmark = pytest.mark.integration

KEYS = tuple(f"k{i}" for i in range(6))
PROBES = [{"f0": a, "f1": b, "f2": c} for a, b, c in [(0.5, -1, 2), (-1.5, 0.3, 0), (2, 2, -2)]]


def features(record: dict) -> dict:
    return {k: v for k, v in record.items() if k.startswith("f")}


def plain_models(records: list, start=None) -> dict:
    """Per key, a River model that learned the key's labeled records in order;
    ``start(key)`` gives a key's first model (default: a fresh default model)."""
    models: dict = {}
    for record in records:
        key = record["key"]
        if key not in models:
            models[key] = start(key) if start else default_model()
        models[key].learn_one(features(record), record["y"])
    return models


def default_model():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def export(*args: str, cwd: Path):
    return run_cli("export", *args, module="riverflink", cwd=cwd, timeout=240)


def test_export_then_init_models_and_init_model_carry_on_like_plain_river(tmp_path):
    history = drifting_stream(2400, keys=KEYS, seed=31, drift_key="k2")
    source = write_jsonl(tmp_path / "history.jsonl", history)
    first = run_job(
        source, tmp_path / "out1", "--parallelism", "2", "--savepoint-on-exit", "sp", cwd=tmp_path
    )
    savepoint = first.last_line

    done = export(savepoint, "--output", "exported", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    index = [json.loads(line) for line in (tmp_path / "exported" / "models.jsonl").open()]
    assert [e["key"] for e in index] == sorted(KEYS)
    want = plain_models(history)
    loaded = riverflink.load_models(tmp_path / "exported")
    for entry in index:
        key = entry["key"]
        assert entry["n"] == sum(1 for r in history if r["key"] == key)
        assert (
            entry["model"] == "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
        )
        assert entry["river"] and 0 <= entry["metric"] <= 1
        with open(tmp_path / "exported" / entry["file"], "rb") as fh:
            model = pickle.load(fh)  # River only
        for x in PROBES:
            assert model.predict_proba_one(x) == want[key].predict_proba_one(x)
            assert loaded[key].predict_proba_one(x) == want[key].predict_proba_one(x)

    # model A of transfer learning: one model over the whole history, keys ignored
    model_a = default_model()
    for record in history:
        model_a.learn_one(features(record), record["y"])
    (tmp_path / "a.pkl").write_bytes(pickle.dumps(model_a))
    blob = (tmp_path / "a.pkl").read_bytes()

    new_keys = (*KEYS[:3], "n1", "n2")
    new = drifting_stream(1500, keys=new_keys, seed=32, drift_key="n1")
    write_jsonl(tmp_path / "new.jsonl", new)
    from_init = run_job(
        tmp_path / "new.jsonl",
        tmp_path / "out2",
        "--init-model",
        "a.pkl",
        "--parallelism",
        "2",
        cwd=tmp_path,
    )
    assert_like_river(from_init.out, new, lambda: pickle.loads(blob))

    both = run_job(
        tmp_path / "new.jsonl",
        tmp_path / "out3",
        "--parallelism",
        "2",
        "--init-models",
        "exported",
        "--init-model",
        "a.pkl",
        cwd=tmp_path,
    )
    exported = riverflink.load_models(tmp_path / "exported")
    counts = {e["key"]: e["n"] for e in index}
    models = {k: exported[k] for k in KEYS[:3]}
    seen = {k: counts.get(k, 0) for k in new_keys}
    expected = []
    for record in new:
        key = record["key"]
        model = models.setdefault(key, pickle.loads(blob))
        x = features(record)
        expected.append({"key": key, "n": seen[key], "y_pred": model.predict_one(x)})
        model.learn_one(x, record["y"])
        seen[key] += 1
    got = [{k: r[k] for k in ("key", "n", "y_pred")} for r in both.out["predictions"]]
    assert by_key(got) == by_key(expected)


def test_export_refuses_what_it_cannot_read_and_a_directory_in_use(tmp_path):
    (tmp_path / "not-a-snapshot").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "_metadata").write_bytes(b"\x00" * 64)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("mine")
    for args, message in [
        (["not-a-snapshot", "--output", "e1"], "is not a checkpoint or savepoint"),
        (["foreign", "--output", "e2"], "holds no riverflink models"),
        (["latest", "--output", "e3"], "--checkpoint-dir"),
        (["foreign", "--output", "used"], None),
    ]:
        result = export(*args, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        if message:
            assert message in result.stderr
    assert (tmp_path / "used" / "x").read_text() == "mine"


def test_export_latest_of_a_killed_rocksdb_job_with_state_ttl(tmp_path):
    records = drifting_stream(1200, keys=KEYS, seed=33)
    (tmp_path / "in").mkdir()
    args = (
        "--source",
        str(tmp_path / "in"),
        "--follow",
        "--discovery-interval",
        "0.5",
        "--output",
        str(tmp_path / "out"),
        "--checkpoint-dir",
        str(tmp_path / "ck"),
        "--checkpoint-interval",
        "1",
        "--state-backend",
        "rocksdb",
        "--state-ttl",
        "3600",
    )
    with running(*args) as proc:
        write_jsonl(tmp_path / "one.jsonl", records).rename(tmp_path / "in" / "one.jsonl")
        wait_for_rows(tmp_path / "out" / "predictions", len(records), proc)
        stop_job(proc)  # kill -9: the retained checkpoint holds every model
    done = export(
        "latest", "--checkpoint-dir", "ck", "--output", "e", "--keys", "k1,k4", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    models = riverflink.load_models(tmp_path / "e")
    assert sorted(models) == ["k1", "k4"]
    want = plain_models(records)
    for key, model in models.items():
        for x in PROBES:
            assert model.predict_proba_one(x) == want[key].predict_proba_one(x)


def test_pseudo_labels_in_the_job_follow_the_rule_prediction_by_prediction(tmp_path):
    rng = random.Random(41)
    records = []
    for i in range(3000):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        y = 4 * x["f0"] + x["f1"] > 0
        labeled = rng.random() < 0.2
        records.append({"key": KEYS[i % 4], **x, **({"y": y} if labeled else {})})
    spec = "preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.5))"
    job = run_job(
        write_jsonl(tmp_path / "in.jsonl", records),
        tmp_path / "out",
        "--model",
        spec,
        "--pseudo-label",
        "0.9",
        "--parallelism",
        "2",
    )

    def confident():
        return preprocessing.StandardScaler() | linear_model.LogisticRegression(optim.SGD(0.5))

    want = river_rows(records, confident, pseudo_label=0.9)
    assert by_key(job.out["predictions"]) == by_key(want["predictions"])
    learned = sum(1 for r in want["predictions"] if r.get("pseudo"))
    assert learned > 100
    assert f"{learned:,} pseudo-labels learned" in job.stderr
