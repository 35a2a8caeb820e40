"""riverflink pretrain: one River model over a history's labeled records, as by hand.

The command's pickle is compared with a plain River model trained by hand on the same
labeled records in the same order; its printed metric with the same prequential loop.
"""

from __future__ import annotations

import ast
import gzip
import json
import math
import pickle
import random
import subprocess
import sys
from pathlib import Path

import pytest
from river import linear_model, metrics, preprocessing

from riverflink.cli import main
from riverflink.operators.pretraining import Pretraining

REPO = Path(__file__).resolve().parents[2]
CLASSIFIER = "preprocessing.StandardScaler() | linear_model.LogisticRegression()"
#: Lines the job rejects, and the reasons `pretrain` counts them under.
BAD_LINES = {
    "not json": "invalid JSON",
    '{"key": "a", "f0": NaN, "f1": 1.0, "f2": 0.5, "y": true}': (
        "non-finite number NaN is not allowed"
    ),
    '{"key": "a", "f0": {"deep": 1}, "f1": 1.0, "f2": 0.5, "y": true}': (
        "feature … must be a number, string or boolean, not a JSON object"
    ),
    '{"f0": 1.0, "f1": 1.0, "f2": 0.5, "y": false}': "key field … is missing or null",
    "[1, 2]": "a record must be a JSON object, got list",
}


def history(n: int = 2400, *, seed: int = 7, regression: bool = False) -> list:
    """Records of four keys, each with its own concept, one of which flips halfway; one in
    six has no label (null or absent) and one in twelve is a late label (no features)."""
    rng = random.Random(seed)
    keys = ("a", "b", "c", "d")
    weights = {k: [rng.uniform(-2, 2) for _ in range(3)] for k in keys}
    out = []
    for i in range(n):
        key = keys[i % 4]
        x = {f"f{j}": round(rng.gauss(0, 1), 6) for j in range(3)}
        score = sum(w * v for w, v in zip(weights[key], x.values()))
        if regression:
            y = round(score + rng.gauss(0, 0.1), 6)
        else:
            y = (score + rng.gauss(0, 0.3) > 0) != (key == "a" and i > n // 2)
        roll = rng.random()
        if roll < 1 / 12:
            out.append({"key": key, "id": i, "f0": None, "f1": None, "f2": None, "y": y})
        elif roll < 1 / 6:
            out.append({"key": key, "id": i, **x, "y": None})
        elif roll < 1 / 4:
            out.append({"key": key, "id": i, **x})
        else:
            out.append({"key": key, "id": i, **x, "y": y})
    return out


def lines_with_bad_ones(records: list, seed: int = 1) -> list:
    """The records as JSON lines, with the bad lines and blank lines spread among them."""
    lines = [json.dumps(r) for r in records]
    rng = random.Random(seed)
    for bad in [*BAD_LINES, "", "   "] * 3:
        lines.insert(rng.randrange(len(lines)), bad)
    return lines


def write(path: Path, lines: list) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def by_hand(records, make_model, metric, *, target="y", features=None, key="key", id="id"):
    """A plain River loop: predict, score, learn, over records with features and a label."""
    model = make_model()
    for record in records:
        y = record.get(target)
        names = features or [n for n in record if n not in (key, id, target)]
        x = {n: record[n] for n in names if record.get(n) is not None}
        if y is None or not x:
            continue
        y_pred = model.predict_one(x)
        if y_pred is not None:
            metric.update(y, y_pred)
        model.learn_one(x, y)
    return model, metric


def points(n: int = 40, names=("f0", "f1", "f2")) -> list:
    rng = random.Random(99)
    return [{name: rng.uniform(-3, 3) for name in names} for _ in range(n)]


def make_classifier():
    return preprocessing.StandardScaler() | linear_model.LogisticRegression()


def run(capsys, *args) -> tuple:
    code = main(["pretrain", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_one_model_over_every_labeled_record_equals_river_by_hand(tmp_path, capsys):
    records = history()
    source = tmp_path / "history"
    source.mkdir()
    # Two files, read in name order; the second compressed, as Flink's file source reads it.
    write(source / "part-1.jsonl", lines_with_bad_ones(records[:1000]))
    write(source / "part-2.jsonl.gz", lines_with_bad_ones(records[1000:], seed=2))
    write(source / ".hidden.jsonl", ['{"key": "z", "f0": 100.0, "y": true}'])  # not read
    output = tmp_path / "model-a.pkl"

    code, out, err = run(capsys, "--source", source, "--output", output, "--model", CLASSIFIER)

    assert code == 0, err
    model, metric = by_hand(records, make_classifier, metrics.Accuracy())
    loaded = pickle.loads(output.read_bytes())
    assert type(loaded) is type(model)
    for x in points():
        assert loaded.predict_proba_one(x) == model.predict_proba_one(x)
        assert loaded.predict_one(x) == model.predict_one(x)
    labeled = [r for r in records if r.get("y") is not None and r.get("f0") is not None]
    unlabeled = [r for r in records if r.get("y") is None]
    label_only = [r for r in records if r.get("y") is not None and r.get("f0") is None]
    assert len(unlabeled) > 300 and len(label_only) > 100
    lines = out.splitlines()
    assert lines[0] == (
        f"riverflink pretrain: {len(records) + 6 * len(BAD_LINES):,} records in 2 files; "
        f"the classifier learned {len(labeled):,} labeled ones"
    )
    assert lines[1].startswith(f"{metric!r} (prequential")
    assert f"{len(unlabeled):,} unlabeled, {len(label_only):,} label-only" in lines[2]
    assert lines[3] == f"rejected {6 * len(BAD_LINES)} lines, by reason:"
    assert sorted(line.split(None, 1)[1] for line in lines[4:]) == sorted(BAD_LINES.values())
    assert all(line.split(None, 1)[0] == "6" for line in lines[4:])  # 3 in each file
    assert err == f"riverflink: wrote {output} ({output.stat().st_size:,} bytes)\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history", "model-a.pkl"]


def test_the_printed_metric_is_the_prequential_one(tmp_path, capsys):
    """Every labeled record is scored on the prediction made before it was learned."""
    records = history(1200, seed=3)
    source = write(tmp_path / "h.jsonl", [json.dumps(r) for r in records])
    pre = Pretraining(CLASSIFIER)
    pre.feed(source.read_bytes().splitlines())
    _, metric = by_hand(records, make_classifier, metrics.Accuracy())
    assert pre.metric.get() == metric.get()
    assert 0.6 < metric.get() < 1.0
    code, out, _ = run(
        capsys, "--source", source, "--output", tmp_path / "m.pkl", "--model", CLASSIFIER
    )
    assert code == 0
    assert f"Accuracy: {metric.get():.2%} (prequential" in out.splitlines()[1]


def test_a_regressor_with_field_names_of_its_own_loads_with_river_alone(tmp_path):
    """--key, --id, --target and --features, MAE, and a pickle that needs no riverflink.
    Run as a process: `python -m riverflink pretrain`."""
    renamed = []
    for record in history(1500, seed=11, regression=True):
        row = {"user": record.pop("key"), "rid": record.pop("id")}
        if "y" in record:
            row["price"] = record.pop("y")
        row.update(record, noise="text", extra=1.0)  # not among --features: never learned
        renamed.append(row)
    lines = [json.dumps(r) for r in renamed] + [
        '{"key": "a", "f0": 1.0, "f1": 1.0, "price": 2.0}',  # no "user": rejected
        '{"user": "a", "f0": 1.0, "f1": 1.0, "price": true}',  # a regressor needs a number
    ]
    source = write(tmp_path / "h.jsonl", lines)
    output = tmp_path / "reg.pkl"
    spec = "preprocessing.StandardScaler() | linear_model.LinearRegression()"
    done = subprocess.run(
        [sys.executable, "-m", "riverflink", "pretrain", "--source", str(source)]
        + ["--output", str(output), "--model", spec, "--key", "user", "--id", "rid"]
        + ["--target", "price", "--features", "f0, f1"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr

    def make():
        return preprocessing.StandardScaler() | linear_model.LinearRegression()

    model, mae = by_hand(
        renamed, make, metrics.MAE(), target="price", features=["f0", "f1"], key="user", id="rid"
    )
    assert f"{mae!r} (prequential" in done.stdout
    assert "the regressor learned" in done.stdout
    assert "1  key field … is missing or null" in done.stdout
    assert "1  target field … must be a number for a regressor, got True" in done.stdout
    probe = [{"f0": x["f0"], "f1": x["f1"]} for x in points(10)]
    alone = (
        "import pickle, sys\n"
        "sys.modules['riverflink'] = None  # importing it would fail\n"
        f"model = pickle.load(open({str(output)!r}, 'rb'))\n"
        f"print(repr([model.predict_one(x) for x in {probe!r}]))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", alone], cwd=tmp_path, capture_output=True, text=True
    )
    assert loaded.returncode == 0, loaded.stderr
    assert ast.literal_eval(loaded.stdout) == [model.predict_one(x) for x in probe]
    assert b"riverflink" not in output.read_bytes()
    assert all(math.isfinite(v) for v in ast.literal_eval(loaded.stdout))


def test_a_record_the_model_raises_on_while_predicting_changes_nothing():
    """A string where the scaler needs a number: predicting raises, nothing is learned."""
    records = history(600, seed=5)
    lines = [json.dumps(r) for r in records]
    lines.insert(200, '{"key": "a", "f0": "seven", "f1": 1.0, "f2": 0.5, "y": true}')
    pre = Pretraining(CLASSIFIER)
    pre.feed(lines)
    assert pre.rejected == {"the model raised TypeError": 1} and pre.half_learned == 0
    model, _ = by_hand(records, make_classifier, metrics.Accuracy())
    assert pre.learned == sum(
        1 for r in records if r.get("y") is not None and r.get("f0") is not None
    )
    for x in points():
        assert pre.model.predict_proba_one(x) == model.predict_proba_one(x)


def test_a_record_the_model_raises_on_while_learning_is_counted_apart():
    """A label the classifier cannot take: the pipeline's scaler learned its features
    before the classifier raised, and keeps them (the job would roll the key back)."""
    records = history(600, seed=5)
    cat = {"key": "a", "f0": 0.1, "f1": 1.0, "f2": 0.5, "y": "cat"}
    lines = [json.dumps(r) for r in records]
    lines.insert(300, json.dumps(cat))
    pre = Pretraining(CLASSIFIER)
    pre.feed(lines)
    assert pre.rejected == {"the model raised ValueError": 1} and pre.half_learned == 1
    labeled = [r for r in records if r.get("y") is not None and r.get("f0") is not None]
    assert pre.learned == len(labeled)
    scaler = preprocessing.StandardScaler()
    for record in [r for r in records if r.get("f0") is not None and r.get("y") is not None] + [
        cat
    ]:
        scaler.learn_one({n: record[n] for n in ("f0", "f1", "f2")})
    assert pre.model["StandardScaler"].counts == scaler.counts


def test_nothing_to_learn_writes_nothing(tmp_path, capsys):
    records = [r for r in history(300) if r.get("y") is None or r.get("f0") is None]
    source = write(tmp_path / "h.jsonl", [json.dumps(r) for r in records] + ["not json"])
    output = tmp_path / "m.pkl"
    code, out, err = run(capsys, "--source", source, "--output", output, "--model", CLASSIFIER)
    assert code == 2 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"riverflink: error: no labeled record to learn in {source}: ")
    assert "1 rejected (most often: invalid JSON); nothing written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl"]


@pytest.mark.parametrize(
    "model, message",
    [
        ("linear_model.LogisticRegresion()", "model spec 'linear_model.LogisticRegresion()': "),
        ("anomaly.HalfSpaceTrees()", "is an anomaly detector, which learns without labels"),
        ("cluster.KMeans()", "is a clusterer, which learns without labels"),
    ],
)
def test_a_model_that_cannot_pretrain_is_refused_before_reading(tmp_path, capsys, model, message):
    output = tmp_path / "m.pkl"
    code, out, err = run(
        capsys, "--source", tmp_path / "missing", "--output", output, "--model", model
    )
    assert (code, out) == (2, "")
    assert err.startswith("riverflink: error: ") and err.count("\n") == 1
    assert message in err
    assert not output.exists()


def test_refusals_are_one_line_and_exit_2(tmp_path, capsys):
    source = write(tmp_path / "h.jsonl", [json.dumps(r) for r in history(50)])
    taken = tmp_path / "taken.pkl"
    taken.write_bytes(b"keep me")
    cases = {
        "does not exist": ["--source", tmp_path / "nope", "--output", tmp_path / "a.pkl"],
        "exists; choose another path or remove it": ["--source", source, "--output", taken],
        "is not a directory": ["--source", source, "--output", tmp_path / "no" / "a.pkl"],
        "--features cannot include the key, id or target": [
            *("--source", source, "--output", tmp_path / "a.pkl", "--features", "f0,y")
        ],
    }
    for message, args in cases.items():
        code, out, err = run(capsys, *args, "--model", CLASSIFIER)
        assert (code, out) == (2, ""), message
        assert err.startswith("riverflink: error: ") and err.count("\n") == 1, err
        assert message in err
    assert taken.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.jsonl", "taken.pkl"]
    with pytest.raises(SystemExit) as exited:
        main(["pretrain", "--source", str(source), "--output", str(tmp_path / "a.pkl")])
    assert exited.value.code == 2
    assert "the following arguments are required: --model" in capsys.readouterr().err
