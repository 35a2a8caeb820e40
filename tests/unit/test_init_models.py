"""--init-model and --init-models in the pure learning (through riverflink.replay), each
compared with a plain River loop whose keys start from the same models."""

from __future__ import annotations

import json
import pickle
import random

import pytest
from river import drift, linear_model, preprocessing

import riverflink
from tests.reference import reference_run


def _stream(n: int, keys=("a", "b", "c"), seed: int = 9, flip_at=None) -> list:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(3)}
        y = 2 * x["f0"] - x["f1"] > 0
        if flip_at is not None and i >= flip_at:
            y = not y
        out.append({"key": keys[i % len(keys)], **x, "y": y})
    return out


def _model_a(history: list):
    """Model A: one plain River model over every record of the history, keys ignored."""
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    for record in history:
        model.learn_one({k: v for k, v in record.items() if k.startswith("f")}, record["y"])
    return model


@pytest.fixture
def init_file(tmp_path):
    path = tmp_path / "a.pkl"
    path.write_bytes(pickle.dumps(_model_a(_stream(2000, seed=1))))
    return path


def by_kind(rows) -> dict:
    out: dict = {"prediction": [], "alert": [], "outcome": [], "rejected": []}
    for row in rows:
        out[row.pop("kind")].append(row)
    return out


@pytest.mark.parametrize("on_drift", ["alert", "reset"])
def test_every_new_key_starts_from_a_copy_of_the_init_model(init_file, on_drift):
    records = _stream(1500, seed=2, flip_at=700)
    blob = init_file.read_bytes()
    out = by_kind(riverflink.replay(records, init_model=str(init_file), on_drift=on_drift))
    want = reference_run(
        records,
        lambda: pickle.loads(blob),  # reset: a fresh copy of the init model too
        make_detector=drift.ADWIN,
        detector_spec="drift.ADWIN()",
        on_drift=on_drift,
    )
    assert out["prediction"] == want["predictions"]
    assert out["alert"] == want["alerts"] and want["alerts"]
    # the first prediction of each key is model A's, not an untrained model's guess
    model_a = pickle.loads(blob)
    for first in out["prediction"][:3]:
        record = records[out["prediction"].index(first)]
        x = {k: v for k, v in record.items() if k.startswith("f")}
        assert first["y_pred"] == model_a.predict_one(x)
    fresh = by_kind(riverflink.replay(records))
    assert fresh["prediction"] != out["prediction"]


def test_listed_keys_continue_from_their_exported_models(tmp_path, init_file):
    """An export directory (as `riverflink export` writes it): listed keys start from
    their own model and n; the others from the init model."""
    history = _stream(900, keys=("a", "b"), seed=3)
    exported = {}
    (tmp_path / "export" / "models").mkdir(parents=True)
    with open(tmp_path / "export" / "models.jsonl", "w") as index:
        for key in ("a", "b"):
            model = _model_a([r for r in history if r["key"] == key])
            exported[key] = model
            (tmp_path / "export" / "models" / f"{key}.pkl").write_bytes(pickle.dumps(model))
            entry = {"key": key, "file": f"models/{key}.pkl", "n": 450, "model": "spec"}
            index.write(json.dumps({**entry, "metric": 0.9, "river": "0.23.0"}) + "\n")
    records = _stream(600, keys=("a", "b", "c"), seed=4)
    rows = list(
        riverflink.replay(records, init_models=str(tmp_path / "export"), init_model=str(init_file))
    )
    models = {"a": exported["a"], "b": exported["b"], "c": pickle.loads(init_file.read_bytes())}
    seen = {"a": 450, "b": 450, "c": 0}
    for record, row in zip(records, rows):
        key = record["key"]
        x = {k: v for k, v in record.items() if k.startswith("f")}
        assert (row["key"], row["n"]) == (key, seen[key])
        assert row["y_pred"] == models[key].predict_one(x)
        models[key].learn_one(x, record["y"])
        seen[key] += 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b"not a pickle"), "not a pickle of a River estimator"),
        (lambda p: p.write_bytes(pickle.dumps({"w": 1})), "holds a builtins.dict"),
        (
            lambda p: p.write_bytes(pickle.dumps(preprocessing.StandardScaler())),
            "not a supported model",
        ),
    ],
)
def test_a_bad_init_model_is_refused_with_what_is_wrong(tmp_path, make, message):
    path = tmp_path / "m.pkl"
    make(path)
    with pytest.raises(ValueError, match=message):
        riverflink.replay([], init_model=str(path))


def test_init_model_and_model_together_are_refused(init_file):
    with pytest.raises(ValueError, match="--init-model gives every new key its model"):
        riverflink.replay([], init_model=str(init_file), model="linear_model.LinearRegression()")


def test_init_models_must_be_an_export_of_the_same_kind(tmp_path, init_file):
    with pytest.raises(ValueError, match="no such directory"):
        riverflink.replay([], init_models=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no models.jsonl"):
        riverflink.replay([], init_models=str(tmp_path / "empty"))
    (tmp_path / "reg" / "models").mkdir(parents=True)
    (tmp_path / "reg" / "models" / "k.pkl").write_bytes(
        pickle.dumps(linear_model.LinearRegression())
    )
    (tmp_path / "reg" / "models.jsonl").write_text(
        json.dumps({"key": "k", "file": "models/k.pkl", "n": 1, "model": "m"}) + "\n"
    )
    with pytest.raises(ValueError, match="its models are regressors"):
        riverflink.replay([], init_models=str(tmp_path / "reg"), init_model=str(init_file))
